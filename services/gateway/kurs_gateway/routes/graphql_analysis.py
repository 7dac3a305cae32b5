"""GraphQL forms of the analysis endpoints: fluctuation, volatility, trend and OHLC.

The answers are those of GET /analysis/* (`analysis.answers`, one implementation), renamed to
GraphQL's camelCase with maps turned into lists (`rates` per currency, `rolling` and `series`
per date). Decimals stay exact Strings; volatility is a Float (float64, as in REST). Arguments
are checked as in REST and a bad one is a GraphQL error naming it (`extensions.field`).
`routes/graphql_schema.py` adds ANALYSIS_SDL to the schema; `routes/graphql.py` mixes
AnalysisFields into its root.
"""

from __future__ import annotations

from typing import Any

from kurs.rates.v1 import rates_pb2_grpc
from kurs_gateway.analysis import answers

ANALYSIS_SDL = '''
extend type Query {
  "Change over a range per currency (exact decimals), as GET /analysis/fluctuation."
  fluctuation(startDate: String!, endDate: String!, base: String = "USD", symbols: [String!]): Fluctuation
  "Realised volatility (float64, annualised), overall and rolling over `window` returns."
  volatility(
    startDate: String!, endDate: String!, base: String = "USD", symbols: [String!], window: Int = 21
  ): Volatility
  "Fast and slow moving averages (`kind` sma or ema) and the direction at the end of the range."
  trend(
    startDate: String!, endDate: String!, base: String = "USD", symbols: [String!],
    fast: Int = 20, slow: Int = 50, kind: String = "sma"
  ): Trend
  "OHLC bars: 1m, 5m, 15m, 1h from the live ticks (symbols required), 1d, 1w, 1mo from the fixings."
  ohlc(
    startDate: String!, endDate: String!, base: String = "USD", symbols: [String!], interval: String = "1d"
  ): Ohlc
}
type FluctuationRate {
  currency: String! startDate: String! startRate: String! endDate: String! endRate: String!
  change: String! changePct: String! high: String! highDate: String! low: String! lowDate: String!
}
type Fluctuation {
  base: String! startDate: String! endDate: String! rates: [FluctuationRate!]! missing: [String!]!
  sources: [String!]!
}
type VolatilityPoint { date: String! value: Float! }
type VolatilityRate {
  currency: String! volatility: Float observations: Int! returns: Int! rolling: [VolatilityPoint!]!
}
type Volatility {
  base: String! startDate: String! endDate: String! window: Int! annualisationDays: Int!
  numeric: String! rates: [VolatilityRate!]! missing: [String!]! sources: [String!]!
}
type TrendPoint { date: String! fast: String slow: String }
type TrendRate {
  currency: String! direction: String lastDate: String! rate: String! fast: String slow: String
  series: [TrendPoint!]!
}
type Trend {
  base: String! startDate: String! endDate: String! kind: String! fastWindow: Int! slowWindow: Int!
  rates: [TrendRate!]! missing: [String!]! sources: [String!]!
}
"""`firstDate`/`lastDate` for bars of fixings, `firstAt`/`lastAt` (UTC instants) for intraday bars."""
type Bar {
  periodStart: String! open: String! high: String! low: String! close: String! count: Int!
  firstDate: String lastDate: String firstAt: String lastAt: String
}
type OhlcRate { currency: String! bars: [Bar!]! }
type Ohlc {
  base: String! startDate: String! endDate: String! interval: String! rates: [OhlcRate!]!
  missing: [String!]! sources: [String!]!
}
'''

GRAPHQL = answers.Names(start="startDate", end="endDate")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _renamed(body: dict[str, Any]) -> dict[str, Any]:
    return {_camel(k): v for k, v in body.items()}


def _listed(body: dict[str, Any], per_currency: Any) -> dict[str, Any]:
    """The body renamed, `rates` {code: answer} as [{currency, ...}], `missing` always present."""
    out = _renamed({k: v for k, v in body.items() if k != "rates"})
    out["rates"] = [{"currency": code, **per_currency(answer)} for code, answer in body["rates"].items()]
    out.setdefault("missing", [])
    return out


def _volatility_rate(answer: dict[str, Any]) -> dict[str, Any]:
    rolling = [{"date": day, "value": value} for day, value in answer["rolling"].items()]
    return {**_renamed(answer), "rolling": rolling}


def _trend_rate(answer: dict[str, Any]) -> dict[str, Any]:
    series = [{"date": day, **point} for day, point in answer["series"].items()]
    return {**_renamed(answer), "series": series}


def _ohlc_rate(bars: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bars": [_renamed(bar) for bar in bars]}


class AnalysisFields:
    """Resolvers of the analysis root fields; the GraphQL root supplies stub, timeout, _guard."""

    stub: rates_pb2_grpc.RatesServiceStub
    timeout: float

    async def _guard(self, call: Any) -> Any:  # pragma: no cover - the root's own is used
        raise NotImplementedError

    def _span(self, start: str, end: str, base: str, symbols: list[str] | None) -> answers.Range:
        return answers.Range(base, symbols or [], start, end, GRAPHQL)

    async def fluctuation(
        self, info: Any, startDate: str, endDate: str, base: str, symbols: list[str] | None = None
    ) -> dict[str, Any]:
        span = self._span(startDate, endDate, base, symbols)
        body = await self._guard(answers.fluctuation(self.stub, self.timeout, span))
        return _listed(body, _renamed)

    async def volatility(
        self,
        info: Any,
        startDate: str,
        endDate: str,
        base: str,
        window: int,
        symbols: list[str] | None = None,
    ) -> dict[str, Any]:
        span = self._span(startDate, endDate, base, symbols)
        body = await self._guard(answers.volatility(self.stub, self.timeout, span, window))
        return _listed(body, _volatility_rate)

    async def trend(
        self,
        info: Any,
        startDate: str,
        endDate: str,
        base: str,
        fast: int,
        slow: int,
        kind: str,
        symbols: list[str] | None = None,
    ) -> dict[str, Any]:
        span = self._span(startDate, endDate, base, symbols)
        body = await self._guard(answers.trend(self.stub, self.timeout, span, fast, slow, kind))
        return _listed(body, _trend_rate)

    async def ohlc(
        self,
        info: Any,
        startDate: str,
        endDate: str,
        base: str,
        interval: str,
        symbols: list[str] | None = None,
    ) -> dict[str, Any]:
        span = self._span(startDate, endDate, base, symbols)
        body, _final = await self._guard(answers.ohlc(self.stub, self.timeout, span, interval))
        return _listed(body, _ohlc_rate)


__all__ = ["ANALYSIS_SDL", "AnalysisFields"]
