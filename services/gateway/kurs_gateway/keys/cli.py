"""`python -m kurs_gateway keys create|list|revoke`: key management against the gateway's database.

    keys create --name NAME --scopes read,stream [--owner O] [--quota 1000/day] [--quota 30000/month]
                [--rate 10 --burst 20] [--expires 2027-01-01T00:00:00Z]   (prints the key once)
    keys list [--json]
    keys revoke ID

The database is the gateway's (KURS_GATEWAY_DATABASE_URL, default sqlite:///var/gateway.sqlite3);
running gateways see a change within KURS_GATEWAY_KEYS_REFRESH_SECONDS.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys

from kurs_gateway.keys import manage
from kurs_gateway.keys.model import ID_PATTERN, KeyFieldError, parse_quota
from kurs_gateway.keys.store import open_store
from kurs_gateway.settings import GatewaySettings


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m kurs_gateway keys", description=__doc__.split("\n\n")[0])
    top.add_argument("--database-url", help="overrides KURS_GATEWAY_DATABASE_URL")
    sub = top.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma list of read,stream,bulk,alerts,admin")
    create.add_argument("--owner", default="")
    create.add_argument("--quota", action="append", default=[], help="N/day or N/month (repeatable)")
    create.add_argument("--rate", type=float, help="requests per second (default: the gateway's)")
    create.add_argument("--burst", type=int, help="bucket size (default: the gateway's)")
    create.add_argument("--expires", help="ISO 8601 time with zone, e.g. 2027-01-01T00:00:00Z")
    listing = sub.add_parser("list", help="every key (never the key itself)")
    listing.add_argument("--json", action="store_true")
    revoke = sub.add_parser("revoke", help="revoke a key by its id (kurs_...)")
    revoke.add_argument("id")
    return top


async def run(ns: argparse.Namespace, url: str) -> int:
    store = open_store(url)
    await store.open()
    try:
        if ns.command == "create":
            quotas: dict[str, int] = {}
            for text in ns.quota:
                count, period = parse_quota(text)
                quotas[period] = count
            expires = None
            if ns.expires:
                try:
                    expires = dt.datetime.fromisoformat(ns.expires)
                except ValueError as exc:
                    raise KeyFieldError("expires", "not an ISO 8601 time") from exc
            spec = manage.checked(
                name=ns.name,
                scopes=ns.scopes,
                owner=ns.owner,
                quota_per_day=quotas.get("day"),
                quota_per_month=quotas.get("month"),
                rate_per_second=ns.rate,
                burst=ns.burst,
                expires_at=expires,
            )
            record, key = await manage.create(store, spec)
            print(key)
            print(
                f"created {record.id} ({record.name}; scopes {','.join(sorted(record.scopes))}); "
                "the key is shown only this once",
                file=sys.stderr,
            )
        elif ns.command == "list":
            records = await store.all()
            if ns.json:
                print(json.dumps([r.public() for r in records], indent=2))
            for r in [] if ns.json else records:
                state = (
                    "revoked"
                    if r.revoked_at
                    else ("expired" if not r.active(dt.datetime.now(dt.UTC)) else "active")
                )
                quota = ",".join(
                    f"{n}/{p}" for n, p in ((r.quota_per_day, "day"), (r.quota_per_month, "month")) if n
                )
                print(f"{r.id}\t{state}\t{','.join(sorted(r.scopes))}\t{quota or '-'}\t{r.name}\t{r.owner}")
        else:
            if not ID_PATTERN.match(ns.id):
                raise KeyFieldError("id", "a key id looks like kurs_0123456789ab")
            found = await manage.revoke(store, ns.id)
            if found is None:
                print(f"no key {ns.id}", file=sys.stderr)
                return 1
            print(f"revoked {found.id} at {found.revoked_at:%Y-%m-%dT%H:%M:%SZ}", file=sys.stderr)
    except KeyFieldError as exc:
        print(f"error: {exc.field}: {exc.reason}", file=sys.stderr)
        return 2
    finally:
        await store.close()
    return 0


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    url = ns.database_url or GatewaySettings().database_url
    return asyncio.run(run(ns, url))
