"""Managed API keys: records and hashing, their store, the in-memory registry, shared limits."""
