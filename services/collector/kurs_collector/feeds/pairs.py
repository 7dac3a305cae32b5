"""What the exchange feeds share: market symbols -> (base, quote) codes, exact JSON prices.

Exchanges name a pair in their own way: Kraken's REST result keys use its asset names
(XXBTZUSD for the requested XBTUSD, ZEURZUSD for EURUSD; newer pairs plain: XBTUSDT,
USDCHF), Binance and Bitstamp concatenate the codes (BTCUSDT, btcusd), Coinbase and
Kraken's WebSocket separate them (BTC-USD, BTC/USD). Prices come as JSON strings or
numbers and are kept as the exact decimal text, never a float.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from kurs_collector.checks import decimal_text
from kurs_collector.errors import FeedError
from kurs_common.currencies import CRYPTO, CURRENCIES
from kurs_common.money import format_decimal

ALIASES = {"XBT": "BTC", "XDG": "DOGE"}


def known(code: str) -> bool:
    return code in CURRENCIES or code in CRYPTO


def _norm(code: str) -> str | None:
    code = ALIASES.get(code, code)
    if known(code):
        return code
    if len(code) == 4 and code[0] in "XZ":
        inner = ALIASES.get(code[1:], code[1:])
        if known(inner):
            return inner
    return None


def split_symbol(symbol: str) -> tuple[str, str]:
    """Split a concatenated symbol ("XXBTZUSD", "EURUSD", "USDTZUSD", "BTCUSDT")."""
    text = symbol.upper().replace("-", "").replace("/", "").replace("_", "")
    found: list[tuple[str, str]] = []
    for cut in range(3, len(text) - 2):
        left, right = _norm(text[:cut]), _norm(text[cut:])
        if left and right and (left, right) not in found:
            found.append((left, right))
    if len(found) != 1:
        raise FeedError(f"cannot tell base and quote of symbol {symbol!r}")
    return found[0]


def split_pair(pair: str, separator: str = "/") -> tuple[str, str]:
    """Split "BTC/USD" / "BTC-USD"; the codes are normalised (XBT -> BTC)."""
    base, sep, quote = pair.upper().partition(separator)
    left, right = _norm(base.strip()), _norm(quote.strip())
    if not sep or left is None or right is None:
        raise FeedError(f"{pair!r} is not a BASE{separator}QUOTE pair of known codes")
    return left, right


def price_text(value: Any, what: str, *, keep_non_finite: bool = False) -> str:
    """A JSON number or numeric string as the plain decimal text it was published as.

    keep_non_finite: a JSON NaN/Infinity comes back as its text ("NaN"), for the screen
    (kurs_collector.checks) to refuse and report per figure, instead of raising here.
    """
    if isinstance(value, bool) or value is None:
        raise FeedError(f"{what}: {value!r} is not a number")
    if isinstance(value, Decimal):
        if not value.is_finite():
            if keep_non_finite:
                return str(value)
            raise FeedError(f"{what}: {value!r} is not a number")
        return format_decimal(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        decimal_text(value, what)
        return value.strip()
    raise FeedError(f"{what}: {value!r} is not a number")


def parse_stamp(value: Any) -> dt.datetime | None:
    """An ISO 8601 timestamp ("2022-06-02T09:20:54.127011Z") as UTC; None when absent."""
    if not isinstance(value, str):
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FeedError(f"bad timestamp {value!r}") from None
    return stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def wanted(pairs: list[str]) -> list[tuple[str, str]]:
    """The configured pairs as (base, quote) codes, in order."""
    return [split_pair(p) for p in pairs]
