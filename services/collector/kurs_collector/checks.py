"""What the collector refuses before anything reaches the validator.

Parsers raise FeedError for a payload that is broken as a whole (truncated, not the format,
wrong encoding). `screen` then drops single figures that are bad on their own: a currency
code that does not exist, a value that is not a plain decimal above zero, a bid above its
ask, a date further in the future than the source's time zone allows, and duplicates of the
same figure with different values (both dropped: nobody can tell which one is right).
Each drop is reported; nothing is silently corrected.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from decimal import Decimal, DivisionByZero, Inexact, InvalidOperation, localcontext
from typing import Any

from kurs_collector.errors import FeedError
from kurs_common import money
from kurs_common.currencies import CRYPTO, is_iso_code, lookup
from kurs_common.observation import LIVE, Observation
from kurs_common.timeutil import DateFormatError, parse_date

MAX_PROBLEMS_KEPT = 20


def known_code(code: str, day: dt.date) -> str | None:
    """None when `code` is usable on `day`, else why not."""
    if code in CRYPTO:
        return None
    if not is_iso_code(code):
        return f"{code!r} is not a currency code"
    info = lookup(code)
    if info is None:
        return f"{code!r} is not an ISO 4217 currency"
    if info.retired_on is not None and day >= info.retired_on:
        return f"{code} was retired on {info.retired_on}"
    return None


def decimal_text(text: str, what: str = "value") -> Decimal:
    """A published figure as Decimal: plain positional decimal, '.' separator. FeedError otherwise."""
    try:
        return money.parse_decimal(text.strip())
    except money.DecimalFormatError as exc:
        raise FeedError(f"{what}: {exc}") from None


def scaled(value: Decimal, divisor: Decimal | int = 1, multiplier: Decimal | int = 1) -> str:
    """value x multiplier / divisor, computed exactly; FeedError when it is not exact."""
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.traps[Inexact] = True
        ctx.traps[InvalidOperation] = True
        ctx.traps[DivisionByZero] = True
        try:
            result = value * Decimal(multiplier) / Decimal(divisor)
        except (Inexact, InvalidOperation, DivisionByZero) as exc:
            raise FeedError(
                f"{value} x {multiplier} / {divisor} cannot be computed exactly ({exc!r})"
            ) from None
    return money.format_decimal(result)


def mid(bid: str, ask: str) -> str:
    """(bid + ask) / 2, exactly."""
    return scaled(decimal_text(bid, "bid") + decimal_text(ask, "ask"), 2)


def _problem(obs: Observation, reason: str) -> str:
    return f"{obs.base}/{obs.quote} {obs.day}: {reason}"


def screen(
    observations: Iterable[Observation], *, now: dt.datetime, max_future: dt.timedelta
) -> tuple[list[Observation], list[str]]:
    """Split into (usable, problems)."""
    kept: list[Observation] = []
    problems: list[str] = []
    horizon = now + max_future
    for obs in observations:
        try:
            day = parse_date(obs.day)
        except DateFormatError as exc:
            problems.append(_problem(obs, str(exc)))
            continue
        reason = known_code(obs.base, day) or known_code(obs.quote, day)
        if reason is None and obs.base == obs.quote:
            reason = f"base and quote are both {obs.base}"
        if reason is None:
            reason = _value_problem(obs)
        if reason is None and (
            day > horizon.date() or (obs.observed_at is not None and obs.observed_at > horizon)
        ):
            reason = f"dated {obs.day}, in the future"
        if reason is not None:
            problems.append(_problem(obs, reason))
            continue
        kept.append(obs)
    unique, duplicate_problems = _dedupe(kept)
    return unique, problems + duplicate_problems


def _value_problem(obs: Observation) -> str | None:
    try:
        money.parse_rate(obs.value)
        if obs.bid or obs.ask:
            bid = money.parse_rate(obs.bid)
            ask = money.parse_rate(obs.ask)
            if bid > ask:
                return f"bid {obs.bid} above ask {obs.ask}"
    except money.DecimalFormatError as exc:
        return str(exc)
    return None


def _key(obs: Observation) -> tuple[str, ...]:
    if obs.kind == LIVE:
        stamp = obs.observed_at.isoformat() if obs.observed_at else ""
        return (obs.base, obs.quote, stamp)
    return (obs.base, obs.quote, obs.day)


def _dedupe(observations: Sequence[Observation]) -> tuple[list[Observation], list[str]]:
    seen: dict[tuple[str, ...], Observation] = {}
    conflicted: set[tuple[str, ...]] = set()
    problems: list[str] = []
    for obs in observations:
        key = _key(obs)
        first = seen.get(key)
        if first is None:
            seen[key] = obs
        elif money.parse_decimal(first.value) != money.parse_decimal(obs.value):
            if key not in conflicted:
                problems.append(
                    _problem(obs, f"published twice with different values ({first.value}, {obs.value})")
                )
            conflicted.add(key)
        else:
            problems.append(_problem(obs, "published twice (duplicate dropped)"))
    return [obs for key, obs in seen.items() if key not in conflicted], problems


def parse_xml(body: bytes | str, what: str = "XML") -> ET.Element:
    """Parse XML that may not declare a DTD or entities (no entity expansion attacks)."""
    head = body[:4096] if isinstance(body, bytes) else body[:4096].encode("utf-8", "replace")
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
        raise FeedError(f"{what} declares a DTD or entities; refused")
    try:
        return ET.fromstring(body)  # noqa: S314 - DTDs refused above; expat has no external entity loading
    except ET.ParseError as exc:
        raise FeedError(f"malformed {what} ({exc}); truncated?") from None


def csv_rows(text: str, *, delimiter: str = ",") -> list[list[str]]:
    """All rows of a CSV text; FeedError on a broken quote (a file cut in the middle)."""
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise FeedError(f"malformed CSV ({exc}); truncated?") from None


def decode(body: bytes, encoding: str = "utf-8") -> str:
    """Strict decoding; a payload in another encoding is an error, not mojibake."""
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FeedError(f"not valid {encoding}: {exc.reason} at byte {exc.start}") from None
    return text.removeprefix("\ufeff")


def rows_match_header(rows: Sequence[Sequence[str]], width: int, first_line: int) -> None:
    for offset, row in enumerate(rows):
        if row and len(row) != width:
            raise FeedError(
                f"line {first_line + offset} has {len(row)} fields, the header has {width}; truncated?"
            )


def comma_decimal(text: str, what: str = "value") -> Decimal:
    """A figure written with a decimal comma ("63,8183"), as Decimal; FeedError otherwise."""
    value = text.strip()
    if value.count(",") == 1 and "." not in value:
        value = value.replace(",", ".")
    return decimal_text(value, what)


def per_unit(value: Decimal, units: str | int, what: str) -> str:
    """A rate quoted per `units` (100 JPY, Nominal 10000) as a rate per one unit, exactly."""
    try:
        count = int(units)
    except (TypeError, ValueError):
        raise FeedError(f"{what}: unit count {units!r} is not a whole number") from None
    if count <= 0:
        raise FeedError(f"{what}: unit count {count} must be positive")
    if count == 1:
        return format(value, "f")  # the published digits, only a decimal comma turned into a point
    return scaled(value, count)


# Units of account some central banks list next to currencies (the IMF's SDR); not a currency.
NOT_CURRENCIES = frozenset({"XDR", "SDR"})


def load_json(body: bytes) -> Any:
    """JSON with every number kept as an exact Decimal (never a float); BOM tolerated."""
    try:
        return json.loads(decode(body), parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise FeedError(f"malformed JSON ({exc.msg} at {exc.pos}); truncated?") from None
