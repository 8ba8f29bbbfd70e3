//! The Java client's embedded ConsumerProtocol encoding of [`Subscription`] and
//! [`Assignment`]: the bytes carried as JoinGroup protocol metadata and SyncGroup
//! assignments of a group with protocol type `consumer`.
//!
//! Both are non-flexible messages behind an int16 version prefix (Java's
//! `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` schemas):
//!
//! - Subscription v0: topics `[string]`, user data (nullable bytes); v1: + owned partitions
//!   `[topic, [int32]]`; v2: + generation id (int32, -1 when unknown); v3: + rack id
//!   (nullable string).
//! - Assignment v0–v3 (all the same layout): assigned partitions `[topic, [int32]]`, user
//!   data (nullable bytes).
//!
//! As in Java, a version newer than the newest known one is parsed with the newest schema
//! and any trailing bytes (fields added later) are ignored; encoding at a newer version
//! writes the newest one. Decoding is bounded: every read checks the bytes left, counts
//! larger than the bytes left are refused, and nothing panics on malformed input.

use bytes::{BufMut, Bytes, BytesMut};

use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::wire;

use super::assignor::{Assignment, Subscription};

/// The newest Subscription version we know (and the one Java 3.9 / 4.x sends).
pub(crate) const SUBSCRIPTION_LATEST_VERSION: i16 = 3;
/// The newest Assignment version we know (and the one Java 3.9 / 4.x sends).
pub(crate) const ASSIGNMENT_LATEST_VERSION: i16 = 3;

/// The protocol type of consumer groups in JoinGroup.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";

/// Encodes `s` as a ConsumerProtocol Subscription at `version` (clamped to 0..=3, as Java
/// clamps newer versions to its newest). Fields the version lacks are left out. Topics
/// are written sorted and owned partitions grouped by topic, both in (topic, partition)
/// order, as Java writes them.
pub(crate) fn encode_subscription(version: i16, s: &Subscription) -> Bytes {
    let version = version.clamp(0, SUBSCRIPTION_LATEST_VERSION);
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(version);
    let mut topics: Vec<&String> = s.topics.iter().collect();
    topics.sort();
    b.put_i32(topics.len() as i32);
    for t in topics {
        put_string(&mut b, t);
    }
    put_nullable_bytes(&mut b, s.user_data.as_deref());
    if version >= 1 {
        put_topic_partitions(&mut b, &s.owned_partitions, true);
    }
    if version >= 2 {
        b.put_i32(s.generation_id);
    }
    if version >= 3 {
        match &s.rack_id {
            Some(r) => put_string(&mut b, r),
            None => b.put_i16(-1),
        }
    }
    b.freeze()
}

/// Decodes a ConsumerProtocol Subscription of any version >= 0. Fields the version lacks
/// take their defaults (no owned partitions, generation -1, no rack).
pub(crate) fn decode_subscription(data: &[u8]) -> Result<Subscription> {
    decode_subscription_inner(data).map_err(|e| malformed("subscription", e))
}

fn decode_subscription_inner(data: &[u8]) -> wire::DecodeResult<Subscription> {
    let mut r = Bytes::copy_from_slice(data);
    let version = wire::i16_(&mut r).map_err(|e| format!("version: {e}"))?;
    if version < 0 {
        return Err(format!("unsupported version {version}"));
    }
    let n = wire::array_len(&mut r, false, 2, "topics")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(wire::string(&mut r, false).map_err(|e| format!("topic name: {e}"))?.to_string());
    }
    let user_data = wire::bytes(&mut r, false).map_err(|e| format!("user data: {e}"))?;
    let mut s = Subscription { topics, user_data, owned_partitions: Vec::new(), generation_id: -1, rack_id: None };
    if version >= 1 {
        s.owned_partitions = topic_partitions(&mut r).map_err(|e| format!("owned partitions: {e}"))?;
    }
    if version >= 2 {
        s.generation_id = wire::i32_(&mut r).map_err(|e| format!("generation id: {e}"))?;
    }
    if version >= 3 {
        s.rack_id = wire::nullable_string(&mut r, false)
            .map_err(|e| format!("rack id: {e}"))?
            .map(|r| r.to_string());
    }
    // Versions newer than 3 may carry more fields after these: ignored, as Java does.
    Ok(s)
}

/// Encodes `a` as a ConsumerProtocol Assignment at `version` (clamped to 0..=3; every
/// version has the same layout). Partitions are grouped by topic in the order each topic
/// first appears, partitions in their given order, as Java writes them.
pub(crate) fn encode_assignment(version: i16, a: &Assignment) -> Bytes {
    let version = version.clamp(0, ASSIGNMENT_LATEST_VERSION);
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(version);
    put_topic_partitions(&mut b, &a.partitions, false);
    put_nullable_bytes(&mut b, a.user_data.as_deref());
    b.freeze()
}

/// Decodes a ConsumerProtocol Assignment of any version >= 0. An empty byte slice (what a
/// member gets when the leader assigned it nothing at all) is an empty assignment.
pub(crate) fn decode_assignment(data: &[u8]) -> Result<Assignment> {
    if data.is_empty() {
        return Ok(Assignment::default());
    }
    decode_assignment_inner(data).map_err(|e| malformed("assignment", e))
}

fn decode_assignment_inner(data: &[u8]) -> wire::DecodeResult<Assignment> {
    let mut r = Bytes::copy_from_slice(data);
    let version = wire::i16_(&mut r).map_err(|e| format!("version: {e}"))?;
    if version < 0 {
        return Err(format!("unsupported version {version}"));
    }
    let partitions = topic_partitions(&mut r).map_err(|e| format!("assigned partitions: {e}"))?;
    let user_data = wire::bytes(&mut r, false).map_err(|e| format!("user data: {e}"))?;
    Ok(Assignment { partitions, user_data })
}

fn malformed(what: &str, detail: String) -> Error {
    Error::InvalidArgument(format!("malformed ConsumerProtocol {what}: {detail}"))
}

pub(crate) fn put_string(b: &mut BytesMut, s: &str) {
    // Topic names and racks are far below 32 KiB; a longer one is cut, never a panic.
    let n = s.len().min(i16::MAX as usize);
    b.put_i16(n as i16);
    b.put_slice(&s.as_bytes()[..n]);
}

fn put_nullable_bytes(b: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        Some(v) => {
            b.put_i32(v.len() as i32);
            b.put_slice(v);
        }
        None => b.put_i32(-1),
    }
}

/// Writes `[topic, [partition]]`, grouping `tps` by topic: in (topic, partition) order
/// when `sorted`, else in the order each topic first appears.
pub(crate) fn put_topic_partitions(b: &mut BytesMut, tps: &[TopicPartition], sorted: bool) {
    let mut groups: Vec<(&str, Vec<i32>)> = Vec::new();
    if sorted {
        let mut v: Vec<&TopicPartition> = tps.iter().collect();
        v.sort();
        for tp in v {
            match groups.last_mut() {
                Some((t, ps)) if *t == tp.topic => ps.push(tp.partition),
                _ => groups.push((&tp.topic, vec![tp.partition])),
            }
        }
    } else {
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for tp in tps {
            let i = *index.entry(&tp.topic).or_insert_with(|| {
                groups.push((&tp.topic, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(tp.partition);
        }
    }
    b.put_i32(groups.len() as i32);
    for (t, ps) in groups {
        put_string(b, t);
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(p);
        }
    }
}

/// Reads `[topic, [partition]]` into a flat list, in the order written.
pub(crate) fn topic_partitions(r: &mut Bytes) -> wire::DecodeResult<Vec<TopicPartition>> {
    // topic name, partition count
    let n = wire::array_len(r, false, 6, "topics")?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..n {
        let topic = wire::string(r, false).map_err(|e| format!("topic name: {e}"))?.to_string();
        let ps = wire::i32_array(r, false).map_err(|e| format!("partitions of {topic}: {e}"))?;
        out.extend(ps.into_iter().map(|p| TopicPartition::new(topic.clone(), p)));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
