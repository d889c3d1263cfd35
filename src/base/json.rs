//! The crate's one JSON object reader: strict RFC 8259 syntax, allocation-free, linear in
//! the body, handing each member to a visitor that reads the values it wants with typed
//! readers and leaves the rest to be skipped (and still checked).

use super::amount::{scan_number, ScaledAmount, ScanError};
use super::error::PaymentError;
use super::uuid::{hex_value, parse_uuid, Uuid};

/// The deepest nesting [`parse_payment`](crate::base::payment::parse_payment) accepts, the payment object itself being level 1.
/// It bounds the work spent skipping unknown values; real bodies never nest at all.
pub const MAX_DEPTH: usize = 32;

// The nesting of skipped values is remembered one bit per level in a u32.
const _: () = assert!(MAX_DEPTH <= 32);

/// Reads one JSON object, handing each member to `visit` with its decoded key (`None` when
/// the key is too long to match any we look for) and a [`Member`] to read the value with. A
/// value `visit` does not read is skipped, its syntax still checked. Syntax errors come back
/// as [`PaymentError`]s converted into `E`, so callers may add errors of their own.
///
/// This is the one object loop of the crate's JSON readers: [`parse_payment`],
/// [`parse_processor_payment`] and the processor simulator's admin bodies share it.
pub(crate) fn read_object<E: From<PaymentError>>(
    body: &[u8],
    mut visit: impl FnMut(Option<&[u8]>, &mut Member<'_, '_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut reader = Reader { buf: body, pos: 0 };
    reader.skip_ws();
    match reader.peek() {
        Some(b'{') => reader.pos += 1,
        _ => return Err(PaymentError::NotAnObject.into()),
    }
    reader.skip_ws();
    if reader.peek() == Some(b'}') {
        reader.pos += 1;
    } else {
        loop {
            let mut key = Text::new();
            reader.read_key(&mut key)?;
            reader.skip_ws();
            let mut member = Member {
                reader: &mut reader,
                read: false,
            };
            visit(key.as_bytes(), &mut member)?;
            if !member.read {
                reader.skip_value()?;
            }
            reader.skip_ws();
            match reader.peek() {
                Some(b',') => {
                    reader.pos += 1;
                    reader.skip_ws();
                }
                Some(b'}') => {
                    reader.pos += 1;
                    break;
                }
                Some(_) => return Err(PaymentError::ExpectedCommaOrEnd.into()),
                None => return Err(PaymentError::Truncated.into()),
            }
        }
    }
    reader.skip_ws();
    if reader.pos != body.len() {
        return Err(PaymentError::TrailingData.into());
    }
    Ok(())
}

/// Keeps the value `read` gives for a key seen the first time; a key seen again is
/// [`PaymentError::DuplicateKey`], before its value is read.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    read: impl FnOnce() -> Result<T, PaymentError>,
) -> Result<(), PaymentError> {
    if slot.is_some() {
        return Err(PaymentError::DuplicateKey);
    }
    *slot = Some(read()?);
    Ok(())
}

/// The value of one object member, under the cursor, as [`read_object`] hands it over. Read
/// it at most once; the typed readers that answer `Ok(None)` (a value of another JSON type)
/// leave it unread, so it is then skipped and checked.
pub(crate) struct Member<'r, 'a> {
    reader: &'r mut Reader<'a>,
    read: bool,
}

impl Member<'_, '_> {
    /// A string holding a canonical UUID; [`PaymentError::BadCorrelationId`] for any other
    /// value.
    pub(crate) fn correlation_id(&mut self) -> Result<Uuid, PaymentError> {
        self.read = true;
        self.reader.read_correlation_id()
    }

    /// A JSON number converted to cents as [`parse_amount`] does, with its .NET scale.
    pub(crate) fn amount(&mut self) -> Result<ScaledAmount, PaymentError> {
        self.read = true;
        self.reader.read_amount()
    }

    /// The raw token of a JSON number (`-12`, `1.5e3`), or `None` for another type of value.
    pub(crate) fn number(&mut self) -> Result<Option<&[u8]>, PaymentError> {
        if !matches!(self.reader.peek(), Some(b'-' | b'0'..=b'9')) {
            return Ok(None);
        }
        self.read = true;
        let start = self.reader.pos;
        match scan_number(self.reader.buf, start) {
            Ok((_, end)) => {
                self.reader.pos = end;
                Ok(Some(&self.reader.buf[start..end]))
            }
            Err(ScanError::Truncated) => Err(PaymentError::Truncated),
            Err(ScanError::Malformed) => Err(PaymentError::BadValue),
        }
    }

    /// `true` or `false`, or `None` for another type of value.
    pub(crate) fn boolean(&mut self) -> Result<Option<bool>, PaymentError> {
        let word: &[u8] = match self.reader.peek() {
            Some(b't') => b"true",
            Some(b'f') => b"false",
            _ => return Ok(None),
        };
        self.read = true;
        self.reader.skip_literal(word)?;
        Ok(Some(word == b"true"))
    }

    /// Whether the value is `null` (then read); any other value is left unread.
    pub(crate) fn null(&mut self) -> Result<bool, PaymentError> {
        if self.reader.peek() != Some(b'n') {
            return Ok(false);
        }
        self.read = true;
        self.reader.skip_literal(b"null")?;
        Ok(true)
    }

    /// A string, decoded, or `None` for another type of value. Strings longer than
    /// [`TEXT_CAPACITY`] bytes decode to a [`Text`] whose `as_bytes` is `None`.
    pub(crate) fn string(&mut self) -> Result<Option<Text>, PaymentError> {
        if self.reader.peek() != Some(b'"') {
            return Ok(None);
        }
        self.read = true;
        let mut text = Text::new();
        self.reader.read_string(&mut text)?;
        Ok(Some(text))
    }
}

/// Bytes that end a run of plain ASCII inside a string: the quote, the backslash, control
/// characters (refused) and non-ASCII bytes (which need a UTF-8 check).
const STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b >= 0x80 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    table
};

/// Longest decoded string kept. A UUID is 36 bytes and the keys we look for are shorter, so
/// anything longer can only be skipped.
pub(crate) const TEXT_CAPACITY: usize = 64;

/// A decoded JSON string in a stack buffer; only whether it overflowed is kept past the
/// capacity.
pub(crate) struct Text {
    bytes: [u8; TEXT_CAPACITY],
    len: usize,
    overflow: bool,
}

impl Text {
    fn new() -> Text {
        Text {
            bytes: [0; TEXT_CAPACITY],
            len: 0,
            overflow: false,
        }
    }

    fn push(&mut self, b: u8) {
        match self.bytes.get_mut(self.len) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    fn extend(&mut self, run: &[u8]) {
        match self.bytes.get_mut(self.len..self.len + run.len()) {
            Some(slots) => {
                slots.copy_from_slice(run);
                self.len += run.len();
            }
            None => self.overflow = true,
        }
    }

    /// The decoded bytes, or `None` when they did not fit (so they match no wanted key).
    pub(crate) fn as_bytes(&self) -> Option<&[u8]> {
        if self.overflow {
            None
        } else {
            Some(&self.bytes[..self.len])
        }
    }
}

/// A cursor over the body. Invariant: `pos <= buf.len()`; every read goes through `get`, so
/// a bad input can end the parse but never index out of bounds.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes `byte` or fails with `wrong` (or `Truncated` at the end of the body).
    fn expect(&mut self, byte: u8, wrong: PaymentError) -> Result<(), PaymentError> {
        match self.peek() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(wrong),
            None => Err(PaymentError::Truncated),
        }
    }

    /// Skips JSON whitespace (space, tab, LF, CR; nothing else).
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Reads `"key"` and the `:` after it; the cursor must be on the opening quote.
    fn read_key(&mut self, key: &mut Text) -> Result<(), PaymentError> {
        match self.peek() {
            Some(b'"') => self.read_string(key)?,
            Some(_) => return Err(PaymentError::ExpectedKey),
            None => return Err(PaymentError::Truncated),
        }
        self.skip_ws();
        self.expect(b':', PaymentError::ExpectedColon)
    }

    /// Reads the string whose opening quote is under the cursor, decoding escapes into `out`,
    /// and leaves the cursor past the closing quote.
    fn read_string(&mut self, out: &mut Text) -> Result<(), PaymentError> {
        self.pos += 1;
        let start = self.pos;
        // Runs of plain ASCII are found by one table lookup per byte and copied whole; only
        // quotes, escapes, control and non-ASCII bytes leave the inner scan.
        let mut run = self.pos;
        let mut ascii = true;
        loop {
            let rest = &self.buf[self.pos..];
            self.pos += rest
                .iter()
                .position(|&b| STRING_STOP[usize::from(b)])
                .unwrap_or(rest.len());
            let b = self.buf.get(self.pos).copied().ok_or(PaymentError::Truncated)?;
            match b {
                b'"' | b'\\' => {
                    out.extend(&self.buf[run..self.pos]);
                    self.pos += 1;
                    if b == b'"' {
                        break;
                    }
                    self.read_escape(out)?;
                    run = self.pos;
                }
                0x00..=0x1f => return Err(PaymentError::BadString),
                _ => {
                    ascii = false;
                    self.pos += 1;
                }
            }
        }
        // Escapes are ASCII and a multi-byte UTF-8 sequence never holds a quote or a
        // backslash, so checking the raw span checks the decoded text.
        if ascii || std::str::from_utf8(&self.buf[start..self.pos - 1]).is_ok() {
            Ok(())
        } else {
            Err(PaymentError::BadString)
        }
    }

    /// Decodes one escape; the cursor is just past its backslash.
    fn read_escape(&mut self, out: &mut Text) -> Result<(), PaymentError> {
        let e = self.peek().ok_or(PaymentError::Truncated)?;
        self.pos += 1;
        let decoded = match e {
            b'"' | b'\\' | b'/' => e,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.read_hex4()?;
                let code = match unit {
                    0xd800..=0xdbff => {
                        // A high surrogate must be followed at once by an escaped low one.
                        self.expect(b'\\', PaymentError::BadString)?;
                        self.expect(b'u', PaymentError::BadString)?;
                        let low = self.read_hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(PaymentError::BadString);
                        }
                        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(PaymentError::BadString),
                    _ => unit,
                };
                let c = char::from_u32(code).ok_or(PaymentError::BadString)?;
                let mut utf8 = [0u8; 4];
                for &b in c.encode_utf8(&mut utf8).as_bytes() {
                    out.push(b);
                }
                return Ok(());
            }
            _ => return Err(PaymentError::BadString),
        };
        out.push(decoded);
        Ok(())
    }

    /// Reads the four hex digits of a `\u` escape.
    fn read_hex4(&mut self) -> Result<u32, PaymentError> {
        let mut unit = 0u32;
        for _ in 0..4 {
            let b = self.peek().ok_or(PaymentError::Truncated)?;
            let value = hex_value(b).ok_or(PaymentError::BadString)?;
            unit = (unit << 4) | u32::from(value);
            self.pos += 1;
        }
        Ok(unit)
    }

    /// Reads the value of `correlationId`: a string holding a canonical UUID.
    fn read_correlation_id(&mut self) -> Result<Uuid, PaymentError> {
        match self.peek() {
            Some(b'"') => {}
            Some(_) => return Err(PaymentError::BadCorrelationId),
            None => return Err(PaymentError::Truncated),
        }
        let mut text = Text::new();
        self.read_string(&mut text)?;
        text.as_bytes()
            .and_then(parse_uuid)
            .ok_or(PaymentError::BadCorrelationId)
    }

    /// Reads the value of `amount`: a JSON number, converted to cents, with its .NET scale.
    fn read_amount(&mut self) -> Result<ScaledAmount, PaymentError> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => {}
            Some(_) => return Err(PaymentError::AmountNotNumber),
            None => return Err(PaymentError::Truncated),
        }
        match scan_number(self.buf, self.pos) {
            Ok((number, end)) => {
                self.pos = end;
                Ok(ScaledAmount {
                    cents: number.to_cents()?,
                    scale: number.scale(),
                })
            }
            Err(ScanError::Truncated) => Err(PaymentError::Truncated),
            Err(ScanError::Malformed) => Err(PaymentError::AmountNotNumber),
        }
    }

    /// Skips any JSON value under the cursor (the value of a key we ignore), checking its
    /// syntax. Containers are tracked without recursion: bit `k` of `objects` says whether
    /// the container open at nesting `k` is an object (else an array).
    fn skip_value(&mut self) -> Result<(), PaymentError> {
        // The payment object holds this value, so it already uses one level.
        let mut depth = 1usize;
        let mut objects = 0u32;
        let mut scratch = Text::new();
        loop {
            // A value is due here.
            self.skip_ws();
            let mut opened = false;
            match self.peek() {
                None => return Err(PaymentError::Truncated),
                Some(open @ (b'{' | b'[')) => {
                    self.pos += 1;
                    if depth == MAX_DEPTH {
                        return Err(PaymentError::TooDeep);
                    }
                    let bit = 1u32 << (depth - 1);
                    if open == b'{' {
                        objects |= bit;
                    } else {
                        objects &= !bit;
                    }
                    depth += 1;
                    self.skip_ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        depth -= 1;
                    } else {
                        opened = true;
                        if open == b'{' {
                            scratch.len = 0;
                            self.read_key(&mut scratch)?;
                        }
                    }
                }
                Some(b'"') => {
                    scratch.len = 0;
                    self.read_string(&mut scratch)?;
                }
                Some(b'-' | b'0'..=b'9') => match scan_number(self.buf, self.pos) {
                    Ok((_, end)) => self.pos = end,
                    Err(ScanError::Truncated) => return Err(PaymentError::Truncated),
                    Err(ScanError::Malformed) => return Err(PaymentError::BadValue),
                },
                Some(b't') => self.skip_literal(b"true")?,
                Some(b'f') => self.skip_literal(b"false")?,
                Some(b'n') => self.skip_literal(b"null")?,
                Some(_) => return Err(PaymentError::BadValue),
            }
            if opened {
                continue;
            }
            // A value is complete: close containers until one wants another element.
            loop {
                if depth == 1 {
                    return Ok(());
                }
                let in_object = objects & (1u32 << (depth - 2)) != 0;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object {
                            self.skip_ws();
                            scratch.len = 0;
                            self.read_key(&mut scratch)?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    Some(b']') if !in_object => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    Some(_) => return Err(PaymentError::ExpectedCommaOrEnd),
                    None => return Err(PaymentError::Truncated),
                }
            }
        }
    }

    /// Consumes `word` (`true`, `false` or `null`) and checks it ends there.
    fn skip_literal(&mut self, word: &[u8]) -> Result<(), PaymentError> {
        let rest = &self.buf[self.pos..];
        if rest.starts_with(word) {
            self.pos += word.len();
            match self.peek() {
                None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b'}' | b']') => Ok(()),
                Some(_) => Err(PaymentError::BadValue),
            }
        } else if word.starts_with(rest) {
            Err(PaymentError::Truncated)
        } else {
            Err(PaymentError::BadValue)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_readers_leave_other_types_to_the_skipper() {
        let mut seen = Vec::new();
        let result: Result<(), PaymentError> = read_object(
            br#"{"a":true,"b":-12,"c":"x","d":[1,{"e":null}],"f":false,"n":null}"#,
            |key, value| {
                let key = key.unwrap().to_vec();
                let what = match key.as_slice() {
                    b"a" | b"f" => format!("{:?}", value.boolean()?),
                    b"n" => format!("{:?}", value.null()?),
                    b"b" => format!("{:?}", value.number()?.map(|n| n.to_vec())),
                    b"c" => format!("{:?}", value.string()?.map(|t| t.as_bytes().unwrap().to_vec())),
                    _ => format!("{:?} {:?}", value.boolean()?, value.number()?),
                };
                seen.push((String::from_utf8(key).unwrap(), what));
                Ok(())
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(seen[0].1, "Some(true)");
        assert_eq!(seen[1].1, "Some([45, 49, 50])");
        assert_eq!(seen[2].1, "Some([120])");
        assert_eq!(seen[3].1, "None None");
        assert_eq!(seen[4].1, "Some(false)");
        assert_eq!(seen[5].1, "true");
        let bad: Result<(), PaymentError> = read_object(br#"{"a":tru}"#, |_, v| v.boolean().map(drop));
        assert_eq!(bad, Err(PaymentError::BadValue));
        let skipped_bad: Result<(), PaymentError> = read_object(br#"{"a":[1,]}"#, |_, v| v.boolean().map(drop));
        assert!(skipped_bad.is_err());
    }
}
