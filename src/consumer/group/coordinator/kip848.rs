//! The consumer group protocol of KIP-848 (`group_protocol = Consumer`, Kafka 4.0+):
//! one ConsumerGroupHeartbeat request carries the subscription, the owned partitions and
//! the member epoch; the coordinator computes the assignment (the `uniform` or `range`
//! server assignor) and hands each member its target in heartbeat answers.
//!
//! The heartbeat task here sends the heartbeats (joining with epoch 0, leaving with -1, or
//! -2 for a static member) and records the target assignment; `poll`
//! ([`GroupCoordinator::poll_848`]) reconciles it with the application — revoking what
//! left the target (listener, auto-commit), assigning what joined it — and the next
//! heartbeat acknowledges the new owned set. Fencing (FENCED_MEMBER_EPOCH,
//! UNKNOWN_MEMBER_ID) loses the partitions and rejoins with epoch 0.
//!
//! A private submodule of `coordinator`: the second half of the one `GroupCoordinator`
//! module (it adds an `impl GroupCoordinator` and uses the coordinator's state), whose
//! items only `coordinator.rs` can name (issue 12: one module with a clear inside instead
//! of two sibling files that import each other).

use std::collections::BTreeSet;
use std::sync::Weak;
use std::time::Duration;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use rand::RngExt;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{heartbeat_retry_delay, wait_for_heartbeat, GroupCoordinator, PollSide, State};
use crate::consumer::{Consumer, TopicPartition};
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::TopicId;
use crate::network::ConnKind;

/// A member id as the Java client makes them (KIP-1082: the client generates it and keeps
/// it for its whole life): 16 random bytes, URL-safe base64.
pub(super) fn new_member_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill(&mut b[..]);
    TopicId(b).to_string()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Checks that the cluster speaks the KIP-848 protocol, for a clear error at subscribe.
pub(crate) async fn check_supported(g: &GroupCoordinator) -> Result<()> {
    let conn = g.core.any_broker().await?;
    conn.version_for::<ConsumerGroupHeartbeatRequest>().map(|_| ()).map_err(unsupported)
}

fn unsupported(e: Error) -> Error {
    Error::Config(format!(
        "group_protocol Consumer (KIP-848) needs brokers that serve ConsumerGroupHeartbeat \
         (Apache Kafka 4.0 or later with group.version=1); use GroupProtocol::Classic here: {e}"
    ))
}

impl GroupCoordinator {
    /// The KIP-848 part of a poll: report lost partitions, ask the heartbeat task to join,
    /// reconcile the target assignment.
    pub(super) async fn poll_848(&self, consumer: &Consumer, side: &mut PollSide) -> Result<()> {
        let lost = {
            let mut m = self.member.lock().unwrap();
            if m.lost {
                m.lost = false;
                m.owned_ids.clear();
                std::mem::take(&mut m.owned)
            } else {
                BTreeSet::new()
            }
        };
        if !lost.is_empty() {
            super::report_lost(&self.s.group_id, consumer, side, lost).await;
        }
        {
            let mut m = self.member.lock().unwrap();
            let kick = m.rejoin.take().is_some();
            if m.state == State::Unjoined {
                m.state = State::Joining;
                m.generation = 0;
                drop(m);
                self.hb_wake.notify_one();
            } else if kick {
                drop(m);
                self.hb_wake.notify_one();
            }
        }
        let Some(target) = self.member.lock().unwrap().target.clone() else { return Ok(()) };
        // Topic ids to names; an id the metadata does not know yet waits for a refresh.
        let mut cluster = self.core.metadata.snapshot();
        let known = |c: &crate::metadata::Cluster, id: &TopicId| {
            c.topics.values().find(|t| t.topic_id.as_ref() == Some(id)).map(|t| t.name.clone())
        };
        if target.iter().any(|(id, _)| known(&cluster, id).is_none()) {
            cluster = match self.core.metadata.refresh_all().await {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "metadata refresh for the assignment failed");
                    return Ok(());
                }
            };
        }
        let mut assigned = BTreeSet::new();
        for (id, parts) in &target {
            let Some(name) = known(&cluster, id) else {
                debug!(topic_id = %id, "assigned topic id not in the metadata yet");
                return Ok(());
            };
            assigned.extend(parts.iter().map(|p| TopicPartition::new(name.clone(), *p)));
        }
        let owned = self.member.lock().unwrap().owned.clone();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&owned).cloned().collect();
        if !revoked.is_empty() {
            self.maybe_auto_commit(consumer, side, true).await;
            side.listener.clone().on_partitions_revoked(consumer, &revoked).await;
            consumer.group_unassign(&revoked);
        }
        let (first, changed) = {
            let mut m = self.member.lock().unwrap();
            let changed = m.owned_ids != target;
            m.owned = assigned.clone();
            m.owned_ids = target.clone();
            if m.target.as_ref() == Some(&target) {
                m.target = None;
            }
            let first = !m.assigned_once;
            m.assigned_once = true;
            (first, changed)
        };
        if !added.is_empty() {
            consumer.group_assign(assigned.iter().cloned().collect());
        }
        if changed || first {
            info!(group = %self.s.group_id, assigned = ?assigned, "reconciled the assignment");
            // Acknowledge right away.
            self.hb_wake.notify_one();
        }
        if !added.is_empty() || first {
            side.listener.clone().on_partitions_assigned(consumer, &added).await;
        }
        Ok(())
    }
}

/// Leaves the group: epoch -1, or -2 for a static member (its assignment is kept for it
/// until the session times out).
pub(super) async fn leave(g: &GroupCoordinator, reason: &str) -> Result<()> {
    let (member_id, epoch, joining) = {
        let mut m = g.member.lock().unwrap();
        let epoch = m.generation;
        let joining = m.state == State::Joining;
        m.generation = -1;
        m.state = State::Unjoined;
        m.owned_ids.clear();
        m.target = None;
        m.sent = None;
        m.assigned_once = false;
        (m.member_id.clone(), epoch, joining)
    };
    // Joining (epoch 0): the coordinator may have created the member from a heartbeat
    // whose answer has not arrived; leave as Java does (a member it does not know answers
    // UNKNOWN_MEMBER_ID, which is fine). Fenced or never joined: nothing to leave.
    if epoch <= 0 && !joining {
        return Ok(());
    }
    let leave_epoch = if g.s.instance_id.is_some() { -2 } else { -1 };
    info!(group = %g.s.group_id, member = %member_id, reason, "leaving the group");
    let node = g.coord.find(&g.core).await?;
    let conn = g.core.broker(node, ConnKind::Group).await?;
    let version = conn.version_for::<ConsumerGroupHeartbeatRequest>().map_err(unsupported)?;
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(&g.s.group_id)))
        .with_member_id(s(&member_id))
        .with_member_epoch(leave_epoch)
        .with_instance_id(g.s.instance_id.as_deref().map(s))
        .with_rack_id(None)
        .with_rebalance_timeout_ms(-1)
        .with_subscribed_topic_names(None)
        .with_server_assignor(None)
        .with_topic_partitions(None);
    let resp = conn.send_at(&req, version).await?;
    match ErrorCode::from_code(resp.error_code) {
        // Already removed or fenced: out of the group either way.
        Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch) => Ok(()),
        _ => Error::check_code(resp.error_code, "ConsumerGroupHeartbeat", resp.error_message.as_deref(), None, None),
    }
}

/// The heartbeat task of a KIP-848 member.
pub(super) async fn heartbeat_loop(weak: Weak<GroupCoordinator>) {
    let mut failures = 0u32;
    loop {
        let Some(g) = weak.upgrade() else { return };
        let wake = g.hb_wake.clone();
        let (send, interval) = {
            let m = g.member.lock().unwrap();
            let active = m.fatal.is_none() && m.subscribed.is_some() && matches!(m.state, State::Joining | State::Stable);
            let timed_out = m.state == State::Stable
                && m.polling == 0
                && Instant::now().duration_since(m.last_poll) > g.s.max_poll_interval;
            (if !active { None } else { Some(timed_out) }, m.hb_interval)
        };
        match send {
            None => {}
            Some(true) => g.poll_timeout_leave().await,
            Some(false) => match heartbeat(&g).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if handle_error(&g, e) {
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

/// One heartbeat; applies the answer.
async fn heartbeat(g: &GroupCoordinator) -> Result<()> {
    let node = g.coord.find(&g.core).await?;
    let conn = g.core.broker(node, ConnKind::Group).await?;
    let version = conn.version_for::<ConsumerGroupHeartbeatRequest>().map_err(unsupported)?;
    // A full heartbeat when joining (or after an error); otherwise only what changed
    // since the last one the coordinator answered (null fields: unchanged).
    let (member_id, epoch, full, topics, owned) = {
        let mut m = g.member.lock().unwrap();
        let joining = m.state == State::Joining;
        let epoch = if joining { 0 } else { m.generation };
        let full = joining || m.sent.is_none();
        if full {
            m.sent = None;
        }
        let (sent_topics, sent_owned) = m.sent.clone().unwrap_or_default();
        let topics = (full || sent_topics != m.topics).then(|| m.topics.clone());
        let owned = (full || sent_owned != m.owned_ids).then(|| m.owned_ids.clone());
        (m.member_id.clone(), epoch, full, topics, owned)
    };
    let owned_wire: Option<Vec<TopicPartitions>> = owned.as_ref().map(|o| {
        o.iter()
            .map(|(id, ps)| TopicPartitions::default().with_topic_id(uuid::Uuid::from_bytes(id.0)).with_partitions(ps.clone()))
            .collect()
    });
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(&g.s.group_id)))
        .with_member_id(s(&member_id))
        .with_member_epoch(epoch)
        .with_instance_id(if full { g.s.instance_id.as_deref().map(s) } else { None })
        .with_rack_id(None)
        .with_rebalance_timeout_ms(if full { g.s.rebalance_timeout.as_millis() as i32 } else { -1 })
        .with_subscribed_topic_names(topics.as_ref().map(|ts| ts.iter().map(|t| TopicName(s(t))).collect()))
        .with_server_assignor(if full { g.s.remote_assignor.as_deref().map(s) } else { None })
        .with_topic_partitions(owned_wire);
    let resp = match conn.send_at(&req, version).await {
        Ok(r) => r,
        Err(e) => {
            g.member.lock().unwrap().sent = None;
            return Err(e);
        }
    };
    if let Err(e) = Error::check_code(resp.error_code, "ConsumerGroupHeartbeat", resp.error_message.as_deref(), None, None) {
        g.member.lock().unwrap().sent = None;
        return Err(e);
    }
    let mut m = g.member.lock().unwrap();
    if m.state == State::Unjoined {
        // The member left (unsubscribe, close, poll timeout) while this heartbeat was in
        // flight: its epoch and assignment belong to the old membership. Applying them
        // would reconcile a stale target after the next subscribe and report partitions
        // owned that the new membership never had.
        debug!(group = %g.s.group_id, "ignoring a heartbeat answer that arrived after leaving");
        return Ok(());
    }
    {
        let (mut st, mut so) = m.sent.clone().unwrap_or_default();
        if let Some(t) = topics {
            st = t;
        }
        if let Some(o) = owned {
            so = o;
        }
        m.sent = Some((st, so));
    }
    if let Some(id) = &resp.member_id {
        if !id.is_empty() {
            m.member_id = id.to_string();
        }
    }
    if m.generation != resp.member_epoch {
        debug!(group = %g.s.group_id, epoch = resp.member_epoch, "member epoch");
    }
    m.generation = resp.member_epoch;
    if resp.heartbeat_interval_ms > 0 {
        m.hb_interval = Duration::from_millis(resp.heartbeat_interval_ms as u64);
    }
    if m.state == State::Joining && resp.member_epoch > 0 {
        m.state = State::Stable;
    }
    if let Some(a) = resp.assignment {
        let mut target: Vec<(TopicId, Vec<i32>)> = a
            .topic_partitions
            .into_iter()
            .map(|tp| {
                let mut ps = tp.partitions;
                ps.sort_unstable();
                (TopicId(*tp.topic_id.as_bytes()), ps)
            })
            .collect();
        target.sort_by_key(|a| a.0.0);
        target.retain(|(_, ps)| !ps.is_empty());
        // An answer repeating what is owned (or already waiting) changes nothing.
        if m.target.as_ref() != Some(&target) && (m.target.is_some() || m.owned_ids != target || !m.assigned_once) {
            m.target = Some(target);
            drop(m);
            g.notify_poll();
        }
    }
    Ok(())
}

/// Applies a heartbeat error; true when the heartbeat should be retried soon.
fn handle_error(g: &GroupCoordinator, e: Error) -> bool {
    g.coord.check(&e);
    let mut m = g.member.lock().unwrap();
    match e.code() {
        Some(ErrorCode::FencedMemberEpoch) | Some(ErrorCode::UnknownMemberId) => {
            info!(group = %g.s.group_id, error = %e, "fenced by the coordinator; partitions lost, rejoining");
            m.generation = 0;
            m.state = State::Unjoined;
            m.lost = true;
            m.target = None;
            m.sent = None;
            m.assigned_once = false;
            m.rejoin = Some(format!("fenced: {e}"));
            drop(m);
            g.notify_poll();
            false
        }
        Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable | ErrorCode::CoordinatorLoadInProgress) => true,
        _ if e.is_retriable() => {
            debug!(group = %g.s.group_id, error = %e, "heartbeat failed; retrying");
            true
        }
        _ => {
            warn!(group = %g.s.group_id, error = %e, "the group refused this member");
            // A broker that lists the API but has the new group coordinator off (Kafka 3.x).
            let e = if e.code() == Some(ErrorCode::UnsupportedVersion) { unsupported(e) } else { e };
            m.fatal = Some(e);
            drop(m);
            g.notify_poll();
            false
        }
    }
}
