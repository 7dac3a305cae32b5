#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 (ports from KURS_TEST_PG_PORT / KURS_TEST_REDIS_PORT,
# defaults 5432 / 6379). Starts them when stopped; installs them from Debian packages when missing.
set -euo pipefail
PG_PORT=${KURS_TEST_PG_PORT:-5432}
REDIS_PORT=${KURS_TEST_REDIS_PORT:-6379}

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() { for _ in $(seq 1 60); do up "$1" && return 0; sleep 0.5; done; echo "port $1 did not open" >&2; return 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! up "$PG_PORT"; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing PostgreSQL from Debian packages"
    apt_install postgresql
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  echo "starting PostgreSQL $ver"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_up "$PG_PORT"
fi
# Trust auth on loopback is what the machine ships; make sure the role and database the tests use exist.
if command -v psql >/dev/null; then
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc "select 1" >/dev/null 2>&1 \
    || as_root su postgres -c "psql -p $PG_PORT -Atc \"select 1\"" >/dev/null
fi

if ! up "$REDIS_PORT"; then
  if ! command -v redis-server >/dev/null; then
    echo "installing Redis from Debian packages"
    apt_install redis-server
  fi
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up "$REDIS_PORT"
fi
echo "PostgreSQL on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up"
