//! Consumer-group measurements: `group` (throughput of a 3-member group draining a topic),
//! `group-failover` (time from a member's SIGKILL until its partitions are consumed again)
//! and `group-member` (one member as a child process of `group-failover`).
//!
//! `group` times a formed group, not its formation: the members subscribe at once and drop
//! what they read until each owns its final partitions and each partition has delivered a
//! record; then every member seeks its partitions to their first offset, and the clock
//! starts when all have (a barrier). It stops at the batch that brought the N-th distinct
//! (partition, offset). The formation time (subscribe to the barrier) is reported apart
//! (`formed_s`), with the process's CPU while the clock ran (`window_cpu_s`).
//!
//! Both clients get the same group settings: classic group protocol, the range assignor
//! alone, `session.timeout.ms` and `heartbeat.interval.ms` from the command line (default
//! 10000 and 1000), auto-commit on with a 5000 ms interval (both clients' default),
//! `auto.offset.reset=earliest`. Everything else at each client's defaults.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Client, Opts, Res};

/// The group settings both clients get.
#[derive(Clone, Debug)]
struct GroupSettings {
    group: String,
    session_timeout_ms: u64,
    heartbeat_ms: u64,
    auto_commit_ms: u64,
}

impl GroupSettings {
    fn from_opts(o: &Opts, default_group: String) -> Res<GroupSettings> {
        let s = GroupSettings {
            group: o.get("group").map(str::to_string).unwrap_or(default_group),
            session_timeout_ms: o.num("session-timeout-ms", Some(10_000))?,
            heartbeat_ms: o.num("heartbeat-ms", Some(1_000))?,
            auto_commit_ms: o.num("auto-commit-ms", Some(5_000))?,
        };
        if s.heartbeat_ms == 0 || s.heartbeat_ms >= s.session_timeout_ms {
            return Err("--heartbeat-ms must be at least 1 and below --session-timeout-ms".into());
        }
        Ok(s)
    }

    fn ferrokafka(&self, bootstrap: &str) -> ferrokafka::consumer::ConsumerConfig {
        use ferrokafka::consumer::{ConsumerConfig, GroupProtocol, OffsetReset, RangeAssignor};
        ConsumerConfig::new(bootstrap)
            .group_id(self.group.as_str())
            .group_protocol(GroupProtocol::Classic)
            .partition_assignment_strategy(vec![Arc::new(RangeAssignor)])
            .session_timeout(Duration::from_millis(self.session_timeout_ms))
            .heartbeat_interval(Duration::from_millis(self.heartbeat_ms))
            .enable_auto_commit(true)
            .auto_commit_interval(Duration::from_millis(self.auto_commit_ms))
            .auto_offset_reset(OffsetReset::Earliest)
    }

    fn rdkafka(&self, bootstrap: &str, props: &[(String, String)]) -> rdkafka::config::ClientConfig {
        let mut cfg = rdkafka::config::ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("group.id", &self.group)
            .set("group.protocol", "classic")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", self.heartbeat_ms.to_string())
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", self.auto_commit_ms.to_string())
            .set("auto.offset.reset", "earliest");
        for (k, v) in props {
            cfg.set(k, v);
        }
        cfg
    }
}

fn parse_client(o: &Opts) -> Res<Client> {
    match o.req("client")? {
        "ferrokafka" => Ok(Client::Ferrokafka),
        "rdkafka" | "librdkafka" => Ok(Client::Rdkafka),
        c => Err(format!("--client: unknown client '{c}' (ferrokafka|rdkafka)").into()),
    }
}

fn client_name(c: Client) -> &'static str {
    match c {
        Client::Ferrokafka => "ferrokafka",
        Client::Rdkafka => "rdkafka",
    }
}

fn unique_suffix() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

// =======================================================================================
// group: M members in one process drain a pre-filled topic
// =======================================================================================

/// User + system CPU seconds of this process (all its threads) so far, from
/// /proc/self/stat (utime and stime, in clock ticks of 1/100 s on Linux).
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses and may hold spaces: the
    // first is field 3 (state); utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// Which (partition, offset) pairs were seen, shared by the members of one process.
///
/// One bit per offset of every partition's [begin, end) range, set with `fetch_or`, so a
/// record seen twice (a member re-reading from the committed offset after a rebalance) is
/// counted as a duplicate, not twice. Members add their new records to `unique` once per
/// batch (not per record) and note the time of their latest batch that brought new ones.
struct Tracker {
    begin: Vec<i64>,
    /// Records in each partition's filled range.
    len: Vec<i64>,
    bits: Vec<Vec<AtomicU64>>,
    expected: u64,
    unique: AtomicU64,
    duplicates: AtomicU64,
    unique_bytes: AtomicU64,
    /// Nanoseconds since `start` of the latest batch that brought new records.
    last_new_ns: AtomicU64,
    /// Set by the first member past the start barrier, with the process's CPU time then.
    start: std::sync::OnceLock<(Instant, f64)>,
    /// The process's CPU time when the N-th distinct record was counted.
    cpu_at_end: std::sync::OnceLock<f64>,
    done: AtomicBool,
    /// Group formation: each member's current assignment, and whether each of those
    /// partitions has delivered a record to it since (so its fetch position is live and a
    /// seek applies to it in both clients).
    forming: Mutex<Vec<Option<(BTreeSet<i32>, bool)>>>,
    formed: AtomicBool,
    /// Members past their seeks (the start barrier).
    arrived: AtomicU64,
}

impl Tracker {
    fn new(begin: Vec<i64>, end: &[i64], members: usize) -> Tracker {
        let bits = begin
            .iter()
            .zip(end)
            .map(|(b, e)| (0..((e - b) as usize).div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
            .collect();
        let expected = begin.iter().zip(end).map(|(b, e)| (e - b) as u64).sum();
        let len = begin.iter().zip(end).map(|(b, e)| e - b).collect();
        Tracker {
            begin,
            len,
            bits,
            expected,
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            unique_bytes: AtomicU64::new(0),
            last_new_ns: AtomicU64::new(0),
            start: std::sync::OnceLock::new(),
            cpu_at_end: std::sync::OnceLock::new(),
            done: AtomicBool::new(false),
            forming: Mutex::new(vec![None; members]),
            formed: AtomicBool::new(false),
            arrived: AtomicU64::new(0),
        }
    }

    /// The start barrier: true once all `members` arrived; false if the run failed (a
    /// member set `done` on an error) or the deadline passed, so no member waits forever
    /// for one that is gone.
    fn arrive(&self) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
    }

    fn all_arrived(&self, members: usize) -> bool {
        self.arrived.load(Ordering::Acquire) >= members as u64
    }

    fn start(&self) -> Instant {
        self.start.get_or_init(|| (Instant::now(), process_cpu_secs())).0
    }

    /// CPU seconds (user + system, all threads) the process spent while the clock ran.
    fn cpu_in_window(&self) -> f64 {
        match (self.start.get(), self.cpu_at_end.get()) {
            (Some((_, a)), Some(b)) => b - a,
            _ => f64::NAN,
        }
    }

    /// Records member `m`'s state while the group forms; true once every member owns
    /// some partitions, together all of them once, and each has delivered a record.
    fn note_forming(&self, m: usize, assignment: BTreeSet<i32>, all_delivered: bool) -> bool {
        if self.formed.load(Ordering::Acquire) {
            return true;
        }
        let mut f = self.forming.lock().unwrap();
        f[m] = Some((assignment, all_delivered));
        let partitions = self.begin.len();
        let mut union = BTreeSet::new();
        let mut owned = 0;
        for slot in f.iter() {
            match slot {
                Some((a, true)) if !a.is_empty() => {
                    owned += a.len();
                    union.extend(a.iter().copied());
                }
                _ => return false,
            }
        }
        if owned == partitions && union.len() == partitions {
            self.formed.store(true, Ordering::Release);
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }
}

/// One member's not yet published counts.
#[derive(Default)]
struct Pending {
    new: u64,
    dup: u64,
    bytes: u64,
    /// All records this member got after the start (duplicates included).
    total: u64,
}

/// A member's view while the group forms: its assignment and which of those partitions
/// delivered a record since it got them.
#[derive(Default)]
struct Forming {
    assignment: BTreeSet<i32>,
    delivered: BTreeSet<i32>,
}

impl Forming {
    fn update(&mut self, assignment: BTreeSet<i32>, records: impl Iterator<Item = i32>) {
        if assignment != self.assignment {
            self.assignment = assignment;
            self.delivered.clear();
        }
        for p in records {
            if self.assignment.contains(&p) {
                self.delivered.insert(p);
            }
        }
    }

    fn all_delivered(&self) -> bool {
        self.delivered.len() == self.assignment.len()
    }
}

impl Pending {
    #[inline]
    fn record(&mut self, t: &Tracker, partition: i32, offset: i64, len: usize) -> Res<()> {
        let p = partition as usize;
        let Some(words) = t.bits.get(p) else {
            return Err(format!("record from unexpected partition {partition}").into());
        };
        let i = offset - t.begin[p];
        if i < 0 || i >= t.len[p] {
            return Err(format!("partition {partition}: offset {offset} outside the filled range").into());
        }
        let (w, b) = (i as usize / 64, i as u64 % 64);
        let old = words[w].fetch_or(1 << b, Ordering::Relaxed);
        if old & (1 << b) == 0 {
            self.new += 1;
            self.bytes += len as u64;
        } else {
            self.dup += 1;
        }
        self.total += 1;
        Ok(())
    }

    /// Publishes the counts; `now` is when the records were in hand.
    fn flush(&mut self, t: &Tracker, now: Instant) {
        let start = t.start();
        if self.dup > 0 {
            t.duplicates.fetch_add(self.dup, Ordering::Relaxed);
            self.dup = 0;
        }
        if self.new > 0 {
            t.last_new_ns.fetch_max(now.saturating_duration_since(start).as_nanos() as u64, Ordering::Relaxed);
            t.unique_bytes.fetch_add(self.bytes, Ordering::Relaxed);
            let before = t.unique.fetch_add(self.new, Ordering::AcqRel);
            if before < t.expected && before + self.new >= t.expected {
                let _ = t.cpu_at_end.set(process_cpu_secs());
                t.done.store(true, Ordering::Release);
            }
            self.new = 0;
            self.bytes = 0;
        }
    }
}

struct GroupArgs {
    client: Client,
    bootstrap: String,
    topic: String,
    records: u64,
    partitions: i32,
    members: usize,
    size: Option<u64>,
    compression: String,
    timeout: Duration,
    settings: GroupSettings,
    props: Vec<(String, String)>,
}

pub(crate) fn group(o: &Opts) -> Res<()> {
    o.check_known(&[
        "client",
        "bootstrap",
        "topic",
        "records",
        "partitions",
        "members",
        "size",
        "compression",
        "timeout-s",
        "group",
        "session-timeout-ms",
        "heartbeat-ms",
        "auto-commit-ms",
        "prop",
    ])?;
    let client = parse_client(o)?;
    let topic = o.req("topic")?.to_string();
    let a = GroupArgs {
        client,
        bootstrap: o.req("bootstrap")?.to_string(),
        records: o.num("records", None)?,
        partitions: o.num("partitions", Some(6))?,
        members: o.num("members", Some(3))?,
        size: match o.get("size") {
            Some(_) => Some(o.num("size", None)?),
            None => None,
        },
        compression: o.get("compression").unwrap_or("?").to_string(),
        timeout: Duration::from_secs(o.num("timeout-s", Some(300))?),
        settings: GroupSettings::from_opts(
            o,
            format!("bench-group-{}-{topic}-{}", client_name(client), unique_suffix()),
        )?,
        props: crate::rdkafka_props(o, client)?,
        topic,
    };
    if a.records == 0 || a.partitions < 1 || a.members < 1 {
        return Err("--records, --partitions and --members must be at least 1".into());
    }
    let (tracker, per_member, formed) = match a.client {
        Client::Ferrokafka => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(group_ferrokafka(&a))?,
        Client::Rdkafka => group_rdkafka(&a)?,
    };
    let unique = tracker.unique.load(Ordering::Acquire);
    if unique != a.records {
        return Err(format!("got {unique} distinct records, expected {}", a.records).into());
    }
    let bytes = tracker.unique_bytes.load(Ordering::Relaxed);
    if let Some(s) = a.size {
        if bytes != a.records * s {
            return Err(format!("got {bytes} value bytes, expected {} x {s}", a.records).into());
        }
    }
    let secs = Duration::from_nanos(tracker.last_new_ns.load(Ordering::Relaxed)).as_secs_f64();
    let counts: Vec<String> = per_member.iter().map(u64::to_string).collect();
    println!(
        "RESULT client={} mode=group members={} records={} size={} compression={} seconds={secs:.3} records_per_sec={:.1} mb_per_sec={:.2} window_cpu_s={:.2} duplicates={} formed_s={:.3} per_member={}",
        client_name(a.client),
        a.members,
        a.records,
        (bytes as f64 / a.records as f64).round() as u64,
        a.compression,
        a.records as f64 / secs,
        bytes as f64 / (1024.0 * 1024.0) / secs,
        tracker.cpu_in_window(),
        tracker.duplicates.load(Ordering::Relaxed),
        formed.as_secs_f64(),
        counts.join("/"),
    );
    Ok(())
}

fn check_total(a: &GroupArgs, begin: &[i64], end: &[i64]) -> Res<()> {
    let total: i64 = begin.iter().zip(end).map(|(b, e)| e - b).sum();
    if total != a.records as i64 {
        return Err(format!(
            "topic {} holds {total} records (begin {begin:?}, end {end:?}), expected {}",
            a.topic, a.records
        )
        .into());
    }
    Ok(())
}

/// The tracker, each member's records after the start (duplicates included), and the
/// time from the subscribe calls to the start (the group's formation).
type GroupRun = (Arc<Tracker>, Vec<u64>, Duration);

async fn group_ferrokafka(a: &GroupArgs) -> Res<GroupRun> {
    use ferrokafka::consumer::{Consumer, ConsumerConfig, TopicPartition};

    // Outside the clock: the topic's offsets (and the check it holds exactly N records),
    // with a consumer of no group; then the members are created (connected to the cluster).
    let probe = Consumer::new(ConsumerConfig::new(&a.bootstrap)).await?;
    let tps: Vec<TopicPartition> = (0..a.partitions).map(|p| TopicPartition::new(a.topic.as_str(), p)).collect();
    let begins = probe.beginning_offsets(&tps).await?;
    let ends = probe.end_offsets(&tps).await?;
    probe.close().await?;
    let get = |m: &HashMap<TopicPartition, i64>, tp: &TopicPartition| m.get(tp).copied().ok_or_else(|| format!("no offset for {tp}"));
    let begin = tps.iter().map(|tp| get(&begins, tp)).collect::<Result<Vec<_>, _>>()?;
    let end = tps.iter().map(|tp| get(&ends, tp)).collect::<Result<Vec<_>, _>>()?;
    check_total(a, &begin, &end)?;
    let cfg = a.settings.ferrokafka(&a.bootstrap);
    eprintln!("ferrokafka: {} members, {cfg:?}", a.members);
    let mut consumers = Vec::new();
    for _ in 0..a.members {
        consumers.push(Arc::new(Consumer::new(cfg.clone()).await?));
    }

    // The members subscribe at once; while the group forms their records are dropped.
    // Once every member owns its final partitions and each has delivered a record, every
    // member rewinds its partitions to where they begin, and the clock starts when all
    // have (a barrier, which gives up if a member failed): it times a formed group
    // draining the whole topic.
    let tracker = Arc::new(Tracker::new(begin, &end, a.members));
    let members = a.members;
    let subscribed = Instant::now();
    let deadline = subscribed + a.timeout;
    let mut tasks = Vec::new();
    for (m, c) in consumers.iter().enumerate() {
        let (c, t, topic) = (c.clone(), tracker.clone(), a.topic.clone());
        tasks.push(tokio::spawn(async move {
            // Any error ends the run for every member (they check `done`).
            let r = member_ferrokafka(m, members, &c, &t, &topic, deadline).await;
            if r.is_err() {
                t.done.store(true, Ordering::Release);
            }
            r
        }));
    }
    let mut stats = Vec::new();
    let mut err = None;
    for task in tasks {
        match task.await? {
            Ok(s) => stats.push(s),
            Err(e) => {
                err.get_or_insert(e);
            }
        }
    }
    for c in &consumers {
        let _ = c.close().await;
    }
    match err {
        Some(e) => Err(format!("{e} ({} of {} records)", tracker.unique.load(Ordering::Relaxed), a.records).into()),
        None => {
            let formed = tracker.start().saturating_duration_since(subscribed);
            Ok((tracker, stats, formed))
        }
    }
}

async fn member_ferrokafka(
    m: usize,
    members: usize,
    c: &ferrokafka::consumer::Consumer,
    t: &Tracker,
    topic: &str,
    deadline: Instant,
) -> Res<u64> {
    use ferrokafka::consumer::TopicPartition;
    c.subscribe([topic]).await?;
    let mut forming = Forming::default();
    loop {
        if t.done() || Instant::now() >= deadline {
            return Err("timed out while the group formed".into());
        }
        let batch = c.poll(Duration::from_millis(100)).await?;
        let assignment = c.assignment().iter().map(|tp| tp.partition).collect();
        forming.update(assignment, batch.iter().map(|r| r.partition));
        if t.note_forming(m, forming.assignment.clone(), forming.all_delivered()) {
            break;
        }
    }
    // A failed seek is reported, not fatal: the records it would have re-read then stay
    // missing and the run times out.
    for p in &forming.assignment {
        if let Err(e) = c.seek(&TopicPartition::new(topic, *p), t.begin[*p as usize]) {
            eprintln!("ferrokafka member {m}: seek of partition {p} failed: {e}");
        }
    }
    t.arrive();
    while !t.all_arrived(members) {
        if t.done() || Instant::now() >= deadline {
            return Err("another member failed before the start".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    t.start();
    let mut p = Pending::default();
    while !t.done() {
        if Instant::now() >= deadline {
            return Err("timed out".into());
        }
        let batch = c.poll(Duration::from_millis(100)).await?;
        for r in &batch {
            p.record(t, r.partition, r.offset, r.value.as_ref().map_or(0, |v| v.len()))?;
        }
        p.flush(t, Instant::now());
    }
    Ok(p.total)
}

fn group_rdkafka(a: &GroupArgs) -> Res<GroupRun> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;

    // Outside the clock: the topic's offsets with a consumer that joins no group, then the
    // members are created (librdkafka connects in its background threads).
    let probe: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .create()?;
    let mut begin = Vec::new();
    let mut end = Vec::new();
    for p in 0..a.partitions {
        let (lo, hi) = probe.fetch_watermarks(&a.topic, p, Duration::from_secs(30))?;
        begin.push(lo);
        end.push(hi);
    }
    drop(probe);
    check_total(a, &begin, &end)?;
    let cfg = a.settings.rdkafka(&a.bootstrap, &a.props);
    eprintln!(
        "rdkafka: librdkafka {}, {} BaseConsumer members, one thread each, config {:?}",
        rdkafka::util::get_rdkafka_version().1,
        a.members,
        cfg.config_map()
    );
    let mut consumers = Vec::new();
    for _ in 0..a.members {
        let c: BaseConsumer = cfg.create()?;
        consumers.push(c);
    }

    // As for ferrokafka: form the group (records dropped), rewind, barrier, clock.
    let tracker = Arc::new(Tracker::new(begin, &end, a.members));
    let members = a.members;
    let subscribed = Instant::now();
    let deadline = subscribed + a.timeout;
    let results: Vec<Res<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = consumers
            .iter()
            .enumerate()
            .map(|(m, c)| {
                let t = tracker.clone();
                let topic = a.topic.as_str();
                s.spawn(move || -> Res<u64> {
                    let r = (|| -> Res<u64> {
                        c.subscribe(&[topic])?;
                        let mut forming = Forming::default();
                        loop {
                            if t.done() || Instant::now() >= deadline {
                                return Err("timed out while the group formed".into());
                            }
                            let got = match c.poll(Duration::from_millis(100)) {
                                Some(Ok(m)) => Some(m.partition()),
                                Some(Err(e)) => return Err(format!("consume error: {e}").into()),
                                None => None,
                            };
                            let assignment = c.assignment()?.elements().iter().map(|e| e.partition()).collect();
                            forming.update(assignment, got.into_iter());
                            if t.note_forming(m, forming.assignment.clone(), forming.all_delivered()) {
                                break;
                            }
                        }
                        for p in &forming.assignment {
                            let to = rdkafka::Offset::Offset(t.begin[*p as usize]);
                            if let Err(e) = c.seek(topic, *p, to, Duration::from_secs(10)) {
                                eprintln!("rdkafka member {m}: seek of partition {p} failed: {e}");
                            }
                        }
                        t.arrive();
                        while !t.all_arrived(members) {
                            if t.done() || Instant::now() >= deadline {
                                return Err("another member failed before the start".into());
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        t.start();
                        let mut p = Pending::default();
                        while !t.done() {
                            // Records that are ready, without blocking; published (with the
                            // time they were in hand) before a blocking poll.
                            match c.poll(Duration::ZERO) {
                                Some(Ok(m)) => {
                                    p.record(&t, m.partition(), m.offset(), m.payload().map_or(0, <[u8]>::len))?;
                                    continue;
                                }
                                Some(Err(e)) => return Err(format!("consume error: {e}").into()),
                                None => {}
                            }
                            p.flush(&t, Instant::now());
                            if t.done() {
                                break;
                            }
                            if Instant::now() >= deadline {
                                return Err("timed out".into());
                            }
                            match c.poll(Duration::from_millis(100)) {
                                Some(Ok(m)) => {
                                    p.record(&t, m.partition(), m.offset(), m.payload().map_or(0, <[u8]>::len))?
                                }
                                Some(Err(e)) => return Err(format!("consume error: {e}").into()),
                                None => {}
                            }
                        }
                        p.flush(&t, Instant::now());
                        Ok(p.total)
                    })();
                    if r.is_err() {
                        t.done.store(true, Ordering::Release);
                    }
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("member thread panicked")).collect()
    });
    // Dropping a BaseConsumer closes it (commits, leaves the group).
    drop(consumers);
    let mut stats = Vec::new();
    for r in results {
        match r {
            Ok(s) => stats.push(s),
            Err(e) => {
                return Err(format!("{e} ({} of {} records)", tracker.unique.load(Ordering::Relaxed), a.records).into());
            }
        }
    }
    let formed = tracker.start().saturating_duration_since(subscribed);
    Ok((tracker, stats, formed))
}

// =======================================================================================
// group-member: one member, a child process of group-failover
// =======================================================================================
//
// Prints on stdout, one event a line, times in microseconds since the Unix epoch (the
// parent compares them with its own clock, same machine):
//   ASSIGN <us> <p,p,..>   its assignment changed ("-" when empty); checked after every
//                          poll, before that poll's records are reported
//   REC <us> <p>           a record of partition p: the first since the last assignment
//                          change, or after >= 500 ms without one
// It stops (closing the consumer properly) when its stdin reaches end of file.

fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

struct MemberOut {
    last_rec: HashMap<i32, Instant>,
    assignment: Option<BTreeSet<i32>>,
}

const REC_GAP: Duration = Duration::from_millis(500);

impl MemberOut {
    fn new() -> MemberOut {
        MemberOut { last_rec: HashMap::new(), assignment: None }
    }

    fn record(&mut self, partition: i32, now: Instant) {
        let fresh = self.last_rec.get(&partition).is_none_or(|t| now - *t >= REC_GAP);
        self.last_rec.insert(partition, now);
        if fresh {
            println!("REC {} {partition}", wall_us());
        }
    }

    fn assignment(&mut self, parts: BTreeSet<i32>) {
        if self.assignment.as_ref() != Some(&parts) {
            let list: Vec<String> = parts.iter().map(i32::to_string).collect();
            println!("ASSIGN {} {}", wall_us(), if list.is_empty() { "-".to_string() } else { list.join(",") });
            self.assignment = Some(parts);
            // Report every partition's next record again, so the parent sees records
            // that came after the change.
            self.last_rec.clear();
        }
    }
}

pub(crate) fn group_member(o: &Opts) -> Res<()> {
    o.check_known(&["client", "bootstrap", "topic", "group", "session-timeout-ms", "heartbeat-ms", "auto-commit-ms", "prop"])?;
    let client = parse_client(o)?;
    let bootstrap = o.req("bootstrap")?.to_string();
    let topic = o.req("topic")?.to_string();
    let settings = GroupSettings::from_opts(o, String::new())?;
    if settings.group.is_empty() {
        return Err("--group is required".into());
    }
    let props = crate::rdkafka_props(o, client)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            stop.store(true, Ordering::Relaxed);
        });
    }
    match client {
        Client::Ferrokafka => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(async move {
                use ferrokafka::consumer::Consumer;
                let c = Consumer::new(settings.ferrokafka(&bootstrap)).await?;
                c.subscribe([topic.as_str()]).await?;
                let mut out = MemberOut::new();
                while !stop.load(Ordering::Relaxed) {
                    let batch = c.poll(Duration::from_millis(100)).await?;
                    let now = Instant::now();
                    out.assignment(c.assignment().iter().map(|tp| tp.partition).collect());
                    for r in &batch {
                        out.record(r.partition, now);
                    }
                }
                c.close().await?;
                Ok(())
            }),
        Client::Rdkafka => {
            use rdkafka::consumer::{BaseConsumer, Consumer};
            use rdkafka::message::Message;
            let c: BaseConsumer = settings.rdkafka(&bootstrap, &props).create()?;
            c.subscribe(&[topic.as_str()])?;
            let mut out = MemberOut::new();
            while !stop.load(Ordering::Relaxed) {
                // A rebalance runs inside poll; the assignment is read after it and reported
                // before the record it returned.
                let m = c.poll(Duration::from_millis(100));
                let now = Instant::now();
                out.assignment(c.assignment()?.elements().iter().map(|e| e.partition()).collect());
                match m {
                    Some(Ok(m)) => out.record(m.partition(), now),
                    Some(Err(e)) => eprintln!("rdkafka member: consume error: {e}"),
                    None => {}
                }
            }
            drop(c); // closes: commits and leaves the group
            Ok(())
        }
    }
}

// =======================================================================================
// group-failover: M member processes, a producer writing all the time, one member killed
// =======================================================================================

enum Event {
    Assign { member: usize, at: u64, parts: BTreeSet<i32> },
    Rec { member: usize, at: u64, partition: i32 },
    Exit { member: usize },
}

fn spawn_member(
    member: usize,
    exe: &std::path::Path,
    args: &[String],
    tx: mpsc::Sender<Event>,
    log: Arc<Mutex<std::fs::File>>,
) -> Res<Child> {
    let mut child = Command::new(exe)
        .arg("group-member")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log.lock().unwrap(), "m{member} {line}");
            let f: Vec<&str> = line.split_whitespace().collect();
            let ev = match f.as_slice() {
                ["ASSIGN", at, parts] => Event::Assign {
                    member,
                    at: at.parse().unwrap_or(0),
                    parts: if *parts == "-" { BTreeSet::new() } else { parts.split(',').filter_map(|p| p.parse().ok()).collect() },
                },
                ["REC", at, p] => Event::Rec { member, at: at.parse().unwrap_or(0), partition: p.parse().unwrap_or(-1) },
                _ => continue,
            };
            if tx.send(ev).is_err() {
                break;
            }
        }
        let _ = tx.send(Event::Exit { member });
    });
    Ok(child)
}

/// Writes `rate` records a second, spread evenly over the partitions (explicit partition
/// per record, round robin), until `stop`.
fn start_load(bootstrap: String, topic: String, partitions: i32, rate: u64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Res<u64>> {
    std::thread::spawn(move || -> Res<u64> {
        use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let producer = Producer::new(ProducerConfig::new(&bootstrap).linger(Duration::from_millis(2))).await?;
            let value = bytes::Bytes::from(vec![b'x'; 100]);
            let tick = Duration::from_millis(10);
            let per_tick = (rate / 100).max(partitions as u64);
            let mut sent = 0u64;
            let mut pending = std::collections::VecDeque::new();
            let mut next = tokio::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..per_tick {
                    let p = (sent % partitions as u64) as i32;
                    pending.push_back(producer.send(ProducerRecord::new(topic.as_str()).partition(p).value(value.clone())).await?);
                    sent += 1;
                }
                while pending.len() > 10_000 {
                    pending.pop_front().expect("non-empty").await?;
                }
                next += tick;
                tokio::time::sleep_until(next).await;
            }
            for f in pending {
                f.await?;
            }
            producer.close(Duration::from_secs(10)).await?;
            Ok::<u64, crate::BoxError>(sent)
        })
    })
}

pub(crate) fn group_failover(o: &Opts) -> Res<()> {
    o.check_known(&[
        "client",
        "bootstrap",
        "topic",
        "partitions",
        "members",
        "kill",
        "rate",
        "settle-s",
        "kill-delay-ms",
        "timeout-s",
        "events",
        "group",
        "session-timeout-ms",
        "heartbeat-ms",
        "auto-commit-ms",
        "prop",
    ])?;
    let client = parse_client(o)?;
    let bootstrap = o.req("bootstrap")?.to_string();
    let topic = o.req("topic")?.to_string();
    let partitions: i32 = o.num("partitions", Some(6))?;
    let members: usize = o.num("members", Some(3))?;
    let kill: usize = o.num("kill", Some(0))?;
    let rate: u64 = o.num("rate", Some(3000))?;
    let settle = Duration::from_secs(o.num("settle-s", Some(6))?);
    // Extra wait before the kill. The settle period starts when the group becomes stable,
    // which is also about when each member's heartbeat timer starts, so without it the kill
    // would land at the same point of the heartbeat cycle in every run (and the failover
    // time is session timeout minus the time since the last heartbeat, plus the
    // rebalance). scripts/bench.sh spreads it evenly over one heartbeat interval across runs.
    let kill_delay = Duration::from_millis(o.num("kill-delay-ms", Some(0))?);
    let timeout = Duration::from_secs(o.num("timeout-s", Some(120))?);
    let settings = GroupSettings::from_opts(o, format!("bench-failover-{}-{topic}-{}", client_name(client), unique_suffix()))?;
    if members < 2 || kill >= members {
        return Err("--members must be at least 2 and --kill below it".into());
    }
    let events_path = o.get("events").map(str::to_string).unwrap_or_else(|| "/dev/null".into());
    let log = Arc::new(Mutex::new(std::fs::File::create(&events_path)?));

    let stop_load = Arc::new(AtomicBool::new(false));
    let load = start_load(bootstrap.clone(), topic.clone(), partitions, rate, stop_load.clone());
    let mut member_args = vec![
        format!("--client={}", client_name(client)),
        format!("--bootstrap={bootstrap}"),
        format!("--topic={topic}"),
        format!("--group={}", settings.group),
        format!("--session-timeout-ms={}", settings.session_timeout_ms),
        format!("--heartbeat-ms={}", settings.heartbeat_ms),
        format!("--auto-commit-ms={}", settings.auto_commit_ms),
    ];
    member_args.extend(o.all("prop").map(|p| format!("--prop={p}")));
    eprintln!("group-failover: {client:?}, {members} member processes, group settings {settings:?}, load {rate} records/s");
    let exe = std::env::current_exe()?;
    let (tx, rx) = mpsc::channel();
    let t0 = wall_us();
    let mut children: Vec<Option<Child>> = Vec::new();
    for m in 0..members {
        children.push(Some(spawn_member(m, &exe, &member_args, tx.clone(), log.clone())?));
    }
    drop(tx);

    let result = (|| -> Res<String> {
        let deadline = Instant::now() + timeout;
        let mut assign: Vec<BTreeSet<i32>> = vec![BTreeSet::new(); members];
        let mut assign_at = vec![0u64; members];
        // Partition -> (member, time) of its latest REC.
        let mut last_rec: HashMap<i32, (usize, u64)> = HashMap::new();
        let mut stable_since: Option<Instant> = None;
        let next = |rx: &mpsc::Receiver<Event>, until: Instant| -> Res<Option<Event>> {
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            match rx.recv_timeout(until - now) {
                Ok(e) => Ok(Some(e)),
                Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err("all members exited".into()),
            }
        };
        // 1. Wait until the group is stable: every partition owned by exactly one member,
        //    each member owning some, every partition delivering to its owner, and no
        //    change for `settle` (so auto-commits have happened too).
        let join_s;
        loop {
            let wait_until = stable_since.map_or(deadline, |s| (s + settle).min(deadline));
            match next(&rx, wait_until)? {
                Some(Event::Assign { member, at, parts }) => {
                    assign[member] = parts;
                    assign_at[member] = at;
                    stable_since = None;
                }
                Some(Event::Rec { member, at, partition }) => {
                    last_rec.insert(partition, (member, at));
                }
                Some(Event::Exit { member }) => return Err(format!("member {member} exited before the kill").into()),
                None => {
                    if Instant::now() >= deadline {
                        return Err(format!("the group did not settle within {timeout:?}; assignments {assign:?}").into());
                    }
                    if stable_since.is_some() {
                        join_s = (assign_at.iter().max().copied().unwrap_or(t0) - t0) as f64 / 1e6;
                        break;
                    }
                }
            }
            if stable_since.is_none() {
                let owned: usize = assign.iter().map(BTreeSet::len).sum();
                let union: BTreeSet<i32> = assign.iter().flatten().copied().collect();
                if assign.iter().all(|a| !a.is_empty())
                    && owned == partitions as usize
                    && union.len() == partitions as usize
                    && (0..partitions).all(|p| {
                        last_rec.get(&p).is_some_and(|&(m, at)| assign[m].contains(&p) && at >= assign_at[m])
                    })
                {
                    stable_since = Some(Instant::now());
                }
            }
        }
        // Events that arrive meanwhile are ignored unless they say the group changed.
        let kill_at = Instant::now() + kill_delay;
        while let Some(ev) = next(&rx, kill_at)? {
            match ev {
                Event::Assign { member, parts, .. } if parts != assign[member] => {
                    return Err(format!("member {member}'s assignment changed before the kill").into());
                }
                Event::Exit { member } => return Err(format!("member {member} exited before the kill").into()),
                _ => {}
            }
        }
        // 2. Kill one member abruptly: no LeaveGroup, no commit; its session must expire.
        let victim = assign[kill].clone();
        let mut child = children[kill].take().expect("victim alive");
        let killed_at = wall_us();
        child.kill()?;
        let _ = child.wait();
        eprintln!("group-failover: SIGKILLed member {kill} (partitions {victim:?}) at {killed_at}");
        // 3. Until a survivor has received a record of every partition the victim had.
        let mut first_rec: HashMap<i32, u64> = HashMap::new();
        let mut reassigned: HashMap<i32, u64> = HashMap::new();
        let until = Instant::now() + timeout;
        let mut records_done: Option<Instant> = None;
        while first_rec.len() < victim.len() || reassigned.len() < victim.len() {
            if first_rec.len() == victim.len() && records_done.is_none() {
                records_done = Some(Instant::now());
            }
            // Once the records came, the assignments that brought them are at most a poll
            // behind; wait for them 2 s at most.
            let until = records_done.map_or(until, |t| t + Duration::from_secs(2));
            match next(&rx, until)? {
                Some(Event::Rec { member, at, partition }) if member != kill && at >= killed_at && victim.contains(&partition) => {
                    first_rec.entry(partition).or_insert(at);
                }
                Some(Event::Assign { member, at, parts }) if member != kill => {
                    for p in parts.intersection(&victim) {
                        reassigned.entry(*p).or_insert(at);
                    }
                }
                Some(_) => {}
                None if records_done.is_some() => break,
                None => {
                    return Err(format!(
                        "partitions {victim:?} of the killed member not consumed again within {timeout:?} (got {first_rec:?})"
                    )
                    .into());
                }
            }
        }
        let failover_s = (first_rec.values().max().copied().unwrap_or(killed_at) - killed_at) as f64 / 1e6;
        let reassign_s = if reassigned.len() == victim.len() {
            format!("{:.3}", (reassigned.values().max().copied().unwrap_or(killed_at) - killed_at) as f64 / 1e6)
        } else {
            "-".to_string()
        };
        let parts: Vec<String> = victim.iter().map(i32::to_string).collect();
        Ok(format!(
            "RESULT client={} mode=group-failover members={members} killed_member={kill} killed_partitions={} session_timeout_ms={} heartbeat_ms={} kill_delay_ms={} join_s={join_s:.3} reassign_s={reassign_s} failover_s={failover_s:.3}",
            client_name(client),
            parts.join(","),
            settings.session_timeout_ms,
            settings.heartbeat_ms,
            kill_delay.as_millis(),
        ))
    })();

    // Survivors: close their stdin so they close their consumers and exit; kill stragglers.
    for c in children.iter_mut().flatten() {
        drop(c.stdin.take());
    }
    let grace = Instant::now() + Duration::from_secs(20);
    for c in children.iter_mut().flatten() {
        loop {
            match c.try_wait()? {
                Some(_) => break,
                None if Instant::now() >= grace => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    stop_load.store(true, Ordering::Relaxed);
    let sent = load.join().map_err(|_| "load thread panicked")??;
    eprintln!("group-failover: the load producer wrote {sent} records");
    let line = result?;
    println!("{line}");
    Ok(())
}
