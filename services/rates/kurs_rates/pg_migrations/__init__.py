"""Versioned PostgreSQL migrations: NNNN_name.sql, applied in order, each version once."""
