//! Tests of the record-batch codec: round trips for every codec, the exact wire bytes, and a
//! decoder that refuses (never panics on, never over-allocates for) hostile input.

use bytes::Bytes;

use super::compression::{self, Compression, DecompressError, LZ4_FRAME_HEADER, XERIAL_HEADER};
use super::decode::{ControlRecordType, DecodeError, DecodedBatch, DecodedRecord, batches};
use super::encode::BatchWriter;
use super::{Header, layout};

const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

const MB: usize = 1024 * 1024;

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A record as the producer would hand it over.
#[derive(Debug, Clone)]
struct Rec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn hdr(key: &str, value: Option<&[u8]>) -> Header {
    Header { key: key.to_owned(), value: value.map(Bytes::copy_from_slice) }
}

/// Records covering every shape: null/empty/short/long keys and values (compressible and
/// not), no headers, repeated header keys, null header values, timestamps before and after
/// the base.
fn sample_records(n: usize, seed: u64) -> Vec<Rec> {
    let mut rng = Rng(seed | 1);
    let base = 1_700_000_000_000i64;
    (0..n)
        .map(|i| {
            let key = match i % 4 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some(format!("key-{i}").into_bytes()),
                _ => {
                    let n = rng.below(40) as usize;
                    Some(rng.bytes(n))
                }
            };
            let value = match i % 7 {
                0 => None,
                1 => Some(Vec::new()),
                2 => {
                    // incompressible
                    let n = 300 + rng.below(3000) as usize;
                    Some(rng.bytes(n))
                }
                3 => Some(vec![b'a'; 200 + i % 500]), // compressible
                _ => {
                    Some(format!("value number {i} {}", "lorem ipsum ".repeat(i % 20)).into_bytes())
                }
            };
            let headers = match i % 5 {
                0 => vec![],
                1 => vec![hdr("trace", Some(b"abc"))],
                2 => vec![hdr("dup", Some(b"1")), hdr("dup", None), hdr("dup", Some(b""))],
                3 => vec![hdr("", None), hdr("ключ", Some(&rng.bytes(17)))],
                _ => vec![hdr("a", Some(b"x")); 4],
            };
            // Deltas of every varlong size, negative ones included.
            let timestamp = match i % 6 {
                0 => base,
                1 => base + i as i64,
                2 => base - 5 - i as i64,
                3 => base + 1_000_000_000_000,
                4 => base - 1,
                _ => base + (rng.below(1 << 40) as i64),
            };
            Rec { timestamp, key, value, headers }
        })
        .collect()
}

fn write_batch(codec: Compression, recs: &[Rec]) -> (Bytes, usize) {
    let mut w = BatchWriter::new(codec, recs[0].timestamp);
    let mut expected_size = layout::HEADER_SIZE;
    for r in recs {
        let predicted =
            w.record_size(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
        let before = w.size();
        w.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
        assert_eq!(w.size() - before, predicted, "record_size must be exact");
        expected_size += predicted;
    }
    assert_eq!(w.size(), expected_size);
    assert_eq!(w.record_count(), recs.len() as i32);
    let uncompressed = w.size();
    let batch = w.finish().unwrap();
    assert_eq!(batch.record_count(), recs.len() as i32);
    assert_eq!(batch.uncompressed_size(), uncompressed);
    assert_eq!(batch.len(), batch.bytes().len());
    (batch.bytes(), uncompressed)
}

fn decode_all(data: Bytes, limit: usize) -> Vec<DecodedBatch> {
    batches(data, limit).collect::<Result<Vec<_>, _>>().unwrap()
}

fn assert_records_match(base_offset: i64, decoded: &[DecodedRecord], recs: &[Rec]) {
    assert_eq!(decoded.len(), recs.len());
    for (i, (d, r)) in decoded.iter().zip(recs).enumerate() {
        assert_eq!(d.offset, base_offset + i as i64, "record {i} offset");
        assert_eq!(d.timestamp, r.timestamp, "record {i} timestamp");
        assert_eq!(d.key.as_deref(), r.key.as_deref(), "record {i} key");
        assert_eq!(d.value.as_deref(), r.value.as_deref(), "record {i} value");
        assert_eq!(d.headers, r.headers, "record {i} headers");
    }
}

/// Builds a batch by hand (independently of the encoder): header fields, records section as
/// given, CRC.
fn hand_batch(
    base_offset: i64,
    attributes: i16,
    count: i32,
    base_ts: i64,
    max_ts: i64,
    records: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&base_ts.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    assert_eq!(b.len(), 61);
    b.extend_from_slice(records);
    fix_crc(&mut b);
    b
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32c_bitwise(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn set_base_offset(b: &mut [u8], offset: i64) {
    b[0..8].copy_from_slice(&offset.to_be_bytes()); // not covered by the CRC
}

/// CRC-32C computed bit by bit from the polynomial (reflected 0x82F63B78), independent of the
/// crc32c crate the codec uses.
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// A zigzag varint, written independently of the codec's writer.
fn zz(v: i64) -> Vec<u8> {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        if u < 0x80 {
            out.push(u as u8);
            return out;
        }
        out.push(u as u8 | 0x80);
        u >>= 7;
    }
}

/// One record's bytes (length prefix included), from its body.
fn record(body: &[u8]) -> Vec<u8> {
    let mut r = zz(body.len() as i64);
    r.extend_from_slice(body);
    r
}

/// A well-formed record body: attributes, deltas, key, value, no headers.
fn body(ts_delta: i64, offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut b = vec![0u8];
    b.extend(zz(ts_delta));
    b.extend(zz(offset_delta));
    for f in [key, value] {
        match f {
            None => b.extend(zz(-1)),
            Some(f) => {
                b.extend(zz(f.len() as i64));
                b.extend_from_slice(f);
            }
        }
    }
    b.extend(zz(0));
    b
}

fn decode_err(batch: Vec<u8>, limit: usize) -> DecodeError {
    let mut it = batches(Bytes::from(batch), limit);
    let err = match it.next() {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(it.next().is_none(), "iteration ends after an error");
    err
}

// ---------------------------------------------------------------------------------------------

#[test]
fn every_codec_round_trips_records_of_every_shape() {
    let recs = sample_records(600, 7);
    for codec in ALL_CODECS {
        let (data, uncompressed) = write_batch(codec, &recs);
        let got = decode_all(data.clone(), 64 * MB);
        assert_eq!(got.len(), 1, "{codec}");
        let b = &got[0];
        let h = &b.header;
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.batch_length as usize, data.len() - 12);
        assert_eq!(h.partition_leader_epoch, -1);
        assert_eq!(h.magic, 2);
        assert_eq!(h.compression().unwrap(), codec);
        assert!(!h.log_append_time() && !h.is_transactional() && !h.is_control());
        assert_eq!(h.record_count, recs.len() as i32);
        assert_eq!(h.last_offset_delta, recs.len() as i32 - 1);
        assert_eq!(h.last_offset(), recs.len() as i64 - 1);
        assert_eq!(h.base_timestamp, recs[0].timestamp);
        assert_eq!(h.max_timestamp, recs.iter().map(|r| r.timestamp).max().unwrap());
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (-1, -1, -1));
        assert_eq!(h.crc, crc32c_bitwise(&data[21..]), "{codec}: CRC valid");
        assert_records_match(0, &b.records, &recs);
        if codec != Compression::None {
            assert!(
                data.len() < uncompressed,
                "{codec} compresses: {} vs {uncompressed}",
                data.len()
            );
        } else {
            assert_eq!(data.len(), uncompressed);
        }
    }
}

#[test]
fn offsets_are_base_offset_plus_delta() {
    for codec in ALL_CODECS {
        let recs = sample_records(20, 3);
        let (data, _) = write_batch(codec, &recs);
        let mut v = data.to_vec();
        set_base_offset(&mut v, 1_000_000);
        let got = decode_all(Bytes::from(v), MB);
        assert_records_match(1_000_000, &got[0].records, &recs);
        assert_eq!(got[0].header.last_offset(), 1_000_019);
    }
}

#[test]
fn large_batches_span_many_compression_blocks() {
    // > 64 KiB (lz4 block) and > 32 KiB (snappy block), with incompressible stretches so
    // that lz4 stores some blocks raw.
    let mut rng = Rng(99);
    let recs: Vec<Rec> = (0..400)
        .map(|i| Rec {
            timestamp: 5_000 + i,
            key: Some(i.to_string().into_bytes()),
            value: Some(if i % 3 == 0 { rng.bytes(4000) } else { vec![(i % 251) as u8; 4000] }),
            headers: vec![],
        })
        .collect();
    for codec in ALL_CODECS {
        let (data, uncompressed) = write_batch(codec, &recs);
        assert!(uncompressed > 1_500_000);
        let got = decode_all(data, 4 * MB);
        assert_records_match(0, &got[0].records, &recs);
    }
}

/// The wire bytes of an uncompressed batch with one record, computed by hand from the spec.
#[test]
fn uncompressed_batch_matches_hand_computed_bytes() {
    let mut w = BatchWriter::new(Compression::None, 1000);
    w.append(1000, Some(b"k"), Some(b"v"), &[hdr("h", Some(b"x"))]);
    let got = w.finish().unwrap().bytes();

    // The record: body = attributes 0x00, timestampDelta varlong 0 = 0x00, offsetDelta varint
    // 0 = 0x00, keyLength 1 = zigzag 2 = 0x02, 'k', valueLength 0x02, 'v', headerCount 1 =
    // 0x02, headerKeyLength 0x02, 'h', headerValueLength 0x02, 'x': 12 bytes, so the length
    // prefix is zigzag(12) = 24 = 0x18. 13 bytes in all; the batch is 61 + 13 = 74 bytes and
    // batchLength = 74 - 12 = 62 = 0x3E.
    let record: [u8; 13] =
        [0x18, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x02, 0x02, b'h', 0x02, b'x'];
    #[rustfmt::skip]
    let mut expected: Vec<u8> = vec![
        0, 0, 0, 0, 0, 0, 0, 0,             // baseOffset 0
        0, 0, 0, 0x3E,                      // batchLength 62
        0xFF, 0xFF, 0xFF, 0xFF,             // partitionLeaderEpoch -1
        0x02,                               // magic 2
        0, 0, 0, 0,                         // crc (filled in below)
        0x00, 0x00,                         // attributes: no codec, CreateTime
        0, 0, 0, 0,                         // lastOffsetDelta 0
        0, 0, 0, 0, 0, 0, 0x03, 0xE8,       // baseTimestamp 1000
        0, 0, 0, 0, 0, 0, 0x03, 0xE8,       // maxTimestamp 1000
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // producerId -1
        0xFF, 0xFF,                         // producerEpoch -1
        0xFF, 0xFF, 0xFF, 0xFF,             // baseSequence -1
        0, 0, 0, 1,                         // recordCount 1
    ];
    expected.extend_from_slice(&record);
    // CRC-32C (Castagnoli) of bytes 21.. (attributes to the end), big-endian.
    let crc = crc32c_bitwise(&expected[21..]);
    expected[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(&got[..], &expected[..]);
}

#[test]
fn the_independent_crc32c_agrees_with_the_standard_check_value() {
    // The CRC-32C check value of "123456789" (RFC 3720 / the CRC catalogue).
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
    assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn varint_sizes_match_written_bytes_at_every_boundary() {
    use super::varint::*;
    for v in [
        0i64,
        1,
        -1,
        63,
        -64,
        64,
        -65,
        8191,
        8192,
        -8193,
        1 << 20,
        1 << 27,
        1 << 28,
        i32::MAX as i64,
        i32::MIN as i64,
        1 << 40,
        i64::MAX,
        i64::MIN,
    ] {
        let mut buf = Vec::new();
        put_varlong(&mut buf, v);
        assert_eq!(buf, zz(v), "varlong {v}");
        assert_eq!(varlong_len(v), buf.len(), "varlong_len {v}");
        if let Ok(v32) = i32::try_from(v) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v32);
            assert_eq!(buf, zz(v), "varint {v}");
            assert_eq!(varint_len(v32), buf.len());
        }
    }
}

#[test]
fn record_size_is_exact_for_long_fields() {
    let mut w = BatchWriter::new(Compression::Lz4, 0);
    for len in [0usize, 63, 64, 127, 128, 8191, 8192, 70_000] {
        let v = vec![7u8; len];
        let headers = vec![hdr(&"k".repeat(len.min(300)), Some(&v[..len.min(9000)]))];
        let before = w.size();
        let predicted = w.record_size(-(len as i64) * 1000, Some(&v), Some(&v), &headers);
        w.append(-(len as i64) * 1000, Some(&v), Some(&v), &headers);
        assert_eq!(w.size() - before, predicted, "len {len}");
    }
}

#[test]
fn finish_refuses_an_empty_batch() {
    let err = BatchWriter::new(Compression::None, 0).finish().unwrap_err();
    assert!(err.to_string().contains("at least one record"), "{err}");
}

#[test]
fn set_producer_state_updates_fields_and_keeps_the_crc_valid() {
    for codec in ALL_CODECS {
        let recs = sample_records(30, 11);
        let mut w = BatchWriter::new(codec, recs[0].timestamp);
        for r in &recs {
            w.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
        }
        let mut batch = w.finish().unwrap();
        assert_eq!(
            (batch.producer_id(), batch.producer_epoch(), batch.base_sequence()),
            (-1, -1, -1)
        );
        let before = batch.bytes();

        batch.set_producer_state(4242, 7, 100, true);
        let data = batch.bytes();
        assert_eq!(data.len(), before.len());
        assert_eq!(
            (batch.producer_id(), batch.producer_epoch(), batch.base_sequence()),
            (4242, 7, 100)
        );
        assert!(batch.is_transactional());
        let got = decode_all(data.clone(), MB); // verifies the CRC
        let h = &got[0].header;
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (4242, 7, 100));
        assert!(h.is_transactional());
        assert_eq!(h.compression().unwrap(), codec);
        assert_records_match(0, &got[0].records, &recs);
        // Only the producer fields, the attributes and the CRC changed.
        let changed: Vec<usize> = (0..data.len()).filter(|&i| data[i] != before[i]).collect();
        assert!(
            changed.iter().all(|&i| (17..23).contains(&i) || (43..57).contains(&i)),
            "{changed:?}"
        );

        // An epoch bump while the old bytes are still in flight: they stay as they were.
        let in_flight = batch.bytes();
        batch.set_producer_state(4242, 8, 100, false);
        assert_eq!(in_flight, data);
        let got = decode_all(batch.bytes(), MB);
        assert_eq!(got[0].header.producer_epoch, 8);
        assert!(!got[0].header.is_transactional());
        assert_eq!(decode_all(in_flight, MB)[0].header.producer_epoch, 7);
    }
}

fn three_batches() -> (Vec<u8>, [usize; 3]) {
    let mut all = Vec::new();
    let mut lens = [0; 3];
    for (i, codec) in
        [Compression::None, Compression::Zstd, Compression::Lz4].into_iter().enumerate()
    {
        let recs = sample_records(10 + i, i as u64);
        let (data, _) = write_batch(codec, &recs);
        let mut v = data.to_vec();
        set_base_offset(&mut v, 100 * i as i64);
        lens[i] = v.len();
        all.extend_from_slice(&v);
    }
    (all, lens)
}

#[test]
fn a_truncated_trailing_batch_ends_iteration_without_error() {
    let (all, [a, b, c]) = three_batches();
    // Cut inside the third batch's records, inside its header, inside its length field, and
    // exactly at its start.
    for cut in [a + b + c / 2, a + b + c - 1, a + b + 30, a + b + 10, a + b + 1] {
        let mut it = batches(Bytes::copy_from_slice(&all[..cut]), MB);
        let got: Vec<_> = it.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 2, "cut at {cut}");
        assert_eq!(got[0].header.base_offset, 0);
        assert_eq!(got[1].header.base_offset, 100);
        assert!(it.truncated(), "cut at {cut}");
        assert_eq!(it.position(), a + b);
    }
    let mut it = batches(Bytes::copy_from_slice(&all[..a + b]), MB);
    assert_eq!(it.by_ref().count(), 2);
    assert!(!it.truncated());
    let mut it = batches(Bytes::from(all), MB);
    assert_eq!(it.by_ref().filter(|r| r.is_ok()).count(), 3);
    assert!(!it.truncated());

    // Only a partial batch: no batch, truncated.
    let (all, [a, ..]) = three_batches();
    let mut it = batches(Bytes::copy_from_slice(&all[..a - 1]), MB);
    assert!(it.next().is_none());
    assert!(it.truncated());
    assert!(batches(Bytes::new(), MB).next().is_none());
}

#[test]
fn a_corrupted_crc_is_an_error_naming_the_offset() {
    let (mut all, [a, b, _]) = three_batches();
    all[a + b - 3] ^= 0x40; // a byte in the second batch's records
    let mut it = batches(Bytes::from(all), MB);
    assert_eq!(it.next().unwrap().unwrap().header.base_offset, 0);
    let err = it.next().unwrap().unwrap_err();
    assert!(matches!(err, DecodeError::CrcMismatch { base_offset: 100, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("CRC mismatch in batch at offset 100: stored 0x"), "{msg}");
    assert!(msg.contains(", computed 0x"), "{msg}");
    assert!(it.next().is_none());
}

#[test]
fn an_absurd_record_count_is_refused_before_allocating() {
    for codec in [Compression::None, Compression::Zstd, Compression::Gzip] {
        let recs = sample_records(5, 1);
        let (data, _) = write_batch(codec, &recs);
        let mut v = data.to_vec();
        v[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        fix_crc(&mut v);
        let err = decode_err(v, MB);
        assert!(
            matches!(err, DecodeError::RecordCountTooLarge { count: i32::MAX, .. }),
            "{codec}: {err:?}"
        );
        assert!(err.to_string().contains("record count 2147483647 cannot fit in"), "{err}");
    }
    // A count a little too large for the bytes: the records run out.
    let (data, _) = write_batch(Compression::None, &sample_records(5, 1));
    let mut v = data.to_vec();
    v[57..61].copy_from_slice(&6i32.to_be_bytes());
    fix_crc(&mut v);
    let err = decode_err(v, MB);
    assert!(matches!(err, DecodeError::MalformedRecord { index: 5, .. }), "{err:?}");
}

#[test]
fn a_negative_record_count_is_an_error() {
    let (data, _) = write_batch(Compression::None, &sample_records(5, 1));
    let mut v = data.to_vec();
    set_base_offset(&mut v, 77);
    v[57..61].copy_from_slice(&(-5i32).to_be_bytes());
    fix_crc(&mut v);
    let err = decode_err(v, MB);
    assert_eq!(err.to_string(), "batch at offset 77: record count -5 is negative");
}

#[test]
fn negative_and_oversized_lengths_are_errors() {
    let ok = body(0, 0, Some(b"k"), Some(b"v"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative record length", [zz(-3), ok.clone()].concat()),
        ("record length past the end", [zz(500), ok.clone()].concat()),
        ("key length -7", record(&[vec![0, 0, 0], zz(-7), zz(-1), zz(0)].concat())),
        (
            "key length past the record",
            record(&[vec![0, 0, 0], zz(40), b"abc".to_vec(), zz(-1), zz(0)].concat()),
        ),
        ("value length -2", record(&[vec![0, 0, 0], zz(-1), zz(-2), zz(0)].concat())),
        ("header count -1", record(&[vec![0, 0, 0], zz(-1), zz(-1), zz(-1)].concat())),
        (
            "header count too large",
            record(&[vec![0, 0, 0], zz(-1), zz(-1), zz(1_000_000), vec![0; 10]].concat()),
        ),
        (
            "header key length -1",
            record(&[vec![0, 0, 0], zz(-1), zz(-1), zz(1), zz(-1), zz(-1)].concat()),
        ),
        (
            "header value length -9",
            record(&[vec![0, 0, 0], zz(-1), zz(-1), zz(1), zz(1), b"h".to_vec(), zz(-9)].concat()),
        ),
        ("record length longer than its fields", record(&[ok.clone(), vec![0, 0]].concat())),
    ];
    for (what, recs) in cases {
        let err = decode_err(hand_batch(5, 0, 1, 0, 0, &recs), MB);
        assert!(
            matches!(err, DecodeError::MalformedRecord { base_offset: 5, index: 0, .. }),
            "{what}: {err:?}"
        );
        assert!(err.to_string().starts_with("batch at offset 5, record 0: "), "{what}: {err}");
    }
    // Sanity: the well-formed record decodes.
    let got = decode_all(Bytes::from(hand_batch(5, 0, 1, 0, 0, &record(&ok))), MB);
    assert_eq!(got[0].records[0].key.as_deref(), Some(&b"k"[..]));
}

#[test]
fn overlong_varints_are_errors() {
    // A 6-byte varint as the record length.
    let recs = [vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x00], body(0, 0, None, None)].concat();
    let err = decode_err(hand_batch(0, 0, 1, 0, 0, &recs), MB);
    assert!(err.to_string().contains("varint longer than 5 bytes"), "{err}");
    // A 5-byte varint whose value passes 32 bits.
    let recs = [vec![0xFF, 0xFF, 0xFF, 0xFF, 0x1F], body(0, 0, None, None)].concat();
    let err = decode_err(hand_batch(0, 0, 1, 0, 0, &recs), MB);
    assert!(err.to_string().contains("varint"), "{err}");
    // An 11-byte varlong as the timestamp delta.
    let mut b = vec![0u8];
    b.extend([0xFF; 10]);
    b.push(0x01);
    b.extend([0, 1, 1, 0]);
    let err = decode_err(hand_batch(0, 0, 1, 0, 0, &record(&b)), MB);
    assert!(err.to_string().contains("timestamp delta: varlong longer than 10 bytes"), "{err}");
    // The largest valid values decode.
    let mut b = vec![0u8];
    b.extend(zz(i64::MIN));
    b.extend(zz(i32::MAX as i64));
    b.extend([1, 1, 0]);
    let got = decode_all(Bytes::from(hand_batch(0, 0, 1, 0, 0, &record(&b))), MB);
    assert_eq!(got[0].records[0].timestamp, i64::MIN);
    assert_eq!(got[0].records[0].offset, i32::MAX as i64);
}

#[test]
fn trailing_bytes_after_the_last_record_are_an_error() {
    let recs = [record(&body(0, 0, None, Some(b"v"))), vec![0, 0, 0]].concat();
    let err = decode_err(hand_batch(9, 0, 1, 0, 0, &recs), MB);
    assert_eq!(err.to_string(), "batch at offset 9: 3 bytes left after the last of 1 records");
}

#[test]
fn old_message_formats_and_unknown_codecs_are_clear_errors() {
    let mut v = hand_batch(12, 0, 1, 0, 0, &record(&body(0, 0, None, None)));
    v[16] = 1;
    let err = decode_err(v.clone(), MB);
    assert!(
        err.to_string().contains("batch at offset 12: message format v0/v1 not supported"),
        "{err}"
    );
    v[16] = 0;
    assert!(decode_err(v.clone(), MB).to_string().contains("message format v0/v1 not supported"));
    v[16] = 3;
    assert_eq!(decode_err(v, MB).to_string(), "batch at offset 12: unknown magic 3");

    for codec in [5i16, 6, 7] {
        let v = hand_batch(12, codec, 1, 0, 0, &record(&body(0, 0, None, None)));
        assert_eq!(
            decode_err(v, MB).to_string(),
            format!("batch at offset 12: unknown compression codec {codec}")
        );
    }

    // A batch length below the header size, and a negative one.
    let mut v = hand_batch(12, 0, 1, 0, 0, &[]);
    v[8..12].copy_from_slice(&20i32.to_be_bytes());
    assert!(matches!(
        decode_err(v.clone(), MB),
        DecodeError::InvalidBatchLength { length: 20, .. }
    ));
    v[8..12].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(decode_err(v, MB), DecodeError::InvalidBatchLength { length: -1, .. }));
}

#[test]
fn log_append_time_gives_every_record_the_max_timestamp() {
    for codec in ALL_CODECS {
        let recs = sample_records(25, 5);
        let (data, _) = write_batch(codec, &recs);
        let mut v = data.to_vec();
        let attrs = i16::from_be_bytes([v[21], v[22]]) | 0x08;
        v[21..23].copy_from_slice(&attrs.to_be_bytes());
        v[35..43].copy_from_slice(&1_234_567i64.to_be_bytes());
        fix_crc(&mut v);
        let got = decode_all(Bytes::from(v), MB);
        assert!(got[0].header.log_append_time());
        assert_eq!(got[0].records.len(), 25);
        assert!(got[0].records.iter().all(|r| r.timestamp == 1_234_567), "{codec}");
        // Everything else is unchanged.
        let mut expected = recs.clone();
        expected.iter_mut().for_each(|r| r.timestamp = 1_234_567);
        assert_records_match(0, &got[0].records, &expected);
    }
}

#[test]
fn control_batches_decode_with_their_marker_type() {
    let marker = |ty: i16| {
        let key = [0i16.to_be_bytes(), ty.to_be_bytes()].concat();
        // Value: version 0, coordinator epoch 3.
        let value = [0i16.to_be_bytes().to_vec(), 3i32.to_be_bytes().to_vec()].concat();
        record(&body(0, 0, Some(&key), Some(&value)))
    };
    // Transactional (bit 4) + control (bit 5).
    for (ty, expected) in [
        (0, ControlRecordType::Abort),
        (1, ControlRecordType::Commit),
        (2, ControlRecordType::Other(2)),
    ] {
        let got = decode_all(Bytes::from(hand_batch(40, 0x30, 1, 9, 9, &marker(ty))), MB);
        let b = &got[0];
        assert!(b.header.is_control() && b.header.is_transactional());
        assert_eq!(b.records[0].offset, 40);
        assert_eq!(b.records[0].control_type(), Some(expected));
    }
    // A key too short to hold a type.
    let got = decode_all(
        Bytes::from(hand_batch(0, 0x30, 1, 0, 0, &record(&body(0, 0, Some(b"ab"), None)))),
        MB,
    );
    assert_eq!(got[0].records[0].control_type(), None);
}

#[test]
fn empty_batches_left_by_compaction_decode_to_no_records() {
    for codec in [0i16, 4] {
        let mut v = hand_batch(300, codec, 0, -1, 55, &[]);
        v[23..27].copy_from_slice(&4i32.to_be_bytes()); // lastOffsetDelta from before compaction
        fix_crc(&mut v);
        let got = decode_all(Bytes::from(v), MB);
        assert!(got[0].records.is_empty());
        assert_eq!(got[0].header.last_offset(), 304);
    }
}

#[test]
fn invalid_utf8_header_keys_are_replaced_like_java_does() {
    let mut b = vec![0u8, 0, 0, 1, 1, 2];
    b.extend(zz(3));
    b.extend([b'a', 0xFF, b'b']);
    b.extend(zz(-1));
    let got = decode_all(Bytes::from(hand_batch(0, 0, 1, 0, 0, &record(&b))), MB);
    assert_eq!(got[0].records[0].headers, vec![Header { key: "a\u{FFFD}b".into(), value: None }]);
}

#[test]
fn keys_and_values_of_uncompressed_batches_share_the_fetched_buffer() {
    let recs = sample_records(10, 2);
    let (data, _) = write_batch(Compression::None, &recs);
    let range = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
    let got = decode_all(data.clone(), MB);
    for r in &got[0].records {
        if let Some(v) = r.value.as_ref().filter(|v| !v.is_empty()) {
            assert!(range.contains(&(v.as_ptr() as usize)), "value is a slice of the input");
        }
    }
}

// --- decompression limits ----------------------------------------------------------------

/// 100 MiB of zeros in each codec, built from repeated members/frames/blocks so the test does
/// not spend its time compressing.
fn bombs() -> Vec<(Compression, Vec<u8>)> {
    let zeros = vec![0u8; MB];
    let mut out = Vec::new();

    let mut member = Vec::new();
    compression::compress(Compression::Gzip, compression::Levels::default(), &zeros, &mut member).unwrap();
    out.push((Compression::Gzip, member.repeat(100))); // concatenated gzip members

    let mut frame = Vec::new();
    compression::compress(Compression::Zstd, compression::Levels::default(), &zeros, &mut frame).unwrap();
    out.push((Compression::Zstd, frame.repeat(100))); // concatenated zstd frames

    // One LZ4 frame of 1600 blocks, each 64 KiB of zeros.
    let mut one = Vec::new();
    compression::compress(Compression::Lz4, compression::Levels::default(), &zeros[..64 * 1024], &mut one).unwrap();
    let block = &one[LZ4_FRAME_HEADER.len()..one.len() - 4];
    let mut lz4 = LZ4_FRAME_HEADER.to_vec();
    for _ in 0..1600 {
        lz4.extend_from_slice(block);
    }
    lz4.extend_from_slice(&[0; 4]);
    out.push((Compression::Lz4, lz4));

    // xerial snappy: 3200 blocks of 32 KiB of zeros.
    let mut one = Vec::new();
    compression::compress(Compression::Snappy, compression::Levels::default(), &zeros[..32 * 1024], &mut one).unwrap();
    let mut snappy = XERIAL_HEADER.to_vec();
    for _ in 0..3200 {
        snappy.extend_from_slice(&one[16..]);
    }
    out.push((Compression::Snappy, snappy));
    out
}

#[test]
fn decompression_bombs_are_refused_at_the_limit() {
    for (codec, bomb) in bombs() {
        // Sanity: with a large enough limit, these really are 100 MiB.
        if codec == Compression::Lz4 {
            assert_eq!(compression::decompress(codec, &bomb, 200 * MB).unwrap().len(), 100 * MB);
        }
        match compression::decompress(codec, &bomb, MB) {
            Err(DecompressError::TooLarge) => {}
            other => panic!("{codec}: expected TooLarge, got {:?}", other.map(|v| v.len())),
        }
        // Inside a batch: the error names the batch and the limit.
        let v = hand_batch(21, codec.id(), 1000, 0, 0, &bomb);
        let err = decode_err(v, MB);
        assert_eq!(
            err.to_string(),
            format!("batch at offset 21: decompressed size exceeds limit of {MB} bytes"),
            "{codec}"
        );
    }
}

/// `size` zeros as one zstd frame from the C library, allowed a window of 128 MiB: a frame of
/// at most that size is then single-segment, announcing a window of its whole content.
fn single_segment_zstd_frame(size: usize) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(1).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27)).unwrap();
    c.compress(&vec![0u8; size]).unwrap()
}

#[test]
fn a_zstd_frame_announcing_a_huge_window_is_refused_before_allocating_it() {
    // One single-segment frame of 100 MiB (window log 27 >= content size): its window is the
    // whole 100 MiB, which the decoder would allocate on reading the frame header. The window
    // cap for a 1 MiB limit (8 MiB) refuses the frame at its header instead.
    let frame = single_segment_zstd_frame(100 * MB);
    match compression::decompress(Compression::Zstd, &frame, MB) {
        Err(DecompressError::Corrupt(msg)) => {
            assert!(msg.contains("memory") || msg.contains("indow"), "{msg}")
        }
        other => panic!("expected the window to be refused, got {:?}", other.map(|v| v.len())),
    }
    // With a limit that allows it, the same frame decodes.
    assert_eq!(
        compression::decompress(Compression::Zstd, &frame, 128 * MB).unwrap().len(),
        100 * MB
    );
}

#[test]
fn a_raw_snappy_block_announcing_a_huge_length_is_refused_before_allocating() {
    // Raw snappy starts with the uncompressed length as a varint: announce 2 GiB.
    let mut bomb = vec![0x80, 0x80, 0x80, 0x80, 0x08];
    bomb.extend_from_slice(&[0; 20]);
    assert!(matches!(
        compression::decompress(Compression::Snappy, &bomb, MB),
        Err(DecompressError::TooLarge)
    ));
}

#[test]
fn decompression_exactly_at_the_limit_succeeds() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
    for codec in ALL_CODECS {
        let mut c = Vec::new();
        compression::compress(codec, compression::Levels::default(), &data, &mut c).unwrap();
        assert_eq!(compression::decompress(codec, &c, data.len()).unwrap(), data, "{codec}");
        assert!(
            matches!(
                compression::decompress(codec, &c, data.len() - 1),
                Err(DecompressError::TooLarge)
            ),
            "{codec}"
        );
    }
}

// --- snappy and lz4 framing ---------------------------------------------------------------

#[test]
fn xerial_framed_and_raw_snappy_both_decode() {
    let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 1000).to_be_bytes()).collect();

    // xerial framing built by hand: header, then [i32 BE length][raw snappy block] per 32 KiB.
    let mut enc = snap::raw::Encoder::new();
    let mut framed = b"\x82SNAPPY\x00".to_vec();
    framed.extend_from_slice(&1i32.to_be_bytes()); // version
    framed.extend_from_slice(&1i32.to_be_bytes()); // compatible version
    for chunk in data.chunks(32 * 1024) {
        let block = enc.compress_vec(chunk).unwrap();
        framed.extend_from_slice(&(block.len() as i32).to_be_bytes());
        framed.extend_from_slice(&block);
    }
    assert_eq!(compression::decompress(Compression::Snappy, &framed, 10 * MB).unwrap(), data);

    // Our encoder writes exactly that.
    let mut ours = Vec::new();
    compression::compress(Compression::Snappy, compression::Levels::default(), &data, &mut ours).unwrap();
    assert_eq!(ours, framed);

    // Two concatenated xerial streams (xerial's reader accepts a header between blocks).
    let twice = [framed.clone(), framed.clone()].concat();
    assert_eq!(
        compression::decompress(Compression::Snappy, &twice, 10 * MB).unwrap(),
        [data.clone(), data.clone()].concat()
    );

    // Raw snappy: one unframed block.
    let raw = enc.compress_vec(&data).unwrap();
    assert_eq!(compression::decompress(Compression::Snappy, &raw, 10 * MB).unwrap(), data);

    // And both inside a batch.
    let recs = record(&body(0, 0, Some(b"k"), Some(&data[..5000])));
    for section in [
        enc.compress_vec(&recs).unwrap(),
        [
            XERIAL_HEADER.to_vec(),
            (enc.compress_vec(&recs).unwrap().len() as i32).to_be_bytes().to_vec(),
            enc.compress_vec(&recs).unwrap(),
        ]
        .concat(),
    ] {
        let got = decode_all(Bytes::from(hand_batch(0, 2, 1, 0, 0, &section)), MB);
        assert_eq!(got[0].records[0].value.as_deref(), Some(&data[..5000]));
    }

    // Corrupt framing is an error, not a panic.
    for bad in [
        &framed[..framed.len() - 3],
        &framed[..18],
        &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x80, 0, 0, 0][..],
    ] {
        assert!(matches!(
            compression::decompress(Compression::Snappy, bad, MB),
            Err(DecompressError::Corrupt(_))
        ));
    }
}

#[test]
fn lz4_frames_use_the_descriptor_kafka_writes() {
    // lz4_flex's own frame encoder with Kafka's options writes the same 7-byte header,
    // which pins the header checksum byte.
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .block_mode(lz4_flex::frame::BlockMode::Independent);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    std::io::Write::write_all(&mut enc, b"hello hello hello").unwrap();
    let theirs = enc.finish().unwrap();
    assert_eq!(theirs[..7], LZ4_FRAME_HEADER);

    // Walk our frame: blocks hold at most 64 KiB (the Java reader's limit), incompressible
    // ones are stored with the high bit, and an end mark closes it.
    let mut rng = Rng(5);
    let data = [rng.bytes(100_000), vec![1u8; 200_000], rng.bytes(10)].concat();
    let mut ours = Vec::new();
    compression::compress(Compression::Lz4, compression::Levels::default(), &data, &mut ours).unwrap();
    assert_eq!(ours[..7], LZ4_FRAME_HEADER);
    let mut pos = 7;
    let (mut stored, mut compressed, mut total) = (0, 0, 0usize);
    loop {
        let size = u32::from_le_bytes(ours[pos..pos + 4].try_into().unwrap());
        pos += 4;
        if size == 0 {
            break;
        }
        let len = (size & 0x7FFF_FFFF) as usize;
        assert!(len <= 64 * 1024);
        if size & 0x8000_0000 != 0 {
            stored += 1;
            total += len;
        } else {
            compressed += 1;
            total += lz4_flex::block::decompress(&ours[pos..pos + len], 64 * 1024).unwrap().len();
        }
        pos += len;
    }
    assert_eq!(pos, ours.len(), "nothing after the end mark (no content checksum)");
    assert_eq!(total, data.len());
    assert!(stored >= 1 && compressed >= 1, "stored {stored}, compressed {compressed}");
    // lz4_flex's frame decoder reads it back.
    assert_eq!(compression::decompress(Compression::Lz4, &ours, MB).unwrap(), data);
}

#[test]
fn lz4_frames_with_checksums_and_content_size_from_other_clients_decode() {
    let data = b"some records, some records, some records".repeat(100);
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max256KB)
        .content_checksum(true)
        .block_checksums(true)
        .content_size(Some(data.len() as u64));
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    std::io::Write::write_all(&mut enc, &data).unwrap();
    let frame = enc.finish().unwrap();
    assert_eq!(compression::decompress(Compression::Lz4, &frame, MB).unwrap(), data);
}

// --- robustness -----------------------------------------------------------------------------

/// Decodes whatever `data` holds, raw and decoded, touching every field; returns the number
/// of batches that decoded.
fn decode_anything(data: &[u8]) -> usize {
    let mut ok = 0;
    for r in batches(Bytes::copy_from_slice(data), 256 * 1024) {
        match r {
            Ok(b) => {
                ok += 1;
                for rec in &b.records {
                    std::hint::black_box((
                        rec.offset,
                        rec.timestamp,
                        &rec.key,
                        &rec.value,
                        &rec.headers,
                        rec.control_type(),
                    ));
                }
            }
            Err(e) => {
                std::hint::black_box(e.to_string());
            }
        }
    }
    let mut it = batches(Bytes::copy_from_slice(data), 256 * 1024);
    while let Some(Ok(raw)) = it.next_raw() {
        let _ = std::hint::black_box(raw.decode(1024));
    }
    ok
}

#[test]
fn random_bytes_and_mutated_batches_never_panic() {
    let mut rng = Rng(0xDEC0DE);
    let mut valid = Vec::new();
    for codec in ALL_CODECS {
        let recs = sample_records(12, codec.id() as u64);
        valid.push(write_batch(codec, &recs).0.to_vec());
    }
    let mut decoded_after_mutation = 0;
    for i in 0..2000 {
        let data = match i % 4 {
            // Pure noise, sometimes behind a plausible header.
            0 => {
                let n = rng.below(400) as usize;
                let mut v = rng.bytes(n);
                if v.len() > 61 && rng.below(2) == 0 {
                    let len = (v.len() - 12) as i32;
                    v[8..12].copy_from_slice(&len.to_be_bytes());
                    v[16] = 2;
                    v[21..23].copy_from_slice(&(rng.below(5) as i16).to_be_bytes());
                    fix_crc(&mut v);
                }
                v
            }
            // A valid batch with a few bytes changed; the CRC catches these.
            1 => {
                let mut v = valid[i % valid.len()].clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(v.len() as u64) as usize;
                    v[at] = rng.next() as u8;
                }
                v
            }
            // Changed, then the CRC fixed: the decoder must survive whatever is inside,
            // compressed sections included.
            2 => {
                let mut v = valid[i % valid.len()].clone();
                for _ in 0..1 + rng.below(4) {
                    let at = 21 + rng.below((v.len() - 21) as u64) as usize;
                    v[at] = match rng.below(3) {
                        0 => rng.next() as u8,
                        1 => 0xFF,
                        _ => 0x80,
                    };
                }
                fix_crc(&mut v);
                v
            }
            // Truncated or extended, CRC fixed, length fixed.
            _ => {
                let mut v = valid[i % valid.len()].clone();
                let len = 61 + rng.below((v.len() - 61) as u64 + 20) as usize;
                v.resize(len, rng.next() as u8);
                let len = (v.len() - 12) as i32;
                v[8..12].copy_from_slice(&len.to_be_bytes());
                fix_crc(&mut v);
                v
            }
        };
        decoded_after_mutation += decode_anything(&data);
        // Also the mutated bytes behind a valid batch, and cut anywhere.
        let both = [valid[0].clone(), data.clone()].concat();
        assert!(decode_anything(&both) >= 1);
        let cut = rng.below(both.len() as u64 + 1) as usize;
        decode_anything(&both[..cut]);
    }
    // Some mutations (inside values, for instance) leave a decodable batch; the loop did
    // reach the record decoder.
    assert!(decoded_after_mutation > 0);
}

#[test]
fn decompressors_survive_garbage() {
    let mut rng = Rng(77);
    for codec in ALL_CODECS {
        let mut c = Vec::new();
        compression::compress(codec, compression::Levels::default(), &b"abcdefgh".repeat(5000), &mut c).unwrap();
        for _ in 0..300 {
            let mut v = c.clone();
            for _ in 0..1 + rng.below(6) {
                let at = rng.below(v.len() as u64) as usize;
                v[at] = rng.next() as u8;
            }
            v.truncate(rng.below(v.len() as u64 + 1) as usize);
            let _ = std::hint::black_box(compression::decompress(codec, &v, 64 * 1024));
        }
        let _ = compression::decompress(codec, &rng.bytes(1000), 64 * 1024);
        let _ = compression::decompress(codec, &[], 64 * 1024);
    }
}

// --- interop with the Java client (see testdata/Interop.java) -------------------------------

/// The records `Interop.java` writes; keep the two in step.
fn interop_records() -> Vec<Rec> {
    (0..50i64)
        .map(|i| {
            let timestamp = 1_700_000_000_000 + i * 1000 - if i % 3 == 0 { 5000 } else { 0 };
            let key = (i % 5 != 0).then(|| format!("key-{i}").into_bytes());
            let value = if i % 7 == 3 {
                None
            } else if i == 11 {
                Some((0..70_000u32).map(|j| ((j * 31 + j / 1000) % 256) as u8).collect())
            } else {
                Some(format!("value-{i}").repeat((i % 4) as usize).into_bytes())
            };
            let headers = match i % 3 {
                0 => vec![],
                1 => vec![hdr("h", Some(format!("v{i}").as_bytes()))],
                _ => vec![hdr("dup", Some(b"a")), hdr("dup", None)],
            };
            Rec { timestamp, key, value, headers }
        })
        .collect()
}

#[test]
fn batches_written_by_the_java_client_decode() {
    let files: [(Compression, &[u8]); 5] = [
        (Compression::None, include_bytes!("testdata/java-none.bin")),
        (Compression::Gzip, include_bytes!("testdata/java-gzip.bin")),
        (Compression::Snappy, include_bytes!("testdata/java-snappy.bin")),
        (Compression::Lz4, include_bytes!("testdata/java-lz4.bin")),
        (Compression::Zstd, include_bytes!("testdata/java-zstd.bin")),
    ];
    let recs = interop_records();
    for (codec, bytes) in files {
        let got = decode_all(Bytes::from_static(bytes), MB);
        assert_eq!(got.len(), 1, "{codec}");
        assert_eq!(got[0].header.compression().unwrap(), codec);
        assert_eq!(got[0].header.max_timestamp, recs.iter().map(|r| r.timestamp).max().unwrap());
        assert_records_match(0, &got[0].records, &recs);
        // The uncompressed Java batch is byte for byte what our encoder writes.
        if codec == Compression::None {
            assert_eq!(&write_batch(codec, &recs).0[..], bytes);
        }
    }
    // Java's framings are the ones we write.
    assert_eq!(&include_bytes!("testdata/java-lz4.bin")[61..68], &LZ4_FRAME_HEADER);
    assert_eq!(&include_bytes!("testdata/java-snappy.bin")[61..77], &XERIAL_HEADER);
}

/// Writes our batches for `Interop.java read` to check with the Java client:
/// `FERROKAFKA_INTEROP_DIR=/tmp/x cargo test --lib write_interop_batches -- --ignored`.
#[test]
#[ignore = "writes files for the Java interop check; run by hand"]
fn write_interop_batches() {
    let dir = std::env::var("FERROKAFKA_INTEROP_DIR").expect("FERROKAFKA_INTEROP_DIR");
    let recs = interop_records();
    for codec in ALL_CODECS {
        let mut w = BatchWriter::new(codec, recs[0].timestamp);
        for r in &recs {
            w.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &r.headers);
        }
        let mut batch = w.finish().unwrap();
        std::fs::write(format!("{dir}/rust-{codec}.bin"), batch.bytes()).unwrap();
        batch.set_producer_state(1234, 5, 678, true);
        std::fs::write(format!("{dir}/rust-{codec}-txn.bin"), batch.bytes()).unwrap();
    }
}

// --- compression levels (KIP-390) -----------------------------------------------------------

/// Text that compresses but does not repeat: record-like lines with pseudo-random fields.
fn varied_text(lines: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::new();
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(format!("{{\"id\":{i},\"user\":\"u{}\",\"amount\":{}.{:02}}}\n", x % 5000, x % 997, x % 100).as_bytes());
    }
    out
}

#[test]
fn compression_levels_are_applied_and_every_level_round_trips() {
    use compression::Levels;
    let data = varied_text(20_000);
    let cases = [
        (Compression::Gzip, Levels { gzip: 1, zstd: 3 }, Levels { gzip: 9, zstd: 3 }),
        // Levels only where the C library compresses: ruzstd has one level.
        #[cfg(feature = "zstd-c")]
        (Compression::Zstd, Levels { gzip: -1, zstd: 1 }, Levels { gzip: -1, zstd: 19 }),
    ];
    for (codec, fast, small) in cases {
        let mut a = Vec::new();
        compression::compress(codec, fast, &data, &mut a).unwrap();
        let mut b = Vec::new();
        compression::compress(codec, small, &data, &mut b).unwrap();
        assert!(b.len() < a.len(), "{codec}: the higher level gives {} bytes, the lower {}", b.len(), a.len());
        for out in [&a, &b] {
            assert_eq!(compression::decompress(codec, out, 10 * MB).unwrap(), data, "{codec} round trip");
        }
    }
    // The defaults are gzip 6 (zlib's default, -1) and zstd 3: level 6 output equals -1's.
    let mut d = Vec::new();
    compression::compress(Compression::Gzip, Levels::default(), &data, &mut d).unwrap();
    let mut six = Vec::new();
    compression::compress(Compression::Gzip, Levels { gzip: 6, zstd: 3 }, &data, &mut six).unwrap();
    assert_eq!(d, six);
    // The thread's cached zstd context follows a change of level.
    #[cfg(feature = "zstd-c")]
    zstd_levels_follow_changes(&data);
}

#[cfg(feature = "zstd-c")]
fn zstd_levels_follow_changes(data: &[u8]) {
    use compression::Levels;
    let data = data.to_vec();
    let mut z3 = Vec::new();
    compression::compress(Compression::Zstd, Levels::default(), &data, &mut z3).unwrap();
    let mut z19 = Vec::new();
    compression::compress(Compression::Zstd, Levels { gzip: -1, zstd: 19 }, &data, &mut z19).unwrap();
    let mut z3_again = Vec::new();
    compression::compress(Compression::Zstd, Levels::default(), &data, &mut z3_again).unwrap();
    assert_eq!(z3, z3_again);
    assert_ne!(z3, z19);
}

mod zstd_cross;
