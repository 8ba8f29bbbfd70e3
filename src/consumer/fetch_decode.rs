//! Our own decoder of Fetch responses (v4 to v12), the consumer's hot path and its largest
//! responses. Unlike the generic decoders, it never reserves memory from a count read off
//! the wire beyond what the remaining bytes can hold (every element takes at least one
//! byte), so a hostile count is an error, not an allocation. It builds the same
//! `FetchResponse` value as `kafka-protocol` (checked against it in the tests), with record
//! bytes as zero-copy slices of the frame.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData, SnapshotId,
};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, TopicName};

use crate::wire::{array_len, bytes, i16_, i32_, i64_, need, skip_tags, string, uvarint, DecodeResult};

/// Decodes a Fetch response frame (correlation id first) sent for a request of `version`.
pub(crate) fn decode_fetch_response(mut frame: Bytes, version: i16) -> DecodeResult<FetchResponse> {
    if !(4..=12).contains(&version) {
        return Err(format!("fetch v{version} is not decoded here"));
    }
    let flexible = version >= 12;
    let r = &mut frame;
    i32_(r)?; // correlation id
    if flexible {
        skip_tags(r)?;
    }
    let mut resp = FetchResponse::default().with_throttle_time_ms(i32_(r)?);
    if version >= 7 {
        resp.error_code = i16_(r)?;
        resp.session_id = i32_(r)?;
    }
    // Smallest topic: name, partition count and tags (one byte each when flexible).
    let topics = array_len(r, flexible, if flexible { 3 } else { 6 }, "topics")?.unwrap_or(0);
    resp.responses = Vec::with_capacity(topics);
    for _ in 0..topics {
        let name = string(r, flexible)?;
        let partitions = array_len(r, flexible, min_partition_size(version), "partitions")?.unwrap_or(0);
        let mut parts = Vec::with_capacity(partitions);
        for _ in 0..partitions {
            parts.push(partition(r, version, flexible)?);
        }
        if flexible {
            skip_tags(r)?;
        }
        resp.responses.push(FetchableTopicResponse::default().with_topic(TopicName(name)).with_partitions(parts));
    }
    if flexible {
        skip_tags(r)?;
    }
    Ok(resp)
}

/// The smallest encoding of one partition of a Fetch response of `version`.
fn min_partition_size(version: i16) -> usize {
    // index, error code, high watermark, last stable offset
    let mut n = 4 + 2 + 8 + 8;
    if version >= 5 {
        n += 8; // log start offset
    }
    if version >= 11 {
        n += 4; // preferred read replica
    }
    // aborted transactions and records lengths, then tagged fields
    n + if version >= 12 { 1 + 1 + 1 } else { 4 + 4 }
}

fn partition(r: &mut Bytes, version: i16, flexible: bool) -> DecodeResult<PartitionData> {
    let mut p = PartitionData::default()
        .with_partition_index(i32_(r)?)
        .with_error_code(i16_(r)?)
        .with_high_watermark(i64_(r)?)
        .with_last_stable_offset(i64_(r)?);
    if version >= 5 {
        p.log_start_offset = i64_(r)?;
    }
    p.aborted_transactions = match array_len(r, flexible, if flexible { 17 } else { 16 }, "aborted transactions")? {
        None => None,
        Some(n) => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = AbortedTransaction::default().with_producer_id(ProducerId(i64_(r)?)).with_first_offset(i64_(r)?);
                if flexible {
                    skip_tags(r)?;
                }
                v.push(t);
            }
            Some(v)
        }
    };
    if version >= 11 {
        p.preferred_read_replica = BrokerId(i32_(r)?);
    }
    p.records = bytes(r, flexible)?;
    if flexible {
        let n = uvarint(r)?;
        for _ in 0..n {
            let tag = uvarint(r)?;
            let size = uvarint(r)? as usize;
            need(r, size)?;
            let mut field = r.split_to(size);
            let f = &mut field;
            match tag {
                0 => {
                    p.diverging_epoch = EpochEndOffset::default().with_epoch(i32_(f)?).with_end_offset(i64_(f)?);
                    skip_tags(f)?;
                }
                1 => {
                    p.current_leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(i32_(f)?)).with_leader_epoch(i32_(f)?);
                    skip_tags(f)?;
                }
                2 => {
                    p.snapshot_id = SnapshotId::default().with_end_offset(i64_(f)?).with_epoch(i32_(f)?);
                    skip_tags(f)?;
                }
                _ => {} // unknown tagged field: skipped
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::protocol::StrBytes;

    fn sample() -> FetchResponse {
        let part = |i: i32, records: &'static [u8]| {
            PartitionData::default()
                .with_partition_index(i)
                .with_error_code(if i == 2 { 6 } else { 0 })
                .with_high_watermark(100 + i as i64)
                .with_last_stable_offset(90 + i as i64)
                .with_log_start_offset(5)
                .with_aborted_transactions(if i == 1 {
                    Some(vec![
                        AbortedTransaction::default().with_producer_id(ProducerId(7)).with_first_offset(3),
                        AbortedTransaction::default().with_producer_id(ProducerId(8)).with_first_offset(1),
                    ])
                } else {
                    None
                })
                .with_records(if records.is_empty() { None } else { Some(Bytes::from_static(records)) })
        };
        FetchResponse::default().with_throttle_time_ms(12).with_error_code(0).with_session_id(4242).with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("alpha")))
                .with_partitions(vec![part(0, b"batch-bytes"), part(1, b"more"), part(2, b"")]),
            FetchableTopicResponse::default().with_topic(TopicName(StrBytes::from_static_str("beta"))).with_partitions(vec![]),
        ])
    }

    /// The same value as kafka-protocol's decoder, for every version we fetch with.
    #[test]
    fn agrees_with_the_generic_decoder_for_every_version() {
        for version in 4..=12i16 {
            let mut resp = sample();
            if version >= 12 {
                let p = &mut resp.responses[0].partitions[0];
                p.diverging_epoch = EpochEndOffset::default().with_epoch(3).with_end_offset(40);
                p.current_leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(2)).with_leader_epoch(9);
            }
            if version >= 11 {
                resp.responses[0].partitions[1].preferred_read_replica = BrokerId(3);
            }
            if version < 7 {
                resp.error_code = 0;
                resp.session_id = 0;
            }
            if version < 5 {
                for t in resp.responses.iter_mut() {
                    for p in t.partitions.iter_mut() {
                        p.log_start_offset = -1;
                    }
                }
            }
            let frame = crate::network::testing::encode_response::<FetchRequest>(77, version, &resp);
            let body = frame.slice(4..);
            let ours = decode_fetch_response(body.clone(), version).unwrap();
            let theirs = crate::protocol::decode_response::<FetchRequest>(body, version, "test").unwrap();
            assert_eq!(ours, theirs, "fetch v{version}");
        }
    }

    #[test]
    fn hostile_counts_and_lengths_are_errors_not_allocations() {
        // correlation id, throttle, error, session, then a topic count of i32::MAX (v11).
        let mut f = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        f.extend_from_slice(&i32::MAX.to_be_bytes());
        let e = decode_fetch_response(Bytes::from(f), 11).unwrap_err();
        assert!(e.contains("array of 2147483647 elements"), "{e}");
        // Flexible: a compact count of u32::MAX.
        let f = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(decode_fetch_response(Bytes::from(f), 12).is_err());
        // Every prefix of a valid frame is an error, never a panic.
        let full = crate::network::testing::encode_response::<FetchRequest>(1, 12, &sample()).slice(4..);
        for cut in 0..full.len() {
            assert!(decode_fetch_response(full.slice(..cut), 12).is_err(), "prefix {cut}");
        }
    }
}
