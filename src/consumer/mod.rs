//! The consumer: manual assignment, fetching ahead per broker, positions, seeks, watermarks
//! and lag, read_committed, and committed offsets of a group id without membership.
//!
//! ```no_run
//! # async fn demo() -> ferrokafka::Result<()> {
//! use std::time::Duration;
//! use ferrokafka::consumer::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};
//!
//! let consumer = Consumer::new(
//!     ConsumerConfig::new("127.0.0.1:9092").auto_offset_reset(OffsetReset::Earliest),
//! ).await?;
//! consumer.assign(vec![TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)])?;
//! loop {
//!     for r in consumer.poll(Duration::from_secs(1)).await? {
//!         println!("{}-{}@{}: {:?}", r.topic, r.partition, r.offset, r.value);
//!     }
//! }
//! # }
//! ```
//!
//! The path of a record: a broker's fetch task (the Fetcher) fetches every assigned,
//! fetchable partition that broker leads and queues each partition's records bytes
//! undecoded; [`Consumer::poll`] decodes them lazily (CRC checked, decompression bounded),
//! skips what precedes the position, control batches and aborted transactions, and advances
//! the partition's position past every record it returns.
//!
//! # Sync or async
//! A method is `async` when it waits for something: a broker's answer (`poll`, `commit`,
//! `committed`, `position`, `offsets_for_times`, `beginning_offsets` / `end_offsets`) or the
//! group (`subscribe`, `subscribe_pattern`, `unsubscribe`, `close`). A method that only
//! records a decision for the fetch tasks and the next `poll` returns at once and is plain
//! `fn`: `assign`, `seek`, `seek_to_beginning` / `seek_to_end`, `pause` / `resume`,
//! `set_rebalance_listener`, and `commit_async` (which hands back a [`CommitFuture`] for the
//! outcome). `subscribe` and `subscribe_pattern` are async, unlike Java's, because they do
//! wait: under [`GroupProtocol::Consumer`] they ask a broker whether it serves KIP-848 (an
//! error at the call instead of at some later poll), `subscribe` fetches the subscribed
//! topics' metadata, and both wait for a poll that is running a rebalance to finish before
//! they change the subscription.
//!
//! # Cancel safety
//! `poll`, `recv` and the stream are cancel safe: a record is taken from the buffer and the
//! position advanced only in a synchronous step after the last await.

pub(crate) mod completed_fetch;
mod config;
pub(crate) mod fetch_decode;
mod fetch_session;
pub(crate) mod fetcher;
pub mod group;
pub(crate) mod offsets;
#[cfg(test)]
mod scripted_tests;
mod subscription;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use crate::record::{Header, Headers, HeadersIter};
pub use config::{ConsumerConfig, IsolationLevel, OffsetReset};
pub use types::{ConsumerRecord, OffsetAndMetadata, TimestampType, TopicPartition};
pub use group::assignor::{Assignment, GroupMember, PartitionAssignor, RebalanceProtocol, Subscription};
pub use group::range::RangeAssignor;
pub use group::round_robin::RoundRobinAssignor;
pub use group::sticky::{CooperativeStickyAssignor, StickyAssignor};
pub use group::{ConsumerGroupMetadata, ConsumerRebalanceListener, GroupProtocol};

use crate::client::ClientCore;
use crate::error::{Error, Result};
use crate::metadata::validate_topic_name;
use group::coordinator::{GroupCoordinator, GroupSettings, Subscribed};
use offsets::{Coordinator, EARLIEST, LATEST};
use fetcher::Shared;
use subscription::{FetchPosition, ResetTo};

/// The answer of [`Consumer::offsets_for_times`] for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The earliest offset whose timestamp is at or after the one asked for.
    pub offset: i64,
    /// That record's timestamp.
    pub timestamp: i64,
    /// The leader epoch of that record, when the broker reports it.
    pub leader_epoch: Option<i32>,
}

/// The outcome of a commit started by [`Consumer::commit_async`]: resolves to the commit's
/// result once the broker answered (or the commit failed for good).
///
/// The commit does not depend on this future: it runs in the background and completes even
/// when the future is dropped unawaited (as Java's `commitAsync` without a callback), so
/// dropping it only discards the outcome. An error from before the request was sent (closed
/// consumer, no group id, a fatal member error) is returned by the first poll. Awaiting
/// again after it resolved panics, as for any future.
#[derive(Debug)]
pub struct CommitFuture(CommitState);

#[derive(Debug)]
enum CommitState {
    /// The commit could not start; the error is handed out once.
    Failed(Option<Error>),
    /// The background commit task.
    Running(JoinHandle<Result<()>>),
}

impl std::future::Future for CommitFuture {
    type Output = Result<()>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        match &mut self.0 {
            CommitState::Failed(e) => std::task::Poll::Ready(Err(e.take().expect("CommitFuture polled after it resolved"))),
            CommitState::Running(task) => std::pin::Pin::new(task).poll(cx).map(|r| match r {
                Ok(r) => r,
                // The commit's panic is the caller's to see, as if it had run inline.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: the runtime is shutting down.
                Err(_) => Err(Error::Closed),
            }),
        }
    }
}

/// An asynchronous Kafka consumer with manual assignment.
///
/// Methods take `&self`; share it behind an `Arc` if several tasks need it. Dropping it (or
/// [`close`](Consumer::close)) stops its fetch tasks.
pub struct Consumer {
    shared: Arc<Shared>,
    coordinator: Option<Arc<Coordinator>>,
    /// The group membership (classic protocol), with a group id.
    group: Option<Arc<GroupCoordinator>>,
    manager: JoinHandle<()>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("config", &self.shared.cfg).finish()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.shutdown();
        self.manager.abort();
        if let Some(g) = &self.group {
            g.abort_tasks();
        }
    }
}

impl Consumer {
    /// Validates the config and learns the cluster from the bootstrap servers.
    pub async fn new(config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let core = ClientCore::connect(config.client.clone()).await?;
        let coordinator = config.group_id.clone().map(|g| Arc::new(Coordinator::new(g)));
        let shared = Arc::new(Shared::new(core, config));
        let manager = tokio::spawn(fetcher::run_manager(shared.clone()));
        let group = coordinator.as_ref().map(|c| {
            let settings = GroupSettings::from_config(&shared.cfg, c.group().to_owned());
            GroupCoordinator::new(shared.core.clone(), c.clone(), settings)
        });
        Ok(Consumer { shared, coordinator, group, manager })
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.is_closed() { Err(Error::Closed) } else { Ok(()) }
    }

    /// Replaces the assignment with `partitions`. Partitions that stay assigned keep their
    /// position; new ones start from the group's committed offset (with a group id) or
    /// `auto_offset_reset`, resolved by the next poll. An error while subscribed (manual
    /// assignment and subscriptions are mutually exclusive, as in Java).
    ///
    /// Synchronous (see "Sync or async" in the module docs): it records the assignment and
    /// wakes the fetch tasks; nothing waits for a broker.
    pub fn assign(&self, partitions: Vec<TopicPartition>) -> Result<()> {
        self.check_open()?;
        if self.group.as_ref().is_some_and(|g| g.is_subscribed()) {
            return Err(Error::InvalidArgument(
                "assign: the consumer is subscribed; manual assignment and subscriptions are mutually exclusive (unsubscribe first)".into(),
            ));
        }
        for tp in &partitions {
            validate_topic_name(&tp.topic)?;
            if tp.partition < 0 {
                return Err(Error::InvalidArgument(format!("partition {} of {} is negative", tp.partition, tp.topic)));
            }
        }
        self.shared.state.lock().unwrap().assign(partitions);
        self.shared.wake_fetchers();
        Ok(())
    }

    fn group_for(&self, what: &str) -> Result<&Arc<GroupCoordinator>> {
        self.check_open()?;
        if !self.shared.state.lock().unwrap().partitions.is_empty() && !self.group.as_ref().is_some_and(|g| g.is_subscribed()) {
            return Err(Error::InvalidArgument(format!(
                "{what}: partitions are assigned manually; manual assignment and subscriptions are mutually exclusive (assign an empty list first)"
            )));
        }
        self.group.as_ref().ok_or_else(|| {
            Error::InvalidArgument(format!("{what} needs a group id: set ConsumerConfig::group_id"))
        })
    }

    /// Joins the consumer group (`group_id`) with a subscription to `topics`: the group
    /// assigns partitions among its members, and `poll` runs the rebalances. Replaces any
    /// earlier subscription (a changed subscription rejoins). Topics that do not exist yet
    /// are assigned once they exist.
    ///
    /// Async (see "Sync or async" in the module docs): it fetches the topics' metadata,
    /// under [`GroupProtocol::Consumer`] checks that the brokers serve KIP-848, and waits
    /// for a poll that is running a rebalance; the join itself happens in `poll`.
    pub async fn subscribe<I, T>(&self, topics: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let g = self.group_for("subscribe")?;
        let topics: std::collections::BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        for t in &topics {
            validate_topic_name(t)?;
        }
        if topics.is_empty() {
            return Err(Error::InvalidArgument("subscribe: no topics (use unsubscribe to leave the group)".into()));
        }
        g.check_supported().await?;
        let list: Vec<String> = topics.iter().cloned().collect();
        self.shared.core.metadata.refresh_topics(&list).await?;
        g.subscribe(Subscribed::Topics(topics), None).await
    }

    /// Joins the consumer group with a subscription to every topic whose whole name matches
    /// `pattern` (a [`regex`](https://docs.rs/regex) expression, anchored at both ends as
    /// Java's `Pattern.matches`). Topics created later that match are picked up when the
    /// consumer next refreshes the cluster's topic list (every
    /// `min(metadata_max_age, 30 s)`). Internal topics never match.
    ///
    /// Async, as [`subscribe`](Consumer::subscribe): under [`GroupProtocol::Consumer`] it
    /// checks that the brokers serve KIP-848, and it waits for a poll that is running a
    /// rebalance; the pattern is resolved and the group joined in `poll`.
    pub async fn subscribe_pattern(&self, pattern: &str) -> Result<()> {
        let g = self.group_for("subscribe_pattern")?;
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Error::InvalidArgument(format!("subscribe_pattern: invalid pattern {pattern:?}: {e}")))?;
        g.check_supported().await?;
        g.subscribe(Subscribed::Pattern(re), None).await
    }

    /// Sets the callbacks run around rebalances (see [`ConsumerRebalanceListener`]),
    /// replacing any earlier listener. Synchronous (see "Sync or async" in the module docs):
    /// it only records the listener, which the next `poll` (or `unsubscribe`, `close`)
    /// installs, so it never waits for a running poll and may be called from a callback.
    /// A rebalance already under way in a running poll finishes with the old listener.
    /// Fails only without a group id.
    pub fn set_rebalance_listener(&self, listener: impl ConsumerRebalanceListener) -> Result<()> {
        let g = self.group.as_ref().ok_or_else(|| {
            Error::InvalidArgument("set_rebalance_listener needs a group id: set ConsumerConfig::group_id".into())
        })?;
        g.set_listener(Arc::new(listener));
        Ok(())
    }

    /// Leaves the group: revokes the assignment (calling the listener), sends LeaveGroup
    /// and forgets the subscription. Nothing happens when not subscribed.
    pub async fn unsubscribe(&self) -> Result<()> {
        self.check_open()?;
        match &self.group {
            Some(g) if g.is_subscribed() => g.unsubscribe(self).await,
            _ => Ok(()),
        }
    }

    /// The group membership for
    /// [`send_offsets_to_transaction`](crate::producer::Producer): group id, generation and
    /// member id as of now. `None` without a group id.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.group.as_ref().map(|g| g.metadata())
    }

    /// Applies a group assignment (the partitions this member owns now).
    pub(crate) fn group_assign(&self, partitions: Vec<TopicPartition>) {
        let topics: Vec<String> = partitions.iter().map(|tp| tp.topic.clone()).collect();
        self.shared.core.metadata.note_interest(&topics);
        self.shared.state.lock().unwrap().assign(partitions);
        self.shared.wake_fetchers();
    }

    /// Removes revoked or lost partitions from the assignment.
    pub(crate) fn group_unassign(&self, partitions: &[TopicPartition]) {
        let mut st = self.shared.state.lock().unwrap();
        let keep: Vec<TopicPartition> = st.partitions.keys().filter(|tp| !partitions.contains(tp)).cloned().collect();
        st.assign(keep);
        drop(st);
        self.shared.wake_fetchers();
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.state.lock().unwrap().partitions.keys().cloned().collect()
    }

    fn not_assigned(tp: &TopicPartition) -> Error {
        Error::InvalidArgument(format!("{tp} is not assigned to this consumer"))
    }

    /// Records fetched so far, at most `max_poll_records`, waiting up to `timeout` for the
    /// first. Returns an empty vector on timeout. An error of a partition (out of range with
    /// `auto_offset_reset` [`OffsetReset::Error`], a corrupt batch, truncation) is returned once no records are
    /// ready; the partition is not fetched again until it is returned or the partition seeked.
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.poll_up_to(timeout, self.shared.cfg.max_poll_records).await
    }

    /// The next record, waiting as long as it takes.
    pub async fn recv(&self) -> Result<ConsumerRecord> {
        loop {
            let mut v = self.poll_up_to(Duration::from_secs(3600), 1).await?;
            if let Some(r) = v.pop() {
                return Ok(r);
            }
        }
    }

    /// The records as a stream (one `recv` per item); it never ends by itself.
    pub fn stream(&self) -> impl Stream<Item = Result<ConsumerRecord>> + '_ {
        futures::stream::unfold(self, |c| async move {
            if c.shared.is_closed() {
                return None;
            }
            Some((c.recv().await, c))
        })
    }

    async fn poll_up_to(&self, timeout: Duration, max: usize) -> Result<Vec<ConsumerRecord>> {
        self.check_open()?;
        let deadline = Instant::now() + timeout;
        let _polling = self.group.as_ref().map(|g| g.polling());
        let mut events = self.group.as_ref().map(|g| g.events.subscribe());
        loop {
            let mut data = self.shared.data.subscribe();
            if let Some(g) = &self.group {
                if let Some(ev) = events.as_mut() {
                    ev.borrow_and_update();
                }
                g.poll(self, deadline).await?;
            }
            self.update_positions(deadline).await?;
            let out = self.drain(max)?;
            if !out.is_empty() {
                return Ok(out);
            }
            if self.shared.is_closed() {
                return Err(Error::Closed);
            }
            let group_event = async {
                match events.as_mut() {
                    Some(ev) => {
                        let _ = ev.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            // Wake at least every second so a long poll keeps the group's poll timer fresh
            // and its auto-commit on time.
            let tick = Instant::now() + Duration::from_secs(1);
            tokio::select! {
                _ = data.changed() => {}
                _ = group_event => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                _ = tokio::time::sleep_until(tick), if self.group.is_some() => {}
            }
        }
    }

    /// Takes up to `max` records from the buffer (or a partition's pending error).
    fn drain(&self, max: usize) -> Result<Vec<ConsumerRecord>> {
        let shared = &self.shared;
        let mut out = Vec::new();
        let mut consumed_any = false;
        loop {
            if out.len() >= max {
                break;
            }
            let taken = {
                let mut st = shared.state.lock().unwrap();
                let idx = st.buffer.iter().position(|f| {
                    st.partitions.get(&f.tp).is_some_and(|p| !p.paused && p.generation == f.generation)
                });
                // Fetches of partitions no longer at that generation are dropped as found.
                let stale: Vec<usize> = st
                    .buffer
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| st.partitions.get(&f.tp).is_none_or(|p| p.generation != f.generation))
                    .map(|(i, _)| i)
                    .collect();
                let mut idx = idx;
                for i in stale.into_iter().rev() {
                    st.take_buffered(i);
                    if let Some(j) = idx.as_mut() {
                        if *j > i {
                            *j -= 1;
                        }
                    }
                }
                match idx {
                    Some(i) => {
                        let f = st.buffer.remove(i).expect("index");
                        Some(f)
                    }
                    None => None,
                }
            };
            let Some(mut f) = taken else { break };
            let before = out.len();
            let result = f.take(max - out.len(), &mut out);
            let mut st = shared.state.lock().unwrap();
            let still = st.partitions.get(&f.tp).is_some_and(|p| p.generation == f.generation);
            if !still {
                // Seeked meanwhile: these records are void.
                out.truncate(before);
                st.buffered_bytes -= f.size;
                if let Some(p) = st.partitions.get_mut(&f.tp) {
                    p.buffered = false;
                }
                continue;
            }
            let p = st.partitions.get_mut(&f.tp).expect("checked");
            p.position = Some(FetchPosition { offset: f.next_offset, last_fetched_epoch: f.last_epoch });
            match result {
                Err(e) => {
                    // The position stays at the bad batch; the error goes to the application
                    // now and the partition is fetched again afterwards.
                    p.buffered = false;
                    st.buffered_bytes -= f.size;
                    consumed_any = true;
                    drop(st);
                    if out.is_empty() {
                        shared.wake_fetchers();
                        return Err(e);
                    }
                    if let Some(p) = shared.state.lock().unwrap().partitions.get_mut(&f.tp) {
                        p.error = Some(e);
                    }
                    break;
                }
                Ok(()) => {
                    if f.is_exhausted() {
                        p.buffered = false;
                        st.buffered_bytes -= f.size;
                        consumed_any = true;
                    } else {
                        st.buffer.push_front(f);
                    }
                }
            }
        }
        if consumed_any {
            shared.wake_fetchers();
        }
        if out.is_empty() {
            let mut st = shared.state.lock().unwrap();
            if let Some(p) = st.partitions.values_mut().find(|p| p.error.is_some() && !p.paused) {
                let e = p.error.take().expect("found");
                drop(st);
                shared.wake_fetchers();
                return Err(e);
            }
        }
        Ok(out)
    }

    /// Gives every assigned partition without a position one: the committed offset (with a
    /// group id), else `auto_offset_reset`; and resolves requested resets with ListOffsets.
    async fn update_positions(&self, deadline: Instant) -> Result<()> {
        let (uninit, gens): (Vec<TopicPartition>, HashMap<TopicPartition, u64>) = {
            let st = self.shared.state.lock().unwrap();
            let v: Vec<_> = st
                .partitions
                .iter()
                .filter(|(_, p)| p.position.is_none() && p.reset.is_none())
                .map(|(tp, _)| tp.clone())
                .collect();
            let g = st.partitions.iter().map(|(tp, p)| (tp.clone(), p.generation)).collect();
            (v, g)
        };
        let timeout = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)).min(self.shared.cfg.default_api_timeout);
        if !uninit.is_empty() {
            let committed = match &self.coordinator {
                Some(c) => c.fetch(&self.shared.core, &uninit, timeout.max(self.shared.core.config.request_timeout)).await?,
                None => HashMap::new(),
            };
            let mut st = self.shared.state.lock().unwrap();
            for tp in &uninit {
                let Some(p) = st.partitions.get(tp) else { continue };
                if p.generation != gens[tp] || p.position.is_some() || p.reset.is_some() {
                    continue;
                }
                if let Some(om) = committed.get(tp) {
                    st.seek(tp, FetchPosition { offset: om.offset, last_fetched_epoch: om.leader_epoch });
                    continue;
                }
                match self.shared.cfg.auto_offset_reset {
                    OffsetReset::Earliest => {
                        st.request_reset(tp, ResetTo::Earliest);
                    }
                    OffsetReset::Latest => {
                        st.request_reset(tp, ResetTo::Latest);
                    }
                    OffsetReset::Error => {
                        return Err(Error::NoOffsetForPartition { topic: tp.topic.clone(), partition: tp.partition });
                    }
                }
            }
        }
        let resets: Vec<(TopicPartition, i64, u64)> = {
            let st = self.shared.state.lock().unwrap();
            st.partitions
                .iter()
                .filter_map(|(tp, p)| {
                    p.reset.map(|r| (tp.clone(), if r == ResetTo::Earliest { EARLIEST } else { LATEST }, p.generation))
                })
                .collect()
        };
        let resets_empty = resets.is_empty();
        if !resets_empty {
            let wanted: Vec<(TopicPartition, i64)> = resets.iter().map(|(tp, ts, _)| (tp.clone(), *ts)).collect();
            let listed = offsets::list_offsets(
                &self.shared.core,
                self.shared.cfg.isolation_level,
                &wanted,
                timeout.max(self.shared.core.config.request_timeout),
            )
            .await?;
            let mut st = self.shared.state.lock().unwrap();
            for (tp, _, generation) in resets {
                let Some(p) = st.partitions.get_mut(&tp) else { continue };
                if p.generation != generation || p.reset.is_none() {
                    continue;
                }
                if let Some(l) = listed.get(&tp) {
                    p.position = Some(FetchPosition { offset: l.offset, last_fetched_epoch: None });
                    p.reset = None;
                    p.error = None;
                }
            }
        }
        if !uninit.is_empty() || !resets_empty {
            self.shared.wake_fetchers();
        }
        Ok(())
    }

    /// Sets the next offset `poll` returns for `tp`. Records already fetched for it are
    /// dropped.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.check_open()?;
        if offset < 0 {
            return Err(Error::InvalidArgument(format!("seek offset {offset} for {tp} is negative")));
        }
        if !self.shared.state.lock().unwrap().seek(tp, FetchPosition { offset, last_fetched_epoch: None }) {
            return Err(Self::not_assigned(tp));
        }
        self.shared.wake_fetchers();
        Ok(())
    }

    fn reset(&self, tps: &[TopicPartition], to: ResetTo) -> Result<()> {
        self.check_open()?;
        let mut st = self.shared.state.lock().unwrap();
        if let Some(tp) = tps.iter().find(|tp| !st.partitions.contains_key(*tp)) {
            return Err(Self::not_assigned(tp));
        }
        for tp in tps {
            st.request_reset(tp, to);
        }
        drop(st);
        self.shared.wake_fetchers();
        Ok(())
    }

    /// Moves `tps` to their log start offset (resolved lazily by the next `poll` or
    /// `position`).
    pub fn seek_to_beginning(&self, tps: &[TopicPartition]) -> Result<()> {
        self.reset(tps, ResetTo::Earliest)
    }

    /// Moves `tps` to their end (the high watermark, or the last stable offset under
    /// read_committed), resolved lazily by the next `poll` or `position`.
    pub fn seek_to_end(&self, tps: &[TopicPartition]) -> Result<()> {
        self.reset(tps, ResetTo::Latest)
    }

    /// The offset of the next record `poll` returns for `tp`, resolving a pending reset or
    /// the initial position first (up to `default_api_timeout`).
    pub async fn position(&self, tp: &TopicPartition) -> Result<i64> {
        self.check_open()?;
        let deadline = Instant::now() + self.shared.cfg.default_api_timeout;
        loop {
            {
                let st = self.shared.state.lock().unwrap();
                let p = st.partitions.get(tp).ok_or_else(|| Self::not_assigned(tp))?;
                if let Some(pos) = p.position {
                    return Ok(pos.offset);
                }
            }
            self.update_positions(deadline).await?;
            if Instant::now() >= deadline {
                return Err(Error::Timeout(format!("the position of {tp} is not known after {:?}", self.shared.cfg.default_api_timeout)));
            }
        }
    }

    /// Stops returning and fetching records of `tps` until [`resume`](Consumer::resume).
    /// Records already fetched are kept for after the resume.
    pub fn pause(&self, tps: &[TopicPartition]) -> Result<()> {
        self.set_paused(tps, true)
    }

    /// Resumes partitions paused with [`pause`](Consumer::pause).
    pub fn resume(&self, tps: &[TopicPartition]) -> Result<()> {
        self.set_paused(tps, false)
    }

    fn set_paused(&self, tps: &[TopicPartition], paused: bool) -> Result<()> {
        self.check_open()?;
        let mut st = self.shared.state.lock().unwrap();
        if let Some(tp) = tps.iter().find(|tp| !st.partitions.contains_key(*tp)) {
            return Err(Self::not_assigned(tp));
        }
        for tp in tps {
            st.partitions.get_mut(tp).expect("checked").paused = paused;
        }
        drop(st);
        self.shared.wake_fetchers();
        self.shared.wake_poll();
        Ok(())
    }

    /// The KIP-227 fetch session of each broker's fetch task: broker id → (session id, epoch
    /// of the next request). Brokers fetched without a session are absent. A test hook of
    /// the unstable `test-hooks` feature, not part of the API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn fetch_sessions(&self) -> BTreeMap<i32, (i32, i32)> {
        self.shared.sessions.lock().unwrap().iter().map(|(b, s)| (*b, *s)).collect()
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.shared.state.lock().unwrap().partitions.iter().filter(|(_, p)| p.paused).map(|(tp, _)| tp.clone()).collect()
    }

    /// The high watermark of `tp` from the last fetch answer; `None` before the first.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.state.lock().unwrap().partitions.get(tp)?.high_watermark
    }

    /// The last stable offset of `tp` from the last fetch answer.
    pub fn last_stable_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.state.lock().unwrap().partitions.get(tp)?.last_stable_offset
    }

    /// Records between the position and the end of `tp`: the high watermark (read_uncommitted)
    /// or the last stable offset (read_committed), as the last fetch answer reported it.
    /// `None` until both are known.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let st = self.shared.state.lock().unwrap();
        let p = st.partitions.get(tp)?;
        let end = match self.shared.cfg.isolation_level {
            IsolationLevel::ReadUncommitted => p.high_watermark?,
            IsolationLevel::ReadCommitted => p.last_stable_offset?,
        };
        Some((end - p.position?.offset).max(0))
    }

    /// For each partition, the earliest offset whose record timestamp is at or after the given
    /// one (ms since the epoch); `None` when no such record exists.
    pub async fn offsets_for_times(
        &self,
        query: &[(TopicPartition, i64)],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        self.check_open()?;
        for (tp, ts) in query {
            validate_topic_name(&tp.topic)?;
            if *ts < 0 {
                return Err(Error::InvalidArgument(format!("timestamp {ts} for {tp} is negative")));
            }
        }
        let topics: Vec<String> = query.iter().map(|(tp, _)| tp.topic.clone()).collect();
        self.shared.core.metadata.refresh_topics(&topics).await?;
        let listed = offsets::list_offsets(
            &self.shared.core,
            self.shared.cfg.isolation_level,
            query,
            self.shared.cfg.default_api_timeout,
        )
        .await?;
        Ok(query
            .iter()
            .map(|(tp, _)| {
                let v = listed.get(tp).filter(|l| l.offset >= 0).map(|l| OffsetAndTimestamp {
                    offset: l.offset,
                    timestamp: l.timestamp,
                    leader_epoch: l.leader_epoch,
                });
                (tp.clone(), v)
            })
            .collect())
    }

    /// The log start offsets of `tps`.
    pub async fn beginning_offsets(&self, tps: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        self.list(tps, EARLIEST).await
    }

    /// The end offsets of `tps` (the last stable offset under read_committed).
    pub async fn end_offsets(&self, tps: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        self.list(tps, LATEST).await
    }

    async fn list(&self, tps: &[TopicPartition], ts: i64) -> Result<HashMap<TopicPartition, i64>> {
        self.check_open()?;
        let topics: Vec<String> = tps.iter().map(|tp| tp.topic.clone()).collect();
        self.shared.core.metadata.refresh_topics(&topics).await?;
        let q: Vec<(TopicPartition, i64)> = tps.iter().map(|tp| (tp.clone(), ts)).collect();
        let listed = offsets::list_offsets(&self.shared.core, self.shared.cfg.isolation_level, &q, self.shared.cfg.default_api_timeout).await?;
        Ok(listed.into_iter().map(|(tp, l)| (tp, l.offset)).collect())
    }

    fn coordinator(&self) -> Result<Arc<Coordinator>> {
        self.coordinator.clone().ok_or_else(|| {
            Error::InvalidArgument("committed offsets need a group id: set ConsumerConfig::group_id".into())
        })
    }

    /// The current position of every assigned partition that has one, as offsets to commit.
    pub fn positions(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        let st = self.shared.state.lock().unwrap();
        st.partitions
            .iter()
            .filter_map(|(tp, p)| {
                p.position.map(|pos| {
                    (tp.clone(), OffsetAndMetadata { offset: pos.offset, leader_epoch: pos.last_fetched_epoch, metadata: String::new() })
                })
            })
            .collect()
    }

    /// Commits `offsets` for the group (synchronously, retried up to `default_api_timeout`).
    /// `None` commits the current positions of every assigned partition.
    ///
    /// While subscribed, the commit carries the member's generation: during a rebalance it
    /// fails with `REBALANCE_IN_PROGRESS` (poll, then commit again), and after the group
    /// moved on without this member with [`Error::CommitFailed`]. It never waits for a
    /// rebalance to finish.
    pub async fn commit(&self, offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>) -> Result<()> {
        self.prepare_commit(offsets)?.await
    }

    /// The commit of `commit` and `commit_async`: the offsets (`None`: the positions) and
    /// the membership are taken now; the returned future sends the commit and retries it.
    fn prepare_commit(
        &self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<impl Future<Output = Result<()>> + Send + 'static> {
        self.check_open()?;
        let c = self.coordinator()?;
        let member = match &self.group {
            Some(g) => g.commit_member()?,
            None => None,
        };
        let offsets = offsets.unwrap_or_else(|| self.positions());
        let core = self.shared.core.clone();
        let timeout = self.shared.cfg.default_api_timeout;
        let group = self.group.clone();
        Ok(async move {
            match (group, member) {
                (Some(g), Some(m)) => g.commit_as_member(&offsets, m, timeout).await,
                _ => c.commit(&core, &offsets, None, timeout).await,
            }
        })
    }

    /// Starts a commit of `offsets` (`None`: the current positions, taken now) and returns
    /// a [`CommitFuture`] for its outcome, without waiting for the broker (Java's
    /// `commitAsync`). The commit runs in the background: it proceeds even if the future is
    /// dropped, and awaiting the future gives its result, with the same errors and retries
    /// (up to `default_api_timeout`) as [`commit`](Consumer::commit). A commit that cannot
    /// start (the consumer is closed, no group id, the member failed fatally) sends nothing,
    /// and its error comes out of the future too.
    ///
    /// Needs a Tokio runtime, as every call of the consumer.
    pub fn commit_async(&self, offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>) -> CommitFuture {
        CommitFuture(match self.prepare_commit(offsets) {
            Ok(commit) => CommitState::Running(tokio::spawn(commit)),
            Err(e) => CommitState::Failed(Some(e)),
        })
    }

    /// The group's committed offsets of `tps`; partitions with nothing committed are absent.
    pub async fn committed(&self, tps: &[TopicPartition]) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
        self.check_open()?;
        let c = self.coordinator()?;
        c.fetch(&self.shared.core, tps, self.shared.cfg.default_api_timeout).await
    }

    /// The settings this consumer was built with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.cfg
    }

    /// The group id, if configured.
    pub fn group_id(&self) -> Option<&str> {
        self.coordinator.as_deref().map(Coordinator::group)
    }

    /// Commits the positions if auto-commit is on (with a group id), and when subscribed
    /// leaves the group (calls the listener's `on_partitions_revoked` and sends LeaveGroup
    /// unless the member is static), then stops the fetch tasks and drops buffered records, all within
    /// `default_api_timeout`. Further calls fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        if self.shared.is_closed() {
            return Ok(());
        }
        // From a rebalance callback: refused before anything is shut down.
        group::coordinator::not_in_callback("close")?;
        let mut result = Ok(());
        if let Some(g) = &self.group {
            result = g.close(self, self.shared.cfg.default_api_timeout).await;
        }
        self.shutdown_fetching();
        result
    }

    fn shutdown_fetching(&self) {
        self.shared.shutdown();
        self.manager.abort();
        let mut st = self.shared.state.lock().unwrap();
        st.buffer.clear();
        st.buffered_bytes = 0;
    }
}
