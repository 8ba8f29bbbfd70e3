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
//!   (partition, topic) order, as Java), and the rest are dealt round robin, in (topic,
//!   partition) order, to the members under quota in member id order, then to members at
//!   the lower quota. Members are visited in member id order where Java visits them in
//!   hash map order, so which members keep the larger quota may differ from Java when
//!   several could.
//! - unequal subscriptions: each member keeps its owned partitions of topics it still
//!   subscribes to; unowned partitions, the most constrained first (fewest possible
//!   consumers), go to the possible consumer with the fewest partitions. Then, one at a
//!   time, a partition moves from the most loaded member that has a possible consumer
//!   with at least two fewer partitions to the least loaded such consumer (partitions the
//!   member did not own before first), until no such move remains; then chains of moves
//!   (one member gives to a second, which gives to a third ...) take one partition from a
//!   member to one with at least two fewer, until none remains. These are not Java's
//!   exact steps: on the 40 random KafkaTool scenarios the result equals Java's in most,
//!   and where it differs it keeps at least as many owned partitions and is at least as
//!   balanced.
//!
//! Cooperative-sticky then withholds every partition that would go to a member while
//! another member still claims it (and every partition two members claimed in the same
//! generation): the owner revokes it, rejoins, and the partition is assigned in the
//! follow-up rebalance (Java's `adjustAssignment`).

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
pub(crate) struct StickyMemberData {
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
pub(crate) fn encode_sticky_user_data(data: &StickyMemberData) -> Bytes {
    let mut b = BytesMut::with_capacity(32);
    put_topic_partitions(&mut b, &data.partitions, false);
    if let Some(g) = data.generation {
        b.put_i32(g);
    }
    b.freeze()
}

/// Decodes Java's `StickyAssignor` user data, version 1 (with the generation) or 0
/// (without). Bytes after the generation are ignored, as Java ignores them.
pub(crate) fn decode_sticky_user_data(data: &[u8]) -> Result<StickyMemberData> {
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
    pub(crate) fn member_data(s: &Subscription) -> StickyMemberData {
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
    /// generation -1), else `owned` and `generation` in Java's `StickyAssignorUserData` v1.
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
    pub(crate) fn member_data(s: &Subscription) -> StickyMemberData {
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

    // One move at a time, always from the most loaded member that can give a partition
    // away, to the least loaded possible consumer: no member that gives partitions away
    // receives others' in between, so owned partitions move as little as balance needs.
    // Among equally loaded givers, and among a giver's topics, the least loaded receiver
    // wins, then the topic with the fewest possible consumers, then the topic name.
    // How many partitions of each topic each member holds.
    let mut held: Vec<BTreeMap<&str, usize>> = vec![BTreeMap::new(); m];
    for (i, a) in assignment.iter().enumerate() {
        for tp in a {
            if let Some((t, _)) = consumers.get_key_value(tp.topic.as_str()) {
                *held[i].entry(*t).or_default() += 1;
            }
        }
    }
    loop {
        let mut by_load: Vec<usize> = (0..m).collect();
        by_load.sort_by_key(|i| (std::cmp::Reverse(count[*i]), *i));
        // Each topic's two least loaded consumers: the least other than any giver.
        let two_least: BTreeMap<&str, [Option<usize>; 2]> = consumers
            .iter()
            .map(|(t, list)| {
                let mut two = [None, None];
                for &c in list {
                    let k = (count[c], c);
                    if two[0].is_none_or(|x: usize| k < (count[x], x)) {
                        two = [Some(c), two[0]];
                    } else if two[1].is_none_or(|x: usize| k < (count[x], x)) {
                        two[1] = Some(c);
                    }
                }
                (*t, two)
            })
            .collect();
        // The best move at the highest giving load: (key, giver, receiver, topic), the key
        // (receiver's load, the topic's consumer count, topic).
        type Move<'t> = ((usize, usize, &'t str), usize, usize, &'t str);
        let mut best: Option<Move> = None;
        for a in by_load {
            if count[a] < 2 || best.is_some_and(|(_, g, _, _)| count[a] < count[g]) {
                break;
            }
            for (&t, _) in held[a].iter().filter(|(_, n)| **n > 0) {
                let two = two_least[t];
                let Some(b) = (if two[0] == Some(a) { two[1] } else { two[0] }) else { continue };
                let key = (count[b], consumers[t].len(), t);
                if count[a] > count[b] + 1 && best.is_none_or(|(k, ..)| key < k) {
                    best = Some((key, a, b, t));
                }
            }
        }
        let step = best.and_then(|(_, a, b, t)| {
            // A partition `a` got in this assignment moves first, else one it owned.
            let of_topic = || assignment[a].iter().filter(move |tp| tp.topic == t);
            of_topic()
                .find(|tp| !prev.contains(&(a, (*tp).clone())))
                .or_else(|| of_topic().next())
                .map(|tp| (a, b, tp.clone()))
        });
        let Some((a, b, tp)) = step else { break };
        move_partition(&mut assignment, &mut held, &mut count, a, b, tp);
    }

    // Then chains: `a` gives a partition to `x1`, which gives one to `x2`, ..., which gives
    // one to `z` with at least two fewer than `a` had. The members in between keep their
    // counts; this balances what single moves cannot (a member whose possible givers all
    // have at most one more than it). The shortest chain from the most loaded member
    // first.
    loop {
        let mut by_load: Vec<usize> = (0..m).collect();
        by_load.sort_by_key(|i| (std::cmp::Reverse(count[*i]), *i));
        let mut path = None;
        // Members reachable from a giver without a chain have none either: everything they
        // reach, the giver reaches, and they hold no more than it.
        let mut dead = vec![false; m];
        for a in by_load {
            if count[a] < 2 {
                break;
            }
            if dead[a] {
                continue;
            }
            match chain(&held, &consumers, &count, a) {
                Ok(p) => {
                    path = Some(p);
                    break;
                }
                Err(reached) => {
                    dead[a] = true;
                    for x in reached {
                        dead[x] = true;
                    }
                }
            }
        }
        let Some(path) = path else { break };
        for (x, y, t) in path {
            let of_topic = || assignment[x].iter().filter(|tp| tp.topic == t);
            let Some(tp) = of_topic().find(|tp| !prev.contains(&(x, (*tp).clone()))).or_else(|| of_topic().next()).cloned()
            else {
                break; // unreachable: `x` holds a partition of `t`
            };
            move_partition(&mut assignment, &mut held, &mut count, x, y, tp);
        }
    }
    assignment.into_iter().map(|s| s.into_iter().collect()).collect()
}

/// Moves `tp` from member `a` to member `b`, keeping the counts right.
fn move_partition(
    assignment: &mut [BTreeSet<TopicPartition>],
    held: &mut [BTreeMap<&str, usize>],
    count: &mut [usize],
    a: usize,
    b: usize,
    tp: TopicPartition,
) {
    if let Some((&t, n)) = held[a].iter_mut().find(|(t, _)| **t == tp.topic) {
        *n -= 1;
        *held[b].entry(t).or_default() += 1;
    }
    assignment[a].remove(&tp);
    assignment[b].insert(tp);
    count[a] -= 1;
    count[b] += 1;
}

/// The shortest chain of moves (giver, receiver, topic) from `a` to a member with at
/// least two partitions fewer than `a`, each giver holding a partition of the topic its
/// receiver subscribes to; else every member reached. Breadth first; each topic is
/// expanded once, so one search costs the sum of the topics' consumer counts.
fn chain(
    held: &[BTreeMap<&str, usize>],
    consumers: &BTreeMap<&str, Vec<usize>>,
    count: &[usize],
    a: usize,
) -> std::result::Result<Vec<(usize, usize, String)>, Vec<usize>> {
    let mut parent: HashMap<usize, (usize, String)> = HashMap::new();
    let mut expanded: HashSet<&str> = HashSet::new();
    let mut queue = VecDeque::from([a]);
    while let Some(x) = queue.pop_front() {
        for (&t, _) in held[x].iter().filter(|(_, n)| **n > 0) {
            let list = &consumers[t];
            if !expanded.insert(t) {
                continue;
            }
            for &y in list {
                if y == a || parent.contains_key(&y) {
                    continue;
                }
                parent.insert(y, (x, t.to_string()));
                if count[y] + 2 <= count[a] {
                    let mut path = Vec::new();
                    let mut cur = y;
                    while cur != a {
                        let (from, topic) = parent[&cur].clone();
                        path.push((from, cur, topic));
                        cur = from;
                    }
                    path.reverse();
                    return Ok(path);
                }
                queue.push_back(y);
            }
        }
    }
    Err(parent.into_keys().collect())
}
