//! `ConsumerRebalanceListener`: the application's callbacks around assignment changes.
//! They receive the `Consumer` and may call it back, so this file (with the coordinator
//! that runs them inside `poll`) sits in the one kept cycle of the consumer (DESIGN.md,
//! "Layers"); kept out of `group/mod.rs` so that the group's plain types and the default
//! assignor list stay below the consumer's config (issue 12).

use futures::future::BoxFuture;

use crate::consumer::{Consumer, TopicPartition};

/// Callbacks around changes of a subscribing consumer's assignment (Java's
/// `ConsumerRebalanceListener`).
///
/// They run inside [`Consumer::poll`] (or `recv` / the stream), on the application's task,
/// never concurrently with each other, and may call the consumer back — typically
/// [`Consumer::commit`] in `on_partitions_revoked` to commit what was processed. A poll
/// that runs a callback returns only after it completes. Calls that would wait for that
/// poll (`poll`, `recv`, `subscribe`, `subscribe_pattern`, `unsubscribe`, `close`) fail with
/// [`Error::InvalidArgument`](crate::error::Error::InvalidArgument) from inside a callback.
/// Every method has an empty default (`on_partitions_lost` defaults to
/// `on_partitions_revoked`, as in Java).
///
/// ```
/// use futures::future::BoxFuture;
/// use ferrokafka::consumer::{Consumer, ConsumerRebalanceListener, TopicPartition};
///
/// struct CommitOnRevoke;
/// impl ConsumerRebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(&'a self, consumer: &'a Consumer, _revoked: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
///         Box::pin(async move {
///             if let Err(e) = consumer.commit(None).await {
///                 eprintln!("commit on revoke failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait ConsumerRebalanceListener: Send + Sync + 'static {
    /// Partitions this member stops owning in an orderly rebalance (eager: all of them
    /// before every rebalance; cooperative: only those that move). Called while they are
    /// still assigned, so their positions can still be committed.
    fn on_partitions_revoked<'a>(&'a self, _consumer: &'a Consumer, _partitions: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Partitions newly assigned to this member (eager: the whole assignment; cooperative:
    /// the added ones, possibly none). Called after they are assigned and before any of
    /// their records is returned.
    fn on_partitions_assigned<'a>(&'a self, _consumer: &'a Consumer, _partitions: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Partitions this member lost without an orderly revocation (its session expired, it
    /// was fenced, or it stopped polling for `max_poll_interval`): other members may own
    /// them already, so committing their offsets fails. Default: `on_partitions_revoked`.
    fn on_partitions_lost<'a>(&'a self, consumer: &'a Consumer, partitions: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// The listener used when none is set: does nothing.
pub(crate) struct NoopListener;
impl ConsumerRebalanceListener for NoopListener {}
