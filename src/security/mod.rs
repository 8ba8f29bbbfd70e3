//! TLS and SASL: what turns a TCP stream into an authenticated Kafka connection.
//!
//! ```text
//!  pool::connect:  TCP ──► tls::connect (rustls, if Ssl/SaslSsl) ──► BrokerConnection::start
//!                                 ApiVersions ──► sasl::authenticate (if SaslPlaintext/SaslSsl)
//!  connection task:  session lifetime from the broker (KIP-368) ──► re-authenticate in the
//!                    write loop before it ends (new requests wait, none is lost)
//! ```
//!
//! `Security` is built once per client from the [`ClientConfig`] (PEM
//! files are read then) and shared by every connection of the client.

use std::sync::Arc;

use crate::config::ClientConfig;
use crate::error::Result;

pub(crate) mod oauth;
pub(crate) mod sasl;
pub(crate) mod scram;
pub(crate) mod settings;
pub(crate) mod tls;

pub use oauth::{OAuthBearerToken, OAuthBearerTokenProvider};

/// The security settings of one client, ready for its connections.
pub(crate) struct Security {
    /// The rustls client config, when connections use TLS.
    pub tls: Option<tls::TlsConnector>,
    /// The SASL authenticator, when connections use SASL.
    pub sasl: Option<Arc<sasl::Authenticator>>,
}

impl Security {
    /// Builds TLS and SASL state from a validated config.
    pub(crate) fn new(config: &ClientConfig) -> Result<Security> {
        let p = config.security_protocol;
        let tls = if p.uses_tls() { Some(tls::TlsConnector::new(&config.tls)?) } else { None };
        let sasl = match (&config.sasl, p.uses_sasl()) {
            (Some(s), true) => Some(Arc::new(sasl::Authenticator::new(s.clone()))),
            _ => None,
        };
        Ok(Security { tls, sasl })
    }
}
