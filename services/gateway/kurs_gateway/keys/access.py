"""The gateway's access machinery, built from settings: key store, registry, meter, fronts.

`Access(settings)` builds the parts (nothing connects yet); the app's lifespan calls `start()`
(opens the store, loads the keys, starts the poll and sync tasks) and `stop()` (sends the last
counts, closes everything); `wrap(app)` puts the key guard and the v6 front in front of the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from starlette.types import ASGIApp

from kurs_gateway.guard import Guard
from kurs_gateway.keys import manage
from kurs_gateway.keys.meter import Backend, Limits, LocalBackend, Meter
from kurs_gateway.keys.model import KeyRecord
from kurs_gateway.keys.registry import KeyRegistry, Principal
from kurs_gateway.keys.store import KeyStore, open_store
from kurs_gateway.settings import GatewaySettings
from kurs_gateway.tasks import cancel_all
from kurs_gateway.usage import V6Front


class Access:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.managed = settings.auth == "keys"
        self.store: KeyStore | None = open_store(settings.database_url) if self.managed else None
        backend: Backend
        if settings.redis_url:
            from kurs_gateway.keys.redis_backend import RedisBackend

            backend = RedisBackend(settings.redis_url, settings.redis_prefix)
        else:
            backend = LocalBackend()
        self.meter = Meter(
            backend,
            batch=settings.limit_batch,
            interval=settings.limit_sync_seconds,
            refresh_day=settings.v6_quota_refresh_day,
        )
        self.default_limits = Limits(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
        self.registry: KeyRegistry | None = None
        if self.managed or settings.api_keys:
            self.registry = KeyRegistry(
                self.store,
                settings.api_keys,
                self.default_limits,
                static_scopes=settings.static_key_scopes,
                refresh_seconds=settings.keys_refresh_seconds,
            )
        self._tasks: list[asyncio.Task[None]] = []

    def wrap(self, app: ASGIApp) -> ASGIApp:
        s = self.settings
        links = (s.v6_documentation_url, s.v6_terms_url)
        if self.registry is not None or s.rate_limit_per_second > 0:
            app = Guard(
                app,
                self.registry,
                self.meter,
                ip_rate=s.rate_limit_per_second if self.registry is None else 0.0,
                ip_burst=s.rate_limit_burst,
                failure_rate=s.failed_auth_per_second,
                failure_burst=s.failed_auth_burst,
                v6_plan_quota=s.v6_plan_quota if self.managed else None,
                v6_links=links,
            )
        return V6Front(
            app, s.api_keys, s.v6_inactive_keys, self.meter, s.v6_plan_quota, *links, managed=self.managed
        )

    async def start(self) -> None:
        if self.store is not None and self.registry is not None:
            await self.store.open()
            await self.registry.load()
            self._tasks.append(asyncio.create_task(self.registry.run(), name="keys-refresh"))
        self._tasks.append(asyncio.create_task(self.meter.run(), name="usage-sync"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.meter.flush()
        await self.meter.backend.close()
        if self.store is not None:
            await self.store.close()

    # -- management (the admin API) ------------------------------------------------------------
    def _store(self) -> KeyStore:
        if self.store is None:
            raise RuntimeError("keys are not managed here (KURS_GATEWAY_AUTH=keys)")
        return self.store

    async def create(self, spec: manage.NewKey) -> tuple[KeyRecord, str]:
        record, key = await manage.create(self._store(), spec)
        if self.registry is not None:
            self.registry.apply(record)
        return record, key

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await self._store().revoke(key_id, dt.datetime.now(dt.UTC))
        if record is not None and self.registry is not None:
            self.registry.apply(record)
        return record

    async def records(self) -> list[KeyRecord]:
        return await self._store().all()

    async def record(self, key_id: str) -> KeyRecord | None:
        return await self._store().get(key_id)

    def principal_of(self, record: KeyRecord) -> Principal:
        assert self.registry is not None
        self.registry.apply(record)
        return Principal(record.id, record.id, record.name, record.scopes, self.registry.limits_of(record))
