"""Test doubles and fixture servers shared by the tests and tools/bench_live.py (never imported by
services/ or lib/)."""
