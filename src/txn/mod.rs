//! Transactions: the transactional producer's state machine (the TransactionManager) and
//! the path of a transaction.
//!
//! A producer with [`ProducerConfig::transactional_id`](crate::producer::ProducerConfig::transactional_id)
//! writes records to several partitions, and optionally a consumer group's offsets, as one
//! atomic unit: consumers with `isolation_level = ReadCommitted` see all of it or none.
//!
//! ```no_run
//! # async fn demo() -> ferrokafka::Result<()> {
//! use std::time::Duration;
//! use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
//!
//! let t = Duration::from_secs(30);
//! let producer = Producer::new(ProducerConfig::new("127.0.0.1:9092").transactional_id("orders-app-1")).await?;
//! producer.init_transactions(t).await?;
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("orders").key("o1").value("placed")).await?;
//! match producer.commit_transaction(t).await {
//!     Ok(()) => {}
//!     Err(e) if e.is_abortable() => producer.abort_transaction(t).await?, // and try again
//!     Err(e) => return Err(e), // fatal (fenced) or still unknown after retries
//! }
//! # Ok(()) }
//! ```
//!
//! ## States
//!
//! ```text
//! Uninitialized ─init_transactions─► Initializing ─► Ready ─begin─► InTransaction
//!        ▲                                             ▲                 │
//!        │                                             │      commit ────┼──── abort
//!        │                                             │        ▼        │       ▼
//!        │                                             └──── Committing  │    Aborting ──► Ready
//!        │                                                               ▼
//!   any state ──► FatalError (fenced: drop the producer)       AbortableError ─abort─► Aborting
//! ```
//!
//! - A call in a state that does not allow it returns [`Error::InvalidTransactionState`]
//!   and changes nothing.
//! - Abortable errors ([`Error::is_abortable`]: a failed batch, `TRANSACTION_ABORTABLE`,
//!   topic or group authorization, the group refusing offsets with `UNKNOWN_MEMBER_ID`,
//!   `ILLEGAL_GENERATION`, `FENCED_INSTANCE_ID`) move to AbortableError: only
//!   `abort_transaction` is allowed then.
//! - Fatal errors (`PRODUCER_FENCED`, `INVALID_PRODUCER_EPOCH` from a coordinator,
//!   `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`, `INVALID_TXN_STATE`) move to FatalError:
//!   every call returns the error; the producer must be dropped.
//! - Retriable errors (timeouts) leave the state: call the same method again. A commit
//!   whose outcome is unknown is retried by the next `commit_transaction`; an
//!   `abort_transaction` after it re-initialises with a new epoch (KIP-360) instead of
//!   sending an abort with the same epoch, which could land on the next transaction.
//!
//! ## The path of a transaction
//!
//! 1. `init_transactions`: FindCoordinator(key type 1 = transaction, key = the id), then
//!    InitProducerId(id, `transaction_timeout`) to that coordinator: a producer id and
//!    epoch; older producers with the id are fenced. The coordinator's ApiVersions tell
//!    whether it runs transaction protocol v2 (finalized feature
//!    `transaction.version >= 2`, Kafka 4.x's default); the choice is applied at the next `begin_transaction`,
//!    so a transaction never switches protocol.
//! 2. `begin_transaction`: local.
//! 3. `send`: the record's partition is registered with the transaction. v1: the first
//!    time, an AddPartitionsToTxn is sent (from a task of the application's runtime) and
//!    the Sender holds that partition's batches until it succeeded. v2: Produce v12
//!    adds the partition implicitly. Batches carry the transactional flag and Produce
//!    requests the transactional id.
//! 4. `send_offsets_to_transaction`: v1 AddOffsetsToTxn to the transaction coordinator;
//!    then FindCoordinator(group) and TxnOffsetCommit (v5 under v2) with the member id,
//!    generation and group instance id (KIP-447) to the group coordinator.
//! 5. `commit_transaction`: flush; every batch must have succeeded (else abortable, no
//!    EndTxn), then EndTxn(commit). v2 (EndTxn v5) returns a new epoch on every EndTxn;
//!    sequences restart at 0.
//! 6. `abort_transaction`: unsent batches fail, in-flight ones are awaited, EndTxn(abort);
//!    v1 bumps the epoch afterwards (InitProducerId with the current id and epoch) when a
//!    failed batch left a sequence gap.
//!
//! Coordinator requests retry CONCURRENT_TRANSACTIONS after 20 ms,
//! COORDINATOR_LOAD_IN_PROGRESS after `retry_backoff`, and look the coordinator up again
//! after NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a broken connection, until the
//! call's timeout.
//!
//! [`Error::InvalidTransactionState`]: crate::Error::InvalidTransactionState
//! [`Error::is_abortable`]: crate::Error::is_abortable

pub(crate) mod manager;

mod pipeline;
pub use pipeline::{BatchOutcome, ExactlyOncePipeline, PipelineConfig};
#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod scripted_tests;
