"""kurs_common.logs: secrets never reach a log line (issue #17)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from kurs_common.logs import REDACTED, JsonFormatter, redact

SECRET = "s3cr3t-Value_42"


@pytest.mark.parametrize(
    "text",
    [
        f'127.0.0.1:5 - "WebSocket /ws/rates/stream?base=EUR&api_key={SECRET}" [accepted]',
        f"GET /frankfurter/latest?apikey={SECRET}&symbols=USD",
        f"/openexchangerates/api/latest.json?app_id={SECRET}",
        f"/rates/latest?access_token={SECRET}",
        f"Authorization: Bearer {SECRET}",
        f"authorization=Basic {SECRET}",
        f"X-API-Key: {SECRET}",
        f"[(b'x-api-key', b'{SECRET}'), (b'host', b'127.0.0.1')]",
        f'{{"authorization":"Bearer {SECRET}"}}',
        f"key kurs_0123456789ab_{SECRET} used",
    ],
)
def test_redact_blanks_every_shape_of_a_key(text: str) -> None:
    out = redact(text)
    assert SECRET not in out
    assert REDACTED in out


def test_redact_keeps_what_is_not_a_secret() -> None:
    text = "GET /rates/latest?base=EUR&symbols=USD,GBP monkey=3 turkey=4 kurs_0123456789ab"
    assert redact(text) == text
    assert redact("kurs_0123456789ab_abc") == f"kurs_0123456789ab_{REDACTED}"  # the id stays


def test_formatter_redacts_message_extras_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    log = logging.getLogger("kurs.test.logs")
    log.handlers[:] = [handler]
    log.propagate = False
    try:
        log.warning("GET %s", f"/rates/latest?api_key={SECRET}", extra={"api_key": SECRET, "path": "/x"})
        log.warning("headers", extra={"headers": {"x-api-key": SECRET}, "authorization": f"Bearer {SECRET}"})
        try:
            raise ValueError(f"bad key in /rates/latest?key={SECRET}")
        except ValueError:
            log.exception("failed")
    finally:
        log.handlers.clear()
    text = stream.getvalue()
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["api_key"] == REDACTED
    assert lines[0]["path"] == "/x"
    assert lines[1]["authorization"] == REDACTED
    assert "ValueError" in lines[2]["exc"]
