#!/usr/bin/env bash
# A single-node KRaft Kafka (broker and controller in one process, node.id 1) on 127.0.0.1.
#   broker.sh start DIR PORT   fetch the jars if needed, format DIR on first use, start, and
#                              wait (60 s, KAFKA_START_TIMEOUT) until it answers on PORT
#   broker.sh stop DIR         stop cleanly (SIGTERM; SIGKILL after 30 s)
#   broker.sh kill DIR         SIGKILL at once (fault tests)
#   broker.sh status DIR       prints running/stopped; exit 0 if running, 3 if not
# The controller listens on PORT+1. Data, logs (DIR/server.log) and the pid live in DIR; a
# start on a DIR used before keeps its data. start and stop are safe to repeat.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then usage; fi
case "$cmd" in
  start)
    port=${3:-}
    [[ $port =~ ^[0-9]+$ ]] || usage
    kafka_fetch
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if pid=$(node_pid "$dir"); then
      log "broker in $dir already running (pid $pid, port $(cat "$dir/port"))"
      exit 0
    fi
    started=$(now_ms)
    node_write_config "$dir" 1 "$port" $((port + 1)) "1@127.0.0.1:$((port + 1))" 1
    node_ports_free "$dir" || exit 1
    if [ ! -f "$dir/data/meta.properties" ]; then
      log "formatting new storage in $dir"
      [ -s "$dir/cluster-id" ] || new_cluster_id > "$dir/cluster-id"
      node_format "$dir" "$(cat "$dir/cluster-id")"
    fi
    log "starting broker on 127.0.0.1:$port (controller $((port + 1))) in $dir"
    node_start "$dir"
    node_wait_ready "$dir" 1 || { node_stop "$dir" KILL; exit 1; }
    log "broker ready on 127.0.0.1:$port (pid $(node_pid "$dir")) in $(( $(now_ms) - started )) ms" ;;
  stop)
    node_stop "$dir" TERM ;;
  kill)
    node_stop "$dir" KILL ;;
  status)
    if pid=$(node_pid "$dir"); then
      echo "running (pid $pid, port $(cat "$dir/port"))"
    else
      echo "stopped"
      exit 3
    fi ;;
  *) usage ;;
esac
