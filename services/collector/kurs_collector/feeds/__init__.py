"""Collector feeds: one module per source adapter."""
