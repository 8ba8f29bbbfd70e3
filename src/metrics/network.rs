//! Per-client network metrics: connections, and requests per broker and API (Java's
//! `*-metrics` connection group and `*-node-metrics`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::primitives::{Count, Histo, Labels, Level, client_labels, with};
use super::{NetworkStats, RequestStats};

/// One client's network metrics, shared by its connection pool and every connection.
pub(crate) struct NetworkMetrics {
    pub(crate) labels: Labels,
    pub(crate) connection_creations: Count,
    pub(crate) connection_closes: Count,
    pub(crate) connection_failures: Count,
    pub(crate) authentication_failures: Count,
    pub(crate) reauthentications: Count,
    requests: Mutex<HashMap<(Arc<str>, i16), Arc<RequestSeries>>>,
}

impl std::fmt::Debug for NetworkMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkMetrics").finish_non_exhaustive()
    }
}

/// The series of one API to one broker. A connection looks its series up once per API and
/// keeps it, so the request path takes no lock.
pub(crate) struct RequestSeries {
    broker: Arc<str>,
    api: &'static str,
    pub(crate) requests: Count,
    pub(crate) latency: Histo,
    pub(crate) bytes_out: Count,
    pub(crate) bytes_in: Count,
    pub(crate) in_flight: Level,
}

impl NetworkMetrics {
    pub(crate) fn new(client_id: &str) -> NetworkMetrics {
        let labels = client_labels(client_id);
        NetworkMetrics {
            connection_creations: Count::new("kafka_client_connection_creations_total", &labels),
            connection_closes: Count::new("kafka_client_connection_closes_total", &labels),
            connection_failures: Count::new("kafka_client_connection_failures_total", &labels),
            authentication_failures: Count::new(
                "kafka_client_authentication_failures_total",
                &labels,
            ),
            reauthentications: Count::new("kafka_client_reauthentications_total", &labels),
            requests: Mutex::new(HashMap::new()),
            labels,
        }
    }

    /// The series of `api` (its key and name) to `broker`, made on first use.
    pub(crate) fn request_series(
        &self,
        broker: &Arc<str>,
        api_key: i16,
        api: &'static str,
    ) -> Arc<RequestSeries> {
        let mut map = self.requests.lock().unwrap();
        map.entry((broker.clone(), api_key))
            .or_insert_with(|| {
                let l = with(
                    &with(&self.labels, "broker", broker.to_string()),
                    "api",
                    api,
                );
                Arc::new(RequestSeries {
                    broker: broker.clone(),
                    api,
                    requests: Count::new("kafka_client_requests_total", &l),
                    latency: Histo::new("kafka_client_request_latency_seconds", &l),
                    bytes_out: Count::new("kafka_client_request_bytes_total", &l),
                    bytes_in: Count::new("kafka_client_response_bytes_total", &l),
                    in_flight: Level::new("kafka_client_requests_in_flight", &l),
                })
            })
            .clone()
    }

    pub(crate) fn snapshot(&self) -> NetworkStats {
        let mut requests: Vec<RequestStats> = self
            .requests
            .lock()
            .unwrap()
            .values()
            .map(|s| RequestStats {
                broker: s.broker.to_string(),
                api: s.api,
                requests: s.requests.get(),
                latency: s.latency.summary(),
                bytes_out: s.bytes_out.get(),
                bytes_in: s.bytes_in.get(),
                in_flight: s.in_flight.get(),
            })
            .collect();
        requests.sort_by(|a, b| (&a.broker, a.api).cmp(&(&b.broker, b.api)));
        NetworkStats {
            connection_creations: self.connection_creations.get(),
            connection_closes: self.connection_closes.get(),
            connection_failures: self.connection_failures.get(),
            authentication_failures: self.authentication_failures.get(),
            reauthentications: self.reauthentications.get(),
            requests,
        }
    }
}
