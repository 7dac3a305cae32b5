"""USD triangulation: a pair a source does not quote directly, computed from two figures per USD.

quote/base = (quote per USD) / (base per USD), rounded half-even to 10 significant digits (Kurs's
rule for every cross rate). The triangulated figure belongs to the older of the two dates, its
sources are both figures' sources, and it is marked `via="USD"`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from kurs_client.errors import UnsupportedCurrencyError
from kurs_client.models import Rate, Rates, cross

PIVOT = "USD"
FetchRates = Callable[[str, tuple[str, ...]], Awaitable[Rates]]


def _usd_rate(code: str, table: Rates) -> Rate | None:
    if code == PIVOT:
        return Rate(PIVOT, Decimal(1), table.date, ())
    return table.rates.get(code)


def crossed(base: str, codes: Sequence[str], table: Rates) -> dict[str, Rate]:
    """`codes` per one `base` from a USD-based table; raises for a code the table lacks."""
    per_base = _usd_rate(base, table)
    if per_base is None:
        raise UnsupportedCurrencyError("base", f"{base} is not served, not even through USD")
    out = {}
    for code in codes:
        per_quote = _usd_rate(code, table)
        if per_quote is None:
            raise UnsupportedCurrencyError("symbols", f"{code} is not served, not even through USD")
        dates = [d for d in (per_base.date, per_quote.date) if d is not None]
        out[code] = Rate(
            currency=code,
            value=cross(per_quote.value, per_base.value),
            date=min(dates) if dates else None,
            sources=tuple(sorted({*per_base.sources, *per_quote.sources})),
            via=PIVOT,
        )
    return out


async def rates_with_triangulation(fetch: FetchRates, base: str, symbols: tuple[str, ...]) -> Rates:
    """`fetch(base, symbols)`, completing the pairs it lacks (or refuses) through USD."""
    try:
        direct: Rates | None = await fetch(base, symbols)
    except UnsupportedCurrencyError:
        if base == PIVOT and all(s != PIVOT for s in symbols):
            raise
        direct = None
    if direct is not None and all(s in direct.rates for s in symbols):
        return direct
    missing = [s for s in symbols if direct is None or s not in direct.rates]
    wanted = tuple(c for c in dict.fromkeys([base, *missing]) if c != PIVOT) if symbols else ()
    table = await fetch(PIVOT, wanted)
    if not symbols:  # everything, through USD
        missing = [c for c in [*table.rates, PIVOT] if c != base]
    rates = {**(direct.rates if direct else {}), **crossed(base, missing, table)}
    ordered = {c: rates[c] for c in symbols} if symbols else rates
    dates = [r.date for r in ordered.values() if r.date is not None]
    return Rates(
        base=base,
        date=max(dates) if dates else None,
        rates=ordered,
        origin=(direct or table).origin,
        sequence=(direct or table).sequence,
        requested_date=(direct or table).requested_date,
    )
