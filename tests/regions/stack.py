"""The Kurs stack of the failover drill, started piece by piece inside a `Topology`.

etcd (three members: regions A, B and the witness W), Patroni managing PostgreSQL 15 in A and B,
HAProxy per region in front of the Patroni leader (REST check GET /primary) as the services'
database, the rates and gateway services through their real entrypoints (`python -m kurs_rates`,
`python -m kurs_gateway`), and HAProxy in the root namespace in front of both gateways.
Configurations are rendered from deploy/regions/*.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .pgcluster import PG_BIN, PG_USER, make_dir, render
from .topology import Proc, Topology, wait_http

PASSWORD = "kurs-drill"  # PostgreSQL md5 auth inside the drill's private subnet
PG_PORT = 5433  # not 5432: nothing may ever be confused with the machine's own cluster
DB_PROXY = "127.0.0.1:5000"  # each region's HAProxy to the leader, inside the namespace
RATES_PORT = 50051
GATEWAY_PORT = 8000
BALANCER_PORT = 8080


@dataclass(frozen=True)
class Timing:
    """Patroni's leader TTL and loop, HAProxy's check interval."""

    ttl: int = 10
    loop_wait: int = 1
    retry_timeout: int = 3
    check_interval: str = "500ms"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any KURS_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURS_")}
    env.update(extra)
    return env


class Stack:
    def __init__(self, topo: Topology, timing: Timing = Timing()) -> None:
        self.topo = topo
        self.timing = timing
        self.etcd: dict[str, Proc] = {}
        self.patroni: dict[str, Proc] = {}

    def addr(self, region: str) -> str:
        return self.topo.regions[region].address

    # -- etcd ----------------------------------------------------------------------------
    def start_etcd(self, region: str, members: tuple[str, ...] = ("a", "b", "w")) -> Proc:
        address = self.addr(region)
        cluster = ",".join(f"{m}=http://{self.addr(m)}:2380" for m in members)
        data = self.topo.root / f"etcd-{region}"
        proc = self.topo.spawn(
            f"etcd-{region}",
            region,
            [
                "etcd",
                "--name",
                region,
                "--data-dir",
                str(data),
                "--listen-peer-urls",
                f"http://{address}:2380",
                "--initial-advertise-peer-urls",
                f"http://{address}:2380",
                "--listen-client-urls",
                f"http://{address}:2379,http://127.0.0.1:2379",
                "--advertise-client-urls",
                f"http://{address}:2379",
                "--initial-cluster",
                cluster,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                f"kurs-{self.topo.tag}",
                "--heartbeat-interval",
                "100",
                "--election-timeout",
                "1000",
                "--log-level",
                "warn",
            ],
            env=clean_env(),
        )
        self.etcd[region] = proc
        return proc

    def wait_etcd(self, timeout: float = 30.0) -> None:
        for region in self.etcd:
            wait_http(f"http://{self.addr(region)}:2379/health", timeout, f"etcd {region}")

    # -- Patroni + PostgreSQL ------------------------------------------------------------
    def start_patroni(self, region: str) -> Proc:
        home = make_dir(self.topo.root / f"pg-{region}", 0o755)
        config = render(
            "patroni.yml",
            home / "patroni.yml",
            name=f"pg-{region}",
            region=region,
            address=self.addr(region),
            etcd_hosts=",".join(f"{self.addr(m)}:2379" for m in self.etcd),
            ttl=self.timing.ttl,
            loop_wait=self.timing.loop_wait,
            retry_timeout=self.timing.retry_timeout,
            pg_port=PG_PORT,
            data_dir=home / "data",
            bin_dir=PG_BIN,
            pgpass=home / "pgpass",
            password=PASSWORD,
            subnet=f"{self.topo.subnet}.0/24",
            socket_dir=home,
        )
        proc = self.topo.spawn(
            f"patroni-{region}", region, ["patroni", str(config)], env=clean_env(), user=PG_USER
        )
        self.patroni[region] = proc
        return proc

    def patroni_url(self, region: str, path: str) -> str:
        return f"http://{self.addr(region)}:8008{path}"

    def dsn(self, region: str, db: str = "kurs") -> str:
        return f"postgresql://postgres:{PASSWORD}@{self.addr(region)}:{PG_PORT}/{db}"

    def psql(self, region: str, sql: str, db: str = "kurs") -> str:
        proc = subprocess.run(
            [str(PG_BIN / "psql"), self.dsn(region, db), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql on {region}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    # -- HAProxy -------------------------------------------------------------------------
    def start_db_proxy(self, region: str, members: tuple[str, ...] = ("a", "b")) -> Proc:
        servers = "\n".join(f"    server pg-{m} {self.addr(m)}:{PG_PORT} check port 8008" for m in members)
        config = render(
            "haproxy-db.cfg",
            self.topo.root / f"haproxy-db-{region}.cfg",
            listen=DB_PROXY,
            check_interval=self.timing.check_interval,
            servers=servers,
        )
        return self.topo.spawn(f"haproxy-db-{region}", region, ["haproxy", "-db", "-f", str(config)])

    def start_balancer(self, regions: tuple[str, ...] = ("a", "b")) -> Proc:
        servers = "\n".join(f"    server gw-{r} {self.addr(r)}:{GATEWAY_PORT} check" for r in regions)
        config = render(
            "haproxy-gateways.cfg",
            self.topo.root / "haproxy-gateways.cfg",
            listen=f"{self.topo.gateway_ip}:{BALANCER_PORT}",
            check_interval=self.timing.check_interval,
            servers=servers,
        )
        return self.topo.spawn("haproxy-gateways", None, ["haproxy", "-db", "-f", str(config)])

    @property
    def balancer_url(self) -> str:
        return f"http://{self.topo.gateway_ip}:{BALANCER_PORT}"

    # -- Kurs services -------------------------------------------------------------------
    def start_rates(self, region: str) -> Proc:
        env = clean_env(
            KURS_RATES_ADDRESS=f"0.0.0.0:{RATES_PORT}",
            KURS_RATES_DATABASE_URL=f"postgresql://postgres:{PASSWORD}@{DB_PROXY}/kurs",
            KURS_RATES_PG_CONNECT_TIMEOUT="1.0",
            KURS_RATES_PG_STATEMENT_TIMEOUT="3.0",
            KURS_RATES_PG_WRITE_TIMEOUT="3.0",
            KURS_RATES_SHUTDOWN_GRACE_SECONDS="1",
        )
        return self.topo.spawn(f"rates-{region}", region, [sys.executable, "-m", "kurs_rates"], env=env)

    def start_gateway(self, region: str) -> Proc:
        home = make_dir(self.topo.root / f"gateway-{region}", 0o755)
        env = clean_env(
            KURS_GATEWAY_HOST="0.0.0.0",
            KURS_GATEWAY_PORT=str(GATEWAY_PORT),
            KURS_GATEWAY_RATES_ADDRESS=f"127.0.0.1:{RATES_PORT}",
            KURS_GATEWAY_COLLECTOR_ADDRESS="127.0.0.1:50053",
            KURS_GATEWAY_VALIDATOR_ADDRESS="127.0.0.1:50052",
            KURS_GATEWAY_DATABASE_URL=f"sqlite:///{Path(home) / 'gateway.sqlite3'}",
            KURS_GATEWAY_UPSTREAM_TIMEOUT_SECONDS="2.0",
            KURS_GATEWAY_STREAM_GRACE_SECONDS="3.0",
            KURS_GATEWAY_HEARTBEAT_SECONDS="1.0",
        )
        return self.topo.spawn(f"gateway-{region}", region, [sys.executable, "-m", "kurs_gateway"], env=env)

    def rates_target(self, region: str) -> str:
        return f"{self.addr(region)}:{RATES_PORT}"
