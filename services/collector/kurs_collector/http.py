"""HTTP fetching for every source: timeouts, retries with exponential backoff and full jitter,
conditional requests (ETag / Last-Modified) and the source's circuit breaker.

A fetch either returns the body (`Payload`), returns None for "304 Not Modified", or raises
`FeedError` with a message that names the source and the reason. It never returns an HTML
error page, an empty body or a half-read response as data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from kurs_collector.breaker import CircuitBreaker
from kurs_collector.errors import FeedError
from kurs_common.timeutil import utcnow

log = logging.getLogger(__name__)

# Characters left literal in a query, as the providers' own links have them (RFC 3986 allows them).
QUERY_SAFE = "/,:"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    """A GET of `path` (with `params`) under the source's configured base URL."""

    path: str
    params: tuple[tuple[str, str], ...] = ()
    # A 404 that means "nothing published for this date" (NBP, CNB on a holiday).
    not_found_is_empty: bool = False
    conditional: bool = True
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Payload:
    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]
    fetched_at: dt.datetime
    latency_ms: int = 0

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def empty(self) -> bool:
        return self.status == 404


SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token"})


def redact(url: str) -> str:
    """The URL with secret query values (FRED's api_key, ...) replaced, for logs, health and state."""
    if "?" not in url:
        return url
    head, _, query = url.partition("?")
    params = httpx.QueryParams(query)
    if not any(name.lower() in SECRET_PARAMS for name in params):
        return url
    cleaned = [(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in params.multi_items()]
    return f"{head}?{urlencode(cleaned, safe='*')}"


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        b"<html" in head and not head.startswith(b"<?xml")
    )


class Fetcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        source: str,
        base_url: str,
        breaker: CircuitBreaker,
        timeout: float,
        retries: int,
        backoff: float,
        backoff_max: float,
        user_agent: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.breaker = breaker
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.user_agent = user_agent
        self.sleep = sleep
        self.last_latency_ms = 0

    def url_for(self, request: Request) -> str:
        """The URL as the providers' own links spell it: `/`, `,` and `:` stay literal in the
        query (BoE's `Datefrom=17/Mar/2026`, `SeriesCodes=XUDLUSS,XUDLERS`; CBR's `date_req=17/03/2026`),
        as RFC 3986 allows; everything else is percent-encoded."""
        url = f"{self.base_url}{request.path}"
        if request.params:
            url += "?" + urlencode(request.params, safe=QUERY_SAFE)
        return url

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self.backoff_max)
        return random.uniform(0, min(self.backoff_max, self.backoff * 2 ** (attempt - 1)))

    async def fetch(self, request: Request, validators: Mapping[str, str] | None = None) -> Payload | None:
        """GET with retries; None when the server answered 304 to our validators."""
        if not self.breaker.allow():
            raise FeedError(
                f"{self.source}: circuit open after {self.breaker.failures} failures; "
                f"next try in {self.breaker.retry_after():.0f}s"
            )
        url = self.url_for(request)
        shown = redact(url)
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate", **dict(request.headers)}
        if request.conditional and validators:
            if validators.get("etag"):
                headers["If-None-Match"] = validators["etag"]
            if validators.get("last_modified"):
                headers["If-Modified-Since"] = validators["last_modified"]
        error = ""
        for attempt in range(1, self.retries + 1):
            started = time.monotonic()
            retry_after: str | None = None
            try:
                # `timeout` bounds the whole attempt (a provider dripping one byte at a time must
                # not hold the feed), and the body is read in chunks up to MAX_BODY_BYTES.
                async with (
                    asyncio.timeout(self.timeout),
                    self.client.stream("GET", url, headers=headers, timeout=self.timeout) as response,
                ):
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_BODY_BYTES:
                            self.breaker.record_failure()
                            raise FeedError(f"{self.source}: body over {MAX_BODY_BYTES} bytes ({shown})")
                        chunks.append(chunk)
                    body = b"".join(chunks)
                self.last_latency_ms = int((time.monotonic() - started) * 1000)
            except (TimeoutError, httpx.TimeoutException):
                error = f"timed out after {self.timeout:g}s"
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc or 'connection failed'}"
            except httpx.HTTPError as exc:  # a corrupt compressed body, too many redirects, ...
                self.breaker.record_failure()
                raise FeedError(f"{self.source}: {type(exc).__name__}: {exc} ({shown})") from exc
            else:
                status = response.status_code
                if status == 304:
                    self.breaker.record_success()
                    return None
                if status == 404 and request.not_found_is_empty:
                    self.breaker.record_success()
                    return Payload(url, 404, b"", response.headers, utcnow(), self.last_latency_ms)
                if status in RETRY_STATUS:
                    error = f"HTTP {status}"
                    retry_after = response.headers.get("retry-after")
                elif status >= 400:
                    self.breaker.record_failure()
                    raise FeedError(f"{self.source}: HTTP {status} from {shown}")
                else:
                    self._check_body(shown, response, body)
                    self.breaker.record_success()
                    return Payload(url, status, body, response.headers, utcnow(), self.last_latency_ms)
            if attempt < self.retries:
                delay = self._delay(attempt, retry_after)
                log.warning(
                    "fetch failed, retrying",
                    extra={
                        "source": self.source,
                        "url": shown,
                        "error": error,
                        "attempt": attempt,
                        "delay_s": round(delay, 3),
                    },
                )
                await self.sleep(delay)
        self.breaker.record_failure()
        raise FeedError(f"{self.source}: {error} ({shown}, {self.retries} attempts)")

    def _check_body(self, url: str, response: httpx.Response, body: bytes) -> None:
        if not body.strip():
            self.breaker.record_failure()
            raise FeedError(f"{self.source}: empty body from {url}")
        if len(body) > MAX_BODY_BYTES:
            self.breaker.record_failure()
            raise FeedError(f"{self.source}: body of {len(body)} bytes is too large ({url})")
        content_type = response.headers.get("content-type", "").lower()
        if "text/html" in content_type or looks_like_html(body):
            self.breaker.record_failure()
            raise FeedError(
                f"{self.source}: an HTML page instead of data from {url} (HTTP {response.status_code})"
            )
