//! The three kinds of value every metric is made of. Each keeps its own atomic (read by the
//! pull API's snapshots, `Producer::metrics()` and friends) and the handle the installed
//! `metrics` recorder gave for its name and labels (a no-op handle when none is installed).
//!
//! Handles are registered once, when the series is made (a client, a connection, the first
//! record for a partition); updating one is an atomic add plus the recorder's own update,
//! with no lock, lookup or allocation. So a recorder installed after a client is built sees
//! none of that client's series: install it first, as with any `metrics` library.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use ::metrics as facade;

/// The labels of one series (`client_id` first, then `broker`, `api`, `topic`, `partition`
/// where they apply).
pub(crate) type Labels = Vec<facade::Label>;

/// Labels for a client: just `client_id`.
pub(crate) fn client_labels(client_id: &str) -> Labels {
    vec![facade::Label::new("client_id", client_id.to_owned())]
}

/// `base` plus one more label.
pub(crate) fn with(base: &Labels, key: &'static str, value: impl Into<String>) -> Labels {
    let mut l = base.clone();
    l.push(facade::Label::new(key, value.into()));
    l
}

/// A monotonic counter (Prometheus `_total`).
pub(crate) struct Count {
    v: AtomicU64,
    h: facade::Counter,
}

impl Count {
    pub(crate) fn new(name: &'static str, labels: &Labels) -> Count {
        Count {
            v: AtomicU64::new(0),
            h: facade::counter!(name, labels.clone()),
        }
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.v.fetch_add(n, Relaxed);
        self.h.increment(n);
    }

    #[inline]
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn get(&self) -> u64 {
        self.v.load(Relaxed)
    }
}

/// A value that goes up and down (requests in flight, buffer bytes available, lag).
pub(crate) struct Level {
    v: AtomicI64,
    h: facade::Gauge,
}

impl Level {
    pub(crate) fn new(name: &'static str, labels: &Labels) -> Level {
        Level {
            v: AtomicI64::new(0),
            h: facade::gauge!(name, labels.clone()),
        }
    }

    #[inline]
    pub(crate) fn set(&self, v: i64) {
        self.v.store(v, Relaxed);
        self.h.set(v as f64);
    }

    #[inline]
    pub(crate) fn add(&self, d: i64) {
        let now = self.v.fetch_add(d, Relaxed) + d;
        self.h.set(now as f64);
    }

    pub(crate) fn get(&self) -> i64 {
        self.v.load(Relaxed)
    }
}

/// A distribution (latencies, sizes): the recorder gets every value; the snapshot keeps the
/// count, the sum and the maximum, from which the Java client's `-avg` and `-max` follow.
/// Values are recorded in the metric's unit (seconds for times, bytes for sizes).
pub(crate) struct Histo {
    count: AtomicU64,
    /// Sum in millionths of the unit (microseconds, micro-bytes), so that it stays an
    /// integer atomic.
    sum_micro: AtomicU64,
    max_micro: AtomicU64,
    h: facade::Histogram,
}

impl Histo {
    pub(crate) fn new(name: &'static str, labels: &Labels) -> Histo {
        Histo {
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
            max_micro: AtomicU64::new(0),
            h: facade::histogram!(name, labels.clone()),
        }
    }

    #[inline]
    pub(crate) fn record(&self, v: f64) {
        let micro = (v.max(0.0) * 1e6) as u64;
        self.count.fetch_add(1, Relaxed);
        self.sum_micro.fetch_add(micro, Relaxed);
        self.max_micro.fetch_max(micro, Relaxed);
        self.h.record(v);
    }

    /// Records a duration in seconds.
    #[inline]
    pub(crate) fn record_duration(&self, d: std::time::Duration) {
        self.record(d.as_secs_f64());
    }

    pub(crate) fn summary(&self) -> super::Summary {
        let count = self.count.load(Relaxed);
        super::Summary {
            count,
            sum: self.sum_micro.load(Relaxed) as f64 / 1e6,
            max: self.max_micro.load(Relaxed) as f64 / 1e6,
        }
    }
}
