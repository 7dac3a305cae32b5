#!/usr/bin/env bash
# wrk (HTTP load generator) from Debian packages, for `make bench`.
set -euo pipefail
if ! command -v wrk >/dev/null; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
fi
wrk --version 2>&1 | head -n1 || true
