//! Connections by broker address and purpose, made on demand and remade with backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use super::connection::{BrokerConnection, ConnectionSettings};
use crate::config::{parse_host_port, ClientConfig};
use crate::error::{Error, Result};
use crate::metrics::network::NetworkMetrics;
use crate::security::{tls, Security};

/// What a connection is for. A broker gets one connection per purpose, so a long-poll
/// fetch never waits behind, or delays, a produce or a group heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ConnKind {
    /// Metadata, admin, offsets, coordinator lookups.
    Default,
    /// Produce requests, made and driven by the producer's own thread.
    Produce,
    /// Long-poll fetches.
    Fetch,
    /// Group coordination: offset commits and fetches now, heartbeats with consumer groups
    /// (they must not queue behind fetches).
    Group,
}

/// State of one (address, purpose) slot.
#[derive(Default)]
struct Slot {
    conn: Option<BrokerConnection>,
    /// Consecutive failed connects; drives the backoff.
    failures: u32,
    /// No new attempt before this instant.
    retry_at: Option<Instant>,
}

/// One connection slot, locked while a connection is made for it.
type SharedSlot = Arc<tokio::sync::Mutex<Slot>>;

/// Makes and keeps broker connections. Cheap to share behind an `Arc`.
pub(crate) struct ConnectionPool {
    settings: Arc<ConnectionSettings>,
    security: Security,
    connect_timeout: Duration,
    backoff: Duration,
    backoff_max: Duration,
    slots: Mutex<HashMap<(String, ConnKind), SharedSlot>>,
}

impl ConnectionPool {
    /// A pool for `config`; fails when its TLS settings cannot be loaded.
    pub(crate) fn new(config: &ClientConfig) -> Result<ConnectionPool> {
        Ok(ConnectionPool {
            security: Security::new(config)?,
            settings: Arc::new(ConnectionSettings {
                client_id: config.client_id.clone(),
                request_timeout: config.request_timeout,
                max_response_size: config.max_response_size,
                metrics: Arc::new(NetworkMetrics::new(&config.client_id)),
            }),
            connect_timeout: config.connect_timeout,
            backoff: config.reconnect_backoff,
            backoff_max: config.reconnect_backoff_max,
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// A live connection to `addr` for `kind`, reusing one when it is still open.
    ///
    /// Concurrent callers for the same slot wait for one connect attempt. After a failure
    /// the slot backs off (exponential from `reconnect_backoff` to `reconnect_backoff_max`,
    /// ±20 % jitter); a caller arriving during the backoff waits it out, then tries.
    pub(crate) async fn get(&self, addr: &str, kind: ConnKind) -> Result<BrokerConnection> {
        let slot = self
            .slots
            .lock()
            .unwrap()
            .entry((addr.to_owned(), kind))
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(c) = &slot.conn {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            slot.conn = None;
        }
        if let Some(at) = slot.retry_at {
            tokio::time::sleep_until(at).await;
        }
        match self.connect(addr).await {
            Ok(c) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.conn = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                self.settings.metrics.connection_failures.inc();
                slot.failures = slot.failures.saturating_add(1);
                let wait = backoff(self.backoff, self.backoff_max, slot.failures);
                slot.retry_at = Some(Instant::now() + wait);
                debug!(broker = addr, error = %e, next_attempt_in = ?wait, "connect failed");
                Err(e)
            }
        }
    }

    /// The client's network metrics.
    pub(crate) fn metrics(&self) -> &Arc<NetworkMetrics> {
        &self.settings.metrics
    }

    /// The connection of a slot if it is open now, without connecting.
    pub(crate) fn existing(&self, addr: &str, kind: ConnKind) -> Option<BrokerConnection> {
        let slot = self.slots.lock().unwrap().get(&(addr.to_owned(), kind)).cloned()?;
        let slot = slot.try_lock().ok()?;
        slot.conn.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    /// Drops every connection to `addr` (a broker moved away from it). Requests in flight
    /// on them still complete; the task ends once the last handle is dropped.
    pub(crate) fn forget(&self, addr: &str) {
        self.slots.lock().unwrap().retain(|(a, _), _| a != addr);
    }

    async fn connect(&self, addr: &str) -> Result<BrokerConnection> {
        let conn_err = |e: std::io::Error| Error::Connection { broker: addr.to_owned(), cause: Arc::new(e) };
        let (host, port) = parse_host_port(addr).map_err(Error::InvalidArgument)?;
        let attempt = async {
            let mut last = None;
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await.map_err(conn_err)?;
            for sa in addrs {
                match TcpStream::connect(sa).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            Err(conn_err(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host} resolved to no address"))
            })))
        };
        let stream = tokio::time::timeout(self.connect_timeout, attempt).await.map_err(|_| {
            conn_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connect timed out after {:?}", self.connect_timeout),
            ))
        })??;
        stream.set_nodelay(true).map_err(conn_err)?;
        // TLS, ApiVersions and SASL must together finish within the connect timeout too.
        let sasl = self.security.sasl.clone();
        let setup = async {
            match &self.security.tls {
                Some(tls) => {
                    let stream = tls.connect(stream, &host, addr).await?;
                    BrokerConnection::start_authenticated(stream, addr, self.settings.clone(), sasl).await
                }
                None => BrokerConnection::start_authenticated(stream, addr, self.settings.clone(), sasl).await,
            }
        };
        match tokio::time::timeout(self.connect_timeout, setup).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.setup_error(addr, e)),
            Err(_) => Err(conn_err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "connection setup ({}ApiVersions{}) not done within {:?}",
                    if self.security.tls.is_some() { "TLS handshake, " } else { "" },
                    if self.security.sasl.is_some() { ", SASL" } else { "" },
                    self.connect_timeout
                ),
            ))),
        }
    }

    /// A failure during connection setup that carries a TLS error (a TLS alert from the
    /// broker, such as a refused client certificate under mutual TLS, arrives with the first
    /// read after the handshake) is an [`Error::Tls`].
    fn setup_error(&self, addr: &str, e: Error) -> Error {
        match &e {
            Error::Connection { cause, .. } => tls::tls_error(addr, cause).unwrap_or(e),
            _ => e,
        }
    }
}

/// `base * 2^(failures-1)`, capped at `max`, with ±20 % jitter.
fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let capped = exp.min(max);
    let jitter = rand::rng().random_range(0.8..1.2);
    capped.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let (b, m) = (Duration::from_millis(50), Duration::from_secs(1));
        let first = backoff(b, m, 1);
        assert!(first >= Duration::from_millis(40) && first <= Duration::from_millis(60), "{first:?}");
        let third = backoff(b, m, 3);
        assert!(third >= Duration::from_millis(160) && third <= Duration::from_millis(240), "{third:?}");
        for n in [10, 100, u32::MAX] {
            let d = backoff(b, m, n);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200), "{d:?}");
        }
    }

    #[tokio::test]
    async fn refused_connect_is_a_retriable_connection_error_and_backs_off() {
        // A port nobody listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let pool = ConnectionPool::new(&ClientConfig::new(&addr)).unwrap();
        let e = pool.get(&addr, ConnKind::Default).await.unwrap_err();
        assert!(matches!(e, Error::Connection { .. }) && e.is_retriable(), "{e}");
        let t = Instant::now();
        let _ = pool.get(&addr, ConnKind::Default).await.unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(35), "second attempt did not back off");
    }
}
