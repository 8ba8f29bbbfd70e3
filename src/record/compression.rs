//! The compression codecs of record batches, in the exact framings the Java client writes and
//! reads.
//!
//! | codec  | id | framing |
//! |--------|----|---------|
//! | gzip   | 1  | gzip members (RFC 1952), level `compression_gzip_level` (default 6); concatenated members are read |
//! | snappy | 2  | xerial framing: `\x82SNAPPY\x00`, version 1, compatible version 1 (both i32 BE), then blocks of `[i32 BE length][raw snappy block]`, 32 KiB of input per block. Raw (unframed) snappy is read too, as some clients write it |
//! | lz4    | 3  | LZ4 frame format: magic `0x184D2204`, FLG `0x60` (version 1, independent blocks, no checksums, no content size), BD `0x40` (64 KiB blocks), HC; blocks of `[u32 LE size, high bit = stored][data]`; end mark `0u32` |
//! | zstd   | 4  | zstd frames, level `compression_zstd_level` (default 3) |
//!
//! Decompression is bounded: every codec stops with [`DecompressError::TooLarge`] as soon as
//! the output would pass the caller's limit, before allocating for it.

use std::fmt;
use std::io::{self, Read, Write};

/// Compression codec of a record batch (attributes bits 0-2): None=0, Gzip=1, Snappy=2, Lz4=3,
/// Zstd=4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1), at the producer's `compression_gzip_level` (default 6, as the Java client).
    Gzip,
    /// Snappy (id 2), in the xerial framing the Java client writes.
    Snappy,
    /// LZ4 (id 3), in the LZ4 frame format with 64 KiB independent blocks.
    Lz4,
    /// Zstandard (id 4), at the producer's `compression_zstd_level` (default 3). Brokers
    /// accept it from Kafka 2.1 on (Produce v7).
    Zstd,
}

impl Compression {
    /// The codec's name as Kafka's `compression.type` setting spells it: `none`, `gzip`,
    /// `snappy`, `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec's id in the batch attributes (bits 0-2).
    pub(crate) fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with the given attributes id, or `None` for an unknown one (5-7).
    pub(crate) fn from_id(id: i16) -> Option<Compression> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a records section could not be decompressed.
#[derive(Debug)]
pub(crate) enum DecompressError {
    /// The output would exceed the limit; nothing beyond the limit was allocated.
    TooLarge,
    /// The input is not valid for the codec.
    Corrupt(String),
}

impl From<io::Error> for DecompressError {
    fn from(e: io::Error) -> Self {
        DecompressError::Corrupt(e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------------------------

/// The compression levels of the codecs that have them (KIP-390: the Java producer's
/// `compression.gzip.level` and `compression.zstd.level`); the producer validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    /// gzip: 1 (fastest) to 9 (smallest), or -1 for zlib's default (6).
    pub gzip: i32,
    /// zstd: negative levels (fast) to 22.
    pub zstd: i32,
}

impl Default for Levels {
    /// The Java client's defaults: gzip -1 (level 6), zstd 3.
    fn default() -> Levels {
        Levels { gzip: GZIP_DEFAULT_LEVEL, zstd: ZSTD_DEFAULT_LEVEL }
    }
}

/// `compression.gzip.level`'s default: zlib's default level (6).
pub(crate) const GZIP_DEFAULT_LEVEL: i32 = -1;
/// `compression.zstd.level`'s default, the Java client's.
pub(crate) const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// `compression.lz4.level`'s default, the Java client's; it means the LZ4 fast compressor
/// (Java uses LZ4HC only for other levels).
pub(crate) const LZ4_DEFAULT_LEVEL: i32 = 9;
/// Input bytes per xerial snappy block (xerial's `SnappyOutputStream` default).
const SNAPPY_BLOCK: usize = 32 * 1024;
/// Input bytes per LZ4 frame block (Kafka's `Lz4BlockOutputStream` default).
const LZ4_BLOCK: usize = 64 * 1024;

/// The xerial snappy stream header: magic, then version 1 and compatible version 1.
pub(crate) const XERIAL_HEADER: [u8; 16] =
    [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
/// The magic that starts the xerial header.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// The LZ4 frame header Kafka writes: magic 0x184D2204 (LE), FLG 0x60 (version 01, block
/// independence, no block checksum, no content size, no content checksum), BD 0x40 (64 KiB
/// max block size), HC = (xxh32(FLG, BD) >> 8) & 0xFF. The descriptor never varies, so the
/// checksum is a constant (the tests check it against lz4_flex's frame encoder).
pub(crate) const LZ4_FRAME_HEADER: [u8; 7] = [0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82];
/// High bit of an LZ4 block size: the block is stored uncompressed.
const LZ4_UNCOMPRESSED: u32 = 0x8000_0000;


/// Appends `input` compressed with `codec` (at its level in `levels`) to `out` (which may
/// already hold a batch header). `Compression::None` appends `input` as is.
pub(crate) fn compress(codec: Compression, levels: Levels, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => {
            let level = match u32::try_from(levels.gzip) {
                Ok(l) => flate2::Compression::new(l.min(9)),
                Err(_) => flate2::Compression::default(),
            };
            let mut enc = flate2::write::GzEncoder::new(out, level);
            enc.write_all(input)?;
            enc.finish()?;
            Ok(())
        }
        Compression::Snappy => compress_snappy_xerial(input, out),
        Compression::Lz4 => compress_lz4_frame(input, out),
        Compression::Zstd => compress_zstd(input, levels.zstd, out),
    }
}

fn compress_snappy_xerial(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut enc = snap::raw::Encoder::new();
    out.reserve(XERIAL_HEADER.len() + input.len() / 2 + 64);
    out.extend_from_slice(&XERIAL_HEADER);
    for chunk in input.chunks(SNAPPY_BLOCK) {
        let max = snap::raw::max_compress_len(chunk.len());
        let len_at = out.len();
        out.resize(len_at + 4 + max, 0);
        let n = enc.compress(chunk, &mut out[len_at + 4..]).map_err(io::Error::other)?;
        out[len_at..len_at + 4].copy_from_slice(&(n as i32).to_be_bytes());
        out.truncate(len_at + 4 + n);
    }
    Ok(())
}

fn compress_lz4_frame(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.reserve(LZ4_FRAME_HEADER.len() + input.len() / 2 + 64);
    out.extend_from_slice(&LZ4_FRAME_HEADER);
    for chunk in input.chunks(LZ4_BLOCK) {
        let max = lz4_flex::block::get_maximum_output_size(chunk.len());
        let size_at = out.len();
        out.resize(size_at + 4 + max, 0);
        let n = lz4_flex::block::compress_into(chunk, &mut out[size_at + 4..])
            .map_err(io::Error::other)?;
        let size = if n < chunk.len() {
            n as u32
        } else {
            // Incompressible: store the block as is, flagged by the high bit (as Java does).
            out[size_at + 4..size_at + 4 + chunk.len()].copy_from_slice(chunk);
            chunk.len() as u32 | LZ4_UNCOMPRESSED
        };
        out[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
        out.truncate(size_at + 4 + (size & !LZ4_UNCOMPRESSED) as usize);
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // end mark; no content checksum
    Ok(())
}

/// zstd with the C library where it is built in ("zstd-c"), else with ruzstd ("pure-rust").
fn compress_zstd(input: &[u8], level: i32, out: &mut Vec<u8>) -> io::Result<()> {
    #[cfg(feature = "zstd-c")]
    return zstd_c::compress(input, level, out);
    #[cfg(all(not(feature = "zstd-c"), feature = "pure-rust"))]
    return zstd_pure::compress(input, level, out);
    #[cfg(not(any(feature = "zstd-c", feature = "pure-rust")))]
    {
        let _ = (input, level, out);
        Err(io::Error::other(ZSTD_NOT_BUILT))
    }
}

/// Why zstd fails in a build with neither zstd implementation.
#[cfg(not(any(feature = "zstd-c", feature = "pure-rust")))]
const ZSTD_NOT_BUILT: &str =
    "zstd is not built into this ferrokafka (enable the \"zstd-c\" or \"pure-rust\" feature)";

/// zstd through the C library (the `zstd` crate). Also built in every test build, where the
/// tests cross its frames with the pure-Rust decoder.
#[cfg(any(feature = "zstd-c", test))]
pub(crate) mod zstd_c {
    use std::cell::RefCell;
    use std::io;

    use super::{DecompressError, read_bounded, zstd_window_log_max};

    thread_local! {
        /// One zstd compression context per thread, with its level: creating one costs more
        /// than compressing a small batch.
        static ZSTD_CCTX: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    }

    /// Appends `input` as one zstd frame at `level` to `out`.
    pub(crate) fn compress(input: &[u8], level: i32, out: &mut Vec<u8>) -> io::Result<()> {
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        ZSTD_CCTX.with(|cell| {
            let mut slot = cell.borrow_mut();
            if !matches!(&*slot, Some((l, _)) if *l == level) {
                *slot = Some((level, zstd::bulk::Compressor::new(level)?));
            }
            let Some((_, cctx)) = slot.as_mut() else { unreachable!("set above") };
            // Compress straight into the spare capacity after what `out` already holds.
            let start = out.len() as u64;
            let mut cursor = io::Cursor::new(&mut *out);
            cursor.set_position(start);
            cctx.compress_to_buffer(input, &mut cursor)?;
            Ok(())
        })
    }

    /// Decompresses one or more zstd frames (skippable frames skipped) into at most `limit`
    /// bytes.
    pub(crate) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
        let mut dec = zstd::stream::read::Decoder::with_buffer(input)?;
        // The decoder allocates its window when it reads a frame header, before any output:
        // cap it so that a frame announcing a huge window (a bomb) is refused instead of
        // allocated.
        dec.window_log_max(zstd_window_log_max(limit))?;
        read_bounded(dec, input, limit)
    }
}

/// zstd in pure Rust (the `ruzstd` crate), for builds without a C compiler. Also built in
/// every test build.
///
/// Its encoder has one compressing level, "Fastest" (close to the C library's level 1), so
/// every `compression_zstd_level` gives that level; the frames are standard zstd, read by any
/// decoder (the Java client's, the broker's). The decoder reads every frame the C library
/// writes, under the same limits: the window cap before allocation, and `limit` on the output.
#[cfg(any(feature = "pure-rust", test))]
// With "zstd-c" on too, the C library is the one used outside the tests.
#[cfg_attr(all(feature = "zstd-c", not(test)), allow(dead_code))]
pub(crate) mod zstd_pure {
    use std::io::{self, Read};

    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
    use ruzstd::encoding::{CompressionLevel, FrameCompressor};

    use super::{DecompressError, zstd_window_log_max};

    /// Appends `input` as one zstd frame to `out`; `level` is not used (see the module doc).
    pub(crate) fn compress(input: &[u8], level: i32, out: &mut Vec<u8>) -> io::Result<()> {
        let _ = level;
        out.reserve(input.len() / 2 + 64);
        let mut enc = FrameCompressor::new(CompressionLevel::Fastest);
        enc.set_source(input);
        enc.set_drain(out);
        enc.compress();
        Ok(())
    }

    /// Decompresses one or more zstd frames (skippable frames skipped) into at most `limit`
    /// bytes, the buffer never growing past `limit + 1`.
    pub(crate) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
        let max_window = 1u64 << zstd_window_log_max(limit);
        let guess = input.len().saturating_mul(4).clamp(1024, 1 << 20).min(limit.saturating_add(1));
        let mut out = Vec::with_capacity(guess);
        let mut rest = input;
        let mut decoder = FrameDecoder::new();
        decoder.set_max_window_size(max_window);
        while !rest.is_empty() {
            let mut frame = match StreamingDecoder::new_with_decoder(&mut rest, &mut decoder) {
                Ok(frame) => frame,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    rest = rest.get(length as usize..).ok_or_else(|| {
                        DecompressError::Corrupt("zstd: truncated skippable frame".into())
                    })?;
                    continue;
                }
                Err(e) => return Err(DecompressError::Corrupt(format!("zstd: {e}"))),
            };
            let room = (limit - out.len()) as u64 + 1;
            (&mut frame).take(room).read_to_end(&mut out)?;
            if out.len() > limit {
                return Err(DecompressError::TooLarge);
            }
            if !frame.decoder.is_finished() {
                return Err(DecompressError::Corrupt("zstd: truncated frame".into()));
            }
            let stored = frame.decoder.get_checksum_from_data();
            if stored.is_some() && stored != frame.decoder.get_calculated_checksum() {
                return Err(DecompressError::Corrupt("zstd: content checksum mismatch".into()));
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Decompression
// ---------------------------------------------------------------------------------------------

/// Decompresses a records section compressed with `codec`, producing at most `limit` bytes.
///
/// `Compression::None` is not expected here (the caller slices uncompressed records without a
/// copy); it returns a copy of `input`, bounded like the rest.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(DecompressError::TooLarge);
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), input, limit),
        Compression::Snappy => decompress_snappy(input, limit),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), input, limit),
        Compression::Zstd => decompress_zstd(input, limit),
    }
}

/// zstd with the C library where it is built in, else with ruzstd.
fn decompress_zstd(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    #[cfg(feature = "zstd-c")]
    return zstd_c::decompress(input, limit);
    #[cfg(all(not(feature = "zstd-c"), feature = "pure-rust"))]
    return zstd_pure::decompress(input, limit);
    #[cfg(not(any(feature = "zstd-c", feature = "pure-rust")))]
    {
        let _ = (input, limit);
        Err(DecompressError::Corrupt(ZSTD_NOT_BUILT.into()))
    }
}

/// The largest zstd window (as a power of two) accepted when decompressing at most `limit`
/// bytes: 8 MiB (log 23) at least, the window every decoder should support; 128 MiB (log 27)
/// at most, zstd's and the Java client's default. Either decoder refuses a frame announcing a
/// larger window at its header, before allocating the window.
#[cfg_attr(not(any(feature = "zstd-c", feature = "pure-rust", test)), allow(dead_code))]
fn zstd_window_log_max(limit: usize) -> u32 {
    let log = usize::BITS - limit.saturating_sub(1).leading_zeros(); // ceil(log2(limit))
    log.clamp(23, 27)
}

/// Reads `reader` to its end into a new buffer, failing once more than `limit` bytes come out.
/// The buffer grows with the output, never past `limit + 1` bytes.
fn read_bounded<R: Read>(
    reader: R,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    // A first guess at the output size; the buffer grows as needed.
    let guess = input.len().saturating_mul(4).clamp(1024, 1 << 20).min(limit.saturating_add(1));
    let mut out = Vec::with_capacity(guess);
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge);
    }
    Ok(out)
}

/// Snappy in xerial framing, or raw (one unframed block) when the xerial magic is absent.
fn decompress_snappy(input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut dec = snap::raw::Decoder::new();
    if !(input.len() >= XERIAL_HEADER.len() && input.starts_with(&XERIAL_MAGIC)) {
        let mut out = Vec::new();
        snappy_block(&mut dec, input, &mut out, limit)?;
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut rest = &input[XERIAL_HEADER.len()..];
    while !rest.is_empty() {
        // Streams may be concatenated: a header may follow a block.
        if rest.starts_with(&XERIAL_MAGIC) {
            if rest.len() < XERIAL_HEADER.len() {
                return Err(DecompressError::Corrupt("truncated xerial snappy header".into()));
            }
            rest = &rest[XERIAL_HEADER.len()..];
            continue;
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(DecompressError::Corrupt(format!(
                "truncated xerial snappy block length ({} bytes left)",
                rest.len()
            )));
        };
        let len = i32::from_be_bytes(*len);
        if len < 0 || len as usize > tail.len() {
            return Err(DecompressError::Corrupt(format!(
                "xerial snappy block length {len} with {} bytes left",
                tail.len()
            )));
        }
        let (block, tail) = tail.split_at(len as usize);
        snappy_block(&mut dec, block, &mut out, limit)?;
        rest = tail;
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking its declared length against `limit` first.
fn snappy_block(
    dec: &mut snap::raw::Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), DecompressError> {
    let n =
        snap::raw::decompress_len(block).map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    if n > limit.saturating_sub(out.len()) {
        return Err(DecompressError::TooLarge);
    }
    let start = out.len();
    out.resize(start + n, 0);
    let got = dec
        .decompress(block, &mut out[start..])
        .map_err(|e| DecompressError::Corrupt(e.to_string()))?;
    out.truncate(start + got);
    Ok(())
}
