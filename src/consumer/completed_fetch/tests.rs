//! Fetch-answer handling on constructed batches: positions, skipping, control batches,
//! aborted transactions, truncated tails and corrupt batches.

use bytes::Bytes;

use super::CompletedFetch;
use crate::consumer::config::IsolationLevel;
use crate::consumer::{ConsumerRecord, TopicPartition};
use crate::error::Error;
use crate::record::{attr, crc32c, layout, BatchWriter, Compression};

const TS: i64 = 1_700_000_000_000;

/// A batch at `base` holding `values` (keys `k<offset>`), optionally from a producer.
fn batch_with(codec: Compression, base: i64, values: &[&str], producer: Option<(i64, bool)>) -> Vec<u8> {
    let mut w = BatchWriter::new(codec, TS);
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{}", base + i as i64);
        w.append(TS + i as i64, Some(key.as_bytes()), Some(v.as_bytes()), &[]);
    }
    let mut b = w.finish().unwrap();
    if let Some((pid, txn)) = producer {
        b.set_producer_state(pid, 0, 0, txn);
    }
    let mut v = b.bytes().to_vec();
    // base offset and leader epoch are outside the CRC.
    v[layout::BASE_OFFSET..layout::BASE_OFFSET + 8].copy_from_slice(&base.to_be_bytes());
    v[layout::PARTITION_LEADER_EPOCH..layout::PARTITION_LEADER_EPOCH + 4].copy_from_slice(&3i32.to_be_bytes());
    v
}

fn batch(base: i64, values: &[&str], producer: Option<(i64, bool)>) -> Vec<u8> {
    batch_with(Compression::None, base, values, producer)
}

/// A transaction marker (control batch) of producer `pid` at `offset`.
fn marker(offset: i64, pid: i64, commit: bool) -> Vec<u8> {
    let mut w = BatchWriter::new(Compression::None, TS);
    let key = [0u8, 0, 0, commit as u8];
    let value = [0u8, 0, 0, 0, 0, 7]; // version 0, coordinator epoch 7
    w.append(TS, Some(&key), Some(&value), &[]);
    let mut b = w.finish().unwrap();
    b.set_producer_state(pid, 0, -1, true);
    let mut v = b.bytes().to_vec();
    v[layout::BASE_OFFSET..layout::BASE_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
    let a = i16::from_be_bytes([v[layout::ATTRIBUTES], v[layout::ATTRIBUTES + 1]]) | attr::CONTROL;
    v[layout::ATTRIBUTES..layout::ATTRIBUTES + 2].copy_from_slice(&a.to_be_bytes());
    let crc = crc32c(&v[layout::ATTRIBUTES..]);
    v[layout::CRC..layout::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    v
}

fn fetch(parts: &[Vec<u8>], offset: i64, isolation: IsolationLevel, aborted: Vec<(i64, i64)>) -> CompletedFetch {
    let data: Vec<u8> = parts.concat();
    CompletedFetch::new(TopicPartition::new("t", 2), 1, offset, None, Bytes::from(data), isolation, aborted, 1 << 20, true)
}

fn take_all(f: &mut CompletedFetch) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    f.take(usize::MAX, &mut out).unwrap();
    assert!(f.is_exhausted());
    out
}

fn offsets(rs: &[ConsumerRecord]) -> Vec<i64> {
    rs.iter().map(|r| r.offset).collect()
}

#[test]
fn records_before_the_fetch_position_are_skipped_and_the_position_ends_after_the_last_batch() {
    let mut f = fetch(&[batch(0, &["a", "b", "c"], None), batch(3, &["d", "e"], None)], 1, IsolationLevel::ReadUncommitted, vec![]);
    let rs = take_all(&mut f);
    assert_eq!(offsets(&rs), vec![1, 2, 3, 4]);
    assert_eq!(f.next_offset, 5);
    let r = &rs[0];
    assert_eq!((&*r.topic, r.partition), ("t", 2));
    assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"b"[..]));
    assert_eq!(r.timestamp, TS + 1);
    assert_eq!(r.leader_epoch, Some(3));
    assert_eq!(f.last_epoch, Some(3));
    // A batch entirely before the position is not returned at all.
    let mut f = fetch(&[batch(0, &["a", "b"], None), batch(2, &["c"], None)], 2, IsolationLevel::ReadUncommitted, vec![]);
    assert_eq!(offsets(&take_all(&mut f)), vec![2]);
}

#[test]
fn max_records_per_take_advances_the_position_record_by_record() {
    let mut f = fetch(&[batch(10, &["a", "b", "c"], None), batch(13, &["d"], None)], 10, IsolationLevel::ReadUncommitted, vec![]);
    let mut out = Vec::new();
    f.take(2, &mut out).unwrap();
    assert_eq!(offsets(&out), vec![10, 11]);
    assert_eq!(f.next_offset, 12);
    assert!(!f.is_exhausted());
    out.clear();
    f.take(2, &mut out).unwrap();
    assert_eq!(offsets(&out), vec![12, 13]);
    out.clear();
    f.take(2, &mut out).unwrap();
    assert!(out.is_empty() && f.is_exhausted());
    assert_eq!(f.next_offset, 14);
}

#[test]
fn control_batches_are_never_returned_but_the_position_moves_past_them() {
    for iso in [IsolationLevel::ReadUncommitted, IsolationLevel::ReadCommitted] {
        let mut f = fetch(&[batch(0, &["a", "b"], Some((9, true))), marker(2, 9, true)], 0, iso, vec![]);
        assert_eq!(offsets(&take_all(&mut f)), vec![0, 1], "{iso:?}");
        assert_eq!(f.next_offset, 3);
        // A fetch holding only a marker returns nothing and still moves on.
        let mut f = fetch(&[marker(5, 9, false)], 5, iso, vec![]);
        assert!(take_all(&mut f).is_empty());
        assert_eq!(f.next_offset, 6);
    }
}

/// pid 1 aborts (0-2, marker 3), pid 2 commits interleaved (4-5, marker 8), pid 1 writes a
/// new committed transaction after its abort (6-7, marker 9), a plain batch at 10.
fn mixed() -> Vec<Vec<u8>> {
    vec![
        batch(0, &["a0", "a1", "a2"], Some((1, true))),
        marker(3, 1, false),
        batch(4, &["c4", "c5"], Some((2, true))),
        batch(6, &["n6", "n7"], Some((1, true))),
        marker(8, 2, true),
        marker(9, 1, true),
        batch(10, &["p10"], Some((5, false))),
    ]
}

#[test]
fn read_committed_filters_aborted_transactions_per_producer() {
    let mut f = fetch(&mixed(), 0, IsolationLevel::ReadCommitted, vec![(1, 0)]);
    assert_eq!(offsets(&take_all(&mut f)), vec![4, 5, 6, 7, 10]);
    assert_eq!(f.next_offset, 11);
}

#[test]
fn read_uncommitted_returns_aborted_records_too() {
    let mut f = fetch(&mixed(), 0, IsolationLevel::ReadUncommitted, vec![(1, 0)]);
    assert_eq!(offsets(&take_all(&mut f)), vec![0, 1, 2, 4, 5, 6, 7, 10]);
    assert_eq!(f.next_offset, 11);
}

#[test]
fn the_aborted_list_is_sorted_before_use() {
    // Producer 2's transaction at 4 was aborted too, and the broker listed it first.
    let mut f = fetch(&mixed(), 0, IsolationLevel::ReadCommitted, vec![(2, 4), (1, 0)]);
    // pid 2's abort entry is consumed when its batch at 4 is reached; its marker at 8 is a
    // COMMIT here (constructed), so the set keeps it: 4-5 skipped.
    assert_eq!(offsets(&take_all(&mut f)), vec![6, 7, 10]);
}

#[test]
fn a_fetch_holding_only_aborted_records_returns_nothing_and_moves_past_them() {
    let parts = vec![batch(0, &["x", "y"], Some((4, true))), batch(2, &["z"], Some((4, true))), marker(3, 4, false)];
    let mut f = fetch(&parts, 0, IsolationLevel::ReadCommitted, vec![(4, 0)]);
    assert!(take_all(&mut f).is_empty());
    assert_eq!(f.next_offset, 4);
}

#[test]
fn an_aborted_transaction_starting_later_does_not_hide_earlier_batches() {
    // pid 1 commits at 0-1 (marker 2) then aborts from 3 (marker 5).
    let parts = vec![
        batch(0, &["a", "b"], Some((1, true))),
        marker(2, 1, true),
        batch(3, &["c", "d"], Some((1, true))),
        marker(5, 1, false),
    ];
    let mut f = fetch(&parts, 0, IsolationLevel::ReadCommitted, vec![(1, 3)]);
    assert_eq!(offsets(&take_all(&mut f)), vec![0, 1]);
    assert_eq!(f.next_offset, 6);
}

#[test]
fn a_truncated_trailing_batch_is_ignored_without_losing_the_batches_before_it() {
    let third = batch(5, &["f", "g"], None);
    let mut parts = vec![batch(0, &["a", "b", "c"], None), batch(3, &["d", "e"], None)];
    parts.push(third[..third.len() - 7].to_vec());
    let mut f = fetch(&parts, 0, IsolationLevel::ReadUncommitted, vec![]);
    assert_eq!(offsets(&take_all(&mut f)), vec![0, 1, 2, 3, 4]);
    assert_eq!(f.next_offset, 5, "the next fetch starts at the cut batch");
    // Fewer bytes than a batch header: same.
    let mut f = fetch(&[batch(0, &["a"], None), vec![0, 0, 0]], 0, IsolationLevel::ReadUncommitted, vec![]);
    assert_eq!(offsets(&take_all(&mut f)), vec![0]);
}

#[test]
fn a_fetch_with_only_a_partial_batch_is_an_error_not_silence() {
    let b = batch(7, &["a", "b"], None);
    let mut f = fetch(&[b[..b.len() / 2].to_vec()], 7, IsolationLevel::ReadUncommitted, vec![]);
    let mut out = Vec::new();
    let e = f.take(10, &mut out).unwrap_err();
    assert!(matches!(&e, Error::CorruptRecord { topic, partition: 2, offset: 7, .. } if topic == "t"), "{e}");
}

#[test]
fn a_bad_crc_names_topic_partition_and_offset_after_the_good_records() {
    let mut bad = batch(3, &["d", "e"], None);
    let n = bad.len();
    bad[n - 2] ^= 0x55;
    let mut f = fetch(&[batch(0, &["a", "b", "c"], None), bad], 0, IsolationLevel::ReadUncommitted, vec![]);
    let mut out = Vec::new();
    f.take(100, &mut out).unwrap();
    assert_eq!(offsets(&out), vec![0, 1, 2], "records before the bad batch are returned first");
    assert_eq!(f.next_offset, 3);
    let e = f.take(100, &mut out).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::CorruptRecord { partition: 2, offset: 3, .. }), "{msg}");
    assert!(msg.contains("t-2") && msg.contains("offset 3") && msg.contains("CRC"), "{msg}");
    assert_eq!(f.next_offset, 3, "the position stays at the bad batch");
}

#[test]
fn with_check_crcs_off_a_flipped_crc_field_is_not_an_error() {
    // Damage only the stored CRC: the records are intact, so without verification they
    // decode; with verification (the default) the batch is refused.
    let mut b = batch(0, &["a", "b"], None);
    b[layout::CRC] ^= 0xff;
    let unchecked = || {
        CompletedFetch::new(
            TopicPartition::new("t", 0), 1, 0, None, Bytes::from(b.clone()), IsolationLevel::ReadUncommitted, vec![], 1 << 20, false,
        )
    };
    let mut f = unchecked();
    assert_eq!(offsets(&take_all(&mut f)), vec![0, 1]);
    let mut checked = CompletedFetch::new(
        TopicPartition::new("t", 0), 1, 0, None, Bytes::from(b.clone()), IsolationLevel::ReadUncommitted, vec![], 1 << 20, true,
    );
    assert!(checked.take(10, &mut Vec::new()).unwrap_err().to_string().contains("CRC"));
}

#[test]
fn a_decompression_bomb_is_an_error_not_an_allocation() {
    let big = "z".repeat(256 * 1024);
    let b = batch_with(Compression::Gzip, 0, &[big.as_str()], None);
    assert!(b.len() < 4096);
    let mut f = CompletedFetch::new(
        TopicPartition::new("t", 0), 1, 0, None, Bytes::from(b), IsolationLevel::ReadUncommitted, vec![], 64 * 1024, true,
    );
    let e = f.take(10, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("exceeds limit"), "{e}");
}

#[test]
fn compressed_batches_decode_with_every_codec() {
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let mut f = fetch(&[batch_with(codec, 0, &["a", "b", "c"], None), batch_with(codec, 3, &["d"], None)], 1, IsolationLevel::ReadUncommitted, vec![]);
        let rs = take_all(&mut f);
        assert_eq!(offsets(&rs), vec![1, 2, 3], "{codec:?}");
        assert_eq!(rs[2].value.as_deref(), Some(&b"d"[..]));
    }
}

#[test]
fn garbage_never_panics() {
    let good = batch(0, &["a", "b"], None);
    for cut in 0..good.len() {
        for flip in [0usize, 8, 12, 16, 57, 61, 62] {
            let mut v = good[..cut].to_vec();
            if flip < v.len() {
                v[flip] ^= 0xff;
            }
            let mut f = fetch(&[v], 0, IsolationLevel::ReadCommitted, vec![(0, 0)]);
            let mut out = Vec::new();
            let _ = f.take(10, &mut out);
            let _ = f.take(10, &mut out);
        }
    }
}
