#!/usr/bin/env bash
# A single-node KRaft broker on 127.0.0.1 for tests and local runs.
#   broker.sh start DIR PORT   format DIR on first use, start, wait until it answers
#   broker.sh stop DIR         stop cleanly (TERM, then KILL after 30 s)
#   broker.sh kill DIR         SIGKILL at once (fault tests)
#   broker.sh status DIR
# The controller listens on PORT+1. Data, logs and the pid live in DIR; a restart on the same
# DIR keeps the data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
case "$cmd" in
  start)
    port=${3:?PORT missing}
    bash "$kafka_here/fetch.sh"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ ! -f "$dir/server.properties" ]; then
      node_write_config "$dir" 1 "$port" $((port + 1)) "1@127.0.0.1:$((port + 1))" 1
    fi
    node_format "$dir" "$(cat "$dir/cluster-id" 2>/dev/null || new_cluster_id | tee "$dir/cluster-id")"
    started=$(date +%s%N)
    node_start "$dir"
    node_wait_ready "$dir"
    log "broker ready on 127.0.0.1:$port in $(( ($(date +%s%N) - started) / 1000000 )) ms" ;;
  stop) node_stop "$dir" TERM ;;
  kill) node_stop "$dir" KILL ;;
  status)
    if pid=$(node_pid "$dir"); then echo "running (pid $pid, port $(cat "$dir/port"))"; else echo "stopped"; exit 3; fi ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
