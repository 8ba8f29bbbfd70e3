//! The producer id and epoch (Java's `ProducerIdAndEpoch`): written by the Sender
//! (idempotent producer, KIP-360 epoch bumps) or by the `TransactionManager`
//! (InitProducerId of a transactional producer), read by both and by the producer handle.
//! Its own file below `sender.rs` and `txn/manager.rs`, so that neither imports the other
//! for it (issue 12).

/// The producer id and epoch (idempotence), shared with the producer handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdentity {
    pub producer_id: i64,
    pub epoch: i16,
}
