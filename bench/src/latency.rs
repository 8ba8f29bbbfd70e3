//! `latency`: acknowledgement latency at a fixed rate (issue 11, defect 3).
//!
//! `--producers` producers (default 3) in one process send keyed records (keys
//! `key-0..key-{--keys}` in turn) at a fixed total `--rate` records/s for `--seconds`; every
//! payload is different (a record counter, then pseudo-random letters, `--size` bytes). The
//! latency of a record runs from just before `send` to the resolution of its delivery
//! future. How the futures are awaited (`--await`, ferrokafka only):
//! - `task`: each future in its own spawned task;
//! - `unordered`: the sending task keeps them in a `FuturesUnordered`;
//! - `fifo`: a second task per producer awaits them in send order (a record's latency then
//!   includes waiting behind earlier ones, as an application awaiting in order sees it).
//!
//! `--client rdkafka`: librdkafka's `FutureProducer`, each future in its own spawned task.
//! Both clients: acks=all, idempotence on, linger `--linger-ms` (default 5), everything else
//! at the client's default. After the send phase the run waits up to `--drain-s` (default
//! 20) for outstanding acknowledgements; records still unacknowledged then count with the
//! drain time as their latency (a lower bound) and in `unacked`. The last line is
//!
//! ```text
//! RESULT client=.. await=.. rate=.. seconds=.. sent=.. acked=.. acked_in_window=.. failed=..
//!        unacked=.. p50_ms=.. p99_ms=.. p999_ms=.. max_ms=..
//! ```
//!
//! (`acked_in_window`: acknowledged before the send phase ended). `log-batches` counts the
//! record batches the broker stored for a topic (records per batch, as written by the
//! client) by reading the partitions' segment files in one node's data directory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Opts, Res};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Await {
    Task,
    Unordered,
    Fifo,
}

struct Args {
    rdkafka: bool,
    mode: Await,
    bootstrap: String,
    topic: String,
    rate: f64,
    seconds: f64,
    producers: usize,
    size: usize,
    keys: u64,
    linger_ms: u64,
    drain: Duration,
}

/// Latencies (µs) and counters shared by every producer of a run.
struct Stats {
    lat_us: Mutex<Vec<u32>>,
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Stats {
    fn done(&self, started: Instant, ok: Result<(), String>) {
        match ok {
            Ok(()) => {
                let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                self.lat_us.lock().unwrap().push(us);
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error.lock().unwrap().get_or_insert(e);
            }
        }
    }
    fn resolved(&self) -> u64 {
        self.acked.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// Record `n`'s key and value: keys cycle, values never repeat.
fn record(n: u64, a: &Args) -> (String, Vec<u8>) {
    let key = format!("key-{}", n % a.keys);
    let mut v = format!("{n:012}-").into_bytes();
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < a.size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'A' + (x % 26) as u8);
    }
    v.truncate(a.size);
    (key, v)
}

/// How many records producer `i` of `n` owes at `elapsed` (its share of the fixed rate).
fn due(a: &Args, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64().min(a.seconds);
    (secs * a.rate / a.producers as f64) as u64
}

pub(crate) fn latency(o: &Opts) -> Res<()> {
    o.check_known(&[
        "client", "await", "bootstrap", "topic", "rate", "seconds", "producers", "size", "keys", "linger-ms", "drain-s",
    ])?;
    let mode = match o.get("await").unwrap_or("task") {
        "task" => Await::Task,
        "unordered" => Await::Unordered,
        "fifo" => Await::Fifo,
        m => return Err(format!("--await: '{m}' (task|unordered|fifo)").into()),
    };
    let rdkafka = match o.get("client").unwrap_or("ferrokafka") {
        "ferrokafka" => false,
        "rdkafka" => true,
        c => return Err(format!("--client: '{c}' (ferrokafka|rdkafka)").into()),
    };
    if rdkafka && mode != Await::Task {
        return Err("--client rdkafka awaits every future in its own task (--await task)".into());
    }
    let a = Arc::new(Args {
        rdkafka,
        mode,
        bootstrap: o.req("bootstrap")?.to_string(),
        topic: o.req("topic")?.to_string(),
        rate: o.num("rate", Some(3000.0))?,
        seconds: o.num("seconds", Some(15.0))?,
        producers: o.num("producers", Some(3))?,
        size: o.num("size", Some(100))?,
        keys: o.num("keys", Some(1000))?,
        linger_ms: o.num("linger-ms", Some(5))?,
        drain: Duration::from_secs(o.num("drain-s", Some(20))?),
    });
    if a.producers == 0 || a.keys == 0 || a.size < 16 || a.rate <= 0.0 {
        return Err("--producers and --keys must be at least 1, --size at least 16, --rate positive".into());
    }
    let stats = Arc::new(Stats {
        lat_us: Mutex::new(Vec::with_capacity((a.rate * a.seconds) as usize + 16)),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let sent = Arc::new(AtomicU64::new(0));
    let (window_acked, unacked) = rt.block_on(async {
        let mut handles = Vec::new();
        // Every producer is built and warmed up before the clock starts, so none starts
        // late and owes a burst of records at once.
        let start = if a.rdkafka {
            let mut ps = Vec::new();
            for _ in 0..a.producers {
                let p = rd_producer(&a)?;
                rd_warm_up(&p, &a).await?;
                ps.push(p);
            }
            let start = Instant::now() + Duration::from_millis(200);
            for (i, p) in ps.into_iter().enumerate() {
                handles.push(tokio::spawn(rd_run(p, i, a.clone(), stats.clone(), sent.clone(), start)));
            }
            start
        } else {
            let mut ps = Vec::new();
            for _ in 0..a.producers {
                ps.push(ferro_producer(&a).await?);
            }
            let start = Instant::now() + Duration::from_millis(200);
            for (i, p) in ps.into_iter().enumerate() {
                handles.push(tokio::spawn(ferro_run(p, i, a.clone(), stats.clone(), sent.clone(), start)));
            }
            start
        };
        tokio::time::sleep_until((start + Duration::from_secs_f64(a.seconds)).into()).await;
        let window_acked = stats.acked.load(Ordering::Relaxed);
        let deadline = Instant::now() + a.drain;
        for h in handles {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, h).await;
        }
        while stats.resolved() < sent.load(Ordering::Relaxed) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let unacked = sent.load(Ordering::Relaxed).saturating_sub(stats.resolved());
        Ok::<_, crate::BoxError>((window_acked, unacked))
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    let sent = sent.load(Ordering::Relaxed);
    let mut lat = stats.lat_us.lock().unwrap().clone();
    lat.extend(std::iter::repeat_n(a.drain.as_micros() as u32, unacked as usize));
    lat.sort_unstable();
    let pct = |q: f64| -> String {
        if lat.is_empty() {
            return "-".into();
        }
        let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
        format!("{:.1}", lat[i] as f64 / 1000.0)
    };
    if let Some(e) = stats.first_error.lock().unwrap().as_ref() {
        eprintln!("first delivery error: {e}");
    }
    println!(
        "RESULT client={} await={} rate={} seconds={} sent={sent} acked={} acked_in_window={window_acked} failed={} unacked={unacked} p50_ms={} p99_ms={} p999_ms={} max_ms={}",
        if a.rdkafka { "rdkafka" } else { "ferrokafka" },
        format!("{:?}", a.mode).to_lowercase(),
        a.rate,
        a.seconds,
        stats.acked.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0),
    );
    if stats.failed.load(Ordering::Relaxed) > 0 {
        return Err("some records failed".into());
    }
    Ok(())
}

async fn ferro_producer(a: &Args) -> Res<ferrokafka::producer::Producer> {
    use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
    let cfg = ProducerConfig::from_client(crate::ferro_client(&a.bootstrap)?).linger(Duration::from_millis(a.linger_ms));
    let p = Producer::new(cfg).await?;
    // Warm-up (not measured): metadata and the producer id.
    p.send(ProducerRecord::new(a.topic.as_str()).key("warm-up").value("warm-up")).await?.await?;
    Ok(p)
}

async fn ferro_run(
    p: ferrokafka::producer::Producer,
    i: usize,
    a: Arc<Args>,
    stats: Arc<Stats>,
    sent: Arc<AtomicU64>,
    start: Instant,
) {
    use futures::stream::{FuturesUnordered, StreamExt};
    use ferrokafka::producer::ProducerRecord;
    let mut unordered = FuturesUnordered::new();
    let (fifo_tx, mut fifo_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, ferrokafka::producer::DeliveryFuture)>();
    let fifo = if a.mode == Await::Fifo {
        let stats = stats.clone();
        Some(tokio::spawn(async move {
            while let Some((t, f)) = fifo_rx.recv().await {
                stats.done(t, f.await.map(|_| ()).map_err(|e| e.to_string()));
            }
        }))
    } else {
        None
    };
    let mut tick = tokio::time::interval_at(start.into(), Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut mine = 0u64;
    let end = start + Duration::from_secs_f64(a.seconds);
    loop {
        if Instant::now() >= end && mine >= due(&a, end - start) {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {
                let owed = due(&a, start.elapsed());
                while mine < owed {
                    let n = mine * a.producers as u64 + i as u64;
                    mine += 1;
                    let (k, v) = record(n, &a);
                    let t = Instant::now();
                    let rec = ProducerRecord::new(a.topic.as_str()).key(k.into_bytes()).value(v);
                    sent.fetch_add(1, Ordering::Relaxed);
                    match p.send(rec).await {
                        Ok(f) => match a.mode {
                            Await::Task => {
                                let stats = stats.clone();
                                tokio::spawn(async move { stats.done(t, f.await.map(|_| ()).map_err(|e| e.to_string())) });
                            }
                            Await::Unordered => unordered.push(async move { (t, f.await) }),
                            Await::Fifo => {
                                let _ = fifo_tx.send((t, f));
                            }
                        },
                        Err(e) => stats.done(t, Err(e.to_string())),
                    }
                }
            }
            Some((t, r)) = unordered.next(), if !unordered.is_empty() => {
                stats.done(t, r.map(|_| ()).map_err(|e| e.to_string()));
            }
        }
    }
    while let Some((t, r)) = unordered.next().await {
        stats.done(t, r.map(|_| ()).map_err(|e| e.to_string()));
    }
    drop(fifo_tx);
    if let Some(h) = fifo {
        let _ = h.await;
    }
    // Close in the background of the drain: the run's end is decided by the counters.
    let _ = p.close(Duration::from_secs(5)).await;
}

fn rd_producer(a: &Args) -> Res<rdkafka::producer::FutureProducer> {
    let mut cfg = rdkafka::config::ClientConfig::new();
    cfg.set("bootstrap.servers", &a.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", a.linger_ms.to_string());
    Ok(cfg.create()?)
}

async fn rd_warm_up(p: &rdkafka::producer::FutureProducer, a: &Args) -> Res<()> {
    use rdkafka::producer::FutureRecord;
    p.send(FutureRecord::to(&a.topic).key("warm-up").payload("warm-up"), Duration::from_secs(30))
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

async fn rd_run(
    p: rdkafka::producer::FutureProducer,
    i: usize,
    a: Arc<Args>,
    stats: Arc<Stats>,
    sent: Arc<AtomicU64>,
    start: Instant,
) {
    use rdkafka::producer::FutureRecord;
    let mut tick = tokio::time::interval_at(start.into(), Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut mine = 0u64;
    let end = start + Duration::from_secs_f64(a.seconds);
    while !(Instant::now() >= end && mine >= due(&a, end - start)) {
        tick.tick().await;
        let owed = due(&a, start.elapsed());
        while mine < owed {
            let n = mine * a.producers as u64 + i as u64;
            mine += 1;
            let (k, v) = record(n, &a);
            let t = Instant::now();
            sent.fetch_add(1, Ordering::Relaxed);
            loop {
                match p.send_result(FutureRecord::to(&a.topic).key(&k).payload(&v)) {
                    Ok(f) => {
                        let stats = stats.clone();
                        tokio::spawn(async move {
                            let r = match f.await {
                                Ok(Ok(_)) => Ok(()),
                                Ok(Err((e, _))) => Err(e.to_string()),
                                Err(_) => Err("delivery future cancelled".to_string()),
                            };
                            stats.done(t, r);
                        });
                        break;
                    }
                    Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => {
                        stats.done(t, Err(e.to_string()));
                        break;
                    }
                }
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || rdkafka::producer::Producer::flush(&p, Duration::from_secs(20))).await;
}

/// `log-batches --dir D --topic T`: batches and records of topic T in node data dir D.
pub(crate) fn log_batches(o: &Opts) -> Res<()> {
    o.check_known(&["dir", "topic"])?;
    let dir = std::path::PathBuf::from(o.req("dir")?);
    let topic = o.req("topic")?;
    let (mut batches, mut records) = (0u64, 0u64);
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(part) = name.strip_prefix(topic).and_then(|r| r.strip_prefix('-')) else { continue };
        if part.parse::<u32>().is_err() {
            continue;
        }
        for seg in std::fs::read_dir(entry.path())? {
            let seg = seg?.path();
            if seg.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let bytes = std::fs::read(&seg)?;
            let mut at = 0usize;
            // Batch v2: base offset i64, length i32 (after these 12 bytes), ..., record count
            // i32 at byte 57.
            while at + 61 <= bytes.len() {
                let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
                if len <= 0 {
                    break;
                }
                let count = i32::from_be_bytes(bytes[at + 57..at + 61].try_into().unwrap());
                let attrs = i16::from_be_bytes(bytes[at + 21..at + 23].try_into().unwrap());
                if attrs & 0x20 == 0 {
                    // Not a control batch.
                    batches += 1;
                    records += count.max(0) as u64;
                }
                at += 12 + len as usize;
            }
        }
    }
    let per = if batches > 0 { records as f64 / batches as f64 } else { 0.0 };
    println!("BATCHES topic={topic} batches={batches} records={records} per_batch={per:.1}");
    Ok(())
}
