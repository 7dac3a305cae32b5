"""The chaos suite's mesh: rates, validator and gateway through their real entrypoints
(`python -m kurs_<service>`), on a throwaway PostgreSQL cluster and an own redis-server.

Everything listens on 127.0.0.1 on free ports; the machine's PostgreSQL (:5432) and Redis (:6379)
are never touched. PostgreSQL comes from tests/regions/pgcluster (initdb and pg_ctl as the
`postgres` user); Redis keeps nothing on disk, so a killed Redis comes back empty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from regions.pgcluster import PG_BIN, Cluster, free_port, missing_tools, scratch_dir

TOOLS = ("redis-server", "runuser", str(PG_BIN / "initdb"), str(PG_BIN / "pg_ctl"))
RATES_HEALTH = "kurs.rates.v1.RatesService"
VALIDATOR_HEALTH = "kurs.validator.v1.ValidatorService"


def missing() -> list[str]:
    return missing_tools(TOOLS)


def grpc_serving(address: str, service: str, timeout: float = 0.5) -> bool:
    """One health check; False on any failure."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@dataclass
class Process:
    """One service process; its output goes to `log`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)  # seconds from spawn to ready, per start

    def spawn(self) -> float:
        with self.log.open("ab") as out:
            # Its own process group: a kill takes its workers too (the gateway's granian worker
            # outlives a kill -9 of its parent alone and keeps serving the port).
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return time.monotonic()

    def kill(self) -> None:
        """kill -9 of the process and everything it started (as a container kill does); reaped."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self.kill()  # whatever is left of its group

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_until(check: object, what: str, timeout: float, process: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        if process is not None and process.proc is not None and process.proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached in {timeout}s" + (f":\n{process.tail()}" if process else ""))


class ChaosMesh:
    """Own PostgreSQL + Redis, and rates, validator and gateway as separate processes."""

    def __init__(self) -> None:
        self.root = scratch_dir("kurs-chaos-")
        self.ports = {n: free_port() for n in ("pg", "redis", "rates", "validator", "gateway")}
        self.pg = Cluster(self.root / "pg", self.ports["pg"], self.root / "pgsock")
        self.redis: Process | None = None
        self.work = self.root / "work"
        self.work.mkdir()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KURS_", "OTEL_"))}
        addr = {n: f"127.0.0.1:{p}" for n, p in self.ports.items()}
        self.addresses = addr
        self.redis_url = f"redis://{addr['redis']}/0"
        env = {
            **base,
            "KURS_RATES_ADDRESS": addr["rates"],
            "KURS_RATES_DATABASE_URL": self.pg.dsn,
            "KURS_RATES_REDIS_URL": self.redis_url,
            "KURS_RATES_PG_CONNECT_TIMEOUT": "1",
            "KURS_RATES_PG_STATEMENT_TIMEOUT": "2",
            "KURS_RATES_PG_WRITE_TIMEOUT": "5",
            "KURS_VALIDATOR_ADDRESS": addr["validator"],
            "KURS_VALIDATOR_RATES_ADDRESS": addr["rates"],
            "KURS_VALIDATOR_DATABASE_URL": f"sqlite:///{self.work / 'validator.sqlite3'}",
            "KURS_VALIDATOR_FORWARD_TIMEOUT_SECONDS": "5",
            "KURS_GATEWAY_HOST": "127.0.0.1",
            "KURS_GATEWAY_PORT": str(self.ports["gateway"]),
            "KURS_GATEWAY_STREAM_PORT": "",  # the native stream port stays off
            "KURS_GATEWAY_RATES_ADDRESS": addr["rates"],
            "KURS_GATEWAY_VALIDATOR_ADDRESS": addr["validator"],
            "KURS_GATEWAY_COLLECTOR_ADDRESS": f"127.0.0.1:{free_port()}",
            "KURS_GATEWAY_DATABASE_URL": f"sqlite:///{self.work / 'gateway.sqlite3'}",
            # History bodies fresh for 1 s only: reads during an outage reach the route and are
            # answered stale-if-error (kurs_gateway/stale.py) rather than from the fresh cache.
            "KURS_GATEWAY_HISTORY_CACHE_SECONDS": "1",
        }
        self.services = {
            name: Process(
                name, [sys.executable, "-m", f"kurs_{name}"], env, self.work, self.root / f"{name}.log"
            )
            for name in ("rates", "validator", "gateway")
        }

    @property
    def gateway_url(self) -> str:
        return f"http://{self.addresses['gateway']}"

    # -- backends ---------------------------------------------------------------------------
    def start_pg(self) -> None:
        self.pg.start()

    def crash_pg(self) -> None:
        """An immediate stop: every server process exits at once, no checkpoint (crash recovery
        on the next start)."""
        self.pg.stop("immediate")

    def start_redis(self) -> None:
        self.redis = Process(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.ports["redis"]),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.work),
            ],
            dict(os.environ),
            self.work,
            self.root / "redis.log",
        )
        self.redis.spawn()
        wait_until(self._redis_up, "redis-server answering", 10, self.redis)

    def _redis_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ports["redis"]), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    # -- services -----------------------------------------------------------------------------
    def ready(self, name: str) -> bool:
        if name == "rates":
            return grpc_serving(self.addresses["rates"], RATES_HEALTH)
        if name == "validator":
            return grpc_serving(self.addresses["validator"], VALIDATOR_HEALTH)
        return http_ok(f"{self.gateway_url}/readyz")

    def start(self, name: str, timeout: float = 60.0) -> float:
        """Spawn a service and wait until it is ready; returns the seconds it took."""
        service = self.services[name]
        spawned = service.spawn()
        wait_until(lambda: self.ready(name), f"{name} ready", timeout, service)
        took = time.monotonic() - spawned
        service.starts.append(took)
        return took

    def up(self) -> None:
        self.pg.initdb("fsync = off\n")
        self.start_pg()
        self.pg.psql("CREATE DATABASE kurs", db="postgres")
        self.start_redis()
        for name in ("rates", "validator"):
            self.start(name)
        # The gateway is ready once it holds latest rates: the caller feeds some, then starts it.

    def down(self) -> None:
        for service in reversed(self.services.values()):
            service.stop()
        if self.redis is not None:
            self.redis.kill()
        self.pg.stop("immediate")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
