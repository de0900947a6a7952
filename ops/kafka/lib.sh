# shellcheck shell=bash
# Shared by broker.sh and cluster.sh: one KRaft node (broker and controller in one process)
# living in its own folder DIR:
#   DIR/server.properties, DIR/log4j.properties   written by node_write_config
#   DIR/data/                                     the node's log dirs (metadata included)
#   DIR/server.log, DIR/stdout                    its log, and the JVM's own output
#   DIR/pid, DIR/port                             the running java process, its client port
# Sourced, not run.

kafka_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_lib="$kafka_here/.cache/lib"
# Seconds a node gets to answer after its start; KAFKA_START_TIMEOUT overrides.
kafka_start_timeout=${KAFKA_START_TIMEOUT:-60}
# JVM heap flags of a node (word-split on purpose); KAFKA_HEAP overrides.
read -r -a kafka_heap <<<"${KAFKA_HEAP:--Xmx768m -Xms128m}"

log() { printf '[kafka] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

kafka_fetch() { bash "$kafka_here/fetch.sh"; }

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# node_write_config DIR NODE_ID CLIENT_PORT CONTROLLER_PORT VOTERS REPLICATION
node_write_config() {
  local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6
  local min_isr=1
  [ "$rf" -ge 3 ] && min_isr=2
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
# Written by ops/kafka/lib.sh; rewritten on each start of a single broker.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# A node restarted after SIGKILL may register only once its previous session expired
# (default 9 s): a shorter session lets fault tests restart quickly.
broker.session.timeout.ms=5000
broker.heartbeat.interval.ms=500
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
PROPS
  cat > "$dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.clients=WARN
PROPS
  echo "$port" > "$dir/port"
}

# node_format DIR CLUSTER_ID: formats the storage once; a restarted node keeps its data.
node_format() {
  local dir=$1 cluster_id=$2
  [ -f "$dir/data/meta.properties" ] && return 0
  java -cp "$kafka_lib/*" -Dlog4j.configuration="file:$dir/log4j.properties" \
    kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
    >"$dir/format.out" 2>&1 || { cat "$dir/format.out" >&2; die "formatting $dir failed"; }
}

new_cluster_id() {
  java -cp "$kafka_lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null
}

# pid_alive PID: runs, is not a zombie, and is a Kafka node (guards against a reused pid).
pid_alive() {
  local pid=$1 state
  [ -r "/proc/$pid/stat" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ "$state" != Z ] && [ "$state" != X ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka '
}

# node_pid DIR: prints the pid of the node running in DIR, or fails.
node_pid() {
  local dir=$1 pid
  [ -f "$dir/pid" ] || return 1
  pid=$(cat "$dir/pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && pid_alive "$pid" || return 1
  echo "$pid"
}

# node_ports DIR: the client and controller ports in DIR's config.
node_ports() {
  local dir=$1
  sed -n 's/^listeners=.*:\([0-9]*\),CONTROLLER:.*:\([0-9]*\)$/\1 \2/p' "$dir/server.properties"
}

# node_ports_free DIR: no other process listens on the node's ports.
node_ports_free() {
  local dir=$1 p
  for p in $(node_ports "$dir"); do
    if port_open "$p"; then
      log "port 127.0.0.1:$p (for $dir) is already taken by another process"
      return 1
    fi
  done
}

# node_start DIR: starts the node in the background (its own session, so it outlives the
# calling shell and is not hit by the caller's Ctrl-C); does not wait.
node_start() {
  local dir=$1
  if node_pid "$dir" >/dev/null; then
    log "node in $dir already running (pid $(node_pid "$dir"))"
    return 0
  fi
  node_ports_free "$dir" || exit 1
  rm -f "$dir/pid"
  if [ -f "$dir/server.log" ]; then mv -f "$dir/server.log" "$dir/server.log.1"; fi
  : > "$dir/server.log"
  # The inner shell writes its own pid and execs java, so DIR/pid is the java process
  # whatever setsid does about forking.
  # shellcheck disable=SC2016
  setsid nohup bash -c 'echo $$ > "$1/pid"; shift; exec "$@"' _ "$dir" \
    java "${kafka_heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlog4j.configuration="file:$dir/log4j.properties" \
    -cp "$kafka_lib/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/stdout" 2>&1 </dev/null &
  local _
  for _ in $(seq 1 50); do
    [ -s "$dir/pid" ] && break
    sleep 0.1
  done
}

node_log_tail() {
  local dir=$1
  log "last lines of $dir/server.log:"
  tail -n 40 "$dir/server.log" >&2 2>/dev/null || true
  if [ -s "$dir/stdout" ]; then
    log "last lines of $dir/stdout:"
    tail -n 20 "$dir/stdout" >&2 || true
  fi
}

# node_answers PORT [BROKERS]: a Kafka ApiVersions round trip through the broker on PORT
# succeeds and the cluster metadata it returns lists at least BROKERS brokers (default 1).
node_answers() {
  local port=$1 want=${2:-1} out n
  out=$(timeout 20 java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$kafka_lib/*" \
    -Dlog4j.configuration="file:/dev/null" \
    kafka.admin.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$port" 2>/dev/null) ||
    return 1
  # One line per broker: "HOST:PORT (id: N rack: R) -> (" when it answered, "-> ERROR: ..."
  # when not.
  n=$(grep -cE '\(id: [0-9]+ rack: [^)]*\) -> \($' <<<"$out" || true)
  [ "$n" -ge "$want" ]
}

# node_wait_ready DIR [BROKERS]: waits until the node logged its start, its client port
# accepts and, through it, BROKERS brokers (default 1; 0 skips this) answer a Kafka request,
# within the start timeout.
node_wait_ready() {
  local dir=$1 want=${2:-1} port deadline
  port=$(cat "$dir/port")
  deadline=$(( $(now_ms) + kafka_start_timeout * 1000 ))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if ! node_pid "$dir" >/dev/null; then
      log "node in $dir (port $port) exited during its start"
      node_log_tail "$dir"
      return 1
    fi
    if grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null && port_open "$port" &&
       { [ "$want" = 0 ] || node_answers "$port" "$want"; }; then
      return 0
    fi
    sleep 0.3
  done
  log "node in $dir (port $port) did not answer within ${kafka_start_timeout}s"
  node_log_tail "$dir"
  return 1
}

# node_signal DIR SIGNAL: sends SIGNAL to the node if it runs.
node_signal() {
  local pid
  pid=$(node_pid "$1") || return 0
  kill -"$2" "$pid" 2>/dev/null || true
}

# node_wait_stopped DIR [SECONDS]: waits for the node to end (default 30 s), then kills it.
node_wait_stopped() {
  local dir=$1 limit=${2:-30} pid _
  pid=$(node_pid "$dir") || { rm -f "$dir/pid"; return 0; }
  for _ in $(seq 1 $((limit * 5))); do
    pid_alive "$pid" || { rm -f "$dir/pid"; return 0; }
    sleep 0.2
  done
  log "node $pid in $dir did not stop within ${limit}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do sleep 0.1; done
  rm -f "$dir/pid"
}

# node_stop DIR [SIGNAL]: TERM (clean; waits up to 30 s, then KILL) or KILL at once.
node_stop() {
  local dir=$1 sig=${2:-TERM}
  if ! node_pid "$dir" >/dev/null; then
    log "node in $dir is not running"
    rm -f "$dir/pid"
    return 0
  fi
  node_signal "$dir" "$sig"
  node_wait_stopped "$dir"
  log "node in $dir stopped ($sig)"
}
