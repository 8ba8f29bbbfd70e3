//! Issue 11, defect 4: small hostile inputs must not make the decoders allocate much more
//! than the input holds. A counting allocator (this test binary's global allocator) measures
//! the peak heap of each decode on its own thread, one test per row of the table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;

struct Counting;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    // `try_with`: allocations during thread teardown are not counted.
    let _ = CURRENT.try_with(|c| {
        let v = c.get() + n;
        c.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        add(new as isize - l.size() as isize);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the peak heap (bytes) this thread held during it,
/// above what it held when `f` started.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    let peak = PEAK.with(Cell::get) - start;
    (r, peak.max(0) as usize)
}

const MIB: usize = 1 << 20;

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `n` filler bytes so that `frame` is `size` long.
fn pad_to(frame: &mut Vec<u8>, size: usize) {
    frame.resize(size, 0);
}

/// A Fetch v12 response head up to (not including) the topics array.
fn fetch_v12_head() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    f.push(0); // header tags
    f.extend_from_slice(&0i32.to_be_bytes()); // throttle
    f.extend_from_slice(&0i16.to_be_bytes()); // error
    f.extend_from_slice(&0i32.to_be_bytes()); // session id
    f
}

#[test]
fn a_fetch_response_claiming_a_million_partitions_is_refused_without_allocating() {
    let mut f = fetch_v12_head();
    uvarint(&mut f, 2); // one topic
    f.push(2);
    f.push(b't'); // name "t"
    uvarint(&mut f, 1_000_000 + 1); // partitions claimed
    pad_to(&mut f, MIB);
    let frame = Bytes::from(f);
    let (r, peak) = peak_during(|| crate::consumer::fetch_decode::decode_fetch_response(frame.clone(), 12));
    let e = r.unwrap_err();
    assert!(e.contains("partitions") && e.contains("1000000"), "{e}");
    assert!(peak < 64 * 1024, "peak {peak} bytes for a 1 MiB frame");
}

#[test]
fn array_counts_near_the_bytes_left_are_refused_for_fetch_metadata_and_produce() {
    // Each case: a frame whose array count equals the bytes left after it (what the old
    // one-byte-per-element check allowed).
    let cases: Vec<(&str, Vec<u8>)> = {
        let mut v = Vec::new();
        let mut f = fetch_v12_head();
        let n = ((MIB - f.len() - 3) as u64).min(999_999); // below the hard limit: the size check refuses it
        uvarint(&mut f, n + 1);
        v.push(("Fetch v12 topics", f));

        let mut f = Vec::new();
        f.extend_from_slice(&7i32.to_be_bytes());
        f.push(0);
        f.extend_from_slice(&0i32.to_be_bytes()); // throttle
        let n = ((MIB - f.len() - 3) as u64).min(999_999); // below the hard limit: the size check refuses it
        uvarint(&mut f, n + 1); // brokers
        v.push(("Metadata v12 brokers", f));

        let mut f = Vec::new();
        f.extend_from_slice(&7i32.to_be_bytes());
        f.push(0);
        let n = ((MIB - f.len() - 3) as u64).min(999_999); // below the hard limit: the size check refuses it
        uvarint(&mut f, n + 1); // topics
        v.push(("Produce v9 topics", f));

        // Fetch v11 (not flexible): one topic, one partition, aborted transactions claimed.
        let mut f = Vec::new();
        f.extend_from_slice(&7i32.to_be_bytes());
        f.extend_from_slice(&0i32.to_be_bytes()); // throttle
        f.extend_from_slice(&0i16.to_be_bytes());
        f.extend_from_slice(&0i32.to_be_bytes());
        f.extend_from_slice(&1i32.to_be_bytes()); // topics
        f.extend_from_slice(&1i16.to_be_bytes());
        f.push(b't');
        f.extend_from_slice(&1i32.to_be_bytes()); // partitions
        f.extend_from_slice(&[0; 4 + 2 + 8 + 8 + 8]); // index .. log start offset
        let n = ((MIB - f.len() - 4) as i32).min(999_999);
        f.extend_from_slice(&n.to_be_bytes()); // aborted
        v.push(("Fetch v11 aborted transactions", f));
        v
    };
    for (what, mut f) in cases {
        pad_to(&mut f, MIB);
        let frame = Bytes::from(f);
        let (r, peak) = peak_during(|| match what {
            w if w.starts_with("Fetch v12") => {
                crate::consumer::fetch_decode::decode_fetch_response(frame.clone(), 12).map(|_| ())
            }
            w if w.starts_with("Fetch v11") => {
                crate::consumer::fetch_decode::decode_fetch_response(frame.clone(), 11).map(|_| ())
            }
            w if w.starts_with("Metadata") => {
                crate::metadata::decode_metadata_response(frame.clone(), 12).map(|_| ()).map_err(|e| e.to_string())
            }
            _ => crate::producer::request::decode_produce_response(frame.clone(), 9).map(|_| ()),
        });
        let e = r.unwrap_err();
        let field = what.rsplit(' ').next().unwrap();
        assert!(e.contains(field) && e.contains("needs at least"), "{what}: {e}");
        assert!(peak < 64 * 1024, "{what}: peak {peak} bytes for a 1 MiB frame (was ~100x the frame)");
    }
}

#[test]
fn a_valid_fetch_response_of_minimal_partitions_stays_within_eight_times_its_size() {
    // The worst a well-formed 1 MiB response can do: partitions of the smallest encoding,
    // each decoded into kafka-protocol's PartitionData.
    let mut f = fetch_v12_head();
    uvarint(&mut f, 2);
    f.push(2);
    f.push(b't');
    let part = {
        let mut p = vec![0u8; 4 + 2 + 8 + 8 + 8];
        p.push(0); // aborted: null
        p.extend_from_slice(&(-1i32).to_be_bytes()); // preferred replica
        p.push(0); // records: null
        p.push(0); // tags
        p
    };
    let n = (MIB - f.len() - 8) / part.len();
    uvarint(&mut f, n as u64 + 1);
    for _ in 0..n {
        f.extend_from_slice(&part);
    }
    f.push(0); // topic tags
    f.push(0); // response tags
    let frame = Bytes::from(f);
    let size = frame.len();
    let (r, peak) = peak_during(|| crate::consumer::fetch_decode::decode_fetch_response(frame.clone(), 12));
    let resp = r.unwrap();
    assert_eq!(resp.responses[0].partitions.len(), n);
    assert!(peak <= 8 * size, "peak {peak} bytes for a {size}-byte frame");
    drop(resp);
}

/// A zstd batch whose records section is `section`, holding `count` records.
fn zstd_batch(section: &[u8], count: i32) -> Bytes {
    use crate::record::{Compression, compression, crc32c};
    let mut compressed = Vec::new();
    compression::compress(Compression::Zstd, compression::Levels::default(), section, &mut compressed).unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&((49 + compressed.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    b.push(2);
    b.extend_from_slice(&[0; 4]); // crc
    b.extend_from_slice(&Compression::Zstd.id().to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&compressed);
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// Polls 500 records from `batch` as the consumer does, returning them and the peak heap.
fn take_500(batch: Bytes) -> (crate::Result<Vec<crate::consumer::ConsumerRecord>>, usize) {
    use crate::consumer::IsolationLevel;
    use crate::consumer::completed_fetch::CompletedFetch;
    use crate::consumer::TopicPartition;
    let mut cf = CompletedFetch::new(
        TopicPartition::new("t", 0),
        0,
        0,
        None,
        batch,
        IsolationLevel::ReadUncommitted,
        Vec::new(),
        64 * MIB,
        true,
    );
    peak_during(move || {
        let mut out = Vec::new();
        cf.take(500, &mut out).map(|()| out)
    })
}

#[test]
fn a_small_zstd_batch_of_one_record_with_thirty_million_headers_holds_only_its_decompressed_bytes() {
    let headers = 30_000_000usize;
    let mut body = vec![0u8, 0, 0, 1, 1]; // attributes, ts delta, offset delta, null key, null value
    uvarint(&mut body, (headers as u64) << 1); // zigzag header count
    for _ in 0..headers {
        body.extend_from_slice(&[0, 1]); // empty key, null value
    }
    let mut section = Vec::new();
    uvarint(&mut section, (body.len() as u64) << 1);
    section.extend_from_slice(&body);
    drop(body);
    let decompressed = section.len();
    let batch = zstd_batch(&section, 1);
    drop(section);
    assert!(batch.len() < 64 * 1024, "the hostile batch is small: {} bytes", batch.len());
    let (r, peak) = take_500(batch);
    let records = r.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].headers.len(), headers);
    // Before: 30 M headers decoded up front, ~1.7 GB. Now: the decompressed section (the
    // decompressor may grow its buffer by doubling) and one record.
    assert!(peak <= 2 * decompressed + MIB, "peak {peak} bytes for {decompressed} decompressed bytes");
}

#[test]
fn a_small_zstd_batch_of_nine_million_tiny_records_holds_only_its_decompressed_bytes() {
    let count = 9_000_000usize;
    let mut section = Vec::with_capacity(count * 7);
    for _ in 0..count {
        // length 6, attributes, ts delta 0, offset delta 0 (all records share offset 0:
        // only the first is handed out after the position moves on), null key and value,
        // no headers.
        section.extend_from_slice(&[12, 0, 0, 0, 1, 1, 0]);
    }
    let decompressed = section.len();
    let batch = zstd_batch(&section, count as i32);
    drop(section);
    assert!(batch.len() < 64 * 1024, "the hostile batch is small: {} bytes", batch.len());
    let (r, peak) = take_500(batch);
    let records = r.unwrap();
    assert!(!records.is_empty() && records.len() <= 500);
    // Before: 9 M records materialised, ~1 GB. Now: the decompressed section, at most 500
    // records.
    assert!(
        peak <= 2 * decompressed + 500 * std::mem::size_of::<crate::consumer::ConsumerRecord>() + MIB,
        "peak {peak} bytes for {decompressed} decompressed bytes"
    );
}
