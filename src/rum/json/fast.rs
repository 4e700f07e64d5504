//! The fast path of the JSON count: one hand-written pass over the bytes that accepts only
//! what the serde walk in [`super`] surely accepts, and counts the same items.
//!
//! Why: the serde walk (visitors, `IgnoredAny`, `MapAccess` per key) was ~40 k of the ~136 k
//! instructions of a whole RUM request (callgrind, 4 KB OTLP JSON body). This pass does the
//! same checks on plain bytes.
//!
//! How it stays exactly as strict: it never refuses anything itself. Whenever a body is
//! malformed, or merely unusual (an escape in a key, an id or a timestamp; a timestamp that is
//! not a plain integer or a decimal string of at most 19 digits; nesting past [`MAX_JSON_DEPTH`];
//! a repeated spine key), it answers `None` and the caller runs the serde walk, which then
//! gives its own answer. So a refusal, and every quirk the serde walk accepts, stay decided by
//! that walk; this pass only has to be right when it says `Some`: then the body is one JSON
//! object in the grammar serde_json reads, with the spine, ids and timestamps the walk checks.
//! The unit tests cross-check both on every fixture.

use super::{classify, Key, Level, MAX_JSON_DEPTH};
use crate::rum::outline::TopLevel;
use crate::rum::Signal;

/// The items of `body` when this pass can vouch for it (see the module header), with the
/// outline [`crate::rum::outline::scan`] would have noted: this pass also holds the body to
/// [`MAX_JSON_DEPTH`], so that pass is only needed when this one gives up. `None` to leave the
/// body to the serde walk. `body` is already known to be UTF-8.
pub(super) fn count(signal: Signal, body: &[u8]) -> Option<(u64, TopLevel)> {
    let mut scan = Scan {
        body,
        at: 0,
        signal,
        top: TopLevel::default(),
    };
    scan.ws();
    let items = scan.node(Level::Request, 1)?;
    scan.ws();
    (scan.at == body.len()).then_some((items, scan.top))
}

/// A cursor over the body.
struct Scan<'a> {
    /// The whole body.
    body: &'a [u8],
    /// The next byte to read.
    at: usize,
    /// Which spine keys count.
    signal: Signal,
    /// The top-level object's outline, as `outline::scan` notes it.
    top: TopLevel,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    /// JSON whitespace, as serde_json reads it.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at.checked_add(word.len())?;
        (self.body.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `null`, consumed when it is next.
    fn null(&mut self) -> bool {
        self.literal(b"null").is_some()
    }

    /// One message of the spine (`{` next) at nesting `depth`; the items below it, 1 for an
    /// item.
    fn node(&mut self, level: Level, depth: usize) -> Option<u64> {
        self.eat(b'{')?;
        self.ws();
        let mut items = 0u64;
        let mut seen_children = false;
        if self.eat(b'}').is_none() {
            loop {
                let key = self.plain_string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                let value_at = self.at;
                match classify(self.signal, level, key) {
                    Key::Children(_) => {
                        if seen_children {
                            return None;
                        }
                        seen_children = true;
                        items = self.list(level.child(), depth + 1)?;
                    }
                    Key::Object => {
                        if !self.null() {
                            if self.peek()? != b'{' {
                                return None;
                            }
                            self.skip_value(depth)?;
                        }
                    }
                    Key::Id(bytes) => self.hex_id(bytes)?,
                    Key::Nanos => self.fixed64()?,
                    Key::Other => self.skip_value(depth)?,
                }
                if depth == 1 {
                    self.note_top(value_at);
                }
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        self.ws();
                        if depth == 1 {
                            self.top.commas += 1;
                        }
                    }
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(match level {
            Level::Item => 1,
            _ => items,
        })
    }

    /// Notes the first array or object directly inside the top-level object, as
    /// `outline::scan` does: the member value that started at `value_at` and just ended.
    fn note_top(&mut self, value_at: usize) {
        let container = matches!(self.body.get(value_at), Some(b'[' | b'{'));
        if container && self.top.open.is_none() {
            self.top.open = Some(value_at);
            self.top.close = Some(self.at - 1);
        }
    }

    /// A repeated message field: `null` or an array (at nesting `depth`) of objects; the sum
    /// of their items.
    fn list(&mut self, level: Level, depth: usize) -> Option<u64> {
        if self.null() {
            return Some(0);
        }
        self.eat(b'[')?;
        self.ws();
        let mut total = 0u64;
        if self.eat(b']').is_some() {
            return Some(0);
        }
        loop {
            total = total.saturating_add(self.node(level, depth + 1)?);
            self.ws();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.ws();
                }
                b']' => {
                    self.at += 1;
                    return Some(total);
                }
                _ => return None,
            }
        }
    }

    /// `null`, or a string without escapes that is empty or exactly `bytes` bytes in hex.
    fn hex_id(&mut self, bytes: usize) -> Option<()> {
        if self.null() {
            return Some(());
        }
        let id = self.plain_string()?;
        (id.is_empty() || (id.len() == bytes * 2 && id.iter().all(u8::is_ascii_hexdigit)))
            .then_some(())
    }

    /// `null`, an integer of at most 19 digits, or such digits in a string: all below 2^64.
    fn fixed64(&mut self) -> Option<()> {
        if self.null() {
            return Some(());
        }
        if self.peek()? == b'"' {
            let digits = self.plain_string()?;
            return (!digits.is_empty()
                && digits.len() <= 19
                && digits.iter().all(u8::is_ascii_digit))
            .then_some(());
        }
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.body.get(start) == Some(&b'0');
        // A fraction or an exponent: left to the walk, which reads it as a float.
        let more = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        ((1..=19).contains(&digits) && !leading_zero && !more).then_some(())
    }

    /// A string (`"` next) without any escape; its contents. Control characters refused.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        if self.string_stop()? != b'"' {
            return None;
        }
        self.body.get(start..self.at - 1)
    }

    /// A string (`"` next) with the escapes serde_json's `ignore_str` takes.
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            if self.string_stop()? == b'"' {
                return Some(());
            }
            match self.peek()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    let hex = self.body.get(self.at + 1..self.at + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 5;
                }
                _ => return None,
            }
        }
    }

    /// Moves past the next quote or backslash of a string and says which byte it was;
    /// `None` at a control character or the end. Eight bytes at a time (the zero-byte trick
    /// serde_json's own string scan uses): a byte-at-a-time search was half of this pass, and
    /// `memchr2` cost more to set up than to search the short strings (`"key"`, `"value"`)
    /// an OTLP body is made of (callgrind).
    fn string_stop(&mut self) -> Option<u8> {
        const ONES: u64 = u64::from_ne_bytes([1; 8]);
        let rest = self.body.get(self.at..)?;
        let mut chunks = rest.chunks_exact(8);
        let mut skipped = 0;
        for chunk in chunks.by_ref() {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            // Bytes below 0x20, and bytes equal to a quote or a backslash: each sets the high
            // bit of its byte. Borrows can only mark bytes after the first hit.
            let hits = (word.wrapping_sub(ONES * 0x20) & !word)
                | (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash);
            let hits = hits & (ONES << 7);
            if hits != 0 {
                return self.stop_at(skipped + (hits.trailing_zeros() / 8) as usize);
            }
            skipped += 8;
        }
        let i = chunks
            .remainder()
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.stop_at(skipped + i)
    }

    /// [`Self::string_stop`]'s answer for the stop byte `i` bytes ahead.
    fn stop_at(&mut self, i: usize) -> Option<u8> {
        let stop = *self.body.get(self.at + i)?;
        self.at += i + 1;
        (stop >= 0x20).then_some(stop)
    }

    /// A number in the grammar of serde_json's `ignore_number`.
    fn skip_number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        // `01`: serde_json refuses a digit after a leading zero; so does the caller, which
        // expects a separator next.
        Some(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// Any JSON value, the member of an object at nesting `base`, checked and skipped without
    /// recursion: the open arrays and objects are a stack of bits (1: object). Any array or
    /// object past [`MAX_JSON_DEPTH`] in all, empty ones too, gives up (to the pass that
    /// refuses it).
    fn skip_value(&mut self, base: usize) -> Option<()> {
        let mut open: u128 = 0;
        let mut depth = 0usize;
        loop {
            // A value is next.
            let opened = match self.peek()? {
                b'{' => Some(true),
                b'[' => Some(false),
                b'"' => {
                    self.skip_string()?;
                    None
                }
                b't' => self.literal(b"true").map(|_| None)?,
                b'f' => self.literal(b"false").map(|_| None)?,
                b'n' => self.literal(b"null").map(|_| None)?,
                b'-' | b'0'..=b'9' => self.skip_number().map(|_| None)?,
                _ => return None,
            };
            if let Some(object) = opened {
                if base + depth + 1 > MAX_JSON_DEPTH {
                    return None;
                }
                self.at += 1;
                self.ws();
                let empty = self.eat(if object { b'}' } else { b']' }).is_some();
                if !empty {
                    open = (open << 1) | u128::from(object);
                    depth += 1;
                    if object {
                        self.member_key()?;
                    }
                    continue;
                }
            }
            // A value ended: a separator, or closing brackets, follow.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.ws();
                let object = open & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        self.ws();
                        if object {
                            self.member_key()?;
                        }
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                self.at += 1;
                open >>= 1;
                depth -= 1;
            }
        }
    }

    /// The key and colon of an object member inside a skipped value; whitespace after.
    fn member_key(&mut self) -> Option<()> {
        self.plain_string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }
}

#[cfg(test)]
mod tests;
