//! Payments as the domain sees them: correlationIds, exact cents, processors, and the JSON
//! reader for the body of `POST /payments` (ours, and the processors').

use crate::base::iso8601::{parse_iso_ms_assume_utc, Round};

/// A correlationId: the 16 bytes of a canonical UUID, compared and hashed as bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Uuid(pub [u8; 16]);

/// Money in integer cents; no floating point ever touches an amount.
pub type Cents = u64;

/// The largest amount a payment may carry, in cents (10 000 000.00): it keeps every slot's
/// amount in 32 bits and every sum far from overflow.
pub const MAX_CENTS: Cents = 1_000_000_000;

/// One of the two payment processors. The discriminant is the index used in the segment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum Processor {
    /// The cheaper one (5% by default).
    Default = 0,
    /// The expensive one (15% by default).
    Fallback = 1,
}

impl Processor {
    /// Both processors, in index order.
    pub const ALL: [Processor; 2] = [Processor::Default, Processor::Fallback];

    /// Index of this processor in per-processor arrays (0 or 1).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The processor with this index; `None` when the index is not 0 or 1.
    pub fn from_index(index: usize) -> Option<Processor> {
        Processor::ALL.get(index).copied()
    }

    /// The name used in JSON answers (`"default"`, `"fallback"`).
    pub fn name(self) -> &'static str {
        match self {
            Processor::Default => "default",
            Processor::Fallback => "fallback",
        }
    }
}

/// The body of `POST /payments`, read and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The client's correlationId.
    pub id: Uuid,
    /// The amount, rounded half-to-even to whole cents; always in `1..=MAX_CENTS`.
    pub cents: Cents,
}

/// Why a payment body was refused. Each variant has a one-sentence [`reason`](Self::reason)
/// fit to be sent back inside a JSON string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentError {
    /// The body (after whitespace) does not start with `{`, or is empty.
    NotAnObject,
    /// The body ended before the object, a string, a number or a literal was complete.
    Truncated,
    /// Where an object member was due, something other than a quoted key was found.
    ExpectedKey,
    /// A key was not followed by `:`.
    ExpectedColon,
    /// A member was followed by something other than `,` or the closing bracket.
    ExpectedCommaOrEnd,
    /// A string holds a raw control character, a bad escape, a lone surrogate or invalid UTF-8.
    BadString,
    /// The value of an ignored key is not valid JSON (a bad number or literal, say).
    BadValue,
    /// Values are nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Something other than whitespace follows the object.
    TrailingData,
    /// The same key (after decoding escapes) appears twice.
    DuplicateKey,
    /// There is no `correlationId` key.
    MissingCorrelationId,
    /// There is no `amount` key.
    MissingAmount,
    /// `correlationId` is not a string holding a canonical UUID.
    BadCorrelationId,
    /// `amount` is not a JSON number (a string, `null`, `NaN`, `+1`, `01`...).
    AmountNotNumber,
    /// `amount` is zero or negative once rounded to cents.
    AmountNotPositive,
    /// `amount` is above [`MAX_CENTS`] once rounded to cents.
    AmountTooLarge,
    /// There is no `requestedAt` key (processor bodies only).
    MissingRequestedAt,
    /// `requestedAt` is not a string holding an ISO-8601 timestamp (processor bodies only).
    BadRequestedAt,
}

impl PaymentError {
    /// One human sentence saying what is wrong; it holds no quote or backslash, so it can be
    /// pasted into a JSON string as is.
    pub fn reason(self) -> &'static str {
        match self {
            PaymentError::NotAnObject => "body must be a JSON object",
            PaymentError::Truncated => "body ended before the JSON object was complete",
            PaymentError::ExpectedKey => "expected a quoted key in the JSON object",
            PaymentError::ExpectedColon => "expected a colon after a key in the JSON object",
            PaymentError::ExpectedCommaOrEnd => {
                "expected a comma or a closing bracket after a value in the JSON object"
            }
            PaymentError::BadString => "a JSON string holds a control character, a bad escape or invalid UTF-8",
            PaymentError::BadValue => "a value in the JSON object is not valid JSON",
            PaymentError::TooDeep => "JSON values are nested too deeply",
            PaymentError::TrailingData => "unexpected data after the JSON object",
            PaymentError::DuplicateKey => "a key appears twice in the JSON object",
            PaymentError::MissingCorrelationId => "correlationId is missing",
            PaymentError::MissingAmount => "amount is missing",
            PaymentError::BadCorrelationId => {
                "correlationId must be a UUID string like 4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"
            }
            PaymentError::AmountNotNumber => "amount must be a JSON number like 19.90",
            PaymentError::AmountNotPositive | PaymentError::AmountTooLarge => {
                "amount must be a positive number with at most 10000000.00"
            }
            PaymentError::MissingRequestedAt => "requestedAt is missing",
            PaymentError::BadRequestedAt => {
                "requestedAt must be an ISO-8601 timestamp string like 2025-07-10T12:34:56.000Z"
            }
        }
    }
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for PaymentError {}

/// The deepest nesting [`parse_payment`] accepts, the payment object itself being level 1.
/// It bounds the work spent skipping unknown values; real bodies never nest at all.
pub const MAX_DEPTH: usize = 32;

// The nesting of skipped values is remembered one bit per level in a u32.
const _: () = assert!(MAX_DEPTH <= 32);

// Any scaled amount with more integer digits than this is above MAX_CENTS, whatever rounding
// does; it also keeps the integer part of a scaled amount within u64.
const MAX_CENTS_DIGITS: i64 = 10;
const _: () = assert!(MAX_CENTS < 10_000_000_000);

/// Reads the body of `POST /payments`: exactly one JSON object holding a `correlationId`
/// (a canonical UUID string) and an `amount` (a JSON number), in any order, each once; other
/// keys are skipped whatever their value, down to [`MAX_DEPTH`]. Syntax is strict JSON
/// (RFC 8259): no trailing commas, no leading zeros, no `NaN`, raw control characters refused
/// in strings. Keys and the correlationId may use escapes (`"correlation\u0049d"`).
///
/// Allocation-free; the work is linear in `body.len()`. The first problem met is returned.
pub fn parse_payment(body: &[u8]) -> Result<PaymentRequest, PaymentError> {
    let mut id = None;
    let mut cents = None;
    read_object(body, |key, value| {
        match key {
            Some(b"correlationId") => {
                if id.is_some() {
                    return Err(PaymentError::DuplicateKey);
                }
                id = Some(value.correlation_id()?);
            }
            Some(b"amount") => {
                if cents.is_some() {
                    return Err(PaymentError::DuplicateKey);
                }
                cents = Some(value.amount()?.cents);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(PaymentRequest {
        id: id.ok_or(PaymentError::MissingCorrelationId)?,
        cents: cents.ok_or(PaymentError::MissingAmount)?,
    })
}

/// An amount as a payment processor keeps it: exact cents, plus how many decimals its .NET
/// `decimal` carries (`19.9` keeps one, `19.90` and `19.905` two, `2e1` none), since the
/// processor prints amounts and sums with that many decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaledAmount {
    /// The amount rounded half-to-even to whole cents, as [`parse_amount`] gives it.
    pub cents: Cents,
    /// Decimals kept, 0 to 2: those written (after the exponent), capped at 2 by the
    /// rounding. `cents` is always a multiple of `10^(2 - scale)`.
    pub scale: u8,
}

/// The body a payment processor receives on `POST /payments`, read and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessorPayment {
    /// The correlationId.
    pub id: Uuid,
    /// The amount as the processor stores it.
    pub amount: ScaledAmount,
    /// `requestedAt` in milliseconds since the Unix epoch (finer digits dropped).
    pub requested_at_ms: i64,
}

/// Reads the body of a processor's `POST /payments`: one JSON object with `correlationId`,
/// `amount` and `requestedAt`, each once, other keys skipped. Like the official processor's
/// JSON binding (System.Text.Json with web defaults), key names match whatever their ASCII
/// case, and a `requestedAt` with no zone is read as UTC. Otherwise as strict as
/// [`parse_payment`]: the amount must be a JSON number, positive, at most [`MAX_CENTS`].
///
/// Allocation-free; linear in `body.len()`. The first problem met is returned.
pub fn parse_processor_payment(body: &[u8]) -> Result<ProcessorPayment, PaymentError> {
    let mut id = None;
    let mut amount = None;
    let mut requested_at_ms = None;
    read_object(body, |key, value| {
        let Some(key) = key else { return Ok(()) };
        if key.eq_ignore_ascii_case(b"correlationId") {
            if id.is_some() {
                return Err(PaymentError::DuplicateKey);
            }
            id = Some(value.correlation_id()?);
        } else if key.eq_ignore_ascii_case(b"amount") {
            if amount.is_some() {
                return Err(PaymentError::DuplicateKey);
            }
            amount = Some(value.amount()?);
        } else if key.eq_ignore_ascii_case(b"requestedAt") {
            if requested_at_ms.is_some() {
                return Err(PaymentError::DuplicateKey);
            }
            let text = value.string()?.ok_or(PaymentError::BadRequestedAt)?;
            let text = text.as_bytes().ok_or(PaymentError::BadRequestedAt)?;
            requested_at_ms =
                Some(parse_iso_ms_assume_utc(text, Round::Down).map_err(|_| PaymentError::BadRequestedAt)?);
        }
        Ok(())
    })?;
    Ok(ProcessorPayment {
        id: id.ok_or(PaymentError::MissingCorrelationId)?,
        amount: amount.ok_or(PaymentError::MissingAmount)?,
        requested_at_ms: requested_at_ms.ok_or(PaymentError::MissingRequestedAt)?,
    })
}

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

/// Reads a UUID in its canonical 8-4-4-4-12 form (36 bytes, hex digits of either case, dashes
/// at 8, 13, 18 and 23). No braces, no `urn:uuid:` prefix; version and variant bits are not
/// checked, so the nil UUID passes. `None` for anything else.
pub fn parse_uuid(text: &[u8]) -> Option<Uuid> {
    // Where each of the 16 bytes' two hex digits start in the canonical text.
    const DIGIT_PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let text: &[u8; 36] = text.try_into().ok()?;
    if text[8] != b'-' || text[13] != b'-' || text[18] != b'-' || text[23] != b'-' {
        return None;
    }
    let mut bytes = [0u8; 16];
    // Invalid digits map to 0xff; OR-ing every digit lets one test at the end catch any,
    // keeping the loop free of early exits.
    let mut seen = 0u8;
    for (byte, &at) in bytes.iter_mut().zip(DIGIT_PAIRS.iter()) {
        let (high, low) = (HEX_DIGIT[usize::from(text[at])], HEX_DIGIT[usize::from(text[at + 1])]);
        seen |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    if seen > 0x0f {
        return None;
    }
    Some(Uuid(bytes))
}

/// The value of each byte as a hex digit of either case; 0xff when it is not one.
const HEX_DIGIT: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

impl Uuid {
    /// Writes the canonical lowercase 8-4-4-4-12 form, the one [`parse_uuid`] reads back.
    pub fn write_canonical(&self, out: &mut [u8; 36]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut at = 0;
        for (i, &byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[at] = b'-';
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
    }
}

/// Converts one JSON number token (the whole of `text`, no surrounding whitespace) into
/// cents, exactly: any number of digits, fraction and exponent, rounded half-to-even at the
/// second decimal as .NET's `decimal.Round` does (19.905 → 1990, 19.915 → 1992, 19.9050001 →
/// 1991). No floating point is involved.
///
/// Errors: [`PaymentError::AmountNotNumber`] when `text` is not exactly one JSON number,
/// [`PaymentError::AmountNotPositive`] when it is negative or rounds to 0,
/// [`PaymentError::AmountTooLarge`] when it rounds above [`MAX_CENTS`]. The work is linear in
/// `text.len()` whatever the exponent says (`1e999999999` is refused at once).
pub fn parse_amount(text: &[u8]) -> Result<Cents, PaymentError> {
    match scan_number(text, 0) {
        Ok((number, end)) if end == text.len() => number.to_cents(),
        _ => Err(PaymentError::AmountNotNumber),
    }
}

/// Appends `cents` as a JSON number with exactly two decimals: `19.90`, `0.05`,
/// `415542345.98`.
pub fn write_amount(cents: Cents, out: &mut Vec<u8>) {
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(cents / 100).as_bytes());
    // Both digits are below 10, so the narrowing cannot lose anything.
    let fraction = (cents % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + fraction / 10, b'0' + fraction % 10]);
}

/// The value of one hex digit of either case.
fn hex_value(b: u8) -> Option<u8> {
    match HEX_DIGIT[usize::from(b)] {
        0xff => None,
        value => Some(value),
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

/// A JSON number token cut into its parts; every slice holds ASCII digits only.
struct Number<'a> {
    negative: bool,
    /// The integer digits: `0` alone or no leading zero.
    int: &'a [u8],
    /// The digits after `.`, possibly none.
    frac: &'a [u8],
    exp_negative: bool,
    /// The exponent's digits, possibly none (no exponent).
    exp: &'a [u8],
}

/// Why a number token could not be read.
enum ScanError {
    /// The input ended where the grammar needs more.
    Truncated,
    /// A byte breaks the JSON number grammar, or the token runs into a non-delimiter.
    Malformed,
}

/// Cuts the JSON number starting at `buf[start]` into its parts and returns them with the
/// index just past the token. The token must be followed by the end of input, whitespace,
/// `,`, `}` or `]`, so `01`, `1.5x` and `1e5e5` are malformed here rather than a confusing
/// error at the next byte.
fn scan_number(buf: &[u8], start: usize) -> Result<(Number<'_>, usize), ScanError> {
    fn digits_from(buf: &[u8], mut i: usize) -> usize {
        while matches!(buf.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        i
    }
    // At least one digit must start at `from`.
    fn require_digits(buf: &[u8], from: usize) -> Result<usize, ScanError> {
        match buf.get(from) {
            Some(b'0'..=b'9') => Ok(digits_from(buf, from + 1)),
            Some(_) => Err(ScanError::Malformed),
            None => Err(ScanError::Truncated),
        }
    }

    let mut i = start;
    let negative = buf.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let int_start = i;
    i = match buf.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits_from(buf, i + 1),
        Some(_) => return Err(ScanError::Malformed),
        None => return Err(ScanError::Truncated),
    };
    let int = &buf[int_start..i];
    let mut frac: &[u8] = &[];
    if buf.get(i) == Some(&b'.') {
        let frac_start = i + 1;
        i = require_digits(buf, frac_start)?;
        frac = &buf[frac_start..i];
    }
    let mut exp_negative = false;
    let mut exp: &[u8] = &[];
    if matches!(buf.get(i), Some(b'e' | b'E')) {
        i += 1;
        match buf.get(i) {
            Some(b'+') => i += 1,
            Some(b'-') => {
                exp_negative = true;
                i += 1;
            }
            _ => {}
        }
        let exp_start = i;
        i = require_digits(buf, exp_start)?;
        exp = &buf[exp_start..i];
    }
    match buf.get(i) {
        None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b'}' | b']') => Ok((
            Number {
                negative,
                int,
                frac,
                exp_negative,
                exp,
            },
            i,
        )),
        Some(_) => Err(ScanError::Malformed),
    }
}

impl Number<'_> {
    /// How many decimals .NET's `decimal` keeps for this number once rounded to cents: the
    /// fraction digits less the exponent, between 0 and 2 (`19.9` → 1, `1.990e1` → 2,
    /// `2e1` → 0, `19.905` → 2).
    fn scale(&self) -> u8 {
        const EXP_CAP: i64 = 1 << 40;
        let mut exp: i64 = 0;
        for &b in self.exp {
            exp = (exp * 10 + i64::from(b - b'0')).min(EXP_CAP);
        }
        if self.exp_negative {
            exp = -exp;
        }
        let written = i64::try_from(self.frac.len()).unwrap_or(EXP_CAP);
        // Clamped to 0..=2, so the narrowing cannot lose anything.
        (written - exp).clamp(0, 2) as u8
    }

    /// The exact value in cents, rounded half-to-even.
    ///
    /// The digits of `int` then `frac` form one digit string D, the value being 0.D × 10^p
    /// for some p. Scaling by 100 and counting from D's first nonzero digit gives `point`,
    /// the number of D's digits left of the decimal point of the amount in cents. Those
    /// digits (zero-padded) are the whole cents; the next one and whether anything nonzero
    /// follows decide the rounding. Since `point` is checked against the digits of MAX_CENTS
    /// before any loop, the exponent's value never sets the amount of work.
    fn to_cents(&self) -> Result<Cents, PaymentError> {
        let (int, frac) = (self.int, self.frac);
        let total = int.len() + frac.len();
        let digit = |i: usize| -> u64 {
            let b = if i < int.len() { int[i] } else { frac[i - int.len()] };
            u64::from(b - b'0')
        };
        let leading_zeros = (0..total).take_while(|&i| digit(i) == 0).count();
        if self.negative || leading_zeros == total {
            return Err(PaymentError::AmountNotPositive);
        }
        // Past 2^40 any exponent already puts the amount out of range, so saturate there:
        // the sums below then stay far from i64 overflow.
        const EXP_CAP: i64 = 1 << 40;
        let mut exp: i64 = 0;
        for &b in self.exp {
            exp = (exp * 10 + i64::from(b - b'0')).min(EXP_CAP);
        }
        if self.exp_negative {
            exp = -exp;
        }
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX / 4);
        let point = as_i64(int.len()) - as_i64(leading_zeros) + 2 + exp;
        if point > MAX_CENTS_DIGITS {
            return Err(PaymentError::AmountTooLarge);
        }
        if point < 0 {
            // Below a tenth of a cent: rounds to zero.
            return Err(PaymentError::AmountNotPositive);
        }
        // 0 <= point <= MAX_CENTS_DIGITS here.
        let whole_digits = point as usize;
        let mut whole: u64 = 0;
        for i in leading_zeros..leading_zeros + whole_digits {
            whole = whole * 10 + if i < total { digit(i) } else { 0 };
        }
        let round_at = leading_zeros + whole_digits;
        let half = if round_at < total { digit(round_at) } else { 0 };
        let sticky = (round_at + 1..total).any(|i| digit(i) != 0);
        let up = half > 5 || (half == 5 && (sticky || whole % 2 == 1));
        let cents = whole + u64::from(up);
        if cents == 0 {
            Err(PaymentError::AmountNotPositive)
        } else if cents > MAX_CENTS {
            Err(PaymentError::AmountTooLarge)
        } else {
            Ok(cents)
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

    const ID: &str = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";
    const ID_BYTES: [u8; 16] = [
        0x4a, 0x79, 0x01, 0xb8, 0x7d, 0x26, 0x4d, 0x9d, 0xaa, 0x19, 0x4d, 0xc1, 0xc7, 0xcf, 0x60, 0xb3,
    ];

    fn ok(cents: Cents) -> Result<PaymentRequest, PaymentError> {
        Ok(PaymentRequest {
            id: Uuid(ID_BYTES),
            cents,
        })
    }

    /// Replaces `ID` in a body template with the test UUID.
    fn body(template: &str) -> String {
        template.replace("ID", ID)
    }

    /// A table of (body template, expected result); `ID` in a template is the test UUID.
    macro_rules! bodies {
        ($($template:expr => $expected:expr,)*) => {
            $(
                let text = body($template);
                assert_eq!(parse_payment(text.as_bytes()), $expected, "body: {text}");
            )*
        };
    }

    #[test]
    fn reads_well_formed_bodies() {
        use PaymentError::*;
        bodies! {
            r#"{"correlationId":"ID","amount":19.90}"# => ok(1990),
            r#"{"amount":19.90,"correlationId":"ID"}"# => ok(1990),
            r#"{"correlationId": "ID", "amount": 19.9}"# => ok(1990),
            " \t\r\n{ \t\r\n\"correlationId\" \t\r\n: \t\r\n\"ID\" \t\r\n, \t\r\n\"amount\" \t\r\n: \t\r\n19.90 \t\r\n} \t\r\n" => ok(1990),
            r#"{"correlationId":"4A7901B8-7D26-4D9D-AA19-4DC1C7CF60B3","amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","amount":1}"# => ok(100),
            r#"{"correlationId":"ID","amount":0.01}"# => ok(1),
            r#"{"correlationId":"ID","amount":10000000}"# => ok(MAX_CENTS),
            r#"{"correlationId":"ID","amount":10000000.004}"# => ok(MAX_CENTS),
            r#"{"correlationId":"ID","amount":10000000.005}"# => ok(MAX_CENTS),
            r#"{"correlationId":"ID","amount":10000000.0051}"# => Err(AmountTooLarge),
            r#"{"correlationId":"ID","amount":10000000.01}"# => Err(AmountTooLarge),
            r#"{"correlationId":"ID","amount":1e300}"# => Err(AmountTooLarge),
            r#"{"correlationId":"ID","amount":0}"# => Err(AmountNotPositive),
            r#"{"correlationId":"ID","amount":-0}"# => Err(AmountNotPositive),
            r#"{"correlationId":"ID","amount":-1}"# => Err(AmountNotPositive),
            r#"{"correlationId":"ID","amount":0.004}"# => Err(AmountNotPositive),
            r#"{"correlationId":"ID","amount":0.005}"# => Err(AmountNotPositive),
            r#"{"correlationId":"ID","amount":0.0051}"# => ok(1),
            r#"{"correlationId":"ID","amount":"19.90"}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":null}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":NaN}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":+1}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":01}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":1.}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":.5}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":1e}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":1x}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":[1]}"# => Err(AmountNotNumber),
            r#"{"correlationId":"ID","amount":19.90"# => Err(Truncated),
            r#"{"correlationId":"ID"}"# => Err(MissingAmount),
            r#"{"amount":19.90}"# => Err(MissingCorrelationId),
            r#"{}"# => Err(MissingCorrelationId),
            r#"{"correlationId":"ID","correlationId":"ID","amount":1}"# => Err(DuplicateKey),
            r#"{"correlationId":"ID","amount":1,"amount":1}"# => Err(DuplicateKey),
            r#"{"correlationId":"ID","amount":1,"amount":"x"}"# => Err(DuplicateKey),
            r#"{"correlationId":"ID","amount":1,"am\u006funt":2}"# => Err(DuplicateKey),
            r#"{"correlationId":null,"amount":1}"# => Err(BadCorrelationId),
            r#"{"correlationId":123,"amount":1}"# => Err(BadCorrelationId),
            r#"{"correlationId":"{ID}","amount":1}"# => Err(BadCorrelationId),
            r#"{"correlationId":"urn:uuid:ID","amount":1}"# => Err(BadCorrelationId),
            r#"{"correlationId":"4a7901b87d264d9daa194dc1c7cf60b3","amount":1}"# => Err(BadCorrelationId),
            r#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60bg","amount":1}"# => Err(BadCorrelationId),
            r#"{"correlationId":"ID ","amount":1}"# => Err(BadCorrelationId),
            r#"{"correlationId":"ID","amount":1,}"# => Err(ExpectedKey),
            r#"{"correlationId":"ID",,"amount":1}"# => Err(ExpectedKey),
            r#"{'correlationId':"ID","amount":1}"# => Err(ExpectedKey),
            r#"{correlationId:"ID","amount":1}"# => Err(ExpectedKey),
            r#"{"correlationId" "ID","amount":1}"# => Err(ExpectedColon),
            r#"{"correlationId":"ID" "amount":1}"# => Err(ExpectedCommaOrEnd),
            r#"{"correlationId":"ID","amount":1]"# => Err(ExpectedCommaOrEnd),
            r#"{"correlationId":"ID","amount":1}}"# => Err(TrailingData),
            r#"{"correlationId":"ID","amount":1} {}"# => Err(TrailingData),
            r#"{"correlationId":"ID","amount":1}x"# => Err(TrailingData),
            "" => Err(NotAnObject),
            "   " => Err(NotAnObject),
            "[]" => Err(NotAnObject),
            "null" => Err(NotAnObject),
            r#""ID""# => Err(NotAnObject),
            "{" => Err(Truncated),
            "\u{feff}{}" => Err(NotAnObject),
            "\x0c{}" => Err(NotAnObject),
        }
    }

    #[test]
    fn unknown_keys_are_skipped_whatever_their_value() {
        use PaymentError::*;
        bodies! {
            r#"{"x":1,"correlationId":"ID","amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","x":"s\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","x":-1.5e-7,"y":true,"z":false,"w":null,"amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","x":{"a":[1,{"b":[[],{}]},"}]"],"c":{}},"amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","x":[ 1 , [ ] , { } , { "k" : [ null ] } ],"amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","requestedAt":"2025-07-10T12:34:56.000Z","amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","x":[],"x":[],"amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID","x":tru,"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":True,"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":truex,"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":nul"# => Err(Truncated),
            r#"{"correlationId":"ID","x":01,"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":'a',"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":[1,],"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":[1 2],"amount":19.90}"# => Err(ExpectedCommaOrEnd),
            r#"{"correlationId":"ID","x":{"a":1,},"amount":19.90}"# => Err(ExpectedKey),
            r#"{"correlationId":"ID","x":{"a" 1},"amount":19.90}"# => Err(ExpectedColon),
            r#"{"correlationId":"ID","x":{1:1},"amount":19.90}"# => Err(ExpectedKey),
            r#"{"correlationId":"ID","x":[1},"amount":19.90}"# => Err(ExpectedCommaOrEnd),
            r#"{"correlationId":"ID","x":{"a":1],"amount":19.90}"# => Err(ExpectedCommaOrEnd),
            r#"{"correlationId":"ID","x":[,"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":,"amount":19.90}"# => Err(BadValue),
            r#"{"correlationId":"ID","x":"\x","amount":19.90}"# => Err(BadString),
            r#"{"correlationId":"ID","x":"\u12G4","amount":19.90}"# => Err(BadString),
            r#"{"correlationId":"ID","x":"\ud83d","amount":19.90}"# => Err(BadString),
            r#"{"correlationId":"ID","x":"\ud83d\u0041","amount":19.90}"# => Err(BadString),
            r#"{"correlationId":"ID","x":"\ude00","amount":19.90}"# => Err(BadString),
            "{\"correlationId\":\"ID\",\"x\":\"a\tb\",\"amount\":19.90}" => Err(BadString),
            "{\"correlationId\":\"ID\",\"x\":\"a\x7fb\",\"amount\":19.90}" => ok(1990),
            "{\"correlationId\":\"ID\",\"x\":\"é\",\"amount\":19.90}" => ok(1990),
        }
        let mut invalid_utf8 = body(r#"{"correlationId":"ID","x":"ab","amount":1}"#).into_bytes();
        let at = invalid_utf8.iter().position(|&b| b == b'a').unwrap_or(0);
        invalid_utf8[at] = 0xff;
        assert_eq!(parse_payment(&invalid_utf8), Err(PaymentError::BadString));
        invalid_utf8[at] = 0xc3; // a lead byte followed by an ASCII byte
        assert_eq!(parse_payment(&invalid_utf8), Err(PaymentError::BadString));
    }

    #[test]
    fn keys_and_correlation_id_may_use_escapes() {
        use PaymentError::*;
        bodies! {
            r#"{"correlation\u0049d":"ID","amount":19.90}"# => ok(1990),
            r#"{"\u0063\u006F\u0072relationId":"ID","\u0061mount":19.90}"# => ok(1990),
            r#"{"correlationId":"4a7901b8\u002d7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.90}"# => ok(1990),
            r#"{"correlationId":"\u0034a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.90}"# => ok(1990),
            r#"{"correlationId":"ID\u0000","amount":19.90}"# => Err(BadCorrelationId),
            r#"{"correlationId\u0000":"ID","amount":19.90}"# => Err(MissingCorrelationId),
            r#"{"correlationId\/":"ID","amount":19.90}"# => Err(MissingCorrelationId),
            r#"{"correlationId":"ID\/","amount":19.90}"# => Err(BadCorrelationId),
        }
        // Strings longer than the decode buffer are skipped, never matched.
        let long_key = format!(r#"{{"{}":1,"correlationId":"ID","amount":19.90}}"#, "k".repeat(500));
        assert_eq!(parse_payment(body(&long_key).as_bytes()), ok(1990));
        let long_id = format!(r#"{{"correlationId":"{ID}{}","amount":19.90}}"#, "0".repeat(100));
        assert_eq!(parse_payment(long_id.as_bytes()), Err(BadCorrelationId));
        let padded_key = format!(r#"{{"correlationId{}":"ID","amount":19.90}}"#, "\\u0000".repeat(60));
        assert_eq!(parse_payment(body(&padded_key).as_bytes()), Err(MissingCorrelationId));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            // `depth` counts the payment object, so the unknown value opens depth - 1 levels.
            let inner = depth - 1;
            format!(
                r#"{{"correlationId":"ID","x":{}{},"amount":19.90}}"#,
                "[".repeat(inner),
                "]".repeat(inner)
            )
        };
        assert_eq!(parse_payment(body(&nested(MAX_DEPTH)).as_bytes()), ok(1990));
        assert_eq!(
            parse_payment(body(&nested(MAX_DEPTH + 1)).as_bytes()),
            Err(PaymentError::TooDeep)
        );
        let objects = format!(
            r#"{{"correlationId":"ID","x":{}1{},"amount":19.90}}"#,
            r#"{"a":"#.repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(parse_payment(body(&objects).as_bytes()), ok(1990));
        let deep = "[".repeat(100_000);
        let bomb = format!(r#"{{"x":{deep}"#);
        assert_eq!(parse_payment(bomb.as_bytes()), Err(PaymentError::TooDeep));
    }

    /// (amount token, expected cents) — the half-to-even table of .NET `decimal.Round`.
    const ROUNDING: &[(&str, Result<Cents, PaymentError>)] = &[
        ("19.90", Ok(1990)),
        ("19.9", Ok(1990)),
        ("19.904", Ok(1990)),
        ("19.905", Ok(1990)),
        ("19.9050001", Ok(1991)),
        ("19.90500000000000000000000000000000000000001", Ok(1991)),
        ("19.905000000000000000000000000000000000000000", Ok(1990)),
        ("19.906", Ok(1991)),
        ("19.915", Ok(1992)),
        ("19.925", Ok(1992)),
        ("0.125", Ok(12)),
        ("0.135", Ok(14)),
        ("0.015", Ok(2)),
        ("0.025", Ok(2)),
        ("0.0149999", Ok(1)),
        ("0.995", Ok(100)),
        ("0.994999", Ok(99)),
        ("9.995", Ok(1000)),
        ("9999999.995", Ok(1_000_000_000)),
        ("9999999.985", Ok(999_999_998)),
        ("0.005", Err(PaymentError::AmountNotPositive)),
        ("0.00500001", Ok(1)),
        ("0.004999", Err(PaymentError::AmountNotPositive)),
        ("0.015000", Ok(2)),
        ("1", Ok(100)),
        ("0.1", Ok(10)),
        ("000", Err(PaymentError::AmountNotNumber)),
        ("0.000", Err(PaymentError::AmountNotPositive)),
    ];

    #[test]
    fn amounts_round_half_to_even() {
        for &(text, expected) in ROUNDING {
            assert_eq!(parse_amount(text.as_bytes()), expected, "amount {text}");
            let json = body(&format!(r#"{{"correlationId":"ID","amount":{text}}}"#));
            let whole = parse_payment(json.as_bytes()).map(|p| p.cents);
            assert_eq!(whole, expected, "body {json}");
        }
    }

    #[test]
    fn amounts_accept_every_number_form() {
        use PaymentError::*;
        let table: &[(&str, Result<Cents, PaymentError>)] = &[
            ("1.990e1", Ok(1990)),
            ("1.990E+1", Ok(1990)),
            ("1990e-2", Ok(1990)),
            ("1990E-0002", Ok(1990)),
            ("2E-2", Ok(2)),
            ("2e-3", Err(AmountNotPositive)),
            ("5e-3", Err(AmountNotPositive)),
            ("6e-3", Ok(1)),
            ("15e-3", Ok(2)),
            ("0.0000000000000000000000000001990e29", Ok(1990)),
            ("0000.5", Err(AmountNotNumber)),
            ("1e7", Ok(MAX_CENTS)),
            ("1e+7", Ok(MAX_CENTS)),
            ("0.1e8", Ok(MAX_CENTS)),
            ("1.0000000000000000000000001e7", Ok(MAX_CENTS)),
            ("1.00000000051e7", Err(AmountTooLarge)),
            ("1e8", Err(AmountTooLarge)),
            ("1e999999", Err(AmountTooLarge)),
            ("1e-999999", Err(AmountNotPositive)),
            ("1e99999999999999999999999999999999999", Err(AmountTooLarge)),
            ("1e-99999999999999999999999999999999999", Err(AmountNotPositive)),
            ("0e99999999999999999999999999999999999", Err(AmountNotPositive)),
            ("-1e-999999", Err(AmountNotPositive)),
            ("-19.90", Err(AmountNotPositive)),
            ("-", Err(AmountNotNumber)),
            ("", Err(AmountNotNumber)),
            ("1.5.5", Err(AmountNotNumber)),
            ("1e5e5", Err(AmountNotNumber)),
            ("1e+", Err(AmountNotNumber)),
            ("1e-", Err(AmountNotNumber)),
            ("--1", Err(AmountNotNumber)),
            ("Infinity", Err(AmountNotNumber)),
            (" 1", Err(AmountNotNumber)),
            ("1 ", Err(AmountNotNumber)),
            ("0x10", Err(AmountNotNumber)),
            ("１", Err(AmountNotNumber)),
        ];
        for &(text, expected) in table {
            assert_eq!(parse_amount(text.as_bytes()), expected, "amount {text}");
        }
        // Many digits on both sides of the point still cost only a pass over them.
        let long = format!("{}1.{}", "0.".repeat(0), "9".repeat(100_000));
        assert_eq!(parse_amount(long.as_bytes()), Ok(200));
        let long_int = format!("1{}", "0".repeat(100_000));
        assert_eq!(parse_amount(long_int.as_bytes()), Err(AmountTooLarge));
        let long_exp = format!("1e-{}", "9".repeat(100_000));
        assert_eq!(parse_amount(long_exp.as_bytes()), Err(AmountNotPositive));
        let tiny = format!("0.{}1", "0".repeat(100_000));
        assert_eq!(parse_amount(tiny.as_bytes()), Err(AmountNotPositive));
        let balanced = format!("{}e-100000", format_args!("1990{}", "0".repeat(99_998)));
        assert_eq!(parse_amount(balanced.as_bytes()), Ok(1990));
    }

    /// A tiny deterministic generator, so the property tests need no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Reference: cents of mantissa × 10^exp by plain u128 division, half-to-even.
    fn reference_cents(mantissa: u128, exp: i32) -> Option<u128> {
        let scale = exp + 2;
        if scale >= 0 {
            mantissa.checked_mul(10u128.checked_pow(scale as u32)?)
        } else {
            let divisor = 10u128.checked_pow((-scale) as u32)?;
            let (q, r) = (mantissa / divisor, mantissa % divisor);
            let up = 2 * r > divisor || (2 * r == divisor && q % 2 == 1);
            Some(q + u128::from(up))
        }
    }

    #[test]
    fn amounts_agree_with_a_reference_on_random_numbers() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let digits = 1 + rng.below(20) as usize;
            let mut text = String::new();
            let mut mantissa: u128 = 0;
            for i in 0..digits {
                let d = if i == 0 && digits > 1 {
                    1 + rng.below(9)
                } else {
                    rng.below(10)
                };
                mantissa = mantissa * 10 + u128::from(d);
                text.push(char::from(b'0' + d as u8));
            }
            // Place a decimal point, then maybe an exponent, keeping track of the value.
            let mut exp: i32 = 0;
            let point = rng.below(digits as u64 + 1) as usize;
            if point > 0 && point < digits {
                text.insert(point, '.');
                exp -= (digits - point) as i32;
            }
            if rng.below(2) == 0 {
                let e = rng.below(25) as i32 - 12;
                text.push_str(&format!("e{e}"));
                exp += e;
            }
            let expected = match reference_cents(mantissa, exp) {
                Some(0) => Err(PaymentError::AmountNotPositive),
                Some(c) if c <= u128::from(MAX_CENTS) => Ok(c as Cents),
                _ => Err(PaymentError::AmountTooLarge),
            };
            if text.starts_with('0') && text.len() > 1 && !text[1..].starts_with(['.', 'e']) {
                // A leading zero before more digits is not JSON.
                assert_eq!(parse_amount(text.as_bytes()), Err(PaymentError::AmountNotNumber));
                continue;
            }
            assert_eq!(parse_amount(text.as_bytes()), expected, "amount {text}");
            accepted += usize::from(expected.is_ok());
        }
        // The generator must exercise the in-range path, not only the refusals.
        assert!(accepted > 20_000, "{accepted}");
    }

    #[test]
    fn write_amount_prints_two_decimals() {
        for (cents, text) in [
            (1990, "19.90"),
            (5, "0.05"),
            (0, "0.00"),
            (100, "1.00"),
            (41_554_234_598, "415542345.98"),
            (MAX_CENTS, "10000000.00"),
        ] {
            let mut out = Vec::new();
            write_amount(cents, &mut out);
            assert_eq!(out, text.as_bytes());
        }
        for cents in (1..=MAX_CENTS).step_by(9_973) {
            let mut out = Vec::new();
            write_amount(cents, &mut out);
            assert_eq!(parse_amount(&out), Ok(cents));
        }
    }

    #[test]
    fn uuids_round_trip() {
        assert_eq!(parse_uuid(ID.as_bytes()), Some(Uuid(ID_BYTES)));
        let mut out = [0u8; 36];
        Uuid(ID_BYTES).write_canonical(&mut out);
        assert_eq!(&out, ID.as_bytes());
        let mixed = "4A7901b8-7D26-4d9D-Aa19-4dc1C7CF60b3";
        assert_eq!(parse_uuid(mixed.as_bytes()), Some(Uuid(ID_BYTES)));
        let mut rng = XorShift(7);
        for _ in 0..10_000 {
            let mut bytes = [0u8; 16];
            for b in &mut bytes {
                *b = rng.next() as u8;
            }
            Uuid(bytes).write_canonical(&mut out);
            assert_eq!(parse_uuid(&out), Some(Uuid(bytes)));
            let upper = out.to_ascii_uppercase();
            assert_eq!(parse_uuid(&upper), Some(Uuid(bytes)));
        }
        for bad in [
            "",
            "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b",
            "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b33",
            "4a7901b8-7d26-4d9d-aa194dc1c7cf60b33",
            "4a7901b87d26-4d9d-aa19-4dc1c7cf60b3-",
            "{4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b}",
            "4a7901b8_7d26_4d9d_aa19_4dc1c7cf60b3",
            "+a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3",
            "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60 3",
        ] {
            assert_eq!(parse_uuid(bad.as_bytes()), None, "{bad}");
        }
        // Every single-byte substitution at a hex position by a non-hex byte is refused.
        for at in 0..36 {
            for b in 0..=255u8 {
                let mut text = *b"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";
                text[at] = b;
                let dash = matches!(at, 8 | 13 | 18 | 23);
                let fine = if dash { b == b'-' } else { b.is_ascii_hexdigit() };
                assert_eq!(parse_uuid(&text).is_some(), fine, "{at} {b}");
            }
        }
    }

    fn valid_bodies() -> Vec<String> {
        [
            r#"{"correlationId":"ID","amount":19.90}"#,
            r#" { "amount" : 1.990e1 , "x" : [ { "y" : "\u00e9\ud83d\ude00\n" } , null , true , false , -0.5E+3 ] , "correlation\u0049d" : "ID" } "#,
            r#"{"requestedAt":"2025-07-10T12:34:56.000Z","correlationId":"ID","amount":415542345e-2}"#,
        ]
        .iter()
        .map(|t| body(t))
        .collect()
    }

    #[test]
    fn every_proper_prefix_is_an_error() {
        for text in valid_bodies() {
            let bytes = text.as_bytes();
            assert!(parse_payment(bytes).is_ok(), "{text}");
            for end in 0..bytes.len() {
                let prefix = &bytes[..end];
                // The last byte of a body may be whitespace after the object.
                if text[..end].trim_end() == text.trim_end() {
                    continue;
                }
                assert!(parse_payment(prefix).is_err(), "prefix {:?}", &text[..end]);
            }
        }
    }

    #[test]
    fn every_single_byte_mutation_is_handled() {
        for text in valid_bodies() {
            let mut bytes = text.into_bytes();
            for at in 0..bytes.len() {
                let original = bytes[at];
                for b in 0..=255u8 {
                    bytes[at] = b;
                    if let Ok(request) = parse_payment(&bytes) {
                        assert!(request.cents >= 1 && request.cents <= MAX_CENTS);
                    }
                }
                bytes[at] = original;
                // Deleting and duplicating the byte too.
                let mut removed = bytes.clone();
                removed.remove(at);
                let _ = parse_payment(&removed);
                let mut doubled = bytes.clone();
                doubled.insert(at, original);
                let _ = parse_payment(&doubled);
            }
        }
    }

    #[test]
    fn reasons_are_json_safe_sentences() {
        use PaymentError::*;
        for error in [
            NotAnObject,
            Truncated,
            ExpectedKey,
            ExpectedColon,
            ExpectedCommaOrEnd,
            BadString,
            BadValue,
            TooDeep,
            TrailingData,
            DuplicateKey,
            MissingCorrelationId,
            MissingAmount,
            BadCorrelationId,
            AmountNotNumber,
            AmountNotPositive,
            AmountTooLarge,
            MissingRequestedAt,
            BadRequestedAt,
        ] {
            let reason = error.reason();
            assert!(!reason.is_empty());
            assert!(
                reason
                    .bytes()
                    .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
                "{reason}"
            );
        }
    }

    #[test]
    fn processor_bodies_carry_scale_and_requested_at() {
        use PaymentError::*;
        let read = |t: &str| parse_processor_payment(body(t).as_bytes());
        let at =
            crate::base::iso8601::parse_iso_ms(b"2025-07-15T12:34:56.789Z", crate::base::iso8601::Round::Down).unwrap();
        let ok = |cents, scale| {
            Ok(ProcessorPayment {
                id: Uuid(ID_BYTES),
                amount: ScaledAmount { cents, scale },
                requested_at_ms: at,
            })
        };
        let table: &[(&str, Result<ProcessorPayment, PaymentError>)] = &[
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"requestedAt":"2025-07-15T12:34:56.789Z","amount":19.9,"correlationId":"ID"}"#,
                ok(1990, 1),
            ),
            (
                r#"{"correlationId":"ID","amount":20,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(2000, 0),
            ),
            (
                r#"{"correlationId":"ID","amount":2e1,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(2000, 0),
            ),
            (
                r#"{"correlationId":"ID","amount":1.990e1,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":19.905,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":19.915,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1992, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":1990e-2,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            // System.Text.Json's web defaults match names whatever their case.
            (
                r#"{"CorrelationId":"ID","AMOUNT":19.90,"requestedat":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            // No zone: read as UTC; finer digits dropped.
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.7899Z"}"#,
                ok(1990, 2),
            ),
            (r#"{"correlationId":"ID","amount":19.90}"#, Err(MissingRequestedAt)),
            (
                r#"{"correlationId":"ID","requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(MissingAmount),
            ),
            (
                r#"{"amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(MissingCorrelationId),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":12}"#,
                Err(BadRequestedAt),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"yesterday"}"#,
                Err(BadRequestedAt),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56+03:00"}"#,
                Err(BadRequestedAt),
            ),
            (
                r#"{"correlationId":"ID","amount":"19.90","requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(AmountNotNumber),
            ),
            (
                r#"{"correlationId":"ID","correlationid":"ID","amount":1,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(DuplicateKey),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z",}"#,
                Err(ExpectedKey),
            ),
        ];
        for (text, expected) in table {
            assert_eq!(&read(text), expected, "{text}");
        }
    }

    #[test]
    fn every_proper_prefix_of_a_processor_body_is_an_error() {
        let text = body(r#" {"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"} "#);
        let bytes = text.as_bytes();
        assert!(parse_processor_payment(bytes).is_ok());
        for end in 0..bytes.len() {
            if text[..end].trim_end() == text.trim_end() {
                continue;
            }
            assert!(
                parse_processor_payment(&bytes[..end]).is_err(),
                "prefix {:?}",
                &text[..end]
            );
        }
    }

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
