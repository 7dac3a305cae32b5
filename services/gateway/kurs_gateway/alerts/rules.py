"""Alert rules: validation of what a client sends, and the evaluator run on every snapshot change.

Kinds:

* `threshold`: fires when the rate of `base`/`symbol` crosses `threshold` (exact decimal
  comparison) in `direction` `above` (from at or below to above), `below`, or `either`. The
  first rate seen after the rule is loaded only arms it: a crossing needs a before and an after.
* `pct_move`: fires when the rate moved by at least `percent` % (`direction` `up`, `down`
  or `either`) against the oldest rate seen within the last `window_seconds`; it re-arms
  once the move is back under the bar.
* `anomaly` (data quality): fires on anomalies the validator reports (WatchAnomalies) that
  match the rule's optional `currency`, `source` and `reason`; with `count` > 1, when that many
  arrive within `window_seconds` (a burst), once per burst.
* `stale_source`: an `anomaly` rule for the reason `stale_source` (a source silent past its
  publication window), optionally of one `source`.

The evaluator indexes rules by currency, so a change touches only the rules of the pairs it
moved; each pair's cross rate is computed once per change (kurs_common.money, like /rates/latest).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from kurs_common import money, validation
from kurs_common.errors import InvalidArgument
from kurs_common.rate import Rate
from kurs_gateway.snapshot import PIVOT

KINDS = ("threshold", "pct_move", "anomaly", "stale_source")
RATE_KINDS = ("threshold", "pct_move")
DIRECTIONS = {"threshold": ("above", "below", "either"), "pct_move": ("up", "down", "either")}
MAX_BURST = 10_000
SOURCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
REASON = re.compile(r"^[a-z_]{1,32}$")
MAX_WINDOW_SECONDS = 7 * 86_400
MAX_URL = 2048
FIELDS = frozenset(
    {"kind", "base", "symbol", "direction", "threshold", "percent", "window_seconds", "webhook_url"}
)
QUALITY_FIELDS = frozenset({"kind", "currency", "source", "reason", "count", "window_seconds", "webhook_url"})


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    api_key: str
    kind: str
    base: str
    symbol: str
    direction: str
    threshold: str | None = None
    percent: str | None = None
    window_seconds: int | None = None
    webhook_url: str | None = None
    created_at: str = ""
    currency: str | None = None  # anomaly rules: filters
    source: str | None = None
    reason: str | None = None
    count: int | None = None

    def public(self) -> dict[str, Any]:
        body = asdict(self)
        del body["api_key"]
        return {k: v for k, v in body.items() if v is not None and v != ""}


def _text(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise InvalidArgument(name, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidArgument(name, "must be a string")
    return value.strip()


def webhook(url: str, allowed_hosts: Collection[str]) -> str:
    """A webhook URL: http(s), a host in `allowed_hosts` ("*" allows any), bounded length."""
    if not url.startswith(("http://", "https://")) or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise InvalidArgument("webhook_url", f"must be an http(s) URL of at most {MAX_URL} characters")
    try:
        host = urlsplit(url).hostname
        _ = urlsplit(url).port
    except ValueError as exc:
        raise InvalidArgument("webhook_url", f"is not a valid URL: {exc}") from exc
    if not host:
        raise InvalidArgument("webhook_url", "has no host")
    if "*" not in allowed_hosts and host.lower() not in allowed_hosts:
        raise InvalidArgument(
            "webhook_url", f"host {host} is not allowed here (KURS_GATEWAY_ALERTS_WEBHOOK_HOSTS)"
        )
    return url


def parse_rule(
    payload: Any, api_key: str, served: Iterable[str] | None, allowed_hosts: Collection[str] = ("*",)
) -> Rule:
    """A Rule from a client's JSON object; InvalidArgument names the first bad field."""
    if not isinstance(payload, dict):
        raise InvalidArgument("body", "must be a JSON object")
    kind = _text(payload, "kind")
    if kind not in KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(KINDS)}")
    allowed = FIELDS if kind in RATE_KINDS else QUALITY_FIELDS
    for key in payload:
        if key not in allowed:
            raise InvalidArgument(str(key), f"unknown field; allowed: {', '.join(sorted(allowed))}")
    url = _text(payload, "webhook_url", required=False)
    if url is not None:
        url = webhook(url, allowed_hosts)
    if kind not in RATE_KINDS:
        return _quality_rule(payload, kind, api_key, url)
    codes = None if served is None else {*served, PIVOT}
    base = validation.currency("base", _text(payload, "base") or "", codes)
    symbol = validation.currency("symbol", _text(payload, "symbol") or "", codes)
    if base == symbol:
        raise InvalidArgument("symbol", "must differ from base")
    direction = _text(payload, "direction", required=False) or "either"
    if direction not in DIRECTIONS[kind]:
        raise InvalidArgument("direction", f"must be one of {', '.join(DIRECTIONS[kind])}")
    threshold = percent = None
    window = None
    try:
        if kind == "threshold":
            threshold = money.format_decimal(money.parse_rate(_text(payload, "threshold") or ""))
            for extra in ("percent", "window_seconds"):
                if extra in payload:
                    raise InvalidArgument(extra, "only for kind pct_move")
        else:
            value = money.parse_rate(_text(payload, "percent") or "")
            if value > 100:
                raise InvalidArgument("percent", "must be at most 100")
            percent = money.format_decimal(value)
            window = payload.get("window_seconds")
            if (
                not isinstance(window, int)
                or isinstance(window, bool)
                or not 1 <= window <= MAX_WINDOW_SECONDS
            ):
                raise InvalidArgument("window_seconds", f"must be an integer from 1 to {MAX_WINDOW_SECONDS}")
            if "threshold" in payload:
                raise InvalidArgument("threshold", "only for kind threshold")
    except money.DecimalFormatError as exc:
        raise InvalidArgument("threshold" if kind == "threshold" else "percent", str(exc)) from exc
    return Rule(
        id=secrets.token_hex(8),
        api_key=api_key,
        kind=kind,
        base=base,
        symbol=symbol,
        direction=direction,
        threshold=threshold,
        percent=percent,
        window_seconds=window,
        webhook_url=url,
        created_at=_now(),
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _quality_rule(payload: Mapping[str, Any], kind: str, api_key: str, url: str | None) -> Rule:
    currency = _text(payload, "currency", required=False)
    if currency is not None:
        currency = validation.currency("currency", currency)
    source = _text(payload, "source", required=False)
    if source is not None and not SOURCE.match(source.lower()):
        raise InvalidArgument("source", "must be a source id such as ecb (see /sources)")
    reason = _text(payload, "reason", required=False)
    if kind == "stale_source":
        if reason is not None or currency is not None:
            raise InvalidArgument("reason" if reason is not None else "currency", "not for kind stale_source")
        reason = "stale_source"
    elif reason is not None and not REASON.match(reason):
        raise InvalidArgument("reason", "must be an anomaly reason such as outlier (see /anomalies)")
    count = payload.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BURST:
        raise InvalidArgument("count", f"must be an integer from 1 to {MAX_BURST}")
    window = payload.get("window_seconds")
    if (count > 1 or window is not None) and (
        not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= MAX_WINDOW_SECONDS
    ):
        raise InvalidArgument("window_seconds", f"must be an integer from 1 to {MAX_WINDOW_SECONDS}")
    return Rule(
        id=secrets.token_hex(8),
        api_key=api_key,
        kind=kind,
        base="",
        symbol="",
        direction="",
        window_seconds=window,
        webhook_url=url,
        created_at=_now(),
        currency=currency,
        source=None if source is None else source.lower(),
        reason=reason,
        count=count,
    )


def pair_rate(entries: Mapping[str, Rate], base: str, symbol: str) -> str | None:
    """Units of symbol per one base from pivot-quoted entries (None when either is missing)."""
    if base == PIVOT:
        entry = entries.get(symbol)
        return None if entry is None else entry.value
    base_entry = entries.get(base)
    if base_entry is None:
        return None
    if symbol == PIVOT:
        return money.invert(base_entry.value)
    quote = entries.get(symbol)
    return None if quote is None else money.cross_rate(base_entry.value, quote.value)


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


class Evaluator:
    """Holds the active rules and their state; `evaluate` returns the events a change fires."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self._by_currency: dict[str, set[str]] = defaultdict(set)
        self._thresholds: dict[str, Decimal] = {}
        self._side: dict[str, int] = {}  # threshold rules: sign(rate - threshold) last seen
        self._armed: dict[str, bool] = {}  # pct_move rules
        self._seen: dict[tuple[str, str], deque[tuple[float, Decimal]]] = {}
        self._window: dict[tuple[str, str], int] = defaultdict(int)  # longest window per pair
        self._quality: dict[str, Rule] = {}  # anomaly and stale_source rules
        self._bursts: dict[str, deque[float]] = {}

    def add(self, rule: Rule) -> None:
        self.rules[rule.id] = rule
        if rule.kind not in RATE_KINDS:
            self._quality[rule.id] = rule
            return
        self._by_currency[rule.base].add(rule.id)
        self._by_currency[rule.symbol].add(rule.id)
        if rule.threshold is not None:
            self._thresholds[rule.id] = Decimal(rule.threshold)
        if rule.window_seconds is not None:
            pair = (rule.base, rule.symbol)
            self._window[pair] = max(self._window[pair], rule.window_seconds)
            self._armed[rule.id] = True

    def remove(self, rule_id: str) -> None:
        rule = self.rules.pop(rule_id, None)
        if rule is None:
            return
        for code in (rule.base, rule.symbol):
            self._by_currency[code].discard(rule_id)
        for state in (self._thresholds, self._side, self._armed, self._quality, self._bursts):
            state.pop(rule_id, None)

    def evaluate(
        self, entries: Mapping[str, Rate], codes: Iterable[str] | None, sequence: int, now: float
    ) -> list[tuple[Rule, dict[str, Any]]]:
        """Events fired by a change of `codes` (None: everything) at stream `sequence`."""
        if codes is None:
            affected: set[str] = set(self.rules)
        else:
            affected = set()
            for code in codes:
                affected |= self._by_currency.get(code, set())
        rates: dict[tuple[str, str], Decimal | None] = {}
        fired: list[tuple[Rule, dict[str, Any]]] = []
        for rule_id in affected:
            rule = self.rules[rule_id]
            pair = (rule.base, rule.symbol)
            if pair not in rates:
                text = pair_rate(entries, *pair)
                rates[pair] = None if text is None else Decimal(text)
                if text is not None and self._window.get(pair):
                    self._remember(pair, now, Decimal(text))
            rate = rates[pair]
            if rate is None:
                continue
            event = self._threshold(rule, rate) if rule.kind == "threshold" else self._move(rule, rate, now)
            if event is not None:
                event.update(
                    id=f"{rule.id}:{sequence}",
                    rule_id=rule.id,
                    kind=rule.kind,
                    base=rule.base,
                    symbol=rule.symbol,
                    rate=money.format_decimal(rate),
                    sequence=sequence,
                    fired_at=dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z"),
                )
                fired.append((rule, event))
        return fired

    def anomaly(self, anomaly: Mapping[str, Any], now: float) -> list[tuple[Rule, dict[str, Any]]]:
        """Events fired by one anomaly the validator reported (a dict of its fields)."""
        fired: list[tuple[Rule, dict[str, Any]]] = []
        for rule in self._quality.values():
            if any(
                want is not None and want != anomaly.get(name)
                for name, want in (
                    ("currency", rule.currency),
                    ("source", rule.source),
                    ("reason", rule.reason),
                )
            ):
                continue
            count = 1
            if (rule.count or 1) > 1 and rule.window_seconds is not None:
                seen = self._bursts.setdefault(rule.id, deque())
                seen.append(now)
                while seen and seen[0] <= now - rule.window_seconds:
                    seen.popleft()
                count = len(seen)
                if count < (rule.count or 1):
                    self._armed[rule.id] = True
                    continue
                if not self._armed.get(rule.id, True):
                    continue
                self._armed[rule.id] = False
            event = {
                "id": f"{rule.id}:anomaly:{anomaly.get('id')}",
                "rule_id": rule.id,
                "kind": rule.kind,
                "count": count,
                "anomaly": dict(anomaly),
                "fired_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z"),
            }
            if rule.window_seconds is not None:
                event["window_seconds"] = rule.window_seconds
            fired.append((rule, event))
        return fired

    def _remember(self, pair: tuple[str, str], now: float, rate: Decimal) -> None:
        seen = self._seen.setdefault(pair, deque())
        seen.append((now, rate))
        horizon = now - self._window[pair]
        while len(seen) > 1 and seen[1][0] <= horizon:
            seen.popleft()

    def _threshold(self, rule: Rule, rate: Decimal) -> dict[str, Any] | None:
        side = _sign(rate - self._thresholds[rule.id])
        before = self._side.get(rule.id)
        self._side[rule.id] = side
        if before is None or side == before:
            return None
        crossed = "above" if side > 0 and before <= 0 else "below" if side < 0 and before >= 0 else None
        if crossed is None or rule.direction not in (crossed, "either"):
            return None
        return {"direction": crossed, "threshold": rule.threshold}

    def _move(self, rule: Rule, rate: Decimal, now: float) -> dict[str, Any] | None:
        seen = self._seen.get((rule.base, rule.symbol))
        if not seen or rule.window_seconds is None or rule.percent is None:
            return None
        # the rate in effect `window_seconds` ago: the last one seen at or before then, else the oldest
        horizon = now - rule.window_seconds
        reference = seen[0][1]
        for at, value in seen:
            if at > horizon:
                break
            reference = value
        move = (rate - reference) / reference * 100
        hit = (move >= Decimal(rule.percent) and rule.direction in ("up", "either")) or (
            -move >= Decimal(rule.percent) and rule.direction in ("down", "either")
        )
        if not hit:
            self._armed[rule.id] = True
            return None
        if not self._armed.get(rule.id, True):
            return None
        self._armed[rule.id] = False
        return {
            "direction": "up" if move > 0 else "down",
            "percent": rule.percent,
            "window_seconds": rule.window_seconds,
            "reference_rate": money.format_decimal(reference),
            "move_pct": money.format_decimal(money.round_significant(move)),
        }
