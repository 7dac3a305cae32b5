"""The GraphQL schema (SDL) of `/graphql` and the binding of its query fields to the root's methods.

`build()` makes the executable schema once per app; `routes/graphql.py` serves it and its `Root`
answers the fields, `routes/graphql_analysis.py` contributes the analysis part of the SDL.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLSchema, build_schema

from kurs_gateway.routes.graphql_analysis import ANALYSIS_SDL

SDL = '''
"""Exchange rates; every rate is an exact decimal in a String."""
type Query {
  "Newest rates from the live snapshot (with `source`, that publisher's newest figures)."
  latest(base: String = "USD", symbols: [String!], source: String): Rates
  "Rates of the business day on or before `date`."
  historical(date: String!, base: String = "USD", symbols: [String!], source: String): Rates
  "Rates of every publication day in the range (at most 366 days)."
  timeseries(
    startDate: String!, endDate: String!, base: String = "USD", symbols: [String!], source: String
  ): TimeSeries
  "`amount` of `from` in `to`, at the latest rate or on `date`."
  convert(from: String!, to: String!, amount: String!, date: String, source: String): Conversion
  "Every currency served."
  currencies: [Currency!]
}
type Rate { currency: String! value: String! }
type Rates { base: String! date: String requestedDate: String rates: [Rate!]! sources: [String!]! }
type SeriesDay { date: String! rates: [Rate!]! }
type TimeSeries { base: String! startDate: String! endDate: String! days: [SeriesDay!]! sources: [String!]! }
type Conversion {
  from: String! to: String! amount: String! rate: String! result: String! date: String! sources: [String!]!
}
type Currency { code: String! name: String! firstDate: String! lastDate: String! active: Boolean! }
"""Live rates over WebSocket (graphql-transport-ws), as the WebSocket stream sends them."""
type Subscription {
  "The current rates first (kind snapshot), then the figures that changed (kind update)."
  rates(base: String = "USD", symbols: [String!]): RatesUpdate!
}
"""`sequence` is the stream's change counter, a decimal integer in a String."""
type RatesUpdate { kind: String! sequence: String! base: String! date: String rates: [Rate!]! }
'''


def build() -> GraphQLSchema:
    schema = build_schema(SDL + ANALYSIS_SDL)
    assert schema.query_type is not None
    for name, field in schema.query_type.fields.items():
        field.resolve = _resolver(name)
    return schema


def _resolver(name: str) -> Any:
    """Calls `root.<name>(info, **arguments)`: graphql-core's default resolver takes the parent
    value as a parameter named `source`, which a `source` argument would collide with."""

    def resolve(_parent: Any, _info: Any, **arguments: Any) -> Any:
        return getattr(_parent, name)(_info, **arguments)

    return resolve
