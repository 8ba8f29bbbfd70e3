//! A scripted in-process broker for unit tests of the client's own logic: it reads the
//! client's frames and answers exactly what each test scripts (out of order, truncated,
//! oversize, injected error codes). It makes no claim about real broker behaviour.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, HeaderVersion, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// One request as the scripted broker received it.
pub(crate) struct Received {
    pub header: RequestHeader,
    pub body: Bytes,
    /// The frame's size without its 4-byte size prefix.
    pub size: usize,
}

impl Received {
    pub(crate) fn decode<R: Request>(&self) -> R {
        R::decode(&mut self.body.clone(), self.header.request_api_version).expect("decodable request")
    }
}

/// The broker end of an in-memory connection.
pub(crate) struct ScriptedBroker {
    pub io: DuplexStream,
}

impl ScriptedBroker {
    /// Reads one whole request frame; `None` when the client closed the connection.
    pub(crate) async fn recv(&mut self) -> Option<Received> {
        let size = self.io.read_i32().await.ok()?;
        let mut frame = vec![0u8; size as usize];
        self.io.read_exact(&mut frame).await.ok()?;
        let mut buf = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut buf).expect("request header");
        Some(Received { header, body: buf, size: size as usize })
    }

    /// Answers a request with `resp` encoded at the request's version.
    pub(crate) async fn reply<R: Request>(&mut self, to: &Received, resp: &R::Response) {
        let frame = encode_response::<R>(to.header.correlation_id, to.header.request_api_version, resp);
        self.io.write_all(&frame).await.expect("write response");
    }

    /// Writes raw bytes (for truncated, oversize or foreign frames).
    pub(crate) async fn raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write raw");
    }

    /// Answers the client's ApiVersions handshake with `ranges` (api key, min, max).
    pub(crate) async fn handshake(&mut self, ranges: &[(i16, i16, i16)]) {
        let req = self.recv().await.expect("ApiVersions request");
        assert_eq!(req.header.request_api_key, 18, "first request must be ApiVersions");
        self.reply::<kafka_protocol::messages::ApiVersionsRequest>(&req, &api_versions(ranges)).await;
    }
}

/// An ApiVersions response listing `ranges`.
pub(crate) fn api_versions(ranges: &[(i16, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|&(k, min, max)| ApiVersion::default().with_api_key(k).with_min_version(min).with_max_version(max))
            .collect(),
    )
}

/// Metadata for `n` partitions, each led by node 0, its only replica, at leader epoch 0.
pub(crate) fn partitions_on_node_0(n: i32) -> Vec<kafka_protocol::messages::metadata_response::MetadataResponsePartition> {
    use kafka_protocol::messages::BrokerId;
    (0..n)
        .map(|p| {
            kafka_protocol::messages::metadata_response::MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(0))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(0)])
                .with_isr_nodes(vec![BrokerId(0)])
        })
        .collect()
}

/// Metadata naming one broker, node 0 at `host:port` (also the controller), and topic
/// `topic` with `partitions` partitions it leads ([`partitions_on_node_0`]).
pub(crate) fn single_node_metadata(host: &str, port: i32, topic: &'static str, partitions: i32) -> kafka_protocol::messages::MetadataResponse {
    use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
    use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(0))
            .with_host(StrBytes::from_string(host.to_owned()))
            .with_port(port)])
        .with_controller_id(BrokerId(0))
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(topic))))
            .with_partitions(partitions_on_node_0(partitions))])
}

/// The ranges a Kafka 4.x broker advertises for the APIs the unit tests use.
pub(crate) const MODERN: &[(i16, i16, i16)] = &[(18, 0, 4), (3, 0, 12), (19, 2, 7), (20, 1, 6)];

/// A size-prefixed response frame.
pub(crate) fn encode_response<R: Request>(correlation_id: i32, version: i16, resp: &R::Response) -> Bytes {
    let hv = R::Response::header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut body = BytesMut::new();
    header.encode(&mut body, hv).expect("header");
    resp.encode(&mut body, version).expect("body");
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out.freeze()
}

/// A TxnOffsetCommit response that answers every partition of `r` with `code`.
pub(crate) fn txn_offset_commit_answer(
    r: &kafka_protocol::messages::TxnOffsetCommitRequest,
    code: i16,
) -> kafka_protocol::messages::TxnOffsetCommitResponse {
    use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
    let topics = r
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                t.partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code))
                    .collect(),
            )
        })
        .collect();
    kafka_protocol::messages::TxnOffsetCommitResponse::default().with_topics(topics)
}

/// What a [`TcpBroker`] handler answers to one request.
pub(crate) enum TcpReply {
    /// A whole response frame (size prefix included), e.g. from [`encode_response`]; any
    /// bytes at all for garbage tests.
    Frame(Bytes),
    /// A frame written after a pause (a long-poll fetch with nothing new).
    Delayed(std::time::Duration, Bytes),
    /// Close the connection.
    Close,
}

/// A scripted broker on a real TCP socket (127.0.0.1, ephemeral port), for tests that run
/// the client's whole path (pool, handshake, metadata, fetch tasks). Every connection is
/// served by `handler`, called with each request and the broker's own `host:port`.
pub(crate) struct TcpBroker {
    pub host: String,
    pub port: i32,
    task: tokio::task::JoinHandle<()>,
}

impl TcpBroker {
    pub(crate) async fn start<F>(handler: F) -> TcpBroker
    where
        F: Fn(&Received, &str, i32) -> TcpReply + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port() as i32;
        let host = "127.0.0.1".to_owned();
        let handler = std::sync::Arc::new(handler);
        let h = host.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let handler = handler.clone();
                let host = h.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok(size) = sock.read_i32().await else { return };
                        if !(0..=64 << 20).contains(&size) {
                            return;
                        }
                        let mut frame = vec![0u8; size as usize];
                        if sock.read_exact(&mut frame).await.is_err() {
                            return;
                        }
                        let mut buf = Bytes::from(frame);
                        let Ok(header) = decode_request_header_from_buffer(&mut buf) else { return };
                        match handler(&Received { header, body: buf, size: size as usize }, &host, port) {
                            TcpReply::Frame(b) => {
                                if sock.write_all(&b).await.is_err() {
                                    return;
                                }
                            }
                            TcpReply::Delayed(d, b) => {
                                tokio::time::sleep(d).await;
                                if sock.write_all(&b).await.is_err() {
                                    return;
                                }
                            }
                            TcpReply::Close => return,
                        }
                    }
                });
            }
        });
        TcpBroker { host, port, task }
    }

    /// `host:port`, for bootstrap lists.
    pub(crate) fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl Drop for TcpBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
