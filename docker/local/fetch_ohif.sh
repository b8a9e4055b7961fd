#!/usr/bin/env bash
# Fetch the built OHIF viewer (npm @ohif/app, its dist/) into the user cache; idempotent.
# Prints the dist path (set it as smart.ohif_dist_dir; the bridge also looks there itself).
# The viewer is never committed: it is 50 MB of third-party build output (MIT licence).
set -euo pipefail
VERSION="${OHIF_VERSION:-3.13.2}"
CACHE="${BRIDGE_CACHE_DIR:-$HOME/.cache/imaging-bridge}/ohif/$VERSION"
DIST="$CACHE/package/dist"
if [[ -f "$DIST/index.html" && -f "$DIST/app-config.js" ]]; then
  echo "$DIST"
  exit 0
fi
command -v npm >/dev/null || { echo "npm is needed to fetch OHIF (apt-get install npm)" >&2; exit 1; }
mkdir -p "$CACHE"
cd "$CACHE"
TARBALL="ohif-app-$VERSION.tgz"
if [[ ! -s "$TARBALL" ]]; then
  npm pack --silent "@ohif/app@$VERSION" >/dev/null
fi
rm -rf package.tmp && mkdir package.tmp
tar -xzf "$TARBALL" -C package.tmp
[[ -f package.tmp/package/dist/index.html ]] || { echo "no dist/ in $TARBALL" >&2; exit 1; }
rm -rf package && mv package.tmp/package package && rmdir package.tmp
echo "$DIST"
