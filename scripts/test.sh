#!/usr/bin/env bash
# The whole test suite: unit tests, then the integration tests against real Apache Kafka
# (a single node, a 3-node KRaft cluster and a dynamic 2-node quorum, started from Maven
# Central jars by scripts/kafka-local.sh) for each Kafka version in KAFKA_VERSIONS.
#
#   KAFKA_VERSIONS   space-separated versions (default: "4.4.0 3.9.2"; KAFKA_VERSION, when
#                    set, runs just that one)
#   KAFKA_PORT_OFFSET / FERROKAFKA_RUN_DIR
#                    passed to scripts/kafka-local.sh: run beside another local Kafka
#                    (run dir default here: /tmp/ferrokafka-test)
#   FERROKAFKA_BOOTSTRAP / FERROKAFKA_CLUSTER_BOOTSTRAP / FERROKAFKA_CLUSTER_CTL
#                    when FERROKAFKA_EXTERNAL=1, run against these instead of starting Kafka
#                    (plus the FERROKAFKA_* security variables of kafka-local.sh's
#                    single/security.env for the TLS/SASL tests)
#   FERROKAFKA_QUORUM_*  the dynamic quorum (kafka-local.sh's quorum/quorum.env: bootstrap,
#                        the observer's id, directory id and endpoint) for the KIP-853 test
#                        (tests/integration/admin_quorum.rs); exported from quorum.env here,
#                        with FERROKAFKA_EXTERNAL=1 optional (unset: that test is skipped)
#
# Exits non-zero when any test fails; the clusters are stopped in every case.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VERSIONS="${KAFKA_VERSIONS:-${KAFKA_VERSION:-4.4.0 3.9.2}}"
KAFKA=scripts/kafka-local.sh
export FERROKAFKA_RUN_DIR="${FERROKAFKA_RUN_DIR:-/tmp/ferrokafka-test}"
# The integration tests read a few client internals through the unstable test-hooks feature
# (Cargo.toml); every build of them here enables it, so no test is compiled out.
HOOKS=(--features test-hooks)
started=0
cleanup() { if [ "$started" = 1 ]; then "$KAFKA" stop all >&2 || true; fi; }
trap cleanup EXIT

echo "== layers: no dependency cycle between files that DESIGN.md does not justify"
python3 scripts/check-layers.py >/dev/null || { python3 scripts/check-layers.py; exit 1; }

echo "== build (tests and examples)"
cargo build --all-targets --locked "${HOOKS[@]}"
cargo test --locked --no-run --quiet "${HOOKS[@]}"

echo "== API docs: every public item documented, every intra-doc link resolves"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet "${HOOKS[@]}"

echo "== unit tests and doc tests"
cargo test --locked --doc --quiet
cargo test --locked --lib --quiet

if [ "${FERROKAFKA_EXTERNAL:-0}" = 1 ]; then
  echo "== integration tests against external Kafka at ${FERROKAFKA_BOOTSTRAP:?} / ${FERROKAFKA_CLUSTER_BOOTSTRAP:?}"
  cargo test --locked --test integration "${HOOKS[@]}"
  exit 0
fi

for v in $VERSIONS; do
  echo "== integration tests on Apache Kafka $v"
  export KAFKA_VERSION="$v"
  "$KAFKA" stop all >&2 || true
  started=1
  FERROKAFKA_BOOTSTRAP="$("$KAFKA" start single)"
  # The single node's security listeners, CA and client certificate (tests/integration/security.rs).
  set -a
  # shellcheck disable=SC1091
  . "$FERROKAFKA_RUN_DIR/single/security.env"
  set +a
  FERROKAFKA_CLUSTER_BOOTSTRAP="$("$KAFKA" start cluster)"
  set -a
  # shellcheck disable=SC1091
  . "$FERROKAFKA_RUN_DIR/cluster/security.env"
  set +a
  # The dynamic quorum (KIP-853: add_raft_voter / remove_raft_voter); quorum.env holds
  # FERROKAFKA_QUORUM_BOOTSTRAP and the observer's id, directory id and endpoint.
  "$KAFKA" start quorum >/dev/null
  set -a
  # shellcheck disable=SC1091
  . "$FERROKAFKA_RUN_DIR/quorum/quorum.env"
  set +a
  export FERROKAFKA_BOOTSTRAP FERROKAFKA_CLUSTER_BOOTSTRAP
  export FERROKAFKA_CLUSTER_CTL="$PWD/$KAFKA"
  cargo test --locked --test integration "${HOOKS[@]}"
  "$KAFKA" stop all >&2
  started=0
done
echo "== all tests passed on Kafka: $VERSIONS"
