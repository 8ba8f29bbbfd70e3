//! The classic group protocol for a subscribing consumer: Java's `ConsumerCoordinator`.
//!
//! Three parts share one [`GroupCoordinator`]:
//! - the **heartbeat task** (one per consumer, holds a `Weak`): while the member is stable it
//!   sends Heartbeat every `heartbeat_interval`, turns the answers into "rejoin needed",
//!   "partitions lost" or a fatal error, notices a coordinator that stopped answering for
//!   `session_timeout`, and makes a member that has not polled for `max_poll_interval` leave
//!   the group (as the Java client's heartbeat thread does);
//! - the **join task** (spawned per rebalance): FindCoordinator, JoinGroup (with the
//!   MEMBER_ID_REQUIRED round of KIP-394), the leader's assignment, SyncGroup;
//! - **`poll`** (on the application's task, inside `Consumer::poll`): everything that touches
//!   the assignment or calls the application back — pattern matching, auto-commit, revoking
//!   before a join (eager) or after it (cooperative), applying the assignment and calling the
//!   rebalance listener. A join outlives a short poll: the next poll picks it up.

mod kip848;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::assignor::{Assignment, GroupMember, PartitionAssignor, RebalanceProtocol, Subscription};
use super::consumer_protocol::{PROTOCOL_TYPE, decode_assignment, decode_subscription, encode_assignment, encode_subscription};
use super::{ConsumerGroupMetadata, ConsumerRebalanceListener, GroupProtocol, NoopListener};
use crate::client::ClientCore;
use crate::consumer::offsets::{Coordinator, MemberIdentity as CommitMember};
use crate::consumer::{Consumer, ConsumerConfig, TopicPartition};
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::TopicId;
use crate::network::ConnKind;

/// The ConsumerProtocol versions we send (Java 3.x/4.x send v3 of both).
const SUBSCRIPTION_VERSION: i16 = 3;
const ASSIGNMENT_VERSION: i16 = 3;
/// Rounds of JoinGroup/SyncGroup one join task makes before it reports a retriable
/// error to `poll` (MEMBER_ID_REQUIRED, UNKNOWN_MEMBER_ID and REBALANCE_IN_PROGRESS each
/// cost a round).
const MAX_ROUNDS: u32 = 20;

/// What the consumer subscribed to.
#[derive(Debug, Clone)]
pub(crate) enum Subscribed {
    Topics(BTreeSet<String>),
    Pattern(regex::Regex),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// No generation: a join is needed.
    Unjoined,
    /// A join task is running.
    Joining,
    /// In a generation; heartbeats flow.
    Stable,
}

/// KIP-848: a subscription and the owned partitions (by topic id) as last sent in a heartbeat.
pub(super) type SentState = (BTreeSet<String>, Vec<(TopicId, Vec<i32>)>);

/// Membership state shared by the three parts (a std mutex, never held across an await).
pub(super) struct Member {
    /// Classic: given by the coordinator. KIP-848: generated here, kept for life.
    pub(super) member_id: String,
    /// Classic: the generation. KIP-848: the member epoch (0: joining).
    pub(super) generation: i32,
    protocol: Option<String>,
    pub(super) state: State,
    /// Why a rejoin is needed, when it is.
    pub(super) rejoin: Option<String>,
    /// The owned partitions must be reported lost (session expired, fenced, poll timeout).
    pub(super) lost: bool,
    pub(super) fatal: Option<Error>,
    pub(super) last_poll: Instant,
    /// Polls in progress (a long poll counts as polling).
    pub(super) polling: usize,
    last_heartbeat_ok: Instant,
    /// The partition counts the leader assigned from; a change triggers a rebalance.
    leader_counts: Option<BTreeMap<String, i32>>,
    /// The topics subscribed to (a pattern resolved against the cluster).
    pub(super) topics: BTreeSet<String>,
    pub(super) subscribed: Option<Subscribed>,
    /// The partitions owned now (what the last assignment gave, minus revocations).
    pub(super) owned: BTreeSet<TopicPartition>,
    /// KIP-848: the latest target assignment from the coordinator (topic ids), not yet
    /// reconciled by `poll`.
    pub(super) target: Option<Vec<(TopicId, Vec<i32>)>>,
    /// KIP-848: what this member reports as owned in its heartbeats (topic ids).
    pub(super) owned_ids: Vec<(TopicId, Vec<i32>)>,
    /// KIP-848: the heartbeat interval the coordinator asked for.
    pub(super) hb_interval: Duration,
    /// KIP-848: the subscription and owned partitions the coordinator last acknowledged
    /// (`None`: the next heartbeat is a full one).
    pub(super) sent: Option<SentState>,
    /// KIP-848: an assignment was reconciled since joining.
    pub(super) assigned_once: bool,
}

/// What `poll` keeps between calls.
pub(super) struct PollSide {
    join: Option<JoinHandle<Result<JoinOutcome>>>,
    pub(super) listener: Arc<dyn ConsumerRebalanceListener>,
    next_auto_commit: Instant,
    next_pattern_check: Instant,
    next_missing_check: Instant,
}

/// The result of a completed JoinGroup + SyncGroup.
#[derive(Debug)]
struct JoinOutcome {
    generation: i32,
    member_id: String,
    protocol: String,
    assignment: Assignment,
    leader_counts: Option<BTreeMap<String, i32>>,
}

/// Settings of the group, from the consumer config.
#[derive(Debug, Clone)]
pub(crate) struct GroupSettings {
    pub group_id: String,
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_poll_interval: Duration,
    pub retry_backoff: Duration,
    pub request_timeout: Duration,
    pub assignors: Vec<Arc<dyn PartitionAssignor>>,
    pub auto_commit: Option<Duration>,
    pub metadata_max_age: Duration,
    pub protocol: GroupProtocol,
    pub remote_assignor: Option<String>,
}

impl GroupSettings {
    pub(crate) fn from_config(cfg: &ConsumerConfig, group_id: String) -> GroupSettings {
        GroupSettings {
            group_id,
            instance_id: cfg.group_instance_id.clone(),
            session_timeout: cfg.session_timeout,
            rebalance_timeout: cfg.max_poll_interval,
            heartbeat_interval: cfg.heartbeat_interval,
            max_poll_interval: cfg.max_poll_interval,
            retry_backoff: cfg.client.retry_backoff,
            request_timeout: cfg.client.request_timeout,
            assignors: cfg.partition_assignment_strategy.clone(),
            auto_commit: cfg.enable_auto_commit.then_some(cfg.auto_commit_interval),
            metadata_max_age: cfg.client.metadata_max_age,
            protocol: cfg.group_protocol,
            remote_assignor: cfg.group_remote_assignor.clone(),
        }
    }

    /// The protocol every configured assignor supports, the most capable first (Java's
    /// rule): cooperative only when all of them can.
    fn rebalance_protocol(&self) -> RebalanceProtocol {
        let all_coop = !self.assignors.is_empty()
            && self.assignors.iter().all(|a| a.supported_protocols().contains(&RebalanceProtocol::Cooperative));
        if all_coop { RebalanceProtocol::Cooperative } else { RebalanceProtocol::Eager }
    }
}

/// The classic-protocol coordinator of one subscribing consumer.
pub(crate) struct GroupCoordinator {
    /// This coordinator, for tasks it spawns (background auto-commits).
    me: Weak<GroupCoordinator>,
    pub(super) core: Arc<ClientCore>,
    pub(crate) coord: Arc<Coordinator>,
    pub(super) s: GroupSettings,
    /// Classic: eager or cooperative (from the assignors). KIP-848 reconciles
    /// incrementally, like cooperative.
    protocol: RebalanceProtocol,
    /// Which group protocol this member speaks.
    pub(super) kind: GroupProtocol,
    pub(super) member: Mutex<Member>,
    poll_side: tokio::sync::Mutex<PollSide>,
    /// A listener set by `set_rebalance_listener`, installed in `poll_side` by the next
    /// lock of it ([`GroupCoordinator::side`]): setting one never waits for a running poll.
    next_listener: Mutex<Option<Arc<dyn ConsumerRebalanceListener>>>,
    /// Bumped when `poll` has group work to do (heartbeat found a rebalance, a fatal error).
    pub(crate) events: watch::Sender<u64>,
    /// Wakes the heartbeat task early (joined, left, closing).
    pub(super) hb_wake: Arc<Notify>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for GroupCoordinator {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

impl GroupCoordinator {
    pub(crate) fn new(core: Arc<ClientCore>, coord: Arc<Coordinator>, s: GroupSettings) -> Arc<GroupCoordinator> {
        let now = Instant::now();
        let kind = s.protocol;
        let protocol = match kind {
            GroupProtocol::Classic => s.rebalance_protocol(),
            GroupProtocol::Consumer => RebalanceProtocol::Cooperative,
        };
        let g = Arc::new_cyclic(|me| GroupCoordinator {
            me: me.clone(),
            core,
            coord,
            protocol,
            kind,
            member: Mutex::new(Member {
                member_id: match kind {
                    GroupProtocol::Classic => String::new(),
                    GroupProtocol::Consumer => kip848::new_member_id(),
                },
                generation: -1,
                protocol: None,
                state: State::Unjoined,
                rejoin: None,
                lost: false,
                fatal: None,
                last_poll: now,
                polling: 0,
                last_heartbeat_ok: now,
                leader_counts: None,
                topics: BTreeSet::new(),
                subscribed: None,
                owned: BTreeSet::new(),
                target: None,
                owned_ids: Vec::new(),
                hb_interval: Duration::from_secs(5),
                sent: None,
                assigned_once: false,
            }),
            poll_side: tokio::sync::Mutex::new(PollSide {
                join: None,
                listener: Arc::new(NoopListener),
                next_auto_commit: now + s.auto_commit.unwrap_or_default(),
                next_pattern_check: now,
                next_missing_check: now,
            }),
            next_listener: Mutex::new(None),
            s,
            events: watch::channel(0).0,
            hb_wake: Arc::new(Notify::new()),
            heartbeat: Mutex::new(None),
        });
        let task = match kind {
            GroupProtocol::Classic => tokio::spawn(heartbeat_loop(Arc::downgrade(&g))),
            GroupProtocol::Consumer => tokio::spawn(kip848::heartbeat_loop(Arc::downgrade(&g))),
        };
        *g.heartbeat.lock().unwrap() = Some(task);
        g
    }

    pub(super) fn notify_poll(&self) {
        self.events.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Sets (or replaces) the subscription; the next poll joins or rejoins.
    pub(crate) async fn subscribe(&self, sub: Subscribed, listener: Option<Arc<dyn ConsumerRebalanceListener>>) -> Result<()> {
        not_in_callback("subscribe")?;
        let mut side = self.side().await;
        if let Some(l) = listener {
            side.listener = Arc::new(Guarded(l));
        }
        side.next_pattern_check = Instant::now();
        let mut m = self.member.lock().unwrap();
        if let Subscribed::Topics(t) = &sub {
            if m.topics != *t {
                m.rejoin = Some("the subscription changed".into());
            }
            m.topics = t.clone();
        }
        m.subscribed = Some(sub);
        if m.state != State::Stable && m.rejoin.is_none() {
            m.rejoin = Some("subscribed".into());
        }
        drop(m);
        self.notify_poll();
        Ok(())
    }

    /// Stops the heartbeat and join tasks (the consumer is dropped: like a crash, no
    /// LeaveGroup; the join task holds the coordinator alive, so it must be stopped here).
    pub(crate) fn abort_tasks(&self) {
        if let Some(h) = self.heartbeat.lock().unwrap().take() {
            h.abort();
        }
        if let Ok(mut p) = self.poll_side.try_lock() {
            if let Some(j) = p.join.take() {
                j.abort();
            }
        }
    }

    /// KIP-848 needs brokers that serve it: a clear error at subscribe otherwise.
    pub(crate) async fn check_supported(&self) -> Result<()> {
        match self.kind {
            GroupProtocol::Classic => Ok(()),
            GroupProtocol::Consumer => kip848::check_supported(self).await,
        }
    }

    /// Sets the listener the next poll (or unsubscribe, close) runs; waits for nothing.
    pub(crate) fn set_listener(&self, listener: Arc<dyn ConsumerRebalanceListener>) {
        *self.next_listener.lock().unwrap() = Some(Arc::new(Guarded(listener)));
    }

    /// Locks the poll side, installing the listener set since the last lock.
    async fn side(&self) -> tokio::sync::MutexGuard<'_, PollSide> {
        let mut side = self.poll_side.lock().await;
        if let Some(l) = self.next_listener.lock().unwrap().take() {
            side.listener = l;
        }
        side
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.member.lock().unwrap().subscribed.is_some()
    }

    /// The membership for commits: `None` when not subscribed (simple commits).
    pub(crate) fn commit_member(&self) -> Result<Option<CommitMember>> {
        let m = self.member.lock().unwrap();
        if m.subscribed.is_none() {
            return Ok(None);
        }
        if let Some(e) = &m.fatal {
            return Err(e.clone());
        }
        if self.kind == GroupProtocol::Classic && m.state == State::Unjoined && m.generation < 0 {
            // No generation and no rebalance under way: kicked out (or never joined), as
            // Java's CommitFailedException; RebalanceInProgress would promise that a poll
            // and a retry of the same commit succeed.
            return Err(Error::CommitFailed(format!(
                "group {}: the commit cannot be completed since this member is not part of an active group \
                 (it was likely removed, or has not joined yet); poll to (re)join",
                self.s.group_id
            )));
        }
        if !self.in_generation(&m) {
            return Err(Error::broker(
                ErrorCode::RebalanceInProgress,
                "OffsetCommit",
                Some(format!(
                    "group {} is rebalancing: this member has no generation to commit in; poll to complete the rebalance, then commit again",
                    self.s.group_id
                )),
                None,
                None,
            ));
        }
        Ok(Some(CommitMember {
            generation: m.generation,
            member_id: m.member_id.clone(),
            instance_id: self.s.instance_id.clone(),
        }))
    }

    /// Commits `offsets` as `member` within `timeout`, and turns a failure into what it
    /// means for the membership ([`Self::on_commit_error`]). KIP-848: STALE_MEMBER_EPOCH
    /// (the epoch moved on while the commit was in flight, common during reconciliation)
    /// is retried with the new epoch once the heartbeat has it, as Java does, until
    /// `timeout` or the member leaves its generation.
    pub(crate) async fn commit_as_member(
        &self,
        offsets: &BTreeMap<TopicPartition, crate::consumer::OffsetAndMetadata>,
        mut member: CommitMember,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let Err(e) = self.coord.commit(&self.core, offsets, Some(&member), left).await else { return Ok(()) };
            if self.kind == GroupProtocol::Consumer && e.code() == Some(ErrorCode::StaleMemberEpoch) {
                if let Some(next) = self.next_epoch(member.generation, deadline).await {
                    debug!(group = %self.s.group_id, epoch = next.generation, "commit: stale member epoch; retrying with the new one");
                    member = next;
                    continue;
                }
            }
            return Err(self.on_commit_error(&e, member.generation));
        }
    }

    /// Waits (until `deadline`) for the member epoch to move on from `stale`; `None` when
    /// it does not, or the member is no longer in a generation.
    async fn next_epoch(&self, stale: i32, deadline: Instant) -> Option<CommitMember> {
        loop {
            match self.commit_member() {
                Ok(Some(m)) if m.generation != stale => return Some(m),
                Ok(Some(_)) => {}
                _ => return None,
            }
            let wake = Instant::now() + self.s.retry_backoff.max(Duration::from_millis(10));
            if wake >= deadline {
                return None;
            }
            tokio::time::sleep_until(wake).await;
        }
    }

    /// Whether the member is in a generation it can commit in (classic: stable; KIP-848:
    /// a positive member epoch).
    fn in_generation(&self, m: &Member) -> bool {
        match self.kind {
            GroupProtocol::Classic => m.state == State::Stable && m.generation >= 0,
            GroupProtocol::Consumer => m.generation > 0,
        }
    }

    /// A commit made in `generation` failed: the answers that say the membership is gone
    /// trigger a rejoin — unless the member moved on since (a newer generation, or a join
    /// under way), when they only fail that commit.
    pub(crate) fn on_commit_error(&self, e: &Error, generation: i32) -> Error {
        if self.kind == GroupProtocol::Consumer && e.code() == Some(ErrorCode::StaleMemberEpoch) {
            return Error::CommitFailed(format!(
                "group {}: the commit carried an outdated member epoch ({e}); poll, then commit again",
                self.s.group_id
            ));
        }
        if self.kind == GroupProtocol::Consumer && e.code() == Some(ErrorCode::UnknownMemberId) {
            // KIP-848: the member id is this client's for life (KIP-1082) and the membership
            // is the heartbeat's business: a fenced member learns it there (and rejoins with
            // epoch 0, same id). Only the commit fails.
            return Error::CommitFailed(format!(
                "group {}: the coordinator does not know this member ({e}); poll, then commit again",
                self.s.group_id
            ));
        }
        let mut m = self.member.lock().unwrap();
        let current = m.generation == generation && (self.kind == GroupProtocol::Consumer || m.state == State::Stable);
        match e.code() {
            Some(ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration) if !current => Error::CommitFailed(format!(
                "group {}: the commit of generation {generation} was refused ({e}); the member has moved on since",
                self.s.group_id
            )),
            Some(ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration) => {
                if e.code() == Some(ErrorCode::UnknownMemberId) {
                    m.member_id.clear();
                }
                m.generation = -1;
                m.state = State::Unjoined;
                m.lost = true;
                m.rejoin = Some("a commit found the membership gone".into());
                drop(m);
                self.notify_poll();
                Error::CommitFailed(format!(
                    "group {}: the commit cannot be completed since the group has already rebalanced and \
                     assigned the partitions to another member ({e}); poll to rejoin",
                    self.s.group_id
                ))
            }
            Some(ErrorCode::RebalanceInProgress) if !current => e.clone(),
            Some(ErrorCode::RebalanceInProgress) => {
                m.rejoin.get_or_insert_with(|| "a commit found the group rebalancing".into());
                drop(m);
                self.notify_poll();
                e.clone()
            }
            Some(ErrorCode::FencedInstanceId) => {
                m.fatal = Some(e.clone());
                drop(m);
                self.notify_poll();
                e.clone()
            }
            _ => e.clone(),
        }
    }

    /// What `group_metadata()` returns.
    pub(crate) fn metadata(&self) -> ConsumerGroupMetadata {
        let m = self.member.lock().unwrap();
        ConsumerGroupMetadata {
            group_id: self.s.group_id.clone(),
            generation_id: m.generation,
            member_id: m.member_id.clone(),
            group_instance_id: self.s.instance_id.clone(),
        }
    }

    /// Marks a poll as in progress; the guard marks its end.
    pub(crate) fn polling(self: &Arc<Self>) -> PollGuard {
        let mut m = self.member.lock().unwrap();
        m.polling += 1;
        m.last_poll = Instant::now();
        PollGuard(self.clone())
    }

    fn needs_join(m: &Member) -> bool {
        m.subscribed.is_some() && (m.state != State::Stable || m.rejoin.is_some() || m.lost)
    }

    /// The group side of a poll: resolves the pattern, auto-commits, runs callbacks and
    /// drives the join until it completes or `deadline` passes.
    pub(crate) async fn poll(self: &Arc<Self>, consumer: &Consumer, deadline: Instant) -> Result<()> {
        not_in_callback("poll")?;
        let mut side = self.side().await;
        let subscribed = {
            let m = self.member.lock().unwrap();
            if let Some(e) = &m.fatal {
                return Err(e.clone());
            }
            m.subscribed.is_some()
        };
        if !subscribed {
            // Assign mode with a group id: auto-commit as simple commits (Java does).
            self.maybe_auto_commit(consumer, &mut side, false).await;
            return Ok(());
        }
        self.check_metadata(&mut side).await;
        self.maybe_auto_commit(consumer, &mut side, false).await;
        if self.kind == GroupProtocol::Consumer {
            return self.poll_848(consumer, &mut side).await;
        }
        let mut attempts = 0u32;
        loop {
            let (lost, needs) = {
                let mut m = self.member.lock().unwrap();
                if let Some(e) = &m.fatal {
                    return Err(e.clone());
                }
                let lost = if m.lost && side.join.is_none() {
                    m.lost = false;
                    std::mem::take(&mut m.owned)
                } else {
                    BTreeSet::new()
                };
                (lost, Self::needs_join(&m))
            };
            if !lost.is_empty() {
                report_lost(&self.s.group_id, consumer, &side, lost).await;
            }
            if !needs {
                return Ok(());
            }
            if side.join.is_none() {
                self.prepare_join(consumer, &mut side).await;
                let input = {
                    let mut m = self.member.lock().unwrap();
                    m.state = State::Joining;
                    let reason = m.rejoin.take().unwrap_or_else(|| "joining".into());
                    JoinInput {
                        topics: m.topics.iter().cloned().collect(),
                        owned: m.owned.iter().cloned().collect(),
                        generation: m.generation,
                        reason,
                    }
                };
                debug!(group = %self.s.group_id, reason = %input.reason, "joining the group");
                side.join = Some(tokio::spawn(join_group(self.clone(), input)));
            }
            let join = side.join.as_mut().expect("just set");
            let res = match tokio::time::timeout_at(deadline, join).await {
                Err(_) => return Ok(()),
                Ok(r) => r,
            };
            side.join = None;
            let res = res.unwrap_or_else(|e| Err(Error::Timeout(format!("the join task failed: {e}"))));
            match res {
                Ok(outcome) => {
                    self.complete_join(consumer, &mut side, outcome).await;
                }
                Err(e) => {
                    let fatal_now = self.member.lock().unwrap().fatal.clone();
                    if let Some(f) = fatal_now {
                        return Err(f);
                    }
                    {
                        let mut m = self.member.lock().unwrap();
                        m.state = State::Unjoined;
                        m.rejoin.get_or_insert_with(|| format!("the last join failed: {e}"));
                    }
                    if !e.is_retriable() {
                        warn!(group = %self.s.group_id, error = %e, "joining the group failed");
                        return Err(e);
                    }
                    attempts += 1;
                    debug!(group = %self.s.group_id, error = %e, attempts, "join failed; retrying");
                    let wake = Instant::now() + self.s.retry_backoff.min(Duration::from_secs(1)) * attempts.min(10);
                    if wake >= deadline {
                        tokio::time::sleep_until(deadline).await;
                        return Ok(());
                    }
                    tokio::time::sleep_until(wake).await;
                }
            }
        }
    }

    /// Before a join: commit and revoke everything (eager), or nothing (cooperative).
    async fn prepare_join(&self, consumer: &Consumer, side: &mut PollSide) {
        let (owned, generation) = {
            let m = self.member.lock().unwrap();
            (m.owned.clone(), m.generation)
        };
        if self.s.auto_commit.is_some() && generation >= 0 && !owned.is_empty() {
            self.maybe_auto_commit(consumer, side, true).await;
        }
        // That commit may have found the membership gone (UNKNOWN_MEMBER_ID,
        // ILLEGAL_GENERATION): the partitions are lost, not revoked. Report it now: a
        // `lost` flag left for after the join would take the NEW assignment for the lost one
        // and leave it unassigned for a whole generation.
        let lost = {
            let mut m = self.member.lock().unwrap();
            if m.lost {
                m.lost = false;
                std::mem::take(&mut m.owned)
            } else {
                BTreeSet::new()
            }
        };
        if !lost.is_empty() {
            report_lost(&self.s.group_id, consumer, side, lost).await;
            return;
        }
        if self.protocol == RebalanceProtocol::Eager && !owned.is_empty() {
            let v: Vec<TopicPartition> = owned.into_iter().collect();
            debug!(group = %self.s.group_id, partitions = ?v, "revoking before the join (eager)");
            side.listener.clone().on_partitions_revoked(consumer, &v).await;
            self.member.lock().unwrap().owned.clear();
            consumer.group_unassign(&v);
        }
    }

    async fn complete_join(&self, consumer: &Consumer, side: &mut PollSide, o: JoinOutcome) {
        let assigned: BTreeSet<TopicPartition> = o.assignment.partitions.iter().cloned().collect();
        if let Some(a) = self.s.assignors.iter().find(|a| a.name() == o.protocol) {
            a.on_assignment(&o.assignment, o.generation);
        }
        let owned = self.member.lock().unwrap().owned.clone();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&owned).cloned().collect();
        info!(
            group = %self.s.group_id, generation = o.generation, member = %o.member_id,
            protocol = %o.protocol, assigned = ?assigned, "joined the group"
        );
        // The new generation holds from here (as in Java, where the state is stable
        // before onJoinComplete): commits from the callbacks below carry it.
        {
            let mut m = self.member.lock().unwrap();
            m.generation = o.generation;
            m.member_id = o.member_id.clone();
            m.protocol = Some(o.protocol.clone());
            m.state = State::Stable;
            m.last_heartbeat_ok = Instant::now();
            m.leader_counts = o.leader_counts.clone();
            if !revoked.is_empty() {
                // Set before the awaits below: a poll cancelled in the commit or the
                // callback leaves the old partitions owned and the new ones unassigned;
                // the next poll rejoins and completes the revocation.
                m.rejoin = Some(format!("{} partitions were revoked and need reassignment", revoked.len()));
            }
        }
        if !revoked.is_empty() {
            // Cooperative: give up only what moves, then rejoin so it can be reassigned.
            if self.s.auto_commit.is_some() {
                let offsets: BTreeMap<_, _> =
                    consumer.positions().into_iter().filter(|(tp, _)| revoked.contains(tp)).collect();
                let member = CommitMember {
                    generation: o.generation,
                    member_id: o.member_id.clone(),
                    instance_id: self.s.instance_id.clone(),
                };
                if let Err(e) = self.coord.commit(&self.core, &offsets, Some(&member), self.s.request_timeout).await {
                    warn!(group = %self.s.group_id, error = %e, "committing revoked partitions failed");
                }
            }
            side.listener.clone().on_partitions_revoked(consumer, &revoked).await;
            consumer.group_unassign(&revoked);
        }
        {
            let mut m = self.member.lock().unwrap();
            m.owned = assigned.clone();
            let unsubscribed = assigned.iter().any(|tp| !m.topics.contains(&tp.topic));
            if unsubscribed && m.rejoin.is_none() {
                m.rejoin = Some("the assignment has topics this member does not subscribe to".into());
            }
        }
        consumer.group_assign(assigned.into_iter().collect());
        self.hb_wake.notify_one();
        let added_or_all = if self.protocol == RebalanceProtocol::Eager {
            o.assignment.partitions.clone()
        } else {
            added
        };
        side.listener.clone().on_partitions_assigned(consumer, &added_or_all).await;
    }

    /// Pattern subscriptions: match the cluster's topics (every `metadata_max_age`);
    /// leaders: rejoin when a subscribed topic's partition count changed.
    async fn check_metadata(&self, side: &mut PollSide) {
        let now = Instant::now();
        let pattern = match &self.member.lock().unwrap().subscribed {
            Some(Subscribed::Pattern(p)) => Some(p.clone()),
            _ => None,
        };
        if let Some(p) = pattern {
            if now >= side.next_pattern_check {
                side.next_pattern_check = now + self.s.metadata_max_age.min(Duration::from_secs(30));
                match self.core.metadata.refresh_all().await {
                    Ok(cluster) => {
                        let matched: BTreeSet<String> = cluster
                            .topics
                            .values()
                            .filter(|t| !t.internal && p.is_match(&t.name))
                            .map(|t| t.name.clone())
                            .collect();
                        let mut m = self.member.lock().unwrap();
                        if matched != m.topics {
                            debug!(group = %self.s.group_id, topics = ?matched, "pattern subscription changed");
                            m.topics = matched;
                            m.rejoin.get_or_insert_with(|| "the pattern matches a different set of topics".into());
                        }
                    }
                    Err(e) => debug!(error = %e, "metadata for the pattern subscription failed"),
                }
            }
        }
        let (counts, own) = {
            let m = self.member.lock().unwrap();
            (m.leader_counts.clone(), m.topics.clone())
        };
        let mut cluster = self.core.metadata.snapshot();
        // A subscribed topic the metadata lacks (just created, or not yet known): look
        // again every second rather than every metadata_max_age.
        let watched: Vec<String> = own.iter().chain(counts.iter().flat_map(|c| c.keys())).cloned().collect();
        if watched.iter().any(|t| !cluster.topics.contains_key(t)) && now >= side.next_missing_check {
            side.next_missing_check = now + Duration::from_secs(1);
            if let Ok(c) = self.core.metadata.refresh_topics(&watched).await {
                cluster = c;
            }
        }
        if let Some(counts) = counts {
            let changed = counts.iter().any(|(t, n)| {
                cluster.topics.get(t).map_or(0, |d| d.partitions.len() as i32) != *n
            });
            if changed {
                let mut m = self.member.lock().unwrap();
                m.leader_counts = None;
                m.rejoin.get_or_insert_with(|| "a subscribed topic's partition count changed".into());
            }
        }
    }

    /// Auto-commit of the positions (offsets of records handed to the application), when
    /// due or `now` is forced (before a revocation, on close). A forced commit waits for
    /// the answer; a due one runs in the background.
    pub(super) async fn maybe_auto_commit(&self, consumer: &Consumer, side: &mut PollSide, force: bool) {
        let Some(interval) = self.s.auto_commit else { return };
        let now = Instant::now();
        if !force && now < side.next_auto_commit {
            return;
        }
        side.next_auto_commit = now + interval;
        let member = match self.commit_member() {
            Ok(m) => m,
            Err(_) => return,
        };
        let offsets: BTreeMap<_, _> = match &member {
            Some(_) => {
                let owned = self.member.lock().unwrap().owned.clone();
                consumer.positions().into_iter().filter(|(tp, _)| owned.contains(tp)).collect()
            }
            None => consumer.positions(),
        };
        if offsets.is_empty() {
            return;
        }
        if force {
            if let Err(e) = self.coord.commit(&self.core, &offsets, member.as_ref(), self.s.request_timeout).await {
                let e = match &member {
                    Some(m) => self.on_commit_error(&e, m.generation),
                    None => e,
                };
                warn!(group = %self.s.group_id, error = %e, "auto-commit failed");
            }
        } else {
            let coord = self.coord.clone();
            let core = self.core.clone();
            let timeout = self.s.request_timeout;
            let group = self.s.group_id.clone();
            let me = self.me.clone();
            tokio::spawn(async move {
                if let Err(e) = coord.commit(&core, &offsets, member.as_ref(), timeout).await {
                    debug!(group = %group, error = %e, "auto-commit failed");
                    // As Java: an answer saying the membership is gone rejoins now rather
                    // than at the next heartbeat.
                    if let (Some(m), Some(g)) = (&member, me.upgrade()) {
                        g.on_commit_error(&e, m.generation);
                    }
                }
            });
        }
    }

    /// Close: commit (auto-commit), revoke, and leave the group (dynamic members; a static
    /// member stays until its session times out, so a restart within it causes no
    /// rebalance, as in Java).
    pub(crate) async fn close(self: &Arc<Self>, consumer: &Consumer, timeout: Duration) -> Result<()> {
        not_in_callback("close")?;
        let deadline = Instant::now() + timeout;
        let mut side = match tokio::time::timeout_at(deadline, self.side()).await {
            Ok(s) => s,
            Err(_) => return Err(Error::Timeout("close: a poll is still running".into())),
        };
        if !self.is_subscribed() {
            // Assign mode: the final auto-commit only.
            let _ = tokio::time::timeout_at(deadline, self.maybe_auto_commit(consumer, &mut side, true)).await;
            if let Some(h) = self.heartbeat.lock().unwrap().take() {
                h.abort();
            }
            return Ok(());
        }
        if let Some(j) = side.join.take() {
            j.abort();
        }
        let (owned, stable) = {
            let m = self.member.lock().unwrap();
            (m.owned.clone(), self.in_generation(&m))
        };
        if stable {
            let _ = tokio::time::timeout_at(deadline, self.maybe_auto_commit(consumer, &mut side, true)).await;
        }
        if !owned.is_empty() {
            let v: Vec<TopicPartition> = owned.into_iter().collect();
            let l = side.listener.clone();
            let f = if stable { l.on_partitions_revoked(consumer, &v) } else { l.on_partitions_lost(consumer, &v) };
            let _ = tokio::time::timeout_at(deadline, f).await;
        }
        if let Some(h) = self.heartbeat.lock().unwrap().take() {
            h.abort();
        }
        let r = tokio::time::timeout_at(deadline, self.leave("the consumer is closing")).await;
        let mut m = self.member.lock().unwrap();
        m.owned.clear();
        m.subscribed = None;
        m.state = State::Unjoined;
        match r {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout("close: LeaveGroup got no answer in time".into())),
        }
    }

    /// Unsubscribe: revoke everything, leave the group, forget the subscription.
    pub(crate) async fn unsubscribe(self: &Arc<Self>, consumer: &Consumer) -> Result<()> {
        not_in_callback("unsubscribe")?;
        let mut side = self.side().await;
        if let Some(j) = side.join.take() {
            j.abort();
        }
        let (owned, stable) = {
            let m = self.member.lock().unwrap();
            (m.owned.iter().cloned().collect::<Vec<TopicPartition>>(), self.in_generation(&m))
        };
        if !owned.is_empty() {
            // As Java's onLeavePrepare: without a generation (or mid-rebalance) the
            // partitions may be someone else's already - lost, not revoked.
            let l = side.listener.clone();
            if stable {
                l.on_partitions_revoked(consumer, &owned).await;
            } else {
                l.on_partitions_lost(consumer, &owned).await;
            }
            consumer.group_unassign(&owned);
        }
        let r = self.leave("the consumer unsubscribed").await;
        let mut m = self.member.lock().unwrap();
        m.owned.clear();
        m.subscribed = None;
        m.topics.clear();
        m.state = State::Unjoined;
        m.generation = -1;
        m.rejoin = None;
        m.lost = false;
        r
    }

    /// Sends LeaveGroup for a dynamic member in a generation, and resets the membership.
    pub(super) async fn leave(&self, reason: &str) -> Result<()> {
        if self.kind == GroupProtocol::Consumer {
            return kip848::leave(self, reason).await;
        }
        let (member_id, send) = {
            let mut m = self.member.lock().unwrap();
            // Mid-join (a JoinGroup answered, even MEMBER_ID_REQUIRED) the coordinator knows
            // the member id too: leave, or the group waits for this member until the
            // rebalance/session times out (Java: state != UNJOINED and a member id).
            let send = self.s.instance_id.is_none()
                && !m.member_id.is_empty()
                && (m.generation >= 0 || m.state == State::Joining);
            let id = std::mem::take(&mut m.member_id);
            m.generation = -1;
            m.state = State::Unjoined;
            (id, send)
        };
        if !send {
            return Ok(());
        }
        info!(group = %self.s.group_id, member = %member_id, reason, "leaving the group");
        let node = self.coord.find(&self.core).await?;
        let conn = self.core.broker(node, ConnKind::Group).await?;
        let version = conn.version_for::<LeaveGroupRequest>()?;
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(s(&self.s.group_id)));
        if version >= 3 {
            let mut id = MemberIdentity::default().with_member_id(s(&member_id)).with_group_instance_id(None);
            if version >= 5 {
                id = id.with_reason(Some(s(reason)));
            }
            req = req.with_members(vec![id]);
        } else {
            req = req.with_member_id(s(&member_id));
        }
        let resp = conn.send_at(&req, version).await?;
        // UNKNOWN_MEMBER_ID: the coordinator had already removed the member (session
        // expired, fenced); leaving has happened either way.
        let gone = |code: i16| {
            if ErrorCode::from_code(code) == Some(ErrorCode::UnknownMemberId) {
                debug!(group = %self.s.group_id, "LeaveGroup: the coordinator no longer knew this member");
                0
            } else {
                code
            }
        };
        Error::check_code(gone(resp.error_code), "LeaveGroup", None, None, None)?;
        for mr in resp.members {
            Error::check_code(gone(mr.error_code), "LeaveGroup", None, None, None)?;
        }
        Ok(())
    }

    /// Leaves after `max_poll_interval` without a poll (from the heartbeat task).
    pub(super) async fn poll_timeout_leave(&self) {
        warn!(
            group = %self.s.group_id,
            max_poll_interval = ?self.s.max_poll_interval,
            "consumer poll timeout has expired: the time between polls exceeded max_poll_interval; \
             leaving the group. Poll more often or process fewer records per poll (max_poll_records)."
        );
        {
            let mut m = self.member.lock().unwrap();
            m.lost = true;
            m.rejoin = Some("the poll timeout expired".into());
        }
        if let Err(e) = self.leave("consumer poll timeout has expired").await {
            debug!(error = %e, "LeaveGroup after the poll timeout failed");
        }
        self.notify_poll();
    }
}

/// Reports partitions lost: the listener's `on_partitions_lost`, then they leave the
/// consumer's assignment — also when the poll is cancelled during the callback (the
/// membership no longer has them, so they must not be fetched or returned).
pub(super) async fn report_lost(group: &str, consumer: &Consumer, side: &PollSide, lost: BTreeSet<TopicPartition>) {
    struct UnassignOnDrop<'a>(&'a Consumer, Vec<TopicPartition>);
    impl Drop for UnassignOnDrop<'_> {
        fn drop(&mut self) {
            self.0.group_unassign(&self.1);
        }
    }
    let v = UnassignOnDrop(consumer, lost.into_iter().collect());
    info!(group, partitions = ?v.1, "partitions lost");
    side.listener.clone().on_partitions_lost(consumer, &v.1).await;
}

tokio::task_local! {
    /// Set while the application's rebalance listener runs (inside a poll).
    static IN_CALLBACK: ();
}

/// The application's listener, run with [`IN_CALLBACK`] set: the consumer calls that wait
/// for the poll running the callback (poll, subscribe, unsubscribe, close, ...) fail
/// instead of waiting for it forever.
struct Guarded(Arc<dyn ConsumerRebalanceListener>);

impl ConsumerRebalanceListener for Guarded {
    fn on_partitions_revoked<'a>(&'a self, c: &'a Consumer, p: &'a [TopicPartition]) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(IN_CALLBACK.scope((), self.0.on_partitions_revoked(c, p)))
    }
    fn on_partitions_assigned<'a>(&'a self, c: &'a Consumer, p: &'a [TopicPartition]) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(IN_CALLBACK.scope((), self.0.on_partitions_assigned(c, p)))
    }
    fn on_partitions_lost<'a>(&'a self, c: &'a Consumer, p: &'a [TopicPartition]) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(IN_CALLBACK.scope((), self.0.on_partitions_lost(c, p)))
    }
}

/// Fails `what` when called from a rebalance callback (it would deadlock).
pub(crate) fn not_in_callback(what: &str) -> Result<()> {
    if IN_CALLBACK.try_with(|_| ()).is_ok() {
        return Err(Error::InvalidArgument(format!(
            "{what} cannot be called from a rebalance listener callback: the callback runs inside poll, \
             which {what} would wait for (commit works there)"
        )));
    }
    Ok(())
}

/// Ends a poll's "polling" mark.
pub(crate) struct PollGuard(Arc<GroupCoordinator>);

impl Drop for PollGuard {
    fn drop(&mut self) {
        let mut m = self.0.member.lock().unwrap();
        m.polling = m.polling.saturating_sub(1);
        m.last_poll = Instant::now();
    }
}

struct JoinInput {
    topics: Vec<String>,
    owned: Vec<TopicPartition>,
    generation: i32,
    reason: String,
}

/// One rebalance: JoinGroup (+ MEMBER_ID_REQUIRED), the leader's assignment, SyncGroup.
async fn join_group(g: Arc<GroupCoordinator>, input: JoinInput) -> Result<JoinOutcome> {
    let core = g.core.clone();
    let group = GroupId(s(&g.s.group_id));
    let instance = g.s.instance_id.as_deref().map(s);
    let mut protocols = Vec::new();
    for a in &g.s.assignors {
        let sub = Subscription {
            topics: input.topics.clone(),
            user_data: a.subscription_user_data(&input.topics, &input.owned, input.generation),
            owned_partitions: input.owned.clone(),
            generation_id: input.generation,
            rack_id: None,
        };
        protocols.push(
            JoinGroupRequestProtocol::default()
                .with_name(s(a.name()))
                .with_metadata(encode_subscription(SUBSCRIPTION_VERSION, &sub)),
        );
    }
    for _round in 0..MAX_ROUNDS {
        let result = async {
            let node = g.coord.find(&core).await?;
            core.broker(node, ConnKind::Group).await
        }
        .await;
        let conn = match result {
            Ok(c) => c,
            Err(e) => {
                g.coord.check(&e);
                return Err(e);
            }
        };
        let member_id = g.member.lock().unwrap().member_id.clone();
        let version = conn.version_for::<JoinGroupRequest>()?;
        if instance.is_some() && version < 5 {
            return Err(Error::Config(format!(
                "group_instance_id needs JoinGroup v5 (Kafka 2.3+); broker {} speaks v{version}",
                conn.addr()
            )));
        }
        let mut req = JoinGroupRequest::default()
            .with_group_id(group.clone())
            .with_session_timeout_ms(g.s.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(g.s.rebalance_timeout.as_millis() as i32)
            .with_member_id(s(&member_id))
            .with_group_instance_id(instance.clone())
            .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
            .with_protocols(protocols.clone());
        if version >= 8 {
            req = req.with_reason(Some(s(&input.reason)));
        }
        let timeout = g.s.rebalance_timeout + Duration::from_secs(5);
        let resp = match conn.send_at_with_timeout(&req, version, timeout).await {
            Ok(r) => r,
            Err(e) => {
                g.coord.check(&e);
                return Err(e);
            }
        };
        match ErrorCode::from_code(resp.error_code) {
            None => {}
            Some(ErrorCode::MemberIdRequired) => {
                debug!(member = %resp.member_id.as_str(), "MEMBER_ID_REQUIRED: joining again with the given id");
                g.member.lock().unwrap().member_id = resp.member_id.to_string();
                continue;
            }
            Some(ErrorCode::UnknownMemberId) => {
                g.member.lock().unwrap().member_id.clear();
                continue;
            }
            Some(ErrorCode::IllegalGeneration) | Some(ErrorCode::RebalanceInProgress) => {
                tokio::time::sleep(g.s.retry_backoff).await;
                continue;
            }
            Some(code) => {
                let e = Error::broker(code, "JoinGroup", None, None, None);
                g.coord.check(&e);
                if code == ErrorCode::FencedInstanceId {
                    g.member.lock().unwrap().fatal = Some(e.clone());
                }
                return Err(e);
            }
        }
        let member_id = resp.member_id.to_string();
        let generation = resp.generation_id;
        let protocol = resp.protocol_name.as_ref().map(|p| p.to_string()).unwrap_or_default();
        {
            let mut m = g.member.lock().unwrap();
            m.member_id = member_id.clone();
        }
        let Some(assignor) = g.s.assignors.iter().find(|a| a.name() == protocol).cloned() else {
            return Err(Error::Protocol {
                broker: conn.addr().to_string(),
                detail: format!("the coordinator chose assignor {protocol:?}, which this member did not offer"),
            });
        };
        let mut leader_counts = None;
        let mut assignments = Vec::new();
        if resp.leader.as_str() == member_id && !resp.skip_assignment {
            let (counts, result) = leader_assign(&g, assignor.as_ref(), &resp.members).await?;
            leader_counts = Some(counts);
            for (id, a) in result {
                assignments.push(
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&id))
                        .with_assignment(encode_assignment(ASSIGNMENT_VERSION, &a)),
                );
            }
        }
        let sv = conn.version_for::<SyncGroupRequest>()?;
        let mut sync = SyncGroupRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(generation)
            .with_member_id(s(&member_id))
            .with_group_instance_id(instance.clone())
            .with_assignments(assignments);
        if sv >= 5 {
            sync = sync
                .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
                .with_protocol_name(Some(s(&protocol)));
        }
        let sresp = match conn.send_at_with_timeout(&sync, sv, timeout).await {
            Ok(r) => r,
            Err(e) => {
                g.coord.check(&e);
                return Err(e);
            }
        };
        match ErrorCode::from_code(sresp.error_code) {
            None => {}
            Some(ErrorCode::RebalanceInProgress) | Some(ErrorCode::IllegalGeneration) => continue,
            Some(ErrorCode::UnknownMemberId) => {
                g.member.lock().unwrap().member_id.clear();
                continue;
            }
            Some(code) => {
                let e = Error::broker(code, "SyncGroup", None, None, None);
                g.coord.check(&e);
                if code == ErrorCode::FencedInstanceId {
                    g.member.lock().unwrap().fatal = Some(e.clone());
                }
                return Err(e);
            }
        }
        let assignment = decode_assignment(&sresp.assignment).map_err(|e| Error::Protocol {
            broker: conn.addr().to_string(),
            detail: format!("the group leader's assignment for this member is malformed: {e}"),
        })?;
        return Ok(JoinOutcome { generation, member_id, protocol, assignment, leader_counts });
    }
    Err(Error::Timeout(format!("joining group {} took more than {MAX_ROUNDS} JoinGroup rounds", g.s.group_id)))
}

/// The leader's part: decode every member's subscription, learn the partition counts of
/// every subscribed topic, run the assignor and check it (cooperative: nothing moves
/// while another member still owns it).
async fn leader_assign(
    g: &GroupCoordinator,
    assignor: &dyn PartitionAssignor,
    members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
) -> Result<(BTreeMap<String, i32>, BTreeMap<String, Assignment>)> {
    let mut group_members = Vec::with_capacity(members.len());
    let mut topics = BTreeSet::new();
    for m in members {
        let sub = decode_subscription(&m.metadata).map_err(|e| Error::Protocol {
            broker: format!("group {}", g.s.group_id),
            detail: format!("member {}'s subscription is malformed: {e}", m.member_id.as_str()),
        })?;
        topics.extend(sub.topics.iter().cloned());
        group_members.push(GroupMember {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            subscription: sub,
        });
    }
    let topics: Vec<String> = topics.into_iter().collect();
    let cluster = g.core.metadata.refresh_topics(&topics).await?;
    // Every subscribed topic, 0 for those the cluster does not have (yet): the leader
    // rejoins when any count changes, a topic appearing included.
    let all_counts: BTreeMap<String, i32> = topics
        .iter()
        .map(|t| (t.clone(), cluster.topics.get(t).map_or(0, |d| d.partitions.len() as i32)))
        .collect();
    let counts: BTreeMap<String, i32> = all_counts.iter().filter(|(_, n)| **n > 0).map(|(t, n)| (t.clone(), *n)).collect();
    let mut result = assignor.assign(&counts, &group_members)?;
    for m in &group_members {
        result.entry(m.member_id.clone()).or_default();
    }
    if g.protocol == RebalanceProtocol::Cooperative {
        let mut owner: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
        for m in &group_members {
            for tp in &m.subscription.owned_partitions {
                owner.insert(tp, &m.member_id);
            }
        }
        for (id, a) in &result {
            for tp in &a.partitions {
                if let Some(prev) = owner.get(tp) {
                    if *prev != id.as_str() {
                        return Err(Error::Protocol {
                            broker: format!("group {}", g.s.group_id),
                            detail: format!(
                                "assignor {} gave {tp} to {id} while {prev} still owns it, which the cooperative protocol forbids",
                                assignor.name()
                            ),
                        });
                    }
                }
            }
        }
    }
    debug!(group = %g.s.group_id, assignor = assignor.name(), members = group_members.len(), "computed the assignment");
    Ok((all_counts, result))
}

/// The heartbeat task.
async fn heartbeat_loop(weak: Weak<GroupCoordinator>) {
    let mut failures = 0u32;
    loop {
        let Some(g) = weak.upgrade() else { return };
        let interval = g.s.heartbeat_interval;
        // notify_one leaves a permit when nobody waits, so a wake-up sent before we wait
        // below is not lost.
        let wake = g.hb_wake.clone();
        // What to do now.
        let action = {
            let mut m = g.member.lock().unwrap();
            let now = Instant::now();
            if m.fatal.is_some() || m.state != State::Stable || m.generation < 0 || m.member_id.is_empty() {
                // Fenced (or otherwise refused for good): the member is finished.
                None
            } else if m.polling == 0 && now.duration_since(m.last_poll) > g.s.max_poll_interval {
                Some(None)
            } else {
                if now.duration_since(m.last_heartbeat_ok) > g.s.session_timeout {
                    // No answer for a whole session: the coordinator is unreachable or
                    // gone; find it again (the member may have been removed meanwhile).
                    m.last_heartbeat_ok = now;
                    g.coord.forget();
                }
                Some(Some((m.member_id.clone(), m.generation)))
            }
        };
        match action {
            None => {}
            Some(None) => g.poll_timeout_leave().await,
            Some(Some((member_id, generation))) => match send_heartbeat(&g, &member_id, generation).await {
                Ok(()) => {
                    failures = 0;
                    g.member.lock().unwrap().last_heartbeat_ok = Instant::now();
                }
                Err(e) => {
                    failures += 1;
                    handle_heartbeat_error(&g, &e, generation);
                    if e.is_retriable() {
                        drop(g);
                        tokio::time::sleep(heartbeat_retry_delay(failures)).await;
                        continue;
                    }
                }
            },
        }
        drop(g);
        wait_for_heartbeat(interval, &wake).await;
    }
}

/// After a retriable heartbeat failure: retry sooner than the interval, 100 ms more per
/// consecutive failure up to 1 s (both protocols' heartbeat tasks).
pub(super) fn heartbeat_retry_delay(failures: u32) -> Duration {
    Duration::from_millis(100 * failures.min(10) as u64)
}

/// Sleeps until the next heartbeat is due or the task is woken early (joined, left,
/// an assignment to acknowledge). `notify_one` leaves a permit when nobody waits, so a
/// wake-up sent before this is not lost.
pub(super) async fn wait_for_heartbeat(interval: Duration, wake: &Notify) {
    tokio::select! {
        _ = tokio::time::sleep(interval) => {}
        _ = wake.notified() => {}
    }
}

async fn send_heartbeat(g: &GroupCoordinator, member_id: &str, generation: i32) -> Result<()> {
    let node = g.coord.find(&g.core).await?;
    let conn = g.core.broker(node, ConnKind::Group).await?;
    let version = conn.version_for::<HeartbeatRequest>()?;
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(&g.s.group_id)))
        .with_generation_id(generation)
        .with_member_id(s(member_id))
        .with_group_instance_id(g.s.instance_id.as_deref().map(s));
    let timeout = g.s.request_timeout.min(g.s.session_timeout);
    let resp = conn.send_at_with_timeout(&req, version, timeout).await?;
    Error::check_code(resp.error_code, "Heartbeat", None, None, None)
}

fn handle_heartbeat_error(g: &GroupCoordinator, e: &Error, generation: i32) {
    g.coord.check(e);
    let mut m = g.member.lock().unwrap();
    // An answer to a heartbeat of an earlier generation, or one arriving while a join is
    // under way (the join's own answers decide then; Java ignores it too unless stable),
    // says nothing about the membership now: acting on it would rebalance again, or
    // report the new assignment lost. Fencing is final whatever the state.
    let stale = m.generation != generation || m.state != State::Stable;
    if stale && e.code() != Some(ErrorCode::FencedInstanceId) {
        debug!(group = %g.s.group_id, error = %e, "ignoring a heartbeat error of an earlier generation or during a join");
        return;
    }
    match e.code() {
        Some(ErrorCode::RebalanceInProgress) => {
            debug!(group = %g.s.group_id, "heartbeat: the group is rebalancing");
            m.rejoin.get_or_insert_with(|| "the coordinator started a rebalance".into());
        }
        Some(ErrorCode::UnknownMemberId) | Some(ErrorCode::IllegalGeneration) => {
            info!(group = %g.s.group_id, error = %e, "heartbeat: membership lost; rejoining");
            if e.code() == Some(ErrorCode::UnknownMemberId) {
                m.member_id.clear();
            }
            m.generation = -1;
            m.state = State::Unjoined;
            m.lost = true;
            m.rejoin = Some(format!("the heartbeat found the membership gone: {e}"));
        }
        Some(ErrorCode::FencedInstanceId) => {
            warn!(group = %g.s.group_id, error = %e, "fenced: another consumer uses this group_instance_id");
            m.fatal = Some(e.clone());
        }
        _ => {
            debug!(group = %g.s.group_id, error = %e, "heartbeat failed");
            return;
        }
    }
    drop(m);
    g.notify_poll();
}
