"""One SQLite file a service keeps open (the embedded rates store, the gateway's key store).

Autocommit (transactions are explicit BEGIN ... COMMIT), WAL (readers never wait for the writer),
a busy timeout (`busy_timeout` seconds, 5 by default, the owning service's setting), and every
pragma's cursor closed: an open statement would pin the connection
to an old snapshot and hide other processes' changes.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite


class SqliteFile:
    """Base of a store on one SQLite file: `await self.connect()` in open(), `self.db` after."""

    PRAGMAS: tuple[str, ...] = ()  # a subclass's own, run after busy_timeout and journal_mode

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        # How long a statement waits for another connection's lock before "database is locked".
        self.busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None

    def not_open(self) -> Exception:
        """What using the store before open() (or after close()) raises."""
        return RuntimeError(f"{self.path} is not open")

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise self.not_open()
        return self._db

    async def connect(self) -> aiosqlite.Connection:
        """Open the file (creating its folder) with the pragmas above; the connection is `self.db`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        busy = f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}"
        for pragma in (busy, "PRAGMA journal_mode=WAL", *self.PRAGMAS):
            async with self._db.execute(pragma) as cursor:
                await cursor.fetchall()
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()
