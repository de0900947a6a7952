#!/usr/bin/env bash
# Fetches Kafka's jars once into ops/kafka/.cache/lib (ignored by git); does nothing when the
# cache is complete. Maven keeps its own download cache in ~/.m2 as well.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib="$here/.cache/lib"
stamp="$here/.cache/stamp-$(sha256sum "$here/pom.xml" | cut -c1-16)"
[ -f "$stamp" ] && exit 0
echo "[kafka] fetching the broker's jars with Maven" >&2
rm -rf "$lib"
mkdir -p "$lib"
mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib" -DincludeScope=runtime >&2
ls "$lib"/kafka_2.13-*.jar >/dev/null
touch "$stamp"
