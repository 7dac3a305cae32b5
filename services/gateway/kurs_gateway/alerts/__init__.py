"""Rate alerts: rules per API key (stored in a database), evaluated on every change of the
gateway's live snapshot, delivered by signed webhook (retries, dead letters, idempotency key)
and on the WebSocket /ws/alerts. See docs/analysis.md, "Alerts"."""
