//! Payments as the domain sees them: the two processors, and the body of `POST /payments`
//! read and validated.

use super::amount::Cents;
use super::error::PaymentError;
use super::json::{read_object, set_once};
use super::uuid::Uuid;

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

/// Reads the body of `POST /payments`: exactly one JSON object holding a `correlationId`
/// (a canonical UUID string) and an `amount` (a JSON number), in any order, each once; other
/// keys are skipped whatever their value, down to [`MAX_DEPTH`](crate::base::json::MAX_DEPTH). Syntax is strict JSON
/// (RFC 8259): no trailing commas, no leading zeros, no `NaN`, raw control characters refused
/// in strings. Keys and the correlationId may use escapes (`"correlation\u0049d"`).
///
/// Allocation-free; the work is linear in `body.len()`. The first problem met is returned.
pub fn parse_payment(body: &[u8]) -> Result<PaymentRequest, PaymentError> {
    let mut id = None;
    let mut cents = None;
    read_object(body, |key, value| match key {
        Some(b"correlationId") => set_once(&mut id, || value.correlation_id()),
        Some(b"amount") => set_once(&mut cents, || Ok(value.amount()?.cents)),
        _ => Ok(()),
    })?;
    Ok(PaymentRequest {
        id: id.ok_or(PaymentError::MissingCorrelationId)?,
        cents: cents.ok_or(PaymentError::MissingAmount)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::amount::{parse_amount, MAX_CENTS};
    use crate::base::json::MAX_DEPTH;

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
}
