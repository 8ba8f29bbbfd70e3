//! Integration tests against real Apache Kafka.
//!
//! `scripts/test.sh` starts a single node and a 3-node cluster from Maven Central jars and
//! runs these with their addresses in the environment (see `common`). They can also run
//! against any cluster: set `FERROKAFKA_BOOTSTRAP` (single-node tests) and
//! `FERROKAFKA_CLUSTER_BOOTSTRAP` plus `FERROKAFKA_CLUSTER_CTL` (a command taking
//! `kill N`, `restart N`, `pause N`, `resume N`) for the fault tests.

mod admin_configs;
mod admin_groups;
mod admin_quorum;
mod admin_security;
mod admin_topics;
mod admin_txn;
mod cluster;
mod common;
mod consumer;
mod foundation;
mod group;
mod producer;
mod eos;
mod security;
mod txn;
