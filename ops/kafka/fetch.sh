#!/usr/bin/env bash
# Fetches Kafka's broker jars from Maven Central into ops/kafka/.cache/lib (ignored by git),
# once: a stamp file keyed on pom.xml's content marks a complete copy, and a later call then
# does nothing. Maven keeps its own download cache in ~/.m2 as well. Safe to run concurrently.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache="$here/.cache"
lib="$cache/lib"
stamp="$cache/stamp-$(sha256sum "$here/pom.xml" | cut -c1-16)"
complete() { [ -f "$stamp" ] && compgen -G "$lib/kafka_2.13-*.jar" >/dev/null; }
complete && exit 0
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
complete && exit 0  # another caller fetched while this one waited
command -v mvn >/dev/null || { echo "[kafka] mvn not found: apt-get install maven" >&2; exit 1; }
command -v java >/dev/null || { echo "[kafka] java not found: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
echo "[kafka] fetching the broker's jars with Maven into $lib" >&2
started=$(date +%s)
rm -rf "$lib" "$lib.tmp" "$cache"/stamp-*
mkdir -p "$lib.tmp"
mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$lib.tmp" -DincludeScope=runtime 2>&1 |
  sed 's/\x1b\[[0-9;]*m//g' | { grep -v '^[[:space:]]*$' || true; } >&2
compgen -G "$lib.tmp/kafka_2.13-*.jar" >/dev/null || { echo "[kafka] Maven copied no kafka jar" >&2; exit 1; }
mv "$lib.tmp" "$lib"
touch "$stamp"
echo "[kafka] fetched $(find "$lib" -name '*.jar' | wc -l) jars in $(( $(date +%s) - started ))s" >&2
