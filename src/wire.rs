//! Bounded decoding primitives for the responses we decode ourselves (Fetch, Produce,
//! Metadata, ApiVersions, SASL, the consumer protocol): every read checks the bytes left, and
//! an array count is checked against the smallest encoding of its elements and a hard limit
//! of [`MAX_ARRAY_LEN`] (see [`array_len`]) before anything is reserved.

use bytes::{Buf, Bytes};
use kafka_protocol::protocol::StrBytes;

/// What was wrong with a frame.
pub(crate) type DecodeResult<T> = std::result::Result<T, String>;

pub(crate) fn need(r: &Bytes, n: usize) -> DecodeResult<()> {
    if r.remaining() < n {
        Err(format!("{n} more bytes needed, {} left", r.remaining()))
    } else {
        Ok(())
    }
}

pub(crate) fn i16_(r: &mut Bytes) -> DecodeResult<i16> {
    need(r, 2)?;
    Ok(r.get_i16())
}

pub(crate) fn i32_(r: &mut Bytes) -> DecodeResult<i32> {
    need(r, 4)?;
    Ok(r.get_i32())
}

pub(crate) fn i64_(r: &mut Bytes) -> DecodeResult<i64> {
    need(r, 8)?;
    Ok(r.get_i64())
}

pub(crate) fn uvarint(r: &mut Bytes) -> DecodeResult<u64> {
    let mut v = 0u64;
    for shift in (0..35).step_by(7) {
        need(r, 1)?;
        let b = r.get_u8();
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("unsigned varint longer than 5 bytes".into())
}

pub(crate) fn skip_tags(r: &mut Bytes) -> DecodeResult<()> {
    let n = uvarint(r)?;
    for _ in 0..n {
        uvarint(r)?;
        let size = uvarint(r)? as usize;
        need(r, size)?;
        r.advance(size);
    }
    Ok(())
}

/// The most elements an array read off the wire may claim, whatever its bytes: Kafka's own
/// decoders (4.4) refuse larger arrays before allocating, and so do we.
pub(crate) const MAX_ARRAY_LEN: usize = 1_000_000;

/// An array's element count (`None` for a null array), refused (with an error naming `what`)
/// when it exceeds [`MAX_ARRAY_LEN`] or when the remaining bytes could not hold that many
/// elements of at least `min_size` bytes each — the smallest encoding of one element, so a
/// `Vec` reserved from the count holds at most `size_of::<T>() / min_size` times the bytes
/// that are really there.
pub(crate) fn array_len(r: &mut Bytes, flexible: bool, min_size: usize, what: &str) -> DecodeResult<Option<usize>> {
    let n: i64 = if flexible { uvarint(r)? as i64 - 1 } else { i32_(r)? as i64 };
    if n < 0 {
        return if n == -1 { Ok(None) } else { Err(format!("{what}: negative array length {n}")) };
    }
    let n = n as usize;
    if n > MAX_ARRAY_LEN {
        return Err(format!("{what}: array of {n} elements exceeds the limit of {MAX_ARRAY_LEN}"));
    }
    if n.saturating_mul(min_size.max(1)) > r.remaining() {
        return Err(format!(
            "{what}: array of {n} elements needs at least {} bytes, {} remaining",
            n.saturating_mul(min_size.max(1)),
            r.remaining()
        ));
    }
    Ok(Some(n))
}

pub(crate) fn string(r: &mut Bytes, flexible: bool) -> DecodeResult<StrBytes> {
    let n: i64 = if flexible { uvarint(r)? as i64 - 1 } else { i16_(r)? as i64 };
    if n < 0 {
        return Err("null string where a name is required".into());
    }
    need(r, n as usize)?;
    StrBytes::from_utf8(r.split_to(n as usize)).map_err(|_| "string is not UTF-8".into())
}

pub(crate) fn bytes(r: &mut Bytes, flexible: bool) -> DecodeResult<Option<Bytes>> {
    let n: i64 = if flexible { uvarint(r)? as i64 - 1 } else { i32_(r)? as i64 };
    if n < 0 {
        return if n == -1 { Ok(None) } else { Err(format!("negative records length {n}")) };
    }
    need(r, n as usize)?;
    Ok(Some(r.split_to(n as usize)))
}


/// A nullable string (`None` for null).
pub(crate) fn nullable_string(r: &mut Bytes, flexible: bool) -> DecodeResult<Option<StrBytes>> {
    let n: i64 = if flexible { uvarint(r)? as i64 - 1 } else { i16_(r)? as i64 };
    if n < 0 {
        return Ok(None);
    }
    need(r, n as usize)?;
    StrBytes::from_utf8(r.split_to(n as usize)).map(Some).map_err(|_| "string is not UTF-8".into())
}

/// A boolean byte.
pub(crate) fn bool_(r: &mut Bytes) -> DecodeResult<bool> {
    need(r, 1)?;
    Ok(r.get_u8() != 0)
}

/// An array of i32 (broker ids).
pub(crate) fn i32_array(r: &mut Bytes, flexible: bool) -> DecodeResult<Vec<i32>> {
    let n = array_len(r, flexible, 4, "int32 array")?.unwrap_or(0);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(i32_(r)?);
    }
    Ok(v)
}
