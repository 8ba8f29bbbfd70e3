//! `ferrokafka-bench`: one client process per measurement, driven by `scripts/bench.sh`.
//!
//! ```text
//! ferrokafka-bench produce --client ferrokafka|rdkafka --bootstrap B --topic T
//!                          --records N --size S --compression none|lz4
//!                          [--acks all|1|0] [--idempotence true|false] [--linger-ms 5]
//!                          [--payloads K] [--runtime multi|current]            (ferrokafka)
//!                          [--rdkafka-producer threaded|base] [--prop key=value]... (rdkafka)
//! ferrokafka-bench create-topic --bootstrap B --topic T [--partitions 6] [--replication-factor 1]
//! ferrokafka-bench delete-topics --bootstrap B --topic T [--topic T2]...
//! ferrokafka-bench payload-file --size S [--payloads K] --out FILE
//! ferrokafka-bench txn-produce --client ferrokafka|rdkafka --bootstrap B --topic T
//!                          --records N --size S [--per-txn 1000] [--linger-ms 5]   (see txn_produce)
//! ferrokafka-bench eos-copy --bootstrap B --input T --output T2 --records N
//!                          [--max-poll-records 500] [--linger-ms 5] [--timeout-s 300]  (see eos_copy)
//! ferrokafka-bench latency --client ferrokafka|rdkafka --bootstrap B --topic T [--rate 3000]
//!                          [--await task|unordered|fifo] ...   (acknowledgement latency, latency.rs)
//! ferrokafka-bench log-batches --dir NODE_DATA_DIR --topic T      (records per stored batch)
//! ferrokafka-bench consume --client ferrokafka|rdkafka --bootstrap B --topic T --records N
//!                          [--partitions 6] [--size S] [--compression none|lz4] [--timeout-s 300]
//!                          [--runtime multi|current]                            (ferrokafka)
//!                          [--prop key=value]...                                (rdkafka)
//! ferrokafka-bench group --client ferrokafka|rdkafka --bootstrap B --topic T --records N
//!                          [--members 3] [--session-timeout-ms 10000] [--heartbeat-ms 1000] ...
//! ferrokafka-bench group-failover --client ferrokafka|rdkafka --bootstrap B --topic T
//!                          [--members 3] [--kill 0] [--rate 3000] [--events FILE] ...
//! ```
//!
//! ferrokafka's produce and consume connect with the security settings of these variables
//! (set by `scripts/bench.sh` for its `ferrokafka-sasl_ssl` client): `FERRO_SECURITY`
//! (`plaintext` default, or `sasl_ssl`), `FERRO_CA_PEM`, `FERRO_SASL_MECHANISM`
//! (`SCRAM-SHA-512` default, `SCRAM-SHA-256`, `PLAIN`), `FERRO_SASL_USER`,
//! `FERRO_SASL_PASSWORD`.
//!
//! `group` and `group-failover` (module `group`) measure a consumer group: M members in one
//! process draining a pre-filled topic (records/s; once the group has formed every member
//! rewinds its partitions to their start and the clock runs from then to the last distinct
//! record; the formation time is reported apart), and M member processes (`group-member`
//! children) of which one is SIGKILLed (seconds from the kill until every partition it
//! owned has delivered a record to a survivor). See `group.rs` for the details.
//!
//! `produce` sends N keyless records whose values are taken in turn from a pool of K
//! payloads (default K = 1: every record carries the same S bytes). Payloads are random
//! upper-case letters 'A'..'Z' from a fixed seed, the alphabet of the Java
//! `ProducerPerformance` tool; `payload-file` writes the very same pool, one payload a line,
//! for that tool's `--payload-file`, so all three clients send identical bytes.
//!
//! The clock starts just before the first send and stops at the last acknowledgement.
//! Outside it: producer setup, one warm-up record sent and acknowledged first (so topic
//! metadata and the idempotent producer id are in place for every client alike; it is not
//! counted in N), and close. The last line printed is
//!
//! ```text
//! RESULT client=.. records=.. size=.. compression=.. seconds=.. records_per_sec=.. mb_per_sec=..
//! ```
//!
//! where `mb_per_sec` is MiB (2^20 bytes) of record values per second, as the Java tool
//! counts its "MB/sec". Any failed record makes the process exit non-zero.
//!
//! `consume` reads a topic that holds exactly N records (written beforehand, e.g. with
//! `produce`) from offset 0 of partitions 0..P, in assign mode (no group membership). Outside
//! the clock: the consumer is created, the topic's metadata fetched and the partitions'
//! beginning and end offsets listed (which also connects to their leader, and checks that the
//! topic holds exactly N records), then the partitions are assigned. The clock runs from the
//! first poll to the N-th record. Every record's value length is summed (so nothing is
//! optimised away, and the total is checked against N x S when `--size` is given), and every
//! record's offset is checked to be the next of its partition (no gap, no duplicate). More or
//! fewer than N records (within `--timeout-s`, or in an extra 0.5 s poll after the N-th)
//! make the process exit non-zero. `--compression` is only a label for the RESULT line:
//! the data was compressed (or not) by whoever produced it. `size` in the RESULT line is the
//! mean value size received.

mod group;
mod latency;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// The repeatable `--prop key=value` options (librdkafka settings; rdkafka client only).
fn rdkafka_props(o: &Opts, client: Client) -> Res<Vec<(String, String)>> {
    let mut props = Vec::new();
    for p in o.all("prop") {
        let (k, v) = p.split_once('=').ok_or_else(|| format!("--prop '{p}' is not key=value"))?;
        props.push((k.to_string(), v.to_string()));
    }
    if client == Client::Ferrokafka && !props.is_empty() {
        return Err("--prop applies to --client rdkafka only".into());
    }
    Ok(props)
}

fn main() -> ExitCode {
    // RUST_LOG=ferrokafka=debug shows the client's own tracing on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrokafka-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:
  ferrokafka-bench produce --client ferrokafka|rdkafka --bootstrap B --topic T --records N --size S
                           --compression none|lz4 [--acks all|1|0] [--idempotence true|false]
                           [--linger-ms 5] [--payloads 1]
                           [--runtime multi|current]                                  (ferrokafka)
                           [--rdkafka-producer threaded|base] [--prop key=value]...   (rdkafka)
  ferrokafka-bench create-topic --bootstrap B --topic T [--partitions 6] [--replication-factor 1]
  ferrokafka-bench delete-topics --bootstrap B --topic T [--topic T2]...
  ferrokafka-bench payload-file --size S [--payloads 1] --out FILE
  ferrokafka-bench consume --client ferrokafka|rdkafka --bootstrap B --topic T --records N
                           [--partitions 6] [--size S] [--compression LABEL] [--timeout-s 300]
                           [--runtime multi|current]                                  (ferrokafka)
                           [--prop key=value]...                                      (rdkafka)
  ferrokafka-bench group --client ferrokafka|rdkafka --bootstrap B --topic T --records N
                           [--partitions 6] [--members 3] [--size S] [--compression LABEL]
                           [--timeout-s 300] [--session-timeout-ms 10000] [--heartbeat-ms 1000]
                           [--auto-commit-ms 5000] [--group G] [--prop key=value]...
  ferrokafka-bench group-failover --client ferrokafka|rdkafka --bootstrap B --topic T
                           [--partitions 6] [--members 3] [--kill 0] [--rate 3000] [--settle-s 6]
                           [--kill-delay-ms 0]
                           [--timeout-s 120] [--events FILE] [--session-timeout-ms 10000]
                           [--heartbeat-ms 1000] [--auto-commit-ms 5000] [--prop key=value]...
  ferrokafka-bench group-member ...   (a child process of group-failover)
  ferrokafka-bench txn-produce --client ferrokafka|rdkafka --bootstrap B --topic T --records N
                           --size S [--per-txn 1000] [--linger-ms 5]
  ferrokafka-bench eos-copy --bootstrap B --input T --output T2 --records N
                           [--max-poll-records 500] [--linger-ms 5] [--timeout-s 300]
  ferrokafka-bench latency --client ferrokafka|rdkafka --bootstrap B --topic T [--rate 3000]
                           [--seconds 15] [--producers 3] [--size 100] [--keys 1000]
                           [--await task|unordered|fifo] [--linger-ms 5] [--drain-s 20]
  ferrokafka-bench log-batches --dir NODE_DATA_DIR --topic T";

fn run(args: Vec<String>) -> Res<()> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    let opts = Opts::parse(rest)?;
    match cmd.as_str() {
        "produce" => produce(ProduceArgs::from_opts(&opts)?),
        "create-topic" => create_topic(&opts),
        "delete-topics" => delete_topics(&opts),
        "payload-file" => payload_file(&opts),
        "consume" => consume(ConsumeArgs::from_opts(&opts)?),
        "txn-produce" => txn_produce(&opts),
        "eos-copy" => eos_copy(&opts),
        "group" => group::group(&opts),
        "group-failover" => group::group_failover(&opts),
        "group-member" => group::group_member(&opts),
        "latency" => latency::latency(&opts),
        "log-batches" => latency::log_batches(&opts),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}").into()),
    }
}

// ---------------------------------------------------------------------------------------
// Argument parsing: `--name value` pairs; `--prop` may repeat.
// ---------------------------------------------------------------------------------------

struct Opts {
    pairs: Vec<(String, String)>,
}

impl Opts {
    fn parse(args: &[String]) -> Res<Opts> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument '{a}'\n{USAGE}").into());
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                    (name.to_string(), v.clone())
                }
            };
            pairs.push((name, value));
        }
        Ok(Opts { pairs })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, name: &str) -> Res<&str> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required\n{USAGE}").into())
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> Res<T> {
        match self.get(name) {
            Some(v) => v
                .replace('_', "")
                .parse()
                .map_err(|_| format!("--{name}: '{v}' is not a number").into()),
            None => default.ok_or_else(|| format!("--{name} is required\n{USAGE}").into()),
        }
    }

    fn check_known(&self, known: &[&str]) -> Res<()> {
        for (n, _) in &self.pairs {
            if !known.contains(&n.as_str()) {
                return Err(format!("unknown option --{n}\n{USAGE}").into());
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Client {
    Ferrokafka,
    Rdkafka,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Comp {
    None,
    Lz4,
}

impl Comp {
    fn name(self) -> &'static str {
        match self {
            Comp::None => "none",
            Comp::Lz4 => "lz4",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AcksArg {
    All,
    Leader,
    Zero,
}

struct ProduceArgs {
    client: Client,
    bootstrap: String,
    topic: String,
    records: u64,
    size: usize,
    compression: Comp,
    acks: AcksArg,
    idempotence: bool,
    linger_ms: u64,
    payloads: usize,
    multi_thread: bool,
    rdkafka_mode: RdkafkaMode,
    props: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RdkafkaMode {
    Base,
    Threaded,
}

impl ProduceArgs {
    fn from_opts(o: &Opts) -> Res<ProduceArgs> {
        o.check_known(&[
            "client",
            "bootstrap",
            "topic",
            "records",
            "size",
            "compression",
            "acks",
            "idempotence",
            "linger-ms",
            "payloads",
            "runtime",
            "rdkafka-producer",
            "prop",
        ])?;
        let client = match o.req("client")? {
            "ferrokafka" => Client::Ferrokafka,
            "rdkafka" | "librdkafka" => Client::Rdkafka,
            c => return Err(format!("--client: unknown client '{c}' (ferrokafka|rdkafka)").into()),
        };
        let compression = match o.get("compression").unwrap_or("none") {
            "none" => Comp::None,
            "lz4" => Comp::Lz4,
            c => {
                return Err(
                    format!("--compression: '{c}' is not supported here (none|lz4)").into(),
                );
            }
        };
        let acks = match o.get("acks").unwrap_or("all") {
            "all" | "-1" => AcksArg::All,
            "1" => AcksArg::Leader,
            "0" => AcksArg::Zero,
            a => return Err(format!("--acks: '{a}' (all|1|0)").into()),
        };
        let idempotence = match o.get("idempotence").unwrap_or("true") {
            "true" => true,
            "false" => false,
            v => return Err(format!("--idempotence: '{v}' (true|false)").into()),
        };
        let multi_thread = match o.get("runtime").unwrap_or("multi") {
            "multi" => true,
            "current" => false,
            v => return Err(format!("--runtime: '{v}' (multi|current)").into()),
        };
        let rdkafka_mode = match o.get("rdkafka-producer").unwrap_or("threaded") {
            "base" => RdkafkaMode::Base,
            "threaded" => RdkafkaMode::Threaded,
            v => return Err(format!("--rdkafka-producer: '{v}' (threaded|base)").into()),
        };
        let props = rdkafka_props(&o, client)?;
        let a = ProduceArgs {
            client,
            bootstrap: o.req("bootstrap")?.to_string(),
            topic: o.req("topic")?.to_string(),
            records: o.num("records", None)?,
            size: o.num("size", None)?,
            compression,
            acks,
            idempotence,
            linger_ms: o.num("linger-ms", Some(5))?,
            payloads: o.num("payloads", Some(1))?,
            multi_thread,
            rdkafka_mode,
            props,
        };
        if a.records == 0 || a.size == 0 || a.payloads == 0 {
            return Err("--records, --size and --payloads must be at least 1".into());
        }
        Ok(a)
    }
}

// ---------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------

/// K payloads of `size` random letters 'A'..'Z' (splitmix64 from a fixed seed): the same
/// bytes on every run and for every client.
fn make_payloads(size: usize, count: usize) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x5EED_F00D_CAFE_BABE;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|_| (0..size).map(|_| b'A' + (next() % 26) as u8).collect())
        .collect()
}

fn payload_file(o: &Opts) -> Res<()> {
    o.check_known(&["size", "payloads", "out"])?;
    let size: usize = o.num("size", None)?;
    let count: usize = o.num("payloads", Some(1))?;
    let out = o.req("out")?;
    let mut text = Vec::with_capacity((size + 1) * count);
    for p in make_payloads(size, count) {
        text.extend_from_slice(&p);
        text.push(b'\n');
    }
    std::fs::write(out, text)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

fn print_result(a: &ProduceArgs, client: &str, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let rps = a.records as f64 / secs;
    let mbps = (a.records as f64 * a.size as f64) / (1024.0 * 1024.0) / secs;
    println!(
        "RESULT client={client} records={} size={} compression={} seconds={secs:.3} records_per_sec={rps:.1} mb_per_sec={mbps:.2}",
        a.records,
        a.size,
        a.compression.name()
    );
}

fn produce(a: ProduceArgs) -> Res<()> {
    match a.client {
        Client::Ferrokafka => {
            let mut rt = if a.multi_thread {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            rt.enable_all().build()?.block_on(produce_ferrokafka(&a))
        }
        Client::Rdkafka => produce_rdkafka(&a),
    }
}

// ---------------------------------------------------------------------------------------
// ferrokafka
// ---------------------------------------------------------------------------------------

/// Delivery futures kept before the oldest is awaited. The oldest is, in practice, long
/// acknowledged by then, so this bounds memory without draining the pipeline.
const FERRO_WINDOW: usize = 100_000;

/// ferrokafka's connection settings for `bootstrap`, with TLS + SASL when `FERRO_SECURITY`
/// says `sasl_ssl` (see the module docs).
fn ferro_client(bootstrap: &str) -> Res<ferrokafka::ClientConfig> {
    use ferrokafka::{ClientConfig, Pem, SaslConfig, SecurityProtocol, TlsConfig};
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let c = ClientConfig::new(bootstrap);
    match env("FERRO_SECURITY").as_deref() {
        None | Some("plaintext") => Ok(c),
        Some("sasl_ssl") => {
            let ca = env("FERRO_CA_PEM").ok_or("FERRO_SECURITY=sasl_ssl needs FERRO_CA_PEM")?;
            let username = env("FERRO_SASL_USER").ok_or("FERRO_SECURITY=sasl_ssl needs FERRO_SASL_USER")?;
            let password = env("FERRO_SASL_PASSWORD").ok_or("FERRO_SECURITY=sasl_ssl needs FERRO_SASL_PASSWORD")?;
            let sasl = match env("FERRO_SASL_MECHANISM").as_deref().unwrap_or("SCRAM-SHA-512") {
                "SCRAM-SHA-512" => SaslConfig::ScramSha512 { username, password },
                "SCRAM-SHA-256" => SaslConfig::ScramSha256 { username, password },
                "PLAIN" => SaslConfig::Plain { username, password },
                m => return Err(format!("FERRO_SASL_MECHANISM: unknown mechanism {m}").into()),
            };
            Ok(c.security_protocol(SecurityProtocol::SaslSsl)
                .tls(TlsConfig { ca: Some(Pem::File(ca.into())), ..TlsConfig::default() })
                .sasl(sasl))
        }
        Some(o) => Err(format!("FERRO_SECURITY: '{o}' (plaintext|sasl_ssl)").into()),
    }
}

async fn produce_ferrokafka(a: &ProduceArgs) -> Res<()> {
    use bytes::Bytes;
    use ferrokafka::producer::{Acks, Compression, Producer, ProducerConfig, ProducerRecord};

    let payloads: Vec<Bytes> = make_payloads(a.size, a.payloads)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let mut cfg = ProducerConfig::from_client(ferro_client(&a.bootstrap)?);
    // FERRO_BATCH_SIZE (set by scripts/bench.sh from BENCH_BATCH_BYTES): batch.size.
    if let Some(b) = std::env::var("FERRO_BATCH_SIZE").ok().filter(|b| !b.is_empty()) {
        cfg = cfg.batch_size(b.parse()?);
    }
    let cfg = cfg
        .acks(match a.acks {
            AcksArg::All => Acks::All,
            AcksArg::Leader => Acks::Leader,
            AcksArg::Zero => Acks::Zero,
        })
        .enable_idempotence(a.idempotence)
        .linger(Duration::from_millis(a.linger_ms))
        .compression(match a.compression {
            Comp::None => Compression::None,
            Comp::Lz4 => Compression::Lz4,
        });
    eprintln!("ferrokafka: {cfg:?}");
    let producer = Producer::new(cfg).await?;

    let mut pending = VecDeque::with_capacity(FERRO_WINDOW + 1);
    let mut failed: u64 = 0;
    let mut first_error: Option<String> = None;
    let mut note = |r: ferrokafka::Result<_>| {
        if let Err(e) = r {
            failed += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
    };
    let k = payloads.len();
    // Warm-up, outside the clock: one record sent and acknowledged, so the topic's metadata
    // is known (the producer id was obtained in `Producer::new`).
    producer
        .send(ProducerRecord::new(a.topic.as_str()).value(payloads[0].clone()))
        .await?
        .await?;
    let start = Instant::now();
    for i in 0..a.records {
        let value = payloads[(i % k as u64) as usize].clone();
        let fut = producer
            .send(ProducerRecord::new(a.topic.as_str()).value(value))
            .await?;
        pending.push_back(fut);
        if pending.len() > FERRO_WINDOW {
            note(pending.pop_front().expect("non-empty").await);
        }
    }
    while let Some(fut) = pending.pop_front() {
        note(fut.await);
    }
    let elapsed = start.elapsed();
    producer.close(Duration::from_secs(30)).await?;
    if failed > 0 {
        return Err(format!(
            "{failed} of {} records failed; first error: {}",
            a.records,
            first_error.unwrap_or_default()
        )
        .into());
    }
    print_result(a, "ferrokafka", elapsed);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// librdkafka (rdkafka crate)
// ---------------------------------------------------------------------------------------

/// Counts delivery reports; remembers when the last one arrived.
struct DeliveryCounter {
    total: u64,
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    last_ack: Mutex<Option<Instant>>,
}

impl rdkafka::ClientContext for DeliveryCounter {}

impl rdkafka::producer::ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        let done = match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed) + 1 + self.failed.load(Ordering::Relaxed)
            }
            Err((e, _)) => {
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
                self.failed.fetch_add(1, Ordering::Relaxed) + 1 + self.ok.load(Ordering::Relaxed)
            }
        };
        if done == self.total {
            *self.last_ack.lock().unwrap() = Some(Instant::now());
        }
    }
}

fn produce_rdkafka(a: &ProduceArgs) -> Res<()> {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, ThreadedProducer};

    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &a.bootstrap)
        .set(
            "acks",
            match a.acks {
                AcksArg::All => "all",
                AcksArg::Leader => "1",
                AcksArg::Zero => "0",
            },
        )
        .set(
            "enable.idempotence",
            if a.idempotence { "true" } else { "false" },
        )
        .set("linger.ms", a.linger_ms.to_string())
        .set("compression.type", a.compression.name());
    for (k, v) in &a.props {
        cfg.set(k, v);
    }
    eprintln!(
        "rdkafka: librdkafka {} ({:?} producer) config {:?}",
        rdkafka::util::get_rdkafka_version().1,
        a.rdkafka_mode,
        cfg.config_map()
    );
    let ctx = DeliveryCounter {
        total: a.records + 1, // + the warm-up record
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
        last_ack: Mutex::new(None),
    };
    match a.rdkafka_mode {
        RdkafkaMode::Base => {
            let p: BaseProducer<DeliveryCounter> = cfg.create_with_context(ctx)?;
            rdkafka_run(a, &RdBase(p))
        }
        RdkafkaMode::Threaded => {
            let p: ThreadedProducer<DeliveryCounter> = cfg.create_with_context(ctx)?;
            rdkafka_run(a, &RdThreaded(p))
        }
    }
}

/// The two ways of driving librdkafka from Rust without a per-record allocation.
trait RdProducer {
    fn send_payload(&self, topic: &str, payload: &[u8]) -> Result<(), rdkafka::error::KafkaError>;
    /// Serves the delivery reports that are ready, without blocking.
    fn serve(&self);
    fn counter(&self) -> &DeliveryCounter;
    fn flush(&self) -> Res<()>;
}

impl DeliveryCounter {
    fn done(&self) -> u64 {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// `BaseProducer`: the application thread serves delivery reports itself with `poll`.
struct RdBase(rdkafka::producer::BaseProducer<DeliveryCounter>);

impl RdProducer for RdBase {
    fn send_payload(&self, topic: &str, payload: &[u8]) -> Result<(), rdkafka::error::KafkaError> {
        self.0
            .send(rdkafka::producer::BaseRecord::<(), [u8]>::to(topic).payload(payload))
            .map_err(|(e, _)| e)
    }
    fn serve(&self) {
        // `poll(0)` serves at most one event (one event carries the reports of a whole
        // produce response). Every event of a producer's main queue is a delivery report
        // unless an error occurs, so stop when one call no longer advances the count.
        let c = self.counter();
        loop {
            let before = c.done();
            self.0.poll(Duration::ZERO);
            if c.done() == before {
                break;
            }
        }
    }
    fn counter(&self) -> &DeliveryCounter {
        rdkafka::producer::Producer::context(&self.0)
    }
    fn flush(&self) -> Res<()> {
        use rdkafka::producer::Producer;
        Ok(self.0.flush(Duration::from_secs(30))?)
    }
}

/// `ThreadedProducer`: rdkafka's own background thread serves delivery reports.
struct RdThreaded(rdkafka::producer::ThreadedProducer<DeliveryCounter>);

impl RdProducer for RdThreaded {
    fn send_payload(&self, topic: &str, payload: &[u8]) -> Result<(), rdkafka::error::KafkaError> {
        self.0
            .send(rdkafka::producer::BaseRecord::<(), [u8]>::to(topic).payload(payload))
            .map_err(|(e, _)| e)
    }
    fn serve(&self) {}
    fn counter(&self) -> &DeliveryCounter {
        rdkafka::producer::Producer::context(&self.0)
    }
    fn flush(&self) -> Res<()> {
        use rdkafka::producer::Producer;
        Ok(self.0.flush(Duration::from_secs(30))?)
    }
}

/// Waits (without spinning) until `cond` holds, serving delivery reports.
///
/// Not `BaseProducer::poll(timeout)`: it keeps polling until the whole timeout has passed
/// even after reports came, and spins through the last millisecond (librdkafka takes whole
/// milliseconds, and rdkafka rounds the remainder down to 0), which would bill the client
/// for CPU that its real use does not burn.
fn rd_wait(
    p: &impl RdProducer,
    deadline: Instant,
    what: &str,
    cond: impl Fn(&DeliveryCounter) -> bool,
) -> Res<()> {
    loop {
        p.serve();
        if cond(p.counter()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn rdkafka_run(a: &ProduceArgs, p: &impl RdProducer) -> Res<()> {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    let payloads = make_payloads(a.size, a.payloads);
    let k = payloads.len();
    let topic = a.topic.as_str();
    let ctx = p.counter();
    // Warm-up, outside the clock: one record sent and acknowledged, so the topic's metadata
    // is known and the idempotent producer has its producer id (librdkafka asks for it on a
    // timer, about 0.5 s after start).
    p.send_payload(topic, &payloads[0])
        .map_err(|e| format!("warm-up send failed: {e}"))?;
    rd_wait(
        p,
        Instant::now() + Duration::from_secs(60),
        "the warm-up record",
        |c| c.done() >= 1,
    )?;
    if let Some(e) = ctx.first_error.lock().unwrap().clone() {
        return Err(format!("warm-up record failed: {e}").into());
    }

    let start = Instant::now();
    let deadline = start + Duration::from_secs(300);
    for i in 0..a.records {
        let payload: &[u8] = &payloads[(i % k as u64) as usize];
        loop {
            match p.send_payload(topic, payload) {
                Ok(()) => break,
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    // The local queue (queue.buffering.max.*) is full: wait for delivery
                    // reports to free room, then retry.
                    let seen = ctx.done();
                    rd_wait(p, deadline, "room in librdkafka's queue", |c| {
                        c.done() > seen
                    })?;
                }
                Err(e) => return Err(format!("send of record {i} failed: {e}").into()),
            }
        }
        // BaseProducer: serve delivery reports as they come, as librdkafka's docs advise
        // (poll after each produce call, without blocking). ThreadedProducer: nothing.
        p.serve();
    }
    rd_wait(p, deadline, "the last acknowledgements", |c| {
        c.done() >= c.total
    })?;
    let elapsed = ctx
        .last_ack
        .lock()
        .unwrap()
        .map(|t| t - start)
        .unwrap_or_else(|| start.elapsed());
    p.flush()?;
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!(
            "{failed} of {} records failed; first error: {}",
            a.records,
            ctx.first_error.lock().unwrap().clone().unwrap_or_default()
        )
        .into());
    }
    print_result(a, "rdkafka", elapsed);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// consume
// ---------------------------------------------------------------------------------------

struct ConsumeArgs {
    client: Client,
    bootstrap: String,
    topic: String,
    records: u64,
    partitions: i32,
    size: Option<u64>,
    compression: String,
    timeout: Duration,
    multi_thread: bool,
    props: Vec<(String, String)>,
}

impl ConsumeArgs {
    fn from_opts(o: &Opts) -> Res<ConsumeArgs> {
        o.check_known(&[
            "client",
            "bootstrap",
            "topic",
            "records",
            "partitions",
            "size",
            "compression",
            "timeout-s",
            "runtime",
            "prop",
        ])?;
        let client = match o.req("client")? {
            "ferrokafka" => Client::Ferrokafka,
            "rdkafka" | "librdkafka" => Client::Rdkafka,
            c => return Err(format!("--client: unknown client '{c}' (ferrokafka|rdkafka)").into()),
        };
        let multi_thread = match o.get("runtime").unwrap_or("multi") {
            "multi" => true,
            "current" => false,
            v => return Err(format!("--runtime: '{v}' (multi|current)").into()),
        };
        let props = rdkafka_props(&o, client)?;
        let a = ConsumeArgs {
            client,
            bootstrap: o.req("bootstrap")?.to_string(),
            topic: o.req("topic")?.to_string(),
            records: o.num("records", None)?,
            partitions: o.num("partitions", Some(6))?,
            size: match o.get("size") {
                Some(_) => Some(o.num("size", None)?),
                None => None,
            },
            compression: o.get("compression").unwrap_or("?").to_string(),
            timeout: Duration::from_secs(o.num("timeout-s", Some(300))?),
            multi_thread,
            props,
        };
        if a.records == 0 || a.partitions < 1 {
            return Err("--records and --partitions must be at least 1".into());
        }
        Ok(a)
    }
}

/// What the timed loop saw, checked the same way for both Rust clients.
struct Tally {
    /// The next expected offset of each partition.
    next: Vec<i64>,
    records: u64,
    bytes: u64,
}

impl Tally {
    fn new(begin: Vec<i64>) -> Tally {
        Tally { next: begin, records: 0, bytes: 0 }
    }

    /// One record: its offset must be the next of its partition; its value length is summed.
    #[inline]
    fn record(&mut self, partition: i32, offset: i64, value_len: usize) -> Res<()> {
        let Some(next) = self.next.get_mut(partition as usize) else {
            return Err(format!("record from unexpected partition {partition}").into());
        };
        if offset != *next {
            return Err(format!(
                "partition {partition}: got offset {offset}, expected {} ({})",
                *next,
                if offset < *next { "duplicate" } else { "gap" }
            )
            .into());
        }
        *next += 1;
        self.records += 1;
        self.bytes += value_len as u64;
        Ok(())
    }

    fn finish(&self, a: &ConsumeArgs, client: &str, elapsed: Duration) -> Res<()> {
        if self.records != a.records {
            return Err(format!("received {} records, expected {}", self.records, a.records).into());
        }
        if let Some(s) = a.size {
            if self.bytes != a.records * s {
                return Err(format!(
                    "received {} value bytes, expected {} x {s} = {}",
                    self.bytes,
                    a.records,
                    a.records * s
                )
                .into());
            }
        }
        let secs = elapsed.as_secs_f64();
        let rps = self.records as f64 / secs;
        let mbps = self.bytes as f64 / (1024.0 * 1024.0) / secs;
        println!(
            "RESULT client={client} records={} size={} compression={} seconds={secs:.3} records_per_sec={rps:.1} mb_per_sec={mbps:.2}",
            self.records,
            (self.bytes as f64 / self.records as f64).round() as u64,
            a.compression
        );
        Ok(())
    }
}

/// Checks that the topic holds exactly N records in partitions 0..P.
fn expect_records(a: &ConsumeArgs, begin: &[i64], end: &[i64]) -> Res<()> {
    let total: i64 = begin.iter().zip(end).map(|(b, e)| e - b).sum();
    if total != a.records as i64 {
        return Err(format!(
            "topic {} holds {total} records in partitions 0..{} (begin {begin:?}, end {end:?}), expected {}",
            a.topic, a.partitions, a.records
        )
        .into());
    }
    Ok(())
}

fn consume(a: ConsumeArgs) -> Res<()> {
    match a.client {
        Client::Ferrokafka => {
            let mut rt = if a.multi_thread {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            rt.enable_all().build()?.block_on(consume_ferrokafka(&a))
        }
        Client::Rdkafka => consume_rdkafka(&a),
    }
}

async fn consume_ferrokafka(a: &ConsumeArgs) -> Res<()> {
    use ferrokafka::consumer::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};

    let cfg = ConsumerConfig::from_client(ferro_client(&a.bootstrap)?).auto_offset_reset(OffsetReset::Earliest);
    eprintln!("ferrokafka: {cfg:?}");
    let consumer = Consumer::new(cfg).await?;
    let tps: Vec<TopicPartition> = (0..a.partitions)
        .map(|p| TopicPartition::new(a.topic.as_str(), p))
        .collect();
    // Warm-up, outside the clock: metadata, a connection to the leader, and the check that
    // the topic holds exactly N records.
    let begins = consumer.beginning_offsets(&tps).await?;
    let ends = consumer.end_offsets(&tps).await?;
    let get = |m: &std::collections::HashMap<TopicPartition, i64>, tp: &TopicPartition| {
        m.get(tp).copied().ok_or_else(|| format!("no offset listed for {tp}"))
    };
    let begin = tps.iter().map(|tp| get(&begins, tp)).collect::<Result<Vec<_>, _>>()?;
    let end = tps.iter().map(|tp| get(&ends, tp)).collect::<Result<Vec<_>, _>>()?;
    expect_records(a, &begin, &end)?;
    consumer.assign(tps)?;

    let mut tally = Tally::new(begin);
    let start = Instant::now();
    let deadline = start + a.timeout;
    while tally.records < a.records {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "timed out after {:?} with {} of {} records",
                a.timeout, tally.records, a.records
            )
            .into());
        }
        let batch = consumer
            .poll((deadline - now).min(Duration::from_secs(1)))
            .await?;
        for r in &batch {
            tally.record(r.partition, r.offset, r.value.as_ref().map_or(0, |v| v.len()))?;
        }
    }
    let elapsed = start.elapsed();
    // Nothing may follow the N-th record.
    let extra = consumer.poll(Duration::from_millis(500)).await?;
    if !extra.is_empty() {
        return Err(format!("{} records more than the {} expected", extra.len(), a.records).into());
    }
    consumer.close().await?;
    tally.finish(a, "ferrokafka", elapsed)
}

fn consume_rdkafka(a: &ConsumeArgs) -> Res<()> {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};

    let mut cfg = ClientConfig::new();
    // What assign mode needs: a group id (rdkafka's consumer queue needs one; it is never
    // joined, as nothing subscribes) and no automatic commits. Everything else at
    // librdkafka's defaults; the start offset is given in the assignment.
    cfg.set("bootstrap.servers", &a.bootstrap)
        .set("group.id", format!("ferrokafka-bench-{}", a.topic))
        .set("enable.auto.commit", "false");
    for (k, v) in &a.props {
        cfg.set(k, v);
    }
    eprintln!(
        "rdkafka: librdkafka {} (BaseConsumer) config {:?}",
        rdkafka::util::get_rdkafka_version().1,
        cfg.config_map()
    );
    let consumer: BaseConsumer = cfg.create()?;
    // Warm-up, outside the clock: metadata, a connection to the leader, and the check that
    // the topic holds exactly N records.
    let md = consumer.fetch_metadata(Some(&a.topic), Duration::from_secs(30))?;
    let parts = md
        .topics()
        .iter()
        .find(|t| t.name() == a.topic)
        .map_or(0, |t| t.partitions().len());
    if parts < a.partitions as usize {
        return Err(format!("topic {} has {parts} partitions, expected {}", a.topic, a.partitions).into());
    }
    let mut begin = Vec::new();
    let mut end = Vec::new();
    for p in 0..a.partitions {
        let (lo, hi) = consumer.fetch_watermarks(&a.topic, p, Duration::from_secs(30))?;
        begin.push(lo);
        end.push(hi);
    }
    expect_records(a, &begin, &end)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..a.partitions {
        tpl.add_partition_offset(&a.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;

    let mut tally = Tally::new(begin);
    let start = Instant::now();
    let deadline = start + a.timeout;
    while tally.records < a.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                tally.record(m.partition(), m.offset(), m.payload().map_or(0, <[u8]>::len))?;
            }
            Some(Err(e)) => return Err(format!("consume error: {e}").into()),
            None => {
                if Instant::now() >= deadline {
                    return Err(format!(
                        "timed out after {:?} with {} of {} records",
                        a.timeout, tally.records, a.records
                    )
                    .into());
                }
            }
        }
    }
    let elapsed = start.elapsed();
    // Nothing may follow the N-th record.
    let extra_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra_until {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                return Err(format!(
                    "a record more than the {} expected: partition {} offset {}",
                    a.records,
                    m.partition(),
                    m.offset()
                )
                .into());
            }
            Some(Err(e)) => return Err(format!("consume error: {e}").into()),
            None => {}
        }
    }
    tally.finish(a, "rdkafka", elapsed)
}

// ---------------------------------------------------------------------------------------
// create-topic (ferrokafka's admin client)
// ---------------------------------------------------------------------------------------

fn create_topic(o: &Opts) -> Res<()> {
    use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};

    o.check_known(&["bootstrap", "topic", "partitions", "replication-factor"])?;
    let bootstrap = o.req("bootstrap")?.to_string();
    let topic = o.req("topic")?.to_string();
    let partitions: i32 = o.num("partitions", Some(6))?;
    let rf: i16 = o.num("replication-factor", Some(1))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let admin = AdminClient::new(AdminConfig::new(&bootstrap)).await?;
        admin
            .create_topic(NewTopic::new(topic.as_str(), partitions, rf))
            .await?;
        // Wait until every partition has a leader, so no client's clock includes that.
        let start = Instant::now();
        loop {
            let ready = match admin.describe_topics([topic.as_str()]).await {
                Ok(d) => d.iter().any(|t| {
                    t.name == topic
                        && t.partitions.len() == partitions as usize
                        && t.partitions.iter().all(|p| p.leader.is_some())
                }),
                Err(_) => false,
            };
            if ready {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err::<(), BoxError>(
                    format!("topic {topic} has no leaders after 30 s").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    })
}

fn delete_topics(o: &Opts) -> Res<()> {
    use ferrokafka::admin::{AdminClient, AdminConfig};

    o.check_known(&["bootstrap", "topic"])?;
    let bootstrap = o.req("bootstrap")?.to_string();
    let topics: Vec<String> = o.all("topic").map(str::to_string).collect();
    if topics.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let admin = AdminClient::new(AdminConfig::new(&bootstrap)).await?;
        let mut failed = Vec::new();
        for t in admin.delete_topics(&topics).await? {
            if let Err(e) = t.result {
                failed.push(format!("{}: {e}", t.name));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err::<(), BoxError>(failed.join("; ").into())
        }
    })
}

// ---------------------------------------------------------------------------------------
// txn-produce: transactional produce throughput (kept apart from `produce` on purpose)
// ---------------------------------------------------------------------------------------
//
// ferrokafka-bench txn-produce --client ferrokafka|rdkafka --bootstrap B --topic T
//                              --records N --size S [--per-txn 1000] [--linger-ms 5]
//
// N keyless records of S bytes (the same payload pool as `produce`, K = 1) in transactions
// of --per-txn records each: begin, send them all, commit (the commit waits for every
// record). Outside the clock: producer setup, init_transactions and one warm-up
// transaction of one record. The clock runs from the first begin to the last commit's
// return. Prints the usual RESULT line with `compression=none` and `per_txn=..` appended.

fn txn_produce(o: &Opts) -> Res<()> {
    o.check_known(&["client", "bootstrap", "topic", "records", "size", "per-txn", "linger-ms"])?;
    let client = match o.req("client")? {
        "ferrokafka" => Client::Ferrokafka,
        "rdkafka" | "librdkafka" => Client::Rdkafka,
        c => return Err(format!("--client: unknown client '{c}' (ferrokafka|rdkafka)").into()),
    };
    let records: u64 = o.num("records", None)?;
    let size: usize = o.num("size", None)?;
    let per_txn: u64 = o.num("per-txn", Some(1000))?;
    let linger_ms: u64 = o.num("linger-ms", Some(5))?;
    if records == 0 || size == 0 || per_txn == 0 {
        return Err("--records, --size and --per-txn must be at least 1".into());
    }
    let (bootstrap, topic) = (o.req("bootstrap")?.to_string(), o.req("topic")?.to_string());
    let payload = make_payloads(size, 1).remove(0);
    let txn_id = format!("ferrokafka-bench-txn-{}", std::process::id());
    let elapsed = match client {
        Client::Ferrokafka => tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(
            txn_produce_ferrokafka(&bootstrap, &topic, &txn_id, records, per_txn, linger_ms, payload),
        )?,
        Client::Rdkafka => txn_produce_rdkafka(&bootstrap, &topic, &txn_id, records, per_txn, linger_ms, &payload)?,
    };
    let secs = elapsed.as_secs_f64();
    println!(
        "RESULT client={} records={records} size={size} compression=none seconds={secs:.3} records_per_sec={:.1} mb_per_sec={:.2} per_txn={per_txn}",
        if client == Client::Ferrokafka { "ferrokafka" } else { "rdkafka" },
        records as f64 / secs,
        (records as f64 * size as f64) / (1024.0 * 1024.0) / secs,
    );
    Ok(())
}

async fn txn_produce_ferrokafka(
    bootstrap: &str,
    topic: &str,
    txn_id: &str,
    records: u64,
    per_txn: u64,
    linger_ms: u64,
    payload: Vec<u8>,
) -> Res<Duration> {
    use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
    let payload = bytes::Bytes::from(payload);
    let mut cfg = ProducerConfig::new(bootstrap).transactional_id(txn_id).linger(Duration::from_millis(linger_ms));
    if let Some(b) = std::env::var("FERRO_BATCH_SIZE").ok().filter(|b| !b.is_empty()) {
        cfg = cfg.batch_size(b.parse()?);
    }
    let producer = Producer::new(cfg).await?;
    let t = Duration::from_secs(60);
    producer.init_transactions(t).await?;
    // Warm-up transaction: metadata and the coordinator connection are in place.
    producer.begin_transaction()?;
    producer.send(ProducerRecord::new(topic).value(payload.clone())).await?.await?;
    producer.commit_transaction(t).await?;
    let start = Instant::now();
    let mut sent = 0;
    while sent < records {
        producer.begin_transaction()?;
        let n = per_txn.min(records - sent);
        for _ in 0..n {
            // Not awaited one by one: commit_transaction waits for them all and fails if
            // any failed.
            drop(producer.send(ProducerRecord::new(topic).value(payload.clone())).await?);
        }
        producer.commit_transaction(t).await?;
        sent += n;
    }
    let elapsed = start.elapsed();
    eprintln!("ferrokafka: transaction protocol v{:?}", producer.transaction_protocol_version());
    producer.close(Duration::from_secs(30)).await?;
    Ok(elapsed)
}

fn txn_produce_rdkafka(
    bootstrap: &str,
    topic: &str,
    txn_id: &str,
    records: u64,
    per_txn: u64,
    linger_ms: u64,
    payload: &[u8],
) -> Res<Duration> {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    use rdkafka::util::Timeout;

    let p: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", txn_id)
        .set("linger.ms", linger_ms.to_string())
        .create()?;
    let t = Timeout::After(Duration::from_secs(60));
    p.init_transactions(t)?;
    let send = |p: &ThreadedProducer<_>| -> Res<()> {
        loop {
            match p.send(BaseRecord::<(), [u8]>::to(topic).payload(payload)) {
                Ok(()) => return Ok(()),
                Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    };
    p.begin_transaction()?;
    send(&p)?;
    p.commit_transaction(t)?;
    let start = Instant::now();
    let mut sent = 0;
    while sent < records {
        p.begin_transaction()?;
        let n = per_txn.min(records - sent);
        for _ in 0..n {
            send(&p)?;
        }
        // Flushes, and fails if any record of the transaction failed.
        p.commit_transaction(t)?;
        sent += n;
    }
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------------------
// eos-copy: end-to-end exactly-once copy throughput of txn::ExactlyOncePipeline
// ---------------------------------------------------------------------------------------
//
// ferrokafka-bench eos-copy --bootstrap B --input T --output T2 --records N
//                           [--max-poll-records 500] [--linger-ms 5] [--timeout-s 300]
//
// T holds exactly N records (scripts/bench.sh fills it with `produce` beforehand). ONE
// ExactlyOncePipeline (a group consumer with a fresh group id, read_committed, no
// auto-commit, earliest; a transactional producer) copies every record unchanged (key,
// value, same partition) to T2: one transaction per `run_once` (one poll, at most
// --max-poll-records records), the input offsets committed in it. The clock runs from the
// first run_once (so it includes the group join and the first fetch) to the return of the
// run_once whose commit brings the committed count to N. Prints a RESULT line with the
// number of committed transactions (and aborted ones, expected 0).

fn eos_copy(o: &Opts) -> Res<()> {
    o.check_known(&["bootstrap", "input", "output", "records", "max-poll-records", "linger-ms", "timeout-s"])?;
    let bootstrap = o.req("bootstrap")?.to_string();
    let (input, output) = (o.req("input")?.to_string(), o.req("output")?.to_string());
    let records: u64 = o.num("records", None)?;
    let max_poll: usize = o.num("max-poll-records", Some(500))?;
    let linger_ms: u64 = o.num("linger-ms", Some(5))?;
    let timeout_s: u64 = o.num("timeout-s", Some(300))?;
    if records == 0 || max_poll == 0 {
        return Err("--records and --max-poll-records must be at least 1".into());
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
        use ferrokafka::consumer::{Consumer, ConsumerConfig, IsolationLevel, OffsetReset};
        use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
        use ferrokafka::txn::ExactlyOncePipeline;
        let pid = std::process::id();
        let consumer = Consumer::new(
            ConsumerConfig::from_client(ferro_client(&bootstrap)?)
                .group_id(format!("ferrokafka-bench-eos-{pid}"))
                .isolation_level(IsolationLevel::ReadCommitted)
                .enable_auto_commit(false)
                .auto_offset_reset(OffsetReset::Earliest)
                .max_poll_records(max_poll),
        )
        .await?;
        consumer.subscribe([input.as_str()]).await?;
        let producer = Producer::new(
            ProducerConfig::from_client(ferro_client(&bootstrap)?)
                .transactional_id(format!("ferrokafka-bench-eos-{pid}"))
                .linger(Duration::from_millis(linger_ms)),
        )
        .await?;
        let pipeline = ExactlyOncePipeline::new(consumer, producer).await?;
        let deadline = Instant::now() + Duration::from_secs(timeout_s);
        let (mut copied, mut txns, mut aborted) = (0u64, 0u64, 0u64);
        // Value bytes handed to the producer (aborted batches are re-read and counted again;
        // only used for the RESULT line's size and MiB/s).
        let (mut bytes, mut seen) = (0u64, 0u64);
        let start = Instant::now();
        while copied < records {
            if Instant::now() > deadline {
                return Err(format!("eos-copy: only {copied} of {records} records committed in {timeout_s} s").into());
            }
            let out = pipeline
                .run_once(|r| {
                    bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
                    seen += 1;
                    vec![ProducerRecord {
                        topic: output.clone(),
                        partition: Some(r.partition),
                        key: r.key.clone(),
                        value: r.value.clone(),
                        ..Default::default()
                    }]
                })
                .await?;
            if out.committed {
                copied += out.consumed as u64;
                txns += 1;
            } else if out.consumed > 0 {
                aborted += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        pipeline.close().await?;
        if copied != records {
            return Err(format!("eos-copy: {copied} records committed, expected exactly {records}").into());
        }
        println!(
            "RESULT client=ferrokafka-eos records={records} size={} compression=none seconds={secs:.3} records_per_sec={:.1} mb_per_sec={:.2} transactions={txns} aborted={aborted} records_per_txn={:.1}",
            bytes / seen.max(1),
            records as f64 / secs,
            bytes as f64 / (1024.0 * 1024.0) / secs,
            records as f64 / txns.max(1) as f64,
        );
        Ok(())
    })
}
