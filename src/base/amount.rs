//! Money as exact integer cents: a JSON number token → cents, rounded half-to-even as .NET's
//! `decimal` does, and cents → text with two decimals. No floating point touches an amount.

use super::error::PaymentError;

/// Money in integer cents; no floating point ever touches an amount.
pub type Cents = u64;

/// The largest amount a payment may carry, in cents (10 000 000.00): it keeps every slot's
/// amount in 32 bits and every sum far from overflow.
pub const MAX_CENTS: Cents = 1_000_000_000;

// Any scaled amount with more integer digits than this is above MAX_CENTS, whatever rounding
// does; it also keeps the integer part of a scaled amount within u64.
const MAX_CENTS_DIGITS: i64 = 10;

const _: () = assert!(MAX_CENTS < 10_000_000_000);

/// Past 2^40 any exponent already puts an amount out of range (and any scale at 0 or 2), so
/// exponents saturate there: the sums of `to_cents` then stay far from i64 overflow.
const EXP_CAP: i64 = 1 << 40;

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

/// A JSON number token cut into its parts; every slice holds ASCII digits only.
pub(crate) struct Number<'a> {
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
pub(crate) enum ScanError {
    /// The input ended where the grammar needs more.
    Truncated,
    /// A byte breaks the JSON number grammar, or the token runs into a non-delimiter.
    Malformed,
}

/// Cuts the JSON number starting at `buf[start]` into its parts and returns them with the
/// index just past the token. The token must be followed by the end of input, whitespace,
/// `,`, `}` or `]`, so `01`, `1.5x` and `1e5e5` are malformed here rather than a confusing
/// error at the next byte.
pub(crate) fn scan_number(buf: &[u8], start: usize) -> Result<(Number<'_>, usize), ScanError> {
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
    pub(crate) fn scale(&self) -> u8 {
        let written = i64::try_from(self.frac.len()).unwrap_or(EXP_CAP);
        // Clamped to 0..=2, so the narrowing cannot lose anything.
        (written - self.exponent()).clamp(0, 2) as u8
    }

    /// The exponent's value, saturated at ±[`EXP_CAP`].
    fn exponent(&self) -> i64 {
        let mut exp: i64 = 0;
        for &b in self.exp {
            exp = (exp * 10 + i64::from(b - b'0')).min(EXP_CAP);
        }
        if self.exp_negative {
            -exp
        } else {
            exp
        }
    }

    /// The exact value in cents, rounded half-to-even.
    ///
    /// The digits of `int` then `frac` form one digit string D, the value being 0.D × 10^p
    /// for some p. Scaling by 100 and counting from D's first nonzero digit gives `point`,
    /// the number of D's digits left of the decimal point of the amount in cents. Those
    /// digits (zero-padded) are the whole cents; the next one and whether anything nonzero
    /// follows decide the rounding. Since `point` is checked against the digits of MAX_CENTS
    /// before any loop, the exponent's value never sets the amount of work.
    pub(crate) fn to_cents(&self) -> Result<Cents, PaymentError> {
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
        let exp = self.exponent();
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
    pub(crate) struct XorShift(pub(crate) u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        pub(crate) fn below(&mut self, n: u64) -> u64 {
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
}
