"""The load side of tools/bench_ws.py: lean WebSocket clients in several processes.

Each client process opens its share of connections (raw asyncio protocol: a minimal handshake and
a frame parser, one source address per process so ephemeral ports never run short), reports when
all of them have their snapshot, records when each update arrives, and on `stop` waits for the
last update (or gives up), closes everything and reports. `CEILING_SERVER` is the trivial server
that measures this client's own ceiling.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import os
import re
import resource
import time
from typing import Any

VIEWS = (
    "symbols=USD,GBP&base=EUR",
    "symbols=USD,GBP&base=EUR",
    "symbols=USD,GBP&base=EUR",
    "base=USD",
    "symbols=JPY&base=USD",
)
SEQUENCE = re.compile(rb'"sequence":(\d+)')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# ---------------------------------------------------------------- the load client (one process)


class Client(asyncio.Protocol):
    """One WebSocket client: handshake, then unmasked server frames parsed from a buffer."""

    def __init__(self, shared: Shared, path: bytes) -> None:
        self.shared = shared
        self.path = path
        self.buffer = bytearray()
        self.open = False
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.snapshot = False
        self.transport: Any = None  # uvloop's transport is not an asyncio.Transport
        self.close_code: int | None = None
        self.received: list[int] = []  # the update sequences this client got

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16))
        self.transport.write(
            b"GET " + self.path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                if not self.handshake.done():
                    self.handshake.set_exception(ConnectionError(bytes(self.buffer[:80]).decode("latin-1")))
                return
            del self.buffer[: end + 4]
            self.open = True
        buf = self.buffer
        while len(buf) >= 2:
            opcode, length, start = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + length:
                return
            payload = bytes(buf[start : start + length])
            del buf[: start + length]
            if opcode == 1:
                self.message(payload, now)
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            elif opcode == 9 and self.transport is not None:  # ping -> masked pong
                mask = os.urandom(4)
                masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

    def message(self, payload: bytes, now: float) -> None:
        head = payload[:24]
        if b'"snapshot"' in head:
            if not self.snapshot:
                self.snapshot = True
                if not self.handshake.done():
                    self.handshake.set_result(None)
            else:
                self.shared.resyncs += 1
        elif b'"update"' in head:
            found = SEQUENCE.search(payload)
            if found:
                sequence = int(found.group(1))
                self.received.append(sequence)
                self.shared.seen(sequence, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError(f"closed before the snapshot ({self.close_code})"))
        self.shared.lost += 0 if self.shared.closing else 1


class Shared:
    def __init__(self) -> None:
        self.updates: dict[int, list[float]] = {}  # sequence -> [count, first, last]
        self.resyncs = 0
        self.lost = 0
        self.closing = False

    def seen(self, sequence: int, now: float) -> None:
        entry = self.updates.get(sequence)
        if entry is None:
            self.updates[sequence] = [1, now, now]
        else:
            entry[0] += 1
            entry[1] = min(entry[1], now)
            entry[2] = max(entry[2], now)


def client_process(
    number: int,
    port: int,
    count: int,
    first: int,
    go: Any,
    stop: Any,
    last: Any,
    results: Any,
    in_flight: int,
) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        shared = Shared()
        gate = asyncio.Semaphore(in_flight)
        clients: list[Client] = []
        failures: list[str] = []
        source = f"127.0.1.{number + 1}"

        async def one(index: int) -> None:
            path = f"/ws/rates/stream?{VIEWS[(first + index) % len(VIEWS)]}".encode()
            async with gate:
                for attempt in range(3):
                    client = Client(shared, path)
                    try:
                        await loop.create_connection(
                            lambda c=client: c,  # type: ignore[misc]
                            "127.0.0.1",
                            port,
                            local_addr=(source, 0),
                        )
                        await asyncio.wait_for(client.handshake, 30)
                        clients.append(client)
                        return
                    except (OSError, TimeoutError) as exc:
                        if client.transport is not None:
                            client.transport.abort()
                        if attempt == 2:
                            failures.append(repr(exc)[:120])

        await loop.run_in_executor(None, go.wait)
        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(count)))
        results.put(("connected", number, len(clients), time.monotonic() - started, failures[:3]))
        await loop.run_in_executor(None, stop.wait)
        deadline = time.monotonic() + 15  # let the last update reach every client (or give up)
        while time.monotonic() < deadline and shared.updates.get(last.value, [0])[0] < len(clients):  # noqa: ASYNC110 (a dict filled by callbacks)
            await asyncio.sleep(0.05)
        closed_codes: dict[int, int] = {}
        for client in clients:
            if client.close_code is not None:
                closed_codes[client.close_code] = closed_codes.get(client.close_code, 0) + 1
        shared.closing = True
        for client in clients:
            if client.transport is not None:
                client.transport.close()
        await asyncio.sleep(0.5)
        patterns: dict[tuple[int, ...], int] = {}  # what the clients received, grouped
        for client in clients:
            key = tuple(client.received)
            patterns[key] = patterns.get(key, 0) + 1
        results.put(("done", number, shared.updates, shared.resyncs, shared.lost, closed_codes, patterns))

    asyncio.run(run())


class Load:
    """`procs` client processes holding `clients` WebSocket connections to one port."""

    def __init__(self, port: int, clients: int, procs: int, in_flight: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.go, self.stop, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        self.last = ctx.Value("q", 0)  # the last sequence published
        shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
        firsts = [sum(shares[:i]) for i in range(procs)]
        self.procs = [
            ctx.Process(
                target=client_process,
                args=(i, port, shares[i], firsts[i], self.go, self.stop, self.last, self.results, in_flight),
                daemon=True,
            )
            for i in range(procs)
        ]
        for proc in self.procs:
            proc.start()
        time.sleep(1.0)  # interpreters up before the clock starts

    def connect(self) -> dict[str, Any]:
        started = time.monotonic()
        self.go.set()
        connected, failures = 0, []
        for _ in self.procs:
            _, _, count, _, failed = self.results.get(timeout=600)
            connected += count
            failures += failed
        return {
            "connected": connected,
            "connect_s": round(time.monotonic() - started, 2),
            "failures": failures,
        }

    def finish(self, last: int) -> dict[str, Any]:
        self.last.value = last
        self.stop.set()
        merged: dict[int, list[float]] = {}
        resyncs = lost = 0
        codes: dict[int, int] = {}
        patterns: dict[tuple[int, ...], int] = {}
        for _ in self.procs:
            _, _, updates, r, lo, closed, got = self.results.get(timeout=120)
            for pattern, n in got.items():
                patterns[pattern] = patterns.get(pattern, 0) + n
            resyncs, lost = resyncs + r, lost + lo
            for code, n in closed.items():
                codes[code] = codes.get(code, 0) + n
            for seq, (n, a, b) in updates.items():
                if seq in merged:
                    merged[seq] = [merged[seq][0] + n, min(merged[seq][1], a), max(merged[seq][2], b)]
                else:
                    merged[seq] = [n, a, b]
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        return {
            "updates": merged,
            "patterns": patterns,
            "resyncs": resyncs,
            "dropped": lost,
            "close_codes": codes,
        }


def judge(sent: dict[int, float], load: dict[str, Any], clients: int) -> dict[str, Any]:
    updates = load["updates"]
    received = [int(updates.get(seq, [0])[0]) for seq in sent]
    skews = [(updates[seq][2] - updates[seq][1]) * 1000 for seq in sent if seq in updates]
    lasts = [(updates[seq][2] - at) * 1000 for seq, at in sent.items() if seq in updates]
    # A gateway that is still writing one update when the next changes arrive sends one message
    # for both (the later sequence, every figure that changed): the change is then "merged".
    covered = [sum(n for got, n in load["patterns"].items() if any(r >= seq for r in got)) for seq in sent]
    merged = sum(
        n
        for got, n in load["patterns"].items()
        for seq in sent
        if seq not in got and any(r > seq for r in got)
    )
    return {
        "every_change_to_every_client": all(n == clients for n in covered),
        "changes_merged": merged,
        "every_update_to_every_client": all(n == clients for n in received),
        "min_clients_per_update": min(received, default=0),
        "clients_per_update": received,
        "skew_p50_ms": round(percentile(skews, 50), 1),
        "skew_p99_ms": round(percentile(skews, 99), 1),
        "publish_to_last_client_p99_ms": round(percentile(lasts, 99), 1),
        "resyncs": load["resyncs"],
        "dropped_by_server": load["dropped"],
        "close_codes": load["close_codes"],
    }


# ---------------------------------------------------------------- the client's ceiling


CEILING_SERVER = r"""
import asyncio, base64, hashlib, sys, uvloop
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
peers = set()
def frame(text):
    data = text.encode()
    n = len(data)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
    return head + data
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf, self.ws = t, b"", False
    def data_received(self, d):
        if self.ws: return
        self.buf += d
        if b"\r\n\r\n" not in self.buf: return
        head = self.buf.decode("latin-1")
        if head.startswith("GET /publish"):
            seq = int(head.split("seq=")[1].split(" ")[0])
            body = frame('{"type":"update","sequence":%d,"rates":{"USD":"1.1"}}' % seq)
            for p in list(peers): p.write(body)
            self.t.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"); self.t.close(); return
        key = [l.split(":", 1)[1].strip() for l in head.split("\r\n")
               if l.lower().startswith("sec-websocket-key")][0]
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        self.t.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.t.write(frame('{"type":"snapshot","sequence":1,"base":"EUR","date":"2026-12-02","rates":{"USD":"1"}}'))
        self.ws = True
        peers.add(self.t)
    def connection_lost(self, e): peers.discard(self.t)
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    await server.serve_forever()
uvloop.run(main())
"""
