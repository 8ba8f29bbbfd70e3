//! Building record batches: [`BatchWriter`] appends records to one growable buffer and
//! [`BatchWriter::finish`] compresses, writes the header and the CRC.
//!
//! The hot path ([`BatchWriter::append`]) writes varints straight into the batch buffer: the
//! record's length prefix is computed first (exact, from the same arithmetic as
//! [`BatchWriter::record_size`]), so nothing is written twice or shifted, and nothing is
//! allocated beyond growing the one buffer.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::compression::{self, Compression};
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};
use super::{Header, MAGIC_V2, attr, crc32c, layout};

/// Initial buffer capacity of [`BatchWriter::new`]; the buffer doubles as records arrive.
const DEFAULT_CAPACITY: usize = 1024;

/// Builds one record batch (v2). Records are appended uncompressed after a reserved 61-byte
/// header; [`finish`](BatchWriter::finish) turns them into an [`EncodedBatch`].
pub(crate) struct BatchWriter {
    /// `[61 reserved header bytes][records...]`.
    buf: Vec<u8>,
    compression: Compression,
    levels: compression::Levels,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
}

impl fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchWriter")
            .field("compression", &self.compression)
            .field("base_timestamp", &self.base_timestamp)
            .field("records", &self.count)
            .field("size", &self.buf.len())
            .finish()
    }
}

/// Bytes of a nullable byte field: its varint length (-1 for null) and its bytes.
#[inline]
fn bytes_field_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(clamp_len(b.len())) + b.len(),
    }
}

/// A length as the i32 the wire carries; lengths past i32::MAX (which `append` refuses) size
/// as i32::MAX, whose varint has the maximum 5 bytes anyway.
#[inline]
fn clamp_len(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A length as the i32 the wire carries, for writing.
#[inline]
fn wire_len(n: usize, what: &str) -> i32 {
    match i32::try_from(n) {
        Ok(n) => n,
        Err(_) => panic!("record {what} of {n} bytes exceeds the protocol's limit of i32::MAX"),
    }
}

/// One header as a record carries it: key length varint, key, value length varint (-1 for
/// null), value.
#[inline]
pub(crate) fn put_header(buf: &mut Vec<u8>, h: &Header) {
    put_varint(buf, wire_len(h.key.len(), "header key"));
    buf.extend_from_slice(h.key.as_bytes());
    put_bytes_field(buf, h.value.as_deref(), "header value");
}

#[inline]
fn put_bytes_field(buf: &mut Vec<u8>, b: Option<&[u8]>, what: &str) {
    match b {
        None => buf.push(1), // zigzag(-1)
        Some(b) => {
            put_varint(buf, wire_len(b.len(), what));
            buf.extend_from_slice(b);
        }
    }
}

impl BatchWriter {
    /// Starts a batch; `base_timestamp` is the first record's timestamp (ms).
    pub(crate) fn new(compression: Compression, base_timestamp: i64) -> BatchWriter {
        BatchWriter::with_capacity(compression, base_timestamp, DEFAULT_CAPACITY)
    }

    /// Starts a batch whose buffer has room for `capacity` bytes (header included) before it
    /// grows: the producer passes `batch.size` so a full batch never reallocates.
    pub(crate) fn with_capacity(
        compression: Compression,
        base_timestamp: i64,
        capacity: usize,
    ) -> BatchWriter {
        let mut buf = Vec::with_capacity(capacity.max(layout::HEADER_SIZE));
        buf.resize(layout::HEADER_SIZE, 0);
        BatchWriter {
            buf,
            compression,
            levels: compression::Levels::default(),
            base_timestamp,
            max_timestamp: i64::MIN,
            count: 0,
        }
    }

    /// Compresses at `levels` instead of the defaults (the producer's
    /// `compression_gzip_level` / `compression_zstd_level`).
    pub(crate) fn with_levels(mut self, levels: compression::Levels) -> BatchWriter {
        self.levels = levels;
        self
    }

    /// The record's body size: everything after its length prefix.
    #[inline]
    fn body_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let mut n = 1 // attributes
            + varlong_len(timestamp.wrapping_sub(self.base_timestamp))
            + varint_len(self.count)
            + bytes_field_len(key)
            + bytes_field_len(value)
            + varint_len(clamp_len(headers.len()));
        for h in headers {
            n += varint_len(clamp_len(h.key.len()))
                + h.key.len()
                + bytes_field_len(h.value.as_deref());
        }
        n
    }

    /// Bytes the record would add to the uncompressed batch (exact varint-encoded size incl.
    /// its length prefix), if appended next.
    pub(crate) fn record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = self.body_size(timestamp, key, value, headers);
        varint_len(clamp_len(body)) + body
    }

    /// Appends one record (offset delta = current count); never allocates per record beyond
    /// growing the one buffer.
    ///
    /// # Panics
    ///
    /// When a key, value, header or the whole record is longer than `i32::MAX` bytes, or the
    /// batch already holds `i32::MAX` records: the wire cannot express either. The producer
    /// rejects records above `max.request.size` long before.
    pub(crate) fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        assert!(self.count < i32::MAX, "a record batch holds at most i32::MAX records");
        let body = self.body_size(timestamp, key, value, headers);
        let body_len = wire_len(body, "");
        let buf = &mut self.buf;
        buf.reserve(5 + body);
        let start = buf.len();
        put_varint(buf, body_len);
        buf.push(0); // record attributes: unused
        put_varlong(buf, timestamp.wrapping_sub(self.base_timestamp));
        put_varint(buf, self.count);
        put_bytes_field(buf, key, "key");
        put_bytes_field(buf, value, "value");
        put_varint(buf, wire_len(headers.len(), "header count"));
        for h in headers {
            put_header(buf, h);
        }
        debug_assert_eq!(buf.len() - start, varint_len(body_len) + body);
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// The number of records appended so far.
    pub(crate) fn record_count(&self) -> i32 {
        self.count
    }

    /// Uncompressed size so far, including the 61-byte batch header.
    pub(crate) fn size(&self) -> usize {
        self.buf.len()
    }

    /// Closes the batch: compresses the records section (if a codec is set), writes the header
    /// (baseOffset 0, partitionLeaderEpoch -1, magic 2, attributes with codec and CreateTime,
    /// lastOffsetDelta, first/max timestamp, producerId -1, producerEpoch -1, baseSequence -1,
    /// count) and the CRC. Returns the encoded batch.
    ///
    /// Fails with [`crate::Error::InvalidArgument`] for a batch without records (brokers
    /// refuse them) or one whose encoded size does not fit the i32 batch length, and when the
    /// compressor fails (which in-memory compression does not do in practice).
    pub(crate) fn finish(self) -> Result<EncodedBatch, crate::Error> {
        if self.count == 0 {
            return Err(crate::Error::InvalidArgument(
                "a record batch needs at least one record".into(),
            ));
        }
        let uncompressed_size = self.buf.len();
        let mut data = match self.compression {
            Compression::None => self.buf,
            codec => {
                let records = &self.buf[layout::HEADER_SIZE..];
                let mut out = Vec::with_capacity(layout::HEADER_SIZE + records.len() / 2 + 64);
                out.resize(layout::HEADER_SIZE, 0);
                compression::compress(codec, self.levels, records, &mut out).map_err(|e| {
                    crate::Error::InvalidArgument(format!(
                        "{codec} compression of a record batch failed: {e}"
                    ))
                })?;
                out
            }
        };
        let batch_length = i32::try_from(data.len() - layout::LOG_OVERHEAD).map_err(|_| {
            crate::Error::InvalidArgument(format!(
                "a record batch of {} bytes exceeds the protocol's limit",
                data.len()
            ))
        })?;
        let h = &mut data[..layout::HEADER_SIZE];
        put_i64(h, layout::BASE_OFFSET, 0);
        put_i32(h, layout::BATCH_LENGTH, batch_length);
        put_i32(h, layout::PARTITION_LEADER_EPOCH, -1);
        h[layout::MAGIC] = MAGIC_V2 as u8;
        put_i16(h, layout::ATTRIBUTES, self.compression.id()); // CreateTime: bit 3 clear
        put_i32(h, layout::LAST_OFFSET_DELTA, self.count - 1);
        put_i64(h, layout::BASE_TIMESTAMP, self.base_timestamp);
        put_i64(h, layout::MAX_TIMESTAMP, self.max_timestamp);
        put_i64(h, layout::PRODUCER_ID, -1);
        put_i16(h, layout::PRODUCER_EPOCH, -1);
        put_i32(h, layout::BASE_SEQUENCE, -1);
        put_i32(h, layout::RECORD_COUNT, self.count);
        write_crc(&mut data);
        Ok(EncodedBatch { data: Bytes::from(data), record_count: self.count, uncompressed_size })
    }
}

#[inline]
fn put_i16(b: &mut [u8], at: usize, v: i16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn put_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn put_i64(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Computes the CRC-32C of everything after the CRC field and stores it.
fn write_crc(batch: &mut [u8]) {
    let crc = crc32c(&batch[layout::ATTRIBUTES..]);
    batch[layout::CRC..layout::CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A finished record batch, ready to go into a Produce request.
///
/// Cloning is cheap (the bytes are shared).
#[derive(Clone)]
pub(crate) struct EncodedBatch {
    data: Bytes,
    record_count: i32,
    uncompressed_size: usize,
}

impl fmt::Debug for EncodedBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedBatch")
            .field("len", &self.data.len())
            .field("records", &self.record_count)
            .field("producer_id", &self.producer_id())
            .field("producer_epoch", &self.producer_epoch())
            .field("base_sequence", &self.base_sequence())
            .finish()
    }
}

impl EncodedBatch {
    /// The encoded batch (a cheap clone of the shared bytes).
    pub(crate) fn bytes(&self) -> Bytes {
        self.data.clone()
    }

    /// The encoded size in bytes (compressed, header included).
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// The number of records in the batch.
    pub(crate) fn record_count(&self) -> i32 {
        self.record_count
    }

    /// The size the batch had before compression (header included); equal to
    /// [`len`](Self::len) when uncompressed.
    pub(crate) fn uncompressed_size(&self) -> usize {
        self.uncompressed_size
    }

    /// The producer id in the header (-1 until [`set_producer_state`](Self::set_producer_state)).
    pub(crate) fn producer_id(&self) -> i64 {
        i64::from_be_bytes(
            self.data[layout::PRODUCER_ID..layout::PRODUCER_ID + 8].try_into().unwrap(),
        )
    }

    /// The producer epoch in the header (-1 until set).
    pub(crate) fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(
            self.data[layout::PRODUCER_EPOCH..layout::PRODUCER_EPOCH + 2].try_into().unwrap(),
        )
    }

    /// The base sequence in the header (-1 until set).
    pub(crate) fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(
            self.data[layout::BASE_SEQUENCE..layout::BASE_SEQUENCE + 4].try_into().unwrap(),
        )
    }

    #[cfg(test)]
    /// Whether the transactional attribute bit is set.
    pub(crate) fn is_transactional(&self) -> bool {
        let a = i16::from_be_bytes(
            self.data[layout::ATTRIBUTES..layout::ATTRIBUTES + 2].try_into().unwrap(),
        );
        a & attr::TRANSACTIONAL != 0
    }

    /// Sets producer id, epoch, base sequence and the transactional attribute bit, and
    /// recomputes the CRC. Called when the batch is first drained (idempotence) and again only
    /// if the epoch is bumped.
    ///
    /// Copy-on-write: when [`bytes`](Self::bytes) handed out a clone that is still alive (a
    /// request in flight), this batch gets new bytes and the clone keeps the old ones.
    pub(crate) fn set_producer_state(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        transactional: bool,
    ) {
        let mut b: BytesMut = match std::mem::take(&mut self.data).try_into_mut() {
            Ok(b) => b,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        put_i64(&mut b, layout::PRODUCER_ID, producer_id);
        put_i16(&mut b, layout::PRODUCER_EPOCH, producer_epoch);
        put_i32(&mut b, layout::BASE_SEQUENCE, base_sequence);
        let mut a = i16::from_be_bytes([b[layout::ATTRIBUTES], b[layout::ATTRIBUTES + 1]]);
        if transactional {
            a |= attr::TRANSACTIONAL;
        } else {
            a &= !attr::TRANSACTIONAL;
        }
        put_i16(&mut b, layout::ATTRIBUTES, a);
        write_crc(&mut b);
        self.data = b.freeze();
    }
}
