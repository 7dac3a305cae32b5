"""Throwaway PostgreSQL 15 clusters for the regions drills: own data dir, own port, own socket.

PostgreSQL refuses to run as root, so every server-side command (initdb, pg_ctl, pgbackrest)
runs as the Debian `postgres` user through `runuser`. The machine's own cluster on :5432 is
never touched: each cluster here lives under a scratch directory created by `scratch_dir`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = REPO_ROOT / "deploy" / "regions"
PG_USER = "postgres"

# A checksum per (table, source, day): row count and an md5 over the rows' full text, in a
# stable order. Equal figures here mean equal rows, column for column.
CHECKSUM_SQL = """
SELECT 'reference' AS tbl, source, day::text AS day, count(*) AS n,
       md5(string_agg(r::text, '|' ORDER BY r::text)) AS digest
FROM reference_rates r GROUP BY source, day
UNION ALL
SELECT 'live', source, day::text, count(*), md5(string_agg(r::text, '|' ORDER BY r::text))
FROM live_rates r GROUP BY source, day
UNION ALL
SELECT 'observations', source, day::text, count(*), md5(string_agg(r::text, '|' ORDER BY r::text))
FROM rate_observations r GROUP BY source, day
ORDER BY 1, 2, 3
"""

Checksums = dict[tuple[str, str, str], tuple[int, str]]


def missing_tools(names: Sequence[str]) -> list[str]:
    """Which of `names` (commands, or absolute paths) are absent."""
    return [n for n in names if not (Path(n).exists() if n.startswith("/") else shutil.which(n))]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def scratch_dir(prefix: str) -> Path:
    """A directory under /tmp owned by postgres (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    chown_postgres(path)
    path.chmod(0o755)
    return path


def chown_postgres(path: Path) -> None:
    entry = pwd.getpwnam(PG_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def make_dir(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    chown_postgres(path)
    path.chmod(mode)
    return path


def as_postgres(args: Sequence[str], *, timeout: float = 60.0, check: bool = True) -> str:
    """Run `args` as the postgres user; return stdout; raise with stderr on failure."""
    proc = subprocess.run(
        ["runuser", "-u", PG_USER, "--", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/tmp",
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def render(template: str, target: Path, **values: object) -> Path:
    """deploy/regions/<template> with ${name} substituted -> target (owned by postgres)."""
    text = string.Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(
        {k: str(v) for k, v in values.items()}
    )
    target.write_text(text, encoding="utf-8")
    chown_postgres(target)
    return target


@dataclass
class Cluster:
    """One PostgreSQL 15 cluster in `data`, listening on 127.0.0.1:`port`, socket in `socket_dir`."""

    data: Path
    port: int
    socket_dir: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/kurs"

    def initdb(self, extra_conf: str = "") -> None:
        make_dir(self.data)
        make_dir(self.socket_dir, 0o755)
        as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8"],
            timeout=120,
        )
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# kurs regions drill\n"
                "listen_addresses = '127.0.0.1'\n"
                "fsync = on\nsynchronous_commit = on\n"
                "wal_level = replica\nmax_wal_senders = 5\n"
                "shared_buffers = 32MB\nmax_connections = 40\n" + extra_conf
            )

    def start(self, timeout: float = 60.0) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.socket_dir / "server.log"),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            timeout=timeout + 10,
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                timeout=60,
                check=False,
            )

    def psql(self, sql: str, db: str = "kurs") -> str:
        return as_postgres(
            [
                str(PG_BIN / "psql"),
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-d",
                db,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ]
        ).strip()

    def wait_promoted(self, timeout: float = 60.0) -> None:
        """Until the server answers and is out of recovery (a point-in-time restore finished)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self.psql("SELECT pg_is_in_recovery()")
                if last == "f":
                    return
            except RuntimeError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise TimeoutError(f"cluster {self.data} still in recovery after {timeout}s: {last}")

    def checksums(self) -> Checksums:
        out: Checksums = {}
        for line in self.psql(CHECKSUM_SQL).splitlines():
            table, source, day, count, digest = line.split("|")
            out[(table, source, day)] = (int(count), digest)
        return out
