//! TLS and SASL against the single node's security listeners (started by
//! `scripts/kafka-local.sh start single`; addresses and certificates from the
//! `FERROKAFKA_*` variables of its `security.env`, which `scripts/test.sh` exports).
//!
//! Each mechanism and listener gets a produce + consume round trip through the real
//! producer and consumer (assign mode, then a consumer group); each misconfiguration gets the clear error it must give, within
//! the connect timeout. Re-authentication (KIP-368) is proven on the listener whose session
//! lifetime is 3 s.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrokafka::admin::{AdminClient, AdminConfig, NewTopic};
use ferrokafka::consumer::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::security::{OAuthBearerToken, OAuthBearerTokenProvider};
use ferrokafka::{ClientConfig, Error, Pem, SaslConfig, SecurityProtocol, TlsConfig};
use futures::future::BoxFuture;

use crate::common::*;

/// The connect timeout of the error tests: each error must come well within it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

fn var(name: &str, default: impl FnOnce() -> String) -> String {
    std::env::var(name).unwrap_or_else(|_| default())
}

/// A security listener's address: `FERROKAFKA_<NAME>_BOOTSTRAP`, or the script's default
/// port plus `KAFKA_PORT_OFFSET`.
fn listener(name: &str) -> String {
    let base = match name {
        "SASL_PLAINTEXT" => 9094,
        "SSL" => 9095,
        "SASL_SSL" => 9096,
        "MTLS" => 9097,
        "REAUTH" => 9098,
        "BADHOST" => 9099,
        _ => unreachable!(),
    };
    var(&format!("FERROKAFKA_{name}_BOOTSTRAP"), || {
        let offset: u16 = std::env::var("KAFKA_PORT_OFFSET").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        format!("127.0.0.1:{}", base + offset)
    })
}

fn cert_file(var_name: &str, file: &str) -> Pem {
    Pem::File(
        var(var_name, || {
            let run = std::env::var("FERROKAFKA_RUN_DIR").unwrap_or_else(|_| "/tmp/ferrokafka-kafka".into());
            format!("{run}/single/certs/{file}")
        })
        .into(),
    )
}

fn ca() -> Pem {
    cert_file("FERROKAFKA_CA_PEM", "ca.pem")
}

/// The 3-node cluster over its SASL_SSL listeners (`FERROKAFKA_CLUSTER_SASL_SSL_BOOTSTRAP`,
/// default ports N9096 + `KAFKA_PORT_OFFSET`) with SCRAM-SHA-512, trusting the cluster's CA
/// (`FERROKAFKA_CLUSTER_CA_PEM`).
pub fn cluster_sasl_ssl_config() -> ClientConfig {
    let addrs = var("FERROKAFKA_CLUSTER_SASL_SSL_BOOTSTRAP", || {
        let offset: u32 = std::env::var("KAFKA_PORT_OFFSET").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        (1..=3).map(|n| format!("127.0.0.1:{}", n * 10000 + 9096 + offset)).collect::<Vec<_>>().join(",")
    });
    let ca = Pem::File(
        var("FERROKAFKA_CLUSTER_CA_PEM", || {
            let run = std::env::var("FERROKAFKA_RUN_DIR").unwrap_or_else(|_| "/tmp/ferrokafka-kafka".into());
            format!("{run}/cluster/certs/ca.pem")
        })
        .into(),
    );
    config(addrs, SecurityProtocol::SaslSsl, Some(TlsConfig { ca: Some(ca), ..TlsConfig::default() }), Some(scram512()))
}

fn user() -> String {
    var("FERROKAFKA_SASL_USER", || "alice".into())
}

fn password() -> String {
    var("FERROKAFKA_SASL_PASSWORD", || "alice-secret".into())
}

fn trusting_ca() -> TlsConfig {
    TlsConfig { ca: Some(ca()), ..TlsConfig::default() }
}

fn mtls() -> TlsConfig {
    TlsConfig {
        client_cert: Some(cert_file("FERROKAFKA_CLIENT_CERT_PEM", "client.pem")),
        client_key: Some(cert_file("FERROKAFKA_CLIENT_KEY_PEM", "client-key.pem")),
        ..trusting_ca()
    }
}

fn scram256() -> SaslConfig {
    SaslConfig::ScramSha256 { username: user(), password: password() }
}

fn scram512() -> SaslConfig {
    SaslConfig::ScramSha512 { username: user(), password: password() }
}

fn plain() -> SaslConfig {
    SaslConfig::Plain { username: user(), password: password() }
}

/// Unsecured JWTs (alg none) for Kafka's default OAUTHBEARER validator; counts its calls.
#[derive(Debug)]
struct UnsecuredTokens {
    calls: AtomicU32,
    lifetime: Duration,
}

impl OAuthBearerTokenProvider for UnsecuredTokens {
    fn token(&self) -> BoxFuture<'_, ferrokafka::Result<OAuthBearerToken>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(OAuthBearerToken::unsecured(&user(), self.lifetime)) })
    }
}

fn oauth(lifetime: Duration) -> (Arc<UnsecuredTokens>, SaslConfig) {
    let p = Arc::new(UnsecuredTokens { calls: AtomicU32::new(0), lifetime });
    (p.clone(), SaslConfig::OAuthBearer(p))
}

fn config(addr: String, protocol: SecurityProtocol, tls: Option<TlsConfig>, sasl: Option<SaslConfig>) -> ClientConfig {
    let mut c = ClientConfig::new(addr).security_protocol(protocol).connect_timeout(CONNECT_TIMEOUT);
    if let Some(t) = tls {
        c = c.tls(t);
    }
    if let Some(s) = sasl {
        c = c.sasl(s);
    }
    c
}

/// Creates a topic, produces `n` records and consumes them back, all over `client`'s
/// listener and security settings (admin, producer and consumer alike).
async fn round_trip(client: ClientConfig, n: usize) {
    let admin = AdminClient::new(AdminConfig::from_client(client.clone())).await.unwrap();
    let topic = unique("security");
    admin.create_topic(NewTopic::new(&topic, 2, 1)).await.unwrap();
    let producer = Producer::new(ProducerConfig::from_client(client.clone())).await.unwrap();
    let mut acks = Vec::new();
    for i in 0..n {
        acks.push(producer.send(sample(&topic, i).partition((i % 2) as i32)).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    let consumer =
        Consumer::new(ConsumerConfig::from_client(client.clone()).auto_offset_reset(OffsetReset::Earliest)).await.unwrap();
    consumer.assign(vec![TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1)]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} records came back", got.len());
        got.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(got.len(), n);
    for r in &got {
        let i = r.headers.iter().next().unwrap().value.as_deref().map(|h| std::str::from_utf8(&h[1..]).unwrap().parse::<usize>().unwrap()).unwrap();
        assert_eq!(r.value, sample(&topic, i).value, "record {i}");
    }
    consumer.close().await.unwrap();
    // A consumer group over the same listener: join, sync, heartbeats, commits.
    let group = unique("security-group");
    let member = Consumer::new(
        ConsumerConfig::from_client(client)
            .group_id(&group)
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false),
    )
    .await
    .unwrap();
    member.subscribe([topic.clone()]).await.unwrap();
    let mut in_group = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_group < n {
        assert!(Instant::now() < deadline, "the group member got only {in_group} of {n} records");
        let recs = member.poll(Duration::from_millis(500)).await.unwrap();
        in_group += recs.len();
        if !recs.is_empty() {
            member.commit(None).await.unwrap();
        }
    }
    assert_eq!(in_group, n);
    assert_eq!(member.assignment().len(), 2);
    let committed = member.committed(&[TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1)]).await.unwrap();
    assert_eq!(committed.values().map(|o| o.offset).sum::<i64>(), n as i64);
    member.close().await.unwrap();
    admin.delete_topics(std::slice::from_ref(&topic)).await.ok();
}

#[tokio::test]
async fn plain_over_sasl_plaintext_round_trip() {
    round_trip(config(listener("SASL_PLAINTEXT"), SecurityProtocol::SaslPlaintext, None, Some(plain())), 100).await;
}

#[tokio::test]
async fn scram_sha_256_over_sasl_plaintext_round_trip() {
    round_trip(config(listener("SASL_PLAINTEXT"), SecurityProtocol::SaslPlaintext, None, Some(scram256())), 100).await;
}

#[tokio::test]
async fn scram_sha_512_over_sasl_plaintext_round_trip() {
    round_trip(config(listener("SASL_PLAINTEXT"), SecurityProtocol::SaslPlaintext, None, Some(scram512())), 100).await;
}

#[tokio::test]
async fn oauthbearer_with_unsecured_tokens_over_sasl_plaintext_round_trip() {
    let (provider, sasl) = oauth(Duration::from_secs(3600));
    round_trip(config(listener("SASL_PLAINTEXT"), SecurityProtocol::SaslPlaintext, None, Some(sasl)), 100).await;
    // Every connection of a client shares its cached token: one call per client (admin,
    // producer, consumer, group member).
    assert_eq!(provider.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn ssl_round_trip_verifies_the_broker_certificate_for_its_ip() {
    round_trip(config(listener("SSL"), SecurityProtocol::Ssl, Some(trusting_ca()), None), 100).await;
}

#[tokio::test]
async fn mutual_tls_round_trip_with_a_client_certificate() {
    round_trip(config(listener("MTLS"), SecurityProtocol::Ssl, Some(mtls()), None), 100).await;
}

#[tokio::test]
async fn sasl_ssl_with_scram_sha_512_round_trip() {
    round_trip(config(listener("SASL_SSL"), SecurityProtocol::SaslSsl, Some(trusting_ca()), Some(scram512())), 100)
        .await;
}

/// Connects an admin client and returns its error and how long it took.
async fn connect_err(client: ClientConfig) -> (Error, Duration) {
    let (e, took) = connect_err_any(client).await;
    assert!(!e.is_retriable(), "{e} must not be retriable");
    (e, took)
}

/// As `connect_err`, for errors that may be retriable.
async fn connect_err_any(client: ClientConfig) -> (Error, Duration) {
    let t = Instant::now();
    let res = tokio::time::timeout(CONNECT_TIMEOUT * 3, AdminClient::new(AdminConfig::from_client(client)))
        .await
        .expect("connect hung past three connect timeouts");
    let Err(e) = res else { panic!("connect must fail") };
    let took = t.elapsed();
    assert!(took < CONNECT_TIMEOUT + Duration::from_secs(2), "took {took:?}: {e}");
    (e, took)
}

fn auth_detail(e: &Error) -> &str {
    match e {
        Error::Authentication { detail, .. } => detail,
        other => panic!("expected Error::Authentication, got {other:?}"),
    }
}

fn tls_detail(e: &Error) -> &str {
    match e {
        Error::Tls { detail, .. } => detail,
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error_for_each_mechanism() {
    for sasl in [
        SaslConfig::Plain { username: user(), password: "wrong-secret".into() },
        SaslConfig::ScramSha256 { username: user(), password: "wrong-secret".into() },
        SaslConfig::ScramSha512 { username: user(), password: "wrong-secret".into() },
    ] {
        let mech = sasl.mechanism();
        let (e, _) = connect_err(config(listener("SASL_PLAINTEXT"), SecurityProtocol::SaslPlaintext, None, Some(sasl))).await;
        let d = auth_detail(&e);
        assert!(d.contains("SASL_AUTHENTICATION_FAILED"), "{mech}: {e}");
        assert!(!e.to_string().contains("wrong-secret") && !format!("{e:?}").contains("wrong-secret"));
        assert!(e.to_string().contains(mech), "{e}");
    }
}

#[tokio::test]
async fn an_unknown_user_is_an_authentication_error() {
    for sasl in [
        SaslConfig::ScramSha512 { username: "mallory".into(), password: password() },
        SaslConfig::Plain { username: "mallory".into(), password: password() },
    ] {
        let (e, _) = connect_err(config(listener("SASL_PLAINTEXT"), SecurityProtocol::SaslPlaintext, None, Some(sasl))).await;
        assert!(auth_detail(&e).contains("SASL_AUTHENTICATION_FAILED"), "{e}");
    }
}

#[tokio::test]
async fn a_mechanism_the_listener_does_not_enable_is_named_with_the_enabled_ones() {
    let (e, _) =
        connect_err(config(listener("SASL_SSL"), SecurityProtocol::SaslSsl, Some(trusting_ca()), Some(scram256()))).await;
    let d = auth_detail(&e);
    assert!(d.contains("does not enable SCRAM-SHA-256") && d.contains("SCRAM-SHA-512"), "{e}");
}

#[tokio::test]
async fn an_untrusted_broker_certificate_is_a_tls_error() {
    // No CA: only Mozilla's roots, which did not sign the test CA.
    let (e, _) = connect_err(config(listener("SSL"), SecurityProtocol::Ssl, Some(TlsConfig::default()), None)).await;
    assert!(tls_detail(&e).contains("not signed by a trusted CA"), "{e}");
}

#[tokio::test]
async fn a_certificate_for_another_host_name_is_a_tls_error() {
    // The BADHOST listener's certificate (same CA) names only wrong-host.invalid.
    let (e, _) = connect_err(config(listener("BADHOST"), SecurityProtocol::Ssl, Some(trusting_ca()), None)).await;
    assert!(tls_detail(&e).contains("not valid for the host name"), "{e}");
    // Told to expect that name, the same connection verifies.
    let name = var("FERROKAFKA_BADHOST_NAME", || "wrong-host.invalid".into());
    let tls = TlsConfig { server_name: Some(name), ..trusting_ca() };
    AdminClient::new(AdminConfig::from_client(config(listener("BADHOST"), SecurityProtocol::Ssl, Some(tls), None)))
        .await
        .unwrap();
}

#[tokio::test]
async fn mutual_tls_without_a_client_certificate_is_a_tls_error() {
    let (e, _) = connect_err(config(listener("MTLS"), SecurityProtocol::Ssl, Some(trusting_ca()), None)).await;
    assert!(tls_detail(&e).contains("client_cert"), "{e}");
}

#[tokio::test]
async fn a_plaintext_client_at_a_tls_port_is_told_the_port_expects_tls() {
    let (e, _) = connect_err(config(listener("SSL"), SecurityProtocol::Plaintext, None, None)).await;
    assert!(matches!(e, Error::WrongProtocol { .. }), "{e:?}");
    assert!(e.to_string().contains("expects TLS"), "{e}");
}

#[tokio::test]
async fn a_tls_client_at_a_plaintext_port_is_told_the_port_is_plaintext() {
    let (e, _) = connect_err_any(config(single_bootstrap(), SecurityProtocol::Ssl, Some(trusting_ca()), None)).await;
    // A connection error (retriable: a restarting broker hangs up mid-handshake the same
    // way) whose text names the likely cause, within the connect timeout.
    assert!(e.is_retriable(), "{e:?}");
    assert!(e.to_string().contains("plaintext listener"), "{e}");
}

#[tokio::test]
async fn a_sasl_client_at_a_tls_sasl_port_without_tls_is_a_clear_error() {
    let (e, _) = connect_err(config(listener("SASL_SSL"), SecurityProtocol::SaslPlaintext, None, Some(scram512()))).await;
    assert!(e.to_string().contains("expects TLS"), "{e}");
}

/// Collects the messages of `ferrokafka` events on this thread (the test's
/// current-thread runtime, where the consumer's and admin's connections run).
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct Msg(String);
        impl tracing::field::Visit for Msg {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut m = Msg(String::new());
        event.record(&mut m);
        self.0.lock().unwrap().push(m.0);
    }
}

/// Produces without pause for several 3 s session lifetimes on the REAUTH listener while a
/// consumer reads: every record is acknowledged and consumed back, and the consumer's
/// connection re-authenticated (the broker would close an expired one on its next request).
async fn reauthentication_loses_nothing(sasl: SaslConfig) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let events = Events::default();
    let subscriber = tracing_subscriber::registry()
        .with(events.clone().with_filter(tracing_subscriber::filter::Targets::new().with_target("ferrokafka", tracing::Level::DEBUG)));
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = config(listener("REAUTH"), SecurityProtocol::SaslPlaintext, None, Some(sasl));
    let admin = AdminClient::new(AdminConfig::from_client(client.clone())).await.unwrap();
    let topic = unique("reauth");
    admin.create_topic(NewTopic::new(&topic, 1, 1)).await.unwrap();
    let producer = Producer::new(ProducerConfig::from_client(client.clone()).linger(Duration::from_millis(5))).await.unwrap();
    let consumer =
        Consumer::new(ConsumerConfig::from_client(client).auto_offset_reset(OffsetReset::Earliest)).await.unwrap();
    consumer.assign(vec![TopicPartition::new(&topic, 0)]).unwrap();

    let run_for = Duration::from_secs(11); // more than three session lifetimes of 3 s
    let start = Instant::now();
    let mut acks = Vec::new();
    let mut got = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..20 {
            acks.push(producer.send(ProducerRecord::new(&topic).value(i.to_string())).await.unwrap());
            i += 1;
        }
        got.extend(consumer.poll(Duration::from_millis(20)).await.unwrap());
    }
    let mut offsets = Vec::new();
    for a in acks {
        offsets.push(a.await.expect("every record acknowledged").offset);
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (got.len() as u64) < i {
        assert!(Instant::now() < deadline, "only {} of {i} records came back", got.len());
        got.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    let values: Vec<u64> = got.iter().map(|r| std::str::from_utf8(r.value.as_ref().unwrap()).unwrap().parse().unwrap()).collect();
    assert_eq!(values, (0..i).collect::<Vec<_>>(), "records lost, duplicated or out of order");
    assert_eq!(offsets, (0..i as i64).collect::<Vec<_>>());
    let seen = events.0.lock().unwrap().clone();
    let reauths = seen.iter().filter(|m| m.contains("re-authenticating")).count();
    assert!(reauths >= 3, "expected re-authentications on the consumer's connections, events: {seen:?}");
    assert!(!seen.iter().any(|m| m.contains("re-authentication failed")), "{seen:?}");
    consumer.close().await.unwrap();
    admin.delete_topics(&[topic]).await.ok();
}

#[tokio::test]
async fn scram_sha_512_reauthentication_loses_nothing() {
    reauthentication_loses_nothing(scram512()).await;
}

#[tokio::test]
async fn plain_reauthentication_loses_nothing() {
    reauthentication_loses_nothing(plain()).await;
}

#[tokio::test]
async fn oauthbearer_reauthentication_with_short_lived_tokens_loses_nothing() {
    // Tokens of 5 s: the broker's session ends at 3 s or with the token, whichever is first,
    // and the clients' caches ask the provider again once 4 s have passed.
    let (provider, sasl) = oauth(Duration::from_secs(5));
    reauthentication_loses_nothing(sasl).await;
    // Three clients (admin, producer, consumer), each with a first token and at least one
    // refreshed one during the 11 s.
    let calls = provider.calls.load(Ordering::SeqCst);
    assert!(calls >= 6, "the provider was asked only {calls} times");
}
