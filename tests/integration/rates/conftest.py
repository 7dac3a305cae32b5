"""Fixtures for the rates service against the real PostgreSQL and Redis.

Servers: KURS_TEST_PG_DSN (default postgresql://postgres@127.0.0.1:5432/postgres) and
KURS_TEST_REDIS_URL (default redis://127.0.0.1:6379/0); `bash tools/ensure_services.sh` starts
them. A missing server fails the test with that hint (never a silent skip).

Isolation: every test gets its own database (CREATE DATABASE kurs_test_<random>, dropped after)
and its own Redis key prefix (deleted after). Outages are simulated with TcpProxy: the service
talks to a proxy on a loopback port the test owns, and the test cuts and restores it; the shared
servers are never stopped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from kurs_rates import server
from kurs_rates.model import Rate
from kurs_rates.settings import RatesSettings
from support.ecb_history import read_ecb_history
from support.rates_replicas import Replica

PG_DSN = os.environ.get("KURS_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KURS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T = TypeVar("T")
HINT = (
    "start the servers with `bash tools/ensure_services.sh` (or set KURS_TEST_PG_DSN / KURS_TEST_REDIS_URL)"
)


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def with_address(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@{host}:{port}" if auth else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def address_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (
        5432 if parts.scheme.startswith("postgres") else 6379
    )


@pytest.fixture(scope="session")
def ecb_history_rows() -> list[Rate]:
    return read_ecb_history()


def run_in_fresh_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private event loop in a worker thread.

    Lets sync fixtures (usable through request.getfixturevalue from async fixtures) do async setup.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(sql: str) -> None:
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise ServerMissing(f"PostgreSQL is not reachable at {PG_DSN}: {exc!r}; {HINT}") from exc
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class ServerMissing(Exception):
    pass


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards."""
    name = f"kurs_test_{secrets.token_hex(6)}"
    try:
        run_in_fresh_loop(_admin(f'CREATE DATABASE "{name}"'))
    except ServerMissing as exc:
        pytest.fail(str(exc))
    try:
        yield with_database(PG_DSN, name)
    finally:
        run_in_fresh_loop(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        await client.aclose()
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc!r}; {HINT}")
    prefix = f"kurs:test:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class TcpProxy:
    """A loopback TCP forwarder whose link the test can cut (close everything, refuse) and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def cut(self) -> None:
        """Stop listening and drop every open connection (the server looks dead)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()


@pytest.fixture
async def pg_proxy(pg_dsn: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """(proxy, dsn through the proxy) in front of this test's database."""
    proxy = TcpProxy(*address_of(pg_dsn))
    await proxy.start()
    try:
        yield proxy, with_address(pg_dsn, "127.0.0.1", proxy.port)
    finally:
        await proxy.close()


@pytest.fixture
async def redis_proxy(redis_prefix: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """(proxy, redis URL through the proxy)."""
    proxy = TcpProxy(*address_of(REDIS_URL))
    await proxy.start()
    try:
        yield proxy, with_address(REDIS_URL, "127.0.0.1", proxy.port)
    finally:
        await proxy.close()


@pytest.fixture
async def replicas() -> AsyncIterator[Callable[..., Awaitable[Replica]]]:
    """start(database_url, redis_url, redis_prefix, **settings) starts a rates service; all are
    stopped after the test, newest first."""
    started: list[Replica] = []

    async def start(
        database_url: str, redis_url: str = "", redis_prefix: str = "kurs:rates:", **extra: Any
    ) -> Replica:
        settings = RatesSettings(
            address="127.0.0.1:0",
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            pg_connect_timeout=1.0,
            pg_statement_timeout=2.0,
            **extra,
        )
        replica = Replica(await server.start(settings))
        started.append(replica)
        return replica

    yield start
    for replica in reversed(started):
        await replica.close()


@pytest.fixture
async def redis_split(
    pg_dsn: str,
    redis_prefix: str,
    redis_proxy: tuple[TcpProxy, str],
    replicas: Callable[..., Awaitable[Replica]],
) -> tuple[TcpProxy, Replica, Replica]:
    """(proxy, A, B): two replicas on this test's database and Redis prefix; A reaches Redis
    through the proxy (which the test cuts), B directly."""
    proxy, proxied_url = redis_proxy
    a = await replicas(pg_dsn, proxied_url, redis_prefix)
    b = await replicas(pg_dsn, REDIS_URL, redis_prefix)
    return proxy, a, b
