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
# shellcheck source=tools/apt_install.sh
source "$(dirname "$0")/apt_install.sh"
apt_install "${missing[@]}"
echo "regions dependencies present (patroni, etcd, haproxy, pgbackrest, iproute2, postgresql-15)"
