//! Decoding the record batches of a fetch response.
//!
//! [`batches`] splits the records bytes of one partition into batches ([`BatchIter`]); each
//! batch's CRC is verified before anything else in it is trusted. [`RawBatch::records`] then
//! decompresses (bounded) and returns a [`RecordIter`] that decodes one record per step (the
//! consumer's path: memory held is the decompressed section, whatever the record count);
//! [`RawBatch::decode`] collects them. Keys, values and headers are [`Bytes`] slices of the
//! fetched buffer (uncompressed batches) or of the one decompressed buffer per batch: no
//! per-field copy, and no per-header allocation (a record's headers stay one slice, a
//! [`Headers`], decoded when the application iterates them).
//!
//! Nothing read off the wire sizes an allocation: record and header counts are checked
//! against the remaining bytes (a record takes at least 7 bytes, a header 2), records and
//! headers are not materialised ahead of their reader, and decompression stops at the
//! caller's limit.
//!
//! Arithmetic on wire values wraps (offsets, timestamps) as in the Java client, so no input
//! panics, in debug builds either.

use std::iter::FusedIterator;

use bytes::Bytes;

use super::compression::{self, Compression, DecompressError};
use super::{Header, MAGIC_V2, attr, crc32c, layout};

/// The smallest encoded record: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
const MIN_RECORD_SIZE: usize = 7;
/// The smallest encoded header: key length and value length, one byte each.
const MIN_HEADER_SIZE: usize = 2;
/// Records reserved up front at most by [`RawBatch::decode`]; the vector grows past this as
/// records decode.
const MAX_INITIAL_RECORDS: usize = 1024;

/// Why a batch could not be decoded. The messages name the batch by its base offset; the
/// consumer adds the topic and partition.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The stored CRC does not match the batch's bytes.
    #[error(
        "CRC mismatch in batch at offset {base_offset}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    CrcMismatch {
        /// The batch's base offset.
        base_offset: i64,
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },

    /// The batch is a v0/v1 message set (Kafka before 0.11, or a topic still on an old
    /// `message.format.version`).
    #[error(
        "batch at offset {base_offset}: message format v0/v1 not supported (magic {magic}); \
         only record batch v2 (Kafka 0.11+) is"
    )]
    OldMessageFormat {
        /// The batch's base offset.
        base_offset: i64,
        /// The magic byte found (0 or 1).
        magic: i8,
    },

    /// The magic byte is neither 0, 1 nor 2.
    #[error("batch at offset {base_offset}: unknown magic {magic}")]
    UnknownMagic {
        /// The batch's base offset.
        base_offset: i64,
        /// The magic byte found.
        magic: i8,
    },

    /// The batch length is negative or too small for a batch header.
    #[error(
        "batch at offset {base_offset}: batch length {length} is invalid (a v2 batch has at least {min})",
        min = layout::MIN_BATCH_LENGTH
    )]
    InvalidBatchLength {
        /// The batch's base offset.
        base_offset: i64,
        /// The length found.
        length: i32,
    },

    /// The attributes name a codec this client does not know (5-7).
    #[error("batch at offset {base_offset}: unknown compression codec {codec}")]
    UnknownCompression {
        /// The batch's base offset.
        base_offset: i64,
        /// The codec id found.
        codec: i16,
    },

    /// Decompressing would produce more than the allowed bytes; decompression stopped there.
    #[error("batch at offset {base_offset}: decompressed size exceeds limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The batch's base offset.
        base_offset: i64,
        /// The limit.
        limit: usize,
    },

    /// The compressed records section is not valid for its codec.
    #[error("batch at offset {base_offset}: {codec} decompression failed: {detail}")]
    Decompression {
        /// The batch's base offset.
        base_offset: i64,
        /// The batch's codec.
        codec: Compression,
        /// The decompressor's complaint.
        detail: String,
    },

    /// The header's record count is negative.
    #[error("batch at offset {base_offset}: record count {count} is negative")]
    NegativeRecordCount {
        /// The batch's base offset.
        base_offset: i64,
        /// The count found.
        count: i32,
    },

    /// The header's record count is more than the records section could hold.
    #[error(
        "batch at offset {base_offset}: record count {count} cannot fit in {available} bytes of records"
    )]
    RecordCountTooLarge {
        /// The batch's base offset.
        base_offset: i64,
        /// The count found.
        count: i32,
        /// The (decompressed) size of the records section.
        available: usize,
    },

    /// A record is malformed: a length or count out of range, a varint too long, fields that
    /// disagree with the record's length.
    #[error("batch at offset {base_offset}, record {index}: {detail}")]
    MalformedRecord {
        /// The batch's base offset.
        base_offset: i64,
        /// The record's position in the batch (0-based).
        index: i32,
        /// What is wrong.
        detail: String,
    },

    /// Bytes remain in the records section after the last record the header counts.
    #[error(
        "batch at offset {base_offset}: {trailing} bytes left after the last of {count} records"
    )]
    TrailingBytes {
        /// The batch's base offset.
        base_offset: i64,
        /// The header's record count.
        count: i32,
        /// The bytes left over.
        trailing: usize,
    },
}

/// The 61-byte header of a v2 record batch, as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordBatchHeader {
    /// Offset of the first record (records carry deltas from it).
    pub base_offset: i64,
    /// Bytes after the batch length field.
    pub batch_length: i32,
    /// The leader epoch of the broker that appended the batch (-1 if unknown).
    pub partition_leader_epoch: i32,
    /// The format version; 2 for every batch this decoder returns.
    pub magic: i8,
    /// CRC-32C of the bytes after the CRC field (verified before the header is returned).
    pub crc: u32,
    /// Codec, timestamp type, transactional, control and delete-horizon bits.
    pub attributes: i16,
    /// Offset of the last record minus the base offset (compaction may have removed records,
    /// so it can exceed `record_count - 1`).
    pub last_offset_delta: i32,
    /// Timestamp the records' deltas are relative to (the first record's, or the delete
    /// horizon when the cleaner set one).
    pub base_timestamp: i64,
    /// The largest record timestamp, or the broker's append time for LogAppendTime batches.
    pub max_timestamp: i64,
    /// The idempotent/transactional producer's id, or -1.
    pub producer_id: i64,
    /// The producer's epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl RecordBatchHeader {
    /// Reads the header fields of `b` (at least 61 bytes).
    fn parse(b: &[u8]) -> RecordBatchHeader {
        RecordBatchHeader {
            base_offset: get_i64(b, layout::BASE_OFFSET),
            batch_length: get_i32(b, layout::BATCH_LENGTH),
            partition_leader_epoch: get_i32(b, layout::PARTITION_LEADER_EPOCH),
            magic: b[layout::MAGIC] as i8,
            crc: get_i32(b, layout::CRC) as u32,
            attributes: get_i16(b, layout::ATTRIBUTES),
            last_offset_delta: get_i32(b, layout::LAST_OFFSET_DELTA),
            base_timestamp: get_i64(b, layout::BASE_TIMESTAMP),
            max_timestamp: get_i64(b, layout::MAX_TIMESTAMP),
            producer_id: get_i64(b, layout::PRODUCER_ID),
            producer_epoch: get_i16(b, layout::PRODUCER_EPOCH),
            base_sequence: get_i32(b, layout::BASE_SEQUENCE),
            record_count: get_i32(b, layout::RECORD_COUNT),
        }
    }

    /// The batch's compression codec (attributes bits 0-2).
    pub(crate) fn compression(&self) -> Result<Compression, DecodeError> {
        let codec = self.attributes & attr::COMPRESSION_MASK;
        Compression::from_id(codec)
            .ok_or(DecodeError::UnknownCompression { base_offset: self.base_offset, codec })
    }

    #[cfg(test)]
    /// Whether the batch belongs to a transaction (attributes bit 4).
    pub(crate) fn is_transactional(&self) -> bool {
        self.attributes & attr::TRANSACTIONAL != 0
    }

    #[cfg(test)]
    /// Whether the batch holds control records, i.e. transaction markers (attributes bit 5).
    pub(crate) fn is_control(&self) -> bool {
        self.attributes & attr::CONTROL != 0
    }

    /// Whether timestamps are LogAppendTime (attributes bit 3): every record's timestamp is
    /// then `max_timestamp`.
    pub(crate) fn log_append_time(&self) -> bool {
        self.attributes & attr::LOG_APPEND_TIME != 0
    }

    /// The offset of the batch's last record (`base_offset + last_offset_delta`); the next
    /// fetch position after this batch is one past it.
    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }
}

#[inline]
fn get_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn get_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[inline]
fn get_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedRecord {
    /// The record's offset (`base_offset + offset_delta`).
    pub offset: i64,
    /// CreateTime (`base_timestamp + timestamp_delta`), or the batch's `max_timestamp` for
    /// LogAppendTime batches.
    pub timestamp: i64,
    /// The key; `None` is null, distinct from empty.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone), distinct from empty.
    pub value: Option<Bytes>,
    /// The headers, in order; keys may repeat.
    pub headers: Headers,
}

/// The type of a control record (the key of a record in a control batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlRecordType {
    /// Transaction abort marker (type 0).
    Abort,
    /// Transaction commit marker (type 1).
    Commit,
    /// Any other type (KRaft's leader change, snapshot and voter records, or a future one).
    Other(i16),
}

impl DecodedRecord {
    /// The control record type, read from the key (`version: i16, type: i16`), for a record of
    /// a control batch. `None` when the key is missing or shorter than 4 bytes (the Java
    /// client rejects such a key). Meaningless for records of non-control batches.
    pub(crate) fn control_type(&self) -> Option<ControlRecordType> {
        let key = self.key.as_deref()?;
        if key.len() < 4 {
            return None;
        }
        // key[0..2] is the key version (0); the Java client reads later versions the same way.
        Some(match get_i16(key, 2) {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        })
    }
}

/// A batch with its records decoded.
#[derive(Debug, Clone)]
pub(crate) struct DecodedBatch {
    /// The batch header.
    #[cfg_attr(not(test), allow(dead_code))] // read by the tests; kept for callers that need it
    pub header: RecordBatchHeader,
    /// The records, in offset order.
    pub records: Vec<DecodedRecord>,
}

/// A batch whose header was read and CRC verified, records not yet decoded.
///
/// Lets the consumer look at the header (control? aborted transaction? entirely before the
/// fetch position?) before paying for decompression.
#[derive(Debug, Clone)]
pub(crate) struct RawBatch {
    /// The batch header.
    pub header: RecordBatchHeader,
    /// The whole batch, header included.
    data: Bytes,
}

impl RawBatch {
    /// Decompresses (at most `max_decompressed` bytes) and decodes every record.
    pub(crate) fn decode(self, max_decompressed: usize) -> Result<DecodedBatch, DecodeError> {
        let header = self.header.clone();
        let iter = self.records(max_decompressed)?;
        let mut records = Vec::with_capacity(iter.len_hint().min(MAX_INITIAL_RECORDS));
        for r in iter {
            records.push(r?);
        }
        Ok(DecodedBatch { header, records })
    }

    /// Decompresses (at most `max_decompressed` bytes) and returns the records as an iterator
    /// that decodes one per step. The record count is checked against the section's size
    /// first; a malformed record is an error when the iterator reaches it (the records
    /// before it are good), and so are bytes left after the last record.
    pub(crate) fn records(self, max_decompressed: usize) -> Result<RecordIter, DecodeError> {
        let h = &self.header;
        let base_offset = h.base_offset;
        if h.record_count < 0 {
            return Err(DecodeError::NegativeRecordCount { base_offset, count: h.record_count });
        }
        let codec = h.compression()?;
        if h.record_count == 0 {
            // Compaction can leave empty batches (kept for producer state); there is nothing
            // to decompress.
            return Ok(RecordIter::new(h, Bytes::new()));
        }
        let section = match codec {
            Compression::None => self.data.slice(layout::HEADER_SIZE..),
            codec => {
                let compressed = &self.data[layout::HEADER_SIZE..];
                match compression::decompress(codec, compressed, max_decompressed) {
                    Ok(v) => Bytes::from(v),
                    Err(DecompressError::TooLarge) => {
                        return Err(DecodeError::DecompressedTooLarge {
                            base_offset,
                            limit: max_decompressed,
                        });
                    }
                    Err(DecompressError::Corrupt(detail)) => {
                        return Err(DecodeError::Decompression { base_offset, codec, detail });
                    }
                }
            }
        };
        if h.record_count as usize > section.len() / MIN_RECORD_SIZE {
            return Err(DecodeError::RecordCountTooLarge {
                base_offset,
                count: h.record_count,
                available: section.len(),
            });
        }
        Ok(RecordIter::new(h, section))
    }
}

/// The records of one batch, decoded one per [`Iterator::next`] from the (decompressed)
/// records section; see [`RawBatch::records`]. Ends after the first error.
#[derive(Debug)]
pub(crate) struct RecordIter {
    section: Bytes,
    pos: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    count: i32,
    index: i32,
    done: bool,
}

impl RecordIter {
    fn new(h: &RecordBatchHeader, section: Bytes) -> RecordIter {
        RecordIter {
            section,
            pos: 0,
            base_offset: h.base_offset,
            base_timestamp: h.base_timestamp,
            log_append_time: h.log_append_time().then_some(h.max_timestamp),
            count: h.record_count.max(0),
            index: 0,
            done: false,
        }
    }

    /// The records not yet returned, as the batch header counts them.
    pub(crate) fn len_hint(&self) -> usize {
        (self.count - self.index) as usize
    }

    /// The first record's control type (see [`DecodedRecord::control_type`]) without
    /// advancing: a control batch holds one record.
    pub(crate) fn peek_control_type(&self) -> Option<ControlRecordType> {
        if self.index != 0 || self.count == 0 {
            return None;
        }
        let mut r = Reader { buf: &self.section, pos: 0 };
        decode_record(&mut r, &self.section, self.base_offset, self.base_timestamp, self.log_append_time)
            .ok()?
            .control_type()
    }
}

impl Iterator for RecordIter {
    type Item = Result<DecodedRecord, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let base_offset = self.base_offset;
        if self.index == self.count {
            self.done = true;
            if self.pos != self.section.len() {
                return Some(Err(DecodeError::TrailingBytes {
                    base_offset,
                    count: self.count,
                    trailing: self.section.len() - self.pos,
                }));
            }
            return None;
        }
        let mut r = Reader { buf: &self.section, pos: self.pos };
        match decode_record(&mut r, &self.section, base_offset, self.base_timestamp, self.log_append_time) {
            Ok(record) => {
                self.pos = r.pos;
                self.index += 1;
                Some(Ok(record))
            }
            Err(detail) => {
                self.done = true;
                Some(Err(DecodeError::MalformedRecord { base_offset, index: self.index, detail }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.len_hint() + 1))
    }
}

impl FusedIterator for RecordIter {}

/// Splits a fetch response's records bytes into batches. A truncated trailing batch (fewer
/// bytes than its length says — normal in Kafka fetch responses) ends iteration without error
/// and without losing the batches before it. Each batch: CRC32C verified (mismatch → error
/// naming base offset), magic must be 2 (older magic → "message format v0/v1 not supported"),
/// record count / lengths / varints validated against the remaining bytes, decompression
/// bounded by `max_decompressed` bytes, LogAppendTime batches give every record the batch
/// `max_timestamp`, control batches decoded too (see [`DecodedRecord::control_type`]).
///
/// The iterator ends after the first error: once a batch is corrupt, where the next one
/// starts cannot be trusted.
pub(crate) fn batches(data: Bytes, max_decompressed: usize) -> BatchIter {
    BatchIter { data, pos: 0, max_decompressed, done: false, truncated: false, check_crc: true }
}

/// Iterator over the batches of a fetch response's records bytes; see [`batches`].
#[derive(Debug)]
pub(crate) struct BatchIter {
    data: Bytes,
    pos: usize,
    max_decompressed: usize,
    done: bool,
    truncated: bool,
    check_crc: bool,
}

impl BatchIter {
    /// Skips CRC verification (the consumer's `check_crcs = false`, as the Java client
    /// allows): lengths, counts and decompression stay bounded either way.
    pub(crate) fn without_crc_check(mut self) -> BatchIter {
        self.check_crc = false;
        self
    }

    /// The next batch with its header read and CRC verified, records not decoded. Mixing
    /// this with [`Iterator::next`] is fine: both advance the same position.
    pub(crate) fn next_raw(&mut self) -> Option<Result<RawBatch, DecodeError>> {
        if self.done {
            return None;
        }
        let rest = &self.data[self.pos..];
        // Base offset, length and magic: without them nothing can be said about the batch.
        if rest.len() <= layout::MAGIC {
            self.done = true;
            self.truncated = !rest.is_empty();
            return None;
        }
        let base_offset = get_i64(rest, layout::BASE_OFFSET);
        let length = get_i32(rest, layout::BATCH_LENGTH);
        if length < 0 {
            return self.fail(DecodeError::InvalidBatchLength { base_offset, length });
        }
        let total = layout::LOG_OVERHEAD + length as usize;
        if rest.len() < total {
            // The broker cut the last batch at the fetch size limit.
            self.done = true;
            self.truncated = true;
            return None;
        }
        let magic = rest[layout::MAGIC] as i8;
        match magic {
            MAGIC_V2 => {}
            0 | 1 => return self.fail(DecodeError::OldMessageFormat { base_offset, magic }),
            _ => return self.fail(DecodeError::UnknownMagic { base_offset, magic }),
        }
        if (length as usize) < layout::MIN_BATCH_LENGTH {
            return self.fail(DecodeError::InvalidBatchLength { base_offset, length });
        }
        let batch = self.data.slice(self.pos..self.pos + total);
        let header = RecordBatchHeader::parse(&batch);
        let computed = if self.check_crc { crc32c(&batch[layout::ATTRIBUTES..]) } else { header.crc };
        if computed != header.crc {
            return self.fail(DecodeError::CrcMismatch {
                base_offset,
                stored: header.crc,
                computed,
            });
        }
        self.pos += total;
        Some(Ok(RawBatch { header, data: batch }))
    }

    /// Whether iteration ended at a partial batch (a batch cut short by the fetch size
    /// limit, or fewer bytes than a batch header). A fetch whose first batch is truncated
    /// returns no batch and sets this: the batch is larger than the fetch size allowed.
    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }

    #[cfg(test)]
    /// Bytes consumed by the batches returned so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn fail<T>(&mut self, e: DecodeError) -> Option<Result<T, DecodeError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for BatchIter {
    type Item = Result<DecodedBatch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = match self.next_raw()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        match raw.decode(self.max_decompressed) {
            Ok(batch) => Some(Ok(batch)),
            Err(e) => self.fail(e),
        }
    }
}

impl FusedIterator for BatchIter {}

/// Decodes one record at `r`'s position, leaving `r` after it.
#[inline]
fn decode_record(
    r: &mut Reader<'_>,
    section: &Bytes,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<DecodedRecord, String> {
    let length = r.varint().map_err(|e| format!("record length: {e}"))?;
    if length < 0 || length as usize > r.remaining() {
        return Err(format!("record length {length} with {} bytes left", r.remaining()));
    }
    let start = r.pos;
    let end = start + length as usize;
    // Read the record's fields within its own length only.
    let mut f = Reader { buf: &r.buf[..end], pos: start };
    let _attributes = f.byte().map_err(|e| format!("attributes: {e}"))?;
    let timestamp_delta = f.varlong().map_err(|e| format!("timestamp delta: {e}"))?;
    let offset_delta = f.varint().map_err(|e| format!("offset delta: {e}"))?;
    let key = f.bytes_field(section, "key")?;
    let value = f.bytes_field(section, "value")?;
    let header_count = f.varint().map_err(|e| format!("header count: {e}"))?;
    if header_count < 0 {
        return Err(format!("header count {header_count} is negative"));
    }
    if header_count as usize > f.remaining() / MIN_HEADER_SIZE {
        return Err(format!(
            "header count {header_count} cannot fit in the {} bytes left in the record",
            f.remaining()
        ));
    }
    // Validated here, decoded when the application iterates them (`Headers`).
    let headers_start = f.pos;
    for i in 0..header_count {
        let key_len = f.varint().map_err(|e| format!("header {i} key length: {e}"))?;
        if key_len < 0 || key_len as usize > f.remaining() {
            return Err(format!(
                "header {i} key length {key_len} with {} bytes left in the record",
                f.remaining()
            ));
        }
        f.take(key_len as usize);
        let value_len = f.varint().map_err(|e| format!("header {i} value length: {e}"))?;
        if value_len < -1 || (value_len > 0 && value_len as usize > f.remaining()) {
            return Err(format!(
                "header {i} value length {value_len} with {} bytes left in the record",
                f.remaining()
            ));
        }
        if value_len > 0 {
            f.take(value_len as usize);
        }
    }
    let headers = Headers::from_validated(section.slice(headers_start..f.pos), header_count as u32);
    if f.pos != end {
        return Err(format!("record length {length} but its fields take {} bytes", f.pos - start));
    }
    r.pos = end;
    Ok(DecodedRecord {
        offset: base_offset.wrapping_add(offset_delta as i64),
        timestamp: log_append_time.unwrap_or_else(|| base_timestamp.wrapping_add(timestamp_delta)),
        key,
        value,
        headers,
    })
}

/// The headers of a consumed record, decoded on access from the fetched bytes.
///
/// A fetched record keeps its headers as one zero-copy slice of the fetch response (checked
/// when the record was decoded), so a record with very many headers costs the consumer no
/// more memory than its bytes on the wire: iterating builds each [`Header`] in turn (its value
/// is a slice of the same buffer; its key is decoded as UTF-8, invalid sequences replaced by
/// U+FFFD as the Java client does).
///
/// ```
/// use ferrokafka::consumer::{Header, Headers};
/// let headers = Headers::from(vec![
///     Header { key: "trace".into(), value: Some("a".into()) },
///     Header { key: "trace".into(), value: Some("b".into()) },
/// ]);
/// assert_eq!(headers.len(), 2);
/// assert_eq!(headers.last("trace").unwrap().value.as_deref(), Some(&b"b"[..]));
/// let keys: Vec<String> = headers.iter().map(|h| h.key).collect();
/// assert_eq!(keys, ["trace", "trace"]);
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    /// The encoded headers (per header: key length varint, key, value length varint, value),
    /// already validated.
    raw: Bytes,
    count: u32,
}

impl Headers {
    /// Headers from `raw`, `count` encoded headers that `decode` validated.
    pub(crate) fn from_validated(raw: Bytes, count: u32) -> Headers {
        Headers { raw, count }
    }

    /// The number of headers.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The headers, in the order they were written.
    pub fn iter(&self) -> HeadersIter<'_> {
        HeadersIter { headers: self, pos: 0, left: self.count }
    }

    /// The last header with this key (the Java client's `lastHeader`), if any.
    pub fn last(&self, key: &str) -> Option<Header> {
        self.iter().filter(|h| h.key == key).last()
    }

    /// Every header, decoded into a `Vec`.
    pub fn to_vec(&self) -> Vec<Header> {
        self.iter().collect()
    }
}

impl From<Vec<Header>> for Headers {
    /// Encodes `headers` (for building a [`ConsumerRecord`](crate::consumer::ConsumerRecord)
    /// by hand, in tests).
    fn from(headers: Vec<Header>) -> Headers {
        headers.into_iter().collect()
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Headers {
        let mut raw = Vec::new();
        let mut count = 0u32;
        for h in iter {
            super::encode::put_header(&mut raw, &h);
            count += 1;
        }
        Headers { raw: raw.into(), count }
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = Header;
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> HeadersIter<'a> {
        self.iter()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.count == other.count && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl PartialEq<Vec<Header>> for Headers {
    fn eq(&self, other: &Vec<Header>) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter().cloned())
    }
}

impl PartialEq<[Header]> for Headers {
    fn eq(&self, other: &[Header]) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter().cloned())
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`Headers`], decoding one [`Header`] per step.
#[derive(Clone)]
pub struct HeadersIter<'a> {
    headers: &'a Headers,
    pos: usize,
    left: u32,
}

impl Iterator for HeadersIter<'_> {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The bytes were validated when the record was decoded (or encoded by `from`), so
        // this only fails if that invariant is broken; then iteration ends.
        let h = read_header(&self.headers.raw, &mut self.pos);
        if h.is_none() {
            self.left = 0;
        }
        h
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

impl std::iter::FusedIterator for HeadersIter<'_> {}

/// The header at `*pos` of `raw` (headers that [`decode_record`] or [`Headers::from`]
/// checked), advancing `pos`; `None` if the bytes are not a header after all.
pub(crate) fn read_header(raw: &Bytes, pos: &mut usize) -> Option<Header> {
    let mut r = Reader { buf: raw, pos: *pos };
    let key_len = r.varint().ok()?;
    if key_len < 0 || key_len as usize > r.remaining() {
        return None;
    }
    let key = String::from_utf8_lossy(r.take(key_len as usize)).into_owned();
    let value = r.bytes_field(raw, "header value").ok()?;
    *pos = r.pos;
    Some(Header { key, value })
}

/// A bounds-checked cursor over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

const EOF: &str = "record ends early";

impl<'a> Reader<'a> {
    #[inline]
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, &'static str> {
        let b = *self.buf.get(self.pos).ok_or(EOF)?;
        self.pos += 1;
        Ok(b)
    }

    /// `n` bytes; the caller checked `n <= remaining()`.
    #[inline]
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    /// An unsigned LEB128 of at most 5 bytes whose value fits 32 bits.
    #[inline]
    fn uvarint32(&mut self) -> Result<u32, &'static str> {
        let b = self.byte()?;
        if b < 0x80 {
            return Ok(b as u32);
        }
        let mut v = (b & 0x7f) as u32;
        for shift in [7, 14, 21] {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u32) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        let b = self.byte()?;
        if b > 0x0f {
            return Err("varint longer than 5 bytes or past 32 bits");
        }
        Ok(v | (b as u32) << 28)
    }

    /// An unsigned LEB128 of at most 10 bytes whose value fits 64 bits.
    #[inline]
    fn uvarint64(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..63).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        let b = self.byte()?;
        if b > 0x01 {
            return Err("varlong longer than 10 bytes or past 64 bits");
        }
        Ok(v | (b as u64) << 63)
    }

    #[inline]
    fn varint(&mut self) -> Result<i32, &'static str> {
        let u = self.uvarint32()?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    #[inline]
    fn varlong(&mut self) -> Result<i64, &'static str> {
        let u = self.uvarint64()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A nullable byte field (varint length, -1 = null), as a slice of `section` (the bytes
    /// `self.buf` is a prefix of).
    #[inline]
    fn bytes_field(&mut self, section: &Bytes, what: &str) -> Result<Option<Bytes>, String> {
        let len = self.varint().map_err(|e| format!("{what} length: {e}"))?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(format!("{what} length {len} is negative"));
        }
        if len as usize > self.remaining() {
            return Err(format!(
                "{what} length {len} with {} bytes left in the record",
                self.remaining()
            ));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(Some(section.slice(start..self.pos)))
    }
}
