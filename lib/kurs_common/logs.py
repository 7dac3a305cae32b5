"""Structured JSON logging for every service (one JSON object per line on stderr).

Secrets never reach a log line: every message, extra field and traceback goes through `redact`,
which blanks API keys in query strings (`api_key=`, `apikey=`, `app_id=`, `access_token=`, ...),
the values of `Authorization` / `X-API-Key` headers (as text or as ASGI header pairs), and the
secret part of any managed key (`kurs_<id>_<secret>` keeps its readable id); extra fields named
like a secret are blanked whole. Servers log through the root logger (uvicorn's WebSocket
handshakes carry the request's query string), so one formatter covers their lines and ours.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from typing import Any

import orjson

REDACTED = "[redacted]"
_SECRET_NAMES = r"api[_-]?key|apikey|app_id|access_token|token|secret|password|key"  # noqa: S105 - names
_FRESH = r"(?!\[redacted\])"  # redacting twice changes nothing
_QUERY = re.compile(rf"(?i)([?&;](?:{_SECRET_NAMES})=){_FRESH}[^&\s\"'#\\]+")
_HEADER = re.compile(
    # the name, then ": ", "', b'" or '":"', then an optional scheme: all kept; the value blanked
    # (up to a quote, a separator or a backslash: the final JSON text is redacted too)
    r"(?i)((?:proxy-)?authorization|x-api-key)"
    r"(['\"]?\s*[:=,]\s*(?:b(?=['\"]))?['\"]?(?:(?:bearer|basic|token|apikey)\s+)?)"
    rf"{_FRESH}[^\s\"',;}}\]\)\\]+"
)
_MANAGED_KEY = re.compile(r"\b(kurs_[0-9a-f]{12}_)[A-Za-z0-9_\-]+")
_SECRET_FIELD = re.compile(rf"(?i)^(?:x-api-key|authorization|(?:.*_)?(?:{_SECRET_NAMES}))$")


def redact(text: str) -> str:
    """`text` with API keys and credentials blanked (see the module docstring)."""
    if not text:
        return text
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    text = _HEADER.sub(rf"\1\2{REDACTED}", text)
    return _MANAGED_KEY.sub(rf"\1{REDACTED}", text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_FIELD.match(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    return value


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = _redact_value(key, value)
        span = _current_span_ids()
        if span:
            payload.update(span)
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        # Anything else (a nested dict, an object's repr) is blanked in the final text too.
        return redact(orjson.dumps(payload, default=str).decode())


def _current_span_ids() -> dict[str, str]:
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}


def setup_logging(service: str, level: str = "INFO") -> None:
    """Route the root logger to stderr as JSON lines. Idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
