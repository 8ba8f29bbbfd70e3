#!/usr/bin/env bash
# kafka-local.sh -- run real Apache Kafka (KRaft mode) on this machine, no Docker.
#
# The broker is Apache Kafka's own jars from Maven Central, resolved once with
# Maven into a cache directory and run on the local JVM (Java 17+).
#
# Usage:
#   scripts/kafka-local.sh fetch                 resolve the jars only
#   scripts/kafka-local.sh start single          1 combined broker+controller, 127.0.0.1:9092,
#                                                plus security listeners on 9094..9099 (below)
#   scripts/kafka-local.sh start cluster         3 combined nodes, 127.0.0.1:{19092,29092,39092},
#                                                SASL_SSL (SCRAM-SHA-512, PLAIN) on {19096,29096,39096}
#   scripts/kafka-local.sh start quorum          a dynamic KRaft quorum (KIP-853, kraft.version=1):
#                                                node 1 combined broker+controller on 127.0.0.1:9188
#                                                (controller 9189), formatted --standalone; node 2
#                                                controller only on 9190, formatted
#                                                --no-initial-controllers: an observer until added
#                                                as a voter (AddRaftVoter). Node 2's id, directory
#                                                id and endpoint go to $FERROKAFKA_RUN_DIR/quorum/
#                                                quorum.env (below)
#   scripts/kafka-local.sh stop single|cluster|quorum|all
#   scripts/kafka-local.sh kill N                SIGKILL cluster node N (1..3), keep its data
#   scripts/kafka-local.sh pause N               SIGSTOP cluster node N
#   scripts/kafka-local.sh resume N              SIGCONT cluster node N
#   scripts/kafka-local.sh restart N             start a killed/stopped cluster node again
#   scripts/kafka-local.sh status                which nodes run
#
# `start` prints the bootstrap address on stdout (and only that), progress goes
# to stderr, so a harness can do:  BOOTSTRAP=$(scripts/kafka-local.sh start single)
# `start` on an already running, answering setup is a no-op (exit 0, prints the
# bootstrap address again); a half-running cluster is an error.
#
# Environment:
#   KAFKA_VERSION        Kafka version (default 4.4.0; 3.9.x works as well)
#   KAFKA_PORT_OFFSET    added to every port (default 0), to run beside another setup
#   FERROKAFKA_CACHE     jar cache root (default ~/.cache/ferrokafka)
#   FERROKAFKA_RUN_DIR   run directory root (default /tmp/ferrokafka-kafka)
#   KAFKA_LOG_LEVEL      broker log level written to each node's server.log (default INFO)
#   KAFKA_START_TIMEOUT  seconds to wait for readiness (default 90)
#   LOG4J2_VERSION       log4j2 binding used for Kafka 4.x (default 2.25.3)
#
# Security listeners of the single node (each port + KAFKA_PORT_OFFSET; the addresses, the
# CA and the mutual-TLS client certificate are written to $FERROKAFKA_RUN_DIR/single/security.env
# as FERROKAFKA_* variables, which scripts/test.sh exports for the integration tests):
#   9094 SASL_PLAINTEXT  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (unsecured JWTs)
#   9095 SSL             server certificate for localhost and 127.0.0.1, signed by certs/ca.pem
#   9096 SASL_SSL        TLS as 9095, SASL PLAIN and SCRAM-SHA-512 only
#   9097 MTLS (SSL)      ssl.client.auth=required: client certificate certs/client.pem + key
#   9098 REAUTH          SASL_PLAINTEXT with connections.max.reauth.ms=3000 (KIP-368)
#   9099 BADHOST (SSL)   certificate only for wrong-host.invalid, signed by the same CA
# The cluster nodes have one SASL_SSL listener each on N9096 (+ offset), same users, their own
# CA in $FERROKAFKA_RUN_DIR/cluster/certs, addresses in cluster/security.env.
# Users: alice / alice-secret for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (created at
# format time with --add-scram); any subject with an unsecured (alg none) OAUTHBEARER token.
# Authorization (single node only): KRaft's StandardAuthorizer with
#   allow.everyone.if.no.acl.found=true  a resource with no ACL is open to everyone, so tests
#                                        that create no ACLs run as without an authorizer;
#   super.users=User:ANONYMOUS           the principal of every PLAINTEXT and one-way SSL
#                                        connection: the CONTROLLER and inter-broker
#                                        listeners, the tests' admin on 9092, 9095 and 9099;
#                                        SASL logins (User:alice, OAUTHBEARER subjects, SCRAM
#                                        users the tests create) and MTLS (User:CN=...) are
#                                        not super users, so ACLs apply to them;
#   delegation.token.secret.key          enables delegation tokens (create/renew/expire/
#                                        describe, over the SASL listeners only).
# The quorum (`start quorum`) uses ports 9188..9190 (+ offset): their last two digits are not
# 92..99, so no single or cluster port collides with them for any offset that is a multiple
# of 100 (the offsets the scripts and docs use). Its quorum.env has, as shell assignments:
#   FERROKAFKA_QUORUM_BOOTSTRAP        node 1's client address (what `start quorum` prints)
#   FERROKAFKA_QUORUM_OBSERVER_ID      node 2's node id (2)
#   FERROKAFKA_QUORUM_OBSERVER_DIR_ID  node 2's metadata directory id (meta.properties'
#                                      directory.id, Kafka's base64url Uuid)
#   FERROKAFKA_QUORUM_OBSERVER_LISTENER / _HOST / _PORT   node 2's controller endpoint
#   FERROKAFKA_QUORUM_VOTER_ID         node 1's node id (1), the quorum's only initial voter
# Certificates are made with the JDK's keytool at start (scripts/PemKey.java writes the
# private keys as PKCS#8 PEM), into $FERROKAFKA_RUN_DIR/single/certs.
#
# Layout of a node's run directory ($FERROKAFKA_RUN_DIR/single, .../cluster/nodeN or
# .../quorum/nodeN):
#   server.properties  broker config          data/        log.dirs (KRaft metadata + topics;
#                                                          the single node also data2/)
#   log4j2.xml | log4j.properties             server.log   broker log (format + server)
#   console.log        JVM stdout/stderr      pid          process id
#   kafka-version      version the node was formatted with (used by `restart`)

set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
LOG4J2_VERSION="${LOG4J2_VERSION:-2.25.3}"
SLF4J_RELOAD4J_VERSION="1.7.36"            # slf4j 1.7 -> reload4j binding for Kafka 3.x
RELOAD4J_VERSION="1.2.25"                  # log4j 1.2 API implementation for Kafka 3.x
DEPENDENCY_PLUGIN_VERSION="3.8.1"          # maven-dependency-plugin, pinned for reproducibility
CACHE_ROOT="${FERROKAFKA_CACHE:-$HOME/.cache/ferrokafka}"
RUN_ROOT="${FERROKAFKA_RUN_DIR:-/tmp/ferrokafka-kafka}"
KAFKA_LOG_LEVEL="${KAFKA_LOG_LEVEL:-INFO}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_GRACE_SECONDS=15                      # SIGTERM, then SIGKILL after this long

# Per-node JVM settings: 2 cores / 24 GiB, up to 4 nodes at once (single + cluster).
JVM_OPTS=(-Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20)

HOST=127.0.0.1
# KAFKA_PORT_OFFSET shifts every port (default 0): the single node listens on 9092+offset,
# cluster node N on N9092+offset, so a second setup (another version, or a developer's own
# Kafka on 9092) can run beside this one. Use a separate FERROKAFKA_RUN_DIR with it.
PORT_OFFSET="${KAFKA_PORT_OFFSET:-0}"
[[ "$PORT_OFFSET" =~ ^[0-9]+$ ]] && (( PORT_OFFSET < 5000 )) || { echo "kafka-local: KAFKA_PORT_OFFSET must be 0..4999" >&2; exit 1; }
SINGLE_CLIENT_PORT=$((9092 + PORT_OFFSET))
SINGLE_CONTROLLER_PORT=$((9093 + PORT_OFFSET))
# The dynamic quorum (start quorum): node 1's client and controller ports, node 2's controller.
QUORUM_CLIENT_PORT=$((9188 + PORT_OFFSET))
QUORUM_CONTROLLER1_PORT=$((9189 + PORT_OFFSET))
QUORUM_CONTROLLER2_PORT=$((9190 + PORT_OFFSET))
# The single node's security listeners: name, security protocol, port (see the header).
SECURITY_LISTENERS=(
  "SASL_PLAINTEXT SASL_PLAINTEXT $((9094 + PORT_OFFSET))"
  "SSL SSL $((9095 + PORT_OFFSET))"
  "SASL_SSL SASL_SSL $((9096 + PORT_OFFSET))"
  "MTLS SSL $((9097 + PORT_OFFSET))"
  "REAUTH SASL_PLAINTEXT $((9098 + PORT_OFFSET))"
  "BADHOST SSL $((9099 + PORT_OFFSET))"
)
SASL_USER=alice
SASL_PASSWORD=alice-secret
STORE_PASSWORD=ferrokafka-test
CLUSTER_NODES=(1 2 3)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROBE="$SCRIPT_DIR/kafka_probe.py"

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

say() { printf 'kafka-local: %s\n' "$*" >&2; }
die() { printf 'kafka-local: error: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch with sub-second precision, for timing reports.
now() { date +%s.%N; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Guard against `rm -rf` on an unexpected path.
safe_rm_rf() {
  local path="$1"
  case "$path" in
    "$RUN_ROOT"/?*) rm -rf -- "$path" ;;
    *) die "refusing to remove '$path' (outside $RUN_ROOT)" ;;
  esac
}

cluster_client_port() { echo "$((${1}9092 + PORT_OFFSET))"; }
cluster_controller_port() { echo "$((${1}9093 + PORT_OFFSET))"; }
cluster_sasl_ssl_port() { echo "$((${1}9096 + PORT_OFFSET))"; }
cluster_bootstrap() {
  local n out=""
  for n in "${CLUSTER_NODES[@]}"; do out+="${out:+,}$HOST:$(cluster_client_port "$n")"; done
  echo "$out"
}
cluster_voters() {
  local n out=""
  for n in "${CLUSTER_NODES[@]}"; do out+="${out:+,}$n@$HOST:$(cluster_controller_port "$n")"; done
  echo "$out"
}

single_dir() { echo "$RUN_ROOT/single"; }
cluster_dir() { echo "$RUN_ROOT/cluster"; }
node_dir() { echo "$RUN_ROOT/cluster/node$1"; }
quorum_dir() { echo "$RUN_ROOT/quorum"; }
quorum_node_dir() { echo "$RUN_ROOT/quorum/node$1"; }

# Kafka 4.x logs through log4j2, 3.x through log4j 1 (reload4j).
uses_log4j2() { [[ "${1%%.*}" -ge 4 ]]; }

lib_dir() { echo "$CACHE_ROOT/kafka-$1/libs"; }

# ---------------------------------------------------------------------------
# Process bookkeeping
# ---------------------------------------------------------------------------

# Print the pid of the node in directory $1 if that process is alive (running or
# paused, not a zombie) AND really is this node's broker (its command line names the
# node's server.properties), so a recycled pid is never signalled.
node_pid() {
  local dir="$1" pid state cmdline
  [[ -s "$dir/pid" ]] || return 1
  pid="$(<"$dir/pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmdline" == *"$dir/server.properties"* ]] || return 1
  state="$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ "$state" != "Z" && "$state" != "X" && -n "$state" ]] || return 1
  echo "$pid"
}

# running | paused | dead (has a run dir, no process) | absent
node_state() {
  local dir="$1" pid state
  if pid="$(node_pid "$dir")"; then
    state="$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null || true)"
    if [[ "$state" == "T" ]]; then echo paused; else echo running; fi
  elif [[ -d "$dir" ]]; then
    echo dead
  else
    echo absent
  fi
}

# True when something accepts TCP connections on $HOST:$1.
port_in_use() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Waits up to $1 seconds for the ports that follow to stop accepting connections. A killed
# JVM's listening sockets can outlive the moment its main thread shows as a zombie (the other
# threads are still exiting; the kernel keeps accepting into the backlog until the last one
# is gone), so "the process is gone" does not yet mean "its ports are free".
wait_ports_free() {
  local secs="$1" port busy i
  shift
  for ((i = 0; i < secs * 5; i++)); do
    busy=0
    for port in "$@"; do
      if port_in_use "$port"; then busy=1; break; fi
    done
    [[ $busy -eq 0 ]] && return 0
    sleep 0.2
  done
  return 1
}

check_ports_free() {
  local port owner
  # A port still held by a process that is exiting frees itself within moments.
  wait_ports_free 15 "$@" && return 0
  for port in "$@"; do
    if port_in_use "$port"; then
      owner=""
      if command -v ss >/dev/null 2>&1; then
        owner="$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'users:.*' | head -n1 || true)"
      fi
      die "port $HOST:$port is already in use${owner:+ ($owner)}; stop whatever listens there first"
    fi
  done
}

print_log_tail() {
  local dir="$1" f
  # The cause of a failed start is often far above the shutdown lines at the end.
  if [[ -s "$dir/server.log" ]] && grep -qE ' (ERROR|FATAL) ' "$dir/server.log"; then
    printf -- '----- first ERROR/FATAL lines of %s -----\n' "$dir/server.log" >&2
    grep -E -A3 ' (ERROR|FATAL) ' "$dir/server.log" | head -n 30 >&2
  fi
  for f in server.log console.log; do
    if [[ -s "$dir/$f" ]]; then
      printf -- '----- last 40 lines of %s -----\n' "$dir/$f" >&2
      tail -n 40 "$dir/$f" >&2
    fi
  done
  printf -- '-----\n' >&2
}

# Send SIGTERM to every given node dir, wait up to STOP_GRACE_SECONDS for all of
# them, SIGKILL what is left.
stop_nodes() {
  local dir pid deadline left
  local -a dirs=("$@") pids=()
  for dir in "${dirs[@]}"; do
    if pid="$(node_pid "$dir")"; then
      kill -TERM "$pid" 2>/dev/null || true
      kill -CONT "$pid" 2>/dev/null || true   # a paused JVM must run to handle SIGTERM
      pids+=("$pid")
    fi
  done
  [[ ${#pids[@]} -gt 0 ]] || return 0
  deadline=$((SECONDS + STOP_GRACE_SECONDS))
  while :; do
    left=0
    for dir in "${dirs[@]}"; do node_pid "$dir" >/dev/null && left=$((left + 1)); done
    [[ $left -eq 0 ]] && return 0
    [[ $SECONDS -ge $deadline ]] && break
    sleep 0.2
  done
  say "still running after ${STOP_GRACE_SECONDS}s, sending SIGKILL"
  for dir in "${dirs[@]}"; do
    if pid="$(node_pid "$dir")"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  wait_gone "${dirs[@]}"
}

# Wait (up to 10 s) until none of the given node dirs has a live process.
wait_gone() {
  local dir i
  for ((i = 0; i < 50; i++)); do
    local any=0
    for dir in "$@"; do node_pid "$dir" >/dev/null && any=1; done
    [[ $any -eq 0 ]] && return 0
    sleep 0.2
  done
  die "processes in $* did not exit"
}

# ---------------------------------------------------------------------------
# Jar resolution
# ---------------------------------------------------------------------------

# Write the throw-away pom whose runtime dependencies are the broker classpath.
write_pom() {
  local version="$1" pom="$2" logging
  if uses_log4j2 "$version"; then
    # Kafka 4.x logs via slf4j-api 1.7.36 -> log4j2, so the binding is
    # log4j-slf4j-impl (the slf4j 1.7 one), not log4j-slf4j2-impl (slf4j 2.x).
    # Kafka's poms name no log4j2 version; any recent 2.x works.
    logging="
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J2_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J2_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J2_VERSION</version></dependency>"
  else
    # Kafka 3.x logs via slf4j 1.7 -> reload4j (log4j 1.2 API). slf4j-reload4j alone
    # would pull the old reload4j 1.2.19, so a newer release is pinned.
    logging="
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>$SLF4J_RELOAD4J_VERSION</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>$RELOAD4J_VERSION</version></dependency>"
  fi
  cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka-local.sh: the runtime classpath of a Kafka $version broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ferrokafka</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$version</version></dependency>$logging
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>$DEPENDENCY_PLUGIN_VERSION</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
EOF
}

# Resolve the jars for version $1 into the cache unless a previous run completed.
# The marker file holds a checksum of the pom it was made from, so changing e.g.
# LOG4J2_VERSION triggers a fresh resolution.
fetch_jars() {
  local version="$1" dir libs pom marker want started output
  dir="$CACHE_ROOT/kafka-$version"
  libs="$dir/libs"
  pom="$dir/pom.xml.new"
  marker="$dir/.libs-complete"
  mkdir -p "$dir"
  write_pom "$version" "$pom"
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -f "$marker" && "$(<"$marker")" == "$want" && -f "$libs/kafka_2.13-$version.jar" ]]; then
    rm -f "$pom"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn (Maven) not found on PATH"
  mv -f "$pom" "$dir/pom.xml"
  rm -f "$marker"
  rm -rf "$libs"
  say "resolving Kafka $version jars from Maven Central into $libs ..."
  started="$(now)"
  if ! output="$(cd "$dir" && mvn -q -B -f pom.xml dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$libs" 2>&1)"; then
    # Maven 3.8 emits ANSI reset codes even in batch mode; drop those, keep the text.
    printf '%s\n' "$output" | sed 's/\x1b\[[0-9;]*m//g' >&2
    die "mvn could not resolve Kafka $version (pom: $dir/pom.xml)"
  fi
  [[ -f "$libs/kafka_2.13-$version.jar" ]] || die "mvn succeeded but $libs/kafka_2.13-$version.jar is missing"
  echo "$want" >"$marker"
  say "resolved $(find "$libs" -name '*.jar' | wc -l) jars in $(elapsed_since "$started")s"
}

# ---------------------------------------------------------------------------
# Node configuration
# ---------------------------------------------------------------------------

# server.properties for a combined broker+controller node.
# Args: dir node_id client_port controller_port voters mode(single|cluster)
write_server_properties() {
  local dir="$1" id="$2" client_port="$3" controller_port="$4" voters="$5" mode="$6"
  local rf isr extra_listeners="" l name port
  if [[ "$mode" == single ]]; then rf=1; isr=1; else rf=3; isr=2; fi
  if [[ "$mode" == single ]]; then
    for l in "${SECURITY_LISTENERS[@]}"; do
      read -r name _ port <<<"$l"
      extra_listeners+=",$name://$HOST:$port"
    done
  else
    extra_listeners=",SASL_SSL://$HOST:$(cluster_sasl_ssl_port "$id")"
  fi
  # The single node has two log dirs (KRaft JBOD, Kafka 3.8+), so that the admin tests can
  # move a replica between them (alter_replica_log_dirs); the metadata log stays in data/.
  local log_dirs="$dir/data"
  if [[ "$mode" == single ]]; then log_dirs="$dir/data,$dir/data2"; fi
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka-local.sh ($mode, Kafka $(<"$dir/kafka-version"))
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$client_port,CONTROLLER://$HOST:$controller_port$extra_listeners
advertised.listeners=PLAINTEXT://$HOST:$client_port$extra_listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL,REAUTH:SASL_PLAINTEXT,BADHOST:SSL
log.dirs=$log_dirs
metadata.log.dir=$dir/data

num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
auto.create.topics.enable=false
# A node that cannot register with the controller quorum within this time shuts itself down
# (default 60 s); on a loaded 2-core machine three nodes starting at once can take longer.
initial.broker.registration.timeout.ms=180000
# No time-based retention: the tests write records with fixed timestamps from 2023 (the
# Java vectors' BASE_TIMESTAMP), which the default 7-day retention deletes at its next
# check (every 5 min), so a consumer then finds the log start at the end and gets nothing.
log.retention.ms=-1
group.initial.rebalance.delay.ms=0
# KIP-848 consumer groups (4.x): shorter session and heartbeat than the defaults (45 s, 5 s)
# so the tests of a killed member take seconds; 3.9 accepts the keys and ignores them.
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=10000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000

offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
# Share groups (KIP-932); Kafka 3.9 does not know these keys and ignores them.
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
EOF
  if [[ "$mode" == cluster ]]; then
    cat >>"$dir/server.properties" <<'EOF'

# Notice a killed or paused node quickly: the controller fences a broker whose
# last heartbeat is older than the session timeout (defaults 9000 / 2000 ms).
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
EOF
  fi
}

# Security settings of the single node's extra listeners (see the header).
# Args: node_dir certs_dir
write_security_properties() {
  local dir="$1" certs="$2" l
  {
    echo
    echo "# Security listeners (scripts/kafka-local.sh)"
    echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
    for l in sasl_plaintext sasl_ssl reauth; do
      echo "listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER=\"$SASL_PASSWORD\";"
      echo "listener.name.$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
      echo "listener.name.$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
      # No server callback handler configured: Kafka's unsecured (alg none) JWT validator.
      echo "listener.name.$l.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"broker\";"
    done
    echo "listener.name.reauth.connections.max.reauth.ms=3000"
    # Fewer mechanisms on SASL_SSL, so that a mechanism the broker does not enable can be tested.
    echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512"
    for l in ssl sasl_ssl mtls badhost; do
      local key=server
      [[ "$l" == badhost ]] && key=badhost
      echo "listener.name.$l.ssl.keystore.type=PEM"
      echo "listener.name.$l.ssl.keystore.location=$certs/$key-keystore.pem"
    done
    echo "listener.name.mtls.ssl.client.auth=required"
    echo "listener.name.mtls.ssl.truststore.type=PEM"
    echo "listener.name.mtls.ssl.truststore.location=$certs/ca.pem"
    echo
    echo "# Authorization and delegation tokens (see the header)"
    echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    echo "allow.everyone.if.no.acl.found=true"
    echo "super.users=User:ANONYMOUS"
    echo "delegation.token.secret.key=ferrokafka-test-delegation-token-secret"
  } >>"$dir/server.properties"
}

# The cluster nodes' SASL_SSL listener. Args: node_dir certs_dir
write_cluster_security_properties() {
  local dir="$1" certs="$2"
  cat >>"$dir/server.properties" <<EOF

# SASL_SSL listener (scripts/kafka-local.sh)
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$certs/server-keystore.pem
EOF
}

# Test certificates with the JDK's keytool (RSA 2048): a CA, a server certificate for
# localhost/127.0.0.1, one for wrong-host.invalid only, and a client certificate for mutual
# TLS; PEM files (keys as unencrypted PKCS#8) in the directory $1.
make_certs() {
  local certs="$1" store name san
  mkdir -p "$certs"
  store="$certs/keys.p12"
  kt() { keytool -storetype PKCS12 -keystore "$store" -storepass "$STORE_PASSWORD" "$@" >/dev/null 2>&1; }
  kt -genkeypair -alias ca -keyalg RSA -keysize 2048 -validity 3650 \
    -dname "CN=ferrokafka test CA" -ext bc:c || die "keytool: making the CA failed"
  kt -exportcert -rfc -alias ca -file "$certs/ca.pem" || die "keytool: exporting the CA failed"
  for name in server badhost client; do
    case "$name" in
      server) san="-ext SAN=dns:localhost,ip:127.0.0.1 -ext EKU=serverAuth" ;;
      badhost) san="-ext SAN=dns:wrong-host.invalid -ext EKU=serverAuth" ;;
      client) san="-ext EKU=clientAuth" ;;
    esac
    kt -genkeypair -alias "$name" -keyalg RSA -keysize 2048 -validity 3650 -dname "CN=ferrokafka-$name" \
      || die "keytool: key for $name failed"
    kt -certreq -alias "$name" -file "$certs/$name.csr" || die "keytool: request for $name failed"
    # shellcheck disable=SC2086  # $san holds several options
    kt -gencert -alias ca -infile "$certs/$name.csr" -outfile "$certs/$name.pem" -rfc -validity 3650 $san \
      || die "keytool: signing $name failed"
  done
  java "$SCRIPT_DIR/PemKey.java" "$store" "$STORE_PASSWORD" "$certs" server badhost client \
    || die "exporting the test keys as PEM failed"
  cat "$certs/server-key.pem" "$certs/server.pem" "$certs/ca.pem" >"$certs/server-keystore.pem"
  cat "$certs/badhost-key.pem" "$certs/badhost.pem" "$certs/ca.pem" >"$certs/badhost-keystore.pem"
}

# The env file the integration tests read (exported by scripts/test.sh).
write_security_env() {
  local dir="$1" l name port
  {
    echo "# Generated by scripts/kafka-local.sh: the single node's security listeners"
    for l in "${SECURITY_LISTENERS[@]}"; do
      read -r name _ port <<<"$l"
      echo "FERROKAFKA_${name}_BOOTSTRAP=$HOST:$port"
    done
    echo "FERROKAFKA_BADHOST_NAME=wrong-host.invalid"
    echo "FERROKAFKA_CA_PEM=$dir/certs/ca.pem"
    echo "FERROKAFKA_CLIENT_CERT_PEM=$dir/certs/client.pem"
    echo "FERROKAFKA_CLIENT_KEY_PEM=$dir/certs/client-key.pem"
    echo "FERROKAFKA_SASL_USER=$SASL_USER"
    echo "FERROKAFKA_SASL_PASSWORD=$SASL_PASSWORD"
  } >"$dir/security.env"
}

# Logging config: everything to the node's server.log, nothing to the terminal.
write_log_config() {
  local dir="$1" version="$2"
  if uses_log4j2 "$version"; then
    cat >"$dir/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka-local.sh -->
<!-- shutdownHook="disable": keep logging until Kafka's own shutdown hook has finished. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <File name="server" fileName="$dir/server.log" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Root level="$KAFKA_LOG_LEVEL"><AppenderRef ref="server"/></Root>
  </Loggers>
</Configuration>
EOF
  else
    cat >"$dir/log4j.properties" <<EOF
# Generated by scripts/kafka-local.sh
log4j.rootLogger=$KAFKA_LOG_LEVEL, server
log4j.appender.server=org.apache.log4j.FileAppender
log4j.appender.server.File=$dir/server.log
log4j.appender.server.Append=true
log4j.appender.server.layout=org.apache.log4j.PatternLayout
log4j.appender.server.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
EOF
  fi
}

# JVM system property pointing the logging backend at the node's config.
log_config_opt() {
  local dir="$1" version="$2"
  if uses_log4j2 "$version"; then
    echo "-Dlog4j2.configurationFile=$dir/log4j2.xml"
  else
    echo "-Dlog4j.configuration=file:$dir/log4j.properties"
  fi
}

# Run a Kafka main class in the foreground with the node's logging config.
run_tool() {
  local dir="$1" version="$2"
  shift 2
  java -Xmx256m -cp "$(lib_dir "$version")/*" "$(log_config_opt "$dir" "$version")" "$@"
}

new_cluster_id() {
  local version="$1" id
  id="$(java -cp "$(lib_dir "$version")/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
  [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid printed '$id', expected a 22-character id"
  echo "$id"
}

# Fresh run dir + config + formatted storage for one node.
# Args: dir version cluster_id node_id client_port controller_port voters mode
prepare_node() {
  local dir="$1" version="$2" cluster_id="$3" id="$4" cport="$5" qport="$6" voters="$7" mode="$8"
  if [[ -d "$dir" ]]; then safe_rm_rf "$dir"; fi
  mkdir -p "$dir/data"
  echo "$version" >"$dir/kafka-version"
  write_server_properties "$dir" "$id" "$cport" "$qport" "$voters" "$mode"
  write_log_config "$dir" "$version"
  local -a scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]"
                  --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
  if [[ "$mode" == single ]]; then
    make_certs "$dir/certs"
    write_security_properties "$dir" "$dir/certs"
    write_security_env "$dir"
  else
    # The cluster's certificates are made once for all nodes (cmd_start_cluster).
    write_cluster_security_properties "$dir" "$(cluster_dir)/certs"
  fi
  format_storage "$dir" "$version" "$cluster_id" "node $id" "${scram[@]}"
}

# Formats a node's storage with the StorageTool (its output and the log tail shown, and the
# start refused, when that fails). Args: dir version cluster_id what [StorageTool option...]
format_storage() {
  local dir="$1" version="$2" cluster_id="$3" what="$4" out
  shift 4
  if ! out="$(run_tool "$dir" "$version" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$dir/server.properties" "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    print_log_tail "$dir"
    die "formatting storage ($*) for $what in $dir failed"
  fi
}

# server.properties of a node of the dynamic quorum: no controller.quorum.voters (that
# would make the quorum static, kraft.version 0) but controller.quorum.bootstrap.servers.
# Node 1 is broker+controller, node 2 controller only. Args: dir node_id
write_quorum_properties() {
  local dir="$1" id="$2"
  {
    echo "# Generated by scripts/kafka-local.sh (quorum node $id, Kafka $(<"$dir/kafka-version"))"
    echo "node.id=$id"
    echo "controller.quorum.bootstrap.servers=$HOST:$QUORUM_CONTROLLER1_PORT"
    echo "controller.listener.names=CONTROLLER"
    echo "log.dirs=$dir/data"
    echo "metadata.log.dir=$dir/data"
    if [[ "$id" == 1 ]]; then
      cat <<EOF
process.roles=broker,controller
listeners=PLAINTEXT://$HOST:$QUORUM_CLIENT_PORT,CONTROLLER://$HOST:$QUORUM_CONTROLLER1_PORT
advertised.listeners=PLAINTEXT://$HOST:$QUORUM_CLIENT_PORT,CONTROLLER://$HOST:$QUORUM_CONTROLLER1_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
    else
      cat <<EOF
process.roles=controller
listeners=CONTROLLER://$HOST:$QUORUM_CONTROLLER2_PORT
advertised.listeners=CONTROLLER://$HOST:$QUORUM_CONTROLLER2_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT
EOF
    fi
  } >"$dir/server.properties"
}

# Fresh run dir + config + storage of quorum node $3, formatted with the StorageTool
# option $4 (--standalone or --no-initial-controllers). Args: version cluster_id id option
prepare_quorum_node() {
  local version="$1" cluster_id="$2" id="$3" option="$4" dir
  dir="$(quorum_node_dir "$id")"
  mkdir -p "$dir/data"
  echo "$version" >"$dir/kafka-version"
  write_quorum_properties "$dir" "$id"
  write_log_config "$dir" "$version"
  format_storage "$dir" "$version" "$cluster_id" "quorum node $id" "$option"
}

# Start the node in $1 detached from this script (own session, stdio to files).
# The pid written is that of the JVM itself (bash execs java).
launch_node() {
  local dir="$1" version i
  version="$(<"$dir/kafka-version")"
  rm -f "$dir/pid"
  # shellcheck disable=SC2016  # $$ is meant for the inner bash
  nohup setsid bash -c 'echo $$ >"$0/pid"; exec "$@"' "$dir" \
    java "${JVM_OPTS[@]}" \
    "$(log_config_opt "$dir" "$version")" \
    -cp "$(lib_dir "$version")/*" \
    kafka.Kafka "$dir/server.properties" \
    >>"$dir/console.log" 2>&1 </dev/null 9>&- &
  disown "$!"   # not our job to watch; avoids bash's "Killed" notices
  for ((i = 0; i < 50; i++)); do
    [[ -s "$dir/pid" ]] && return 0
    sleep 0.1
  done
  die "node in $dir did not start (no pid file)"
}

# The client address a node advertises, read back from its server.properties.
node_address() {
  sed -n 's|^advertised.listeners=PLAINTEXT://\([^,]*\).*|\1|p' "$1/server.properties"
}

# Wait until every node in the given dirs answers Metadata over the Kafka protocol
# with at least $1 brokers (and, unless $2 is "-", lists node id $2). Each probe also
# watches all the nodes' pids, so a node dying during start fails at once.
# On failure: print log tails, SIGKILL the given nodes (run dirs and logs stay), exit 1.
# Args: min_brokers require_node|- dir...
wait_ready() {
  local min="$1" require="$2"
  shift 2
  local -a dirs=("$@") pid_args=() extra=()
  local dir other rc deadline remaining pid
  for dir in "${dirs[@]}"; do
    if pid="$(node_pid "$dir")"; then pid_args+=(--pid "$pid"); fi
  done
  if [[ "$require" != "-" ]]; then extra=(--require-node "$require"); fi
  deadline=$((SECONDS + START_TIMEOUT))
  for dir in "${dirs[@]}"; do
    remaining=$((deadline - SECONDS))
    ((remaining < 1)) && remaining=1
    rc=0
    python3 "$PROBE" "$(node_address "$dir")" --min-brokers "$min" --timeout "$remaining" \
      --quiet "${pid_args[@]}" "${extra[@]}" || rc=$?
    [[ $rc -eq 0 ]] && continue
    if [[ $rc -eq 2 ]]; then
      for other in "${dirs[@]}"; do
        if ! node_pid "$other" >/dev/null; then
          say "node in $other died during start"
          print_log_tail "$other"
        fi
      done
    else
      say "node in $dir not ready after ${START_TIMEOUT}s"
      print_log_tail "$dir"
    fi
    for other in "${dirs[@]}"; do
      if pid="$(node_pid "$other")"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    die "start failed; run dirs and logs kept under $RUN_ROOT ('stop' removes them)"
  done
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

cmd_fetch() {
  fetch_jars "$KAFKA_VERSION"
  say "Kafka $KAFKA_VERSION jars ready in $(lib_dir "$KAFKA_VERSION")"
}

cmd_start_single() {
  local dir started cluster_id
  dir="$(single_dir)"
  case "$(node_state "$dir")" in
    running)
      [[ "$(<"$dir/kafka-version")" == "$KAFKA_VERSION" ]] \
        || die "single node runs Kafka $(<"$dir/kafka-version"), not $KAFKA_VERSION; run 'stop single' first"
      python3 "$PROBE" "$HOST:$SINGLE_CLIENT_PORT" --timeout 10 --quiet \
        || die "single node runs (pid $(node_pid "$dir")) but does not answer; run 'stop single'"
      say "single node already running (Kafka $(<"$dir/kafka-version")), nothing to do"
      echo "$HOST:$SINGLE_CLIENT_PORT"
      return 0 ;;
    paused) die "single node is paused (SIGSTOP); resume it or run 'stop single'" ;;
  esac
  local l sec_ports=()
  for l in "${SECURITY_LISTENERS[@]}"; do sec_ports+=("${l##* }"); done
  check_ports_free "$SINGLE_CLIENT_PORT" "$SINGLE_CONTROLLER_PORT" "${sec_ports[@]}"
  fetch_jars "$KAFKA_VERSION"
  started="$(now)"
  cluster_id="$(new_cluster_id "$KAFKA_VERSION")"
  prepare_node "$dir" "$KAFKA_VERSION" "$cluster_id" 1 \
    "$SINGLE_CLIENT_PORT" "$SINGLE_CONTROLLER_PORT" "1@$HOST:$SINGLE_CONTROLLER_PORT" single
  launch_node "$dir"
  say "single node (Kafka $KAFKA_VERSION, pid $(<"$dir/pid")) starting, logs in $dir/server.log"
  wait_ready 1 - "$dir"
  say "single node ready in $(elapsed_since "$started")s (cluster id $cluster_id)"
  echo "$HOST:$SINGLE_CLIENT_PORT"
}

cmd_start_cluster() {
  local n dir started cluster_id alive=() dirs=() addrs=() ports=() pid
  for n in "${CLUSTER_NODES[@]}"; do
    dir="$(node_dir "$n")"
    dirs+=("$dir")
    addrs+=("$HOST:$(cluster_client_port "$n")")
    ports+=("$(cluster_client_port "$n")" "$(cluster_controller_port "$n")" "$(cluster_sasl_ssl_port "$n")")
    case "$(node_state "$dir")" in running | paused) alive+=("$n") ;; esac
  done
  if [[ ${#alive[@]} -eq ${#CLUSTER_NODES[@]} ]]; then
    [[ "$(<"${dirs[0]}/kafka-version")" == "$KAFKA_VERSION" ]] \
      || die "cluster runs Kafka $(<"${dirs[0]}/kafka-version"), not $KAFKA_VERSION; run 'stop cluster' first"
    python3 "$PROBE" "${addrs[0]}" --min-brokers 3 --timeout 10 --quiet \
      || die "cluster processes run but do not list 3 brokers (paused node?); see 'status'"
    say "cluster already running (Kafka $(<"${dirs[0]}/kafka-version")), nothing to do"
    cluster_bootstrap
    return 0
  elif [[ ${#alive[@]} -gt 0 ]]; then
    die "cluster is partly running (nodes ${alive[*]}); use 'restart N' or 'stop cluster'"
  fi
  check_ports_free "${ports[@]}"
  fetch_jars "$KAFKA_VERSION"
  started="$(now)"
  cluster_id="$(new_cluster_id "$KAFKA_VERSION")"
  if [[ -d "$(cluster_dir)" ]]; then safe_rm_rf "$(cluster_dir)"; fi
  make_certs "$(cluster_dir)/certs"
  local sasl_addrs=""
  for n in "${CLUSTER_NODES[@]}"; do sasl_addrs+="${sasl_addrs:+,}$HOST:$(cluster_sasl_ssl_port "$n")"; done
  {
    echo "# Generated by scripts/kafka-local.sh: the cluster's SASL_SSL listeners"
    echo "FERROKAFKA_CLUSTER_SASL_SSL_BOOTSTRAP=$sasl_addrs"
    echo "FERROKAFKA_CLUSTER_CA_PEM=$(cluster_dir)/certs/ca.pem"
  } >"$(cluster_dir)/security.env"
  # Format the three nodes in parallel (each is a short JVM run), same cluster id.
  local -a format_pids=()
  for n in "${CLUSTER_NODES[@]}"; do
    prepare_node "$(node_dir "$n")" "$KAFKA_VERSION" "$cluster_id" "$n" \
      "$(cluster_client_port "$n")" "$(cluster_controller_port "$n")" "$(cluster_voters)" cluster &
    format_pids+=($!)
  done
  for pid in "${format_pids[@]}"; do wait "$pid" || die "formatting the cluster failed"; done
  for dir in "${dirs[@]}"; do launch_node "$dir"; done
  say "cluster (Kafka $KAFKA_VERSION) starting, pids $(cat "${dirs[0]}/pid" "${dirs[1]}/pid" "${dirs[2]}/pid" | tr '\n' ' ')"
  # Every node must answer AND its Metadata must list all 3 brokers.
  wait_ready 3 - "${dirs[@]}"
  say "cluster ready in $(elapsed_since "$started")s (cluster id $cluster_id)"
  cluster_bootstrap
}

cmd_start_quorum() {
  local dir1 dir2 started cluster_id pid dir_id env i
  dir1="$(quorum_node_dir 1)"
  dir2="$(quorum_node_dir 2)"
  env="$(quorum_dir)/quorum.env"
  local s1 s2
  s1="$(node_state "$dir1")"
  s2="$(node_state "$dir2")"
  if [[ "$s1" == running && "$s2" == running && -s "$env" ]]; then
    [[ "$(<"$dir1/kafka-version")" == "$KAFKA_VERSION" ]] \
      || die "quorum runs Kafka $(<"$dir1/kafka-version"), not $KAFKA_VERSION; run 'stop quorum' first"
    python3 "$PROBE" "$HOST:$QUORUM_CLIENT_PORT" --timeout 10 --quiet \
      || die "quorum node 1 runs (pid $(node_pid "$dir1")) but does not answer; run 'stop quorum'"
    say "quorum already running (Kafka $(<"$dir1/kafka-version")), nothing to do"
    echo "$HOST:$QUORUM_CLIENT_PORT"
    return 0
  elif [[ "$s1" == running || "$s1" == paused || "$s2" == running || "$s2" == paused ]]; then
    die "quorum is partly running (node 1 $s1, node 2 $s2); run 'stop quorum'"
  fi
  check_ports_free "$QUORUM_CLIENT_PORT" "$QUORUM_CONTROLLER1_PORT" "$QUORUM_CONTROLLER2_PORT"
  fetch_jars "$KAFKA_VERSION"
  started="$(now)"
  cluster_id="$(new_cluster_id "$KAFKA_VERSION")"
  if [[ -d "$(quorum_dir)" ]]; then safe_rm_rf "$(quorum_dir)"; fi
  # Both formats in parallel (short JVM runs); same cluster id.
  prepare_quorum_node "$KAFKA_VERSION" "$cluster_id" 1 --standalone &
  pid=$!
  prepare_quorum_node "$KAFKA_VERSION" "$cluster_id" 2 --no-initial-controllers \
    || { wait "$pid" || true; die "formatting the quorum failed"; }
  wait "$pid" || die "formatting the quorum failed"
  dir_id="$(sed -n 's/^directory\.id=//p' "$dir2/data/meta.properties")"
  [[ "$dir_id" =~ ^[A-Za-z0-9_-]{22}$ ]] \
    || die "no directory.id in $dir2/data/meta.properties (got '$dir_id')"
  launch_node "$dir1"
  launch_node "$dir2"
  say "quorum (Kafka $KAFKA_VERSION) starting, pids $(<"$dir1/pid") $(<"$dir2/pid"), logs in $(quorum_dir)/node{1,2}/server.log"
  wait_ready 1 - "$dir1"
  # Node 2 is ready once it follows the leader (node 1) as an observer: Kafka's raft client
  # logs its transition to FollowerState (both 3.9 and 4.x).
  for ((i = 0; i < START_TIMEOUT * 5; i++)); do
    grep -q 'transition to FollowerState' "$dir2/server.log" 2>/dev/null && break
    if ! node_pid "$dir2" >/dev/null; then
      say "quorum node 2 died during start"
      print_log_tail "$dir2"
      stop_nodes "$dir1"
      die "start failed; run dirs and logs kept under $(quorum_dir) ('stop quorum' removes them)"
    fi
    sleep 0.2
  done
  if ! grep -q 'transition to FollowerState' "$dir2/server.log" 2>/dev/null; then
    say "quorum node 2 did not follow the leader after ${START_TIMEOUT}s"
    print_log_tail "$dir2"
    stop_nodes "$dir1" "$dir2"
    die "start failed; run dirs and logs kept under $(quorum_dir) ('stop quorum' removes them)"
  fi
  {
    echo "# Generated by scripts/kafka-local.sh: the dynamic quorum (see the header)"
    echo "FERROKAFKA_QUORUM_BOOTSTRAP=$HOST:$QUORUM_CLIENT_PORT"
    echo "FERROKAFKA_QUORUM_VOTER_ID=1"
    echo "FERROKAFKA_QUORUM_OBSERVER_ID=2"
    echo "FERROKAFKA_QUORUM_OBSERVER_DIR_ID=$dir_id"
    echo "FERROKAFKA_QUORUM_OBSERVER_LISTENER=CONTROLLER"
    echo "FERROKAFKA_QUORUM_OBSERVER_HOST=$HOST"
    echo "FERROKAFKA_QUORUM_OBSERVER_PORT=$QUORUM_CONTROLLER2_PORT"
  } >"$env"
  say "quorum ready in $(elapsed_since "$started")s (cluster id $cluster_id, node 2 directory id $dir_id)"
  echo "$HOST:$QUORUM_CLIENT_PORT"
}

cmd_stop() {
  local what="${1:-}" n started
  local -a dirs=() remove=()
  case "$what" in
    single) remove=("$(single_dir)") ;;
    cluster) remove=("$(cluster_dir)") ;;
    quorum) remove=("$(quorum_dir)") ;;
    all) remove=("$(single_dir)" "$(cluster_dir)" "$(quorum_dir)") ;;
    *) die "usage: stop single|cluster|quorum|all" ;;
  esac
  if [[ "$what" == single || "$what" == all ]]; then dirs+=("$(single_dir)"); fi
  if [[ "$what" == cluster || "$what" == all ]]; then
    for n in "${CLUSTER_NODES[@]}"; do dirs+=("$(node_dir "$n")"); done
  fi
  if [[ "$what" == quorum || "$what" == all ]]; then
    dirs+=("$(quorum_node_dir 1)" "$(quorum_node_dir 2)")
  fi
  started="$(now)"
  stop_nodes "${dirs[@]}"
  for n in "${remove[@]}"; do
    if [[ -d "$n" ]]; then safe_rm_rf "$n"; fi
  done
  rmdir "$RUN_ROOT" 2>/dev/null || true
  say "stopped $what in $(elapsed_since "$started")s"
}

# Validate a cluster node number and print its run dir.
cluster_node_arg() {
  local n="${1:-}"
  [[ "$n" =~ ^[1-3]$ ]] || die "expected a cluster node number 1..3, got '${n}'"
  [[ -d "$(node_dir "$n")" ]] || die "cluster node $n has no run dir; run 'start cluster' first"
  node_dir "$n"
}

cmd_kill() {
  local dir pid
  dir="$(cluster_node_arg "${1:-}")"
  pid="$(node_pid "$dir")" || die "cluster node $1 is not running"
  kill -KILL "$pid"
  wait_gone "$dir"
  # Not done until its ports are released too (see wait_ports_free); restart checks again.
  wait_ports_free 15 "$(cluster_client_port "$1")" "$(cluster_controller_port "$1")" "$(cluster_sasl_ssl_port "$1")" || true
  say "killed cluster node $1 (pid $pid); data kept, 'restart $1' brings it back"
}

cmd_pause() {
  local dir pid
  dir="$(cluster_node_arg "${1:-}")"
  pid="$(node_pid "$dir")" || die "cluster node $1 is not running"
  kill -STOP "$pid"
  say "paused cluster node $1 (pid $pid)"
}

cmd_resume() {
  local dir pid
  dir="$(cluster_node_arg "${1:-}")"
  pid="$(node_pid "$dir")" || die "cluster node $1 is not running"
  kill -CONT "$pid"
  say "resumed cluster node $1 (pid $pid)"
}

cmd_restart() {
  local n="${1:-}" dir version started
  dir="$(cluster_node_arg "$n")"
  case "$(node_state "$dir")" in
    running | paused) die "cluster node $n is still running (pid $(node_pid "$dir")); kill it first" ;;
  esac
  [[ -f "$dir/data/meta.properties" ]] || die "cluster node $n has no formatted data dir in $dir/data"
  # Restart with the version the node was formatted with, whatever KAFKA_VERSION says now.
  version="$(<"$dir/kafka-version")"
  fetch_jars "$version"
  check_ports_free "$(cluster_client_port "$n")" "$(cluster_controller_port "$n")" "$(cluster_sasl_ssl_port "$n")"
  started="$(now)"
  printf '\n===== restart %s =====\n' "$(date '+%F %T')" >>"$dir/console.log"
  launch_node "$dir"
  # Ready when the node answers and lists itself (i.e. it re-registered and was unfenced).
  wait_ready 1 "$n" "$dir"
  say "cluster node $n (pid $(<"$dir/pid")) back in $(elapsed_since "$started")s"
}

cmd_status() {
  local dir n state pid
  dir="$(single_dir)"
  state="$(node_state "$dir")"
  pid="$(node_pid "$dir" || true)"
  if [[ "$state" == absent ]]; then
    echo "single:  not started"
  else
    echo "single:  $state${pid:+ pid $pid} $HOST:$SINGLE_CLIENT_PORT (Kafka $(cat "$dir/kafka-version" 2>/dev/null || echo '?'))"
  fi
  for n in "${CLUSTER_NODES[@]}"; do
    dir="$(node_dir "$n")"
    state="$(node_state "$dir")"
    pid="$(node_pid "$dir" || true)"
    if [[ "$state" == absent ]]; then
      echo "node $n:  not started"
    else
      echo "node $n:  $state${pid:+ pid $pid} $HOST:$(cluster_client_port "$n") (Kafka $(cat "$dir/kafka-version" 2>/dev/null || echo '?'))"
    fi
  done
  for n in 1 2; do
    dir="$(quorum_node_dir "$n")"
    state="$(node_state "$dir")"
    pid="$(node_pid "$dir" || true)"
    if [[ "$state" == absent ]]; then
      echo "quorum $n: not started"
    else
      echo "quorum $n: $state${pid:+ pid $pid} (Kafka $(cat "$dir/kafka-version" 2>/dev/null || echo '?'))"
    fi
  done
}

# Print the header comment of this file as help text.
usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# Serialize commands that change state, so that e.g. parallel test processes
# each running `start single` end up sharing one broker instead of racing.
# The lock lives next to the run dir (not inside, so `stop all` can remove it).
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$(dirname "$RUN_ROOT")"
  exec 9>"$RUN_ROOT.lock"
  flock -w 300 9 || die "another kafka-local.sh holds $RUN_ROOT.lock for over 300 s"
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    fetch | start | stop | kill | pause | resume | restart) take_lock ;;
  esac
  case "$cmd" in
    fetch) cmd_fetch ;;
    start)
      case "${1:-}" in
        single) cmd_start_single ;;
        cluster) cmd_start_cluster ;;
        quorum) cmd_start_quorum ;;
        *) die "usage: start single|cluster|quorum" ;;
      esac ;;
    stop) cmd_stop "${1:-}" ;;
    kill) cmd_kill "${1:-}" ;;
    pause) cmd_pause "${1:-}" ;;
    resume) cmd_resume "${1:-}" ;;
    restart) cmd_restart "${1:-}" ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 1 ;;
    *) die "unknown command '$cmd' (try --help)" ;;
  esac
}

main "$@"
