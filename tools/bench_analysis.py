"""Analysis, bulk conversion and alert evaluation, measured on this machine.

    python tools/bench_analysis.py [--years 4] [--runs 5] [--rules 10000] [--json]

Starts, in this process and on 127.0.0.1 only, a rates service on a scratch SQLite file holding
the last `--years` of the ECB's real history (published into the blended series over
IngestRates, as the validator does) and the real gateway app under uvicorn. Then it times:

* POST /rates/convert/bulk with 10,000 latest conversions, end to end (request sent -> last
  NDJSON line read), and with 10,000 conversions spread over 250 past dates, beside the 250
  GetHistoricalRates calls the dated batch makes, timed alone (8 at a time, as the bulk route
  does): the floor of the dated figure; the three alternate twice in one run;
* GET /analysis/fluctuation, /volatility, /trend (sma, ema), /ohlc over one year of every
  currency, and /analysis/forecast (2-year walk-forward backtest of one pair);
* the alert evaluator with `--rules` rules (threshold and % move, over every pair of the
  fixing's currencies): the cost of one change that moves every currency (a fixing) and of one
  that moves one currency. This is the evaluation only (CPU); storing the events of webhook
  rules is one SQLite transaction per change on top.

Prints p50/min/max per figure (ms); figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import uvicorn

from kurs.rates.v1 import ingest_pb2, ingest_pb2_grpc, rates_pb2, rates_pb2_grpc
from kurs_collector.feeds.ecb_history import default_history_path, read_history_zip
from kurs_common import money
from kurs_common.rate import Rate, RateKind
from kurs_gateway.alerts.rules import Evaluator, parse_rule
from kurs_gateway.app import create_app
from kurs_gateway.settings import GatewaySettings
from kurs_rates import server as rates_server
from kurs_rates.settings import RatesSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the blend fixing builder is shared with the tests
from support.rates_replicas import ecb_fixing_in_blend  # noqa: E402


def history(years: int) -> list[tuple[str, dict[str, str]]]:
    """(day, {currency: value per EUR}) of the last `years` of the ECB's history, oldest first."""
    lines = read_history_zip(default_history_path()).splitlines()
    header = lines[0].split(",")
    last = dt.date.fromisoformat(lines[1][:10])
    first = (last - dt.timedelta(days=365 * years)).isoformat()
    days = []
    for line in lines[1:]:
        cells = line.split(",")
        if cells[0] < first:
            break
        days.append(
            (
                cells[0],
                {c: v for c, v in zip(header[1:], cells[1:], strict=False) if c and v not in ("", "N/A")},
            )
        )
    return days[::-1]


async def publish(port: int, days: list[tuple[str, dict[str, str]]]) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = ingest_pb2_grpc.RatesIngestServiceStub(channel)
        batch: list[ingest_pb2.AcceptedRate] = []
        for day, rates in days:
            batch.extend(ecb_fixing_in_blend(day, rates))
            if len(batch) >= 5000:
                await stub.IngestRates(ingest_pb2.IngestRatesRequest(rates=batch))
                batch = []
        if batch:
            await stub.IngestRates(ingest_pb2.IngestRatesRequest(rates=batch))


@contextlib.asynccontextmanager
async def gateway(rates_port: int) -> AsyncIterator[str]:
    settings = GatewaySettings(rates_address=f"127.0.0.1:{rates_port}", collector_address="127.0.0.1:9")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), lifespan="on", access_log=False, log_config=None)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(600):
                if server.started and (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


def summary(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


async def timed(runs: int, call: Callable[[], Awaitable[None]]) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return summary(samples)


def bench_alerts(days: list[tuple[str, dict[str, str]]], count: int) -> dict[str, Any]:
    rng = random.Random(12)
    _, last = days[-1]
    codes = sorted(last)
    evaluator = Evaluator()
    per_eur = {"EUR": Decimal(1), **{c: Decimal(v) for c, v in last.items()}}
    for i in range(count):
        base, symbol = rng.sample(["EUR", *codes], 2)
        rate = per_eur[symbol] / per_eur[base]
        payload: dict[str, Any]
        if i % 4:
            near = money.round_significant(rate * Decimal(rng.uniform(0.97, 1.03)), 6)
            payload = {"kind": "threshold", "threshold": money.format_decimal(near)}
        else:
            payload = {"kind": "pct_move", "percent": "0.5", "window_seconds": 86_400}
        evaluator.add(parse_rule({**payload, "base": base, "symbol": symbol}, f"key{i % 100}", None))
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    snapshots = [
        {c: Rate("", RateKind.REFERENCE, c, v, at.date(), at, ("ecb",), False) for c, v in rates.items()}
        for _, rates in days[-30:]
    ]
    evaluator.evaluate(snapshots[0], None, 0, 0.0)
    every, one, fired = [], [], 0
    for i, entries in enumerate(snapshots[1:], 1):
        started = time.perf_counter()
        fired += len(evaluator.evaluate(entries, entries.keys(), i, float(i)))
        every.append(time.perf_counter() - started)
        started = time.perf_counter()
        evaluator.evaluate(entries, ("USD",), i, float(i))
        one.append(time.perf_counter() - started)
    return {
        "rules": count,
        "change_of_every_currency": summary(every),
        "change_of_one_currency": summary(one),
        "events_fired_in_29_fixings": fired,
    }


async def main(ns: argparse.Namespace) -> dict[str, Any]:
    days = history(ns.years)
    out: dict[str, Any] = {"history_days": len(days), "first": days[0][0], "last": days[-1][0]}
    with tempfile.TemporaryDirectory(prefix="kurs-bench-analysis-") as tmp:
        rates = await rates_server.start(
            RatesSettings(address="127.0.0.1:0", database_url=f"sqlite:///{Path(tmp) / 'rates.sqlite3'}")
        )
        try:
            started = time.perf_counter()
            await publish(rates.port, days)
            out["load_s"] = round(time.perf_counter() - started, 1)
            async with gateway(rates.port) as url, httpx.AsyncClient(base_url=url, timeout=120) as client:
                codes = ["EUR", *sorted(days[-1][1])]
                latest = orjson.dumps(
                    [
                        {
                            "amount": f"{i}.25",
                            "from": codes[i % len(codes)],
                            "to": codes[(i * 7) % len(codes)],
                        }
                        for i in range(1, 10_001)
                    ]
                )
                dates = [d for d, _ in days[-250:]]
                dated = orjson.dumps(
                    [
                        {"amount": "100", "from": "USD", "to": "GBP", "date": dates[i % 250]}
                        for i in range(10_000)
                    ]
                )

                async def bulk(body: bytes) -> None:
                    reply = await client.post("/rates/convert/bulk", content=body)
                    if reply.status_code != 200 or reply.content.count(b"\n") != 10_000:
                        raise SystemExit(f"bulk failed: {reply.status_code} {reply.text[:300]}")

                async def historical_rpcs() -> None:  # what the dated bulk asks of rates, alone
                    gate = asyncio.Semaphore(8)

                    async def one(day: str) -> None:
                        async with gate:
                            await stub.GetHistoricalRates(
                                rates_pb2.GetHistoricalRatesRequest(date=day, base="EUR")
                            )

                    await asyncio.gather(*(one(d) for d in dates))

                async with grpc.aio.insecure_channel(f"127.0.0.1:{rates.port}") as channel:
                    stub = rates_pb2_grpc.RatesServiceStub(channel)
                    for _ in range(2):  # alternated, so both see the same machine load
                        out.setdefault("runs", []).append(
                            {
                                "bulk_10000_latest": await timed(ns.runs, lambda: bulk(latest)),
                                "bulk_10000_over_250_dates": await timed(ns.runs, lambda: bulk(dated)),
                                "historical_rpc_250_dates": await timed(ns.runs, historical_rpcs),
                            }
                        )
                end = days[-1][0]
                start = (dt.date.fromisoformat(end) - dt.timedelta(days=364)).isoformat()
                year = f"start_date={start}&end_date={end}&base=USD"
                for name, path in (
                    ("fluctuation_1y_all", f"/analysis/fluctuation?{year}"),
                    ("volatility_1y_all", f"/analysis/volatility?{year}"),
                    ("trend_sma_1y_all", f"/analysis/trend?{year}"),
                    ("trend_ema_1y_all", f"/analysis/trend?{year}&kind=ema"),
                    ("ohlc_1w_1y_all", f"/analysis/ohlc?{year}&interval=1w"),
                    (
                        "forecast_2y_backtest",
                        f"/analysis/forecast?base=EUR&symbol=USD&years=2&end_date={end}",
                    ),
                ):
                    first = time.perf_counter()  # the first answer: computed, not from the cache
                    reply = await client.get(path)
                    if reply.status_code != 200:
                        raise SystemExit(f"{path} failed: {reply.text[:300]}")
                    out[name] = {"uncached_ms": round((time.perf_counter() - first) * 1000, 2)}
        finally:
            await rates.stop(0)
    out["alert_evaluation"] = bench_alerts(days, ns.rules)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args()
    result = asyncio.run(main(ns))
    if ns.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    sys.exit(0)
