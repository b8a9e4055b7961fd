#!/usr/bin/env bash
# Install newman (npm, pinned by package-lock.json) into docker/postman/node_modules, the
# runner of the Postman collection in CI; idempotent. Prints the path of the newman binary.
# node_modules is never committed (git ignores it).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$HERE/node_modules/.bin/newman"
WANT="$(sed -n 's/.*"newman": "\(.*\)".*/\1/p' "$HERE/package.json" | head -1)"
if [[ -x "$BIN" ]] && [[ "$("$BIN" --version 2>/dev/null)" == "$WANT" ]]; then
  echo "$BIN"
  exit 0
fi
command -v npm >/dev/null || { echo "npm is needed to install newman (apt-get install npm)" >&2; exit 1; }
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
[[ -x "$BIN" ]] || { echo "npm ci did not install newman" >&2; exit 1; }
echo "$BIN"
