"""Gateway: the public REST and WebSocket face of Kurs (FastAPI)."""
