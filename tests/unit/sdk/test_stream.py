"""StreamView and resumable_stream: what the caller sees across reconnects, without gaps or
duplicates, whichever way the rates service answers a resume."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import pytest

from kurs_client import ClientConfig, Endpoint, RateEvent
from kurs_client.models import Rate, StreamMessage
from kurs_client.pool import EndpointPool, TransientError
from kurs_client.stream import RESYNC_ATTEMPTS, ReplicaBehind, StreamView, resumable_stream

DAY = dt.date(2026, 11, 2)


def msg(sequence: int, kind: str, **values: str) -> StreamMessage:
    rates = {c: Rate(c, Decimal(v), DAY, ("ecb",)) for c, v in values.items()}
    return StreamMessage(sequence, kind, "EUR", DAY, rates)  # type: ignore[arg-type]


def shown(event: RateEvent | None) -> tuple[str, int, int, dict[str, str]] | None:
    if event is None:
        return None
    values = {c: str(r.value) for c, r in event.rates.items()}
    return event.kind, event.previous_sequence, event.sequence, values


def test_snapshot_then_updates_chain_and_drop_repeats() -> None:
    view = StreamView()
    view.connected()
    assert shown(view.accept(msg(5, "snapshot", USD="1.16", GBP="0.88"), "a")) == (
        "snapshot", 0, 5, {"USD": "1.16", "GBP": "0.88"},
    )  # fmt: skip
    assert shown(view.accept(msg(6, "update", USD="1.17"), "a")) == ("update", 5, 6, {"USD": "1.17"})
    # An update at an old sequence, or repeating a value the caller has, yields nothing.
    assert view.accept(msg(6, "update", USD="1.17"), "a") is None
    assert view.accept(msg(7, "update", USD="1.17"), "a") is None
    assert view.sequence == 7
    event = view.accept(msg(8, "update", USD="1.17", GBP="0.89"), "a")
    assert shown(event) == ("update", 7, 8, {"GBP": "0.89"})


def test_a_resume_snapshot_becomes_an_update_of_what_changed() -> None:
    view = StreamView()
    view.connected()
    view.accept(msg(5, "snapshot", USD="1.16", GBP="0.88"), "a")
    view.connected()
    event = view.accept(msg(9, "snapshot", USD="1.16", GBP="0.90"), "b")
    assert shown(event) == ("update", 5, 9, {"GBP": "0.90"})
    assert event is not None
    assert (event.resumed, event.endpoint) == (True, "b")
    view.connected()
    assert view.accept(msg(9, "snapshot", USD="1.16", GBP="0.90"), "b") is None  # nothing new


def test_a_currency_gone_makes_the_resume_a_snapshot() -> None:
    view = StreamView()
    view.connected()
    view.accept(msg(5, "snapshot", USD="1.16", GBP="0.88"), "a")
    view.connected()
    assert shown(view.accept(msg(6, "snapshot", USD="1.16"), "b")) == ("snapshot", 5, 6, {"USD": "1.16"})


def test_a_replica_behind_is_refused_then_accepted_after_enough_tries() -> None:
    view = StreamView()
    view.connected()
    view.accept(msg(10, "snapshot", USD="1.16"), "a")
    for _ in range(RESYNC_ATTEMPTS):
        view.connected()
        with pytest.raises(ReplicaBehind):
            view.accept(msg(8, "snapshot", USD="1.15"), "b")
    view.connected()
    assert shown(view.accept(msg(8, "snapshot", USD="1.15"), "b")) == ("update", 10, 10, {"USD": "1.15"})


def test_a_caller_given_since_delivers_everything_received() -> None:
    view = StreamView(since=41)
    view.connected()
    assert shown(view.accept(msg(43, "update", USD="1.2"), "a")) == ("update", 41, 43, {"USD": "1.2"})


Script = tuple[list[StreamMessage], Exception | None]


class ScriptedTransport:
    """Each stream call plays the next script: messages, then an error (or a clean end)."""

    def __init__(self, config: ClientConfig, scripts: list[Script]) -> None:
        async def healthy(endpoint: Endpoint, deadline: float) -> bool:
            return True

        self.pool = EndpointPool(config, healthy)
        self.scripts = scripts
        self.calls: list[tuple[str, int]] = []

    async def stream(
        self, endpoint: Endpoint, base: str, symbols: Sequence[str], since: int, deadline: float
    ) -> AsyncIterator[StreamMessage]:
        self.calls.append((endpoint.address, since))
        messages, error = self.scripts.pop(0)
        for message in messages:
            yield message
        if error is not None:
            raise error


async def test_resumes_on_the_next_endpoint_from_the_last_sequence() -> None:
    config = ClientConfig(
        (Endpoint("a:1", "eu"), Endpoint("b:1", "us")), region="eu", reconnect_initial=0.001, down_seconds=60
    )
    transport = ScriptedTransport(
        config,
        [
            ([msg(5, "snapshot", USD="1.16", GBP="0.88"), msg(6, "update", USD="1.17")], TransientError("x")),
            ([msg(8, "update", USD="1.18", GBP="0.89")], None),  # resumed on b: coalesced 7..8
        ],
    )
    events = resumable_stream(transport, config, "EUR", ())  # type: ignore[arg-type]
    seen = [shown(await anext(events)) for _ in range(3)]
    await events.aclose()
    assert seen == [
        ("snapshot", 0, 5, {"USD": "1.16", "GBP": "0.88"}),
        ("update", 5, 6, {"USD": "1.17"}),
        ("update", 6, 8, {"USD": "1.18", "GBP": "0.89"}),
    ]
    assert transport.calls == [("a:1", 0), ("b:1", 6)]
