//! The two zstd implementations against each other: frames from the C library decoded by
//! ruzstd and the reverse, batches included, and the hostile-input limits with ruzstd's
//! decoder. Every test build has both (dev-dependencies), whichever the features pick for
//! the producer and consumer.

use super::*;
use compression::{zstd_c, zstd_pure};

/// The records section (the bytes after the 61-byte header) of an uncompressed batch of
/// `recs`.
fn records_section(recs: &[Rec]) -> Vec<u8> {
    let (batch, _) = write_batch(Compression::None, recs);
    batch[layout::HEADER_SIZE..].to_vec()
}

#[test]
fn frames_from_either_zstd_encoder_decode_with_the_other() {
    let inputs = [Vec::new(), b"x".to_vec(), varied_text(40_000), records_section(&sample_records(2000, 7))];
    for data in &inputs {
        for level in [1, 3, 19] {
            let mut c = Vec::new();
            zstd_c::compress(data, level, &mut c).unwrap();
            assert_eq!(&zstd_pure::decompress(&c, 64 * MB).unwrap(), data, "C level {level} -> pure");
        }
        let mut p = Vec::new();
        zstd_pure::compress(data, 3, &mut p).unwrap();
        assert_eq!(&zstd_c::decompress(&p, 64 * MB).unwrap(), data, "pure -> C");
        assert_eq!(&zstd_pure::decompress(&p, 64 * MB).unwrap(), data, "pure -> pure");
        if data.len() > 10_000 {
            assert!(p.len() < data.len(), "the pure encoder compresses: {} of {}", p.len(), data.len());
        }
    }
}

#[test]
fn batches_compressed_by_either_implementation_decode_in_this_build() {
    let recs = sample_records(3000, 11);
    let section = records_section(&recs);
    let max_ts = recs.iter().map(|r| r.timestamp).max().unwrap();
    for (who, compressed) in [("C", { let mut v = Vec::new(); zstd_c::compress(&section, 3, &mut v).unwrap(); v }),
                              ("pure", { let mut v = Vec::new(); zstd_pure::compress(&section, 3, &mut v).unwrap(); v })] {
        let b = hand_batch(40, Compression::Zstd.id(), recs.len() as i32, recs[0].timestamp, max_ts, &compressed);
        let got = decode_all(Bytes::from(b), 64 * MB);
        assert_eq!(got.len(), 1, "{who}");
        assert_records_match(40, &got[0].records, &recs);
    }
    // And the batch this build's producer writes decodes with both implementations.
    let (batch, _) = write_batch(Compression::Zstd, &recs);
    let frame = &batch[layout::HEADER_SIZE..];
    assert_eq!(zstd_c::decompress(frame, 64 * MB).unwrap(), section);
    assert_eq!(zstd_pure::decompress(frame, 64 * MB).unwrap(), section);
}

#[test]
fn the_java_clients_zstd_batch_decodes_with_the_pure_decoder() {
    let bytes = include_bytes!("../testdata/java-zstd.bin");
    let frame = &bytes[layout::HEADER_SIZE..];
    assert_eq!(zstd_pure::decompress(frame, MB).unwrap(), zstd_c::decompress(frame, MB).unwrap());
}

#[test]
fn concatenated_and_skippable_frames_decode_with_the_pure_decoder() {
    let (a, b) = (varied_text(500), varied_text(900));
    let mut input = Vec::new();
    zstd_c::compress(&a, 3, &mut input).unwrap();
    // A skippable frame (magic 0x184D2A5?, u32 LE length, payload) between the two.
    input.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
    input.extend_from_slice(&5u32.to_le_bytes());
    input.extend_from_slice(b"skip!");
    zstd_pure::compress(&b, 3, &mut input).unwrap();
    let mut want = a.clone();
    want.extend_from_slice(&b);
    assert_eq!(zstd_pure::decompress(&input, MB).unwrap(), want);
    assert_eq!(zstd_c::decompress(&input, MB).unwrap(), want);
}

#[test]
fn the_pure_decoder_refuses_bombs_at_the_limit() {
    let zeros = vec![0u8; MB];
    let mut c_frame = Vec::new();
    zstd_c::compress(&zeros, 3, &mut c_frame).unwrap();
    let mut p_frame = Vec::new();
    zstd_pure::compress(&zeros, 3, &mut p_frame).unwrap();
    // 100 MiB of zeros as 100 concatenated frames, from each encoder; and the 64 MiB cap.
    for bomb in [c_frame.repeat(100), p_frame.repeat(100)] {
        assert!(bomb.len() < MB, "a bomb: {} bytes for 100 MiB", bomb.len());
        for limit in [MB, 64 * MB] {
            match zstd_pure::decompress(&bomb, limit) {
                Err(DecompressError::TooLarge) => {}
                other => panic!("expected TooLarge at {limit}, got {:?}", other.map(|v| v.len())),
            }
        }
    }
    // Sanity: the frames are what they claim (ten of them, as decoding 100 MiB in a debug
    // build takes a while).
    for frame in [&c_frame, &p_frame] {
        assert_eq!(zstd_pure::decompress(&frame.repeat(10), 10 * MB).unwrap().len(), 10 * MB);
    }
    // One frame that is itself larger than the limit stops at the limit too.
    let mut big = Vec::new();
    zstd_c::compress(&vec![0u8; 3 * MB], 3, &mut big).unwrap();
    assert!(matches!(zstd_pure::decompress(&big, MB), Err(DecompressError::TooLarge)));
    assert_eq!(zstd_pure::decompress(&big, 3 * MB).unwrap().len(), 3 * MB);
}

#[test]
fn the_pure_decoder_refuses_a_huge_window_before_allocating_it() {
    // A single-segment frame of 12 MiB: its window is the whole content, announced in the
    // header. For a 1 MiB limit the cap is 8 MiB, so the header is refused.
    let frame = single_segment_zstd_frame(12 * MB);
    match zstd_pure::decompress(&frame, MB) {
        Err(DecompressError::Corrupt(msg)) => assert!(msg.contains("window"), "{msg}"),
        other => panic!("expected the window to be refused, got {:?}", other.map(|v| v.len())),
    }
    // With a limit whose cap (16 MiB) allows the window, the same frame decodes.
    assert_eq!(zstd_pure::decompress(&frame, 16 * MB).unwrap().len(), 12 * MB);
}

#[test]
fn the_pure_decoder_rejects_truncated_and_corrupted_frames_without_panicking() {
    let data = varied_text(5000);
    let mut frame = Vec::new();
    zstd_c::compress(&data, 3, &mut frame).unwrap();
    // Every truncation is an error (the C encoder writes no checksum, so only the frame's
    // structure tells; a cut anywhere leaves a block or the header short).
    for cut in (0..frame.len()).step_by(97).skip(1) {
        assert!(zstd_pure::decompress(&frame[..cut], MB).is_err(), "cut at {cut}");
    }
    // Pseudo-random byte flips: an error or some output within the limit, never a panic.
    let mut rng = Rng(0xC0FF_EE00_1234_5678);
    for _ in 0..3000 {
        let mut bad = frame.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bad.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
        }
        if let Ok(out) = zstd_pure::decompress(&bad, 64 * 1024) {
            assert!(out.len() <= 64 * 1024);
        }
    }
    // The pure encoder writes a content checksum: a flipped byte in the content is caught.
    let mut p = Vec::new();
    zstd_pure::compress(&data, 3, &mut p).unwrap();
    let n = p.len();
    p[n - 1] ^= 0x55;
    assert!(matches!(zstd_pure::decompress(&p, MB), Err(DecompressError::Corrupt(m)) if m.contains("checksum")));
}
