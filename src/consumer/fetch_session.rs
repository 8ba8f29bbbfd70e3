//! The client half of KIP-227 incremental fetch sessions: one [`FetchSession`] per broker
//! fetch task, with the semantics of the Java client's `FetchSessionHandler`.
//!
//! ```text
//!  request metadata (session id, epoch)      meaning
//!  (0, 0)        INITIAL                     full fetch, asks the broker for a session
//!  (id, 0)       close existing, attempt new full fetch, drops session id, asks for a new one
//!  (id, n > 0)   incremental                 only added / altered partitions, plus forgotten ones
//!  (id, -1)      close existing              full fetch that ends the session (sent on close)
//!  (0, -1)       sessionless                 full fetch without a session (Fetch < v7, or the
//!                                             broker refused to create one)
//! ```
//!
//! Every request sends the partitions the task wants now (`next`). A full request replaces
//! the session's partitions with them; an incremental one sends only partitions that are new
//! or whose fetch parameters changed (offset, log start, max bytes, current leader epoch,
//! last fetched epoch) and lists in `forgotten_topics_data` the session partitions no longer
//! wanted. The broker keeps fetching every partition of the session, and leaves out of an
//! incremental answer those that have nothing new.
//!
//! Errors: FETCH_SESSION_ID_NOT_FOUND starts over with (0, 0); INVALID_FETCH_SESSION_EPOCH,
//! any other top-level error, a transport error or an answer naming partitions outside the
//! session close the session and ask for a new one with (id, 0). A full answer without a
//! session id means the broker would not create one: the task fetches sessionless for
//! [`SESSIONLESS_RETRY`], then asks again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use kafka_protocol::messages::FetchResponse;
use tokio::time::Instant;
use tracing::debug;

use super::TopicPartition;
use crate::error::ErrorCode;

/// "No session" on the wire.
pub(crate) const INVALID_SESSION_ID: i32 = 0;
/// The epoch of a full fetch that asks for a session.
pub(crate) const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch without a session (or closing one).
pub(crate) const FINAL_EPOCH: i32 = -1;
/// The first Fetch version with sessions.
pub(crate) const MIN_SESSION_VERSION: i16 = 7;
/// How long to fetch sessionless after the broker declined to create a session.
pub(crate) const SESSIONLESS_RETRY: Duration = Duration::from_secs(60);

/// The fetch parameters of one partition, as the session remembers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionData {
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// What one fetch request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    /// Partitions listed in `topics` (all of them in a full fetch).
    pub to_send: Vec<(TopicPartition, PartitionData)>,
    /// Partitions listed in `forgotten_topics_data` (incremental fetches only).
    pub to_forget: Vec<TopicPartition>,
}

impl SessionRequest {
    #[cfg(test)]
    pub(crate) fn is_full(&self) -> bool {
        is_full(self.epoch)
    }
}

/// What to do with a fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Apply it (including a top-level error other than the session ones).
    Apply,
    /// Drop it: the session was reset; fetch again (after the retry backoff if `backoff`).
    Discard { backoff: bool, reason: String },
}

fn is_full(epoch: i32) -> bool {
    epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        FINAL_EPOCH
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// The session state of one broker's fetch task.
#[derive(Debug)]
pub(crate) struct FetchSession {
    broker: i32,
    /// Metadata of the next request (unchanged between `build` and the answer).
    session_id: i32,
    epoch: i32,
    /// The partitions in the session, as last sent.
    partitions: HashMap<TopicPartition, PartitionData>,
    /// Fetching sessionless (the broker declined a session) until then.
    sessionless_until: Option<Instant>,
    /// The last request was built for a version without sessions.
    legacy: bool,
}

impl FetchSession {
    pub(crate) fn new(broker: i32) -> FetchSession {
        FetchSession {
            broker,
            session_id: INVALID_SESSION_ID,
            epoch: INITIAL_EPOCH,
            partitions: HashMap::new(),
            sessionless_until: None,
            legacy: false,
        }
    }

    /// The broker's session id (0 without a session).
    pub(crate) fn session_id(&self) -> i32 {
        self.session_id
    }

    /// The epoch the next request carries.
    pub(crate) fn epoch(&self) -> i32 {
        self.epoch
    }

    /// The partitions in the session.
    #[cfg(test)]
    pub(crate) fn partitions(&self) -> &HashMap<TopicPartition, PartitionData> {
        &self.partitions
    }

    /// The request for the partitions wanted now (`next`, in the order to send them), at
    /// Fetch `version`. Updates the session's partitions as the broker will.
    pub(crate) fn build(&mut self, version: i16, next: Vec<(TopicPartition, PartitionData)>, now: Instant) -> SessionRequest {
        self.legacy = version < MIN_SESSION_VERSION;
        if self.legacy {
            self.session_id = INVALID_SESSION_ID;
            self.epoch = FINAL_EPOCH;
        } else if let Some(t) = self.sessionless_until {
            if now >= t {
                self.sessionless_until = None;
                self.session_id = INVALID_SESSION_ID;
                self.epoch = INITIAL_EPOCH;
            } else {
                self.session_id = INVALID_SESSION_ID;
                self.epoch = FINAL_EPOCH;
            }
        } else if self.session_id == INVALID_SESSION_ID && self.epoch == FINAL_EPOCH {
            // Left sessionless by a legacy version; this version has sessions.
            self.epoch = INITIAL_EPOCH;
        }
        if is_full(self.epoch) {
            self.partitions = next.iter().cloned().collect();
            return SessionRequest { session_id: self.session_id, epoch: self.epoch, to_send: next, to_forget: Vec::new() };
        }
        let wanted: HashSet<&TopicPartition> = next.iter().map(|(tp, _)| tp).collect();
        let mut to_forget: Vec<TopicPartition> = self.partitions.keys().filter(|tp| !wanted.contains(tp)).cloned().collect();
        to_forget.sort();
        for tp in &to_forget {
            self.partitions.remove(tp);
        }
        let mut to_send = Vec::new();
        for (tp, data) in next {
            match self.partitions.get_mut(&tp) {
                Some(prev) if *prev == data => {}
                Some(prev) => {
                    *prev = data;
                    to_send.push((tp, data));
                }
                None => {
                    self.partitions.insert(tp.clone(), data);
                    to_send.push((tp, data));
                }
            }
        }
        SessionRequest { session_id: self.session_id, epoch: self.epoch, to_send, to_forget }
    }

    /// Applies the answer to the request last built.
    pub(crate) fn handle_response(&mut self, resp: &FetchResponse, now: Instant) -> Verdict {
        let parts = || {
            resp.responses.iter().flat_map(|t| {
                t.partitions.iter().map(move |p| TopicPartition::new(t.topic.0.as_str(), p.partition_index))
            })
        };
        let full = is_full(self.epoch);
        if resp.error_code != 0 {
            let code = ErrorCode::from_code(resp.error_code);
            debug!(broker = self.broker, session = self.session_id, epoch = self.epoch, ?code, "fetch answered with a top-level error");
            if self.legacy || (self.session_id == INVALID_SESSION_ID && self.epoch == FINAL_EPOCH) {
                return Verdict::Apply; // no session to reset
            }
            if code == Some(ErrorCode::FetchSessionIdNotFound) {
                self.session_id = INVALID_SESSION_ID;
            }
            self.epoch = INITIAL_EPOCH;
            return match code {
                Some(c @ (ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch)) => {
                    Verdict::Discard { backoff: false, reason: format!("{c:?}: starting a new fetch session") }
                }
                _ => Verdict::Apply,
            };
        }
        if full {
            let got: HashSet<TopicPartition> = parts().collect();
            if got.is_empty() && resp.throttle_time_ms > 0 {
                // KIP-219: a throttled full fetch is answered empty.
                self.reset_full();
                return Verdict::Discard { backoff: true, reason: format!("throttled for {} ms", resp.throttle_time_ms) };
            }
            let extra: Vec<&TopicPartition> = got.iter().filter(|tp| !self.partitions.contains_key(*tp)).collect();
            let omitted: Vec<&TopicPartition> = self.partitions.keys().filter(|tp| !got.contains(*tp)).collect();
            if !extra.is_empty() || !omitted.is_empty() {
                let reason = format!("invalid full fetch answer: omitted {omitted:?}, extra {extra:?}");
                self.reset_full();
                return Verdict::Discard { backoff: true, reason };
            }
            if self.legacy || self.epoch == FINAL_EPOCH {
                return Verdict::Apply; // sessionless, and stays so
            }
            if resp.session_id == INVALID_SESSION_ID {
                debug!(broker = self.broker, "the broker created no fetch session; fetching sessionless for a while");
                self.session_id = INVALID_SESSION_ID;
                self.epoch = FINAL_EPOCH;
                self.sessionless_until = Some(now + SESSIONLESS_RETRY);
            } else {
                debug!(broker = self.broker, session = resp.session_id, "fetch session created");
                self.session_id = resp.session_id;
                self.epoch = next_epoch(INITIAL_EPOCH);
            }
            return Verdict::Apply;
        }
        let extra: Vec<TopicPartition> = parts().filter(|tp| !self.partitions.contains_key(tp)).collect();
        if !extra.is_empty() {
            self.epoch = INITIAL_EPOCH;
            return Verdict::Discard { backoff: true, reason: format!("invalid incremental fetch answer: extra {extra:?}") };
        }
        if resp.session_id == INVALID_SESSION_ID {
            // The broker closed the session; its answer is still valid.
            debug!(broker = self.broker, session = self.session_id, "the broker closed the fetch session");
            self.session_id = INVALID_SESSION_ID;
            self.epoch = INITIAL_EPOCH;
        } else {
            self.epoch = next_epoch(self.epoch);
        }
        Verdict::Apply
    }

    /// A full fetch next, asking for a new session (sessionless stays sessionless).
    fn reset_full(&mut self) {
        if !(self.legacy || self.sessionless_until.is_some()) {
            self.session_id = INVALID_SESSION_ID;
            self.epoch = INITIAL_EPOCH;
        }
    }

    /// The request failed without an answer (connection broke, timed out): the next request
    /// closes the session and asks for a new one.
    pub(crate) fn handle_error(&mut self) {
        if self.legacy || self.sessionless_until.is_some() {
            return;
        }
        self.epoch = INITIAL_EPOCH;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData as RespPartition};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn data(offset: i64) -> PartitionData {
        PartitionData { fetch_offset: offset, log_start_offset: -1, max_bytes: 1 << 20, current_leader_epoch: 0, last_fetched_epoch: -1 }
    }

    fn resp(session_id: i32, error: i16, parts: &[(&str, i32)]) -> FetchResponse {
        let mut topics: Vec<FetchableTopicResponse> = Vec::new();
        for &(t, p) in parts {
            let part = RespPartition::default().with_partition_index(p);
            match topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    FetchableTopicResponse::default()
                        .with_topic(TopicName(StrBytes::from_string(t.to_owned())))
                        .with_partitions(vec![part]),
                ),
            }
        }
        FetchResponse::default().with_session_id(session_id).with_error_code(error).with_responses(topics)
    }

    fn sent(r: &SessionRequest) -> Vec<(TopicPartition, i64)> {
        r.to_send.iter().map(|(tp, d)| (tp.clone(), d.fetch_offset)).collect()
    }

    /// A session with a-0 at 10, a-1 at 20, b-0 at 30, established as id 7 (epoch 1 next).
    fn established(now: Instant) -> FetchSession {
        let mut s = FetchSession::new(1);
        let r = s.build(12, vec![(tp("a", 0), data(10)), (tp("a", 1), data(20)), (tp("b", 0), data(30))], now);
        assert_eq!((r.session_id, r.epoch), (0, 0), "the first fetch is full and asks for a session");
        assert!(r.is_full() && r.to_forget.is_empty());
        assert_eq!(r.to_send.len(), 3);
        assert_eq!(s.handle_response(&resp(7, 0, &[("a", 0), ("a", 1), ("b", 0)]), now), Verdict::Apply);
        assert_eq!((s.session_id(), s.epoch()), (7, 1));
        s
    }

    #[test]
    fn incremental_requests_send_only_what_changed_and_forget_what_is_no_longer_wanted() {
        let now = Instant::now();
        let mut s = established(now);
        // Nothing changed: an empty incremental request.
        let r = s.build(12, vec![(tp("a", 0), data(10)), (tp("a", 1), data(20)), (tp("b", 0), data(30))], now);
        assert_eq!((r.session_id, r.epoch), (7, 1));
        assert!(!r.is_full() && r.to_send.is_empty() && r.to_forget.is_empty());
        // The answer holds only a-1 (the others had nothing new).
        assert_eq!(s.handle_response(&resp(7, 0, &[("a", 1)]), now), Verdict::Apply);
        assert_eq!(s.epoch(), 2);
        // a-1 moved on and is buffered (not wanted), b-0 changed epoch, c-0 is new.
        let mut b0 = data(30);
        b0.current_leader_epoch = 4;
        let r = s.build(12, vec![(tp("a", 0), data(10)), (tp("b", 0), b0), (tp("c", 0), data(0))], now);
        assert_eq!((r.session_id, r.epoch), (7, 2));
        assert_eq!(sent(&r), vec![(tp("b", 0), 30), (tp("c", 0), 0)]);
        assert_eq!(r.to_forget, vec![tp("a", 1)]);
        assert_eq!(s.partitions().len(), 3);
        assert_eq!(s.handle_response(&resp(7, 0, &[]), now), Verdict::Apply);
        // a-1 comes back at its new offset: re-added.
        let r = s.build(12, vec![(tp("a", 0), data(10)), (tp("a", 1), data(25)), (tp("b", 0), b0), (tp("c", 0), data(0))], now);
        assert_eq!((r.epoch, sent(&r)), (3, vec![(tp("a", 1), 25)]));
        assert!(r.to_forget.is_empty());
        // Every field counts as a change.
        s.handle_response(&resp(7, 0, &[]), now);
        for change in 0..4 {
            let mut d = data(10);
            match change {
                0 => d.log_start_offset = 3,
                1 => d.max_bytes = 5,
                2 => d.last_fetched_epoch = 2,
                _ => d.fetch_offset = 11,
            }
            let r = s.build(12, vec![(tp("a", 0), d), (tp("a", 1), data(25)), (tp("b", 0), b0), (tp("c", 0), data(0))], now);
            assert_eq!(r.to_send.len(), 1, "change {change}");
            s.handle_response(&resp(7, 0, &[]), now);
        }
    }

    #[test]
    fn session_errors_start_over_with_a_full_fetch() {
        let now = Instant::now();
        let want = || vec![(tp("a", 0), data(10)), (tp("a", 1), data(20)), (tp("b", 0), data(30))];
        // FETCH_SESSION_ID_NOT_FOUND: a brand-new session (0, 0).
        let mut s = established(now);
        let _ = s.build(12, want(), now);
        let v = s.handle_response(&resp(0, ErrorCode::FetchSessionIdNotFound.code(), &[]), now);
        assert!(matches!(v, Verdict::Discard { backoff: false, .. }), "{v:?}");
        let r = s.build(12, want(), now);
        assert_eq!((r.session_id, r.epoch, r.to_send.len()), (0, 0, 3));
        // INVALID_FETCH_SESSION_EPOCH: close the session and ask for a new one (id, 0).
        let mut s = established(now);
        let _ = s.build(12, want(), now);
        let v = s.handle_response(&resp(0, ErrorCode::InvalidFetchSessionEpoch.code(), &[]), now);
        assert!(matches!(v, Verdict::Discard { backoff: false, .. }), "{v:?}");
        let r = s.build(12, want(), now);
        assert_eq!((r.session_id, r.epoch, r.to_send.len()), (7, 0, 3));
        assert!(r.is_full());
        // The full answer creates a new session.
        assert_eq!(s.handle_response(&resp(9, 0, &[("a", 0), ("a", 1), ("b", 0)]), now), Verdict::Apply);
        assert_eq!((s.session_id(), s.epoch()), (9, 1));
        // Another top-level error is applied by the caller, and resets the session too.
        let _ = s.build(12, want(), now);
        assert_eq!(s.handle_response(&resp(0, ErrorCode::NotLeaderOrFollower.code(), &[]), now), Verdict::Apply);
        assert_eq!((s.session_id(), s.epoch()), (9, 0));
        // A transport error: same.
        let mut s = established(now);
        let _ = s.build(12, want(), now);
        s.handle_error();
        let r = s.build(12, want(), now);
        assert_eq!((r.session_id, r.epoch, r.to_send.len()), (7, 0, 3));
    }

    #[test]
    fn the_epoch_advances_per_answer_and_wraps_to_one() {
        let now = Instant::now();
        let mut s = established(now);
        for want in 1..5 {
            let r = s.build(12, vec![(tp("a", 0), data(10))], now);
            assert_eq!(r.epoch, want);
            s.handle_response(&resp(7, 0, &[]), now);
        }
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
    }

    #[test]
    fn answers_naming_partitions_outside_the_session_are_discarded() {
        let now = Instant::now();
        let mut s = established(now);
        let _ = s.build(12, vec![(tp("a", 0), data(10))], now);
        let v = s.handle_response(&resp(7, 0, &[("b", 0)]), now);
        assert!(matches!(&v, Verdict::Discard { backoff: true, reason } if reason.contains("extra")), "{v:?}");
        let r = s.build(12, vec![(tp("a", 0), data(10))], now);
        assert_eq!((r.session_id, r.epoch), (7, 0));
        // A full answer must hold exactly the requested partitions.
        let v = s.handle_response(&resp(8, 0, &[]), now);
        assert!(matches!(&v, Verdict::Discard { reason, .. } if reason.contains("omitted")), "{v:?}");
        let r = s.build(12, vec![(tp("a", 0), data(10))], now);
        assert_eq!((r.session_id, r.epoch), (0, 0));
    }

    #[test]
    fn the_broker_closing_the_session_in_an_incremental_answer_starts_over() {
        let now = Instant::now();
        let mut s = established(now);
        let _ = s.build(12, vec![(tp("a", 0), data(10))], now);
        assert_eq!(s.handle_response(&resp(0, 0, &[("a", 0)]), now), Verdict::Apply);
        let r = s.build(12, vec![(tp("a", 0), data(10))], now);
        assert_eq!((r.session_id, r.epoch, r.to_send.len()), (0, 0, 1));
    }

    #[test]
    fn without_a_session_id_the_task_fetches_sessionless_and_asks_again_later() {
        let now = Instant::now();
        let mut s = FetchSession::new(1);
        let want = || vec![(tp("a", 0), data(10))];
        let r = s.build(12, want(), now);
        assert_eq!((r.session_id, r.epoch), (0, 0));
        assert_eq!(s.handle_response(&resp(0, 0, &[("a", 0)]), now), Verdict::Apply);
        for _ in 0..3 {
            let r = s.build(12, want(), now + Duration::from_secs(1));
            assert_eq!((r.session_id, r.epoch, r.to_send.len()), (0, FINAL_EPOCH, 1));
            assert_eq!(s.handle_response(&resp(0, 0, &[("a", 0)]), now), Verdict::Apply);
        }
        let r = s.build(12, want(), now + SESSIONLESS_RETRY);
        assert_eq!((r.session_id, r.epoch), (0, 0), "asks for a session again");
        assert_eq!(s.handle_response(&resp(5, 0, &[("a", 0)]), now), Verdict::Apply);
        assert_eq!((s.session_id(), s.epoch()), (5, 1));
    }

    #[test]
    fn versions_before_7_are_always_sessionless() {
        let now = Instant::now();
        let mut s = FetchSession::new(1);
        for _ in 0..3 {
            let r = s.build(6, vec![(tp("a", 0), data(10))], now);
            assert_eq!((r.session_id, r.epoch, r.to_send.len()), (0, FINAL_EPOCH, 1));
            assert_eq!(s.handle_response(&resp(0, 0, &[("a", 0)]), now), Verdict::Apply);
        }
        // The broker was upgraded: a session is asked for.
        let r = s.build(12, vec![(tp("a", 0), data(10))], now);
        assert_eq!((r.session_id, r.epoch), (0, 0));
    }

    #[test]
    fn a_throttled_empty_full_answer_is_discarded() {
        let now = Instant::now();
        let mut s = FetchSession::new(1);
        let _ = s.build(12, vec![(tp("a", 0), data(10))], now);
        let v = s.handle_response(&resp(0, 0, &[]).with_throttle_time_ms(100), now);
        assert!(matches!(v, Verdict::Discard { backoff: true, .. }), "{v:?}");
        assert_eq!((s.session_id(), s.epoch()), (0, 0));
    }
}
