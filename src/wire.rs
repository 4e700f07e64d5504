//! A minimal, allocation-free protobuf wire reader over a borrowed buffer, shared by the
//! remote_write scanners and the OTLP walker (`rum/proto.rs`): the hot path walks the
//! decompressed body with it and borrows every string instead of building owned messages.
//!
//! It accepts exactly what prost accepts for the messages read here: tags 1 to 2^29-1, varints
//! of at most 10 bytes, the four wire types plus groups (skipped, as prost skips an unknown
//! group), and length prefixes that stay inside the buffer. Callers refuse a known field that
//! arrives with the wrong wire type, as prost does. Groups spend prost's recursion budget
//! ([`RECURSION_LIMIT`]) the way prost does, from the budget left to the message being read.

/// The body is not well-formed protobuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireError;

/// One field's value; length-delimited payloads borrow from the buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 5.
    Fixed32(u32),
    /// Wire type 2.
    Len(&'a [u8]),
    /// Wire type 3: a whole group, already skipped up to its end (never a known field here).
    Group,
}

impl<'a> Value<'a> {
    /// The payload of a length-delimited field, or a wire error for any other wire type.
    #[inline]
    pub(crate) fn bytes(self) -> Result<&'a [u8], WireError> {
        match self {
            Value::Len(b) => Ok(b),
            _ => Err(WireError),
        }
    }
}

/// Iterates over the fields of one message.
pub(crate) struct Fields<'a> {
    /// What is left of the message.
    rest: &'a [u8],
    /// prost's recursion budget left for this message's fields: nested messages and skipped
    /// groups each spend one, and nothing may be skipped or entered at 0.
    recursion: u32,
}

/// prost's `RECURSION_LIMIT`: the budget of a top-level message.
pub(crate) const RECURSION_LIMIT: u32 = 100;

impl<'a> Fields<'a> {
    /// Reads the fields of `message` with a top-level message's budget.
    #[inline]
    pub(crate) fn new(message: &'a [u8]) -> Fields<'a> {
        Fields::nested(message, RECURSION_LIMIT)
    }

    /// Reads the fields of a message decoded with `recursion` budget left (prost's
    /// `DecodeContext`): a top-level message has [`RECURSION_LIMIT`], its sub-messages one less.
    #[inline]
    pub(crate) fn nested(message: &'a [u8], recursion: u32) -> Fields<'a> {
        Fields {
            rest: message,
            recursion,
        }
    }

    /// The next (tag, value), `None` at the end of the message. After an error the iterator
    /// is exhausted, so no loop over it can spin on a malformed field.
    #[inline(always)]
    pub(crate) fn next_field(&mut self) -> Option<Result<(u32, Value<'a>), WireError>> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.read_field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }

    #[inline(always)]
    fn read_field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let (tag, wire_type) = read_key(&mut self.rest)?;
        let value = match wire_type {
            0 => Value::Varint(read_varint(&mut self.rest)?),
            1 => Value::Fixed64(u64::from_le_bytes(take_array(&mut self.rest)?)),
            2 => Value::Len(read_len(&mut self.rest)?),
            3 => {
                skip_group(&mut self.rest, tag, self.recursion)?;
                Value::Group
            }
            5 => Value::Fixed32(u32::from_le_bytes(take_array(&mut self.rest)?)),
            _ => return Err(WireError),
        };
        Ok((tag, value))
    }
}

/// Field key: (tag, wire type).
#[inline(always)]
fn read_key(buf: &mut &[u8]) -> Result<(u32, u8), WireError> {
    let key = read_varint(buf)?;
    let key = u32::try_from(key).map_err(|_| WireError)?;
    let tag = key >> 3;
    if tag == 0 {
        return Err(WireError);
    }
    Ok((tag, (key & 7) as u8))
}

/// A base-128 varint of at most 10 bytes (the 10th may only carry the top bit of a u64).
#[inline(always)]
pub(crate) fn read_varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    // One byte is by far the common case (tags, small lengths, small refs).
    if let Some((&b, rest)) = buf.split_first() {
        if b < 0x80 {
            *buf = rest;
            return Ok(u64::from(b));
        }
    }
    read_varint_slow(buf)
}

#[inline(never)]
fn read_varint_slow(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or(WireError)?;
        *buf = rest;
        if i == 9 && b > 1 {
            return Err(WireError);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(WireError)
}

#[inline(always)]
fn read_len<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], WireError> {
    let len = usize::try_from(read_varint(buf)?).map_err(|_| WireError)?;
    let (payload, rest) = buf.split_at_checked(len).ok_or(WireError)?;
    *buf = rest;
    Ok(payload)
}

#[inline(always)]
fn take_array<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], WireError> {
    let (head, rest) = buf.split_first_chunk::<N>().ok_or(WireError)?;
    *buf = rest;
    Ok(*head)
}

/// Skips a group whose start key (with `tag`) was just read, up to its matching end key, with
/// `recursion` budget left (prost's `skip_field`: refused at 0; every field inside is skipped
/// with one less, so even a varint is refused at 0). Every iteration consumes at least one
/// byte, and the recursion depth is bounded by the budget.
fn skip_group(buf: &mut &[u8], tag: u32, recursion: u32) -> Result<(), WireError> {
    let inner = recursion.checked_sub(1).ok_or(WireError)?;
    loop {
        let (t, wire_type) = read_key(buf)?;
        if wire_type == 4 && t == tag {
            return Ok(());
        }
        if inner == 0 {
            return Err(WireError);
        }
        match wire_type {
            0 => drop(read_varint(buf)?),
            1 => drop(take_array::<8>(buf)?),
            2 => drop(read_len(buf)?),
            3 => skip_group(buf, t, inner)?,
            5 => drop(take_array::<4>(buf)?),
            _ => return Err(WireError),
        }
    }
}
