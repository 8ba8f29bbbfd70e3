//! SubscriptionState: the assigned partitions and, per partition, the position and what the
//! fetch path knows about it (watermarks, a pending reset or error, pause), plus the buffer of
//! completed fetches waiting for `poll`.
//!
//! Everything here sits behind one mutex in the consumer's shared state; the fetch tasks and
//! the application's calls take it briefly and never hold it across an await.

use std::collections::{BTreeMap, VecDeque};

use tokio::time::Instant;

use super::completed_fetch::CompletedFetch;
use super::TopicPartition;
use crate::error::Error;

/// Where the next fetch of a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchPosition {
    /// The offset of the next record to return.
    pub offset: i64,
    /// The leader epoch of the last batch fetched before `offset` (KIP-320 truncation check),
    /// when known.
    pub last_fetched_epoch: Option<i32>,
}

/// How a partition without a position gets one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetTo {
    Earliest,
    Latest,
}

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// `None` until initialised (committed offset, reset or seek).
    pub position: Option<FetchPosition>,
    /// A reset requested (seek_to_beginning/end, or auto reset after OFFSET_OUT_OF_RANGE).
    pub reset: Option<ResetTo>,
    pub paused: bool,
    /// Bumped whenever the position is set from outside the fetch path (seek, reset): a fetch
    /// answer for an older generation is dropped.
    pub generation: u64,
    /// A fetch that includes this partition is in flight.
    pub in_flight: bool,
    /// A completed fetch of this partition waits in the buffer.
    pub buffered: bool,
    /// Not fetched before this instant (after a retriable error).
    pub backoff_until: Option<Instant>,
    /// An error to hand to the application on its next poll; the partition is not fetched
    /// until it is taken or the application seeks.
    pub error: Option<Error>,
    pub high_watermark: Option<i64>,
    pub last_stable_offset: Option<i64>,
    pub log_start_offset: Option<i64>,
}

impl PartitionState {
    fn new() -> PartitionState {
        PartitionState {
            position: None,
            reset: None,
            paused: false,
            generation: 0,
            in_flight: false,
            buffered: false,
            backoff_until: None,
            error: None,
            high_watermark: None,
            last_stable_offset: None,
            log_start_offset: None,
        }
    }

    /// Whether a fetch may include the partition now.
    pub(crate) fn fetchable(&self, now: Instant) -> bool {
        self.position.is_some()
            && self.reset.is_none()
            && !self.paused
            && !self.in_flight
            && !self.buffered
            && self.error.is_none()
            && self.backoff_until.is_none_or(|t| t <= now)
    }
}

/// The assignment and the fetch buffer.
#[derive(Default)]
pub(crate) struct SubscriptionState {
    pub partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Completed fetches in arrival order; at most one per partition.
    pub buffer: VecDeque<CompletedFetch>,
    /// Fetched bytes held in `buffer`.
    pub buffered_bytes: usize,
    /// Counts every generation handed out, so a re-assigned partition never reuses one.
    next_generation: u64,
}

impl SubscriptionState {
    /// Replaces the assignment. Partitions kept keep their state; dropped ones lose their
    /// buffered data.
    pub(crate) fn assign(&mut self, tps: Vec<TopicPartition>) {
        let mut next = BTreeMap::new();
        for tp in tps {
            let st = self.partitions.remove(&tp).unwrap_or_else(PartitionState::new);
            next.insert(tp, st);
        }
        self.partitions = next;
        let partitions = &self.partitions;
        let mut freed = 0;
        self.buffer.retain(|f| {
            let keep = partitions.contains_key(&f.tp);
            if !keep {
                freed += f.size;
            }
            keep
        });
        self.buffered_bytes -= freed;
    }

    fn bump(&mut self, tp: &TopicPartition) -> u64 {
        self.next_generation += 1;
        let g = self.next_generation;
        if let Some(st) = self.partitions.get_mut(tp) {
            st.generation = g;
        }
        g
    }

    /// Drops the buffered fetch of `tp`, if any.
    fn drop_buffered(&mut self, tp: &TopicPartition) {
        let mut freed = 0;
        self.buffer.retain(|f| {
            let keep = &f.tp != tp;
            if !keep {
                freed += f.size;
            }
            keep
        });
        self.buffered_bytes -= freed;
        if let Some(st) = self.partitions.get_mut(tp) {
            st.buffered = false;
        }
    }

    /// Sets the position from outside the fetch path (seek, committed offset, reset
    /// answer): clears errors and buffered data, invalidates fetches in flight.
    pub(crate) fn seek(&mut self, tp: &TopicPartition, pos: FetchPosition) -> bool {
        if !self.partitions.contains_key(tp) {
            return false;
        }
        self.drop_buffered(tp);
        self.bump(tp);
        let st = self.partitions.get_mut(tp).expect("checked");
        st.position = Some(pos);
        st.reset = None;
        st.error = None;
        st.backoff_until = None;
        true
    }

    /// Requests a reset of `tp` (resolved by the next poll with ListOffsets).
    pub(crate) fn request_reset(&mut self, tp: &TopicPartition, to: ResetTo) -> bool {
        if !self.partitions.contains_key(tp) {
            return false;
        }
        self.drop_buffered(tp);
        self.bump(tp);
        let st = self.partitions.get_mut(tp).expect("checked");
        st.position = None;
        st.reset = Some(to);
        st.error = None;
        true
    }

    /// Removes and returns the first buffered fetch for which `f` says yes.
    pub(crate) fn take_buffered(&mut self, idx: usize) -> Option<CompletedFetch> {
        let f = self.buffer.remove(idx)?;
        self.buffered_bytes -= f.size;
        if let Some(st) = self.partitions.get_mut(&f.tp) {
            st.buffered = false;
        }
        Some(f)
    }
}
