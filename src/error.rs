//! The one public error type of the crate.
//!
//! Every fallible operation returns [`Error`]. Three predicates tell the caller what to do:
//!
//! - [`Error::is_retriable`]: the same operation may succeed if tried again (a leader moved,
//!   a connection broke, a request timed out). The client already retries these internally
//!   where the Java client does; seeing one means the retries or the operation's timeout ran
//!   out.
//! - [`Error::is_fatal`]: this client instance cannot be used any more.
//! - [`Error::is_abortable`]: (transactional producer) the current transaction cannot
//!   commit; call `abort_transaction` and go on with a new transaction.
//! - none of them: the operation failed for a reason that retrying does not fix (bad argument,
//!   topic already exists, authorization failure).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use crate::error_code::ErrorCode;

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error code returned by a broker, with the context it was returned in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerError {
    /// The Kafka error code.
    pub code: ErrorCode,
    /// The broker's error message, when the response carried one.
    pub message: Option<String>,
    /// The API of the request that failed, such as `Metadata` or `CreateTopics`.
    pub api: Option<&'static str>,
    /// The topic the error applies to, when it applies to one.
    pub topic: Option<String>,
    /// The partition the error applies to, when it applies to one.
    pub partition: Option<i32>,
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(api) = self.api {
            write!(f, " from {api}")?;
        }
        match (&self.topic, self.partition) {
            (Some(t), Some(p)) => write!(f, " for {t}-{p}")?,
            (Some(t), None) => write!(f, " for topic {t}")?,
            _ => {}
        }
        match &self.message {
            Some(m) if !m.is_empty() => write!(f, ": {m}"),
            _ => write!(f, ": {}", self.code.description()),
        }
    }
}

/// Every error this crate returns.
///
/// Match on the variant for detail, or use [`Error::is_retriable`], [`Error::is_fatal`] and
/// [`Error::code`] for decisions.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A broker answered with an error code.
    #[error("broker error {0}")]
    Broker(Box<BrokerError>),

    /// A connection to a broker could not be made, or broke while requests were in flight.
    /// Every request that was in flight on the connection gets this same error. Retriable.
    #[error("connection to {broker} failed: {cause}")]
    Connection {
        /// The broker's address (`host:port`).
        broker: String,
        /// What went wrong, shared by every request that failed with the connection.
        cause: Arc<std::io::Error>,
    },

    /// A request got no response within its timeout. The connection it was sent on is
    /// closed, as the Java client does, because the request's fate is unknown. Retriable.
    #[error("{api} request to {broker} timed out after {timeout:?}")]
    RequestTimeout {
        /// The broker's address.
        broker: String,
        /// The API of the request.
        api: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// An operation did not finish within its overall timeout (for example
    /// `default_api_timeout` of an admin call, spanning several retries). Retriable.
    #[error("timed out: {0}")]
    Timeout(String),

    /// The peer does not speak the Kafka protocol on this port: it answered with TLS or
    /// HTTP bytes, for example because a plaintext client was pointed at a TLS listener.
    #[error("wrong protocol on {broker}: {detail}")]
    WrongProtocol {
        /// The broker's address.
        broker: String,
        /// What the peer sent instead.
        detail: String,
    },

    /// A response frame announced a size above `max_response_size`; nothing was allocated
    /// for it and the connection was closed.
    #[error(
        "response frame from {broker} announces {size} bytes, more than max_response_size ({max} bytes)"
    )]
    FrameTooLarge {
        /// The broker's address.
        broker: String,
        /// The size the frame announced.
        size: i64,
        /// The configured limit.
        max: usize,
    },

    /// A response could not be decoded, or broke a rule of the protocol (unknown
    /// correlation id, negative size, truncated body). The connection was closed.
    #[error("malformed response from {broker}: {detail}")]
    Protocol {
        /// The broker's address.
        broker: String,
        /// What was wrong.
        detail: String,
    },

    /// The broker does not support any version of an API that this client can use.
    #[error(
        "broker {broker} does not support {api} at a version this client speaks \
         (client {client_min}..={client_max}, broker {})",
        broker_range.map(|(a, b)| format!("{a}..={b}")).unwrap_or_else(|| "none".into())
    )]
    UnsupportedVersion {
        /// The broker's address.
        broker: String,
        /// The API's name.
        api: &'static str,
        /// The lowest version this client speaks.
        client_min: i16,
        /// The highest version this client speaks.
        client_max: i16,
        /// The broker's version range, or `None` when the broker lacks the API entirely.
        broker_range: Option<(i16, i16)>,
    },

    /// A configuration value is invalid; returned when building a client.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An argument passed to a call is invalid (an empty topic name, for example).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A fetched record batch failed its checks: a CRC mismatch, a malformed record, a
    /// batch that inflates past the decompression limit, an unsupported message format.
    /// The consumer's position stays at the batch; seek past it to continue.
    #[error("corrupt record batch in {topic}-{partition} at offset {offset}: {detail}")]
    CorruptRecord {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The base offset of the batch (or the fetch offset when no batch could be read).
        offset: i64,
        /// What was wrong.
        detail: String,
    },

    /// The partition's log was truncated below what the consumer already read (KIP-320: an
    /// unclean leader election, for example), and `auto_offset_reset` is `Error`. Seek to
    /// continue.
    #[error(
        "log truncation detected for {topic}-{partition}: position {position} (last fetched \
         epoch {last_fetched_epoch}), but the log diverges from offset {divergent_offset} \
         (epoch {divergent_epoch})"
    )]
    LogTruncation {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The consumer's position when the truncation was found.
        position: i64,
        /// The leader epoch of the last batch the consumer fetched.
        last_fetched_epoch: i32,
        /// The first offset known to diverge (the end offset of `divergent_epoch`).
        divergent_offset: i64,
        /// The largest epoch the leader and the consumer agree on.
        divergent_epoch: i32,
    },

    /// A partition has no position (no committed offset) and `auto_offset_reset` is
    /// [`OffsetReset::Error`](crate::consumer::OffsetReset::Error): seek it first.
    #[error("no offset for {topic}-{partition}: nothing committed and auto_offset_reset is Error; seek first")]
    NoOffsetForPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// A group commit was refused because the member's generation is over: the group
    /// rebalanced and the partitions may belong to another member now (Java's
    /// `CommitFailedException`). Not retriable as is: poll to rejoin, then process and
    /// commit again.
    #[error("commit failed: {0}")]
    CommitFailed(String),

    /// SASL authentication failed: wrong password, unknown user, a mechanism the broker
    /// does not enable, a token the broker refused, or a broker that failed to prove it knows
    /// the SCRAM credential. Not retriable: the same credentials fail again. Never carries a
    /// secret.
    #[error("SASL {mechanism} authentication with {broker} failed: {detail}")]
    Authentication {
        /// The broker's address.
        broker: String,
        /// The SASL mechanism (`PLAIN`, `SCRAM-SHA-256`, ...).
        mechanism: &'static str,
        /// What went wrong, with the broker's message when it sent one.
        detail: String,
    },

    /// The TLS handshake with a broker failed: an untrusted or expired certificate, a
    /// certificate not valid for the broker's name, a client certificate the broker
    /// refused, or a peer that does not speak TLS. Not retriable.
    #[error("TLS with {broker} failed: {detail}")]
    Tls {
        /// The broker's address.
        broker: String,
        /// What went wrong.
        detail: String,
    },

    /// A transactional call was made in a state that does not allow it: `send` or
    /// `commit_transaction` before `begin_transaction`, `begin_transaction` twice, any
    /// call before `init_transactions`, or a transactional call on a producer without
    /// `transactional_id`. The producer's state is unchanged; neither retriable nor
    /// fatal.
    #[error("invalid transaction state: {0}")]
    InvalidTransactionState(String),

    /// The current transaction cannot be committed (a batch failed, the coordinator
    /// answered `TRANSACTION_ABORTABLE`, an authorization failure, or the group
    /// refused the offsets of `send_offsets_to_transaction`): call `abort_transaction`,
    /// then begin a new one. [`Error::is_abortable`] is true; the cause is inside.
    #[error("the transaction must be aborted: {0}")]
    TransactionAbortable(Box<Error>),

    /// The client failed for good because of the error inside (for example a
    /// transactional producer whose coordinator refused `EndTxn(commit)` so that the
    /// outcome cannot be known, or whose abort could not complete): drop it and build a new
    /// one. [`Error::is_fatal`] is true; [`Error::code`] is the cause's.
    #[error("the client failed for good and must be dropped: {0}")]
    Fatal(Box<Error>),

    /// The client was closed or its background tasks are gone.
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// Builds a [`Error::Broker`] from a code and its context.
    pub(crate) fn broker(
        code: ErrorCode,
        api: &'static str,
        message: Option<String>,
        topic: Option<String>,
        partition: Option<i32>,
    ) -> Error {
        Error::Broker(Box::new(BrokerError { code, message, api: Some(api), topic, partition }))
    }

    /// Maps a wire error code to `Ok(())` for 0 and an [`Error::Broker`] otherwise.
    pub(crate) fn check_code(
        code: i16,
        api: &'static str,
        message: Option<&str>,
        topic: Option<&str>,
        partition: Option<i32>,
    ) -> Result<()> {
        match ErrorCode::from_code(code) {
            None => Ok(()),
            Some(code) => Err(Error::broker(
                code,
                api,
                message.map(str::to_owned),
                topic.map(str::to_owned),
                partition,
            )),
        }
    }

    /// This error as the one a client returns once it failed for good: itself when it is
    /// already fatal, else wrapped in [`Error::Fatal`], so that every error of a failed
    /// client says [`Error::is_fatal`].
    pub(crate) fn into_fatal(self) -> Error {
        if self.is_fatal() {
            self
        } else {
            Error::Fatal(Box::new(self))
        }
    }

    /// The Kafka error code, when a broker returned one (for
    /// [`Error::TransactionAbortable`] and [`Error::Fatal`], their cause's).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker(b) => Some(b.code),
            Error::TransactionAbortable(cause) | Error::Fatal(cause) => cause.code(),
            _ => None,
        }
    }

    /// The broker error with its context, when a broker returned one.
    pub fn broker_error(&self) -> Option<&BrokerError> {
        match self {
            Error::Broker(b) => Some(b),
            _ => None,
        }
    }

    /// Whether the same operation may succeed when tried again.
    ///
    /// True for connection failures, timeouts, the broker error codes the Java client
    /// classes as retriable (`NOT_LEADER_OR_FOLLOWER`, `REQUEST_TIMED_OUT`, ...), and
    /// `BROKER_NOT_AVAILABLE`: the client makes that one itself when a leader or
    /// coordinator it was told about is missing from the cluster metadata (the node died);
    /// the retry refreshes the metadata and looks the coordinator up again, as the Java
    /// client does when a coordinator's node is not available.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker(b) => b.code.is_retriable() || b.code == ErrorCode::BrokerNotAvailable,
            Error::Connection { .. } | Error::RequestTimeout { .. } | Error::Timeout(_) => true,
            _ => false,
        }
    }

    /// Whether the client instance that returned this error is finished and must be
    /// dropped: it was closed, or a broker fenced or refused it for good
    /// (`PRODUCER_FENCED`, `FENCED_INSTANCE_ID`, `UNRELEASED_INSTANCE_ID`, `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`,
    /// `CLUSTER_AUTHORIZATION_FAILED`, `UNSUPPORTED_VERSION`, and for a transactional
    /// producer `INVALID_TXN_STATE` from its coordinator), or it failed for good for
    /// another reason ([`Error::Fatal`]). Once a producer is in its fatal state, every error
    /// it returns says so.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Closed | Error::Fatal(_) => true,
            Error::Broker(b) => matches!(
                b.code,
                ErrorCode::ProducerFenced
                    | ErrorCode::InvalidTxnState
                    | ErrorCode::FencedInstanceId
                    | ErrorCode::UnreleasedInstanceId
                    | ErrorCode::TransactionalIdAuthorizationFailed
                    | ErrorCode::ClusterAuthorizationFailed
                    | ErrorCode::UnsupportedVersion
            ),
            _ => false,
        }
    }

    /// Whether the transaction that produced this error must be aborted, after which the
    /// transactional producer goes on (Java's abortable errors): a failed batch, an
    /// authorization failure for a topic or group, `TRANSACTION_ABORTABLE`, or the group
    /// refusing transactional offsets (`UNKNOWN_MEMBER_ID`, `ILLEGAL_GENERATION`,
    /// `FENCED_INSTANCE_ID`). Never true for a fatal error.
    pub fn is_abortable(&self) -> bool {
        match self {
            // The variant is only made for a transaction that can be aborted, whatever the
            // cause says on its own: FENCED_INSTANCE_ID fences a consumer (fatal for it) but
            // only makes the producer's transaction abortable.
            Error::TransactionAbortable(_) => true,
            Error::Broker(b) => b.code == ErrorCode::TransactionAbortable,
            _ => false,
        }
    }

    /// Whether this error says the connection it came from is unusable, so that cached
    /// connection and metadata state must be dropped.
    pub(crate) fn is_connection_level(&self) -> bool {
        matches!(
            self,
            Error::Connection { .. }
                | Error::RequestTimeout { .. }
                | Error::Protocol { .. }
                | Error::FrameTooLarge { .. }
                | Error::WrongProtocol { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_by_name_and_number() {
        assert_eq!(ErrorCode::from_code(0), None);
        assert_eq!(ErrorCode::from_code(6), Some(ErrorCode::NotLeaderOrFollower));
        assert_eq!(ErrorCode::NotLeaderOrFollower.name(), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(ErrorCode::from_code(36), Some(ErrorCode::TopicAlreadyExists));
        assert_eq!(ErrorCode::from_code(-1), Some(ErrorCode::UnknownServerError));
        assert_eq!(ErrorCode::from_code(9999), Some(ErrorCode::Unknown(9999)));
        // Every known code survives the round trip.
        for c in -1..=133i16 {
            if let Some(e) = ErrorCode::from_code(c) {
                assert_eq!(e.code(), c);
            }
        }
    }

    #[test]
    fn predicates_follow_the_java_classification() {
        let e = |c| Error::broker(c, "Produce", None, Some("t".into()), Some(1));
        assert!(e(ErrorCode::NotLeaderOrFollower).is_retriable());
        assert!(e(ErrorCode::NotCoordinator).is_retriable());
        assert!(!e(ErrorCode::TopicAlreadyExists).is_retriable());
        assert!(e(ErrorCode::ProducerFenced).is_fatal());
        assert!(!e(ErrorCode::ProducerFenced).is_retriable());
        let conn = Error::Connection {
            broker: "b:1".into(),
            cause: Arc::new(std::io::Error::other("reset")),
        };
        assert!(conn.is_retriable() && !conn.is_fatal());
        assert!(Error::Closed.is_fatal());
        let abortable = Error::TransactionAbortable(Box::new(e(ErrorCode::TopicAuthorizationFailed)));
        assert!(abortable.is_abortable() && !abortable.is_fatal() && !abortable.is_retriable());
        assert!(e(ErrorCode::TransactionAbortable).is_abortable());
        let group_fenced = Error::TransactionAbortable(Box::new(e(ErrorCode::FencedInstanceId)));
        assert!(group_fenced.is_abortable() && !group_fenced.is_fatal() && !group_fenced.is_retriable());
        assert!(!e(ErrorCode::ProducerFenced).is_abortable());
        let state = Error::InvalidTransactionState("send before begin_transaction".into());
        assert!(!state.is_abortable() && !state.is_fatal() && !state.is_retriable());
    }

    #[test]
    fn broker_errors_read_well() {
        let e = Error::broker(
            ErrorCode::TopicAlreadyExists,
            "CreateTopics",
            Some("Topic 'x' already exists.".into()),
            Some("x".into()),
            None,
        );
        assert_eq!(
            e.to_string(),
            "broker error TOPIC_ALREADY_EXISTS (36) from CreateTopics for topic x: Topic 'x' already exists."
        );
        let e = Error::broker(ErrorCode::NotLeaderOrFollower, "Produce", None, Some("t".into()), Some(3));
        assert!(e.to_string().contains("for t-3: For requests intended only for the leader"));
    }
}
