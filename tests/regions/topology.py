"""Regions on one machine: Linux network namespaces on a bridge, and the processes inside them.

    root namespace: bridge <br> 10.N.M.1/24, HAProxy for the gateways, the test's clients
      ├─ veth ─ namespace <ns>a  region A  10.N.M.10  etcd, Patroni+PostgreSQL, HAProxy(db), rates, gateway
      ├─ veth ─ namespace <ns>b  region B  10.N.M.20  the same
      └─ veth ─ namespace <ns>w  witness   10.N.M.30  etcd only (the third vote of the quorum)

Cutting a region takes its veth down in the root namespace: it can no longer reach anyone
(the bridge is the only way out) and nobody reaches it. `kill_region` then SIGKILLs every
process inside its namespace (`ip netns pids`: only what this harness started there).
Everything is torn down by `Topology.close`, which the fixture calls even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def _free_subnet() -> str:
    """A /24 under 10.200-250.x.0 that no interface of this machine uses (the first three octets)."""
    used = ip("-4", "-o", "addr")
    for _ in range(100):
        prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        if f" {prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 subnet found")


@dataclass
class Region:
    name: str  # "a", "b", "w"
    netns: str
    veth_root: str
    veth_inner: str
    address: str


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {self.name}| {line}" for line in text[-lines:])


@dataclass
class Topology:
    root: Path  # scratch directory (logs, data dirs, configs)
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000:04d}")
    subnet: str = ""
    bridge: str = ""
    regions: dict[str, Region] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    # -- network -------------------------------------------------------------------------
    def build(self, names: Sequence[str] = ("a", "b", "w")) -> None:
        self.subnet = _free_subnet()
        self.bridge = f"kbr{self.tag}"
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway_ip}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, name in enumerate(names):
            region = Region(
                name,
                f"kurs{self.tag}{name}",
                f"kv{self.tag}{name}",
                f"kp{self.tag}{name}",
                f"{self.subnet}.{10 * (i + 1)}",
            )
            self.regions[name] = region
            ip("netns", "add", region.netns)
            ip("-n", region.netns, "link", "set", "lo", "up")
            ip(
                "link",
                "add",
                region.veth_root,
                "type",
                "veth",
                "peer",
                "name",
                region.veth_inner,
                "netns",
                region.netns,
            )
            ip("link", "set", region.veth_root, "master", self.bridge, "up")
            ip("-n", region.netns, "addr", "add", f"{region.address}/24", "dev", region.veth_inner)
            ip("-n", region.netns, "link", "set", region.veth_inner, "up")

    @property
    def gateway_ip(self) -> str:
        return f"{self.subnet}.1"

    def cut(self, name: str) -> None:
        ip("link", "set", self.regions[name].veth_root, "down")

    def heal(self, name: str) -> None:
        ip("link", "set", self.regions[name].veth_root, "up")

    def kill_region(self, name: str) -> int:
        """SIGKILL every process in the region's namespace; return how many were killed."""
        pids = [int(p) for p in ip("netns", "pids", self.regions[name].netns, check=False).split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            if proc.popen.pid in pids:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=5)
        return len(pids)

    # -- processes -----------------------------------------------------------------------
    def spawn(
        self,
        name: str,
        region: str | None,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        """Start `args` inside the region's namespace (None: the root namespace), logging to a file."""
        command = list(args)
        if user:
            command = ["runuser", "-u", user, "--", *command]
        if region is not None:
            command = ["ip", "netns", "exec", self.regions[region].netns, *command]
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd or self.root,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def close(self) -> None:
        """Kill every process started here and in the namespaces; delete namespaces and bridge."""
        for name in self.regions:
            with contextlib.suppress(RuntimeError, ValueError):
                self.kill_region(name)
        for proc in self.procs:
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=5)
        for region in self.regions.values():
            ip("netns", "del", region.netns, check=False)
        if self.bridge:
            ip("link", "del", self.bridge, check=False)


def wait_http(url: str, timeout: float, what: str, status: int = 200) -> float:
    """Poll `url` until it answers `status`; return the seconds it took."""
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout:
        try:
            reply = httpx.get(url, timeout=1.0, trust_env=False)
            if reply.status_code == status:
                return time.monotonic() - started
            last = f"{reply.status_code} {reply.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{what}: {url} did not answer {status} within {timeout}s (last: {last})")
