#!/usr/bin/env bash
# The demo, end to end: starts a local single-node Apache Kafka (from Maven Central jars,
# see scripts/kafka-local.sh), runs examples/demo.rs, examples/consumer_group.rs,
# examples/exactly_once.rs and examples/admin.rs against it, and stops Kafka again
# (set KEEP_KAFKA=1 to leave it running).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KAFKA=scripts/kafka-local.sh
cargo build --locked --release --example demo --example consumer_group --example exactly_once --example admin
bootstrap="$("$KAFKA" start single)"
if [ "${KEEP_KAFKA:-0}" != 1 ]; then trap '"$KAFKA" stop single >&2' EXIT; fi
cargo run --locked --release --quiet --example demo -- "$bootstrap"
echo "== consumer group example"
cargo run --locked --release --quiet --example consumer_group -- "$bootstrap"
echo "== exactly-once pipeline example"
cargo run --locked --release --quiet --example exactly_once -- "$bootstrap"
echo "== admin example (lag, offset reset, configs, ACLs, health)"
cargo run --locked --release --quiet --example admin -- "$bootstrap"
