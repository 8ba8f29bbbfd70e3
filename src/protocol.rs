//! Request framing and API version negotiation.
//!
//! Bodies are encoded and decoded by the `kafka-protocol` crate; this module owns the frame
//! around them (size prefix, request header, correlation id) and picks the version of each
//! API from the broker's ApiVersions answer.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::error::{Error, Result};

/// Byte offset of the correlation id inside a frame (after the 4-byte size, the api key and
/// the api version). The connection task writes the id there just before sending.
pub(crate) const CORRELATION_ID_OFFSET: usize = 8;

/// The name of an API key, for errors and traces.
pub(crate) fn api_name(key: i16) -> &'static str {
    ApiKey::try_from(key).map(api_key_name).unwrap_or("UnknownApi")
}

fn api_key_name(key: ApiKey) -> &'static str {
    // `ApiKey`'s Debug is its variant name ("Metadata", "CreateTopics"); keep a static copy.
    macro_rules! names {
        ($($k:ident),* $(,)?) => {
            match key { $(ApiKey::$k => stringify!($k),)* _ => "OtherApi" }
        };
    }
    names!(
        Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch, FindCoordinator,
        JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups, ListGroups, SaslHandshake,
        ApiVersions, CreateTopics, DeleteTopics, DeleteRecords, InitProducerId,
        OffsetForLeaderEpoch, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
        DescribeConfigs, AlterConfigs, SaslAuthenticate, CreatePartitions, DeleteGroups,
        DescribeCluster, ConsumerGroupHeartbeat, ConsumerGroupDescribe,
        DescribeAcls, CreateAcls, DeleteAcls, AlterReplicaLogDirs, DescribeLogDirs,
        CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken,
        DescribeDelegationToken, ElectLeaders, IncrementalAlterConfigs,
        AlterPartitionReassignments, ListPartitionReassignments, OffsetDelete,
        DescribeClientQuotas, AlterClientQuotas, DescribeUserScramCredentials,
        AlterUserScramCredentials, DescribeQuorum, UpdateFeatures, DescribeProducers,
        DescribeTransactions, ListTransactions, UnregisterBroker, AddRaftVoter,
        RemoveRaftVoter, ListConfigResources, WriteTxnMarkers, DescribeTopicPartitions,
        GetTelemetrySubscriptions, PushTelemetry, ShareGroupHeartbeat, ShareGroupDescribe,
        ShareFetch, ShareAcknowledge,
    )
}

/// The versions of an API this client speaks: what `kafka-protocol` encodes, capped where
/// this client has not been written for the newer versions. This is the one table of caps.
pub(crate) fn client_range(key: i16) -> Option<(i16, i16)> {
    let api = ApiKey::try_from(key).ok()?;
    let range = api.valid_versions();
    let cap = match api {
        // v13 only adds a top-level rebootstrap error code; v12 is served by 3.x and 4.x.
        ApiKey::Metadata => 12,
        // v13 names topics by id only (KIP-516); v12 (by name) is served by 3.x and 4.x.
        ApiKey::Produce => 12,
        // kafka-protocol 0.18's ApiKey table says 10, but the request types encode up to 9.
        ApiKey::OffsetFetch | ApiKey::OffsetCommit => 9,
        // v13 names topics by id only (KIP-516); v12 (by name, with last_fetched_epoch for
        // KIP-320 truncation detection) is served by 3.x and 4.x (whose minimum is v4).
        ApiKey::Fetch => 12,
        // v2 (flexible) is the newest; v1 added the session lifetime (KIP-368).
        ApiKey::SaslAuthenticate => 2,
        // Before v4 a Metadata request may auto-create the topics it names.
        _ => range.max,
    };
    let min = match api {
        ApiKey::Metadata => range.min.max(4),
        // v0 sends the mechanism's tokens raw, outside Kafka frames; we frame them in
        // SaslAuthenticate, which v1 of the handshake announces.
        ApiKey::SaslHandshake => range.min.max(1),
        _ => range.min,
    };
    Some((min, range.max.min(cap)))
}

/// Decodes an ApiVersions response frame (v0 to v4; its header is always v0) with bounded
/// reads (see `crate::wire`): the first answer read from any peer, so a hostile array
/// count here must be an error, not an allocation. Keeps the error code, the API ranges,
/// the throttle time and (v3, tagged fields 0 to 2) the broker's supported features, the
/// finalized features' epoch and the cluster's finalized features such as
/// `transaction.version`; the other tagged fields are skipped.
pub(crate) fn decode_api_versions_response(
    mut frame: Bytes,
    version: i16,
    broker: &str,
) -> Result<kafka_protocol::messages::ApiVersionsResponse> {
    use crate::wire::{array_len, i16_, i32_, i64_, need, skip_tags, string, uvarint};
    use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
    fn decode(r: &mut Bytes, version: i16) -> crate::wire::DecodeResult<kafka_protocol::messages::ApiVersionsResponse> {
        // v4 has v3's layout (it only lets SupportedFeatures carry a min version of 0).
        if !(0..=4).contains(&version) {
            return Err(format!("ApiVersions v{version} is not decoded here"));
        }
        let flexible = version >= 3;
        i32_(r)?; // correlation id (response header v0 for every version)
        let error_code = i16_(r)?;
        let n = array_len(r, flexible, if flexible { 7 } else { 6 }, "api keys")?.unwrap_or(0);
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let k = ApiVersion::default().with_api_key(i16_(r)?).with_min_version(i16_(r)?).with_max_version(i16_(r)?);
            if flexible {
                skip_tags(r)?;
            }
            keys.push(k);
        }
        let mut resp = kafka_protocol::messages::ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(keys);
        if version >= 1 {
            resp.throttle_time_ms = i32_(r)?;
        }
        if flexible {
            // Top-level tagged fields: 0 SupportedFeatures, 1 FinalizedFeaturesEpoch,
            // 2 FinalizedFeatures, 3 ZkMigrationReady. 0, 1 and 2 are read.
            let tags = uvarint(r)?;
            for _ in 0..tags {
                let tag = uvarint(r)?;
                let size = uvarint(r)? as usize;
                need(r, size)?;
                let mut field = r.split_to(size);
                if tag == 0 {
                    let n = array_len(&mut field, true, 6, "supported features")?.unwrap_or(0);
                    let mut features = Vec::with_capacity(n);
                    for _ in 0..n {
                        let name = string(&mut field, true)?;
                        let min = i16_(&mut field)?;
                        let max = i16_(&mut field)?;
                        skip_tags(&mut field)?;
                        features.push(SupportedFeatureKey::default().with_name(name).with_min_version(min).with_max_version(max));
                    }
                    resp.supported_features = features;
                } else if tag == 1 {
                    resp.finalized_features_epoch = i64_(&mut field)?;
                } else if tag == 2 {
                    let n = array_len(&mut field, true, 6, "finalized features")?.unwrap_or(0);
                    let mut features = Vec::with_capacity(n);
                    for _ in 0..n {
                        let name = string(&mut field, true)?;
                        let max = i16_(&mut field)?;
                        let min = i16_(&mut field)?;
                        skip_tags(&mut field)?;
                        features.push(FinalizedFeatureKey::default().with_name(name).with_max_version_level(max).with_min_version_level(min));
                    }
                    resp.finalized_features = features;
                }
            }
        }
        Ok(resp)
    }
    decode(&mut frame, version).map_err(|detail| Error::Protocol {
        broker: broker.to_owned(),
        detail: format!("ApiVersions v{version} response: {detail}"),
    })
}

/// The version range a broker supports for each API, from its ApiVersions response.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiVersions {
    ranges: HashMap<i16, (i16, i16)>,
    /// Finalized cluster features (name → max version level), from ApiVersions v3+.
    features: HashMap<String, i16>,
}

impl ApiVersions {
    pub(crate) fn from_response(resp: &kafka_protocol::messages::ApiVersionsResponse) -> Self {
        ApiVersions {
            ranges: resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
            features: resp.finalized_features.iter().map(|f| (f.name.to_string(), f.max_version_level)).collect(),
        }
    }

    /// The finalized (cluster-wide) version level of a feature such as
    /// `transaction.version`; `None` when the broker did not report it.
    pub(crate) fn finalized_feature(&self, name: &str) -> Option<i16> {
        self.features.get(name).copied()
    }

    /// Every API key the broker listed, with its range, sorted by key.
    pub(crate) fn all(&self) -> Vec<(i16, i16, i16)> {
        let mut v: Vec<_> = self.ranges.iter().map(|(k, (a, b))| (*k, *a, *b)).collect();
        v.sort();
        v
    }

    /// The broker's range for an API key.
    pub(crate) fn range(&self, key: i16) -> Option<(i16, i16)> {
        self.ranges.get(&key).copied()
    }

    /// The highest version of `R` both sides support, within [`client_range`].
    pub(crate) fn negotiate<R: Request>(&self, broker: &str) -> Result<i16> {
        // `ApiKey::valid_versions` can run ahead of the request type's own codec (OffsetFetch
        // and OffsetCommit: 10 vs 9 in kafka-protocol 0.18), so intersect with what `R` encodes.
        let (client_min, client_max) = client_range(R::KEY)
            .map(|(a, b)| (a.max(R::VERSIONS.min), b.min(R::VERSIONS.max)))
            .unwrap_or((R::VERSIONS.min, R::VERSIONS.max));
        let unsupported = |broker_range| Error::UnsupportedVersion {
            broker: broker.to_owned(),
            api: api_name(R::KEY),
            client_min,
            client_max,
            broker_range,
        };
        let (bmin, bmax) = self.range(R::KEY).ok_or_else(|| unsupported(None))?;
        let v = client_max.min(bmax);
        if v < client_min.max(bmin) {
            return Err(unsupported(Some((bmin, bmax))));
        }
        Ok(v)
    }
}

/// A request frame ready to write: a head (size prefix, header with the correlation-id slot,
/// leading body fields) and tail chunks written after it without being copied (record
/// batches of a produce request, interleaved with the small fields between them).
#[derive(Debug, Default)]
pub(crate) struct Frame {
    pub head: BytesMut,
    pub tail: Vec<Bytes>,
}

impl Frame {
    /// Total bytes on the wire.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail.iter().map(Bytes::len).sum::<usize>()
    }
}

impl From<BytesMut> for Frame {
    fn from(head: BytesMut) -> Frame {
        Frame { head, tail: Vec::new() }
    }
}

/// Encodes a whole request frame (size prefix, header with a zero correlation id, body).
pub(crate) fn encode_request<R: Request>(
    req: &R,
    version: i16,
    client_id: &str,
    broker: &str,
) -> Result<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(0)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    let header_version = R::header_version(version);
    let encode_err = |e: String| Error::InvalidArgument(format!(
        "cannot encode {} v{version} for {broker}: {e}",
        api_name(R::KEY)
    ));
    let size = header.compute_size(header_version).map_err(|e| encode_err(e.to_string()))?
        + req.compute_size(version).map_err(|e| encode_err(e.to_string()))?;
    let size32 = i32::try_from(size)
        .map_err(|_| Error::InvalidArgument(format!("request of {size} bytes is too large")))?;
    let mut buf = BytesMut::with_capacity(size + 4);
    buf.put_i32(size32);
    header.encode(&mut buf, header_version).map_err(|e| encode_err(e.to_string()))?;
    req.encode(&mut buf, version).map_err(|e| encode_err(e.to_string()))?;
    debug_assert_eq!(buf.len(), size + 4);
    Ok(buf)
}

/// Decodes a response frame (without its size prefix) for a request of type `R` sent at
/// `version`. Never panics: a short or malformed frame is an [`Error::Protocol`].
pub(crate) fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
    broker: &str,
) -> Result<R::Response> {
    let header_version = R::Response::header_version(version);
    let bad = |what: String| Error::Protocol {
        broker: broker.to_owned(),
        detail: format!("{} v{version} response: {what}", api_name(R::KEY)),
    };
    // The decoders slice `Bytes` without checking the length in a few places (fixed-size
    // fields). Catch such a panic so a hostile frame gives an error instead.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ResponseHeader::decode(&mut frame, header_version)
            .and_then(|_| R::Response::decode(&mut frame, version))
    }));
    match decoded {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(bad(e.to_string())),
        Err(_) => Err(bad("frame is truncated or inconsistent".into())),
    }
}

/// Reads the correlation id at the start of a response frame.
pub(crate) fn response_correlation_id(frame: &[u8]) -> Option<i32> {
    (frame.len() >= 4).then(|| (&frame[..4]).get_i32())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest, MetadataResponse};
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn versions(key: i16, min: i16, max: i16) -> ApiVersions {
        let resp = ApiVersionsResponse::default()
            .with_api_keys(vec![ApiVersion::default().with_api_key(key).with_min_version(min).with_max_version(max)]);
        ApiVersions::from_response(&resp)
    }

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        assert_eq!(versions(3, 0, 13).negotiate::<MetadataRequest>("b:1").unwrap(), 12);
        assert_eq!(versions(3, 0, 9).negotiate::<MetadataRequest>("b:1").unwrap(), 9);
        // Metadata below v4 may auto-create topics: never used.
        assert!(versions(3, 0, 3).negotiate::<MetadataRequest>("b:1").is_err());
    }

    #[test]
    fn negotiation_failure_names_the_api_and_the_ranges() {
        let v = versions(3, 20, 25);
        let e = v.negotiate::<MetadataRequest>("b:1").unwrap_err().to_string();
        assert!(e.contains("Metadata") && e.contains("4..=12") && e.contains("20..=25"), "{e}");
        let e = ApiVersions::default().negotiate::<MetadataRequest>("b:1").unwrap_err().to_string();
        assert!(e.contains("broker none"), "{e}");
    }

    #[test]
    fn request_frames_carry_size_and_correlation_slot() {
        let f = encode_request(&MetadataRequest::default(), 12, "cid", "b:1").unwrap();
        assert_eq!((&f[..4]).get_i32() as usize, f.len() - 4);
        assert_eq!((&f[4..6]).get_i16(), 3);
        assert_eq!((&f[6..8]).get_i16(), 12);
        assert_eq!(&f[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 4], &[0, 0, 0, 0]);
    }

    #[test]
    fn api_versions_decoder_agrees_and_refuses_hostile_counts() {
        use kafka_protocol::messages::ApiVersionsRequest;
        for version in 0..=4i16 {
            let resp = ApiVersionsResponse::default()
                .with_throttle_time_ms(if version >= 1 { 4 } else { 0 })
                .with_api_keys(vec![
                    ApiVersion::default().with_api_key(0).with_min_version(3).with_max_version(12),
                    ApiVersion::default().with_api_key(18).with_min_version(0).with_max_version(4),
                ])
                .with_supported_features(vec![kafka_protocol::messages::api_versions_response::SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str("transaction.version"))
                    .with_min_version(0)
                    .with_max_version(2)])
                .with_finalized_features_epoch(if version >= 3 { 7 } else { -1 })
                .with_finalized_features(if version >= 3 {
                    vec![kafka_protocol::messages::api_versions_response::FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str("transaction.version"))
                        .with_max_version_level(2)
                        .with_min_version_level(2)]
                } else {
                    vec![]
                })
                .with_zk_migration_ready(false);
            let frame = crate::network::testing::encode_response::<ApiVersionsRequest>(1, version, &resp).slice(4..);
            let ours = decode_api_versions_response(frame.clone(), version, "b").unwrap();
            let theirs = decode_response::<ApiVersionsRequest>(frame.clone(), version, "b").unwrap();
            assert_eq!(ours.api_keys, theirs.api_keys, "v{version}");
            assert_eq!((ours.error_code, ours.throttle_time_ms), (theirs.error_code, theirs.throttle_time_ms));
            assert_eq!(ours.finalized_features, theirs.finalized_features, "v{version}");
            assert_eq!(ours.supported_features, theirs.supported_features, "v{version}");
            assert_eq!(ours.finalized_features_epoch, theirs.finalized_features_epoch, "v{version}");
            if version >= 3 {
                assert_eq!(ApiVersions::from_response(&ours).finalized_feature("transaction.version"), Some(2));
            }
            for cut in 0..frame.len() {
                assert!(decode_api_versions_response(frame.slice(..cut), version, "b").is_err(), "v{version} prefix {cut}");
            }
        }
        // A hostile peer announcing 2^31-1 APIs in a few bytes.
        let mut f = vec![0, 0, 0, 1, 0, 0];
        f.extend_from_slice(&i32::MAX.to_be_bytes());
        let e = decode_api_versions_response(Bytes::from(f), 0, "b").unwrap_err().to_string();
        assert!(e.contains("array of 2147483647 elements"), "{e}");
    }

    #[test]
    fn garbage_responses_are_errors_not_panics() {
        for junk in [&b""[..], &[0, 0, 0, 1], &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f], &[0xff; 64]] {
            let r = decode_response::<MetadataRequest>(Bytes::copy_from_slice(junk), 12, "b:1");
            assert!(matches!(r, Err(Error::Protocol { .. })), "{junk:?} gave {:?}", r.map(|_| ()));
        }
        let _: Option<MetadataResponse> = None;
    }
}
