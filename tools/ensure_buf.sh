#!/usr/bin/env bash
# The buf CLI (protobuf lint and breaking-change check), pinned in tools/buf/package-lock.json and
# installed from the npm registry into tools/buf/node_modules, for `make lint`. Node.js and npm come
# from Debian packages when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$here/buf"
if ! command -v npm >/dev/null; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
fi
want="$(node -p "require('$dir/package.json').devDependencies['@bufbuild/buf']")"
have="$("$dir/node_modules/.bin/buf" --version 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
