#!/usr/bin/env bash
# bench.sh -- producer and consumer throughput and CPU cost of ferrokafka, librdkafka (the
# rdkafka crate) and the Java client (org.apache.kafka.tools.ProducerPerformance /
# ConsumerPerformance), against the SAME local broker in ONE run. See BENCHMARKS.md for what
# is measured and how.
#
# Usage:
#   bash scripts/bench.sh produce       build, (re)use a broker, run the matrix, write
#                                       bench/results/<date>-produce.md and print it
#   bash scripts/bench.sh consume       the same for the consumer: per row and compression,
#                                       one topic is filled once (ferrokafka's producer), then
#                                       every client reads all of it in every run; writes
#                                       bench/results/<date>-consume.md
#   bash scripts/bench.sh group         a consumer group, ferrokafka vs librdkafka: (1) throughput
#                                       and CPU of 3 members (one process) draining one pre-filled
#                                       6-partition topic, (2) failover: 3 member processes, one
#                                       SIGKILLed, time until its partitions are consumed again;
#                                       writes bench/results/<date>-group.md. Uses its own broker
#                                       (FERROKAFKA_RUN_DIR=/tmp/fk-benchgrp, KAFKA_PORT_OFFSET=300,
#                                       i.e. 127.0.0.1:9392) unless BENCH_BOOTSTRAP or
#                                       KAFKA_PORT_OFFSET is set
#   bash scripts/bench.sh txn           transactions: (1) transactional produce throughput and CPU
#                                       of ferrokafka, librdkafka and Java (KafkaTool txn-bench),
#                                       BENCH_TXN_RECORDS records of BENCH_TXN_SIZE B in
#                                       transactions of BENCH_TXN_PER_TXN; (2) the exactly-once
#                                       copy throughput of ferrokafka's txn::ExactlyOncePipeline
#                                       (ferrokafka-bench eos-copy) over a pre-filled topic;
#                                       writes bench/results/<date>-txn.md. Uses its own broker
#                                       (FERROKAFKA_RUN_DIR=/tmp/fk-txnbench, KAFKA_PORT_OFFSET=1100,
#                                       i.e. 127.0.0.1:10192) unless BENCH_BOOTSTRAP or
#                                       KAFKA_PORT_OFFSET is set. Settings: BENCH_TXN_RECORDS
#                                       [500000], BENCH_TXN_SIZE [100], BENCH_TXN_PER_TXN [1000],
#                                       BENCH_EOS_RECORDS [500000], BENCH_EOS_MAX_POLL (records per
#                                       poll, so per transaction, of the pipeline) [500],
#                                       BENCH_TXN_JAVA_OPTS [-Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20],
#                                       BENCH_TXN_JAVA_WARMUP (records in Java's untimed warm-up
#                                       transaction; the Rust clients send 1) [1]
#   bash scripts/bench.sh latency       acknowledgement latency at fixed rates (issue 11): a 3-node
#                                       cluster of its own (FERROKAFKA_RUN_DIR=/tmp/fk-latbench,
#                                       KAFKA_PORT_OFFSET=3500 unless set), restarted from empty
#                                       before each fresh client; per cell ferrokafka (futures per
#                                       task, FuturesUnordered, FIFO) and librdkafka FutureProducer
#                                       run one after the other (BENCH_LAT_TOGETHER=1: at once), each
#                                       on its own topic; records per batch read
#                                       from the broker's segments; writes
#                                       bench/results/<date>-latency.md. Settings: BENCH_RUNS [3],
#                                       BENCH_LAT_SECONDS [15], BENCH_LAT_FRESH_RATES [3000 10000],
#                                       BENCH_LAT_WARM_RATES [1000 3000 10000], BENCH_LAT_PRODUCERS [3]
#   bash scripts/bench.sh build         build bench/ (target dir bench/target) only
#   bash scripts/bench.sh fetch-java    resolve the kafka-tools jars only
#
# Environment (defaults in brackets):
#   BENCH_RUNS          repetitions of every (row, compression, client) [3]; medians reported
#   BENCH_ROWS          "SIZE:RECORDS ..." [100:2000000 1024:500000]
#   BENCH_COMPRESSIONS  [none lz4]
#   BENCH_CLIENTS       [ferrokafka rdkafka java]; also ferrokafka-sasl_ssl and rdkafka-sasl_ssl:
#                       the same clients over the broker's SASL_SSL listener (TLS 1.3 +
#                       SCRAM-SHA-512, server cert verified against the run dir's CA), for the
#                       cost of security; librdkafka's TLS is the system OpenSSL linked into
#                       the bench binary only (bench/Cargo.toml; the library never uses OpenSSL)
#   BENCH_SECURITY_ENV  the security.env of the broker's kafka-local.sh run dir (its SASL_SSL
#                       address, CA and user), for the *-sasl_ssl clients
#                       [$FERROKAFKA_RUN_DIR/single/security.env, else /tmp/fk-bench/...]
#   BENCH_PAYLOADS      distinct payloads cycled through, the same for all clients [1]
#   BENCH_PARTITIONS    partitions of each fresh topic [6]
#   BENCH_LINGER_MS     linger.ms of every client (consume: of the filling producer) [5]
#   BENCH_BATCH_BYTES   batch.size of every client [unset: each client's default,
#                       16384 for ferrokafka and Java, 1000000 for librdkafka]
#   BENCH_JAVA_HEAP     -Xmx of the Java producer / consumer [1g]
#   BENCH_CONSUME_TIMEOUT  consume: seconds a client may take to read a topic [300]
#   BENCH_PAUSE         seconds of quiet before each client run [2]
#   BENCH_GROUP_RECORDS group: records in the drained topic [2000000]
#   BENCH_GROUP_SIZE    group: record value size [100]
#   BENCH_GROUP_COMPRESSION  group: compression of the drained topic [none]
#   BENCH_GROUP_MEMBERS group: members [3]
#   BENCH_SESSION_TIMEOUT_MS, BENCH_HEARTBEAT_MS, BENCH_AUTO_COMMIT_MS
#                       group: session.timeout.ms, heartbeat.interval.ms and auto.commit.interval.ms
#                       of both clients [10000, 1000, 5000]
#   BENCH_FAILOVER_RATE group: records/s the failover measurement's producer writes [3000]
#   BENCH_FAILOVER_RUNS group: failover runs per client [5]; run r kills a member
#                       (r - 0.5) / runs of a heartbeat interval after the settle period
#   BENCH_BOOTSTRAP     use this broker instead of finding/starting one on 127.0.0.1:9092
#   BENCH_KEEP_BROKER   1: leave a broker this script started running [0]
#   BENCH_KEEP_TOPICS   1: do not delete the benchmark topics at the end [0]
#   BENCH_OUT           results file [bench/results/<date>-produce.md / -consume.md]
#   KAFKA_VERSION       broker (when started here) and kafka-tools version [the running
#                       broker's, else 4.4.0]
#   FERROKAFKA_CACHE    jar cache root [~/.cache/ferrokafka]; tools jars go to
#                       $FERROKAFKA_CACHE/kafka-tools-<ver>/libs
#
# Broker: with KAFKA_PORT_OFFSET set (group mode: 300 by default), only the kafka-local.sh
# node of $FERROKAFKA_RUN_DIR on 9092 + offset is reused, else started there and stopped at
# the end. Without it: if a single node already answers on 127.0.0.1:9092 (started by kafka-local.sh
# with any run dir: $FERROKAFKA_RUN_DIR, /tmp/fk-bench, /tmp/fk-lead or the default), it is
# reused and left running; otherwise one is started with FERROKAFKA_RUN_DIR=/tmp/fk-bench
# and stopped at the end.
#
# Each client run is wrapped in `/usr/bin/time -f '%U %S %M'` (GNU time: user and system
# CPU seconds and peak RSS in KiB of the client process and its children); producer runs
# get a fresh topic each, consumer runs read the row's one pre-filled topic.
# Needs: cargo, java 17+, mvn, GNU time (apt-get install time), awk.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BENCH_DIR="$ROOT/bench"
KAFKA_LOCAL="$SCRIPT_DIR/kafka-local.sh"
export CARGO_TARGET_DIR="$BENCH_DIR/target"
BIN="$CARGO_TARGET_DIR/release/ferrokafka-bench"

BENCH_RUNS="${BENCH_RUNS:-3}"
BENCH_ROWS="${BENCH_ROWS:-100:2000000 1024:500000}"
BENCH_COMPRESSIONS="${BENCH_COMPRESSIONS:-none lz4}"
BENCH_CLIENTS_SET="${BENCH_CLIENTS:-}"
BENCH_CLIENTS="${BENCH_CLIENTS:-ferrokafka rdkafka java}"
BENCH_PAYLOADS="${BENCH_PAYLOADS:-1}"
BENCH_PARTITIONS="${BENCH_PARTITIONS:-6}"
BENCH_LINGER_MS="${BENCH_LINGER_MS:-5}"
BENCH_JAVA_HEAP="${BENCH_JAVA_HEAP:-1g}"
BENCH_PAUSE="${BENCH_PAUSE:-2}"
BENCH_CONSUME_TIMEOUT="${BENCH_CONSUME_TIMEOUT:-300}"
BENCH_GROUP_RECORDS="${BENCH_GROUP_RECORDS:-2000000}"
BENCH_GROUP_SIZE="${BENCH_GROUP_SIZE:-100}"
BENCH_GROUP_COMPRESSION="${BENCH_GROUP_COMPRESSION:-none}"
BENCH_GROUP_MEMBERS="${BENCH_GROUP_MEMBERS:-3}"
BENCH_SESSION_TIMEOUT_MS="${BENCH_SESSION_TIMEOUT_MS:-10000}"
BENCH_HEARTBEAT_MS="${BENCH_HEARTBEAT_MS:-1000}"
BENCH_AUTO_COMMIT_MS="${BENCH_AUTO_COMMIT_MS:-5000}"
BENCH_FAILOVER_RATE="${BENCH_FAILOVER_RATE:-3000}"
BENCH_FAILOVER_RUNS="${BENCH_FAILOVER_RUNS:-5}"
MODE=produce   # or consume: what report() describes
CACHE_ROOT="${FERROKAFKA_CACHE:-$HOME/.cache/ferrokafka}"
DEPENDENCY_PLUGIN_VERSION="3.8.1"   # as in kafka-local.sh
TIME_BIN=/usr/bin/time

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------

build() {
  say "building bench/ (release, -j 2, target $CARGO_TARGET_DIR) ..."
  (cd "$BENCH_DIR" && cargo build --release -j 2 --quiet) || die "cargo build of bench/ failed"
}

# ---------------------------------------------------------------------------------------
# Java: kafka-tools jars, resolved with Maven like kafka-local.sh resolves the broker.
# ---------------------------------------------------------------------------------------

tools_libs() { echo "$CACHE_ROOT/kafka-tools-$1/libs"; }

fetch_java_tools() {
  local version="$1" dir libs pom marker want output
  dir="$CACHE_ROOT/kafka-tools-$version"
  libs="$dir/libs"
  pom="$dir/pom.xml.new"
  marker="$dir/.libs-complete"
  mkdir -p "$dir"
  # No logging binding on purpose: the perf tool's own output is plain stdout, and slf4j
  # without a binding logs nothing (a one-time notice on stderr), so no client pays for logs.
  cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/bench.sh: the runtime classpath of Kafka $version's tools (ProducerPerformance). -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ferrokafka</groupId>
  <artifactId>kafka-tools-runtime</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-clients</artifactId><version>$version</version></dependency>
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
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -f "$marker" && "$(<"$marker")" == "$want" && -f "$libs/kafka-tools-$version.jar" ]]; then
    rm -f "$pom"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn (Maven) not found on PATH"
  mv -f "$pom" "$dir/pom.xml"
  rm -f "$marker"
  rm -rf "$libs"
  say "resolving kafka-tools $version jars from Maven Central into $libs ..."
  if ! output="$(cd "$dir" && mvn -q -B -f pom.xml dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$libs" 2>&1)"; then
    printf '%s\n' "$output" | sed 's/\x1b\[[0-9;]*m//g' >&2
    die "mvn could not resolve kafka-tools $version (pom: $dir/pom.xml)"
  fi
  [[ -f "$libs/kafka-tools-$version.jar" ]] || die "mvn succeeded but $libs/kafka-tools-$version.jar is missing"
  echo "$want" >"$marker"
  say "resolved $(find "$libs" -name '*.jar' | wc -l) jars"
}

# ---------------------------------------------------------------------------------------
# Broker
# ---------------------------------------------------------------------------------------

BOOTSTRAP=""
STARTED_BROKER=0
BROKER_VERSION=""

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The run dir and port offset of a broker this script starts (and of the one it looks for
# first). KAFKA_PORT_OFFSET set: only that run dir's node on 9092+offset is considered (never
# another engineer's broker on 9092); unset: the old behaviour (any kafka-local.sh node on
# 9092, else one started in /tmp/fk-bench).
OWN_RUN_DIR="${FERROKAFKA_RUN_DIR:-/tmp/fk-bench}"
OWN_PORT_OFFSET="${KAFKA_PORT_OFFSET:-}"

own_kafka_local() { FERROKAFKA_RUN_DIR="$OWN_RUN_DIR" KAFKA_PORT_OFFSET="${OWN_PORT_OFFSET:-0}" "$KAFKA_LOCAL" "$@"; }

find_or_start_broker() {
  if [[ -n "${BENCH_BOOTSTRAP:-}" ]]; then
    BOOTSTRAP="$BENCH_BOOTSTRAP"
    BROKER_VERSION="${KAFKA_VERSION:-4.4.0}"
    say "using BENCH_BOOTSTRAP=$BOOTSTRAP (assuming Kafka $BROKER_VERSION)"
    return
  fi
  local rd line port
  if [[ -n "$OWN_PORT_OFFSET" ]]; then
    port=$((9092 + OWN_PORT_OFFSET))
    line="$(own_kafka_local status 2>/dev/null | grep '^single:' || true)"
    if [[ "$line" == *"running pid"* ]]; then
      BOOTSTRAP="127.0.0.1:$port"
      BROKER_VERSION="$(sed -n 's/.*(Kafka \([^)]*\)).*/\1/p' <<<"$line")"
      [[ "$BROKER_VERSION" == "?" || -z "$BROKER_VERSION" ]] && BROKER_VERSION="${KAFKA_VERSION:-4.4.0}"
      say "reusing the running single node (run dir $OWN_RUN_DIR, Kafka $BROKER_VERSION) at $BOOTSTRAP"
      return
    fi
    port_open "$port" && die "something that is not $OWN_RUN_DIR's node answers on 127.0.0.1:$port; set BENCH_BOOTSTRAP to use it, or another KAFKA_PORT_OFFSET"
  else
    for rd in "${FERROKAFKA_RUN_DIR:-}" /tmp/fk-bench /tmp/fk-lead ""; do
      if [[ -n "$rd" ]]; then
        line="$(FERROKAFKA_RUN_DIR="$rd" "$KAFKA_LOCAL" status 2>/dev/null | grep '^single:' || true)"
      else
        line="$(env -u FERROKAFKA_RUN_DIR "$KAFKA_LOCAL" status 2>/dev/null | grep '^single:' || true)"
      fi
      if [[ "$line" == *"running pid"* && "$line" == *" 127.0.0.1:9092 "* ]]; then
        BOOTSTRAP=127.0.0.1:9092
        BROKER_VERSION="$(sed -n 's/.*(Kafka \([^)]*\)).*/\1/p' <<<"$line")"
        [[ "$BROKER_VERSION" == "?" || -z "$BROKER_VERSION" ]] && BROKER_VERSION="${KAFKA_VERSION:-4.4.0}"
        say "reusing the running single node (run dir ${rd:-default}, Kafka $BROKER_VERSION) at $BOOTSTRAP"
        return
      fi
    done
    if port_open 9092; then
      BOOTSTRAP=127.0.0.1:9092
      BROKER_VERSION="${KAFKA_VERSION:-4.4.0}"
      say "something answers on 127.0.0.1:9092 (not a kafka-local.sh node we know); reusing it, assuming Kafka $BROKER_VERSION"
      return
    fi
  fi
  BROKER_VERSION="${KAFKA_VERSION:-4.4.0}"
  say "starting a single node (Kafka $BROKER_VERSION, FERROKAFKA_RUN_DIR=$OWN_RUN_DIR, KAFKA_PORT_OFFSET=${OWN_PORT_OFFSET:-0}) ..."
  BOOTSTRAP="$(KAFKA_VERSION="$BROKER_VERSION" own_kafka_local start single)"
  STARTED_BROKER=1
}

# ---------------------------------------------------------------------------------------
# One client run
# ---------------------------------------------------------------------------------------

TOPICS_CREATED=()
RUN_DIR=""     # per-invocation scratch dir (logs, payload files, raw results)
RAW=""         # raw results TSV

cleanup() {
  local rc=$?
  if [[ ${#TOPICS_CREATED[@]} -gt 0 && "${BENCH_KEEP_TOPICS:-0}" != 1 && -x "$BIN" && -n "$BOOTSTRAP" ]]; then
    say "deleting ${#TOPICS_CREATED[@]} benchmark topics ..."
    "$BIN" delete-topics --bootstrap "$BOOTSTRAP" "${TOPICS_CREATED[@]/#/--topic=}" >/dev/null 2>&1 \
      || say "could not delete all benchmark topics (harmless)"
  fi
  if [[ $STARTED_BROKER -eq 1 && "${BENCH_KEEP_BROKER:-0}" != 1 ]]; then
    say "stopping the broker this run started ..."
    own_kafka_local stop single >/dev/null 2>&1 || true
  fi
  exit $rc
}

# Warn when other work (a cargo build, a test binary, another benchmark) shares the cores.
check_quiet() {
  local busy
  busy="$( (ps -eo pid=,comm= | awk '$2 ~ /^(cargo|rustc|cc1|cc1plus|ld|javac|mvn)$/ {print $1" "$2}'
            ps -eo pid=,args= | awk '$2 ~ /\/target\/(debug|release)\/deps\// {print $1" "$2}') | head -5 || true)"
  if [[ -n "$busy" ]]; then
    say "WARNING: other builds or tests run now, numbers will be noisy: $(tr '\n' ' ' <<<"$busy")"
  fi
}

# For a Rust client: the bench binary's --client, its bootstrap, its environment (the
# security settings of ferrokafka-sasl_ssl, from the broker's security.env) and its extra
# --prop options (those of rdkafka-sasl_ssl: the same listener, mechanism, user and CA).
SASL_SSL_BOOTSTRAP=""
SECURITY_VARS=()
RDKAFKA_SECURITY_PROPS=()
load_security_env() {
  [[ " $BENCH_CLIENTS " == *"-sasl_ssl "* ]] || return 0
  local f="${BENCH_SECURITY_ENV:-${FERROKAFKA_RUN_DIR:-/tmp/fk-bench}/single/security.env}"
  [[ -f "$f" ]] || die "the *-sasl_ssl clients need the broker's security.env (BENCH_SECURITY_ENV), not found at $f"
  # shellcheck disable=SC1090
  . "$f"
  SASL_SSL_BOOTSTRAP="${FERROKAFKA_SASL_SSL_BOOTSTRAP:?no FERROKAFKA_SASL_SSL_BOOTSTRAP in $f}"
  SECURITY_VARS=(FERRO_SECURITY=sasl_ssl "FERRO_CA_PEM=$FERROKAFKA_CA_PEM" FERRO_SASL_MECHANISM=SCRAM-SHA-512
                 "FERRO_SASL_USER=$FERROKAFKA_SASL_USER" "FERRO_SASL_PASSWORD=$FERROKAFKA_SASL_PASSWORD")
  # librdkafka verifies the broker's hostname by default (ssl.endpoint.identification.algorithm
  # =https); kafka-local.sh's server cert has 127.0.0.1 and localhost in its SAN.
  RDKAFKA_SECURITY_PROPS=(--prop security.protocol=SASL_SSL --prop sasl.mechanisms=SCRAM-SHA-512
                          --prop "sasl.username=$FERROKAFKA_SASL_USER" --prop "sasl.password=$FERROKAFKA_SASL_PASSWORD"
                          --prop "ssl.ca.location=$FERROKAFKA_CA_PEM")
  say "the *-sasl_ssl clients connect to $SASL_SSL_BOOTSTRAP (CA $FERROKAFKA_CA_PEM)"
}
# rust_client CLIENT -> sets RC_CLIENT, RC_BOOTSTRAP, RC_ENV, RC_PROPS
rust_client() {
  RC_CLIENT="$1"; RC_BOOTSTRAP="$BOOTSTRAP"; RC_ENV=(FERRO_SECURITY=plaintext); RC_PROPS=()
  if [[ "$1" == ferrokafka-sasl_ssl ]]; then
    RC_CLIENT=ferrokafka; RC_BOOTSTRAP="$SASL_SSL_BOOTSTRAP"; RC_ENV=("${SECURITY_VARS[@]}")
  elif [[ "$1" == rdkafka-sasl_ssl ]]; then
    RC_CLIENT=rdkafka; RC_BOOTSTRAP="$SASL_SSL_BOOTSTRAP"; RC_PROPS=("${RDKAFKA_SECURITY_PROPS[@]}")
  fi
}

# run_client CLIENT SIZE RECORDS COMPRESSION RUN  -> appends one line to $RAW
run_client() {
  local client="$1" size="$2" records="$3" comp="$4" run="$5"
  local topic="bench-$client-$size-$comp-r$run-$(date +%s%N | cut -c1-13)"
  local log="$RUN_DIR/$client-$size-$comp-r$run.log" tfile="$RUN_DIR/$client-$size-$comp-r$run.time"
  "$BIN" create-topic --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$BENCH_PARTITIONS" --replication-factor 1 \
    || die "could not create topic $topic"
  TOPICS_CREATED+=("$topic")
  sleep "$BENCH_PAUSE"
  local rc=0
  # BENCH_BATCH_BYTES: the same batch.size for every client (default: each client's own).
  local rd_batch=() java_batch=()
  if [[ -n "${BENCH_BATCH_BYTES:-}" ]]; then
    [[ "$client" == rdkafka* ]] && rd_batch=(--prop "batch.size=$BENCH_BATCH_BYTES")
    java_batch=("batch.size=$BENCH_BATCH_BYTES")
  fi
  case "$client" in
    ferrokafka | rdkafka | ferrokafka-sasl_ssl | rdkafka-sasl_ssl)
      rust_client "$client"
      env "${RC_ENV[@]}" FERRO_BATCH_SIZE="${BENCH_BATCH_BYTES:-}" "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
        "$BIN" produce --client "$RC_CLIENT" --bootstrap "$RC_BOOTSTRAP" --topic "$topic" \
        --records "$records" --size "$size" --compression "$comp" --acks all --idempotence true \
        --linger-ms "$BENCH_LINGER_MS" --payloads "$BENCH_PAYLOADS" "${rd_batch[@]}" "${RC_PROPS[@]}" >"$log" 2>&1 || rc=$?
      ;;
    java)
      # One warm-up record, like the Rust clients (--warmup-records exists from Kafka 4.0;
      # with 3.x the total line, which includes the first metadata fetch, is used instead).
      local warm=()
      [[ "${BROKER_VERSION%%.*}" -ge 4 ]] && warm=(--warmup-records 1)
      "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
        java "-Xmx$BENCH_JAVA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -cp "$(tools_libs "$BROKER_VERSION")/*" org.apache.kafka.tools.ProducerPerformance \
        --topic "$topic" --num-records "$((records + ${#warm[@]} / 2))" "${warm[@]}" \
        --payload-file "$RUN_DIR/payload-$size.txt" \
        --throughput -1 --producer-props bootstrap.servers="$BOOTSTRAP" acks=all enable.idempotence=true \
        linger.ms="$BENCH_LINGER_MS" compression.type="$comp" "${java_batch[@]}" >"$log" 2>&1 || rc=$?
      ;;
    *) die "unknown client $client" ;;
  esac
  [[ $rc -eq 0 ]] || { tail -20 "$log" >&2; die "$client run failed (exit $rc), log: $log"; }

  local rps mbps secs
  if [[ "$client" == java ]]; then
    # The final summary: "N [steady state ]records sent, R records/sec (M MB/sec), ... 50th, ..."
    # (with a warm-up record the steady-state line, printed last, covers exactly N records).
    local line sent
    line="$(grep -E '^[0-9]+ (steady state )?records sent, .* 50th' "$log" | tail -1 || true)"
    [[ -n "$line" ]] || { tail -20 "$log" >&2; die "no summary line from the Java producer, log: $log"; }
    if grep -qE 'Exception|ERROR' "$log"; then
      grep -m5 -E 'Exception|ERROR' "$log" >&2
      die "the Java producer reported errors, log: $log"
    fi
    sent="$(awk '{print $1}' <<<"$line")"
    [[ "$sent" == "$records" ]] || die "the Java producer acknowledged $sent of $records records, log: $log"
    rps="$(sed -E 's/^[0-9]+ (steady state )?records sent, ([0-9.]+) records\/sec.*/\2/' <<<"$line")"
    secs="$(awk -v n="$records" -v r="$rps" 'BEGIN { printf "%.3f", n / r }')"
  else
    local line
    line="$(grep '^RESULT ' "$log" | tail -1 || true)"
    [[ -n "$line" ]] || { tail -20 "$log" >&2; die "no RESULT line, log: $log"; }
    rps="$(sed -E 's/.* records_per_sec=([0-9.]+).*/\1/' <<<"$line")"
    secs="$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$line")"
  fi
  # MiB/s of record values, computed the same way for every client.
  mbps="$(awk -v r="$rps" -v s="$size" 'BEGIN { printf "%.2f", r * s / 1048576 }')"
  local user sys rss cpu cpu_per_m
  read -r user sys rss <"$tfile" || die "no timing output in $tfile"
  cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
  cpu_per_m="$(awk -v c="$cpu" -v n="$records" 'BEGIN { printf "%.3f", c / n * 1000000 }')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$client" "$size" "$records" "$comp" "$run" "$secs" "$rps" "$mbps" "$cpu" "$cpu_per_m" "$rss" "$topic" >>"$RAW"
  say "  $client size=$size comp=$comp run=$run: $rps rec/s, $mbps MiB/s, cpu ${cpu}s (user $user sys $sys), rss ${rss} KiB"
}

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

# median CLIENT SIZE COMP COLUMN  (columns of $RAW, 1-based)
median() {
  awk -F'\t' -v c="$1" -v s="$2" -v z="$3" -v col="$4" '$1 == c && $2 == s && $4 == z { print $col }' "$RAW" \
    | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
fmt_int() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.0f", x }'; }
fmt_mib() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.0f", x / 1024 }'; }

label() { case "$1" in ferrokafka) echo ferrokafka ;; ferrokafka-sasl_ssl) echo "ferrokafka SASL_SSL (TLS + SCRAM-SHA-512)" ;; rdkafka) echo "librdkafka $RDKAFKA_VERSION" ;; rdkafka-sasl_ssl) echo "librdkafka $RDKAFKA_VERSION SASL_SSL (TLS + SCRAM-SHA-512)" ;; java) echo "Java $BROKER_VERSION" ;; esac; }

report() {
  local out="$1" row size records comp client
  {
    echo "# ${MODE^}r benchmark, $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`BENCH_RUNS=$BENCH_RUNS BENCH_ROWS=\"$BENCH_ROWS\" BENCH_COMPRESSIONS=\"$BENCH_COMPRESSIONS\" BENCH_CLIENTS=\"$BENCH_CLIENTS\" bash scripts/bench.sh $MODE\`"
    echo
    echo "- ferrokafka: git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "- librdkafka $RDKAFKA_VERSION (rdkafka crate $RDKAFKA_CRATE), Java client $BROKER_VERSION on $(java -version 2>&1 | head -1)"
    if [[ $MODE == produce ]]; then
      echo "- broker: Kafka $BROKER_VERSION, single node at $BOOTSTRAP, $BENCH_PARTITIONS partitions, RF 1, a fresh topic per client run"
    else
      echo "- broker: Kafka $BROKER_VERSION, single node at $BOOTSTRAP, $BENCH_PARTITIONS partitions, RF 1, one topic per (size, compression) filled once, read whole by every client run"
    fi
    echo "- machine: $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr); broker and client share the cores"
    if [[ $MODE == produce ]]; then
      echo "- every client: acks=all, enable.idempotence=true, linger.ms=$BENCH_LINGER_MS, no key, $BENCH_PAYLOADS distinct payload(s) of random A-Z letters, other settings at the client's defaults"
    else
      echo "- data: written once per topic by ferrokafka's producer (acks=all, idempotent, linger.ms=$BENCH_LINGER_MS, its default batch size, the row's compression), no key, $BENCH_PAYLOADS distinct payload(s) of random A-Z letters"
      echo "- every client: assign mode (Java: ConsumerPerformance, which subscribes with a fresh group; its join time excluded), from offset 0, clock from the first poll to the N-th record, settings at the client's defaults except: ferrokafka auto_offset_reset=earliest; librdkafka group.id (never joined), enable.auto.commit=false, start offset in the assignment; Java: the tool's own check.crcs=false, receive.buffer.bytes=2 MiB, auto.offset.reset=earliest, -Xmx$BENCH_JAVA_HEAP"
      echo "- CRC-32C of each batch: verified by ferrokafka (always), not by librdkafka (check.crcs=false, its default) nor by the Java tool (it sets check.crcs=false)"
    fi
    echo "- medians of $BENCH_RUNS run(s); CPU = user + sys seconds of the client process (GNU time), per million records; RSS = peak resident set"
    echo
    echo "| size | records | compression | client | records/s | MiB/s | CPU s / M records | peak RSS MiB |"
    echo "|---:|---:|---|---|---:|---:|---:|---:|"
    for row in $BENCH_ROWS; do
      size="${row%%:*}"; records="${row##*:}"
      for comp in $BENCH_COMPRESSIONS; do
        for client in $BENCH_CLIENTS; do
          echo "| $size B | $records | $comp | $(label "$client") | $(fmt_int "$(median "$client" "$size" "$comp" 7)") | $(median "$client" "$size" "$comp" 8) | $(median "$client" "$size" "$comp" 10) | $(fmt_mib "$(median "$client" "$size" "$comp" 11)") |"
        done
      done
    done
    echo
    echo "Ratios ferrokafka / other (medians): throughput > 1 and CPU, RSS < 1 favour ferrokafka. Against ferrokafka SASL_SSL: the cost of TLS + SASL (throughput > 1 and CPU < 1: plaintext is faster and cheaper by that factor)."
    echo
    echo "| size | compression | vs | throughput | CPU per record | peak RSS |"
    echo "|---:|---|---|---:|---:|---:|"
    for row in $BENCH_ROWS; do
      size="${row%%:*}"
      for comp in $BENCH_COMPRESSIONS; do
        for client in rdkafka java ferrokafka-sasl_ssl; do
          [[ " $BENCH_CLIENTS " == *" $client "* && " $BENCH_CLIENTS " == *" ferrokafka "* ]] || continue
          echo "| $size B | $comp | $(label "$client") | $(ratio "$(median ferrokafka "$size" "$comp" 7)" "$(median "$client" "$size" "$comp" 7)") | $(ratio "$(median ferrokafka "$size" "$comp" 10)" "$(median "$client" "$size" "$comp" 10)") | $(ratio "$(median ferrokafka "$size" "$comp" 11)" "$(median "$client" "$size" "$comp" 11)") |"
        done
      done
    done
    if [[ " $BENCH_CLIENTS " == *"-sasl_ssl "* ]]; then
      echo
      echo "Cost of SASL_SSL (TLS + SCRAM-SHA-512) per client (medians): TLS cost = plaintext / SASL_SSL throughput (> 1: TLS is slower by that factor) and SASL_SSL / plaintext client CPU per record (> 1: TLS costs that much more CPU)."
      echo
      echo "| size | compression | client | plaintext records/s | SASL_SSL records/s | TLS cost: throughput | plaintext CPU s / M | SASL_SSL CPU s / M | TLS cost: CPU per record |"
      echo "|---:|---|---|---:|---:|---:|---:|---:|---:|"
      local base
      for row in $BENCH_ROWS; do
        size="${row%%:*}"
        for comp in $BENCH_COMPRESSIONS; do
          for base in ferrokafka rdkafka; do
            [[ " $BENCH_CLIENTS " == *" $base "* && " $BENCH_CLIENTS " == *" $base-sasl_ssl "* ]] || continue
            echo "| $size B | $comp | $(label "$base") | $(fmt_int "$(median "$base" "$size" "$comp" 7)") | $(fmt_int "$(median "$base-sasl_ssl" "$size" "$comp" 7)") | $(ratio "$(median "$base" "$size" "$comp" 7)" "$(median "$base-sasl_ssl" "$size" "$comp" 7)") | $(median "$base" "$size" "$comp" 10) | $(median "$base-sasl_ssl" "$size" "$comp" 10) | $(ratio "$(median "$base-sasl_ssl" "$size" "$comp" 10)" "$(median "$base" "$size" "$comp" 10)") |"
          done
        done
      done
      if [[ " $BENCH_CLIENTS " == *" ferrokafka-sasl_ssl "* && " $BENCH_CLIENTS " == *" rdkafka-sasl_ssl "* ]]; then
        echo
        echo "ferrokafka / librdkafka, both over SASL_SSL (medians): throughput > 1 and CPU < 1 favour ferrokafka."
        echo
        echo "| size | compression | throughput | CPU per record | peak RSS |"
        echo "|---:|---|---:|---:|---:|"
        for row in $BENCH_ROWS; do
          size="${row%%:*}"
          for comp in $BENCH_COMPRESSIONS; do
            echo "| $size B | $comp | $(ratio "$(median ferrokafka-sasl_ssl "$size" "$comp" 7)" "$(median rdkafka-sasl_ssl "$size" "$comp" 7)") | $(ratio "$(median ferrokafka-sasl_ssl "$size" "$comp" 10)" "$(median rdkafka-sasl_ssl "$size" "$comp" 10)") | $(ratio "$(median ferrokafka-sasl_ssl "$size" "$comp" 11)" "$(median rdkafka-sasl_ssl "$size" "$comp" 11)") |"
          done
        done
      fi
    fi
    echo
    echo "<details><summary>Raw runs</summary>"
    echo
    echo "| client | size | records | compression | run | seconds | records/s | MiB/s | CPU s | CPU s / M | peak RSS KiB |"
    echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' "$RAW"
    echo
    echo "</details>"
  } >"$out"
}

# ---------------------------------------------------------------------------------------
# produce
# ---------------------------------------------------------------------------------------

RDKAFKA_VERSION="?"
RDKAFKA_CRATE="?"

# Build, broker, Java jars and versions: the same for both benchmarks.
setup_common() {
  [[ -x "$TIME_BIN" ]] || die "$TIME_BIN (GNU time) is missing: apt-get install time"
  command -v java >/dev/null 2>&1 || [[ " $BENCH_CLIENTS " != *" java "* ]] || die "java not found"
  build
  trap cleanup EXIT
  find_or_start_broker
  load_security_env
  if [[ " $BENCH_CLIENTS " == *" java "* ]]; then
    fetch_java_tools "$BROKER_VERSION"
  fi
  RDKAFKA_CRATE="$(awk '/^name = "rdkafka"$/ { getline; gsub(/[^0-9.]/, ""); print }' "$BENCH_DIR/Cargo.lock")"
  RDKAFKA_VERSION="$(awk '/^name = "rdkafka-sys"$/ { getline; sub(/.*\+/, ""); gsub(/"/, ""); print }' "$BENCH_DIR/Cargo.lock")"
}

finish_report() {
  local out="${BENCH_OUT:-$BENCH_DIR/results/$(date +%Y-%m-%d)-$MODE.md}"
  mkdir -p "$(dirname "$out")"
  report "$out"
  cp "$RAW" "${out%.md}.tsv"
  say "results: $out (raw: ${out%.md}.tsv, logs: $RUN_DIR)"
  cat "$out"
}

cmd_produce() {
  MODE=produce
  setup_common

  RUN_DIR="$(mktemp -d /tmp/fk-bench-produce.XXXXXX)"
  RAW="$RUN_DIR/raw.tsv"
  : >"$RAW"
  local row size records comp run client i n clients
  for row in $BENCH_ROWS; do
    size="${row%%:*}"
    "$BIN" payload-file --size "$size" --payloads "$BENCH_PAYLOADS" --out "$RUN_DIR/payload-$size.txt"
  done
  read -r -a clients <<<"$BENCH_CLIENTS"
  n=${#clients[@]}
  say "runs=$BENCH_RUNS rows=[$BENCH_ROWS] compressions=[$BENCH_COMPRESSIONS] clients=[$BENCH_CLIENTS]; logs in $RUN_DIR"
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    for row in $BENCH_ROWS; do
      size="${row%%:*}"; records="${row##*:}"
      for comp in $BENCH_COMPRESSIONS; do
        check_quiet
        # Rotate the client order each run, so no client always goes first (or last).
        for ((i = 0; i < n; i++)); do
          client="${clients[$(((i + run - 1) % n))]}"
          run_client "$client" "$size" "$records" "$comp" "$run"
        done
      done
    done
  done
  finish_report
}

# ---------------------------------------------------------------------------------------
# consume
# ---------------------------------------------------------------------------------------

# fill_topic SIZE RECORDS COMPRESSION  -> sets FILLED_TOPIC to a fresh topic holding exactly
# RECORDS records, written by ferrokafka's producer (its one warm-up record + RECORDS - 1).
fill_topic() {
  local size="$1" records="$2" comp="$3"
  local topic="bench-consume-$size-$comp-$(date +%s%N | cut -c1-13)"
  local log="$RUN_DIR/fill-$size-$comp.log"
  "$BIN" create-topic --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$BENCH_PARTITIONS" --replication-factor 1 \
    || die "could not create topic $topic"
  TOPICS_CREATED+=("$topic")
  "$BIN" produce --client ferrokafka --bootstrap "$BOOTSTRAP" --topic "$topic" \
    --records "$((records - 1))" --size "$size" --compression "$comp" --acks all --idempotence true \
    --linger-ms "$BENCH_LINGER_MS" --payloads "$BENCH_PAYLOADS" >"$log" 2>&1 \
    || { tail -20 "$log" >&2; die "filling $topic failed, log: $log"; }
  FILLED_TOPIC="$topic"
}

# run_consumer CLIENT SIZE RECORDS COMPRESSION RUN TOPIC  -> appends one line to $RAW
run_consumer() {
  local client="$1" size="$2" records="$3" comp="$4" run="$5" topic="$6"
  local log="$RUN_DIR/$client-$size-$comp-r$run.log" tfile="$RUN_DIR/$client-$size-$comp-r$run.time"
  sleep "$BENCH_PAUSE"
  local rc=0
  case "$client" in
    ferrokafka | rdkafka | ferrokafka-sasl_ssl | rdkafka-sasl_ssl)
      rust_client "$client"
      env "${RC_ENV[@]}" "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
        "$BIN" consume --client "$RC_CLIENT" --bootstrap "$RC_BOOTSTRAP" --topic "$topic" \
        --records "$records" --partitions "$BENCH_PARTITIONS" --size "$size" --compression "$comp" \
        --timeout-s "$BENCH_CONSUME_TIMEOUT" "${RC_PROPS[@]}" >"$log" 2>&1 || rc=$?
      ;;
    java)
      # ConsumerPerformance subscribes (a fresh group each run, so it starts at offset 0 by
      # its auto.offset.reset=earliest) and stops once it has N records.
      "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
        java "-Xmx$BENCH_JAVA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -cp "$(tools_libs "$BROKER_VERSION")/*" org.apache.kafka.tools.ConsumerPerformance \
        --bootstrap-server "$BOOTSTRAP" --topic "$topic" --group "bench-java-$size-$comp-r$run-$(date +%s%N | cut -c1-13)" \
        --num-records "$records" --timeout "$((BENCH_CONSUME_TIMEOUT * 1000))" >"$log" 2>&1 || rc=$?
      ;;
    *) die "unknown client $client" ;;
  esac
  [[ $rc -eq 0 ]] || { tail -20 "$log" >&2; die "$client run failed (exit $rc), log: $log"; }

  local rps mbps secs
  if [[ "$client" == java ]]; then
    # The summary line after the header "start.time, end.time, data.consumed.in.MB, MB.sec,
    # data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec,
    # fetch.nMsg.sec": fetch.time.ms is the time from the end of the group join (partitions
    # assigned) to the N-th record, in whole milliseconds.
    local line got fetch_ms
    if grep -qE 'WARNING: Exiting before|Exception|ERROR' "$log"; then
      grep -m5 -E 'WARNING|Exception|ERROR' "$log" >&2
      die "the Java consumer reported errors, log: $log"
    fi
    line="$(grep -A1 '^start.time, end.time' "$log" | tail -1 | tr -d ' ')"
    [[ "$line" == *,*,*,*,*,*,*,*,*,* ]] || { tail -20 "$log" >&2; die "no summary line from the Java consumer, log: $log"; }
    got="$(cut -d, -f5 <<<"$line")"
    fetch_ms="$(cut -d, -f8 <<<"$line")"
    [[ "$got" == "$records" ]] || die "the Java consumer read $got of $records records, log: $log"
    secs="$(awk -v ms="$fetch_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
    rps="$(awk -v n="$records" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')"
  else
    local line
    line="$(grep '^RESULT ' "$log" | tail -1 || true)"
    [[ -n "$line" ]] || { tail -20 "$log" >&2; die "no RESULT line, log: $log"; }
    rps="$(sed -E 's/.* records_per_sec=([0-9.]+).*/\1/' <<<"$line")"
    secs="$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$line")"
  fi
  mbps="$(awk -v r="$rps" -v s="$size" 'BEGIN { printf "%.2f", r * s / 1048576 }')"
  local user sys rss cpu cpu_per_m
  read -r user sys rss <"$tfile" || die "no timing output in $tfile"
  cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
  cpu_per_m="$(awk -v c="$cpu" -v n="$records" 'BEGIN { printf "%.3f", c / n * 1000000 }')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$client" "$size" "$records" "$comp" "$run" "$secs" "$rps" "$mbps" "$cpu" "$cpu_per_m" "$rss" "$topic" >>"$RAW"
  say "  $client size=$size comp=$comp run=$run: $rps rec/s, $mbps MiB/s, cpu ${cpu}s (user $user sys $sys), rss ${rss} KiB"
}

cmd_consume() {
  MODE=consume
  setup_common
  RUN_DIR="$(mktemp -d /tmp/fk-bench-consume.XXXXXX)"
  RAW="$RUN_DIR/raw.tsv"
  : >"$RAW"
  local row size records comp run client i n clients
  declare -A topic_of=()
  say "filling one topic per row and compression ..."
  for row in $BENCH_ROWS; do
    size="${row%%:*}"; records="${row##*:}"
    [[ "$records" -ge 2 ]] || die "consume rows need at least 2 records"
    for comp in $BENCH_COMPRESSIONS; do
      fill_topic "$size" "$records" "$comp"
      topic_of["$size:$comp"]="$FILLED_TOPIC"
      say "  $FILLED_TOPIC: $records records of $size B, $comp"
    done
  done
  read -r -a clients <<<"$BENCH_CLIENTS"
  n=${#clients[@]}
  say "runs=$BENCH_RUNS rows=[$BENCH_ROWS] compressions=[$BENCH_COMPRESSIONS] clients=[$BENCH_CLIENTS]; logs in $RUN_DIR"
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    for row in $BENCH_ROWS; do
      size="${row%%:*}"; records="${row##*:}"
      for comp in $BENCH_COMPRESSIONS; do
        check_quiet
        for ((i = 0; i < n; i++)); do
          client="${clients[$(((i + run - 1) % n))]}"
          run_consumer "$client" "$size" "$records" "$comp" "$run" "${topic_of["$size:$comp"]}"
        done
      done
    done
  done
  finish_report
}

# ---------------------------------------------------------------------------------------
# group: a consumer group's throughput, and its failover time after a member's SIGKILL
# ---------------------------------------------------------------------------------------

GRAW=""   # group throughput runs: client run secs rps mbps window_cpu window_cpu_per_m cpu cpu_per_m rss dups formed_s per_member
FRAW=""   # failover runs: client run join_s reassign_s failover_s killed_partitions kill_delay_ms

# run_group CLIENT RUN TOPIC  -> appends one line to $GRAW
run_group() {
  local client="$1" run="$2" topic="$3"
  local log="$RUN_DIR/group-$client-r$run.log" tfile="$RUN_DIR/group-$client-r$run.time"
  sleep "$BENCH_PAUSE"
  local rc=0
  "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
    "$BIN" group --client "$client" --bootstrap "$BOOTSTRAP" --topic "$topic" \
    --records "$BENCH_GROUP_RECORDS" --partitions "$BENCH_PARTITIONS" --members "$BENCH_GROUP_MEMBERS" \
    --size "$BENCH_GROUP_SIZE" --compression "$BENCH_GROUP_COMPRESSION" --timeout-s "$BENCH_CONSUME_TIMEOUT" \
    --session-timeout-ms "$BENCH_SESSION_TIMEOUT_MS" --heartbeat-ms "$BENCH_HEARTBEAT_MS" \
    --auto-commit-ms "$BENCH_AUTO_COMMIT_MS" >"$log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || { tail -20 "$log" >&2; die "$client group run failed (exit $rc), log: $log"; }
  local line
  line="$(grep '^RESULT ' "$log" | tail -1 || true)"
  [[ -n "$line" ]] || { tail -20 "$log" >&2; die "no RESULT line, log: $log"; }
  field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$line"; }
  local secs rps mbps dups formed per wcpu wcpu_per_m user sys rss cpu cpu_per_m
  secs="$(field seconds)"; rps="$(field records_per_sec)"; mbps="$(field mb_per_sec)"
  dups="$(field duplicates)"; formed="$(field formed_s)"; per="$(field per_member)"; wcpu="$(field window_cpu_s)"
  wcpu_per_m="$(awk -v c="$wcpu" -v n="$BENCH_GROUP_RECORDS" 'BEGIN { printf "%.3f", c / n * 1000000 }')"
  read -r user sys rss <"$tfile" || die "no timing output in $tfile"
  cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
  cpu_per_m="$(awk -v c="$cpu" -v n="$BENCH_GROUP_RECORDS" 'BEGIN { printf "%.3f", c / n * 1000000 }')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$client" "$run" "$secs" "$rps" "$mbps" "$wcpu" "$wcpu_per_m" "$cpu" "$cpu_per_m" "$rss" "$dups" "$formed" "$per" >>"$GRAW"
  say "  group $client run=$run: $rps rec/s in ${secs}s, cpu ${wcpu}s in the clock window (${cpu}s whole process), rss ${rss} KiB, $dups duplicates, group formed in ${formed}s, per member $per"
}

# run_failover CLIENT RUN  -> appends one line to $FRAW (a fresh topic per run)
run_failover() {
  local client="$1" run="$2"
  local topic="bench-failover-$client-r$run-$(date +%s%N | cut -c1-13)"
  local log="$RUN_DIR/failover-$client-r$run.log" events="$RUN_DIR/failover-$client-r$run.events"
  "$BIN" create-topic --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$BENCH_PARTITIONS" --replication-factor 1 \
    || die "could not create topic $topic"
  TOPICS_CREATED+=("$topic")
  sleep "$BENCH_PAUSE"
  local rc=0
  "$BIN" group-failover --client "$client" --bootstrap "$BOOTSTRAP" --topic "$topic" \
    --partitions "$BENCH_PARTITIONS" --members "$BENCH_GROUP_MEMBERS" --kill "$(((run - 1) % BENCH_GROUP_MEMBERS))" \
    --kill-delay-ms "$(awk -v r="$run" -v n="$BENCH_FAILOVER_RUNS" -v h="$BENCH_HEARTBEAT_MS" 'BEGIN { printf "%d", (r - 0.5) / n * h }')" \
    --rate "$BENCH_FAILOVER_RATE" --session-timeout-ms "$BENCH_SESSION_TIMEOUT_MS" --heartbeat-ms "$BENCH_HEARTBEAT_MS" \
    --auto-commit-ms "$BENCH_AUTO_COMMIT_MS" --events "$events" >"$log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || { tail -20 "$log" >&2; die "$client failover run failed (exit $rc), log: $log"; }
  local line
  line="$(grep '^RESULT ' "$log" | tail -1 || true)"
  [[ -n "$line" ]] || { tail -20 "$log" >&2; die "no RESULT line, log: $log"; }
  field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$line"; }
  local join reassign failover parts delay
  join="$(field join_s)"; reassign="$(field reassign_s)"; failover="$(field failover_s)"; parts="$(field killed_partitions)"
  delay="$(field kill_delay_ms)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$run" "$join" "$reassign" "$failover" "$parts" "$delay" >>"$FRAW"
  say "  failover $client run=$run: partitions $parts consumed again ${failover}s after the kill (reassigned after ${reassign}s; group formed in ${join}s)"
}

# gmedian FILE CLIENT COLUMN
gmedian() {
  awk -F'\t' -v c="$2" -v col="$3" '$1 == c && $col != "-" { print $col }' "$1" \
    | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

report_group() {
  local out="$1" client
  {
    echo "# Consumer-group benchmark, $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`BENCH_RUNS=$BENCH_RUNS BENCH_FAILOVER_RUNS=$BENCH_FAILOVER_RUNS BENCH_GROUP_RECORDS=$BENCH_GROUP_RECORDS BENCH_GROUP_SIZE=$BENCH_GROUP_SIZE bash scripts/bench.sh group\`"
    echo
    echo "- ferrokafka: git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "- librdkafka $RDKAFKA_VERSION (rdkafka crate $RDKAFKA_CRATE)"
    echo "- broker: Kafka $BROKER_VERSION, single node at $BOOTSTRAP (group.initial.rebalance.delay.ms=0, as kafka-local.sh sets it), $BENCH_PARTITIONS partitions, RF 1"
    echo "- machine: $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr); broker, clients and other engineers' builds share the cores"
    echo "- both clients: $BENCH_GROUP_MEMBERS members of one fresh group, classic protocol, partition.assignment.strategy=range, session.timeout.ms=$BENCH_SESSION_TIMEOUT_MS, heartbeat.interval.ms=$BENCH_HEARTBEAT_MS, enable.auto.commit=true, auto.commit.interval.ms=$BENCH_AUTO_COMMIT_MS, auto.offset.reset=earliest; everything else at the client's defaults"
    echo "- throughput: the $BENCH_GROUP_MEMBERS members in ONE process (ferrokafka: one Consumer per tokio task, multi-thread runtime; librdkafka: one BaseConsumer per thread); one topic of $BENCH_GROUP_RECORDS records of $BENCH_GROUP_SIZE B ($BENCH_GROUP_COMPRESSION), written once by ferrokafka's producer, drained whole by a fresh group in every run. The members subscribe at once and drop what they read until the group has formed (each member owns its final partitions and each partition delivered a record: \"group formed\"); then each rewinds its partitions to offset 0 and the clock starts when all have (a barrier), and stops at the batch that brought the last distinct (partition, offset) (duplicates, e.g. after a rebalance, are counted apart). CPU (clock window) = user + sys of the process while the clock ran (/proc/self/stat, 10 ms ticks); CPU (whole process) = GNU time, including start-up, the group's formation (records read and dropped) and close; both per million records"
    echo "- failover: each member a child process; a producer in the parent writes $BENCH_FAILOVER_RATE records/s round robin over the partitions; once the group is stable (every partition owned and delivering, no change for 6 s) one member is SIGKILLed (no LeaveGroup, no commit), after a further (r - 0.5) / $BENCH_FAILOVER_RUNS of a heartbeat interval in run r so the kills fall evenly over the heartbeat cycle; failover = time from the kill until every partition it owned has delivered a record to a surviving member; reassign = until the survivors' assignments include them all"
    echo "- medians of $BENCH_RUNS throughput run(s) and $BENCH_FAILOVER_RUNS failover run(s) per client, clients interleaved with their order rotated each run"
    echo
    echo "## Throughput: $BENCH_GROUP_MEMBERS members draining $BENCH_GROUP_RECORDS records of $BENCH_GROUP_SIZE B"
    echo
    echo "| client | records/s | MiB/s | CPU s / M records (clock window) | CPU s / M records (whole process) | peak RSS MiB | duplicates | group formed s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for client in $BENCH_CLIENTS; do
      echo "| $(label "$client") | $(fmt_int "$(gmedian "$GRAW" "$client" 4)") | $(gmedian "$GRAW" "$client" 5) | $(gmedian "$GRAW" "$client" 7) | $(gmedian "$GRAW" "$client" 9) | $(fmt_mib "$(gmedian "$GRAW" "$client" 10)") | $(gmedian "$GRAW" "$client" 11) | $(gmedian "$GRAW" "$client" 12) |"
    done
    echo
    echo "## Failover: SIGKILL of one of $BENCH_GROUP_MEMBERS members, session.timeout.ms=$BENCH_SESSION_TIMEOUT_MS"
    echo
    echo "| client | failover s (kill -> its partitions consumed again) | reassign s | group formed s |"
    echo "|---|---:|---:|---:|"
    for client in $BENCH_CLIENTS; do
      echo "| $(label "$client") | $(gmedian "$FRAW" "$client" 5) | $(gmedian "$FRAW" "$client" 4) | $(gmedian "$FRAW" "$client" 3) |"
    done
    if [[ " $BENCH_CLIENTS " == *" ferrokafka "* && " $BENCH_CLIENTS " == *" rdkafka "* ]]; then
      echo
      echo "Ratios ferrokafka / librdkafka (medians): throughput > 1, CPU, RSS and failover time < 1 favour ferrokafka."
      echo
      echo "| throughput | CPU per record (window) | CPU per record (whole process) | peak RSS | failover time |"
      echo "|---:|---:|---:|---:|---:|"
      echo "| $(ratio "$(gmedian "$GRAW" ferrokafka 4)" "$(gmedian "$GRAW" rdkafka 4)") | $(ratio "$(gmedian "$GRAW" ferrokafka 7)" "$(gmedian "$GRAW" rdkafka 7)") | $(ratio "$(gmedian "$GRAW" ferrokafka 9)" "$(gmedian "$GRAW" rdkafka 9)") | $(ratio "$(gmedian "$GRAW" ferrokafka 10)" "$(gmedian "$GRAW" rdkafka 10)") | $(ratio "$(gmedian "$FRAW" ferrokafka 5)" "$(gmedian "$FRAW" rdkafka 5)") |"
    fi
    echo
    echo "<details><summary>Raw runs</summary>"
    echo
    echo "| client | run | seconds | records/s | MiB/s | CPU s (window) | CPU s / M (window) | CPU s (process) | CPU s / M (process) | peak RSS KiB | duplicates | group formed s | records per member |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }' "$GRAW"
    echo
    echo "| client | run | kill delay ms | group formed s | reassign s | failover s | killed member's partitions |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $7, $3, $4, $5, $6 }' "$FRAW"
    echo
    echo "</details>"
  } >"$out"
}

cmd_group() {
  MODE=group
  # Never another engineer's broker: unless BENCH_BOOTSTRAP or KAFKA_PORT_OFFSET say
  # otherwise, a node of our own in /tmp/fk-benchgrp on 9392.
  if [[ -z "${BENCH_BOOTSTRAP:-}" && -z "$OWN_PORT_OFFSET" ]]; then
    OWN_PORT_OFFSET=300
    OWN_RUN_DIR="${FERROKAFKA_RUN_DIR:-/tmp/fk-benchgrp}"
  fi
  [[ -n "${BENCH_CLIENTS_SET:-}" ]] || BENCH_CLIENTS="ferrokafka rdkafka"
  [[ " $BENCH_CLIENTS " != *" java "* ]] || die "group mode measures ferrokafka and rdkafka only (BENCH_CLIENTS)"
  setup_common
  RUN_DIR="$(mktemp -d /tmp/fk-bench-group.XXXXXX)"
  GRAW="$RUN_DIR/group.tsv"; FRAW="$RUN_DIR/failover.tsv"
  : >"$GRAW"; : >"$FRAW"
  local run client i n clients
  fill_topic "$BENCH_GROUP_SIZE" "$BENCH_GROUP_RECORDS" "$BENCH_GROUP_COMPRESSION"
  local topic="$FILLED_TOPIC"
  say "  $topic: $BENCH_GROUP_RECORDS records of $BENCH_GROUP_SIZE B, $BENCH_GROUP_COMPRESSION"
  read -r -a clients <<<"$BENCH_CLIENTS"
  n=${#clients[@]}
  say "runs=$BENCH_RUNS clients=[$BENCH_CLIENTS] members=$BENCH_GROUP_MEMBERS; logs in $RUN_DIR"
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    check_quiet
    for ((i = 0; i < n; i++)); do
      run_group "${clients[$(((i + run - 1) % n))]}" "$run" "$topic"
    done
  done
  for ((run = 1; run <= BENCH_FAILOVER_RUNS; run++)); do
    check_quiet
    for ((i = 0; i < n; i++)); do
      run_failover "${clients[$(((i + run - 1) % n))]}" "$run"
    done
  done
  local out="${BENCH_OUT:-$BENCH_DIR/results/$(date +%Y-%m-%d)-group.md}"
  mkdir -p "$(dirname "$out")"
  report_group "$out"
  cp "$GRAW" "${out%.md}.tsv"
  cp "$FRAW" "${out%.md}-failover.tsv"
  say "results: $out (raw: ${out%.md}.tsv, ${out%.md}-failover.tsv; logs: $RUN_DIR)"
  cat "$out"
}

# ---------------------------------------------------------------------------------------
# txn: transactional produce (ferrokafka, librdkafka, Java) and the exactly-once copy helper
# ---------------------------------------------------------------------------------------

BENCH_TXN_RECORDS="${BENCH_TXN_RECORDS:-500000}"
BENCH_TXN_SIZE="${BENCH_TXN_SIZE:-100}"
BENCH_TXN_PER_TXN="${BENCH_TXN_PER_TXN:-1000}"
BENCH_EOS_RECORDS="${BENCH_EOS_RECORDS:-500000}"
BENCH_EOS_MAX_POLL="${BENCH_EOS_MAX_POLL:-500}"
BENCH_TXN_JAVA_OPTS="${BENCH_TXN_JAVA_OPTS:--Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20}"
BENCH_TXN_JAVA_WARMUP="${BENCH_TXN_JAVA_WARMUP:-1}"   # records of Java's untimed warm-up transaction

# txn_cpu TFILE RECORDS -> "cpu cpu_per_m rss"
txn_cpu() {
  local user sys rss
  read -r user sys rss <"$1" || die "no timing output in $1"
  awk -v u="$user" -v s="$sys" -v n="$2" -v r="$rss" 'BEGIN { printf "%.2f %.3f %s", u + s, (u + s) / n * 1000000, r }'
}

# run_txn CLIENT RUN  -> appends one line to $TRAW (a fresh topic per run)
run_txn() {
  local client="$1" run="$2" records="$BENCH_TXN_RECORDS" size="$BENCH_TXN_SIZE"
  local topic="bench-txn-$client-r$run-$(date +%s%N | cut -c1-13)"
  local log="$RUN_DIR/txn-$client-r$run.log" tfile="$RUN_DIR/txn-$client-r$run.time"
  "$BIN" create-topic --bootstrap "$BOOTSTRAP" --topic "$topic" --partitions "$BENCH_PARTITIONS" --replication-factor 1 \
    || die "could not create topic $topic"
  TOPICS_CREATED+=("$topic")
  sleep "$BENCH_PAUSE"
  local rc=0
  case "$client" in
    ferrokafka | rdkafka)
      "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
        "$BIN" txn-produce --client "$client" --bootstrap "$BOOTSTRAP" --topic "$topic" --records "$records" \
        --size "$size" --per-txn "$BENCH_TXN_PER_TXN" --linger-ms "$BENCH_LINGER_MS" >"$log" 2>&1 || rc=$?
      ;;
    java)
      # linger.ms=5 is fixed in KafkaTool txn-bench (BENCH_LINGER_MS's default).
      JAVA_TOOL_JVM_OPTS="$BENCH_TXN_JAVA_OPTS" KAFKA_VERSION="$BROKER_VERSION" "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
        "$SCRIPT_DIR/java-tool.sh" txn-bench "$BOOTSTRAP" "$topic" "$records" "$BENCH_TXN_PER_TXN" "$size" "$BENCH_TXN_JAVA_WARMUP" >"$log" 2>&1 || rc=$?
      ;;
    *) die "txn: unknown client $client" ;;
  esac
  [[ $rc -eq 0 ]] || { tail -20 "$log" >&2; die "$client txn run failed (exit $rc), log: $log"; }
  local line secs rps cpu cpu_per_m rss
  line="$(grep '^RESULT ' "$log" | tail -1 || true)"
  [[ -n "$line" ]] || { tail -20 "$log" >&2; die "no RESULT line, log: $log"; }
  secs="$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$line")"
  rps="$(sed -E 's/.* records_per_sec=([0-9.]+).*/\1/' <<<"$line")"
  read -r cpu cpu_per_m rss <<<"$(txn_cpu "$tfile" "$records")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$run" "$records" "$secs" "$rps" "$cpu" "$cpu_per_m" "$rss" "-" >>"$TRAW"
  say "  txn $client run=$run: $rps rec/s (${secs}s), cpu ${cpu}s, rss ${rss} KiB"
}

# run_eos RUN  -> appends one line to $TRAW (client ferrokafka-eos; a fresh input and
# output topic per run, the input filled by ferrokafka's non-transactional producer)
run_eos() {
  local run="$1" records="$BENCH_EOS_RECORDS"
  fill_topic "$BENCH_TXN_SIZE" "$records" none
  local input="$FILLED_TOPIC" output="bench-eos-out-r$run-$(date +%s%N | cut -c1-13)"
  "$BIN" create-topic --bootstrap "$BOOTSTRAP" --topic "$output" --partitions "$BENCH_PARTITIONS" --replication-factor 1 \
    || die "could not create topic $output"
  TOPICS_CREATED+=("$output")
  local log="$RUN_DIR/eos-r$run.log" tfile="$RUN_DIR/eos-r$run.time"
  sleep "$BENCH_PAUSE"
  local rc=0
  "$TIME_BIN" -f '%U %S %M' -o "$tfile" \
    "$BIN" eos-copy --bootstrap "$BOOTSTRAP" --input "$input" --output "$output" --records "$records" \
    --max-poll-records "$BENCH_EOS_MAX_POLL" --linger-ms "$BENCH_LINGER_MS" --timeout-s "$BENCH_CONSUME_TIMEOUT" >"$log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || { tail -20 "$log" >&2; die "eos-copy run failed (exit $rc), log: $log"; }
  local line secs rps txns cpu cpu_per_m rss
  line="$(grep '^RESULT ' "$log" | tail -1 || true)"
  [[ -n "$line" ]] || { tail -20 "$log" >&2; die "no RESULT line, log: $log"; }
  secs="$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$line")"
  rps="$(sed -E 's/.* records_per_sec=([0-9.]+).*/\1/' <<<"$line")"
  txns="$(sed -E 's/.* transactions=([0-9]+).*/\1/' <<<"$line")"
  read -r cpu cpu_per_m rss <<<"$(txn_cpu "$tfile" "$records")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' ferrokafka-eos "$run" "$records" "$secs" "$rps" "$cpu" "$cpu_per_m" "$rss" "$txns" >>"$TRAW"
  say "  eos-copy run=$run: $rps rec/s (${secs}s, $txns transactions), cpu ${cpu}s, rss ${rss} KiB"
}

txn_label() { case "$1" in ferrokafka) echo ferrokafka ;; rdkafka) echo "librdkafka $RDKAFKA_VERSION" ;; java) echo "Java $BROKER_VERSION" ;; *) echo "$1" ;; esac; }

report_txn() {
  local out="$1" client m rev
  tm() { gmedian "$TRAW" "$1" "$2"; }
  # Before the redirect below truncates $out: a results file of today that is tracked would
  # otherwise count as an uncommitted change.
  rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  {
    echo "# Transactional benchmark, $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`BENCH_RUNS=$BENCH_RUNS BENCH_TXN_RECORDS=$BENCH_TXN_RECORDS BENCH_TXN_SIZE=$BENCH_TXN_SIZE BENCH_TXN_PER_TXN=$BENCH_TXN_PER_TXN BENCH_EOS_RECORDS=$BENCH_EOS_RECORDS BENCH_EOS_MAX_POLL=$BENCH_EOS_MAX_POLL bash scripts/bench.sh txn\`"
    echo
    echo "- ferrokafka: git $rev"
    echo "- librdkafka $RDKAFKA_VERSION (rdkafka crate $RDKAFKA_CRATE), Java client $BROKER_VERSION (tests/java/KafkaTool.java txn-bench, JVM: $BENCH_TXN_JAVA_OPTS) on $(java -version 2>&1 | head -1)"
    echo "- broker: Kafka $BROKER_VERSION, single node at $BOOTSTRAP, $BENCH_PARTITIONS partitions, RF 1, a fresh topic per run"
    echo "- machine: $(nproc) cores ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr); broker and client share the cores"
    echo "- transactional produce: $BENCH_TXN_RECORDS records of $BENCH_TXN_SIZE B (one payload of random A-Z letters, the same bytes for all three), no key, $BENCH_TXN_PER_TXN records per transaction, acks=all, idempotent, linger.ms=$BENCH_LINGER_MS, unique transactional.id, other settings at each client's defaults; outside the clock: init_transactions and one warm-up transaction of 1 record (Java: $BENCH_TXN_JAVA_WARMUP); clock from the first begin to the last commit's return"
    echo "- exactly-once copy: one txn::ExactlyOncePipeline (group consumer, read_committed, max_poll_records=$BENCH_EOS_MAX_POLL; transactional producer, linger.ms=$BENCH_LINGER_MS) copies a pre-filled topic of $BENCH_EOS_RECORDS records of $BENCH_TXN_SIZE B to another (same partition, key and value), one transaction per run_once with the input offsets in it; clock from the first run_once (group join included) to the commit that covers the last record"
    echo "- medians of $BENCH_RUNS run(s), client order rotated per run; CPU = user + sys seconds of the whole client process (GNU time; setup, JVM start-up and warm-up included), per million records; RSS = peak resident set"
    echo
    echo "| benchmark | client | records/s | CPU s / M records | peak RSS MiB | transactions |"
    echo "|---|---|---:|---:|---:|---:|"
    for client in $BENCH_CLIENTS; do
      echo "| txn produce, $BENCH_TXN_SIZE B, $BENCH_TXN_PER_TXN/txn | $(txn_label "$client") | $(fmt_int "$(tm "$client" 5)") | $(tm "$client" 7) | $(fmt_mib "$(tm "$client" 8)") | $((BENCH_TXN_RECORDS / BENCH_TXN_PER_TXN)) |"
    done
    echo "| EOS copy (ExactlyOncePipeline), $BENCH_TXN_SIZE B | ferrokafka | $(fmt_int "$(tm ferrokafka-eos 5)") | $(tm ferrokafka-eos 7) | $(fmt_mib "$(tm ferrokafka-eos 8)") | $(fmt_int "$(tm ferrokafka-eos 9)") |"
    echo
    echo "Ratios ferrokafka / other (medians): throughput > 1 and CPU < 1 favour ferrokafka."
    echo
    echo "| vs | throughput | CPU per record | peak RSS |"
    echo "|---|---:|---:|---:|"
    for client in rdkafka java; do
      [[ " $BENCH_CLIENTS " == *" $client "* && " $BENCH_CLIENTS " == *" ferrokafka "* ]] || continue
      echo "| $(txn_label "$client") | $(ratio "$(tm ferrokafka 5)" "$(tm "$client" 5)") | $(ratio "$(tm ferrokafka 7)" "$(tm "$client" 7)") | $(ratio "$(tm ferrokafka 8)" "$(tm "$client" 8)") |"
    done
    echo
    echo "<details><summary>Raw runs</summary>"
    echo
    echo "| client | run | records | seconds | records/s | CPU s | CPU s / M | peak RSS KiB | transactions |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %.0f | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$TRAW"
    echo
    echo "</details>"
  } >"$out"
}

cmd_txn() {
  MODE=txn
  if [[ -z "${BENCH_BOOTSTRAP:-}" && -z "$OWN_PORT_OFFSET" ]]; then
    OWN_PORT_OFFSET=1100
    OWN_RUN_DIR="${FERROKAFKA_RUN_DIR:-/tmp/fk-txnbench}"
  fi
  local c
  for c in $BENCH_CLIENTS; do
    [[ "$c" == ferrokafka || "$c" == rdkafka || "$c" == java ]] || die "txn mode measures ferrokafka, rdkafka and java only (BENCH_CLIENTS)"
  done
  # setup_common without the kafka-tools jars (txn-bench runs on the broker's kafka-clients).
  local clients_all="$BENCH_CLIENTS"
  BENCH_CLIENTS="${BENCH_CLIENTS//java/}"
  setup_common
  BENCH_CLIENTS="$clients_all"
  RUN_DIR="$(mktemp -d /tmp/fk-bench-txn.XXXXXX)"
  TRAW="$RUN_DIR/txn.tsv"
  : >"$TRAW"
  if [[ " $BENCH_CLIENTS " == *" java "* ]]; then
    # Compile KafkaTool now, outside any measurement.
    KAFKA_VERSION="$BROKER_VERSION" "$SCRIPT_DIR/java-tool.sh" help >/dev/null 2>&1 || die "scripts/java-tool.sh could not build KafkaTool"
  fi
  local run i n clients
  read -r -a clients <<<"$BENCH_CLIENTS"
  n=${#clients[@]}
  say "runs=$BENCH_RUNS clients=[$BENCH_CLIENTS] txn: $BENCH_TXN_RECORDS x $BENCH_TXN_SIZE B, $BENCH_TXN_PER_TXN/txn; eos: $BENCH_EOS_RECORDS; logs in $RUN_DIR"
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    check_quiet
    for ((i = 0; i < n; i++)); do
      run_txn "${clients[$(((i + run - 1) % n))]}" "$run"
    done
    run_eos "$run"
  done
  local out="${BENCH_OUT:-$BENCH_DIR/results/$(date +%Y-%m-%d)-txn.md}"
  mkdir -p "$(dirname "$out")"
  report_txn "$out"
  cp "$TRAW" "${out%.md}.tsv"
  say "results: $out (raw: ${out%.md}.tsv; logs: $RUN_DIR)"
  cat "$out"
}

# ---------------------------------------------------------------------------------------
# latency: acknowledgement latency at fixed rates on a 3-node cluster (issue 11, defect 3)
# ---------------------------------------------------------------------------------------

BENCH_LAT_SECONDS="${BENCH_LAT_SECONDS:-15}"
BENCH_LAT_FRESH_RATES="${BENCH_LAT_FRESH_RATES:-3000 10000}"
BENCH_LAT_WARM_RATES="${BENCH_LAT_WARM_RATES:-1000 3000 10000}"
BENCH_LAT_PRODUCERS="${BENCH_LAT_PRODUCERS:-3}"
BENCH_LAT_TOGETHER="${BENCH_LAT_TOGETHER:-0}"
LAT_CLIENTS="ferrokafka:task ferrokafka:unordered ferrokafka:fifo rdkafka:task"

lat_cluster() { FERROKAFKA_RUN_DIR="$LAT_RUN_DIR" KAFKA_PORT_OFFSET="$LAT_OFFSET" KAFKA_VERSION="$BROKER_VERSION" "$KAFKA_LOCAL" "$@"; }

# A fresh cluster: stopped, its data wiped, started again (the first minute after a start
# is when the brokers are slow).
lat_fresh_cluster() {
  lat_cluster stop cluster >/dev/null 2>&1 || true
  rm -rf "$LAT_RUN_DIR/cluster"
  LAT_BOOTSTRAP="$(lat_cluster start cluster)"
  LAT_STARTED_AT="$(date +%s)"
}

# One client of a cell on its own topic (6 partitions, RF 3), sending `rate` records/s;
# started in the background, its pid appended to LAT_PIDS.
lat_start_client() {
  local state="$1" rate="$2" run="$3" c="$4" client="${4%%:*}" await="${4##*:}"
  local topic="lat-$state-$rate-$run-${c/:/-}-$$"
  "$BIN" create-topic --bootstrap "$LAT_BOOTSTRAP" --topic "$topic" --partitions 6 --replication-factor 3 >/dev/null \
    || die "create-topic $topic failed"
  "$BIN" latency --client "$client" --await "$await" --bootstrap "$LAT_BOOTSTRAP" --topic "$topic" \
    --rate "$rate" --seconds "$BENCH_LAT_SECONDS" --producers "$BENCH_LAT_PRODUCERS" \
    >"$RUN_DIR/$state-$rate-$run-$client-$await.out" 2>"$RUN_DIR/$state-$rate-$run-$client-$await.err" &
  LAT_PIDS+=($!)
}

# Appends the TSV line of one finished client (its result, the batches the broker stored,
# the load average).
lat_collect() {
  local state="$1" rate="$2" run="$3" c="$4" client="${4%%:*}" await="${4##*:}" res batches
  local topic="lat-$state-$rate-$run-${c/:/-}-$$"
  res="$(grep '^RESULT' "$RUN_DIR/$state-$rate-$run-$client-$await.out" | tail -1)"
  batches="$("$BIN" log-batches --dir "$LAT_RUN_DIR/cluster/node1/data" --topic "$topic" | grep '^BATCHES')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$state" "$rate" "$run" "$c" "$res" "$batches" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$LAT_RAW"
  say "$state $rate/s run $run $c: ${res#RESULT } | ${batches#BATCHES }"
}

# One cell. BENCH_LAT_TOGETHER=1: the four clients at the same time on one cluster (4 x the
# rate in total). Default: one client after the other, so the machine carries the load;
# in a fresh cell each client gets a cluster started from empty just before it.
lat_cell() {
  local state="$1" rate="$2" run="$3" c i
  LAT_PIDS=()
  if [[ "$BENCH_LAT_TOGETHER" == 1 ]]; then
    for c in $LAT_CLIENTS; do lat_start_client "$state" "$rate" "$run" "$c"; done
    for i in "${!LAT_PIDS[@]}"; do wait "${LAT_PIDS[$i]}" || say "a latency client failed (see $RUN_DIR)"; done
    for c in $LAT_CLIENTS; do lat_collect "$state" "$rate" "$run" "$c"; done
    return
  fi
  for c in $LAT_CLIENTS; do
    [[ "$state" == fresh ]] && lat_fresh_cluster
    LAT_PIDS=()
    lat_start_client "$state" "$rate" "$run" "$c"
    wait "${LAT_PIDS[0]}" || say "a latency client failed (see $RUN_DIR)"
    lat_collect "$state" "$rate" "$run" "$c"
  done
}

# The median of the numbers on stdin, one per line ("-" when there are none).
smedian() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

lat_field() { sed -n "s/.*[ \t]$1=\([^ \t]*\).*/\1/p" <<<"$2"; }

report_latency() {
  local out="$1" state rate c line v p50 p99 rpb rows
  {
    echo "# Producer acknowledgement latency, $(date +%Y-%m-%d)"
    echo
    echo "\`bash scripts/bench.sh latency\`: 3-node Kafka $BROKER_VERSION cluster (kafka-local.sh, RF 3, min ISR 2), topics of 6 partitions;"
    if [[ "$BENCH_LAT_TOGETHER" == 1 ]]; then
      echo "per cell the four clients run at the same time, each with its own topic and $BENCH_LAT_PRODUCERS producers sending keyed,"
    else
      echo "per cell the four clients run one after the other (a fresh cell: each on a cluster started from empty just before it),"
      echo "each with its own topic and $BENCH_LAT_PRODUCERS producers sending keyed,"
    fi
    echo "never-repeating 100-byte records at the given rate (each client that rate) for $BENCH_LAT_SECONDS s; acks=all, idempotence, linger 5 ms."
    echo "Latency: send to resolution of the delivery future, ms. Median over $BENCH_RUNS runs of each run's p50 / p99 / p99.9;"
    echo "records per batch: as the broker stored them (median over runs). fresh = a new cluster started just before the cell."
    echo "librdkafka $RDKAFKA_VERSION. Machine: $(nproc) cores; load average (1 min) during the cells: $(cut -f7 "$LAT_RAW" | cut -d' ' -f1 | sort -n | awk '{a[NR]=$1} END {print a[1] " to " a[NR]}')."
    echo
    echo "| cluster | rate/s | client | p50 | p99 | p99.9 | records/batch | acked in window | unacked at end | p50 / p99 vs librdkafka |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for state in fresh warm; do
      for rate in $(cut -f1,2 "$LAT_RAW" | awk -v s="$state" '$1 == s {print $2}' | sort -un); do
        local rd50 rd99
        rd50="$(awk -F'\t' -v s="$state" -v r="$rate" '$1 == s && $2 == r && $4 == "rdkafka:task"' "$LAT_RAW" | sed -n 's/.*p50_ms=\([^ ]*\).*/\1/p' | smedian)"
        rd99="$(awk -F'\t' -v s="$state" -v r="$rate" '$1 == s && $2 == r && $4 == "rdkafka:task"' "$LAT_RAW" | sed -n 's/.*p99_ms=\([^ ]*\).*/\1/p' | smedian)"
        for c in $LAT_CLIENTS; do
          rows="$(awk -F'\t' -v s="$state" -v r="$rate" -v c="$c" '$1 == s && $2 == r && $4 == c' "$LAT_RAW")"
          [[ -n "$rows" ]] || continue
          p50="$(sed -n 's/.*p50_ms=\([^ ]*\).*/\1/p' <<<"$rows" | smedian)"
          p99="$(sed -n 's/.*p99_ms=\([^ ]*\).*/\1/p' <<<"$rows" | smedian)"
          v="$(sed -n 's/.*p999_ms=\([^ ]*\).*/\1/p' <<<"$rows" | smedian)"
          rpb="$(sed -n 's/.*per_batch=\([^ \t]*\).*/\1/p' <<<"$rows" | smedian)"
          local win unacked sent
          win="$(sed -n 's/.*acked_in_window=\([^ ]*\).*/\1/p' <<<"$rows" | smedian)"
          sent="$(sed -n 's/.* sent=\([^ ]*\).*/\1/p' <<<"$rows" | smedian)"
          unacked="$(sed -n 's/.*unacked=\([^ ]*\).*/\1/p' <<<"$rows" | smedian)"
          local label="$c"
          case "$c" in
            ferrokafka:task) label="ferrokafka, future per spawned task" ;;
            ferrokafka:unordered) label="ferrokafka, FuturesUnordered" ;;
            ferrokafka:fifo) label="ferrokafka, FIFO" ;;
            rdkafka:task) label="librdkafka FutureProducer, task per future" ;;
          esac
          echo "| $state | $rate | $label | $p50 | $p99 | $v | $rpb | $win of $sent | $unacked | $(ratio "$p50" "$rd50") / $(ratio "$p99" "$rd99") |"
        done
      done
    done
    echo
    echo "Ratios are ferrokafka / librdkafka (below 1: ferrokafka faster). Raw lines: ${out%.md}.tsv."
  } >"$out"
}

cmd_latency() {
  MODE=latency
  BENCH_CLIENTS="ferrokafka rdkafka"
  [[ -x "$TIME_BIN" ]] || true
  build
  BROKER_VERSION="${KAFKA_VERSION:-4.4.0}"
  LAT_OFFSET="${KAFKA_PORT_OFFSET:-3500}"
  LAT_RUN_DIR="${FERROKAFKA_RUN_DIR:-/tmp/fk-latbench}"
  RDKAFKA_VERSION="$(awk '/^name = "rdkafka-sys"$/ { getline; sub(/.*\+/, ""); gsub(/"/, ""); print }' "$BENCH_DIR/Cargo.lock")"
  RUN_DIR="$(mktemp -d /tmp/fk-bench-latency.XXXXXX)"
  LAT_RAW="$RUN_DIR/latency.tsv"
  : >"$LAT_RAW"
  trap 'lat_cluster stop cluster >/dev/null 2>&1 || true' EXIT
  say "runs=$BENCH_RUNS fresh=[$BENCH_LAT_FRESH_RATES] warm=[$BENCH_LAT_WARM_RATES] ${BENCH_LAT_SECONDS}s each; cluster run dir $LAT_RUN_DIR, port offset $LAT_OFFSET; logs in $RUN_DIR"
  local run rate
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    check_quiet
    say "load: $(uptime)"
    for rate in $BENCH_LAT_FRESH_RATES; do
      [[ "$BENCH_LAT_TOGETHER" == 1 ]] && lat_fresh_cluster
      lat_cell fresh "$rate" "$run"
    done
    # Warm: the cluster of the last fresh cell, once past its first minute.
    [[ -n "${LAT_BOOTSTRAP:-}" ]] || lat_fresh_cluster
    local age=$(($(date +%s) - LAT_STARTED_AT))
    if ((age < 60)); then
      say "warm cells: waiting $((60 - age)) s for the cluster to be a minute old"
      sleep $((60 - age))
    fi
    for rate in $BENCH_LAT_WARM_RATES; do
      lat_cell warm "$rate" "$run"
    done
  done
  local out="${BENCH_OUT:-$BENCH_DIR/results/$(date +%Y-%m-%d)-latency.md}"
  mkdir -p "$(dirname "$out")"
  report_latency "$out"
  cp "$LAT_RAW" "${out%.md}.tsv"
  say "results: $out (raw: ${out%.md}.tsv; logs: $RUN_DIR)"
  cat "$out"
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    produce) cmd_produce ;;
    build) build ;;
    fetch-java) fetch_java_tools "${KAFKA_VERSION:-4.4.0}" ;;
    consume) cmd_consume ;;
    group) cmd_group ;;
    txn) cmd_txn ;;
    latency) cmd_latency ;;
    -h | --help | help | "") sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" ;;
    *) die "unknown command '$cmd' (try --help)" ;;
  esac
}

main "$@"
