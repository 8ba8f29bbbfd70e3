#!/usr/bin/env bash
# java-tool.sh -- run tests/java/KafkaTool.java (the real Java Kafka client) for
# ferrokafka's integration tests.
#
# Usage:
#   scripts/java-tool.sh <subcommand> args...
#   scripts/java-tool.sh help                  list the subcommands
#
# The kafka-clients jar (and its lz4/snappy/zstd/slf4j dependencies) come from the
# jar cache of scripts/kafka-local.sh for ${KAFKA_VERSION:-4.4.0}; they are fetched
# with `scripts/kafka-local.sh fetch` if missing. KafkaTool.java is compiled with
# javac into target/java-tool/<version>/ whenever the source is newer than the class
# file (under a lock, so parallel tests may call this at once).
#
# stdout carries only KafkaTool's results; client logging (WARN and above) and all
# diagnostics go to stderr. The exit status is KafkaTool's (0 ok, 1 error,
# 2 consume timeout, 3 consume got extra records, 64 usage).
#
# Environment:
#   KAFKA_VERSION        kafka-clients version (default 4.4.0; 3.9.2 works as well)
#   FERROKAFKA_CACHE     jar cache root (default ~/.cache/ferrokafka), as kafka-local.sh
#   JAVA_TOOL_LOG_LEVEL  client log level on stderr (default WARN)

set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE_ROOT="${FERROKAFKA_CACHE:-$HOME/.cache/ferrokafka}"
LOG_LEVEL="${JAVA_TOOL_LOG_LEVEL:-WARN}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SRC="$ROOT/tests/java/KafkaTool.java"
OUT_ROOT="$ROOT/target/java-tool"
CLASSES="$OUT_ROOT/$KAFKA_VERSION"
LIBS="$CACHE_ROOT/kafka-$KAFKA_VERSION/libs"

die() { printf 'java-tool: error: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 1 ]] || die "usage: scripts/java-tool.sh <subcommand> args...  (try: help)"
[[ -f "$SRC" ]] || die "missing $SRC"
command -v java >/dev/null || die "java not found (Java 17+ needed)"
command -v javac >/dev/null || die "javac not found (a JDK 17+ is needed)"

mkdir -p "$OUT_ROOT"

# Everything below that writes shared state runs under one lock.
exec 8>"$OUT_ROOT/.lock"
flock 8

if ! compgen -G "$LIBS/kafka-clients-*.jar" >/dev/null; then
  printf 'java-tool: Kafka %s jars missing, running kafka-local.sh fetch\n' "$KAFKA_VERSION" >&2
  KAFKA_VERSION="$KAFKA_VERSION" FERROKAFKA_CACHE="$CACHE_ROOT" "$SCRIPT_DIR/kafka-local.sh" fetch >&2 8>&-
  compgen -G "$LIBS/kafka-clients-*.jar" >/dev/null || die "no kafka-clients jar in $LIBS after fetch"
fi

if [[ ! -f "$CLASSES/KafkaTool.class" || "$SRC" -nt "$CLASSES/KafkaTool.class" ]]; then
  printf 'java-tool: compiling %s against Kafka %s\n' "${SRC#"$ROOT"/}" "$KAFKA_VERSION" >&2
  tmp="$(mktemp -d "$OUT_ROOT/.build.XXXXXX")"
  if ! javac --release 17 -nowarn -encoding UTF-8 -cp "$LIBS/*" -d "$tmp" "$SRC" >&2; then
    rm -rf -- "$tmp"
    die "javac failed"
  fi
  rm -rf -- "$CLASSES"
  mv -- "$tmp" "$CLASSES"
fi

# Logging config for both client generations: log4j2 (Kafka 4.x libs ship
# log4j-slf4j-impl) and log4j 1 / reload4j (Kafka 3.x libs ship slf4j-reload4j).
# Both log to stderr only.
LOG4J2="$OUT_ROOT/log4j2-$LOG_LEVEL.xml"
LOG4J1="$OUT_ROOT/log4j-$LOG_LEVEL.properties"
if [[ ! -f "$LOG4J2" ]]; then
  cat >"$LOG4J2.tmp" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="ERROR">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR">
      <PatternLayout pattern="[java-tool %d{HH:mm:ss.SSS} %p %c{1}] %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="$LOG_LEVEL"><AppenderRef ref="STDERR"/></Root>
  </Loggers>
</Configuration>
EOF
  mv -f "$LOG4J2.tmp" "$LOG4J2"
fi
if [[ ! -f "$LOG4J1" ]]; then
  cat >"$LOG4J1.tmp" <<EOF
log4j.rootLogger=$LOG_LEVEL, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[java-tool %d{HH:mm:ss,SSS} %p %c{1}] %m%n
EOF
  mv -f "$LOG4J1.tmp" "$LOG4J1"
fi

flock -u 8
exec 8>&-

# JAVA_TOOL_JVM_OPTS: replaces the JVM flags below (scripts/bench.sh txn sets benchmark
# flags: full JIT, G1, a larger heap); the defaults suit short test runs.
read -r -a JVM_OPTS <<<"${JAVA_TOOL_JVM_OPTS:--Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
exec java "${JVM_OPTS[@]}" \
  "-Dlog4j2.configurationFile=$LOG4J2" \
  "-Dlog4j.configuration=file:$LOG4J1" \
  -cp "$CLASSES:$LIBS/*" \
  KafkaTool "$@"
