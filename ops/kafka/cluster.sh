#!/usr/bin/env bash
# A 3-node KRaft Kafka cluster on 127.0.0.1 for fault tests: every node is broker and
# controller (3 controller voters); internal topics and new topics get replication factor 3,
# min.insync.replicas 2.
#   cluster.sh start DIR BASEPORT   client ports BASEPORT..BASEPORT+2, controllers
#                                   BASEPORT+10..+12; waits until all three answer
#   cluster.sh stop DIR             stop all three cleanly
#   cluster.sh status DIR           one line per node; exit 0 if all three run, 3 if not
#   cluster.sh kill-node DIR N      SIGKILL node N (1..3) at once
#   cluster.sh stop-node DIR N      stop node N cleanly
#   cluster.sh start-node DIR N     start node N again with its data, wait until it answers
# Node N lives in DIR/nodeN (data, server.log, pid). start and stop are safe to repeat; a
# start on a DIR used before keeps the data.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then usage; fi
node_dir() { echo "$dir/node$1"; }
node_arg() {
  local n=${1:-}
  [[ $n =~ ^[123]$ ]] || { log "node number must be 1, 2 or 3"; usage; }
  [ -f "$(node_dir "$n")/server.properties" ] || die "no cluster in $dir (run: cluster.sh start $dir BASEPORT)"
  echo "$n"
}
case "$cmd" in
  start)
    base=${3:-}
    [[ $base =~ ^[0-9]+$ ]] || usage
    kafka_fetch
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    running=0
    for n in 1 2 3; do node_pid "$(node_dir $n)" >/dev/null && running=$((running + 1)); done
    if [ $running = 3 ]; then
      log "cluster in $dir already running"
      exit 0
    fi
    started=$(now_ms)
    voters="1@127.0.0.1:$((base + 10)),2@127.0.0.1:$((base + 11)),3@127.0.0.1:$((base + 12))"
    [ -s "$dir/cluster-id" ] || new_cluster_id > "$dir/cluster-id"
    for n in 1 2 3; do
      d=$(node_dir $n)
      mkdir -p "$d"
      if [ -f "$d/server.properties" ]; then
        old=$(cat "$d/port")
        [ "$old" = $((base + n - 1)) ] ||
          die "$dir was made with base port $((old - n + 1)); use that or a new DIR"
      else
        node_write_config "$d" $n $((base + n - 1)) $((base + 9 + n)) "$voters" 3
      fi
    done
    # Formatting is a JVM start each: the three in parallel.
    formats=()
    for n in 1 2 3; do
      node_format "$(node_dir $n)" "$(cat "$dir/cluster-id")" &
      formats+=($!)
    done
    for f in "${formats[@]}"; do wait "$f" || die "formatting the cluster in $dir failed"; done
    log "starting 3 nodes on 127.0.0.1:$base..$((base + 2)) (controllers $((base + 10))..$((base + 12))) in $dir"
    # All three at once: a controller quorum needs two voters before any node can finish.
    for n in 1 2 3; do
      node_pid "$(node_dir $n)" >/dev/null || node_ports_free "$(node_dir $n)" || exit 1
    done
    launched=()
    for n in 1 2 3; do
      node_pid "$(node_dir $n)" >/dev/null || launched+=("$n")
      node_start "$(node_dir $n)"
    done
    fail_start() {  # kills the nodes this call launched
      for m in "${launched[@]}"; do node_signal "$(node_dir "$m")" KILL; done
      for m in "${launched[@]}"; do node_wait_stopped "$(node_dir "$m")"; done
      exit 1
    }
    # Each node logs its start and opens its port; then one probe through node 1 asks every
    # broker in the cluster's metadata, and all three must answer.
    for n in 1 2 3; do node_wait_ready "$(node_dir $n)" 0 || fail_start; done
    node_wait_ready "$(node_dir 1)" 3 || fail_start
    log "cluster ready on 127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)) in $(( $(now_ms) - started )) ms" ;;
  stop)
    # All at once: stopped one after the other, the last controller has no quorum to hand
    # its shutdown to and waits for it.
    for n in 1 2 3; do node_signal "$(node_dir $n)" TERM; done
    for n in 1 2 3; do node_wait_stopped "$(node_dir $n)"; done
    log "cluster in $dir stopped" ;;
  status)
    all=0
    for n in 1 2 3; do
      d=$(node_dir $n)
      if pid=$(node_pid "$d"); then
        echo "node$n running (pid $pid, port $(cat "$d/port"))"
      else
        echo "node$n stopped"
        all=3
      fi
    done
    exit $all ;;
  kill-node)
    n=$(node_arg "${3:-}")
    node_stop "$(node_dir "$n")" KILL ;;
  stop-node)
    n=$(node_arg "${3:-}")
    node_stop "$(node_dir "$n")" TERM ;;
  start-node)
    n=$(node_arg "${3:-}")
    dir=$(cd "$dir" && pwd)
    d=$(node_dir "$n")
    if pid=$(node_pid "$d"); then
      log "node$n already running (pid $pid)"
      exit 0
    fi
    started=$(now_ms)
    node_start "$d"
    node_wait_ready "$d" 1 || { node_stop "$d" KILL; exit 1; }
    log "node$n ready on 127.0.0.1:$(cat "$d/port") in $(( $(now_ms) - started )) ms" ;;
  *) usage ;;
esac
