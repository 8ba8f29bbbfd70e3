//! The client side of TLS against an in-process rustls server: trust, expiry, names.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;

struct Pki {
    ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "ferrokafka unit-test CA");
    let ca = p.self_signed(&ca_key).unwrap();
    Pki { ca_pem: ca.pem(), ca, ca_key }
}

/// A server certificate for `names`, valid now unless `expired`.
fn server_cert(pki: &Pki, names: &[&str], expired: bool) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = p.signed_by(&key, &pki.ca, &pki.ca_key).unwrap();
    (cert.der().clone(), PrivateKeyDer::Pkcs8(key.serialize_der().into()))
}

/// Accepts one TLS connection with `cert`, then answers the first 4 bytes with 4 zeros.
async fn tls_server(cert: (CertificateDer<'static>, PrivateKeyDer<'static>)) -> u16 {
    tls_server_with(cert, &[&rustls::version::TLS13, &rustls::version::TLS12]).await
}

async fn tls_server_with(
    cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> u16 {
    let cfg = rustls::ServerConfig::builder_with_provider(super::crypto_provider().unwrap())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.0], cert.1)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(mut s) = acceptor.accept(tcp).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut b = [0u8; 4];
            if s.read_exact(&mut b).await.is_ok() {
                let _ = s.write_all(&[0; 4]).await;
                let _ = s.flush().await;
            }
        }
    });
    port
}

/// Connects with `cfg` to the server on `port` as `host`, writes 4 bytes and reads 4 back.
async fn roundtrip(cfg: &TlsConfig, host: &str, port: u16) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = TlsConnector::new(cfg)?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut s = connector.connect(tcp, host, &format!("{host}:{port}")).await?;
    s.write_all(b"ping").await.unwrap();
    s.flush().await.unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).await.unwrap();
    Ok(())
}

fn trusting(pki: &Pki) -> TlsConfig {
    TlsConfig { ca: Some(Pem::Memory(pki.ca_pem.clone())), ..TlsConfig::default() }
}

fn tls_detail(e: Error) -> String {
    match e {
        Error::Tls { detail, .. } => detail,
        other => panic!("expected Error::Tls, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_from_the_configured_ca_for_the_ip_connected_to_is_accepted() {
    let pki = pki();
    let port = tls_server(server_cert(&pki, &["localhost", "127.0.0.1"], false)).await;
    roundtrip(&trusting(&pki), "127.0.0.1", port).await.unwrap();
    let port = tls_server(server_cert(&pki, &["localhost", "127.0.0.1"], false)).await;
    roundtrip(&trusting(&pki), "localhost", port).await.unwrap();
}

#[tokio::test]
async fn a_tls_1_2_only_server_is_accepted_too() {
    let pki = pki();
    let port = tls_server_with(server_cert(&pki, &["127.0.0.1"], false), &[&rustls::version::TLS12]).await;
    roundtrip(&trusting(&pki), "127.0.0.1", port).await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_as_untrusted() {
    let pki = pki();
    let port = tls_server(server_cert(&pki, &["127.0.0.1"], false)).await;
    // No CA configured: only Mozilla's roots are trusted.
    let e = roundtrip(&TlsConfig::default(), "127.0.0.1", port).await.unwrap_err();
    assert!(!e.is_retriable());
    let d = tls_detail(e);
    assert!(d.contains("not signed by a trusted CA"), "{d}");
}

#[tokio::test]
async fn an_expired_certificate_is_refused_as_expired() {
    let pki = pki();
    let port = tls_server(server_cert(&pki, &["127.0.0.1"], true)).await;
    let d = tls_detail(roundtrip(&trusting(&pki), "127.0.0.1", port).await.unwrap_err());
    assert!(d.contains("expired"), "{d}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_as_a_name_mismatch() {
    let pki = pki();
    let port = tls_server(server_cert(&pki, &["kafka.example.com"], false)).await;
    let d = tls_detail(roundtrip(&trusting(&pki), "127.0.0.1", port).await.unwrap_err());
    assert!(d.contains("not valid for the host name"), "{d}");
    // server_name names the identity to verify instead of the address's host.
    let port = tls_server(server_cert(&pki, &["kafka.example.com"], false)).await;
    let cfg = TlsConfig { server_name: Some("kafka.example.com".into()), ..trusting(&pki) };
    roundtrip(&cfg, "127.0.0.1", port).await.unwrap();
}

#[tokio::test]
async fn danger_accept_invalid_certs_accepts_an_expired_certificate_for_another_name() {
    let pki = pki();
    let port = tls_server(server_cert(&pki, &["elsewhere.example"], true)).await;
    let cfg = TlsConfig { danger_accept_invalid_certs: true, ..TlsConfig::default() };
    roundtrip(&cfg, "127.0.0.1", port).await.unwrap();
}

#[tokio::test]
async fn a_peer_that_closes_on_the_client_hello_is_named_a_plaintext_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        // What a Kafka plaintext listener does with a ClientHello: reads a size far above
        // socket.request.max.bytes and closes.
        use tokio::io::AsyncReadExt;
        let (mut s, _) = listener.accept().await.unwrap();
        let mut b = [0u8; 4];
        let _ = s.read_exact(&mut b).await;
    });
    let pki = pki();
    let e = roundtrip(&trusting(&pki), "127.0.0.1", port).await.unwrap_err();
    // Retriable (a restarting broker hangs up the same way), and the text names the cause.
    assert!(matches!(e, Error::Connection { .. }) && e.is_retriable(), "{e:?}");
    assert!(e.to_string().contains("plaintext listener"), "{e}");
}

#[test]
fn bad_pem_is_a_config_error_that_never_quotes_the_key() {
    let cfg = TlsConfig { ca: Some(Pem::File("/nonexistent/ca.pem".into())), ..TlsConfig::default() };
    let e = client_config(&cfg).unwrap_err().to_string();
    assert!(e.contains("tls.ca") && e.contains("/nonexistent/ca.pem"), "{e}");
    let cfg = TlsConfig { ca: Some(Pem::Memory("not pem".into())), ..TlsConfig::default() };
    assert!(client_config(&cfg).unwrap_err().to_string().contains("no CERTIFICATE"));
    let pki = pki();
    let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
    let cfg = TlsConfig {
        client_cert: Some(Pem::Memory(pki.ca_pem.clone())),
        client_key: Some(Pem::Memory(secret.into())),
        ..trusting(&pki)
    };
    let e = client_config(&cfg).unwrap_err().to_string();
    assert!(e.contains("tls.client") && !e.contains("c2VjcmV0"), "{e}");
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("c2VjcmV0") && dbg.contains("<redacted>"), "{dbg}");
}
