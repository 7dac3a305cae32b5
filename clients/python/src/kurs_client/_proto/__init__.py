"""Generated gRPC stubs of kurs.rates.v1 (tools/generate_stubs.py); do not edit."""
