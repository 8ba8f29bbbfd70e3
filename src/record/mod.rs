//! The Kafka record-batch v2 codec ("magic 2", Kafka 0.11+): [`encode`] builds the batches the
//! producer sends, [`decode`] splits and decodes the batches a fetch returns, [`compression`]
//! owns the five codecs and their exact framings.
//!
//! # Wire format
//!
//! A batch is a 61-byte header followed by the records section (compressed as a whole when the
//! codec is not `None`). All integers are big-endian.
//!
//! ```text
//! offset  field                  type    notes
//!      0  baseOffset             int64   0 from a producer; the broker assigns it
//!      8  batchLength            int32   bytes after this field (total length - 12)
//!     12  partitionLeaderEpoch   int32   -1 from a producer
//!     16  magic                  int8    2
//!     17  crc                    uint32  CRC-32C of bytes 21..end
//!     21  attributes             int16   bits 0-2 codec, 3 LogAppendTime, 4 transactional,
//!                                        5 control, 6 delete-horizon set
//!     23  lastOffsetDelta        int32
//!     27  baseTimestamp          int64   first record's timestamp
//!     35  maxTimestamp           int64
//!     43  producerId             int64   -1 without idempotence
//!     51  producerEpoch          int16   -1 without idempotence
//!     53  baseSequence           int32   -1 without idempotence
//!     57  recordCount            int32
//!     61  records...
//! ```
//!
//! Each record (varint = zigzag LEB128 of an i32, varlong of an i64):
//!
//! ```text
//! length varint (bytes after this field) | attributes int8 (0) | timestampDelta varlong |
//! offsetDelta varint | keyLength varint (-1 = null) | key | valueLength varint (-1 = null) |
//! value | headerCount varint | per header: keyLength varint, key (UTF-8), valueLength varint
//! (-1 = null), value
//! ```

// The producer (encode) and the consumer (decode) are this module's users; until both are
// wired in, parts of the API are used by the tests only.


pub(crate) mod compression;
pub(crate) mod decode;
pub(crate) mod encode;
#[cfg(test)]
mod tests;

#[allow(unused_imports)] // re-exported for the producer, consumer and (later) the public API
pub use compression::Compression;
pub use decode::{Headers, HeadersIter};
#[allow(unused_imports)]
pub(crate) use decode::{
    BatchIter, ControlRecordType, DecodeError, DecodedBatch, DecodedRecord, RawBatch,
    RecordBatchHeader, RecordIter, batches,
};
#[allow(unused_imports)]
pub(crate) use encode::{BatchWriter, EncodedBatch};

use bytes::Bytes;

/// A record header: keys may repeat; values may be null.
///
/// Headers keep the order they were written in; a record may carry several headers with the
/// same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's key. Kafka writes it as UTF-8; when a batch from another client carries
    /// invalid UTF-8, the decoder replaces the bad sequences with U+FFFD, as the Java client
    /// does.
    pub key: String,
    /// The header's value; `None` is a null value (length -1 on the wire), distinct from an
    /// empty one.
    pub value: Option<Bytes>,
}

/// Byte offsets of the batch header fields (see the module docs).
pub(crate) mod layout {
    pub(crate) const BASE_OFFSET: usize = 0;
    pub(crate) const BATCH_LENGTH: usize = 8;
    pub(crate) const PARTITION_LEADER_EPOCH: usize = 12;
    pub(crate) const MAGIC: usize = 16;
    pub(crate) const CRC: usize = 17;
    pub(crate) const ATTRIBUTES: usize = 21;
    pub(crate) const LAST_OFFSET_DELTA: usize = 23;
    pub(crate) const BASE_TIMESTAMP: usize = 27;
    pub(crate) const MAX_TIMESTAMP: usize = 35;
    pub(crate) const PRODUCER_ID: usize = 43;
    pub(crate) const PRODUCER_EPOCH: usize = 51;
    pub(crate) const BASE_SEQUENCE: usize = 53;
    pub(crate) const RECORD_COUNT: usize = 57;
    /// Size of the batch header; the records start here.
    pub(crate) const HEADER_SIZE: usize = 61;
    /// baseOffset + batchLength: the bytes not counted by batchLength.
    pub(crate) const LOG_OVERHEAD: usize = 12;
    /// The smallest batchLength a v2 batch can have (a header and no records).
    pub(crate) const MIN_BATCH_LENGTH: usize = HEADER_SIZE - LOG_OVERHEAD;
}

/// Batch attribute bits.
pub(crate) mod attr {
    /// Bits 0-2: the compression codec.
    pub(crate) const COMPRESSION_MASK: i16 = 0x07;
    /// Bit 3: timestamps are LogAppendTime (set by the broker), not CreateTime.
    pub(crate) const LOG_APPEND_TIME: i16 = 0x08;
    /// Bit 4: the batch belongs to a transaction.
    pub(crate) const TRANSACTIONAL: i16 = 0x10;
    /// Bit 5: the batch holds control records (transaction markers).
    pub(crate) const CONTROL: i16 = 0x20;
}

/// The magic byte of record batch v2.
pub(crate) const MAGIC_V2: i8 = 2;

/// CRC-32C (Castagnoli) of `data`, as stored in the batch header.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Zigzag varint writing and sizing (the reading side lives in `decode`, next to its
/// bounds checks).
pub(crate) mod varint {
    /// Zigzag-encodes an i32.
    #[inline]
    pub(crate) fn zigzag32(v: i32) -> u32 {
        ((v << 1) ^ (v >> 31)) as u32
    }

    /// Zigzag-encodes an i64.
    #[inline]
    pub(crate) fn zigzag64(v: i64) -> u64 {
        ((v << 1) ^ (v >> 63)) as u64
    }

    /// Bytes of the unsigned LEB128 encoding of `v`.
    #[inline]
    pub(crate) fn uvarint_len(v: u64) -> usize {
        // 1 for 0..=127, 2 for 128..=16383, ...: ceil(bits / 7) with at least one bit.
        let bits = 64 - (v | 1).leading_zeros() as usize;
        bits.div_ceil(7)
    }

    /// Bytes of the zigzag varint encoding of `v`.
    #[inline]
    pub(crate) fn varint_len(v: i32) -> usize {
        uvarint_len(zigzag32(v) as u64)
    }

    /// Bytes of the zigzag varlong encoding of `v`.
    #[inline]
    pub(crate) fn varlong_len(v: i64) -> usize {
        uvarint_len(zigzag64(v))
    }

    /// Appends the unsigned LEB128 encoding of `v`.
    #[inline]
    pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    /// Appends the zigzag varint encoding of `v`.
    #[inline]
    pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i32) {
        put_uvarint(buf, zigzag32(v) as u64);
    }

    /// Appends the zigzag varlong encoding of `v`.
    #[inline]
    pub(crate) fn put_varlong(buf: &mut Vec<u8>, v: i64) {
        put_uvarint(buf, zigzag64(v));
    }
}
