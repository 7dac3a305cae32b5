"""alerts.delivery: the signature a receiver checks, and the backoff between attempts."""

from __future__ import annotations

import hashlib
import hmac
import random

from kurs_gateway.alerts.delivery import backoff, signature


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"id":"r1:7","rate":"1.0412"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature("s3cret", body) == f"sha256={expected}"
    assert signature("other", body) != signature("s3cret", body)


def test_backoff_doubles_is_capped_and_jittered_down_to_half() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 30.0)]:
        delays = [backoff(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # really jittered
