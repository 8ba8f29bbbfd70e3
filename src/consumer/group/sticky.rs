//! The sticky assignors (Java's `StickyAssignor`, "sticky", and
//! `CooperativeStickyAssignor`, "cooperative-sticky") and their shared core.
//!
//! The core (Java's `AbstractStickyAssignor`) first works out who owns what now:
//! every member's claimed partitions (from its subscription's owned partitions and
//! generation for cooperative-sticky, from its user data for sticky), keeping only
//! partitions of subscribed, existing topics. When two members claim a partition, the one
//! with the higher generation keeps it; with equal generations neither does (the claim is
//! invalid). Then:
//!
//! - all subscriptions equal: Java's constrained algorithm. With `total` partitions and `m`
//!   members, every member ends with `total / m` or one more (exactly `total % m` members
//!   get one more). Each member keeps its owned partitions up to that quota (in
//!   (partition, topic) order, as Java), and the rest are dealt round robin, in (topic, partition) order,
//!   to the members under quota in member id order, then to members at the lower quota.
//!   Members are visited in member id order where Java visits them in hash map order, so
//!   which members keep the larger quota may differ from Java when several could.
//! - unequal subscriptions: each member keeps its owned partitions of topics it still
//!   subscribes to; unowned partitions, the most constrained first (fewest possible
//!   consumers), go to the possible consumer with the fewest partitions; then partitions
//!   move (those a member did not own before first) from a member to a possible consumer
//!   with at least two fewer partitions until no such move remains. The result is
//!   balanced as Java defines it, but not computed with Java's exact steps.
//!
//! Cooperative-sticky then withholds every partition that would go to a member while
//! another member still claims it (and every partition two members claimed in the same
//! generation): the owner revokes it, rejoins, and the partition is
//! assigned in the follow-up rebalance (Java's `adjustAssignment`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};

use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::wire;

use super::assignor::{Assignment, GroupMember, PartitionAssignor, RebalanceProtocol, Subscription};
use super::common::{check_members, into_result, java_str_cmp, subscribed_topics};
use super::consumer_protocol::{put_topic_partitions, topic_partitions};

/// A member's previous assignment as the sticky core sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StickyMemberData {
    /// The partitions the member claims to own.
    pub partitions: Vec<TopicPartition>,
    /// The generation they were assigned in, when known.
    pub generation: Option<i32>,
}

/// Encodes Java's `StickyAssignor` user data: `previous_assignment: [topic, [int32]]`
/// then, in version 1, `generation: int32` (no version prefix; Java decodes by trying v1,
/// then v0). `generation: None` writes version 0. Partitions are grouped by topic in the
/// order each topic first appears, partitions in their given order (Java groups them in a
/// hash map, so its topic order is unspecified).
pub fn encode_sticky_user_data(data: &StickyMemberData) -> Bytes {
    let mut b = BytesMut::with_capacity(32);
    put_topic_partitions(&mut b, &data.partitions, false);
    if let Some(g) = data.generation {
        b.put_i32(g);
    }
    b.freeze()
}

/// Decodes Java's `StickyAssignor` user data, version 1 (with the generation) or 0
/// (without). Bytes after the generation are ignored, as Java ignores them.
pub fn decode_sticky_user_data(data: &[u8]) -> Result<StickyMemberData> {
    let mut r = Bytes::copy_from_slice(data);
    let partitions = topic_partitions(&mut r)
        .map_err(|e| Error::InvalidArgument(format!("malformed sticky assignor user data: previous assignment: {e}")))?;
    let generation = wire::i32_(&mut r).ok();
    Ok(StickyMemberData { partitions, generation })
}

/// The sticky assignor ("sticky", eager): a balanced assignment that moves as few
/// partitions as possible from their previous owners. Previous ownership comes from the
/// user data (Java's `StickyAssignorUserData` v1: previous assignment and generation),
/// since eager members revoke everything, and so send no owned partitions, before they
/// join. User data that does not decode counts as no previous assignment, as in Java.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

impl StickyAssignor {
    /// The protocol name, "sticky".
    pub const NAME: &'static str = "sticky";

    /// The previous assignment a member's subscription carries, as this assignor reads it.
    pub fn member_data(s: &Subscription) -> StickyMemberData {
        match &s.user_data {
            Some(u) if !u.is_empty() => decode_sticky_user_data(u).unwrap_or_default(),
            _ => StickyMemberData::default(),
        }
    }
}

impl PartitionAssignor for StickyAssignor {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// Java's user data: none before the first assignment (no owned partitions and
    /// generation -1), else `owned` and `generation` as [`encode_sticky_user_data`] writes.
    fn subscription_user_data(&self, _topics: &[String], owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        if generation < 0 && owned.is_empty() {
            return None;
        }
        Some(encode_sticky_user_data(&StickyMemberData { partitions: owned.to_vec(), generation: Some(generation) }))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>> {
        run(partitions_per_topic, members, Self::member_data, false)
    }
}

/// The cooperative sticky assignor ("cooperative-sticky"; cooperative, and eager for a
/// group moving between protocols): the sticky assignment, except that a partition
/// another member still owns is not given to its new owner in the same rebalance. It
/// stays unassigned until the owner has revoked it and the follow-up rebalance runs.
///
/// Ownership comes from the subscription's owned partitions; the generation from the
/// subscription (v2+), else from the user data: Java's 4-byte big-endian generation.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl CooperativeStickyAssignor {
    /// The protocol name, "cooperative-sticky".
    pub const NAME: &'static str = "cooperative-sticky";

    /// The previous assignment a member's subscription carries, as this assignor reads it.
    pub fn member_data(s: &Subscription) -> StickyMemberData {
        let generation = if s.generation_id != -1 {
            Some(s.generation_id)
        } else {
            s.user_data.as_ref().filter(|u| u.len() >= 4).map(|u| i32::from_be_bytes([u[0], u[1], u[2], u[3]]))
        };
        StickyMemberData { partitions: s.owned_partitions.clone(), generation }
    }
}

impl PartitionAssignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    /// Java's user data: the generation as a big-endian int32 (-1 before the first one).
    fn subscription_user_data(&self, _topics: &[String], _owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation.to_be_bytes()))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>> {
        run(partitions_per_topic, members, Self::member_data, true)
    }
}

/// Both assignors' `assign`: each member's previous assignment read by `member_data`.
fn run(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[GroupMember],
    member_data: fn(&Subscription) -> StickyMemberData,
    cooperative: bool,
) -> Result<BTreeMap<String, Assignment>> {
    check_members(members)?;
    let data: Vec<StickyMemberData> = members.iter().map(|m| member_data(&m.subscription)).collect();
    Ok(into_result(members, sticky_assign(partitions_per_topic, members, &data, cooperative)))
}

/// The sticky core over `members` (any order) and their previous assignments `data`
/// (same order). With `cooperative`, partitions that another member claims are withheld
/// from their new owner. Returns member id -> partitions in (topic, partition) order.
fn sticky_assign(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[GroupMember],
    data: &[StickyMemberData],
    cooperative: bool,
) -> BTreeMap<String, Vec<TopicPartition>> {
    if members.is_empty() {
        return BTreeMap::new();
    }
    let topics = subscribed_topics(partitions_per_topic, members);
    let valid = |tp: &TopicPartition| topics.get(tp.topic.as_str()).is_some_and(|n| tp.partition >= 0 && tp.partition < *n);
    // Members in member id order (Java's HashMap order is not reproducible).
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|a, b| java_str_cmp(&members[*a].member_id, &members[*b].member_id));
    let ms: Vec<&GroupMember> = order.iter().map(|i| &members[*i]).collect();
    let md: Vec<&StickyMemberData> = order.iter().map(|i| &data[*i]).collect();
    let m = ms.len();

    // Who owns what: the highest generation wins a conflict; an equal one voids the claim.
    let mut owner: HashMap<TopicPartition, usize> = HashMap::new();
    let mut contested: HashSet<TopicPartition> = HashSet::new();
    for (i, d) in md.iter().enumerate() {
        let gen_i = d.generation.unwrap_or(-1);
        for tp in d.partitions.iter().filter(|tp| valid(tp)) {
            match owner.get(tp).copied() {
                None => {
                    owner.insert(tp.clone(), i);
                }
                Some(j) if j == i => {}
                Some(j) => {
                    let gen_j = md[j].generation.unwrap_or(-1);
                    if gen_i > gen_j {
                        owner.insert(tp.clone(), i);
                    } else if gen_i == gen_j {
                        contested.insert(tp.clone());
                    }
                }
            }
        }
    }
    let mut owned: Vec<Vec<TopicPartition>> = vec![Vec::new(); m];
    for (tp, i) in owner {
        if !contested.contains(&tp) {
            owned[i].push(tp);
        }
    }
    // Java keeps owned partitions up to the quota in (partition, topic) order.
    for o in owned.iter_mut() {
        o.sort_by(|a, b| a.partition.cmp(&b.partition).then_with(|| a.topic.cmp(&b.topic)));
    }

    let subs: Vec<BTreeSet<&str>> = ms
        .iter()
        .map(|mb| mb.subscription.topics.iter().map(String::as_str).filter(|t| topics.contains_key(t)).collect())
        .collect();
    let all_equal = ms.iter().all(|mb| {
        let a: BTreeSet<&str> = mb.subscription.topics.iter().map(String::as_str).collect();
        let b: BTreeSet<&str> = ms[0].subscription.topics.iter().map(String::as_str).collect();
        a == b
    });
    let mut assignment = if all_equal {
        constrained(&topics, owned, m)
    } else {
        general(&topics, &subs, owned, m)
    };

    if cooperative {
        // A partition added to `i` (not among its own claims) that another member still
        // claims waits for that member to revoke it.
        let mut claimants: HashMap<&TopicPartition, Vec<usize>> = HashMap::new();
        for (i, d) in md.iter().enumerate() {
            for tp in &d.partitions {
                claimants.entry(tp).or_default().push(i);
            }
        }
        for (i, a) in assignment.iter_mut().enumerate() {
            // Partitions two members claimed in the same generation wait too, even for one of
            // the claimants: the other may still hold it (Java does this in its constrained
            // path; we do it in both).
            a.retain(|tp| !contested.contains(tp) && claimants.get(tp).is_none_or(|c| c.contains(&i)));
        }
    }

    ms.iter()
        .zip(assignment)
        .map(|(mb, mut a)| {
            a.sort();
            (mb.member_id.clone(), a)
        })
        .collect()
}

/// Every partition of `topics` in (topic, partition) order.
fn all_partitions(topics: &BTreeMap<&str, i32>) -> Vec<TopicPartition> {
    topics.iter().flat_map(|(t, n)| (0..*n).map(move |p| TopicPartition::new(*t, p))).collect()
}

/// Java's constrained assignment (all subscriptions equal); `owned[i]` valid, uncontested,
/// in (partition, topic) order. Members are indices in member id order.
fn constrained(topics: &BTreeMap<&str, i32>, owned: Vec<Vec<TopicPartition>>, m: usize) -> Vec<Vec<TopicPartition>> {
    let all = all_partitions(topics);
    let total = all.len();
    let min_q = total / m;
    let max_q = total.div_ceil(m);
    let expected_over = total % m;
    let mut over = 0usize;
    let mut assignment: Vec<Vec<TopicPartition>> = vec![Vec::new(); m];
    let mut assigned: HashSet<TopicPartition> = HashSet::new();
    let mut under: Vec<usize> = Vec::new();
    let mut at_min: VecDeque<usize> = VecDeque::new();
    for (i, o) in owned.into_iter().enumerate() {
        let keep = if o.len() < min_q {
            under.push(i);
            o.len()
        } else if o.len() >= max_q && over < expected_over {
            over += 1;
            if over == expected_over {
                at_min.clear();
            }
            max_q
        } else {
            if over < expected_over {
                at_min.push_back(i);
            }
            min_q
        };
        for tp in o.into_iter().take(keep) {
            assigned.insert(tp.clone());
            assignment[i].push(tp);
        }
    }
    // `under` and `at_min` are already in member order (pushed in index order).
    let mut pos = 0usize; // Java's iterator over `under`
    for tp in all.into_iter().filter(|tp| !assigned.contains(tp)) {
        let c = if pos < under.len() {
            pos += 1;
            under[pos - 1]
        } else if !under.is_empty() {
            pos = 1;
            under[0]
        } else if let Some(c) = at_min.pop_front() {
            c
        } else {
            // Unreachable with consistent quotas (Java throws here); stay total anyway.
            (0..m).min_by_key(|i| assignment[*i].len()).unwrap_or(0)
        };
        assignment[c].push(tp);
        let n = assignment[c].len();
        if n == min_q && pos > 0 && under.get(pos - 1) == Some(&c) {
            under.remove(pos - 1);
            pos -= 1;
            at_min.push_back(c);
        }
    }
    assignment
}

/// The assignment for unequal subscriptions: keep owned partitions of still-subscribed
/// topics, place the rest on the least loaded possible consumer (most constrained
/// partitions first), then move partitions while a member has at least two more than a
/// possible consumer of one of its partitions.
fn general(
    topics: &BTreeMap<&str, i32>,
    subs: &[BTreeSet<&str>],
    owned: Vec<Vec<TopicPartition>>,
    m: usize,
) -> Vec<Vec<TopicPartition>> {
    let consumers: BTreeMap<&str, Vec<usize>> =
        topics.keys().map(|t| (*t, (0..m).filter(|i| subs[*i].contains(t)).collect())).collect();
    let mut prev: HashSet<(usize, TopicPartition)> = HashSet::new();
    let mut assignment: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); m];
    let mut assigned: HashSet<TopicPartition> = HashSet::new();
    for (i, o) in owned.into_iter().enumerate() {
        for tp in o {
            if subs[i].contains(tp.topic.as_str()) {
                prev.insert((i, tp.clone()));
                assigned.insert(tp.clone());
                assignment[i].insert(tp);
            }
        }
    }
    let mut count: Vec<usize> = assignment.iter().map(BTreeSet::len).collect();
    let least = |count: &[usize], cands: &[usize], except: Option<usize>| -> Option<usize> {
        cands.iter().copied().filter(|c| Some(*c) != except).min_by_key(|c| (count[*c], *c))
    };

    let mut unassigned: Vec<TopicPartition> = all_partitions(topics).into_iter().filter(|tp| !assigned.contains(tp)).collect();
    unassigned.sort_by_key(|tp| consumers[tp.topic.as_str()].len()); // stable: (topic, partition) within
    for tp in unassigned {
        let Some(c) = least(&count, &consumers[tp.topic.as_str()], None) else { continue };
        count[c] += 1;
        assignment[c].insert(tp);
    }

    loop {
        let mut moved = false;
        let mut by_load: Vec<usize> = (0..m).collect();
        by_load.sort_by_key(|i| (std::cmp::Reverse(count[*i]), *i));
        for i in by_load {
            // Partitions `i` did not own before move first.
            let mut list: Vec<TopicPartition> = assignment[i].iter().cloned().collect();
            list.sort_by_key(|tp| prev.contains(&(i, tp.clone())));
            for tp in list {
                let Some(b) = least(&count, &consumers[tp.topic.as_str()], Some(i)) else { continue };
                if count[i] > count[b] + 1 {
                    assignment[i].remove(&tp);
                    assignment[b].insert(tp);
                    count[i] -= 1;
                    count[b] += 1;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    assignment.into_iter().map(|s| s.into_iter().collect()).collect()
}
