//! Amounts, sums and fees as the official processor prints them. It keeps money in .NET
//! `decimal`s and PostgreSQL `numeric`s, which both carry a scale (trailing zeros stay:
//! `19.90` is not `19.9`); a sum takes the largest scale of its terms, a product the sum of
//! its factors' scales. Values here are exact integers with a scale, never floats.

/// A non-negative decimal, `units × 10^-scale`, printed with exactly `scale` decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// The digits without the point.
    pub units: u128,
    /// How many of those digits follow the point.
    pub scale: u8,
}

/// The most fraction digits [`Decimal::parse`] takes, so products stay far from overflow.
pub const MAX_PARSE_SCALE: usize = 18;

impl Decimal {
    /// Zero with no decimals: what `COALESCE(SUM(amount), 0)` gives over no rows.
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };

    /// `cents / 100` shown with `scale` decimals (0 to 2). `cents` must be a multiple of
    /// `10^(2 - scale)`, as every [`crate::base::amount::ScaledAmount`] and every sum of them is;
    /// digits that would not fit are dropped.
    pub fn from_cents(cents: u64, scale: u8) -> Decimal {
        let scale = scale.min(2);
        Decimal {
            units: u128::from(cents) / 10u128.pow(u32::from(2 - scale)),
            scale,
        }
    }

    /// The exact product, scale `self.scale + other.scale` as .NET's `decimal` multiplication
    /// gives it (`3980.00 × 0.05 = 199.0000`). Saturates rather than wrapping.
    pub fn times(self, other: Decimal) -> Decimal {
        Decimal {
            units: self.units.saturating_mul(other.units),
            scale: self.scale.saturating_add(other.scale),
        }
    }

    /// Reads a plain decimal the way .NET's `decimal.Parse` reads `TRANSACTION_FEE`: digits,
    /// optionally a point and more digits, surrounding whitespace allowed. No sign, no
    /// exponent, at most [`MAX_PARSE_SCALE`] decimals and 30 digits in all; `None` otherwise.
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim().as_bytes();
        let (int, frac) = match text.iter().position(|&b| b == b'.') {
            Some(p) => (&text[..p], &text[p + 1..]),
            None => (text, &text[text.len()..]),
        };
        let digits = || int.iter().chain(frac.iter());
        if int.is_empty() && frac.is_empty()
            || frac.len() > MAX_PARSE_SCALE
            || int.len() + frac.len() > 30
            || !digits().all(u8::is_ascii_digit)
        {
            return None;
        }
        let units = digits().fold(0u128, |n, &d| n * 10 + u128::from(d - b'0'));
        // frac.len() <= MAX_PARSE_SCALE, so it fits a u8.
        Some(Decimal {
            units,
            scale: frac.len() as u8,
        })
    }

    /// Appends the number as JSON, with exactly `scale` decimals: `0`, `0.00`, `199.0000`.
    pub fn write(self, out: &mut Vec<u8>) {
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(self.units).as_bytes();
        let scale = usize::from(self.scale);
        if scale == 0 {
            out.extend_from_slice(digits);
            return;
        }
        if digits.len() <= scale {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat(b'0').take(scale - digits.len()));
            out.extend_from_slice(digits);
        } else {
            let point = digits.len() - scale;
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Decimal) -> String {
        let mut out = Vec::new();
        d.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prints_with_exactly_its_scale() {
        for (units, scale, want) in [
            (0, 0, "0"),
            (0, 2, "0.00"),
            (5, 2, "0.05"),
            (15, 2, "0.15"),
            (1990, 2, "19.90"),
            (199, 1, "19.9"),
            (20, 0, "20"),
            (1_990_000, 4, "199.0000"),
            (1, 18, "0.000000000000000001"),
            (41_554_234_598, 2, "415542345.98"),
        ] {
            assert_eq!(text(Decimal { units, scale }), want);
        }
    }

    #[test]
    fn cents_keep_the_scale_of_the_amount() {
        assert_eq!(text(Decimal::from_cents(1990, 2)), "19.90");
        assert_eq!(text(Decimal::from_cents(1990, 1)), "19.9");
        assert_eq!(text(Decimal::from_cents(2000, 0)), "20");
        assert_eq!(text(Decimal::from_cents(0, 0)), "0");
    }

    #[test]
    fn products_add_scales_like_dotnet() {
        let fee = Decimal::parse("0.05").unwrap();
        assert_eq!(fee, Decimal { units: 5, scale: 2 });
        assert_eq!(text(Decimal::from_cents(398_000, 2).times(fee)), "199.0000");
        assert_eq!(text(Decimal::ZERO.times(fee)), "0.00");
        assert_eq!(
            text(Decimal::from_cents(1990, 1).times(Decimal::parse("0.15").unwrap())),
            "2.985"
        );
    }

    #[test]
    fn parse_accepts_plain_decimals_only() {
        assert_eq!(Decimal::parse(" 0.15 "), Some(Decimal { units: 15, scale: 2 }));
        assert_eq!(Decimal::parse("1"), Some(Decimal { units: 1, scale: 0 }));
        assert_eq!(Decimal::parse(".5"), Some(Decimal { units: 5, scale: 1 }));
        assert_eq!(Decimal::parse("5."), Some(Decimal { units: 5, scale: 0 }));
        for bad in [
            "",
            ".",
            "-0.05",
            "+1",
            "1e2",
            "0,05",
            "abc",
            "0.0000000000000000001",
            "1.2.3",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }
}
