"""The shared side of the meter: one Lua script adds a batch of counts and spends tokens in Redis.

Keys (under the gateway's prefix): `u:<client>:d:<day>` and `u:<client>:m:<period start>`,
hashes of counts per route class plus `_total` (kept 8 and 40 days); `b:<client>`, the shared
token bucket (`tokens`, `ts` in Redis's own clock), dropped once it would be full again. A client
is a key's id (or a digest of a static or v6 key), never a key itself. One script call per
batch: one round trip however many clients it carries.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from kurs_gateway.keys.meter import Report, Totals

DAY_TTL = 8 * 86_400
MONTH_TTL = 40 * 86_400

APPLY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
local a = 1
for i = 1, #KEYS, 3 do
  local nc = tonumber(ARGV[a]); a = a + 1
  for j = 1, nc do
    local klass = ARGV[a]; local n = tonumber(ARGV[a + 1]); a = a + 2
    redis.call('HINCRBY', KEYS[i], klass, n)
    redis.call('HINCRBY', KEYS[i], '_total', n)
    redis.call('HINCRBY', KEYS[i + 1], klass, n)
    redis.call('HINCRBY', KEYS[i + 1], '_total', n)
  end
  local spent = tonumber(ARGV[a]); local rate = tonumber(ARGV[a + 1]); local burst = tonumber(ARGV[a + 2])
  local day_ttl = tonumber(ARGV[a + 3]); local month_ttl = tonumber(ARGV[a + 4]); a = a + 5
  if nc > 0 then
    redis.call('EXPIRE', KEYS[i], day_ttl)
    redis.call('EXPIRE', KEYS[i + 1], month_ttl)
  end
  local day_total = tonumber(redis.call('HGET', KEYS[i], '_total') or '0')
  local month_total = tonumber(redis.call('HGET', KEYS[i + 1], '_total') or '0')
  local tokens = ''
  if rate > 0 then
    local b = redis.call('HMGET', KEYS[i + 2], 'tokens', 'ts')
    local level = tonumber(b[1]); local ts = tonumber(b[2])
    if level == nil or ts == nil then level = burst; ts = now end
    level = math.min(burst, level + math.max(0, now - ts) * rate) - spent
    if level < -burst then level = -burst end
    redis.call('HSET', KEYS[i + 2], 'tokens', tostring(level), 'ts', tostring(now))
    redis.call('EXPIRE', KEYS[i + 2], math.ceil((burst - level) / rate) + 60)
    tokens = tostring(level)
  end
  table.insert(out, day_total)
  table.insert(out, month_total)
  table.insert(out, tokens)
end
return out
"""


class RedisBackend:
    shared = True

    def __init__(self, url: str, prefix: str, timeout: float = 2.0) -> None:
        self.prefix = prefix
        self.client: aioredis.Redis = aioredis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script: Any = self.client.register_script(APPLY)

    def _keys(self, client: str, day: str, month: str) -> list[str]:
        p = self.prefix
        return [f"{p}u:{client}:d:{day}", f"{p}u:{client}:m:{month}", f"{p}b:{client}"]

    async def apply(self, reports: list[Report]) -> list[Totals]:
        keys: list[str] = []
        args: list[Any] = []
        for r in reports:
            keys += self._keys(r.client, r.day, r.month)
            args.append(len(r.counts))
            for klass, n in r.counts.items():
                args += [klass, n]
            args += [r.spent, repr(float(r.rate)), r.burst, DAY_TTL, MONTH_TTL]
        raw = await self._script(keys=keys, args=args)
        out = []
        for i in range(0, len(raw), 3):
            tokens = raw[i + 2]
            text = tokens.decode() if isinstance(tokens, bytes) else str(tokens)
            out.append(Totals(int(raw[i]), int(raw[i + 1]), float(text) if text else None))
        return out

    async def read(self, client: str, day: str, month: str) -> tuple[dict[str, int], dict[str, int]]:
        day_key, month_key, _ = self._keys(client, day, month)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(day_key)
            pipe.hgetall(month_key)
            day_raw, month_raw = await pipe.execute()

        def decode(raw: dict[bytes, bytes]) -> dict[str, int]:
            return {k.decode(): int(v) for k, v in raw.items()}

        return decode(day_raw), decode(month_raw)

    async def close(self) -> None:
        await self.client.aclose()
