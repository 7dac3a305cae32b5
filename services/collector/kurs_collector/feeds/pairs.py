"""Market symbols -> (base, quote) ISO / crypto codes."""

from __future__ import annotations

from kurs_collector.errors import FeedError
from kurs_common.currencies import CRYPTO, CURRENCIES

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
