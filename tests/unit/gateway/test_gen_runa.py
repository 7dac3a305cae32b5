"""tools/gen_runa.py: the generated Runa module matches its golden file and parses in the dialect."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kurs_gateway.routes.runa import CONVERSION_SCHEMA

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "clients" / "runa" / "kurs_conversion.runa"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen: Any = load(ROOT / "tools" / "gen_runa.py", "gen_runa")
dialect: Any = load(ROOT / "tests" / "fixtures" / "runa" / "dialect.py", "runa_dialect")

STDLIB_NAMES = [
    "fetch_live_exchange_rates",
    "convert_currency",
    "cache_exchange_rates",
    "load_cached_exchange_rates",
    "convert_currency_with_live_rates",
]


@pytest.fixture(scope="module")
def generated() -> str:
    return str(gen.render(gen.contract(gen.openapi())))


def test_matches_the_golden_file(generated: str) -> None:
    assert generated == GOLDEN.read_text(encoding="utf-8"), "run python tools/gen_runa.py"
    assert gen.main(["--check"]) == 0


def test_parses_in_the_dialect_and_keeps_the_standard_names(generated: str) -> None:
    processes = dialect.parse(generated)
    for name in STDLIB_NAMES:
        assert name in processes
    assert "fetch_exchange_rates_with_fallback" in processes


def test_constants_come_from_the_openapi_description(generated: str) -> None:
    constants = dict(re.findall(r'^Let (\w+) be "([^"]*)"$', generated, re.MULTILINE))
    assert constants["KURS_RATES_PATH"] == "/runa/v1/rates"
    assert (constants["KURS_BASE_PARAMETER"], constants["KURS_SYMBOLS_PARAMETER"]) == ("base", "symbols")
    assert constants["V6_RATES_FIELD"] == "conversion_rates"
    fields = re.search(r'Type called "CurrencyConversionRate":\n((?:    .*\n)+)', generated)
    assert fields is not None
    # the description's fields, in its order (each by name: integration/gateway/test_runa_and_v6.py)
    assert [line.split()[0] for line in fields.group(1).splitlines()] == CONVERSION_SCHEMA["required"]


def test_a_description_without_the_runa_route_is_refused() -> None:
    spec = gen.openapi()
    del spec["paths"]["/runa/v1/rates"]
    with pytest.raises(gen.SpecError, match="/runa/v1/rates"):
        gen.contract(spec)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("    If response.status_code is equal to 200:\n", "    If response.status_code is equal to 200\n"),
        ("    Try:\n", "    Attempt:\n"),
        ('Let api_url be api_endpoint joined with "?"', 'Let api_url be api_endpoint joined with "?'),
        ("        Return kurs_rates\n", "         Return kurs_rates\n"),
        ("    Catch kurs_error:\n", "    Note: no catch\n"),
        ("returns Boolean:", "gives Boolean:"),
        (":End Note\n", "\n"),
    ],
)
def test_the_grammar_rejects_broken_modules(generated: str, old: str, new: str) -> None:
    assert old in generated
    with pytest.raises(dialect.RunaSyntaxError):
        dialect.parse(generated.replace(old, new, 1))
