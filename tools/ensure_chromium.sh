#!/usr/bin/env bash
# Headless Chromium from Debian packages, for the dashboard's browser test (tests/e2e/test_dashboard.py).
# Also a font, so the screenshot shows text on a machine without any.
set -euo pipefail
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi dejavu; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core fontconfig >/dev/null
fi
chromium --version
