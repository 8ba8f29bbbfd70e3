//! `CompletedFetch`: one partition's fetched records, buffered in the `SubscriptionState`
//! and decoded lazily by `poll` (skipping, control batches, the aborted-transaction
//! filter). Its own file below `subscription.rs` (which buffers it) and `fetcher.rs` (which
//! makes it), so that those two do not import each other (issue 12).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::config::IsolationLevel;
use super::types::{ConsumerRecord, TimestampType, TopicPartition};
use crate::error::{Error, Result};
use crate::record::{self, BatchIter, ControlRecordType, RecordBatchHeader, RecordIter};

/// The fetched records of one partition, decoded lazily by `poll`.
pub(crate) struct CompletedFetch {
    pub tp: TopicPartition,
    topic: Arc<str>,
    /// The partition's generation when the fetch was sent; a seek since then voids it.
    pub generation: u64,
    /// The records bytes held (counted against `fetch_max_bytes`).
    pub size: usize,
    batches: BatchIter,
    /// The next offset to return: the partition's position once this fetch is consumed.
    pub next_offset: i64,
    /// The leader epoch of the last batch passed.
    pub last_epoch: Option<i32>,
    read_committed: bool,
    /// Aborted transactions (producer id, first offset) not yet reached, by first offset.
    aborted: VecDeque<(i64, i64)>,
    aborted_producers: HashSet<i64>,
    /// The batch being handed out, decoded one record at a time.
    current: Option<(BatchInfo, RecordIter)>,
    max_decompressed: usize,
    /// An error found after records were already handed out; returned by the next `take`.
    error: Option<Error>,
    saw_batch: bool,
    exhausted: bool,
}

/// What a record needs from its batch header.
#[derive(Clone, Copy)]
struct BatchInfo {
    next_offset: i64,
    leader_epoch: Option<i32>,
    timestamp_type: TimestampType,
}

impl CompletedFetch {
    /// `records`: the partition's records bytes from the fetch response; `aborted`: its
    /// aborted-transaction list (producer id, first offset), any order.
    #[allow(clippy::too_many_arguments)] // one call site in production, one in the tests
    pub(crate) fn new(
        tp: TopicPartition,
        generation: u64,
        fetch_offset: i64,
        last_epoch: Option<i32>,
        records: Bytes,
        isolation: IsolationLevel,
        mut aborted: Vec<(i64, i64)>,
        max_decompressed: usize,
        check_crcs: bool,
    ) -> CompletedFetch {
        // Some brokers do not sort the list: order it by first offset (ties by producer id).
        aborted.sort_by_key(|&(pid, first)| (first, pid));
        CompletedFetch {
            topic: Arc::from(tp.topic.as_str()),
            tp,
            generation,
            size: records.len(),
            batches: if check_crcs {
                record::batches(records, max_decompressed)
            } else {
                record::batches(records, max_decompressed).without_crc_check()
            },
            next_offset: fetch_offset,
            last_epoch,
            read_committed: isolation == IsolationLevel::ReadCommitted,
            aborted: aborted.into(),
            aborted_producers: HashSet::new(),
            current: None,
            max_decompressed,
            error: None,
            saw_batch: false,
            exhausted: false,
        }
    }

    /// Whether every record has been handed out (or skipped).
    pub(crate) fn is_exhausted(&self) -> bool {
        self.exhausted && self.current.is_none() && self.error.is_none()
    }

    fn corrupt(&self, offset: i64, detail: String) -> Error {
        Error::CorruptRecord { topic: self.tp.topic.clone(), partition: self.tp.partition, offset, detail }
    }

    /// Appends up to `max` records to `out`, advancing `next_offset` past every record, control
    /// batch and aborted batch it passes. An error (bad CRC, malformed batch, decompression
    /// bomb) is returned only when no record was appended by this call; otherwise it waits
    /// for the next call. The position stays at the bad batch.
    pub(crate) fn take(&mut self, max: usize, out: &mut Vec<ConsumerRecord>) -> Result<()> {
        let start = out.len();
        if let Some(e) = self.error.clone() {
            return Err(e);
        }
        while out.len() - start < max {
            if let Some((info, records)) = &mut self.current {
                let info = *info;
                match records.next() {
                    Some(Err(e)) => {
                        // A malformed record: the records before it were good and handed
                        // out; the position stays at the bad one (as the Java client does).
                        let e = self.corrupt(self.next_offset, e.to_string());
                        return self.fail(e, out.len() > start);
                    }
                    Some(Ok(r)) => {
                        if r.offset < self.next_offset {
                            continue; // before the fetch position (a seek into the batch)
                        }
                        self.next_offset = r.offset.wrapping_add(1);
                        out.push(ConsumerRecord {
                            topic: self.topic.clone(),
                            partition: self.tp.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            timestamp_type: info.timestamp_type,
                            key: r.key,
                            value: r.value,
                            headers: r.headers,
                            leader_epoch: info.leader_epoch,
                        });
                        continue;
                    }
                    None => {
                        self.next_offset = self.next_offset.max(info.next_offset);
                        self.current = None;
                    }
                }
            }
            if self.exhausted {
                break;
            }
            let raw = match self.batches.next_raw() {
                None => {
                    self.exhausted = true;
                    if !self.saw_batch && self.batches.truncated() {
                        let e = self.corrupt(
                            self.next_offset,
                            "the fetch returned only part of a batch (larger than the fetch size allows)".into(),
                        );
                        return self.fail(e, out.len() > start);
                    }
                    break;
                }
                Some(Err(e)) => {
                    let e = self.corrupt(self.next_offset, e.to_string());
                    return self.fail(e, out.len() > start);
                }
                Some(Ok(raw)) => raw,
            };
            self.saw_batch = true;
            let h: &RecordBatchHeader = &raw.header;
            let batch_next = h.last_offset().wrapping_add(1);
            if batch_next <= self.next_offset {
                continue; // entirely before the position
            }
            let epoch = (h.partition_leader_epoch >= 0).then_some(h.partition_leader_epoch);
            let is_control = h.attributes & record::attr::CONTROL != 0;
            let transactional = h.attributes & record::attr::TRANSACTIONAL != 0;
            if self.read_committed && h.producer_id >= 0 {
                let last = h.last_offset();
                while let Some(&(pid, first)) = self.aborted.front() {
                    if first > last {
                        break;
                    }
                    self.aborted.pop_front();
                    self.aborted_producers.insert(pid);
                }
                if !is_control && transactional && self.aborted_producers.contains(&h.producer_id) {
                    // An aborted transaction's batch: skipped, never decoded.
                    self.next_offset = batch_next;
                    self.last_epoch = epoch.or(self.last_epoch);
                    continue;
                }
            }
            let (base_offset, producer_id) = (h.base_offset, h.producer_id);
            let info = BatchInfo {
                next_offset: batch_next,
                leader_epoch: epoch,
                timestamp_type: if h.log_append_time() { TimestampType::LogAppendTime } else { TimestampType::CreateTime },
            };
            let records = match raw.records(self.max_decompressed) {
                Ok(d) => d,
                Err(e) => {
                    self.exhausted = true;
                    let e = self.corrupt(base_offset, e.to_string());
                    return self.fail(e, out.len() > start);
                }
            };
            self.last_epoch = epoch.or(self.last_epoch);
            if is_control {
                // Never returned; an ABORT marker ends the producer's aborted transaction.
                if self.read_committed
                    && records.peek_control_type() == Some(ControlRecordType::Abort)
                {
                    self.aborted_producers.remove(&producer_id);
                }
                self.next_offset = self.next_offset.max(batch_next);
                continue;
            }
            self.current = Some((info, records));
        }
        Ok(())
    }

    fn fail(&mut self, e: Error, have_records: bool) -> Result<()> {
        self.exhausted = true;
        self.current = None;
        self.error = Some(e.clone());
        if have_records { Ok(()) } else { Err(e) }
    }
}

#[cfg(test)]
mod tests;
