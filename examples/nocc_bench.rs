//! What the no-C-compiler build costs (issue 12): the zstd C library against ruzstd, and
//! rustls on ring against graviola. Not a test and not part of the library; the figures and
//! how they were taken are in BENCHMARKS.md, "Build without a C compiler".
//!
//! ```sh
//! cargo run --release --example nocc_bench --features pure-rust            # both parts
//! cargo run --release --example nocc_bench --features pure-rust -- zstd 5  # zstd only, 5 runs
//! cargo run --release --example nocc_bench --features pure-rust -- tls 5   # TLS only
//! ```
//!
//! zstd: batches of about 1 MiB of Kafka v2 records (varint-framed, as the producer writes a
//! batch's records section) whose values are JSON-like objects with random fields, so nothing
//! repeats beyond what real events share (field names, vocabularies, digits). Each
//! implementation compresses every batch (C at levels 3, the Java client's default, and 1;
//! ruzstd at its one level) and each decoder decodes every frame. TLS: an in-process rustls
//! server on ring at 127.0.0.1, the client on ring or on graviola; sequential full handshakes
//! (new TCP connection, no resumption) and a one-way bulk transfer through one connection.
//! Every figure is the median of the runs.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngExt;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MIB: usize = 1 << 20;

// --- payload ----------------------------------------------------------------------------------

/// The payload's generator: rand's seeded StdRng, so every run compresses the same data.
struct Rng(rand::rngs::StdRng);

impl Rng {
    fn seeded(seed: u64) -> Rng {
        Rng(rand::SeedableRng::seed_from_u64(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.random()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

const EVENTS: &[&str] = &["page_view", "click", "add_to_cart", "checkout", "login", "logout", "search", "refund"];
const COUNTRIES: &[&str] = &["DE", "FR", "US", "BR", "IN", "JP", "NG", "SE", "CA", "MX", "ES", "IT"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/125.0",
    "okhttp/4.12.0",
];
const WORDS: &[&str] = &[
    "red", "blue", "large", "small", "shoe", "jacket", "lamp", "desk", "organic", "coffee", "tea", "phone", "case",
    "cable", "usb", "wireless", "charger", "book", "novel", "kids", "garden", "tool", "set", "pro", "mini",
];

/// One JSON-like event with random fields.
fn event(rng: &mut Rng, ts: u64) -> Vec<u8> {
    let words: Vec<&str> = (0..1 + rng.below(5)).map(|_| rng.pick(WORDS)).collect();
    format!(
        "{{\"event_id\":\"{:016x}{:016x}\",\"type\":\"{}\",\"ts\":{},\"user_id\":{},\"session\":\"{:012x}\",\
         \"country\":\"{}\",\"ua\":\"{}\",\"amount\":{}.{:02},\"items\":{},\"query\":\"{}\",\"ip\":\"{}.{}.{}.{}\"}}",
        rng.next(),
        rng.next(),
        rng.pick(EVENTS),
        ts,
        rng.below(10_000_000),
        rng.next() & 0xFFFF_FFFF_FFFF,
        rng.pick(COUNTRIES),
        rng.pick(AGENTS),
        rng.below(100_000),
        rng.below(100),
        rng.below(12),
        words.join(" "),
        rng.below(256),
        rng.below(256),
        rng.below(256),
        rng.below(256),
    )
    .into_bytes()
}

/// A batch's records section of about `size` bytes: v2 records (length, attributes,
/// timestamp delta, offset delta, key, value, no headers), keyed by user.
fn records_section(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 1024);
    let mut i = 0i64;
    let base_ts = 1_764_000_000_000u64;
    while out.len() < size {
        let ts = base_ts + i as u64 * 3 + rng.below(3);
        let value = event(rng, ts);
        let key = format!("user-{}", rng.below(10_000_000)).into_bytes();
        let mut body = vec![0u8]; // attributes
        varint(&mut body, i * 3); // timestamp delta
        varint(&mut body, i); // offset delta
        varint(&mut body, key.len() as i64);
        body.extend_from_slice(&key);
        varint(&mut body, value.len() as i64);
        body.extend_from_slice(&value);
        varint(&mut body, 0); // headers
        varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
        i += 1;
    }
    out
}

// --- zstd ---------------------------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

fn c_compress(batches: &[Vec<u8>], level: i32) -> (Vec<Vec<u8>>, Duration) {
    // One context reused across batches, as the producer does (a thread-local context).
    let mut cctx = zstd::bulk::Compressor::new(level).unwrap();
    let start = Instant::now();
    let out = batches.iter().map(|b| cctx.compress(b).unwrap()).collect();
    (out, start.elapsed())
}

fn pure_compress(batches: &[Vec<u8>]) -> (Vec<Vec<u8>>, Duration) {
    let start = Instant::now();
    let out = batches
        .iter()
        .map(|b| {
            let mut v = Vec::with_capacity(b.len() / 2);
            let mut enc = ruzstd::encoding::FrameCompressor::new(ruzstd::encoding::CompressionLevel::Fastest);
            enc.set_source(b.as_slice());
            enc.set_drain(&mut v);
            enc.compress();
            v
        })
        .collect();
    (out, start.elapsed())
}

fn c_decompress(frames: &[Vec<u8>], originals: &[Vec<u8>]) -> Duration {
    let start = Instant::now();
    for (f, o) in frames.iter().zip(originals) {
        let mut dec = zstd::stream::read::Decoder::with_buffer(f.as_slice()).unwrap();
        let mut out = Vec::with_capacity(o.len());
        dec.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), o.len());
    }
    start.elapsed()
}

fn pure_decompress(frames: &[Vec<u8>], originals: &[Vec<u8>]) -> Duration {
    let start = Instant::now();
    for (f, o) in frames.iter().zip(originals) {
        let mut src = f.as_slice();
        let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut src).unwrap();
        let mut out = Vec::with_capacity(o.len());
        dec.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), o.len());
    }
    start.elapsed()
}

fn bench_zstd(runs: usize) {
    let mut rng = Rng::seeded(0x5EED_0FC0_FFEE);
    let batches: Vec<Vec<u8>> = (0..48).map(|_| records_section(&mut rng, MIB)).collect();
    let total: usize = batches.iter().map(Vec::len).sum();
    println!("zstd: {} batches, {:.1} MiB of records in all", batches.len(), total as f64 / MIB as f64);
    println!("| encoder | ratio | compress MiB/s | decompress MiB/s, C decoder | decompress MiB/s, ruzstd |");
    println!("|---|---|---|---|---|");
    type Encoder<'a> = (&'a str, Box<dyn Fn(&[Vec<u8>]) -> (Vec<Vec<u8>>, Duration)>);
    let encoders: Vec<Encoder> = vec![
        ("zstd C, level 3 (default)", Box::new(|b| c_compress(b, 3))),
        ("zstd C, level 1", Box::new(|b| c_compress(b, 1))),
        ("ruzstd 0.9 (Fastest)", Box::new(pure_compress)),
    ];
    for (name, enc) in &encoders {
        let (mut comp, mut c_dec, mut p_dec) = (Vec::new(), Vec::new(), Vec::new());
        let mut ratio = 0.0;
        for _ in 0..runs {
            let (frames, d) = enc(&batches);
            let compressed: usize = frames.iter().map(Vec::len).sum();
            ratio = total as f64 / compressed as f64;
            comp.push(mib_per_s(total, d));
            c_dec.push(mib_per_s(total, c_decompress(&frames, &batches)));
            p_dec.push(mib_per_s(total, pure_decompress(&frames, &batches)));
        }
        println!(
            "| {name} | {ratio:.2} | {:.0} | {:.0} | {:.0} |",
            median(comp),
            median(c_dec),
            median(p_dec)
        );
    }
}

// --- TLS ----------------------------------------------------------------------------------------

fn server_config() -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    (Arc::new(cfg), der)
}

fn client_config(
    provider: CryptoProvider,
    version: &'static rustls::SupportedProtocolVersion,
    ca: &CertificateDer<'static>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// Serves every connection: reads until EOF, then answers one byte.
async fn serve(listener: TcpListener, cfg: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    loop {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut s) = acceptor.accept(tcp).await else { return };
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) if buf[n - 1] == 0xFF => {
                        let _ = s.write_all(&[1]).await;
                        let _ = s.flush().await;
                    }
                    Ok(_) => {}
                }
            }
        });
    }
}

async fn handshake_ms(port: u16, cfg: &Arc<rustls::ClientConfig>, n: usize) -> (f64, String) {
    let connector = tokio_rustls::TlsConnector::from(cfg.clone());
    let mut times = Vec::with_capacity(n);
    let mut suite = String::new();
    for _ in 0..n {
        let start = Instant::now();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let s = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        let (_, conn) = s.get_ref();
        suite = format!(
            "{:?} / {:?}",
            conn.negotiated_cipher_suite().unwrap().suite(),
            conn.negotiated_key_exchange_group().map(|g| g.name())
        );
    }
    (median(times), suite)
}

async fn bulk_mib_s(port: u16, cfg: &Arc<rustls::ClientConfig>, bytes: usize) -> f64 {
    let connector = tokio_rustls::TlsConnector::from(cfg.clone());
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut s = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let chunk = vec![0x5Au8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&chunk).await.unwrap();
        sent += chunk.len();
    }
    s.write_all(&[0xFF]).await.unwrap(); // "done": the server answers once it has read it all
    s.flush().await.unwrap();
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack).await.unwrap();
    mib_per_s(sent, start.elapsed())
}

/// A constructor of a rustls crypto provider.
type ProviderFn = fn() -> CryptoProvider;

fn bench_tls(runs: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (server, ca) = server_config();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(serve(listener, server));
        println!("TLS: server rustls+ring (ECDSA P-256 certificate), client as below, 127.0.0.1");
        println!("| client provider | version | negotiated | handshake ms (median) | bulk MiB/s (median) |");
        println!("|---|---|---|---|---|");
        let providers: [(&str, ProviderFn); 2] = [
            ("ring 0.17", rustls::crypto::ring::default_provider),
            ("graviola 0.4 (rustls-graviola)", rustls_graviola::default_provider),
        ];
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            for (name, provider) in &providers {
                let cfg = client_config(provider(), version, &ca);
                let _ = handshake_ms(port, &cfg, 20).await; // warm-up
                let (mut hs, mut bulk) = (Vec::new(), Vec::new());
                let mut suite = String::new();
                for _ in 0..runs {
                    let (ms, s) = handshake_ms(port, &cfg, 200).await;
                    hs.push(ms);
                    suite = s;
                    bulk.push(bulk_mib_s(port, &cfg, 256 * MIB).await);
                }
                println!(
                    "| {name} | {:?} | {suite} | {:.3} | {:.0} |",
                    version.version,
                    median(hs),
                    median(bulk)
                );
            }
        }
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "all".to_owned());
    let runs: usize = args.next().map(|r| r.parse().expect("runs: a number")).unwrap_or(5);
    if what == "all" || what == "zstd" {
        bench_zstd(runs);
    }
    if what == "all" || what == "tls" {
        bench_tls(runs);
    }
}
