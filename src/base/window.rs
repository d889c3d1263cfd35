//! The query string of `GET /payments-summary` → an inclusive window in milliseconds.
//!
//! Decisions worth knowing: parameters are `&`-separated `key=value` pairs, both sides
//! percent-decoded; `from` and `to` are case-sensitive; unknown parameters are ignored
//! entirely (their escapes are not even checked); an empty value (`from=` or a bare `from`)
//! means absent and does not count toward the duplicate check; a literal `+` stays `+`
//! (so `+00:00` works unescaped), and a space (`%20`) is read as `+` too, since a client that
//! form-encodes turns the `+` of `+00:00` into a space.

use crate::base::iso8601::{parse_iso_ms, Round, TimeError};

/// An inclusive window of `requestedAt` milliseconds; `None` means unbounded on that side.
/// `from_ms > to_ms` is a valid, empty window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Window {
    /// The first millisecond inside the window.
    pub from_ms: Option<i64>,
    /// The last millisecond inside the window.
    pub to_ms: Option<i64>,
}

impl Window {
    /// Whether `ms` lies inside the window, both ends included.
    pub fn contains(&self, ms: i64) -> bool {
        let after_from = match self.from_ms {
            Some(from) => from <= ms,
            None => true,
        };
        let before_to = match self.to_ms {
            Some(to) => ms <= to,
            None => true,
        };
        after_from && before_to
    }
}

/// Why a summary query was refused. Each variant has a one-sentence [`reason`](Self::reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowError {
    /// `from` is not a timestamp [`parse_iso_ms`] accepts; the inner error says why.
    BadFrom(TimeError),
    /// `to` is not a timestamp [`parse_iso_ms`] accepts; the inner error says why.
    BadTo(TimeError),
    /// `from` is given twice.
    DuplicateFrom,
    /// `to` is given twice.
    DuplicateTo,
    /// A `%` in `from` or `to` is not followed by two hex digits.
    BadEscape,
    /// The decoded value of `from` or `to` is longer than any timestamp could be.
    ValueTooLong,
}

impl WindowError {
    /// One human sentence saying what is wrong, with no quote or backslash.
    pub fn reason(self) -> &'static str {
        match self {
            WindowError::BadFrom(_) => "from is not an ISO-8601 UTC timestamp like 2025-07-10T12:34:56.000Z",
            WindowError::BadTo(_) => "to is not an ISO-8601 UTC timestamp like 2025-07-10T12:34:56.000Z",
            WindowError::DuplicateFrom => "from is given more than once",
            WindowError::DuplicateTo => "to is given more than once",
            WindowError::BadEscape => "a percent escape in from or to is not like %3A",
            WindowError::ValueTooLong => "from or to is too long to be a timestamp",
        }
    }
}

impl std::fmt::Display for WindowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for WindowError {}

/// Longest decoded value kept: a timestamp with nine fraction digits and an offset is 35
/// bytes, so this leaves room without letting a query make us parse much.
const VALUE_CAPACITY: usize = 64;

/// Reads the query string (the bytes after `?`, possibly empty) into a [`Window`]: `from` is
/// rounded [`Round::Up`] and `to` [`Round::Down`] past the millisecond. See the module doc
/// for the decoding rules. Allocation-free; linear in `query.len()`.
pub fn parse_window(query: &[u8]) -> Result<Window, WindowError> {
    let mut window = Window::default();
    for pair in query.split(|&b| b == b'&') {
        let (raw_key, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        let mut key_buf = [0u8; 4];
        let is_from = match percent_decode(raw_key, &mut key_buf).map(|key| &*key) {
            Ok(b"from") => true,
            Ok(b"to") => false,
            _ => continue,
        };
        let mut value_buf = [0u8; VALUE_CAPACITY];
        let value = percent_decode(raw_value, &mut value_buf)?;
        if value.is_empty() {
            continue;
        }
        for b in value.iter_mut() {
            if *b == b' ' {
                *b = b'+';
            }
        }
        if is_from {
            if window.from_ms.is_some() {
                return Err(WindowError::DuplicateFrom);
            }
            window.from_ms = Some(parse_iso_ms(value, Round::Up).map_err(WindowError::BadFrom)?);
        } else {
            if window.to_ms.is_some() {
                return Err(WindowError::DuplicateTo);
            }
            window.to_ms = Some(parse_iso_ms(value, Round::Down).map_err(WindowError::BadTo)?);
        }
    }
    Ok(window)
}

/// Decodes `%XX` escapes of `raw` into `out` and returns the decoded part. `+` is kept as
/// is (see the module doc).
fn percent_decode<'o>(raw: &[u8], out: &'o mut [u8]) -> Result<&'o mut [u8], WindowError> {
    let mut len = 0;
    let mut i = 0;
    while i < raw.len() {
        let b = if raw[i] == b'%' {
            let high = raw.get(i + 1).copied().and_then(hex_value);
            let low = raw.get(i + 2).copied().and_then(hex_value);
            match (high, low) {
                (Some(high), Some(low)) => {
                    i += 3;
                    (high << 4) | low
                }
                _ => return Err(WindowError::BadEscape),
            }
        } else {
            i += 1;
            raw[i - 1]
        };
        *out.get_mut(len).ok_or(WindowError::ValueTooLong)? = b;
        len += 1;
    }
    Ok(&mut out[..len])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_752_150_896_000; // 2025-07-10T12:34:56.000Z
    const T1: i64 = 1_752_150_910_500; // 2025-07-10T12:35:10.500Z

    fn window(from_ms: Option<i64>, to_ms: Option<i64>) -> Result<Window, WindowError> {
        Ok(Window { from_ms, to_ms })
    }

    #[test]
    fn reads_the_table() {
        use TimeError::*;
        use WindowError::*;
        let table: &[(&str, Result<Window, WindowError>)] = &[
            ("", window(None, None)),
            ("from=2025-07-10T12:34:56.000Z", window(Some(T0), None)),
            ("to=2025-07-10T12:35:10.500Z", window(None, Some(T1))),
            (
                "from=2025-07-10T12:34:56.000Z&to=2025-07-10T12:35:10.500Z",
                window(Some(T0), Some(T1)),
            ),
            (
                "to=2025-07-10T12:35:10.500Z&from=2025-07-10T12:34:56.000Z",
                window(Some(T0), Some(T1)),
            ),
            (
                "from=2025-07-10T12%3A34%3A56.000Z&to=2025-07-10T12%3a35%3a10.500Z",
                window(Some(T0), Some(T1)),
            ),
            ("from=2025-07-10T12:34:56.000%2B00:00", window(Some(T0), None)),
            ("from=2025-07-10T12:34:56.000+00:00", window(Some(T0), None)),
            ("from=2025-07-10T12:34:56.000%2000:00", window(Some(T0), None)),
            ("from=2025-07-10T12:34:56.000-00:00", window(Some(T0), None)),
            ("%66rom=2025-07-10T12:34:56.000Z", window(Some(T0), None)),
            ("from=%32%30%32%35-07-10T12:34:56.000Z", window(Some(T0), None)),
            (
                "from=2025-07-10T12:35:10.500Z&to=2025-07-10T12:34:56.000Z",
                window(Some(T1), Some(T0)),
            ),
            ("from=2025-07-10T12:34:56.0001Z", window(Some(T0 + 1), None)),
            ("to=2025-07-10T12:34:56.0009Z", window(None, Some(T0))),
            ("from=&to=", window(None, None)),
            ("from&to", window(None, None)),
            ("from=&from=2025-07-10T12:34:56.000Z", window(Some(T0), None)),
            ("&&from=2025-07-10T12:34:56.000Z&&", window(Some(T0), None)),
            ("x=1&from=2025-07-10T12:34:56.000Z&y", window(Some(T0), None)),
            ("x=%zz&from=2025-07-10T12:34:56.000Z", window(Some(T0), None)),
            ("%zz=1&fromage=%&From=1&TO=2", window(None, None)),
            ("from=2025-07-10T12:34:56.000Z=", Err(BadFrom(BadFormat))),
            (
                "from=2025-07-10T12:34:56.000Z&from=2025-07-10T12:34:56.000Z",
                Err(DuplicateFrom),
            ),
            (
                "to=2025-07-10T12:34:56.000Z&to=2025-07-10T12:34:56.000Z",
                Err(DuplicateTo),
            ),
            ("from=yesterday", Err(BadFrom(BadFormat))),
            ("to=2025-02-30T00:00:00Z", Err(BadTo(DayOutOfRange))),
            ("to=2025-07-10T12:34:56.000", Err(BadTo(MissingZone))),
            ("from=2025-07-10T12:34:56.000+01:00", Err(BadFrom(OffsetNotUtc))),
            ("from=2025-07-10T12:34:56.000Z%", Err(BadEscape)),
            ("from=2025-07-10T12:34:56.000Z%4", Err(BadEscape)),
            ("from=2025-07-10T12%3G34:56.000Z", Err(BadEscape)),
            ("to=%", Err(BadEscape)),
            ("from=2025-07-10 12:34:56.000Z", Err(BadFrom(BadFormat))),
            ("from=2025-07-10T12:34:56.000%00Z", Err(BadFrom(BadFormat))),
        ];
        for &(query, expected) in table {
            assert_eq!(parse_window(query.as_bytes()), expected, "{query}");
        }
    }

    #[test]
    fn values_are_capped() {
        let longest = "from=2025-07-10T12%3A34%3A56.123456789%2B00%3A00";
        assert_eq!(parse_window(longest.as_bytes()), window(Some(T0 + 124), None));
        let at_cap = format!("from={}", "1".repeat(VALUE_CAPACITY));
        assert_eq!(
            parse_window(at_cap.as_bytes()),
            Err(WindowError::BadFrom(TimeError::BadFormat))
        );
        let over_cap = format!("from={}", "1".repeat(VALUE_CAPACITY + 1));
        assert_eq!(parse_window(over_cap.as_bytes()), Err(WindowError::ValueTooLong));
        let escaped = format!("to={}", "%31".repeat(VALUE_CAPACITY + 1));
        assert_eq!(parse_window(escaped.as_bytes()), Err(WindowError::ValueTooLong));
        // Unknown parameters may be of any length.
        let unknown = format!("x={}&{}=1", "1".repeat(10_000), "y".repeat(10_000));
        assert_eq!(parse_window(unknown.as_bytes()), Ok(Window::default()));
    }

    #[test]
    fn contains_is_inclusive() {
        let w = Window {
            from_ms: Some(10),
            to_ms: Some(20),
        };
        assert!(!w.contains(9) && w.contains(10) && w.contains(20) && !w.contains(21));
        assert!(Window::default().contains(i64::MIN) && Window::default().contains(i64::MAX));
        let empty = Window {
            from_ms: Some(21),
            to_ms: Some(20),
        };
        assert!(!empty.contains(20) && !empty.contains(21));
    }

    const VALID: &[&str] = &[
        "from=2025-07-10T12:34:56.000Z&to=2025-07-10T12:35:10.500Z",
        "from=2025-07-10T12%3A34%3A56.000%2B00%3A00&to=2025-07-10T12:35:10.500+00:00",
    ];

    #[test]
    fn every_proper_prefix_is_handled() {
        // A prefix of a query can be a valid query (`from=...Z&t`), so only the prefixes that
        // cut a timestamp must fail; none may panic.
        for query in VALID {
            assert_eq!(parse_window(query.as_bytes()), window(Some(T0), Some(T1)));
            for end in 0..query.len() {
                let prefix = &query.as_bytes()[..end];
                let result = parse_window(prefix);
                if let Ok(w) = result {
                    assert!(w.to_ms.is_none(), "{:?}", &query[..end]);
                    assert!(w.from_ms.is_none() || w.from_ms == Some(T0));
                }
            }
        }
    }

    #[test]
    fn every_single_byte_mutation_is_handled() {
        for query in VALID {
            let mut bytes = query.as_bytes().to_vec();
            for at in 0..bytes.len() {
                let original = bytes[at];
                for b in 0..=255u8 {
                    bytes[at] = b;
                    let _ = parse_window(&bytes);
                }
                bytes[at] = original;
            }
        }
    }

    #[test]
    fn reasons_are_json_safe_sentences() {
        use WindowError::*;
        for error in [
            BadFrom(TimeError::BadFormat),
            BadTo(TimeError::BadFormat),
            DuplicateFrom,
            DuplicateTo,
            BadEscape,
            ValueTooLong,
        ] {
            let reason = error.reason();
            assert!(reason
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
        }
    }
}
