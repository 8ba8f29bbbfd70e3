//! Producer settings.

use std::sync::Arc;
use std::time::Duration;

use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::producer::partitioner::Partitioner;
pub use crate::record::Compression;

/// `acks`: how many replicas must have a record before the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker sends no response; records complete once written to the socket
    /// and their offset is reported as -1. Nothing is retried. (Named `Zero`, not `None`,
    /// so it cannot be read as `Option::None`.)
    Zero,
    /// `acks=1`: the partition leader has written the record.
    Leader,
    /// `acks=all` (the default): every in-sync replica has the record.
    #[default]
    All,
}

impl Acks {
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::Zero => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Settings of a [`Producer`](crate::producer::Producer). Defaults are the Java client's
/// (Kafka 4.x).
#[derive(Clone)]
pub struct ProducerConfig {
    /// Connection settings shared with the other roles.
    pub client: ClientConfig,
    /// `acks`. Default [`Acks::All`].
    pub acks: Acks,
    /// `enable.idempotence`: exactly-once, in-order writes per partition within the
    /// producer's session (producer id, epoch and sequence numbers). Requires
    /// `acks = All` and `max_in_flight <= 5`. Default `true`.
    pub enable_idempotence: bool,
    /// `batch.size`: the most bytes one partition's batch holds (for compressed batches, its
    /// estimated compressed size, as in the Java client). A record larger than this gets a
    /// batch of its own.
    ///
    /// Default 1,000,000 (librdkafka's default), **not Java's 16384**: a produce request can
    /// carry only one batch per partition, so under load 16 KiB batches mean many small
    /// requests and about twice the CPU per record (BENCHMARKS.md). Linger still bounds the
    /// wait at low load, and a batch's buffer grows with the partition's traffic, so quiet
    /// partitions do not hold a megabyte each. Set 16384 for the Java client's batching.
    pub batch_size: usize,
    /// `linger.ms`: how long a batch that is not full waits for more records.
    /// Default 5 ms. A batch that is not full also waits (past its linger) while an earlier
    /// batch of its partition is in flight, and goes with that answer: on a slow broker
    /// batches grow instead of queueing one tiny request per linger (the Sender's batching
    /// rules, DESIGN.md). `flush`, commit and close never wait.
    pub linger: Duration,
    /// `compression.type`. Default [`Compression::None`].
    pub compression: Compression,
    /// `compression.gzip.level` (KIP-390): 1 (fastest) to 9 (smallest), or -1 for zlib's
    /// default level, 6. Used when `compression` is gzip. Default -1.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (KIP-390). Default 9, the Java client's, which is LZ4's fast
    /// compressor; the Java client switches to LZ4HC for any other level (1-17), which this
    /// client does not have (lz4_flex has no HC mode), so any other value is refused at
    /// build rather than silently ignored.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (KIP-390): -131072 (fastest) to 22 (smallest). Used when
    /// `compression` is zstd. Default 3, as the Java client.
    pub compression_zstd_level: i32,
    /// `max.request.size`: the largest record (and produce request) this producer sends;
    /// a larger record fails at `send` with a clear error. Default 1048576.
    pub max_request_size: usize,
    /// `buffer.memory`: bytes of records waiting to be sent; `send` waits for room (up to
    /// `max_block`) when it is full. Default 32 MiB.
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` may wait for buffer room and for the topic's metadata.
    /// Default 60 s.
    pub max_block: Duration,
    /// `delivery.timeout.ms`: the upper bound on the time from `send` to success or failure,
    /// retries included. A batch in flight is never failed by this timer before its request
    /// completes. Default 120 s.
    pub delivery_timeout: Duration,
    /// `max.in.flight.requests.per.connection`: produce requests awaiting a response per
    /// broker. At most 5 with idempotence. Default 5. A partition has more than one batch
    /// in flight only when it has full batches waiting (see [`ProducerConfig::linger`]).
    pub max_in_flight: usize,
    /// `retries`: how often a batch is retried after a retriable error (within
    /// `delivery_timeout`). Default `u32::MAX` (bounded by `delivery_timeout` only).
    pub retries: u32,
    /// A custom partitioner consulted for records without an explicit partition; `None`
    /// (the default) uses the Java client's built-in partitioner.
    pub partitioner: Option<Arc<dyn Partitioner>>,
    /// `partitioner.ignore.keys`: when true, keyed records are spread like keyless ones.
    /// Default `false`.
    pub partitioner_ignore_keys: bool,
    /// `partitioner.adaptive.partitioning.enable`: when the uniform sticky partitioner
    /// switches partitions for keyless records, it picks partitions with shorter queues
    /// (batches waiting for their broker) more often, so faster brokers get more records
    /// (KIP-794, weighted as the Java client does). When false, the switch is uniform among
    /// the partitions that have a leader. No effect on keyed records or with a custom
    /// `partitioner` that picks a partition. Default `true`.
    pub partitioner_adaptive_partitioning: bool,
    /// `partitioner.availability.timeout.ms`: a broker that had batches ready for longer
    /// than this without being able to take them (all `max_in_flight` requests to it
    /// unanswered) counts as unavailable, and its partitions are left out when keyless
    /// records switch partitions, until it takes requests again. Zero turns this off.
    /// Needs `partitioner_adaptive_partitioning`. Whole milliseconds. Default zero (off).
    pub partitioner_availability_timeout: Duration,
    /// `transactional.id`: makes the producer transactional (see [`crate::txn`]). The id
    /// identifies the producer across restarts: a new producer with the same id fences the
    /// old one and finishes its open transaction. Requires `enable_idempotence`.
    /// Default `None` (not transactional).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a transaction stay open
    /// before aborting it (at most the broker's `transaction.max.timeout.ms`, 15 min by
    /// default). Used only with `transactional_id`. Default 60 s.
    pub transaction_timeout: Duration,
}

impl std::fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerConfig")
            .field("client", &self.client)
            .field("acks", &self.acks)
            .field("enable_idempotence", &self.enable_idempotence)
            .field("batch_size", &self.batch_size)
            .field("linger", &self.linger)
            .field("compression", &self.compression)
            .field("compression_gzip_level", &self.compression_gzip_level)
            .field("compression_lz4_level", &self.compression_lz4_level)
            .field("compression_zstd_level", &self.compression_zstd_level)
            .field("max_request_size", &self.max_request_size)
            .field("buffer_memory", &self.buffer_memory)
            .field("max_block", &self.max_block)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("retries", &self.retries)
            .field("partitioner", &self.partitioner.as_ref().map(|_| "custom"))
            .field("partitioner_ignore_keys", &self.partitioner_ignore_keys)
            .field("partitioner_adaptive_partitioning", &self.partitioner_adaptive_partitioning)
            .field("partitioner_availability_timeout", &self.partitioner_availability_timeout)
            .field("transactional_id", &self.transactional_id)
            .field("transaction_timeout", &self.transaction_timeout)
            .finish()
    }
}

impl ProducerConfig {
    /// A config for the given bootstrap servers, everything else at its default.
    pub fn new(bootstrap_servers: impl AsRef<str>) -> ProducerConfig {
        ProducerConfig::from_client(ClientConfig::new(bootstrap_servers))
    }

    /// A producer config around existing connection settings.
    pub fn from_client(client: ClientConfig) -> ProducerConfig {
        ProducerConfig {
            client,
            acks: Acks::All,
            enable_idempotence: true,
            batch_size: 1_000_000,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            compression_gzip_level: crate::record::compression::GZIP_DEFAULT_LEVEL,
            compression_lz4_level: crate::record::compression::LZ4_DEFAULT_LEVEL,
            compression_zstd_level: crate::record::compression::ZSTD_DEFAULT_LEVEL,
            max_request_size: 1024 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(120),
            max_in_flight: 5,
            retries: u32::MAX,
            partitioner: None,
            partitioner_ignore_keys: false,
            partitioner_adaptive_partitioning: true,
            partitioner_availability_timeout: Duration::ZERO,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }

    /// Sets [`ProducerConfig::acks`].
    pub fn acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        self
    }
    /// Sets [`ProducerConfig::enable_idempotence`].
    pub fn enable_idempotence(mut self, on: bool) -> Self {
        self.enable_idempotence = on;
        self
    }
    /// Sets [`ProducerConfig::batch_size`].
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.batch_size = bytes;
        self
    }
    /// Sets [`ProducerConfig::linger`].
    pub fn linger(mut self, t: Duration) -> Self {
        self.linger = t;
        self
    }
    /// Sets [`ProducerConfig::compression`].
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    /// Sets [`ProducerConfig::compression_gzip_level`].
    pub fn compression_gzip_level(mut self, level: i32) -> Self {
        self.compression_gzip_level = level;
        self
    }
    /// Sets [`ProducerConfig::compression_lz4_level`].
    pub fn compression_lz4_level(mut self, level: i32) -> Self {
        self.compression_lz4_level = level;
        self
    }
    /// Sets [`ProducerConfig::compression_zstd_level`].
    pub fn compression_zstd_level(mut self, level: i32) -> Self {
        self.compression_zstd_level = level;
        self
    }
    /// Sets [`ProducerConfig::max_request_size`].
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }
    /// Sets [`ProducerConfig::buffer_memory`].
    pub fn buffer_memory(mut self, bytes: usize) -> Self {
        self.buffer_memory = bytes;
        self
    }
    /// Sets [`ProducerConfig::max_block`].
    pub fn max_block(mut self, t: Duration) -> Self {
        self.max_block = t;
        self
    }
    /// Sets [`ProducerConfig::delivery_timeout`].
    pub fn delivery_timeout(mut self, t: Duration) -> Self {
        self.delivery_timeout = t;
        self
    }
    /// Sets [`ProducerConfig::max_in_flight`].
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }
    /// Sets [`ProducerConfig::retries`].
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }
    /// Sets [`ProducerConfig::transactional_id`].
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = Some(id.into());
        self
    }
    /// Sets [`ProducerConfig::transaction_timeout`].
    pub fn transaction_timeout(mut self, t: Duration) -> Self {
        self.transaction_timeout = t;
        self
    }
    /// Sets [`ProducerConfig::partitioner`].
    pub fn partitioner(mut self, p: Arc<dyn Partitioner>) -> Self {
        self.partitioner = Some(p);
        self
    }
    /// Sets [`ProducerConfig::partitioner_ignore_keys`].
    pub fn partitioner_ignore_keys(mut self, ignore: bool) -> Self {
        self.partitioner_ignore_keys = ignore;
        self
    }

    /// Sets [`ProducerConfig::partitioner_adaptive_partitioning`].
    pub fn partitioner_adaptive_partitioning(mut self, on: bool) -> Self {
        self.partitioner_adaptive_partitioning = on;
        self
    }

    /// Sets [`ProducerConfig::partitioner_availability_timeout`] (zero: off).
    pub fn partitioner_availability_timeout(mut self, t: Duration) -> Self {
        self.partitioner_availability_timeout = t;
        self
    }

    /// Checks every field and their combinations; run by [`Producer::new`](crate::producer::Producer::new).
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        let bad = |m: String| Err(Error::Config(m));
        if self.enable_idempotence {
            if self.acks != Acks::All {
                return bad(format!(
                    "enable_idempotence requires acks = All, got {:?}; set acks(Acks::All) or enable_idempotence(false)",
                    self.acks
                ));
            }
            if self.max_in_flight > 5 {
                return bad(format!("enable_idempotence requires max_in_flight <= 5, got {}", self.max_in_flight));
            }
            if self.retries == 0 {
                return bad("enable_idempotence requires retries > 0".into());
            }
        }
        if let Some(id) = &self.transactional_id {
            if !self.enable_idempotence {
                return bad(format!(
                    "transactional_id ({id:?}) requires enable_idempotence = true; remove enable_idempotence(false)"
                ));
            }
            if id.is_empty() {
                return bad("transactional_id must not be empty (use None for a non-transactional producer)".into());
            }
            if self.transaction_timeout.as_millis() < 1 || self.transaction_timeout.as_millis() > i32::MAX as u128 {
                return bad(format!(
                    "transaction_timeout must be between 1 ms and {} ms, got {:?}",
                    i32::MAX,
                    self.transaction_timeout
                ));
            }
        }
        let availability = self.partitioner_availability_timeout;
        if !availability.is_zero() {
            if availability.subsec_nanos() % 1_000_000 != 0 || availability.as_millis() > i64::MAX as u128 {
                return bad(format!(
                    "partitioner_availability_timeout must be zero (off) or whole milliseconds up to {} ms, got {availability:?}",
                    i64::MAX
                ));
            }
            if !self.partitioner_adaptive_partitioning {
                return bad(format!(
                    "partitioner_availability_timeout ({availability:?}) has no effect with partitioner_adaptive_partitioning(false); \
                     enable adaptive partitioning or leave the timeout at zero"
                ));
            }
        }
        #[cfg(not(any(feature = "zstd-c", feature = "pure-rust")))]
        if self.compression == crate::record::Compression::Zstd {
            return bad("compression zstd: this ferrokafka is built without zstd (enable the \"zstd-c\" \
                        feature, on by default, or \"pure-rust\")"
                .into());
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight must be at least 1".into());
        }
        if self.batch_size == 0 || self.batch_size > i32::MAX as usize {
            return bad(format!("batch_size must be between 1 and {}, got {}", i32::MAX, self.batch_size));
        }
        if self.max_request_size < 128 || self.max_request_size > i32::MAX as usize {
            return bad(format!("max_request_size must be between 128 and {}, got {}", i32::MAX, self.max_request_size));
        }
        if self.buffer_memory < self.batch_size {
            return bad(format!(
                "buffer_memory ({}) must be at least batch_size ({})",
                self.buffer_memory, self.batch_size
            ));
        }
        if self.buffer_memory > u32::MAX as usize {
            return bad(format!("buffer_memory must be at most {} bytes", u32::MAX));
        }
        if self.delivery_timeout < self.linger + self.client.request_timeout {
            return bad(format!(
                "delivery_timeout ({:?}) must be at least linger + request_timeout ({:?})",
                self.delivery_timeout,
                self.linger + self.client.request_timeout
            ));
        }
        if self.max_block.is_zero() {
            return bad("max_block must be greater than zero".into());
        }
        if !(self.compression_gzip_level == -1 || (1..=9).contains(&self.compression_gzip_level)) {
            return bad(format!(
                "compression_gzip_level must be 1 to 9 or -1 (zlib's default), got {}",
                self.compression_gzip_level
            ));
        }
        if self.compression_lz4_level != crate::record::compression::LZ4_DEFAULT_LEVEL {
            return bad(format!(
                "compression_lz4_level {} is not supported: only the default, 9 (LZ4's fast compressor, as the Java \
                 client uses at that level), is; other levels need LZ4HC, which this client does not have",
                self.compression_lz4_level
            ));
        }
        if !(-131072..=22).contains(&self.compression_zstd_level) {
            return bad(format!(
                "compression_zstd_level must be -131072 to 22, got {}",
                self.compression_zstd_level
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_levels_default_to_java_and_are_validated() {
        let c = ProducerConfig::new("localhost:9092");
        assert_eq!((c.compression_gzip_level, c.compression_lz4_level, c.compression_zstd_level), (-1, 9, 3));
        assert!(c.validate().is_ok());
        for ok in [
            ProducerConfig::new("h:1").compression_gzip_level(1),
            ProducerConfig::new("h:1").compression_gzip_level(9),
            ProducerConfig::new("h:1").compression_zstd_level(-131072),
            ProducerConfig::new("h:1").compression_zstd_level(22),
            ProducerConfig::new("h:1").compression_lz4_level(9),
        ] {
            assert!(ok.validate().is_ok(), "{ok:?}");
        }
        for (bad, what) in [
            (ProducerConfig::new("h:1").compression_gzip_level(0), "compression_gzip_level"),
            (ProducerConfig::new("h:1").compression_gzip_level(10), "compression_gzip_level"),
            (ProducerConfig::new("h:1").compression_zstd_level(23), "compression_zstd_level"),
            (ProducerConfig::new("h:1").compression_zstd_level(-131073), "compression_zstd_level"),
            (ProducerConfig::new("h:1").compression_lz4_level(17), "compression_lz4_level"),
        ] {
            match bad.validate() {
                Err(Error::Config(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{what}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn adaptive_partitioning_defaults_to_java_and_is_validated() {
        let c = ProducerConfig::new("h:1");
        assert!(c.partitioner_adaptive_partitioning, "Java's default: true");
        assert_eq!(c.partitioner_availability_timeout, Duration::ZERO, "Java's default: 0 (off)");
        let c = c.partitioner_adaptive_partitioning(false).partitioner_adaptive_partitioning(true);
        assert!(c.partitioner_adaptive_partitioning);
        for ok in [
            ProducerConfig::new("h:1").partitioner_adaptive_partitioning(false),
            ProducerConfig::new("h:1").partitioner_availability_timeout(Duration::from_millis(1)),
            ProducerConfig::new("h:1").partitioner_availability_timeout(Duration::from_secs(30)),
            ProducerConfig::new("h:1").partitioner_adaptive_partitioning(false).partitioner_availability_timeout(Duration::ZERO),
        ] {
            assert!(ok.validate().is_ok(), "{ok:?}");
        }
        assert_eq!(
            ProducerConfig::new("h:1").partitioner_availability_timeout(Duration::from_millis(250)).partitioner_availability_timeout,
            Duration::from_millis(250)
        );
        for bad in [
            ProducerConfig::new("h:1").partitioner_availability_timeout(Duration::from_micros(1500)),
            ProducerConfig::new("h:1").partitioner_availability_timeout(Duration::from_secs(u64::MAX)),
            ProducerConfig::new("h:1")
                .partitioner_adaptive_partitioning(false)
                .partitioner_availability_timeout(Duration::from_secs(1)),
        ] {
            match bad.validate() {
                Err(Error::Config(m)) => assert!(m.contains("partitioner_availability_timeout"), "{m}"),
                other => panic!("expected a config error for {bad:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn partitioner_ignore_keys_has_a_builder() {
        assert!(!ProducerConfig::new("h:1").partitioner_ignore_keys);
        assert!(ProducerConfig::new("h:1").partitioner_ignore_keys(true).partitioner_ignore_keys);
    }
}
