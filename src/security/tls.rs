//! TLS with rustls (TLS 1.2 and 1.3): the client config built from [`TlsConfig`], the
//! connector that wraps a TCP stream, and the mapping of rustls failures to [`Error::Tls`]
//! with a cause a person can act on.
//!
//! The crypto provider is chosen by the build's features, never through rustls' process-wide
//! default (so nothing here calls `CryptoProvider::install_default`, and an application's own
//! choice of default is left alone): `ring` (the default feature), else graviola
//! (`pure-rust`, no C compiler). A build with neither refuses a TLS config at validation.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tracing::warn;

use crate::security::settings::{Pem, TlsConfig};
use crate::error::{Error, Result};

/// Builds the rustls client config; every PEM problem is an [`Error::Config`].
pub(crate) fn client_config(t: &TlsConfig) -> Result<Arc<rustls::ClientConfig>> {
    let provider = crypto_provider()?;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Config(format!("tls: {e}")))?;
    let builder = if t.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &t.ca {
            let certs = certificates(ca, "tls.ca")?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::Config("tls.ca: no usable CA certificate in the PEM".into()));
            }
        }
        if t.ca.is_none() || t.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&t.client_cert, &t.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "tls.client_cert")?;
            let key = private_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("tls.client_cert / client_key: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The crypto provider of this build, passed explicitly to every rustls config: `ring` where
/// the "ring" feature is on, else graviola ("pure-rust"). An error (a configuration error:
/// it comes out of `validate`) where the build has none, or where graviola's CPU
/// requirements are not met (it would panic on first use).
pub(crate) fn crypto_provider() -> Result<Arc<rustls::crypto::CryptoProvider>> {
    #[cfg(feature = "ring")]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(all(not(feature = "ring"), feature = "pure-rust", any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        if !graviola::util::is_cpu_supported() {
            return Err(Error::Config(
                "tls: this ferrokafka is built with the pure-Rust TLS provider (graviola), which needs \
                 a CPU with AES, PCLMULQDQ, AVX2, BMI1/BMI2 and ADX (x86_64) or AES, SHA2, PMULL and \
                 NEON (aarch64), and this CPU lacks one; build with the \"ring\" feature instead"
                    .into(),
            ));
        }
        Ok(Arc::new(rustls_graviola::default_provider()))
    }
    #[cfg(not(any(feature = "ring", all(feature = "pure-rust", any(target_arch = "x86_64", target_arch = "aarch64")))))]
    return Err(Error::Config(
        "tls: this ferrokafka is built without a TLS crypto provider (enable the \"ring\" feature, \
         on by default, or \"pure-rust\" on x86_64 or aarch64)"
            .into(),
    ));
}

fn certificates(pem: &Pem, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = pem.bytes(what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("{what}: invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{what}: no CERTIFICATE block in the PEM")));
    }
    Ok(certs)
}

fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>> {
    let bytes = pem.bytes("tls.client_key")?;
    // The error never quotes the PEM: it is a secret.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1) found".to_owned(),
            other => format!("invalid PEM ({})", redact_pem_error(&other)),
        };
        Error::Config(format!("tls.client_key: {why}"))
    })
}

fn redact_pem_error(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a section has no END line",
        E::IllegalSectionStart { .. } => "malformed BEGIN line",
        E::Base64Decode(_) => "bad base64",
        E::Io(_) => "read error",
        _ => "unreadable",
    }
}

/// Wraps TCP streams in TLS for one client.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl TlsConnector {
    pub(crate) fn new(t: &TlsConfig) -> Result<TlsConnector> {
        if t.danger_accept_invalid_certs {
            warn!("tls.danger_accept_invalid_certs is set: broker certificates are NOT verified; \
                   anyone on the network path can impersonate the brokers");
        }
        let server_name = match &t.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|_| Error::Config(format!("tls.server_name {n:?} is not a valid DNS name or IP address")))?,
            ),
            None => None,
        };
        Ok(TlsConnector { inner: tokio_rustls::TlsConnector::from(client_config(t)?), server_name })
    }

    /// The TLS handshake over `tcp` with the broker at `host` (verified against its
    /// certificate unless a `server_name` is configured).
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
        broker: &str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => ServerName::try_from(host.to_owned()).map_err(|_| Error::Tls {
                broker: broker.to_owned(),
                detail: format!("{host:?} is not a valid DNS name or IP address to verify"),
            })?,
        };
        self.inner.connect(name, tcp).await.map_err(|e| {
            if let Some(tls) = tls_error(broker, &e) {
                return tls;
            }
            // The peer hung up mid-handshake. A plaintext listener does that (it reads the
            // ClientHello as an absurd request), but so does a broker that is still starting
            // or shutting down, so this stays a retriable connection error that names the
            // likely misconfiguration rather than a final TLS error.
            let kind = e.kind();
            if matches!(
                kind,
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) {
                return Error::Connection {
                    broker: broker.to_owned(),
                    cause: std::sync::Arc::new(std::io::Error::new(
                        kind,
                        "the broker closed the connection during the TLS handshake: this port is \
                         probably a plaintext listener (use security_protocol Plaintext or SaslPlaintext), \
                         unless the broker is starting or stopping",
                    )),
                };
            }
            Error::Tls { broker: broker.to_owned(), detail: format!("TLS handshake failed: {e}") }
        })
    }
}

/// The [`Error::Tls`] for an I/O error that carries a rustls error, if it does.
pub(crate) fn tls_error(broker: &str, e: &std::io::Error) -> Option<Error> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(Error::Tls { broker: broker.to_owned(), detail: describe(inner) })
}

fn describe(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "the broker's certificate is not signed by a trusted CA \
                (set tls.ca to the CA that signed it)"
                .into(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the broker's certificate has expired ({c})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the broker's certificate is not valid yet ({c})")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the broker's certificate is not valid for the host name or IP address connected to ({c})")
            }
            other => format!("invalid broker certificate: {other}"),
        },
        rustls::Error::AlertReceived(
            a @ (A::CertificateRequired | A::BadCertificate | A::UnknownCA | A::CertificateUnknown
            | A::AccessDenied | A::HandshakeFailure),
        ) => format!(
            "the broker refused the handshake (alert {a:?}): a listener with ssl.client.auth=required \
             needs tls.client_cert and tls.client_key signed by a CA it trusts"
        ),
        rustls::Error::InvalidMessage(m) => {
            format!("the peer does not speak TLS ({m:?}): is this a plaintext listener?")
        }
        other => format!("TLS failed: {other}"),
    }
}

/// `danger_accept_invalid_certs`: accepts every certificate, still checks that the
/// handshake is signed by the key in it.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
