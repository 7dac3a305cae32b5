"""Generate the Runa currency module (clients/runa/kurs_conversion.runa) from Kurs's OpenAPI description.

The module is written in the dialect of Runa's standard library (`math/core/conversion.runa`)
and keeps that module's function names and semantics: `fetch_live_exchange_rates` (GET
`<api_endpoint>?base=..&symbols=..`, each code a top-level key), `convert_currency` (direct ->
reverse -> through USD -> error), `cache_exchange_rates` / `load_cached_exchange_rates` (a file
cache of 30 minutes) and `convert_currency_with_live_rates`. It adds the fallback chain
in-house Kurs -> ExchangeRate-API v6 -> last good cached value (marked stale) -> typed error, in
`fetch_exchange_rates_with_fallback` and `convert_currency_with_fallback`.

Paths, parameter names, and the fields of `CurrencyConversionRate` and of v6's latest answer are
read from the OpenAPI description of `create_app(GatewaySettings())`; generation fails when one
the module relies on is missing, so the module cannot drift from the gateway silently.

Usage: python tools/gen_runa.py [--check] [--output PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "clients" / "runa" / "kurs_conversion.runa"
TEMPLATE = ROOT / "clients" / "runa" / "kurs_conversion.runa.in"  # str.format fields: {name}
RUNA_RATES = "/runa/v1/rates"
RUNA_CONVERSION = "/runa/v1/conversion-rate"
V6_LATEST = "/v6/{key}/latest/{base}"


class SpecError(Exception):
    pass


def openapi() -> dict[str, Any]:
    """The gateway's OpenAPI description, built in-process (no server, no network)."""
    from fastapi import FastAPI

    from kurs_gateway.app import create_app
    from kurs_gateway.settings import GatewaySettings

    app: Any = create_app(GatewaySettings())
    while not isinstance(app, FastAPI):
        app = app.app
    schema: dict[str, Any] = app.openapi()
    return schema


def _operation(spec: dict[str, Any], path: str) -> dict[str, Any]:
    try:
        operation: dict[str, Any] = spec["paths"][path]["get"]
    except KeyError as exc:
        raise SpecError(f"the OpenAPI description has no GET {path}") from exc
    return operation


def _parameter(operation: dict[str, Any], name: str, where: str) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["name"] == name and parameter["in"] == where:
            return name
    raise SpecError(f"{where} parameter {name!r} is missing")


def _json_200(operation: dict[str, Any]) -> dict[str, Any]:
    try:
        content: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"]
    except KeyError as exc:
        raise SpecError("a 200 application/json answer is not described") from exc
    return content


def contract(spec: dict[str, Any]) -> dict[str, Any]:
    """What the Runa module needs from the gateway, checked against the description."""
    rates = _operation(spec, RUNA_RATES)
    base = _parameter(rates, "base", "query")
    symbols = _parameter(rates, "symbols", "query")
    conversion = _json_200(_operation(spec, RUNA_CONVERSION))["schema"]
    fields = list(conversion["required"])
    if conversion.get("title") != "CurrencyConversionRate" or len(fields) != 7:
        raise SpecError("CurrencyConversionRate must have its seven fields")
    v6 = _operation(spec, V6_LATEST)
    _parameter(v6, "key", "path")
    _parameter(v6, "base", "path")
    example = _json_200(v6)["example"]
    for name in ("result", "conversion_rates"):
        if name not in example:
            raise SpecError(f"v6 latest answer lacks {name!r}")
    return {
        "title": spec["info"]["title"],
        "version": spec["info"]["version"],
        "rates_path": RUNA_RATES,
        "base": base,
        "symbols": symbols,
        "fields": fields,
        "v6_prefix": V6_LATEST.split("{key}")[0],
        "v6_latest": V6_LATEST.split("{key}")[1].split("{base}")[0],
        "v6_rates": "conversion_rates",
    }


def render(c: dict[str, Any]) -> str:
    fields = "\n".join(f"    {name} as String" for name in c["fields"])
    template = TEMPLATE.read_text(encoding="utf-8")
    return template.format(fields=fields, **{k: v for k, v in c.items() if k != "fields"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the committed module differs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(contract(openapi()))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python tools/gen_runa.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
