"""Kurs shared library: exact money arithmetic, currency metadata, gRPC serving,
logging and tracing helpers used by every service. Nothing here does I/O at import time."""
