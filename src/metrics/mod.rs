//! Client metrics: recorded through the [`metrics`](https://docs.rs/metrics) facade, and
//! readable without a recorder as typed snapshots.
//!
//! # Recording
//! Every client records its series through the `metrics` crate's global recorder: install one
//! (Prometheus, StatsD, OpenTelemetry...) **before** building the client; with none installed
//! the series cost an atomic add each and go nowhere else. Names follow Prometheus conventions
//! (`_total` counters, `_seconds` and `_bytes` units); every series carries the label
//! `client_id`, and `broker` (the broker's `host:port`), `api`, `topic`, `partition` where
//! they apply.
//!
//! # Pulling
//! Without a recorder, the same values are in the snapshots the clients return
//! (`metrics()` on the producer, consumer and admin client).
//!
//! # The Java client's metrics
//! | Java group / name | ferrokafka name | unit |
//! |---|---|---|
//! | `*-metrics` / `connection-creation-total` | `kafka_client_connection_creations_total` | connections |
//! | `*-metrics` / `connection-close-total` | `kafka_client_connection_closes_total` | connections |
//! | (none; librdkafka `connect_fails`) | `kafka_client_connection_failures_total` | failed connects |
//! | `*-metrics` / `failed-authentication-total` | `kafka_client_authentication_failures_total` | failures |
//! | `*-metrics` / `successful-reauthentication-total` | `kafka_client_reauthentications_total` | re-authentications |
//! | `*-node-metrics` / `request-total` | `kafka_client_requests_total{broker,api}` | requests |
//! | `*-node-metrics` / `request-latency-avg`, `-max` | `kafka_client_request_latency_seconds{broker,api}` | seconds |
//! | `*-node-metrics` / `outgoing-byte-total` | `kafka_client_request_bytes_total{broker,api}` | bytes |
//! | `*-node-metrics` / `incoming-byte-total` | `kafka_client_response_bytes_total{broker,api}` | bytes |
//! | `*-metrics` / `requests-in-flight` (librdkafka `outbuf_cnt`) | `kafka_client_requests_in_flight{broker,api}` | requests |

pub(crate) mod network;
pub(crate) mod primitives;

/// Count, sum and maximum of a distribution since the client started (the Java client's
/// `-avg` is `sum / count`, its `-max` is `max`, over a window rather than since start).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum, in the metric's unit (seconds, bytes, records).
    pub sum: f64,
    /// The largest, in the metric's unit.
    pub max: f64,
}

impl Summary {
    /// `sum / count`, or 0 with no value.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// One API's requests to one broker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RequestStats {
    /// The broker's `host:port`.
    pub broker: String,
    /// The API's name (`Produce`, `Fetch`, `Metadata`...).
    pub api: &'static str,
    /// Requests written.
    pub requests: u64,
    /// Time from writing a request to reading its response, in seconds (requests without a
    /// response, produce with acks=0, are not in it).
    pub latency: Summary,
    /// Request bytes written, size prefix included.
    pub bytes_out: u64,
    /// Response bytes read, size prefix included.
    pub bytes_in: u64,
    /// Requests written whose response has not arrived yet.
    pub in_flight: i64,
}

/// A client's connections and requests.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct NetworkStats {
    /// Connections made (TCP, TLS, ApiVersions and SASL all done).
    pub connection_creations: u64,
    /// Connections that ended.
    pub connection_closes: u64,
    /// Connection attempts that failed.
    pub connection_failures: u64,
    /// SASL authentications the broker refused.
    pub authentication_failures: u64,
    /// Successful SASL re-authentications (KIP-368).
    pub reauthentications: u64,
    /// Per broker and API, sorted by broker then API.
    pub requests: Vec<RequestStats>,
}
