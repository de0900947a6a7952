# Shared by broker.sh and cluster.sh: one KRaft node (broker and controller in one process).
# Sourced, not run.

kafka_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_lib="$kafka_here/.cache/lib"

log() { printf '[kafka] %s\n' "$*" >&2; }

# node_write_config DIR NODE_ID CLIENT_PORT CONTROLLER_PORT VOTERS REPLICATION
node_write_config() {
  local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6
  local min_isr=1
  [ "$rf" -ge 3 ] && min_isr=2
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
default.replication.factor=$rf
min.insync.replicas=$min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=1
PROPS
  cat > "$dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
  echo "$port" > "$dir/port"
}

# node_format DIR CLUSTER_ID: formats storage once; a restarted node keeps its data.
node_format() {
  local dir=$1 cluster_id=$2
  [ -f "$dir/data/meta.properties" ] && return 0
  java -cp "$kafka_lib/*" -Dlog4j.configuration="file:$dir/log4j.properties" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >/dev/null
}

node_pid() {
  local dir=$1
  [ -f "$dir/pid" ] || return 1
  local pid
  pid=$(cat "$dir/pid")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# node_start DIR: starts the node in the background and waits until it serves clients.
node_start() {
  local dir=$1
  if node_pid "$dir" >/dev/null; then
    log "node in $dir already running"
    return 0
  fi
  : > "$dir/server.log"
  # setsid: the node outlives the calling shell, and stop() can signal its whole group.
  setsid nohup java -Xmx768m -Xms256m -XX:+UseG1GC \
    -Dlog4j.configuration="file:$dir/log4j.properties" \
    -cp "$kafka_lib/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

# node_wait_ready DIR [SECONDS]: the node logged its start and its client port accepts.
node_wait_ready() {
  local dir=$1 limit=${2:-90} port
  port=$(cat "$dir/port")
  for _ in $(seq 1 $((limit * 5))); do
    if ! node_pid "$dir" >/dev/null; then
      log "node in $dir died; last lines of its log:"
      tail -n 30 "$dir/server.log" "$dir/stdout" >&2 || true
      return 1
    fi
    if grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null &&
       (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  log "node in $dir did not start within ${limit}s; last lines of its log:"
  tail -n 30 "$dir/server.log" >&2 || true
  return 1
}

# node_signal DIR SIGNAL: sends SIGNAL to the node if it runs.
node_signal() {
  local pid
  pid=$(node_pid "$1") || return 0
  kill -"$2" "$pid" 2>/dev/null || true
}

# node_wait_stopped DIR: waits up to 30 s for the node to end, then kills it.
node_wait_stopped() {
  local dir=$1 pid
  pid=$(node_pid "$dir") || { rm -f "$dir/pid"; return 0; }
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pid"; return 0; }
    sleep 0.2
  done
  log "node $pid did not stop in 30 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$dir/pid"
}

# node_stop DIR [SIGNAL]: TERM (clean, waits up to 30 s, then KILL) or KILL at once.
node_stop() {
  node_signal "$1" "${2:-TERM}"
  node_wait_stopped "$1"
}

new_cluster_id() {
  java -cp "$kafka_lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null
}
