"""Finding and rewriting external rate API references in one file's text.

Kinds of finding:
* `v6-url`: ExchangeRate-API v6 (`https://v6.exchangerate-api.com/v6/KEY/...`) -> Kurs serves the
  same paths: `{kurs}/v6/KEY/...` (the key becomes `--kurs-key` when given).
* `open-url`: the open endpoint (`https://open.er-api.com/v6/latest/USD`) -> `{kurs}/v6/latest/USD`.
* `api-endpoint`: a value given to Runa's `fetch_live_exchange_rates` as `api_endpoint` (which
  appends `?base=..&symbols=..` and reads each code as a top-level key) -> `{kurs}/runa/v1/rates`.
* `legacy-url`: other ExchangeRate-API hosts (`api.exchangerate-api.com` v4, `prime.` v5):
  reported for a person to look at, not rewritten (Kurs does not serve those shapes).
* `api-key`: a setting that holds an ExchangeRate-API key; rewritten only with `--kurs-key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

V6_URL = re.compile(r"https?://v6\.exchangerate-api\.com/v6/(?P<key>[^/\s\"'<>]+)(?P<rest>[^\s\"'<>]*)")
OPEN_URL = re.compile(r"https?://open\.er-api\.com(?P<rest>/v6/[^\s\"'<>]*)")
LEGACY_URL = re.compile(r"https?://(?:api|prime)\.exchangerate-api\.com[^\s\"'<>]*")
# `Let api_endpoint be "..."`, `Set cfg.api_endpoint to "..."`, `api_endpoint = "..."`,
# `api_endpoint: ...`, `"api_endpoint": "..."`: the quoted or bare URL value.
ENDPOINT = re.compile(
    r"(?P<lead>\bapi_endpoint\b[\"']?\s*(?:be|to|=|:)\s*[\"']?)(?P<url>https?://[^\s\"'<>,]+)",
    re.IGNORECASE,
)
API_KEY = re.compile(
    r"(?P<lead>\b(?:exchange_?rate_?api_?key|er_api_key|exchangerate_key)\b[\"']?\s*(?:be|to|=|:)\s*[\"']?)"
    r"(?P<key>[A-Za-z0-9_-]{8,})",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Finding:
    line: int
    column: int
    kind: str
    text: str
    replacement: str | None  # None: reported only


@dataclass(frozen=True, slots=True)
class Target:
    kurs_url: str
    kurs_key: str | None = None


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _is_kurs(url: str, target: Target) -> bool:
    return url.startswith(target.kurs_url)


def scan(text: str, target: Target) -> tuple[list[Finding], str]:
    """Every finding in `text`, and the text with the rewritable ones rewritten."""
    kurs = target.kurs_url.rstrip("/")
    edits: list[tuple[int, int, str]] = []
    findings: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, kind: str, replacement: str | None) -> None:
        if any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        line, col = _line_col(text, start)
        findings.append(Finding(line, col, kind, text[start:end], replacement))
        if replacement is not None and replacement != text[start:end]:
            edits.append((start, end, replacement))

    for m in ENDPOINT.finditer(text):
        url = m.group("url")
        if not _is_kurs(url, Target(kurs)):
            add(m.start("url"), m.end("url"), "api-endpoint", f"{kurs}/runa/v1/rates")
    for m in V6_URL.finditer(text):
        key = target.kurs_key or m.group("key")
        add(m.start(), m.end(), "v6-url", f"{kurs}/v6/{key}{m.group('rest')}")
    for m in OPEN_URL.finditer(text):
        add(m.start(), m.end(), "open-url", f"{kurs}{m.group('rest')}")
    for m in LEGACY_URL.finditer(text):
        add(m.start(), m.end(), "legacy-url", None)
    for m in API_KEY.finditer(text):
        add(m.start("key"), m.end("key"), "api-key", target.kurs_key)
    findings.sort(key=lambda f: (f.line, f.column))
    out = text
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement + out[end:]
    return findings, out
