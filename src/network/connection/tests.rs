//! Unit tests of the connection task against the scripted in-process broker.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::network::testing::{api_versions, ScriptedBroker, MODERN};

fn settings(timeout_ms: u64) -> Arc<ConnectionSettings> {
    Arc::new(ConnectionSettings {
        client_id: "unit".into(),
        request_timeout: Duration::from_millis(timeout_ms),
        max_response_size: 1024 * 1024,
        metrics: Arc::new(crate::metrics::network::NetworkMetrics::new("unit")),
    })
}

/// A connected client handle and the scripted broker behind it, handshake done.
async fn pair(timeout_ms: u64) -> (BrokerConnection, ScriptedBroker) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut broker = ScriptedBroker { io: server };
    let (conn, ()) = tokio::join!(
        async { BrokerConnection::start(client, "scripted:9092", settings(timeout_ms)).await.unwrap() },
        broker.handshake(MODERN)
    );
    (conn, broker)
}

fn metadata_for(topic: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.into())))),
    ]))
}

fn asked_topic(req: &MetadataRequest) -> String {
    req.topics.as_ref().unwrap()[0].name.as_ref().unwrap().0.to_string()
}

#[tokio::test]
async fn pipelined_requests_answered_out_of_order_reach_their_callers() {
    let (conn, mut broker) = pair(5_000).await;
    let callers: Vec<_> = (0..5)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move {
                let resp = conn.send_at(&metadata_for(&format!("t{i}")), 12).await.unwrap();
                (i, resp.cluster_id.unwrap().to_string())
            })
        })
        .collect();
    // All five are written before any answer: they are pipelined on the one connection.
    let mut reqs = Vec::new();
    for _ in 0..5 {
        reqs.push(broker.recv().await.unwrap());
    }
    let ids: std::collections::HashSet<i32> = reqs.iter().map(|r| r.header.correlation_id).collect();
    assert_eq!(ids.len(), 5, "correlation ids must be distinct");
    // Answer in reverse order, echoing the asked topic as the cluster id.
    for r in reqs.iter().rev() {
        let topic = asked_topic(&r.decode::<MetadataRequest>());
        let resp = MetadataResponse::default().with_cluster_id(Some(StrBytes::from_string(topic)));
        broker.reply::<MetadataRequest>(r, &resp).await;
    }
    for c in callers {
        let (i, got) = c.await.unwrap();
        assert_eq!(got, format!("t{i}"), "caller {i} got another caller's response");
    }
}

#[tokio::test]
async fn truncated_frame_fails_in_flight_requests_with_a_clear_retriable_error() {
    let (conn, mut broker) = pair(5_000).await;
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("x"), 12).await }
    });
    let _req = broker.recv().await.unwrap();
    let mut partial = 100i32.to_be_bytes().to_vec();
    partial.extend_from_slice(&[0u8; 10]);
    broker.raw(&partial).await;
    drop(broker);
    let err = call.await.unwrap().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connection { .. }) && err.is_retriable(), "{text}");
    assert!(text.contains("mid-frame: got 10 of 100 bytes"), "{text}");
    assert!(conn.is_closed());
}

#[tokio::test]
async fn oversize_frame_is_refused_before_allocating() {
    let (conn, mut broker) = pair(5_000).await;
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("x"), 12).await }
    });
    let _req = broker.recv().await.unwrap();
    // 200 MiB announced, against a 1 MiB limit; the body never comes.
    broker.raw(&(200i32 * 1024 * 1024).to_be_bytes()).await;
    let err = call.await.unwrap().unwrap_err();
    match &err {
        Error::FrameTooLarge { size, max, .. } => {
            assert_eq!(*size, 200 * 1024 * 1024);
            assert_eq!(*max, 1024 * 1024);
        }
        other => panic!("expected FrameTooLarge, got {other}"),
    }
    assert!(err.to_string().contains("max_response_size"));
}

#[tokio::test]
async fn negative_frame_size_is_a_protocol_error() {
    let (conn, mut broker) = pair(5_000).await;
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("x"), 12).await }
    });
    let _req = broker.recv().await.unwrap();
    broker.raw(&(-5i32).to_be_bytes()).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("frame size -5"), "{err}");
}

#[tokio::test]
async fn dropped_request_future_leaves_the_connection_usable() {
    let (conn, mut broker) = pair(5_000).await;
    // Start a request, let it be written, then drop its future before the answer.
    {
        let req = metadata_for("abandoned");
        let fut = conn.send_at(&req, 12);
        tokio::pin!(fut);
        tokio::select! {
            _ = &mut fut => panic!("no answer was sent yet"),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let abandoned = broker.recv().await.unwrap();
    assert_eq!(asked_topic(&abandoned.decode::<MetadataRequest>()), "abandoned");
    // The broker answers the abandoned request anyway; the client must skip it cleanly.
    broker
        .reply::<MetadataRequest>(&abandoned, &MetadataResponse::default().with_cluster_id(Some("old".into())))
        .await;
    let next = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("next"), 12).await }
    });
    let req = broker.recv().await.unwrap();
    broker
        .reply::<MetadataRequest>(&req, &MetadataResponse::default().with_cluster_id(Some("fresh".into())))
        .await;
    let resp = next.await.unwrap().unwrap();
    assert_eq!(resp.cluster_id.unwrap().as_str(), "fresh");
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn tls_bytes_on_a_plaintext_connection_say_wrong_protocol() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut broker = ScriptedBroker { io: server };
    let (res, ()) = tokio::join!(BrokerConnection::start(client, "tls-port:9093", settings(5_000)), async {
        let _ = broker.recv().await;
        // A TLS alert record, as a TLS listener sends to a client that speaks plaintext.
        broker.raw(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]).await;
    });
    let err = res.unwrap_err();
    assert!(matches!(err, Error::WrongProtocol { .. }), "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[tokio::test]
async fn unknown_correlation_id_is_a_protocol_error() {
    let (conn, mut broker) = pair(5_000).await;
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("x"), 12).await }
    });
    let req = broker.recv().await.unwrap();
    let frame = crate::network::testing::encode_response::<MetadataRequest>(
        req.header.correlation_id + 1000,
        12,
        &MetadataResponse::default(),
    );
    broker.raw(&frame).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("unknown correlation id"), "{err}");
}

#[tokio::test]
async fn malformed_body_is_an_error_not_a_panic() {
    let (conn, mut broker) = pair(5_000).await;
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("x"), 12).await }
    });
    let req = broker.recv().await.unwrap();
    // Correlation id, empty tagged fields, then a body cut short inside throttle_time_ms.
    let mut frame = 7i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&req.header.correlation_id.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0]);
    broker.raw(&frame).await;
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("Metadata v12 response"), "{err}");
}

#[tokio::test]
async fn request_timeout_fails_the_request_and_every_other_in_flight() {
    let (conn, mut broker) = pair(200).await;
    let a = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("a"), 12).await }
    });
    let _ = broker.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("b"), 12).await }
    });
    let _ = broker.recv().await.unwrap();
    let ea = a.await.unwrap().unwrap_err();
    assert!(matches!(ea, Error::RequestTimeout { api: "Metadata", .. }), "{ea}");
    assert!(ea.is_retriable());
    // The connection is closed after a timeout: the other in-flight request fails at once
    // with the shared retriable error instead of waiting out its own timeout.
    let eb = b.await.unwrap().unwrap_err();
    assert!(matches!(eb, Error::Connection { .. }) && eb.is_retriable(), "{eb}");
    assert!(eb.to_string().contains("timed out"), "{eb}");
    assert!(conn.is_closed());
    let ec = conn.send_at(&metadata_for("c"), 12).await.unwrap_err();
    assert!(matches!(ec, Error::Connection { .. }), "{ec}");
}

#[tokio::test]
async fn broker_closing_fails_every_waiter_with_one_retriable_error() {
    let (conn, mut broker) = pair(5_000).await;
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.send_at(&metadata_for(&format!("t{i}")), 12).await })
        })
        .collect();
    for _ in 0..3 {
        broker.recv().await.unwrap();
    }
    drop(broker);
    let mut causes = Vec::new();
    for c in calls {
        match c.await.unwrap().unwrap_err() {
            Error::Connection { cause, .. } => causes.push(cause),
            other => panic!("expected a connection error, got {other}"),
        }
    }
    assert!(causes.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])), "one shared error for all waiters");
}

#[tokio::test]
async fn api_versions_falls_back_to_the_brokers_range() {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut broker = ScriptedBroker { io: server };
    let (conn, ()) = tokio::join!(
        async { BrokerConnection::start(client, "old:9092", settings(5_000)).await.unwrap() },
        async {
            let first = broker.recv().await.unwrap();
            assert_eq!(first.header.request_api_version, 3);
            // An old broker answers UNSUPPORTED_VERSION in the v0 format with its range.
            let mut refuse = api_versions(&[(18, 0, 2)]);
            refuse.error_code = 35;
            let frame = crate::network::testing::encode_response::<ApiVersionsRequest>(
                first.header.correlation_id,
                0,
                &refuse,
            );
            broker.raw(&frame).await;
            let second = broker.recv().await.unwrap();
            assert_eq!(second.header.request_api_version, 2);
            broker.reply::<ApiVersionsRequest>(&second, &api_versions(&[(18, 0, 2), (3, 1, 9)])).await;
        }
    );
    assert_eq!(conn.version_for::<MetadataRequest>().unwrap(), 9);
}

#[tokio::test]
async fn an_api_the_broker_lacks_is_named_in_the_error() {
    // A broker whose ApiVersions lists no CreateTopics at all.
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut broker = ScriptedBroker { io: server };
    let (conn, ()) = tokio::join!(
        async { BrokerConnection::start(client, "b:1", settings(5_000)).await.unwrap() },
        broker.handshake(&[(18, 0, 4), (3, 0, 12)])
    );
    let e = conn.send(&CreateTopicsRequest::default()).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::UnsupportedVersion { api: "CreateTopics", broker_range: None, .. }), "{text}");
    assert!(text.contains("CreateTopics") && text.contains("broker none"), "{text}");
}

#[tokio::test]
async fn requests_without_response_do_not_shift_correlation() {
    let (conn, mut broker) = pair(5_000).await;
    // An acks=0 style request resolves once written and registers nothing.
    conn.send_no_response(&metadata_for("fire-and-forget"), 12).await.unwrap();
    let first = broker.recv().await.unwrap();
    assert_eq!(asked_topic(&first.decode::<MetadataRequest>()), "fire-and-forget");
    let call = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("answered"), 12).await }
    });
    let req = broker.recv().await.unwrap();
    broker
        .reply::<MetadataRequest>(&req, &MetadataResponse::default().with_cluster_id(Some("ok".into())))
        .await;
    assert_eq!(call.await.unwrap().unwrap().cluster_id.unwrap().as_str(), "ok");
}

#[tokio::test]
async fn requests_are_metered_per_api_with_latency_bytes_and_in_flight() {
    let (conn, mut broker) = pair(5_000).await;
    let metrics = conn.settings.metrics.clone();
    let pending = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send_at(&metadata_for("t"), 12).await }
    });
    let req = broker.recv().await.unwrap();
    let before = metrics.snapshot();
    let md = before.requests.iter().find(|r| r.api == "Metadata").expect("Metadata series");
    assert_eq!((md.requests, md.in_flight, md.latency.count), (1, 1, 0));
    tokio::time::sleep(Duration::from_millis(20)).await;
    broker.reply::<MetadataRequest>(&req, &kafka_protocol::messages::MetadataResponse::default()).await;
    pending.await.unwrap().unwrap();
    let after = metrics.snapshot();
    let md = after.requests.iter().find(|r| r.api == "Metadata").unwrap();
    assert_eq!((md.requests, md.in_flight, md.latency.count), (1, 0, 1));
    assert!(md.latency.max >= 0.02 && md.latency.max < 5.0, "latency {:?}", md.latency);
    assert_eq!(md.bytes_out, 4 + req.size as u64, "{md:?}");
    assert!(md.bytes_in > 8, "{md:?}");
    // The handshake was metered too, and the connection was counted once.
    assert!(after.requests.iter().any(|r| r.api == "ApiVersions" && r.requests == 1 && r.in_flight == 0));
    assert_eq!(after.connection_creations, 1);
}
