//! The produce request, encoded by hand so that record batches are never copied: the frame
//! is a small head plus, per partition, the batch bytes themselves and the few bytes between
//! them (written with one vectored write).
//!
//! Layout, Produce v3 to v12 (v13 names topics by id and is not used):
//! header (v1 up to v8, v2 from v9: + tagged fields), transactional_id (nullable string),
//! acks i16, timeout_ms i32, topics [name, partitions [index i32, records (nullable bytes),
//! tags(v9+)], tags(v9+)], tags(v9+). From v9 strings, bytes and arrays are "compact"
//! (unsigned varint length + 1).

use bytes::{BufMut, Bytes, BytesMut};

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceResponse, TopicName};

use crate::error::{Error, Result};
use crate::protocol::Frame;

/// One partition's batch in a produce request.
pub(crate) struct PartitionData<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub records: Bytes,
}

/// Encodes a produce request frame. `parts` must be grouped by topic (consecutive).
pub(crate) fn encode_produce(
    version: i16,
    client_id: &str,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    parts: &[PartitionData<'_>],
) -> Result<Frame> {
    if !(3..=12).contains(&version) {
        return Err(Error::InvalidArgument(format!("produce v{version} is not supported by this encoder")));
    }
    let flexible = version >= 9;
    let mut head = BytesMut::with_capacity(128 + parts.len() * 32);
    let mut tail: Vec<Bytes> = Vec::with_capacity(parts.len() * 2);
    // Size prefix, patched at the end.
    head.put_i32(0);
    head.put_i16(0); // api key Produce
    head.put_i16(version);
    head.put_i32(0); // correlation id, set by the connection task
    put_string_i16(&mut head, Some(client_id))?;
    if flexible {
        put_uvarint(&mut head, 0);
    }
    put_nullable_string(&mut head, transactional_id, flexible)?;
    head.put_i16(acks);
    head.put_i32(timeout_ms);

    // Everything after the head goes into `cur` until a batch is appended as its own chunk.
    let mut cur = BytesMut::new();
    let topics = group_by_topic(parts);
    put_array_len(&mut head, topics.len(), flexible);
    let mut first = true;
    for t in &topics {
        let out = if first { &mut head } else { &mut cur };
        first = false;
        put_nullable_string(out, Some(t[0].topic), flexible)?;
        put_array_len(out, t.len(), flexible);
        for p in t.iter() {
            let out = if cur.is_empty() && tail.is_empty() { &mut head } else { &mut cur };
            out.put_i32(p.partition);
            let len = p.records.len();
            if flexible {
                put_uvarint(out, len as u64 + 1);
            } else {
                out.put_i32(i32::try_from(len).map_err(|_| Error::InvalidArgument("batch too large".into()))?);
            }
            if !cur.is_empty() {
                tail.push(cur.split().freeze());
            }
            tail.push(p.records.clone());
            if flexible {
                put_uvarint(&mut cur, 0); // partition tags
            }
        }
        if flexible {
            put_uvarint(&mut cur, 0); // topic tags
        }
    }
    if flexible {
        put_uvarint(&mut cur, 0); // request tags
    }
    if !cur.is_empty() {
        tail.push(cur.freeze());
    }
    let total = head.len() + tail.iter().map(Bytes::len).sum::<usize>() - 4;
    let total = i32::try_from(total).map_err(|_| Error::InvalidArgument("produce request too large".into()))?;
    head[..4].copy_from_slice(&total.to_be_bytes());
    Ok(Frame { head, tail })
}

/// Decodes a Produce response frame (v3 to v12) with bounded reads (see `crate::wire`): the
/// same value as kafka-protocol's decoder, but a hostile array count is an error, not an
/// allocation. Tagged fields we do not use (current leader, node endpoints) are skipped.
pub(crate) fn decode_produce_response(mut frame: Bytes, version: i16) -> std::result::Result<ProduceResponse, String> {
    use crate::wire::{array_len, i16_, i32_, i64_, nullable_string, skip_tags, string};
    if !(3..=12).contains(&version) {
        return Err(format!("produce v{version} is not decoded here"));
    }
    let flexible = version >= 9;
    let r = &mut frame;
    i32_(r)?; // correlation id
    if flexible {
        skip_tags(r)?;
    }
    let n = array_len(r, flexible, if flexible { 3 } else { 6 }, "topics")?.unwrap_or(0);
    let mut responses = Vec::with_capacity(n);
    for _ in 0..n {
        let name = string(r, flexible)?;
        // index, error code, base offset, log append time, (log start offset),
        // (record errors, error message), (tags)
        let min_part = 4 + 2 + 8 + 8 + if version >= 5 { 8 } else { 0 }
            + if version >= 8 { if flexible { 2 } else { 6 } } else { 0 }
            + if flexible { 1 } else { 0 };
        let np = array_len(r, flexible, min_part, "partitions")?.unwrap_or(0);
        let mut parts = Vec::with_capacity(np);
        for _ in 0..np {
            let mut p = PartitionProduceResponse::default()
                .with_index(i32_(r)?)
                .with_error_code(i16_(r)?)
                .with_base_offset(i64_(r)?)
                .with_log_append_time_ms(i64_(r)?);
            if version >= 5 {
                p.log_start_offset = i64_(r)?;
            }
            if version >= 8 {
                let ne = array_len(r, flexible, 6, "record errors")?.unwrap_or(0);
                let mut errs = Vec::with_capacity(ne);
                for _ in 0..ne {
                    let e = BatchIndexAndErrorMessage::default()
                        .with_batch_index(i32_(r)?)
                        .with_batch_index_error_message(nullable_string(r, flexible)?);
                    if flexible {
                        skip_tags(r)?;
                    }
                    errs.push(e);
                }
                p.record_errors = errs;
                p.error_message = nullable_string(r, flexible)?;
            }
            if flexible {
                skip_tags(r)?;
            }
            parts.push(p);
        }
        if flexible {
            skip_tags(r)?;
        }
        responses.push(TopicProduceResponse::default().with_name(TopicName(name)).with_partition_responses(parts));
    }
    let throttle = i32_(r)?;
    if flexible {
        skip_tags(r)?;
    }
    Ok(ProduceResponse::default().with_responses(responses).with_throttle_time_ms(throttle))
}

fn group_by_topic<'a, 'b>(parts: &'b [PartitionData<'a>]) -> Vec<&'b [PartitionData<'a>]> {
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=parts.len() {
        if i == parts.len() || parts[i].topic != parts[start].topic {
            if i > start {
                groups.push(&parts[start..i]);
            }
            start = i;
        }
    }
    groups
}

fn put_uvarint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_array_len(out: &mut BytesMut, n: usize, flexible: bool) {
    if flexible {
        put_uvarint(out, n as u64 + 1);
    } else {
        out.put_i32(n as i32);
    }
}

fn put_string_i16(out: &mut BytesMut, s: Option<&str>) -> Result<()> {
    match s {
        None => out.put_i16(-1),
        Some(s) => {
            let n = i16::try_from(s.len()).map_err(|_| Error::InvalidArgument("string longer than 32767 bytes".into()))?;
            out.put_i16(n);
            out.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

fn put_nullable_string(out: &mut BytesMut, s: Option<&str>, flexible: bool) -> Result<()> {
    if !flexible {
        return put_string_i16(out, s);
    }
    match s {
        None => put_uvarint(out, 0),
        Some(s) => {
            put_uvarint(out, s.len() as u64 + 1);
            out.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use kafka_protocol::protocol::StrBytes;

    fn flatten(f: &Frame) -> Vec<u8> {
        let mut v = f.head.to_vec();
        for t in &f.tail {
            v.extend_from_slice(t);
        }
        v
    }

    /// Byte-for-byte the same frame as kafka-protocol's encoder, for every version we use.
    #[test]
    fn matches_the_generic_encoder_for_every_version() {
        let batch = |n: u8| Bytes::from(vec![n; 10 + n as usize]);
        let parts = vec![
            PartitionData { topic: "alpha", partition: 0, records: batch(1) },
            PartitionData { topic: "alpha", partition: 3, records: batch(2) },
            PartitionData { topic: "beta", partition: 1, records: batch(3) },
        ];
        for txn in [None, Some("txn-1")] {
            for version in 3..=12 {
                let ours = flatten(&encode_produce(version, "cid", txn, -1, 30_000, &parts).unwrap());
                let req = ProduceRequest::default()
                    .with_transactional_id(txn.map(|t| TransactionalId(StrBytes::from_string(t.into()))))
                    .with_acks(-1)
                    .with_timeout_ms(30_000)
                    .with_topic_data(vec![
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_static_str("alpha")))
                            .with_partition_data(vec![
                                PartitionProduceData::default().with_index(0).with_records(Some(batch(1))),
                                PartitionProduceData::default().with_index(3).with_records(Some(batch(2))),
                            ]),
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_static_str("beta")))
                            .with_partition_data(vec![PartitionProduceData::default().with_index(1).with_records(Some(batch(3)))]),
                    ]);
                let theirs = crate::protocol::encode_request(&req, version, "cid", "test").unwrap();
                assert_eq!(ours, theirs.to_vec(), "produce v{version}, transactional {txn:?}");
            }
        }
    }

    #[test]
    fn response_decoder_agrees_with_the_generic_one() {
        use kafka_protocol::messages::produce_response::{
            BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
        };
        use kafka_protocol::messages::ProduceResponse;
        for version in 3..=12i16 {
            let mut p0 = PartitionProduceResponse::default().with_index(0).with_base_offset(100).with_log_append_time_ms(-1);
            let mut p1 = PartitionProduceResponse::default().with_index(4).with_error_code(10).with_base_offset(-1);
            if version >= 5 {
                p0.log_start_offset = 7;
            }
            if version >= 8 {
                p1.record_errors = vec![BatchIndexAndErrorMessage::default()
                    .with_batch_index(2)
                    .with_batch_index_error_message(Some(StrBytes::from_static_str("too big")))];
                p1.error_message = Some(StrBytes::from_static_str("Message too large"));
            }
            let resp = ProduceResponse::default().with_throttle_time_ms(5).with_responses(vec![TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("alpha")))
                .with_partition_responses(vec![p0, p1])]);
            let frame = crate::network::testing::encode_response::<ProduceRequest>(9, version, &resp).slice(4..);
            let ours = decode_produce_response(frame.clone(), version).unwrap();
            let theirs = crate::protocol::decode_response::<ProduceRequest>(frame.clone(), version, "t").unwrap();
            assert_eq!(ours, theirs, "produce v{version}");
            for cut in 0..frame.len() {
                assert!(decode_produce_response(frame.slice(..cut), version).is_err(), "v{version} prefix {cut}");
            }
        }
    }

    #[test]
    fn batches_are_not_copied() {
        let records = Bytes::from(vec![7u8; 1000]);
        let parts = [PartitionData { topic: "t", partition: 0, records: records.clone() }];
        let f = encode_produce(12, "c", None, 1, 1, &parts).unwrap();
        assert!(f.tail.iter().any(|b| b.as_ptr() == records.as_ptr()), "the batch is sent from its own buffer");
        assert_eq!(f.len(), flatten(&f).len());
    }
}
