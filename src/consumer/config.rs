//! Consumer settings.

use std::sync::Arc;
use std::time::Duration;

use super::group::GroupProtocol;
use super::group::assignor::PartitionAssignor;
use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// `auto.offset.reset`: where to start when a partition has no position (no committed
/// offset) or its position is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Start at the log start offset.
    Earliest,
    /// Start at the end of the log (only records written from now on). The default.
    #[default]
    Latest,
    /// Java's `none` (librdkafka's `error`): fail instead of choosing a position. `poll`
    /// returns [`Error::NoOffsetForPartition`](crate::Error::NoOffsetForPartition) (Java's
    /// `NoOffsetForPartitionException`) for a partition with no committed offset, and
    /// a broker error `OFFSET_OUT_OF_RANGE` (or [`Error::LogTruncation`](crate::Error::LogTruncation))
    /// for a position out of range, until the application seeks the partition.
    Error,
}

/// `isolation.level`: which records of transactions a consumer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions. The default.
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions (and non-transactional ones), up to the last
    /// stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    pub(crate) fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Settings of a [`Consumer`](crate::consumer::Consumer). Defaults are the Java client's
/// (Kafka 4.x) where it has the setting.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Connection settings shared with the other roles.
    pub client: ClientConfig,
    /// `group.id`: the group whose committed offsets [`commit`](crate::consumer::Consumer::commit)
    /// and [`committed`](crate::consumer::Consumer::committed) use, and where a newly assigned
    /// partition starts. Without membership (assign mode), commits are "simple" commits
    /// (generation -1, member id ""). Default `None`: committing is an error.
    pub group_id: Option<String>,
    /// `fetch.min.bytes`: the broker holds a fetch until this many bytes are available (or
    /// `fetch_max_wait` passed). Default 1.
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms`: the longest the broker holds a fetch waiting for
    /// `fetch_min_bytes`. Default 500 ms. Must be below `client.request_timeout`.
    pub fetch_max_wait: Duration,
    /// `max.partition.fetch.bytes`: the most data one fetch returns per partition (a batch
    /// larger than this is still returned whole when it is the first). Default 1 MiB.
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.bytes`: the most data one fetch returns in total; also the bound on data
    /// fetched ahead and not yet handed to the application: a broker's fetch task sends no new
    /// fetch while this much is buffered. Default 50 MiB.
    pub fetch_max_bytes: i32,
    /// `max.poll.records`: the most records one [`poll`](crate::consumer::Consumer::poll)
    /// returns. Default 500.
    pub max_poll_records: usize,
    /// `auto.offset.reset`. Default [`OffsetReset::Latest`].
    pub auto_offset_reset: OffsetReset,
    /// `isolation.level`. Default [`IsolationLevel::ReadUncommitted`].
    pub isolation_level: IsolationLevel,
    /// `check.crcs`: verify each batch's CRC-32C (a mismatch is
    /// [`Error::CorruptRecord`](crate::Error::CorruptRecord)). Default `true`. With `false`,
    /// corrupted bytes may reach the application; lengths, counts and decompression are
    /// still checked and bounded.
    pub check_crcs: bool,
    /// The most bytes one compressed batch may inflate to; a batch that inflates past this is
    /// an error naming topic, partition and offset, never an allocation. Default 64 MiB.
    pub max_decompressed_batch_bytes: usize,
    /// `default.api.timeout.ms`: the overall timeout of calls such as `commit`, `committed`,
    /// `seek_to_end` and `offsets_for_times`, spanning their retries. Default 60 s.
    pub default_api_timeout: Duration,
    /// `group.protocol`: the group protocol of [`subscribe`](crate::consumer::Consumer::subscribe).
    /// Default [`GroupProtocol::Classic`].
    pub group_protocol: GroupProtocol,
    /// `group.instance.id`: a stable identity for static membership (KIP-345). A static
    /// member that restarts within `session_timeout` gets its partitions back without a
    /// rebalance, and does not leave the group on close. Two live consumers with the same
    /// id: the older one is fenced (a fatal `FENCED_INSTANCE_ID`). Default `None` (dynamic
    /// membership).
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`: a member whose heartbeats stop for this long is removed from
    /// the group and its partitions reassigned (classic protocol). Must lie within the
    /// broker's `group.min/max.session.timeout.ms` (6 s to 30 min by default). Default 45 s.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`: time between heartbeats (classic protocol; the KIP-848
    /// protocol uses the interval the broker gives). Must be below `session_timeout`
    /// (typically a third of it). Default 3 s.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest time between polls before the member is
    /// considered failed: it leaves the group and its partitions are reassigned (its next
    /// poll rejoins and reports them lost). Also the rebalance timeout: how long the
    /// coordinator waits for every member to rejoin. Default 300 s.
    pub max_poll_interval: Duration,
    /// `enable.auto.commit`: commit the positions (the offsets after the records `poll`
    /// already returned) every `auto_commit_interval` from within `poll`, before partitions
    /// are revoked, and on close. Needs `group_id`. Default `true` (as Java when a group id
    /// is set); turn it off to commit after processing with
    /// [`commit`](crate::consumer::Consumer::commit).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`. Default 5 s.
    pub auto_commit_interval: Duration,
    /// `partition.assignment.strategy`: the assignors offered in JoinGroup, in preference
    /// order (classic protocol); the coordinator picks the first every member supports.
    /// The rebalance is cooperative only when every listed assignor supports it. Default
    /// `[range, cooperative-sticky]`, as the Java client (so the group rebalances eagerly
    /// until every member lists cooperative-sticky alone).
    pub partition_assignment_strategy: Vec<Arc<dyn PartitionAssignor>>,
    /// `group.remote.assignor`: the server-side assignor asked for under the KIP-848
    /// protocol ("uniform" or "range" on Apache Kafka). Default `None`: the broker's
    /// default (uniform).
    pub group_remote_assignor: Option<String>,
}

impl ConsumerConfig {
    /// A config for the given bootstrap servers, everything else at its default.
    pub fn new(bootstrap_servers: impl AsRef<str>) -> ConsumerConfig {
        ConsumerConfig::from_client(ClientConfig::new(bootstrap_servers))
    }

    /// A consumer config around existing connection settings.
    pub fn from_client(client: ClientConfig) -> ConsumerConfig {
        ConsumerConfig {
            client,
            group_id: None,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1024 * 1024,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_poll_records: 500,
            auto_offset_reset: OffsetReset::Latest,
            isolation_level: IsolationLevel::ReadUncommitted,
            check_crcs: true,
            max_decompressed_batch_bytes: 64 * 1024 * 1024,
            default_api_timeout: Duration::from_secs(60),
            group_protocol: GroupProtocol::Classic,
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            partition_assignment_strategy: super::group::default_assignors(),
            group_remote_assignor: None,
        }
    }

    /// Sets [`ConsumerConfig::group_id`].
    pub fn group_id(mut self, id: impl Into<String>) -> Self {
        self.group_id = Some(id.into());
        self
    }
    /// Sets [`ConsumerConfig::fetch_min_bytes`].
    pub fn fetch_min_bytes(mut self, n: i32) -> Self {
        self.fetch_min_bytes = n;
        self
    }
    /// Sets [`ConsumerConfig::fetch_max_wait`].
    pub fn fetch_max_wait(mut self, t: Duration) -> Self {
        self.fetch_max_wait = t;
        self
    }
    /// Sets [`ConsumerConfig::max_partition_fetch_bytes`].
    pub fn max_partition_fetch_bytes(mut self, n: i32) -> Self {
        self.max_partition_fetch_bytes = n;
        self
    }
    /// Sets [`ConsumerConfig::fetch_max_bytes`].
    pub fn fetch_max_bytes(mut self, n: i32) -> Self {
        self.fetch_max_bytes = n;
        self
    }
    /// Sets [`ConsumerConfig::max_poll_records`].
    pub fn max_poll_records(mut self, n: usize) -> Self {
        self.max_poll_records = n;
        self
    }
    /// Sets [`ConsumerConfig::auto_offset_reset`].
    pub fn auto_offset_reset(mut self, r: OffsetReset) -> Self {
        self.auto_offset_reset = r;
        self
    }
    /// Sets [`ConsumerConfig::isolation_level`].
    pub fn isolation_level(mut self, l: IsolationLevel) -> Self {
        self.isolation_level = l;
        self
    }
    /// Sets [`ConsumerConfig::check_crcs`].
    pub fn check_crcs(mut self, on: bool) -> Self {
        self.check_crcs = on;
        self
    }
    /// Sets [`ConsumerConfig::max_decompressed_batch_bytes`].
    pub fn max_decompressed_batch_bytes(mut self, n: usize) -> Self {
        self.max_decompressed_batch_bytes = n;
        self
    }
    /// Sets [`ConsumerConfig::default_api_timeout`].
    pub fn default_api_timeout(mut self, t: Duration) -> Self {
        self.default_api_timeout = t;
        self
    }

    /// Sets [`ConsumerConfig::group_protocol`].
    pub fn group_protocol(mut self, p: GroupProtocol) -> Self {
        self.group_protocol = p;
        self
    }

    /// Sets [`ConsumerConfig::group_instance_id`].
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// Sets [`ConsumerConfig::session_timeout`].
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }

    /// Sets [`ConsumerConfig::heartbeat_interval`].
    pub fn heartbeat_interval(mut self, t: Duration) -> Self {
        self.heartbeat_interval = t;
        self
    }

    /// Sets [`ConsumerConfig::max_poll_interval`].
    pub fn max_poll_interval(mut self, t: Duration) -> Self {
        self.max_poll_interval = t;
        self
    }

    /// Sets [`ConsumerConfig::enable_auto_commit`].
    pub fn enable_auto_commit(mut self, on: bool) -> Self {
        self.enable_auto_commit = on;
        self
    }

    /// Sets [`ConsumerConfig::auto_commit_interval`].
    pub fn auto_commit_interval(mut self, t: Duration) -> Self {
        self.auto_commit_interval = t;
        self
    }

    /// Sets [`ConsumerConfig::partition_assignment_strategy`].
    pub fn partition_assignment_strategy(mut self, assignors: Vec<Arc<dyn PartitionAssignor>>) -> Self {
        self.partition_assignment_strategy = assignors;
        self
    }

    /// Sets [`ConsumerConfig::group_remote_assignor`].
    pub fn group_remote_assignor(mut self, name: impl Into<String>) -> Self {
        self.group_remote_assignor = Some(name.into());
        self
    }

    /// Checks every field and their combinations; run by
    /// [`Consumer::new`](crate::consumer::Consumer::new).
    pub fn validate(&self) -> Result<()> {
        self.client.validate()?;
        let bad = |m: String| Err(Error::Config(m));
        if let Some(g) = &self.group_id {
            if g.is_empty() || g.len() > i16::MAX as usize {
                return bad(format!("group_id must be 1 to {} bytes, got {}", i16::MAX, g.len()));
            }
        }
        if self.fetch_min_bytes < 1 {
            return bad(format!("fetch_min_bytes must be at least 1, got {}", self.fetch_min_bytes));
        }
        if self.fetch_max_wait > Duration::from_millis(i32::MAX as u64) {
            return bad("fetch_max_wait must fit in i32 milliseconds".into());
        }
        if self.fetch_max_wait >= self.client.request_timeout {
            return bad(format!(
                "fetch_max_wait ({:?}) must be less than request_timeout ({:?})",
                self.fetch_max_wait, self.client.request_timeout
            ));
        }
        if self.max_partition_fetch_bytes < 1 {
            return bad(format!(
                "max_partition_fetch_bytes must be at least 1, got {}",
                self.max_partition_fetch_bytes
            ));
        }
        if self.fetch_max_bytes < 1 {
            return bad(format!("fetch_max_bytes must be at least 1, got {}", self.fetch_max_bytes));
        }
        if self.fetch_max_bytes as usize > self.client.max_response_size {
            return bad(format!(
                "fetch_max_bytes ({}) must not exceed max_response_size ({})",
                self.fetch_max_bytes, self.client.max_response_size
            ));
        }
        if self.max_poll_records == 0 {
            return bad("max_poll_records must be at least 1".into());
        }
        if self.max_decompressed_batch_bytes < 1024 {
            return bad(format!(
                "max_decompressed_batch_bytes must be at least 1 KiB, got {}",
                self.max_decompressed_batch_bytes
            ));
        }
        if self.default_api_timeout.is_zero() {
            return bad("default_api_timeout must be greater than zero".into());
        }
        if let Some(i) = &self.group_instance_id {
            if i.is_empty() || i.len() > 249 || !i.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return bad(format!(
                    "group_instance_id must be 1 to 249 characters of [a-zA-Z0-9._-], got {i:?}"
                ));
            }
        }
        let ms = |d: Duration| d.as_millis() <= i32::MAX as u128;
        if !ms(self.session_timeout) || !ms(self.max_poll_interval) || !ms(self.heartbeat_interval) {
            return bad("session_timeout, heartbeat_interval and max_poll_interval must fit in i32 milliseconds".into());
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.session_timeout {
            return bad(format!(
                "heartbeat_interval ({:?}) must be greater than zero and less than session_timeout ({:?})",
                self.heartbeat_interval, self.session_timeout
            ));
        }
        if self.max_poll_interval < Duration::from_millis(1) {
            return bad("max_poll_interval must be greater than zero".into());
        }
        if self.enable_auto_commit && self.auto_commit_interval.is_zero() {
            return bad("auto_commit_interval must be greater than zero".into());
        }
        if self.group_protocol == GroupProtocol::Classic && self.partition_assignment_strategy.is_empty() {
            return bad("partition_assignment_strategy must list at least one assignor".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for a in &self.partition_assignment_strategy {
            if !names.insert(a.name().to_owned()) {
                return bad(format!("partition_assignment_strategy lists assignor {:?} twice", a.name()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_java_clients_and_validate() {
        let c = ConsumerConfig::new("a:1");
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(500));
        assert_eq!(c.max_partition_fetch_bytes, 1 << 20);
        assert_eq!(c.fetch_max_bytes, 50 << 20);
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        assert!(c.check_crcs);
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_bad_field() {
        let e = |c: ConsumerConfig| c.validate().unwrap_err().to_string();
        assert!(e(ConsumerConfig::new("a:1").max_poll_records(0)).contains("max_poll_records"));
        assert!(e(ConsumerConfig::new("a:1").fetch_min_bytes(0)).contains("fetch_min_bytes"));
        assert!(e(ConsumerConfig::new("a:1").fetch_max_wait(Duration::from_secs(40))).contains("fetch_max_wait"));
        assert!(e(ConsumerConfig::new("a:1").group_id("")).contains("group_id"));
        assert!(e(ConsumerConfig::new("a:1").fetch_max_bytes(200 << 20)).contains("max_response_size"));
    }
}
