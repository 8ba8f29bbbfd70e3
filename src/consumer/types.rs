//! The consumer's plain data types, below everything else of the consumer (the fetcher,
//! the subscription state, offsets, the group code): a topic-partition, a committed offset,
//! a consumed record. Re-exported from `consumer` (issue 12: `mod.rs` no longer defines
//! what its children use).

use std::sync::Arc;

use bytes::Bytes;

use crate::record::Headers;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic and partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A committed offset: the offset of the next record to consume, with the leader epoch of the
/// last consumed record and free-form metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the record before `offset`, when known (KIP-320).
    pub leader_epoch: Option<i32>,
    /// Application metadata stored with the commit ("" by default).
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without epoch or metadata.
    pub fn new(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata { offset, leader_epoch: None, metadata: String::new() }
    }
}

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer (the topic's `message.timestamp.type` is CreateTime).
    CreateTime,
    /// Set by the broker when it appended the batch (LogAppendTime).
    LogAppendTime,
}

/// A consumed record. Key, value and header values are slices of the fetched buffer (or of
/// the batch's one decompressed buffer): no copy per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic (shared by every record of a fetch: cloning is a reference count).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The timestamp, ms since the epoch (see `timestamp_type`).
    pub timestamp: i64,
    /// Whether the timestamp is the producer's or the broker's.
    pub timestamp_type: TimestampType,
    /// The key; `None` is null, distinct from empty.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone), distinct from empty.
    pub value: Option<Bytes>,
    /// The headers, in order; keys may repeat. Kept as a slice of the fetched bytes and
    /// decoded as you iterate (see [`Headers`]).
    pub headers: Headers,
    /// The leader epoch of the broker that appended the record, when known.
    pub leader_epoch: Option<i32>,
}
