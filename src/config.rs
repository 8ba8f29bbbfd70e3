//! Connection settings shared by every client role.
//!
//! Each role (producer, consumer, admin) has its own config struct that embeds
//! a [`ClientConfig`]. Defaults follow the Java client where it has the same setting.

use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::security::settings::{Pem, SaslConfig, TlsConfig};

/// Settings for reaching a cluster, shared by every client role.
///
/// Build with [`ClientConfig::new`] and the chained setters; [`ClientConfig::validate`] runs
/// when a client is built, so a bad value fails there with [`Error::Config`].
#[derive(Clone)]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` addresses to learn the cluster from. Any of them may be
    /// down; IPv6 literals are written in brackets (`[::1]:9092`). No default: at least one is
    /// required.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`, sent with every request and shown in broker logs and quotas.
    /// Default `"ferrokafka"`.
    pub client_id: String,
    /// `request.timeout.ms`: how long one request may wait for its response before the
    /// connection is closed and the request failed as retriable. Default 30 s.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: how long a TCP connect (and, later, the TLS and
    /// SASL handshakes) may take. Default 10 s.
    pub connect_timeout: Duration,
    /// `reconnect.backoff.ms`: the first wait before reconnecting to a broker whose connection
    /// failed; doubles with each failure, with ±20 % jitter. Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the cap on the reconnect wait. Default 1 s.
    pub reconnect_backoff_max: Duration,
    /// `retry.backoff.ms`: the wait before retrying a failed request. Default 100 ms.
    pub retry_backoff: Duration,
    /// `metadata.max.age.ms`: cluster metadata older than this is refreshed even when
    /// nothing asked for it. Default 5 minutes.
    pub metadata_max_age: Duration,
    /// The largest response frame accepted from a broker, checked before anything is
    /// allocated for it (librdkafka's `receive.message.max.bytes`). A larger frame closes
    /// the connection with [`Error::FrameTooLarge`]. Default 100 MiB.
    pub max_response_size: usize,
    /// `security.protocol`: plaintext or TLS, with or without SASL. Default
    /// [`SecurityProtocol::Plaintext`]. `Ssl` and `SaslSsl` use [`ClientConfig::tls`];
    /// `SaslPlaintext` and `SaslSsl` need [`ClientConfig::sasl`].
    pub security_protocol: SecurityProtocol,
    /// TLS settings (CA, client certificate for mutual TLS, verification), used when
    /// `security_protocol` is `Ssl` or `SaslSsl`. Default [`TlsConfig::default`]: Mozilla's
    /// roots, host name verification on, no client certificate.
    pub tls: TlsConfig,
    /// `sasl.mechanism` and its credentials, used when `security_protocol` is
    /// `SaslPlaintext` or `SaslSsl`. Default `None`.
    pub sasl: Option<SaslConfig>,
}

/// `security.protocol`: how bytes travel to the brokers and whether the client authenticates
/// with SASL. Each listener of a broker speaks exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication (the default).
    #[default]
    Plaintext,
    /// TLS over TCP; the client authenticates only with a certificate (mutual TLS), if any.
    Ssl,
    /// SASL authentication over plain TCP (credentials of PLAIN travel in clear text).
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether the connection is wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether the client authenticates with SASL after ApiVersions.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Written by hand so that credentials added later never reach a log.
        f.debug_struct("ClientConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("reconnect_backoff_max", &self.reconnect_backoff_max)
            .field("retry_backoff", &self.retry_backoff)
            .field("metadata_max_age", &self.metadata_max_age)
            .field("max_response_size", &self.max_response_size)
            .field("security_protocol", &self.security_protocol)
            .field("tls", &self.tls)
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl ClientConfig {
    /// A config with the given bootstrap servers (comma-separated `host:port` list) and every
    /// other setting at its default.
    pub fn new(bootstrap_servers: impl AsRef<str>) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: bootstrap_servers
                .as_ref()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            client_id: "ferrokafka".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            retry_backoff: Duration::from_millis(100),
            metadata_max_age: Duration::from_secs(300),
            max_response_size: 100 * 1024 * 1024,
            security_protocol: SecurityProtocol::Plaintext,
            tls: TlsConfig::default(),
            sasl: None,
        }
    }

    /// Sets [`ClientConfig::security_protocol`].
    pub fn security_protocol(mut self, p: SecurityProtocol) -> Self {
        self.security_protocol = p;
        self
    }

    /// Sets [`ClientConfig::tls`].
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Sets [`ClientConfig::sasl`].
    pub fn sasl(mut self, sasl: SaslConfig) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Sets [`ClientConfig::client_id`].
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Sets [`ClientConfig::request_timeout`].
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    /// Sets [`ClientConfig::connect_timeout`].
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets [`ClientConfig::reconnect_backoff`] (default 50 ms; greater than zero and at most
    /// [`reconnect_backoff_max`](ClientConfig::reconnect_backoff_max)).
    pub fn reconnect_backoff(mut self, t: Duration) -> Self {
        self.reconnect_backoff = t;
        self
    }

    /// Sets [`ClientConfig::reconnect_backoff_max`] (default 1 s; greater than zero).
    pub fn reconnect_backoff_max(mut self, t: Duration) -> Self {
        self.reconnect_backoff_max = t;
        self
    }

    /// Sets [`ClientConfig::retry_backoff`] (default 100 ms).
    pub fn retry_backoff(mut self, t: Duration) -> Self {
        self.retry_backoff = t;
        self
    }

    /// Sets [`ClientConfig::metadata_max_age`].
    pub fn metadata_max_age(mut self, t: Duration) -> Self {
        self.metadata_max_age = t;
        self
    }

    /// Sets [`ClientConfig::max_response_size`].
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// Checks every field; called by each client's builder.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::Config("bootstrap_servers is empty: give at least one host:port".into()));
        }
        for s in &self.bootstrap_servers {
            parse_host_port(s).map_err(|e| Error::Config(format!("bootstrap_servers: {e}")))?;
        }
        if self.client_id.len() > i16::MAX as usize {
            return Err(Error::Config("client_id is longer than 32767 bytes".into()));
        }
        let nonzero = [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reconnect_backoff", self.reconnect_backoff),
            ("reconnect_backoff_max", self.reconnect_backoff_max),
            ("metadata_max_age", self.metadata_max_age),
        ];
        for (name, d) in nonzero {
            if d.is_zero() {
                return Err(Error::Config(format!("{name} must be greater than zero")));
            }
        }
        if self.reconnect_backoff > self.reconnect_backoff_max {
            return Err(Error::Config(
                "reconnect_backoff must not exceed reconnect_backoff_max".into(),
            ));
        }
        if self.max_response_size < 1024 || self.max_response_size > i32::MAX as usize {
            return Err(Error::Config(format!(
                "max_response_size must be between 1 KiB and {} bytes, got {}",
                i32::MAX,
                self.max_response_size
            )));
        }
        self.validate_security()
    }

    fn validate_security(&self) -> Result<()> {
        let p = self.security_protocol;
        match (&self.sasl, p.uses_sasl()) {
            (None, true) => {
                return Err(Error::Config(format!("security_protocol {p:?} needs sasl (a mechanism and credentials)")));
            }
            (Some(s), false) => {
                return Err(Error::Config(format!(
                    "sasl {} is set but security_protocol {p:?} does not use SASL (use SaslPlaintext or SaslSsl)",
                    s.mechanism()
                )));
            }
            _ => {}
        }
        if let Some(
            SaslConfig::Plain { username, password }
            | SaslConfig::ScramSha256 { username, password }
            | SaslConfig::ScramSha512 { username, password },
        ) = &self.sasl
        {
            if username.is_empty() || password.is_empty() {
                return Err(Error::Config("sasl: username and password must not be empty".into()));
            }
            if username.contains('\0') || password.contains('\0') {
                return Err(Error::Config("sasl: username and password must not contain NUL".into()));
            }
        }
        if let Some(SaslConfig::DelegationToken { token_id, hmac_base64, .. }) = &self.sasl {
            if token_id.is_empty() || hmac_base64.is_empty() {
                return Err(Error::Config("sasl: a delegation token's id and HMAC must not be empty".into()));
            }
        }
        let t = &self.tls;
        if t.client_cert.is_some() != t.client_key.is_some() {
            return Err(Error::Config("tls: client_cert and client_key must be given together".into()));
        }
        if !p.uses_tls() && (t.ca.is_some() || t.client_cert.is_some() || t.danger_accept_invalid_certs) {
            return Err(Error::Config(format!(
                "tls settings are given but security_protocol {p:?} does not use TLS (use Ssl or SaslSsl)"
            )));
        }
        if p.uses_tls() {
            // Loads and parses the PEM files now, so a bad path or PEM fails the build.
            crate::security::tls::client_config(t)?;
        }
        Ok(())
    }
}

/// Splits `host:port`, `[v6]:port` into host and port; IPv6 literals must be bracketed.
pub(crate) fn parse_host_port(s: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| format!("{s:?}: missing ']' in IPv6 literal"))?;
        let port = rest[end + 1..]
            .strip_prefix(':')
            .ok_or_else(|| format!("{s:?}: expected ':port' after ']'"))?;
        (&rest[..end], port)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(|| format!("{s:?}: expected host:port"))?;
        if h.contains(':') {
            return Err(format!("{s:?}: write IPv6 literals in brackets, as [::1]:9092"));
        }
        (h, p)
    };
    if host.is_empty() {
        return Err(format!("{s:?}: empty host"));
    }
    let port: u16 = port.parse().map_err(|_| format!("{s:?}: invalid port {port:?}"))?;
    if port == 0 {
        return Err(format!("{s:?}: port 0 is not valid"));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parsing_accepts_ipv6_literals_and_rejects_junk() {
        assert_eq!(parse_host_port("localhost:9092").unwrap(), ("localhost".into(), 9092));
        assert_eq!(parse_host_port("[::1]:9093").unwrap(), ("::1".into(), 9093));
        assert_eq!(parse_host_port("[fe80::1%eth0]:1").unwrap(), ("fe80::1%eth0".into(), 1));
        assert!(parse_host_port("::1:9092").unwrap_err().contains("brackets"));
        assert!(parse_host_port("host").is_err());
        assert!(parse_host_port("host:99999").is_err());
        assert!(parse_host_port(":9092").is_err());
        assert!(parse_host_port("[::1]9092").is_err());
    }

    #[test]
    fn validation_rejects_bad_values_with_the_field_name() {
        assert!(ClientConfig::new("a:1, b:2").validate().is_ok());
        assert_eq!(ClientConfig::new(" a:1 ,, b:2 ").bootstrap_servers, vec!["a:1", "b:2"]);
        let e = ClientConfig::new("").validate().unwrap_err().to_string();
        assert!(e.contains("bootstrap_servers is empty"), "{e}");
        let e = ClientConfig::new("a:1").request_timeout(Duration::ZERO).validate().unwrap_err();
        assert!(e.to_string().contains("request_timeout"), "{e}");
        let e = ClientConfig::new("a:1").max_response_size(10).validate().unwrap_err();
        assert!(e.to_string().contains("max_response_size"), "{e}");
        let c = ClientConfig::new("a:1")
            .reconnect_backoff(Duration::from_millis(10))
            .reconnect_backoff_max(Duration::from_millis(20))
            .retry_backoff(Duration::from_millis(30));
        assert_eq!(
            (c.reconnect_backoff, c.reconnect_backoff_max, c.retry_backoff),
            (Duration::from_millis(10), Duration::from_millis(20), Duration::from_millis(30))
        );
        c.validate().unwrap();
        let e = ClientConfig::new("a:1").reconnect_backoff(Duration::from_secs(2)).validate().unwrap_err();
        assert!(e.to_string().contains("reconnect_backoff_max"), "{e}");
    }

    #[test]
    fn security_settings_are_validated_together() {
        let scram = || SaslConfig::ScramSha512 { username: "alice".into(), password: "pw".into() };
        let base = || ClientConfig::new("a:1");
        let e = base().security_protocol(SecurityProtocol::SaslPlaintext).validate().unwrap_err();
        assert!(e.to_string().contains("needs sasl"), "{e}");
        let e = base().sasl(scram()).validate().unwrap_err();
        assert!(e.to_string().contains("does not use SASL"), "{e}");
        assert!(base().security_protocol(SecurityProtocol::SaslPlaintext).sasl(scram()).validate().is_ok());
        let e = base()
            .security_protocol(SecurityProtocol::SaslPlaintext)
            .sasl(SaslConfig::Plain { username: "".into(), password: "x".into() })
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("must not be empty"), "{e}");
        let tls = TlsConfig { client_key: Some(Pem::Memory("k".into())), ..TlsConfig::default() };
        let e = base().security_protocol(SecurityProtocol::Ssl).tls(tls).validate().unwrap_err();
        assert!(e.to_string().contains("given together"), "{e}");
        let tls = TlsConfig { ca: Some(Pem::File("/nonexistent.pem".into())), ..TlsConfig::default() };
        let e = base().tls(tls.clone()).validate().unwrap_err();
        assert!(e.to_string().contains("does not use TLS"), "{e}");
        let e = base().security_protocol(SecurityProtocol::Ssl).tls(tls).validate().unwrap_err();
        assert!(e.to_string().contains("/nonexistent.pem"), "{e}");
        // No CA: Mozilla's roots; nothing to read, valid.
        assert!(base().security_protocol(SecurityProtocol::Ssl).validate().is_ok());
    }

    #[test]
    fn tls_builders_set_their_fields() {
        let t = TlsConfig::new()
            .ca(Pem::File("/ca.pem".into()))
            .webpki_roots(true)
            .client_auth(Pem::File("/c.pem".into()), Pem::Memory("key".into()))
            .server_name("kafka.example.com")
            .danger_accept_invalid_certs(true);
        assert!(matches!(&t.ca, Some(Pem::File(p)) if p.to_str() == Some("/ca.pem")));
        assert!(t.webpki_roots && t.danger_accept_invalid_certs);
        assert!(matches!(&t.client_cert, Some(Pem::File(p)) if p.to_str() == Some("/c.pem")));
        assert!(matches!(&t.client_key, Some(Pem::Memory(k)) if k == "key"));
        assert_eq!(t.server_name.as_deref(), Some("kafka.example.com"));
        let d = TlsConfig::new();
        assert!(d.ca.is_none() && !d.webpki_roots && d.client_cert.is_none() && !d.danger_accept_invalid_certs);
    }

    #[test]
    fn debug_output_redacts_every_secret() {
        let c = ClientConfig::new("a:1")
            .security_protocol(SecurityProtocol::SaslSsl)
            .sasl(SaslConfig::ScramSha256 { username: "alice".into(), password: "hunter2-pw".into() })
            .tls(TlsConfig::new().client_auth(
                Pem::File("/c.pem".into()),
                Pem::Memory("-----BEGIN PRIVATE KEY-----\nS3CR3TKEY\n".into()),
            ));
        let d = format!("{c:?}");
        assert!(d.contains("alice") && d.contains("SCRAM-SHA-256") && d.contains("/c.pem"), "{d}");
        assert!(!d.contains("hunter2-pw") && !d.contains("S3CR3TKEY"), "{d}");
        let p = SaslConfig::Plain { username: "bob".into(), password: "plain-pw".into() };
        assert!(!format!("{p:?}").contains("plain-pw"));
        assert!(!format!("{:?}", Pem::Memory("S3CR3TKEY".into())).contains("S3CR3TKEY"));
    }
}
