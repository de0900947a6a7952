#!/usr/bin/env bash
# A 3-node KRaft cluster on loopback for fault tests: each node is broker and controller.
#   cluster.sh start DIR BASEPORT   client ports BASEPORT..BASEPORT+2, controllers +10..+12
#   cluster.sh stop DIR
#   cluster.sh kill-node DIR N      SIGKILL node N (1..3)
#   cluster.sh stop-node DIR N
#   cluster.sh start-node DIR N     restart node N with its data
# Internal topics have replication factor 3 and min.insync.replicas 2.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
node_dir() { echo "$dir/node$1"; }
case "$cmd" in
  start)
    base=${3:?BASEPORT missing}
    bash "$kafka_here/fetch.sh"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    voters="1@127.0.0.1:$((base + 10)),2@127.0.0.1:$((base + 11)),3@127.0.0.1:$((base + 12))"
    [ -f "$dir/cluster-id" ] || new_cluster_id > "$dir/cluster-id"
    for n in 1 2 3; do
      d=$(node_dir $n)
      mkdir -p "$d"
      [ -f "$d/server.properties" ] || node_write_config "$d" $n $((base + n - 1)) $((base + 9 + n)) "$voters" 3
      node_format "$d" "$(cat "$dir/cluster-id")"
      node_start "$d"
    done
    for n in 1 2 3; do node_wait_ready "$(node_dir $n)"; done
    log "cluster ready on 127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))" ;;
  stop)
    # All at once: stopped one by one, the last controller loses its quorum and hangs.
    for n in 1 2 3; do node_signal "$(node_dir $n)" TERM; done
    for n in 1 2 3; do node_wait_stopped "$(node_dir $n)"; done ;;
  kill-node) node_stop "$(node_dir "${3:?N missing}")" KILL ;;
  stop-node) node_stop "$(node_dir "${3:?N missing}")" TERM ;;
  start-node)
    d=$(node_dir "${3:?N missing}")
    node_start "$d"
    node_wait_ready "$d" ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
