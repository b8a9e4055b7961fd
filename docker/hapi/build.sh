#!/usr/bin/env bash
# Build the HAPI FHIR test server launcher (fat jar) once and cache it.
#
#   docker/hapi/build.sh            -> last stdout line = absolute path of the jar
#
# Cache key: sha256 over pom.xml and every file under src/ (path + content), so any change to
# the launcher rebuilds it and an unchanged launcher is never rebuilt. The jar is kept at
#   ${HAPI_CACHE_DIR:-$HOME/.cache/imaging-bridge/hapi}/hapi-launcher-<sha256>.jar
# Maven runs in a temporary copy of this folder (concurrent builds and the work tree never
# collide); later builds are fast because ~/.m2 keeps the dependencies.
# Everything except the final path goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_dir="${HAPI_CACHE_DIR:-$HOME/.cache/imaging-bridge/hapi}"

log() { printf '[hapi-build] %s\n' "$*" >&2; }
die() { printf '[hapi-build] ERROR: %s\n' "$*" >&2; exit 1; }

cd "$here"
[ -f pom.xml ] && [ -d src ] || die "pom.xml or src/ missing in $here"

# Hash "relative-path sha256" lines, sorted bytewise, so the key does not depend on locale or mtime.
key="$( { sha256sum pom.xml; find src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } \
        | sha256sum | cut -d' ' -f1 )"
jar="$cache_dir/hapi-launcher-$key.jar"

if [ -s "$jar" ]; then
  log "cached: $jar"
  printf '%s\n' "$jar"
  exit 0
fi

command -v java >/dev/null 2>&1 || die "java not found (need a JDK 17+)"
command -v mvn  >/dev/null 2>&1 || die "mvn not found (need Maven 3.8+)"
mkdir -p "$cache_dir" || die "cannot create cache dir $cache_dir"

# One build at a time per cache dir; a build that waited may find the jar already there.
exec 9>"$cache_dir/.build.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [ -s "$jar" ]; then
    log "cached (built by a concurrent run): $jar"
    printf '%s\n' "$jar"
    exit 0
  fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/hapi-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R pom.xml src "$work/"

log "building HAPI launcher (key ${key:0:12}...) in $work"
start=$(date +%s)
if ! (cd "$work" && mvn -B -q package -DskipTests >"$work/mvn.log" 2>&1); then
  tail -n 60 "$work/mvn.log" >&2 || true
  die "maven build failed after $(( $(date +%s) - start ))s (see output above)"
fi
built="$work/target/hapi-launcher.jar"
[ -s "$built" ] || die "maven succeeded but $built is missing"

# Copy then rename: a reader never sees a half-written jar.
cp "$built" "$jar.tmp.$$"
mv -f "$jar.tmp.$$" "$jar"
log "built in $(( $(date +%s) - start ))s: $jar"

# The jar is ~300 MB: drop launchers built from older sources.
find "$cache_dir" -maxdepth 1 -name 'hapi-launcher-*.jar' ! -name "$(basename "$jar")" -delete 2>/dev/null || true

printf '%s\n' "$jar"
