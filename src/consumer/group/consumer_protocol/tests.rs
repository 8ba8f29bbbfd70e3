//! ConsumerProtocol encodings: byte-for-byte against the Java client's (testdata/
//! protocol-vectors.txt, written by `scripts/java-tool.sh protocol-vectors`), round trips
//! at every version, and bounded decoding of malformed input.

use super::*;

pub(crate) fn java_vector(name: &str) -> Option<Vec<u8>> {
    let text = include_str!("../testdata/protocol-vectors.txt");
    let hex = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('\t'))?;
    if hex == "null" {
        return None;
    }
    Some((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect())
}

fn vector(name: &str) -> Vec<u8> {
    java_vector(name).unwrap_or_else(|| panic!("no vector {name}"))
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

/// The inputs of the Java vectors (see KafkaTool.protocolVectors).
fn full_subscription() -> Subscription {
    Subscription {
        topics: vec!["topic-b".into(), "topic-a".into()],
        user_data: Some(Bytes::from_static(&[1, 2, 3])),
        owned_partitions: vec![tp("topic-b", 1), tp("topic-a", 2), tp("topic-a", 0)],
        generation_id: 7,
        rack_id: Some("rack-1".into()),
    }
}

fn full_assignment() -> Assignment {
    Assignment {
        partitions: vec![tp("topic-b", 1), tp("topic-a", 2), tp("topic-a", 0)],
        user_data: Some(Bytes::from_static(&[9, 8])),
    }
}

/// What decoding the Java bytes of `full_subscription` at `version` gives.
fn decoded_full(version: i16) -> Subscription {
    as_decoded(&full_subscription(), version)
}

/// What decoding `s` encoded at `version` gives: sorted, without the fields `version` lacks.
fn as_decoded(s: &Subscription, version: i16) -> Subscription {
    let mut s = s.clone();
    s.topics.sort();
    s.owned_partitions.sort();
    if version < 1 {
        s.owned_partitions.clear();
    }
    if version < 2 {
        s.generation_id = -1;
    }
    if version < 3 {
        s.rack_id = None;
    }
    s
}

#[test]
fn subscription_matches_java_bytes_at_every_version() {
    for v in 0..=3i16 {
        let java = vector(&format!("sub-v{v}"));
        assert_eq!(&encode_subscription(v, &full_subscription())[..], &java[..], "v{v}");
        assert_eq!(decode_subscription(&java).unwrap(), decoded_full(v), "v{v}");
    }
    // Java 3.9 / 4.x send v3 by default, as we do.
    assert_eq!(&encode_subscription(SUBSCRIPTION_LATEST_VERSION, &full_subscription())[..], &vector("sub-default")[..]);
    let nulls = Subscription { topics: vec!["t".into()], generation_id: -1, ..Default::default() };
    assert_eq!(&encode_subscription(3, &nulls)[..], &vector("sub-null-v3")[..]);
    assert_eq!(decode_subscription(&vector("sub-null-v3")).unwrap(), nulls);
}

#[test]
fn assignment_matches_java_bytes_at_every_version() {
    for v in 0..=3i16 {
        let java = vector(&format!("assign-v{v}"));
        assert_eq!(&encode_assignment(v, &full_assignment())[..], &java[..], "v{v}");
        assert_eq!(decode_assignment(&java).unwrap(), full_assignment(), "v{v}");
    }
    assert_eq!(&encode_assignment(ASSIGNMENT_LATEST_VERSION, &full_assignment())[..], &vector("assign-default")[..]);
    assert_eq!(&encode_assignment(3, &Assignment::default())[..], &vector("assign-null-v3")[..]);
    assert_eq!(decode_assignment(&vector("assign-null-v3")).unwrap(), Assignment::default());
}

#[test]
fn versions_out_of_range_are_clamped_on_encode() {
    assert_eq!(encode_subscription(9, &full_subscription()), encode_subscription(3, &full_subscription()));
    assert_eq!(encode_subscription(-4, &full_subscription()), encode_subscription(0, &full_subscription()));
    assert_eq!(encode_assignment(7, &full_assignment()), encode_assignment(3, &full_assignment()));
}

#[test]
fn newer_versions_parse_with_the_v3_schema_ignoring_trailing_fields() {
    let mut b = vector("sub-v3");
    b[..2].copy_from_slice(&5i16.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 42, 0xde, 0xad]);
    assert_eq!(decode_subscription(&b).unwrap(), decoded_full(3));
    let mut a = vector("assign-v3");
    a[..2].copy_from_slice(&4i16.to_be_bytes());
    a.extend_from_slice(&[1, 2, 3]);
    assert_eq!(decode_assignment(&a).unwrap(), full_assignment());
}

#[test]
fn empty_assignment_bytes_are_an_empty_assignment() {
    assert_eq!(decode_assignment(&[]).unwrap(), Assignment::default());
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    for name in ["sub-v0", "sub-v1", "sub-v2", "sub-v3", "sub-null-v3"] {
        let b = vector(name);
        for n in 0..b.len() {
            let e = decode_subscription(&b[..n]).unwrap_err();
            assert!(e.to_string().contains("malformed ConsumerProtocol subscription"), "{name}[..{n}]: {e}");
        }
    }
    for name in ["assign-v0", "assign-v3", "assign-null-v3"] {
        let b = vector(name);
        for n in 1..b.len() {
            let e = decode_assignment(&b[..n]).unwrap_err();
            assert!(e.to_string().contains("malformed ConsumerProtocol assignment"), "{name}[..{n}]: {e}");
        }
    }
}

#[test]
fn absurd_counts_and_negative_versions_are_refused() {
    // 2^31-1 topics in 4 bytes: refused before any allocation.
    let e = decode_subscription(&[0, 3, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']).unwrap_err();
    assert!(e.to_string().contains("topics"), "{e}");
    let e = decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff]).unwrap_err();
    assert!(e.to_string().contains("partitions of t"), "{e}");
    let e = decode_subscription(&[0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert!(e.to_string().contains("unsupported version -1"), "{e}");
    // A negative (non -1) user data length.
    assert!(decode_subscription(&[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe]).is_err());
    // Invalid UTF-8 in a topic name.
    assert!(decode_subscription(&[0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn round_trips_at_every_version() {
    let subs = [
        Subscription { generation_id: -1, ..Default::default() },
        full_subscription(),
        Subscription {
            topics: vec!["only".into()],
            user_data: Some(Bytes::new()),
            owned_partitions: vec![tp("only", 3)],
            generation_id: 0,
            rack_id: Some(String::new()),
        },
    ];
    for s in &subs {
        for v in 0..=3i16 {
            assert_eq!(decode_subscription(&encode_subscription(v, s)).unwrap(), as_decoded(s, v), "v{v} {s:?}");
        }
    }
    for a in [Assignment::default(), full_assignment(), Assignment { partitions: vec![tp("x", 0)], user_data: Some(Bytes::new()) }] {
        for v in 0..=3i16 {
            assert_eq!(decode_assignment(&encode_assignment(v, &a)).unwrap(), a, "v{v}");
        }
    }
}
