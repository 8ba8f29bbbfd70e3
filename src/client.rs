//! What every client role shares: the connection pool, the metadata cache, request routing,
//! and the one place where retry decisions are made.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use crate::config::ClientConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::metadata::{Cluster, Metadata};
use crate::network::{BrokerConnection, ConnKind, ConnectionPool};

/// The shared core of a client: cheap to clone behind an `Arc`.
pub(crate) struct ClientCore {
    pub(crate) config: ClientConfig,
    pub(crate) pool: Arc<ConnectionPool>,
    pub(crate) metadata: Arc<Metadata>,
}

/// What to do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Try again after the retry backoff; metadata was invalidated if it was the cause.
    Again,
    /// Give up and return the error.
    No,
}

impl ClientCore {
    /// Validates the config and learns the cluster from the bootstrap servers.
    pub(crate) async fn connect(config: ClientConfig) -> Result<Arc<ClientCore>> {
        config.validate()?;
        let pool = Arc::new(ConnectionPool::new(&config)?);
        let metadata = Metadata::new(&config, pool.clone());
        let core = Arc::new(ClientCore { config, pool, metadata });
        core.metadata.refresh_topics(&[]).await?;
        Ok(core)
    }

    /// The retry decision for every request path, next to the metadata invalidation it
    /// triggers. Errors that say our picture of the cluster is wrong (a moved leader, a
    /// vanished broker, a broken connection) mark the metadata stale so the next attempt
    /// refreshes it first.
    pub(crate) fn on_error(&self, err: &Error) -> Retry {
        if err.is_connection_level() {
            self.metadata.invalidate();
        }
        if let Some(code) = err.code() {
            if matches!(
                code,
                ErrorCode::NotLeaderOrFollower
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::UnknownLeaderEpoch
                    | ErrorCode::NotController
                    | ErrorCode::KafkaStorageError
                    | ErrorCode::ReplicaNotAvailable
                    | ErrorCode::BrokerNotAvailable
            ) {
                self.metadata.invalidate();
            }
            if code == ErrorCode::NotController {
                // Retriable in practice (the controller moved), though Java's table says no.
                return Retry::Again;
            }
        }
        if err.is_retriable() { Retry::Again } else { Retry::No }
    }

    /// Runs `attempt` until it succeeds, fails with a non-retriable error, or `timeout`
    /// passes, sleeping `retry_backoff` between attempts. On timeout the error says how many
    /// attempts were made and what the last one returned.
    pub(crate) async fn with_retries<T, F, Fut>(&self, what: &str, timeout: Duration, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + timeout;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let outcome = match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Error::Timeout(format!(
                        "{what} did not complete within {timeout:?} ({attempts} attempts)"
                    )));
                }
            };
            let err = match outcome {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if self.on_error(&err) == Retry::No {
                return Err(err);
            }
            let backoff = self.config.retry_backoff;
            if Instant::now() + backoff >= deadline {
                return Err(Error::Timeout(format!(
                    "{what} did not complete within {timeout:?} ({attempts} attempts); last error: {err}"
                )));
            }
            debug!(what, attempts, error = %err, "retrying");
            tokio::time::sleep(backoff).await;
        }
    }

    /// A metadata snapshot, refreshed first if it is stale or old.
    pub(crate) async fn cluster(&self) -> Result<Arc<Cluster>> {
        self.metadata.fresh().await
    }

    /// A connection to broker `id`, refreshing metadata once if the id is unknown. A node
    /// still missing then (a dead leader or coordinator) is BROKER_NOT_AVAILABLE, which is
    /// retriable: `on_error` invalidates the metadata and `Coordinator::check` forgets a
    /// cached coordinator, so the retry finds where the work moved.
    pub(crate) async fn broker(&self, id: i32, kind: ConnKind) -> Result<BrokerConnection> {
        let mut cluster = self.cluster().await?;
        if cluster.broker_addr(id).is_none() {
            cluster = self.metadata.refresh_topics(&[]).await?;
        }
        let addr = cluster.broker_addr(id).ok_or_else(|| {
            Error::broker(ErrorCode::BrokerNotAvailable, "Metadata", Some(format!("broker {id} is not in the cluster metadata")), None, None)
        })?;
        self.pool.get(&addr, kind).await
    }

    /// As [`ClientCore::broker`], but with the address the current snapshot has, without
    /// waiting for a refresh of stale metadata (the Sender's path: a slow refresh must not
    /// hold produce requests to brokers whose address is known). Refreshes only for an
    /// unknown id.
    pub(crate) async fn broker_known(&self, id: i32, kind: ConnKind) -> Result<BrokerConnection> {
        match self.metadata.snapshot().broker_addr(id) {
            Some(addr) => self.pool.get(&addr, kind).await,
            None => self.broker(id, kind).await,
        }
    }

    /// A connection to the active controller as the metadata names it (KRaft brokers
    /// forward controller requests, so any broker serves when none is named).
    pub(crate) async fn controller(&self) -> Result<BrokerConnection> {
        let cluster = self.cluster().await?;
        match cluster.controller_id {
            Some(id) => self.broker(id, ConnKind::Default).await,
            None => self.any_broker().await,
        }
    }

    /// A connection to any live broker, preferring one already connected.
    pub(crate) async fn any_broker(&self) -> Result<BrokerConnection> {
        let cluster = self.cluster().await?;
        let addrs: Vec<String> = cluster.brokers.values().map(|b| b.addr()).collect();
        if let Some(c) = addrs.iter().find_map(|a| self.pool.existing(a, ConnKind::Default)) {
            return Ok(c);
        }
        let mut last = None;
        for a in &addrs {
            match self.pool.get(a, ConnKind::Default).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout("the cluster metadata lists no broker".into())))
    }
}
