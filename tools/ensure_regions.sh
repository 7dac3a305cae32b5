#!/usr/bin/env bash
# Install what the regions tests (tests/regions: restore drill, two-region failover) need from
# Debian when missing: Patroni (+ its etcd client), etcd, HAProxy, pgBackRest, iproute2 and the
# PostgreSQL 15 server binaries. Idempotent; a no-op (one dpkg query per package) when present.
# Services the packages ship are not used: the tests start their own processes on their own
# data dirs, ports and network namespaces.
set -euo pipefail
missing=()
for pkg in patroni python3-etcd etcd-server etcd-client haproxy pgbackrest iproute2 postgresql-15; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "regions dependencies present (patroni, etcd, haproxy, pgbackrest, iproute2, postgresql-15)"
