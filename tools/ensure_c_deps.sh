#!/usr/bin/env bash
# Install what the C client (clients/c) needs from Debian when missing: a compiler, make,
# libcurl (OpenSSL flavour) and cJSON headers, and valgrind for its tests.
set -euo pipefail
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
dpkg -s libcjson-dev >/dev/null 2>&1 || missing+=(libcjson-dev)
dpkg -s pkg-config >/dev/null 2>&1 || true
# shellcheck source=tools/apt_install.sh
source "$(dirname "$0")/apt_install.sh"
apt_install "${missing[@]}"
echo "C client dependencies present"
