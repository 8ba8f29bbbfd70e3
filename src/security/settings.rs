//! The TLS and SASL settings of a [`ClientConfig`](crate::ClientConfig) (`ssl.*`,
//! `sasl.*`): plain data, below both the config that holds them (`config.rs`, which
//! re-exports them) and the code that uses them (`tls.rs`, `sasl.rs`), so that neither
//! imports the other's layer (issue 12).

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::security::oauth::OAuthBearerTokenProvider;

/// PEM text from a file or from memory (certificates, or a private key).
#[derive(Clone)]
pub enum Pem {
    /// A PEM file, read when the client is built.
    File(PathBuf),
    /// PEM text held in memory.
    Memory(String),
}

impl Pem {
    /// Reads the PEM bytes (the file, or the in-memory text).
    pub(crate) fn bytes(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::File(p) => std::fs::read(p)
                .map_err(|e| Error::Config(format!("{what}: cannot read {}: {e}", p.display()))),
            Pem::Memory(s) => Ok(s.as_bytes().to_vec()),
        }
    }
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Certificates are public, but a key may sit here too: never print in-memory PEM.
        match self {
            Pem::File(p) => f.debug_tuple("File").field(p).finish(),
            Pem::Memory(s) => write!(f, "Memory(<{} bytes>)", s.len()),
        }
    }
}

/// TLS settings (`ssl.*`), used when [`ClientConfig::security_protocol`](crate::ClientConfig::security_protocol) is `Ssl` or
/// `SaslSsl`. TLS 1.2 and 1.3 are offered; rustls with the `ring` provider does the work.
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// `ssl.ca.location` / `ssl.ca.pem`: the CA certificates that sign the brokers'
    /// certificates. Default `None`: Mozilla's root set (webpki-roots) is trusted instead.
    pub ca: Option<Pem>,
    /// Also trust Mozilla's root set (webpki-roots) when `ca` is given. Default `false`
    /// (with no `ca` the Mozilla roots are always used).
    pub webpki_roots: bool,
    /// `ssl.certificate.location` / `.pem`: the client certificate chain for mutual TLS
    /// (leaf first). Default `None`. Needs `client_key`.
    pub client_cert: Option<Pem>,
    /// `ssl.key.location` / `.pem`: the client's private key (PKCS#8, PKCS#1 or SEC1 PEM,
    /// unencrypted) for mutual TLS. Default `None`. Never printed by `Debug`.
    pub client_key: Option<Pem>,
    /// The name verified against the broker's certificate (and sent as SNI), instead of the
    /// host of the address connected to. Default `None`: each broker's own host, name or IP
    /// address, is verified (`ssl.endpoint.identification.algorithm=https`).
    pub server_name: Option<String>,
    /// Accept any broker certificate: no chain, expiry or host name check. Man-in-the-middle
    /// attacks become trivial; for tests only. A warning is logged when a client is built with
    /// it. Default `false`.
    pub danger_accept_invalid_certs: bool,
}

impl TlsConfig {
    /// TLS with every setting at its default: the broker's certificate is checked against
    /// Mozilla's root set and each broker's own host name.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }
    /// Sets [`TlsConfig::ca`].
    pub fn ca(mut self, ca: Pem) -> Self {
        self.ca = Some(ca);
        self
    }
    /// Sets [`TlsConfig::webpki_roots`].
    pub fn webpki_roots(mut self, also_trust: bool) -> Self {
        self.webpki_roots = also_trust;
        self
    }
    /// Sets [`TlsConfig::client_cert`] and [`TlsConfig::client_key`] (mutual TLS).
    pub fn client_auth(mut self, cert: Pem, key: Pem) -> Self {
        self.client_cert = Some(cert);
        self.client_key = Some(key);
        self
    }
    /// Sets [`TlsConfig::server_name`].
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
    /// Sets [`TlsConfig::danger_accept_invalid_certs`] (tests only).
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca", &self.ca)
            .field("webpki_roots", &self.webpki_roots)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key.as_ref().map(|_| "<redacted>"))
            .field("server_name", &self.server_name)
            .field("danger_accept_invalid_certs", &self.danger_accept_invalid_certs)
            .finish()
    }
}

/// `sasl.mechanism` with its credentials.
///
/// `Debug` shows the mechanism and the user name, never a password or token.
#[derive(Clone)]
pub enum SaslConfig {
    /// `PLAIN` (RFC 4616): user name and password sent as they are; use it over TLS.
    Plain {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// `SCRAM-SHA-256` (RFC 5802, RFC 7677): the password never crosses the wire, and the
    /// broker proves it knows the credential too.
    ScramSha256 {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// `SCRAM-SHA-512`, as `ScramSha256` with SHA-512.
    ScramSha512 {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A delegation token (KIP-48) over SCRAM, as Java's `ScramLoginModule` with
    /// `tokenauth="true"`: the token id is the user name, the token's HMAC (base64) the
    /// password, and the first SCRAM message carries the `tokenauth=true` extension. The
    /// token comes from `AdminClient::create_delegation_token`.
    DelegationToken {
        /// The token id (`DelegationToken::info.token_id`).
        token_id: String,
        /// The token's HMAC, base64-encoded (`DelegationToken::hmac_base64`).
        hmac_base64: String,
        /// `true`: SCRAM-SHA-512; `false`: SCRAM-SHA-256 (the broker must enable the one
        /// chosen on the listener).
        sha512: bool,
    },
    /// `OAUTHBEARER` (RFC 7628, KIP-255): a bearer token from the application's provider,
    /// asked again before the cached token expires.
    OAuthBearer(Arc<dyn OAuthBearerTokenProvider>),
}

impl SaslConfig {
    /// The mechanism's name as Kafka spells it (`PLAIN`, `SCRAM-SHA-256`, ...).
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslConfig::Plain { .. } => "PLAIN",
            SaslConfig::ScramSha256 { .. } => "SCRAM-SHA-256",
            SaslConfig::ScramSha512 { .. } | SaslConfig::DelegationToken { sha512: true, .. } => "SCRAM-SHA-512",
            SaslConfig::DelegationToken { sha512: false, .. } => "SCRAM-SHA-256",
            SaslConfig::OAuthBearer(_) => "OAUTHBEARER",
        }
    }
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslConfig::Plain { username, .. }
            | SaslConfig::ScramSha256 { username, .. }
            | SaslConfig::ScramSha512 { username, .. } => f
                .debug_struct("SaslConfig")
                .field("mechanism", &self.mechanism())
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            SaslConfig::DelegationToken { token_id, .. } => f
                .debug_struct("SaslConfig")
                .field("mechanism", &self.mechanism())
                .field("token_id", token_id)
                .field("hmac", &"<redacted>")
                .finish(),
            SaslConfig::OAuthBearer(p) => f
                .debug_struct("SaslConfig")
                .field("mechanism", &self.mechanism())
                .field("token_provider", p)
                .finish(),
        }
    }
}
