//! The built-in assignors: against the Java client's own results (testdata/assignments.txt,
//! written by `scripts/java-tool.sh protocol-vectors`) and over many random scenarios.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::assignor::{Assignment, GroupMember, PartitionAssignor, RebalanceProtocol, Subscription};
use super::consumer_protocol::tests::java_vector;
use super::range::RangeAssignor;
use super::round_robin::RoundRobinAssignor;
use super::sticky::{
    CooperativeStickyAssignor, StickyAssignor, StickyMemberData, decode_sticky_user_data, encode_sticky_user_data,
};
use crate::consumer::TopicPartition;

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

fn parse_tps(s: &str) -> Vec<TopicPartition> {
    if s == "-" || s.is_empty() {
        return Vec::new();
    }
    s.split(',')
        .map(|x| {
            let (t, p) = x.rsplit_once('-').unwrap();
            tp(t, p.parse().unwrap())
        })
        .collect()
}

/// A member as the scenarios describe it: id, instance id, generation, topics, owned.
#[derive(Debug, Clone)]
struct Spec {
    id: String,
    instance: Option<String>,
    generation: i32,
    topics: Vec<String>,
    owned: Vec<TopicPartition>,
}

/// The group each assignor sees, built as Java builds it (KafkaTool.protocolVectors): each
/// member's own assignor instance makes its user data; eager sticky members send no owned
/// partitions (they revoked them), cooperative ones do.
fn members_for(a: &dyn PartitionAssignor, specs: &[Spec]) -> Vec<GroupMember> {
    specs
        .iter()
        .map(|s| {
            let eager_sticky = a.name() == "sticky";
            GroupMember {
                member_id: s.id.clone(),
                group_instance_id: s.instance.clone(),
                subscription: Subscription {
                    topics: s.topics.clone(),
                    user_data: a.subscription_user_data(&s.topics, &s.owned, s.generation),
                    owned_partitions: if eager_sticky { Vec::new() } else { s.owned.clone() },
                    generation_id: s.generation,
                    rack_id: None,
                },
            }
        })
        .collect()
}

struct JavaScenario {
    name: String,
    topics: BTreeMap<String, i32>,
    specs: Vec<Spec>,
    results: BTreeMap<String, BTreeMap<String, Vec<TopicPartition>>>,
}

fn java_scenarios() -> Vec<JavaScenario> {
    let mut out: Vec<JavaScenario> = Vec::new();
    let mut assignor = String::new();
    for line in include_str!("testdata/assignments.txt").lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "scenario" => out.push(JavaScenario {
                name: f[1].into(),
                topics: BTreeMap::new(),
                specs: Vec::new(),
                results: BTreeMap::new(),
            }),
            "topic" => {
                out.last_mut().unwrap().topics.insert(f[1].into(), f[2].parse().unwrap());
            }
            "member" => out.last_mut().unwrap().specs.push(Spec {
                id: f[1].into(),
                instance: (f[2] != "-").then(|| f[2].to_string()),
                generation: f[3].parse().unwrap(),
                topics: f[4].split(',').map(String::from).collect(),
                owned: parse_tps(f[5]),
            }),
            "assignor" => assignor = f[1].into(),
            "assigned" => {
                let sc = out.last_mut().unwrap();
                sc.results.entry(assignor.clone()).or_default().insert(f[1].into(), parse_tps(f[2]));
            }
            "end" => {}
            other => panic!("unknown line kind {other}"),
        }
    }
    assert_eq!(out.len(), 47);
    out
}

fn sorted(mut r: BTreeMap<String, Assignment>) -> BTreeMap<String, Vec<TopicPartition>> {
    r.iter_mut().map(|(k, a)| (k.clone(), { a.partitions.sort(); std::mem::take(&mut a.partitions) })).collect()
}

fn assignor(name: &str) -> Box<dyn PartitionAssignor> {
    match name {
        "range" => Box::new(RangeAssignor),
        "roundrobin" => Box::new(RoundRobinAssignor),
        "sticky" => Box::new(StickyAssignor),
        "cooperative-sticky" => Box::new(CooperativeStickyAssignor),
        _ => unreachable!(),
    }
}

/// Partitions every member keeps from its `owned`.
fn kept(specs: &[Spec], r: &BTreeMap<String, Vec<TopicPartition>>) -> usize {
    specs.iter().map(|s| s.owned.iter().filter(|tp| r[&s.id].contains(tp)).count()).sum()
}

#[test]
fn range_and_roundrobin_match_java_exactly() {
    for sc in java_scenarios() {
        for name in ["range", "roundrobin"] {
            let a = assignor(name);
            let got = sorted(a.assign(&sc.topics, &members_for(a.as_ref(), &sc.specs)).unwrap());
            assert_eq!(got, sc.results[name], "{name} in {}", sc.name);
        }
    }
}

/// The seven named scenarios must match Java exactly. The 40 random ones may differ where
/// Java's steps differ from ours (see sticky.rs), but never keep fewer owned partitions,
/// and the eager result is never less balanced; most match exactly.
#[test]
fn sticky_assignors_match_java() {
    let mut exact = 0;
    for sc in java_scenarios() {
        for name in ["sticky", "cooperative-sticky"] {
            let a = assignor(name);
            let members = members_for(a.as_ref(), &sc.specs);
            let got = sorted(a.assign(&sc.topics, &members).unwrap());
            let java = &sc.results[name];
            check_valid(&sc.topics, &members, &got, name == "cooperative-sticky");
            if !sc.name.starts_with("random-") {
                assert_eq!(&got, java, "{name} in {}", sc.name);
            }
            let (ours_kept, java_kept) = (kept(&sc.specs, &got), kept(&sc.specs, java));
            assert!(ours_kept >= java_kept, "{name} in {}: kept {ours_kept}, Java {java_kept}", sc.name);
            let spread = |r: &BTreeMap<String, Vec<TopicPartition>>| {
                let (lo, hi) = counts(r);
                hi - lo
            };
            // (Cooperative results lack the withheld partitions, so their spread says little.)
            if name == "sticky" {
                assert!(spread(&got) <= spread(java), "{name} in {}: less balanced than Java", sc.name);
            }
            exact += usize::from(&got == java);
        }
    }
    // 72 of the 94 results today; a drop means the algorithm moved away from Java's.
    assert!(exact >= 72, "only {exact} of 94 results equal Java's");
}

#[test]
fn sticky_user_data_matches_java() {
    let s = StickyAssignor;
    let topics = vec!["t1".to_string()];
    assert_eq!(s.subscription_user_data(&topics, &[], -1).map(|b| b.to_vec()), java_vector("sticky-initial"));
    let gen5 = s.subscription_user_data(&topics, &[tp("t1", 2), tp("t1", 0)], 5).unwrap();
    assert_eq!(Some(gen5.to_vec()), java_vector("sticky-gen5"));
    let empty6 = s.subscription_user_data(&topics, &[], 6).unwrap();
    assert_eq!(Some(empty6.to_vec()), java_vector("sticky-empty-gen6"));
    assert_eq!(
        decode_sticky_user_data(&gen5).unwrap(),
        StickyMemberData { partitions: vec![tp("t1", 2), tp("t1", 0)], generation: Some(5) }
    );
    // Version 0 (no generation), as old Java members send it.
    let v0 = encode_sticky_user_data(&StickyMemberData { partitions: vec![tp("a", 1), tp("b", 0)], generation: None });
    assert_eq!(decode_sticky_user_data(&v0).unwrap().generation, None);
    assert_eq!(decode_sticky_user_data(&v0).unwrap().partitions, vec![tp("a", 1), tp("b", 0)]);
    // Malformed user data: an error naming it; the assignor treats it as no history.
    let e = decode_sticky_user_data(&[0, 0, 0, 9, 0]).unwrap_err();
    assert!(e.to_string().contains("sticky assignor user data"), "{e}");
    let sub = Subscription { user_data: Some(Bytes::from_static(&[0, 0, 0, 9, 0])), ..Default::default() };
    assert_eq!(StickyAssignor::member_data(&sub), StickyMemberData::default());

    let c = CooperativeStickyAssignor;
    assert_eq!(c.subscription_user_data(&topics, &[], -1).map(|b| b.to_vec()), java_vector("cooperative-initial"));
    assert_eq!(c.subscription_user_data(&topics, &[], 5).map(|b| b.to_vec()), java_vector("cooperative-gen5"));
    // The generation comes from the subscription (v2+), else from the user data.
    let old = Subscription { user_data: Some(Bytes::from_static(&[0, 0, 0, 5])), generation_id: -1, ..Default::default() };
    assert_eq!(CooperativeStickyAssignor::member_data(&old).generation, Some(5));
    let new = Subscription { user_data: Some(Bytes::from_static(&[0, 0, 0, 5])), generation_id: 8, ..Default::default() };
    assert_eq!(CooperativeStickyAssignor::member_data(&new).generation, Some(8));
    assert_eq!(c.supported_protocols(), vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]);
    assert_eq!(StickyAssignor.supported_protocols(), vec![RebalanceProtocol::Eager]);
}

#[test]
fn names_are_javas() {
    assert_eq!(RangeAssignor.name(), "range");
    assert_eq!(RoundRobinAssignor.name(), "roundrobin");
    assert_eq!(StickyAssignor.name(), "sticky");
    assert_eq!(CooperativeStickyAssignor.name(), "cooperative-sticky");
}

/// The rules every assignor keeps: every member present (and no one else), no partition
/// twice, only existing partitions of topics the member subscribed to, and every
/// partition of a subscribed topic assigned; with `cooperative`, except partitions another
/// member than the new owner still claims.
fn check_valid(
    topics: &BTreeMap<String, i32>,
    members: &[GroupMember],
    r: &BTreeMap<String, Vec<TopicPartition>>,
    cooperative: bool,
) {
    let ids: BTreeSet<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(r.keys().map(String::as_str).collect::<BTreeSet<_>>(), ids);
    let mut seen: HashMap<&TopicPartition, &str> = HashMap::new();
    for m in members {
        for p in &r[&m.member_id] {
            assert!(m.subscription.topics.contains(&p.topic), "{p} to {} unsubscribed", m.member_id);
            assert!(p.partition >= 0 && p.partition < topics[&p.topic], "{p} does not exist");
            if let Some(o) = seen.insert(p, &m.member_id) {
                panic!("{p} to both {o} and {}", m.member_id);
            }
        }
    }
    let wanted: BTreeSet<&String> = members.iter().flat_map(|m| &m.subscription.topics).collect();
    for (t, n) in topics.iter().filter(|(t, _)| wanted.contains(t)) {
        for p in 0..*n {
            let p = tp(t, p);
            if seen.contains_key(&p) {
                continue;
            }
            assert!(cooperative, "{p} unassigned");
            assert!(
                members.iter().any(|m| m.subscription.owned_partitions.contains(&p)),
                "{p} withheld though no one owns it"
            );
        }
    }
}

/// A small seeded generator (splitmix64): the same scenarios on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random topics and members; with `equal`, every member subscribes to every topic.
fn random_group(rng: &mut Rng, equal: bool) -> (BTreeMap<String, i32>, Vec<GroupMember>) {
    let topics: BTreeMap<String, i32> =
        (0..1 + rng.below(5)).map(|i| (format!("topic-{i}"), rng.below(13) as i32)).collect();
    let names: Vec<String> = topics.keys().cloned().collect();
    let members = (0..1 + rng.below(8))
        .map(|i| {
            let subs: Vec<String> = if equal {
                names.clone()
            } else {
                let s: Vec<String> = names.iter().filter(|_| rng.below(2) == 0).cloned().collect();
                if s.is_empty() { vec![names[rng.below(names.len())].clone()] } else { s }
            };
            GroupMember {
                member_id: format!("m-{:03}", rng.below(1000) * 10 + i),
                group_instance_id: (rng.below(3) == 0).then(|| format!("i-{}", rng.below(50))),
                subscription: Subscription { topics: subs, generation_id: -1, ..Default::default() },
            }
        })
        .collect();
    (topics, members)
}

fn counts(r: &BTreeMap<String, Vec<TopicPartition>>) -> (usize, usize) {
    let c: Vec<usize> = r.values().map(Vec::len).collect();
    (*c.iter().min().unwrap(), *c.iter().max().unwrap())
}

#[test]
fn range_properties() {
    let mut rng = Rng(1);
    for _ in 0..500 {
        let equal = rng.below(2) == 0;
        let (topics, members) = random_group(&mut rng, equal);
        let r = sorted(RangeAssignor.assign(&topics, &members).unwrap());
        check_valid(&topics, &members, &r, false);
        // Per topic: the subscribers' shares differ by at most one, larger ones first.
        for t in topics.keys() {
            let mut subs: Vec<&GroupMember> = members.iter().filter(|m| m.subscription.topics.contains(t)).collect();
            subs.sort_by(|a, b| super::common::member_cmp(a, b));
            let shares: Vec<usize> = subs.iter().map(|m| r[&m.member_id].iter().filter(|p| &p.topic == t).count()).collect();
            assert!(shares.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1), "{t}: {shares:?}");
        }
    }
}

#[test]
fn roundrobin_properties() {
    let mut rng = Rng(2);
    for _ in 0..500 {
        let equal = rng.below(2) == 0;
        let (topics, members) = random_group(&mut rng, equal);
        let r = sorted(RoundRobinAssignor.assign(&topics, &members).unwrap());
        check_valid(&topics, &members, &r, false);
        if equal {
            let (lo, hi) = counts(&r);
            assert!(hi - lo <= 1, "{lo}..{hi}");
        }
    }
}

/// Runs `a` over a sequence of rebalances (members join and leave, each member reporting
/// what it got last time), checking validity, balance and stickiness at every step.
fn sticky_properties(a: &dyn PartitionAssignor, seed: u64, equal: bool) {
    let cooperative = a.name() == "cooperative-sticky";
    let mut rng = Rng(seed);
    for _ in 0..60 {
        let (topics, mut pool) = random_group(&mut rng, equal);
        let mut owned: HashMap<String, Vec<TopicPartition>> = HashMap::new();
        let mut generation = 0;
        let mut live: Vec<GroupMember> = vec![pool.remove(0)];
        for _step in 0..8 {
            // A member joins or leaves (keeping at least one).
            if !pool.is_empty() && (live.len() == 1 || rng.below(2) == 0) {
                live.push(pool.remove(rng.below(pool.len())));
            } else if live.len() > 1 {
                let gone = live.remove(rng.below(live.len()));
                owned.remove(&gone.member_id);
            }
            // Rebalance until stable (cooperative takes a second round for moved partitions).
            for round in 0..2 {
                let specs: Vec<Spec> = live
                    .iter()
                    .map(|m| Spec {
                        id: m.member_id.clone(),
                        instance: m.group_instance_id.clone(),
                        generation: if owned.contains_key(&m.member_id) { generation } else { -1 },
                        topics: m.subscription.topics.clone(),
                        owned: owned.get(&m.member_id).cloned().unwrap_or_default(),
                    })
                    .collect();
                let members = members_for(a, &specs);
                let r = sorted(a.assign(&topics, &members).unwrap());
                check_valid(&topics, &members, &r, cooperative);
                let withheld = cooperative && {
                    let n: usize = r.values().map(Vec::len).sum();
                    let wanted: BTreeSet<&String> = live.iter().flat_map(|m| &m.subscription.topics).collect();
                    let total: usize = topics.iter().filter(|(t, _)| wanted.contains(t)).map(|(_, n)| *n as usize).sum();
                    n < total
                };
                if !withheld {
                    if equal {
                        let (lo, hi) = counts(&r);
                        assert!(hi - lo <= 1, "{}: {lo}..{hi}", a.name());
                        // Stickiness: every member keeps its owned partitions up to the
                        // lower quota.
                        let total: usize = topics.values().map(|n| *n as usize).sum();
                        let min_q = total / live.len();
                        for s in &specs {
                            let k = s.owned.iter().filter(|p| r[&s.id].contains(p)).count();
                            assert!(k >= s.owned.len().min(min_q), "{} kept {k} of {:?}", s.id, s.owned);
                        }
                    } else {
                        balanced_for_unequal(&members, &r);
                    }
                }
                generation += 1;
                // Cooperative members revoke what they lost; everyone reports what they hold.
                owned = r.into_iter().collect();
                if !withheld {
                    break;
                }
                assert_eq!(round, 0, "cooperative needed more than two rounds");
            }
        }
    }
}

/// Java's balance for unequal subscriptions: no member could take a partition from a
/// member with at least two more.
fn balanced_for_unequal(members: &[GroupMember], r: &BTreeMap<String, Vec<TopicPartition>>) {
    for a in members {
        for p in &r[&a.member_id] {
            for b in members.iter().filter(|b| b.subscription.topics.contains(&p.topic)) {
                assert!(
                    r[&a.member_id].len() <= r[&b.member_id].len() + 1,
                    "{p} could move from {} ({}) to {} ({})",
                    a.member_id,
                    r[&a.member_id].len(),
                    b.member_id,
                    r[&b.member_id].len()
                );
            }
        }
    }
}

#[test]
fn sticky_properties_equal_subscriptions() {
    sticky_properties(&StickyAssignor, 3, true);
}

#[test]
fn sticky_properties_unequal_subscriptions() {
    sticky_properties(&StickyAssignor, 4, false);
}

#[test]
fn cooperative_sticky_properties_equal_subscriptions() {
    sticky_properties(&CooperativeStickyAssignor, 5, true);
}

#[test]
fn cooperative_sticky_properties_unequal_subscriptions() {
    sticky_properties(&CooperativeStickyAssignor, 6, false);
}

/// Big groups stay fast: 300 members, 6,000 partitions, after a member left (so most
/// members own partitions) and with unequal subscriptions; all 16 assignments take about
/// 2 s together in a debug build (the unequal sticky ones most of it).
#[test]
fn large_groups_are_assigned_quickly() {
    let topics: BTreeMap<String, i32> = (0..30).map(|i| (format!("topic-{i:02}"), 200)).collect();
    let names: Vec<String> = topics.keys().cloned().collect();
    for equal in [true, false] {
        for a in [&StickyAssignor as &dyn PartitionAssignor, &CooperativeStickyAssignor, &RangeAssignor, &RoundRobinAssignor] {
            let specs: Vec<Spec> = (0..301)
                .map(|i| Spec {
                    id: format!("member-{i:03}"),
                    instance: None,
                    generation: -1,
                    topics: if equal { names.clone() } else { names.iter().skip(i % 7).step_by(1 + i % 3).cloned().collect() },
                    owned: Vec::new(),
                })
                .collect();
            let start = std::time::Instant::now();
            let members = members_for(a, &specs);
            let first = sorted(a.assign(&topics, &members).unwrap());
            check_valid(&topics, &members, &first, false);
            // Member 0 leaves; the others report what they got.
            let specs: Vec<Spec> = specs[1..]
                .iter()
                .map(|s| Spec { generation: 1, owned: first[&s.id].clone(), ..s.clone() })
                .collect();
            let members = members_for(a, &specs);
            let second = sorted(a.assign(&topics, &members).unwrap());
            check_valid(&topics, &members, &second, a.name() == "cooperative-sticky");
            if a.name() == "sticky" && !equal {
                balanced_for_unequal(&members, &second);
            }
            let took = start.elapsed();
            assert!(took < std::time::Duration::from_secs(20), "{} equal={equal}: {took:?}", a.name());
        }
    }
}

/// Regenerates the Java vectors with the real Java client (needs a JDK and the cached
/// kafka-clients jars, see scripts/java-tool.sh) and checks they equal the committed ones:
/// `cargo test --lib regenerate_java_group_vectors -- --ignored`. With
/// `FERROKAFKA_WRITE_VECTORS=1` the committed files are overwritten instead.
#[test]
#[ignore = "runs the Java client; run by hand"]
fn regenerate_java_group_vectors() {
    let root = env!("CARGO_MANIFEST_DIR");
    let committed = format!("{root}/src/consumer/group/testdata");
    let out = if std::env::var_os("FERROKAFKA_WRITE_VECTORS").is_some() {
        committed.clone()
    } else {
        let d = std::env::temp_dir().join(format!("ferrokafka-group-vectors-{}", std::process::id()));
        d.to_string_lossy().into_owned()
    };
    let status = std::process::Command::new(format!("{root}/scripts/java-tool.sh"))
        .args(["protocol-vectors", &out])
        .status()
        .expect("run scripts/java-tool.sh");
    assert!(status.success(), "java-tool failed: {status}");
    for f in ["protocol-vectors.txt", "assignments.txt"] {
        let new = std::fs::read_to_string(format!("{out}/{f}")).unwrap();
        let old = std::fs::read_to_string(format!("{committed}/{f}")).unwrap();
        assert_eq!(new, old, "{f} differs from the Java client's");
    }
}

#[test]
fn empty_groups_and_repeated_member_ids() {
    let topics: BTreeMap<String, i32> = [("t".to_string(), 3)].into();
    let member = |id: &str| GroupMember {
        member_id: id.into(),
        group_instance_id: None,
        subscription: Subscription { topics: vec!["t".into(), "missing".into()], generation_id: -1, ..Default::default() },
    };
    for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
        let a = assignor(name);
        assert!(a.assign(&topics, &[]).unwrap().is_empty(), "{name}");
        let e = a.assign(&topics, &[member("x"), member("x")]).unwrap_err();
        assert!(e.to_string().contains("\"x\" appears twice"), "{name}: {e}");
        // A subscribed topic missing from the metadata is skipped, not an error.
        let r = sorted(a.assign(&topics, &[member("x")]).unwrap());
        assert_eq!(r["x"], vec![tp("t", 0), tp("t", 1), tp("t", 2)], "{name}");
    }
}
