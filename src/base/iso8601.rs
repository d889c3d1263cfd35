//! ISO-8601 UTC timestamps ⇄ milliseconds since the Unix epoch, with the proleptic Gregorian
//! calendar computed by hand (no date library, no allocation).
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS`, then optionally `.` and 1 to 9 fraction digits, then the
//! zone: `Z`, `+00:00` or `-00:00`. `T` and `Z` may be lowercase (RFC 3339 §5.6 allows it).
//! `-00:00` is accepted because it still names a UTC instant (RFC 3339 §4.3 uses it for "UTC,
//! local offset unknown"). Any other offset is refused as [`TimeError::OffsetNotUtc`] rather
//! than converted: the API speaks UTC only. Years run from 0000 to 9999; leap seconds (`:60`)
//! are refused.

/// How a fraction finer than a millisecond maps onto whole milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// Toward the future: for a window's `from`, so an inclusive lower bound never admits a
    /// millisecond earlier than asked.
    Up,
    /// Toward the past: for a window's `to`, so an inclusive upper bound never admits a
    /// millisecond later than asked.
    Down,
}

/// Why a timestamp was refused. Each variant has a one-sentence [`reason`](Self::reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// The text does not have the shape `YYYY-MM-DDTHH:MM:SS[.fff]Z` (a wrong or missing
    /// byte, or bytes after the zone).
    BadFormat,
    /// There is no zone after the time: a local time is no instant.
    MissingZone,
    /// The zone is an offset other than `+00:00`/`-00:00`.
    OffsetNotUtc,
    /// The fraction after `.` has no digit or more than 9.
    BadFraction,
    /// The month is not 01..=12.
    MonthOutOfRange,
    /// The day is 00 or past the end of its month (leap years counted).
    DayOutOfRange,
    /// The hour is above 23.
    HourOutOfRange,
    /// The minute is above 59.
    MinuteOutOfRange,
    /// The second is above 59.
    SecondOutOfRange,
}

impl TimeError {
    /// One human sentence saying what is wrong, with no quote or backslash.
    pub fn reason(self) -> &'static str {
        match self {
            TimeError::BadFormat => "timestamp must look like 2025-07-10T12:34:56.000Z",
            TimeError::MissingZone => "timestamp must end with Z to say it is UTC",
            TimeError::OffsetNotUtc => "timestamp must be in UTC, with Z or +00:00",
            TimeError::BadFraction => "fraction of a second must have 1 to 9 digits",
            TimeError::MonthOutOfRange => "month must be 01 to 12",
            TimeError::DayOutOfRange => "day does not exist in that month",
            TimeError::HourOutOfRange => "hour must be 00 to 23",
            TimeError::MinuteOutOfRange => "minute must be 00 to 59",
            TimeError::SecondOutOfRange => "second must be 00 to 59",
        }
    }
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for TimeError {}

/// Length of what [`write_iso_ms`] writes: `2025-07-10T12:34:56.000Z`.
pub const ISO_MS_LEN: usize = 24;

const MS_PER_DAY: i64 = 86_400_000;

/// The first millisecond [`write_iso_ms`] can print: 0000-01-01T00:00:00.000Z.
pub const MIN_ISO_MS: i64 = days_from_civil(0, 1, 1) * MS_PER_DAY;

/// The last millisecond [`write_iso_ms`] can print: 9999-12-31T23:59:59.999Z.
pub const MAX_ISO_MS: i64 = days_from_civil(10_000, 1, 1) * MS_PER_DAY - 1;

/// Reads an ISO-8601 UTC timestamp (see the module doc for the accepted forms) into
/// milliseconds since 1970-01-01T00:00:00Z, negative before it. Fraction digits past the
/// third are rounded by `round` (any nonzero one moves `Up` by one millisecond; `Down` drops
/// them), so the result may be 9999-12-31T23:59:59.9991Z rounded up to [`MAX_ISO_MS`] + 1.
/// Allocation-free and constant time.
pub fn parse_iso_ms(text: &[u8], round: Round) -> Result<i64, TimeError> {
    let year = digits(text, 0, 4)?;
    separator(text, 4, b'-')?;
    let month = digits(text, 5, 2)?;
    separator(text, 7, b'-')?;
    let day = digits(text, 8, 2)?;
    if !matches!(text.get(10), Some(b'T' | b't')) {
        return Err(TimeError::BadFormat);
    }
    let hour = digits(text, 11, 2)?;
    separator(text, 13, b':')?;
    let minute = digits(text, 14, 2)?;
    separator(text, 16, b':')?;
    let second = digits(text, 17, 2)?;

    let mut at = 19;
    let mut millis = 0;
    let mut finer = false;
    if text.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(&b @ b'0'..=b'9') = text.get(at) {
            let place = at - start;
            if place < 3 {
                millis = millis * 10 + i64::from(b - b'0');
            } else if b != b'0' {
                finer = true;
            }
            at += 1;
        }
        let count = at - start;
        if count == 0 || count > 9 {
            return Err(TimeError::BadFraction);
        }
        for _ in count..3 {
            millis *= 10;
        }
    }

    match text.get(at) {
        Some(b'Z' | b'z') => at += 1,
        Some(b'+' | b'-') => {
            let offset_hours = digits(text, at + 1, 2)?;
            separator(text, at + 3, b':')?;
            let offset_minutes = digits(text, at + 4, 2)?;
            if offset_hours != 0 || offset_minutes != 0 {
                return Err(TimeError::OffsetNotUtc);
            }
            at += 6;
        }
        None => return Err(TimeError::MissingZone),
        Some(_) => return Err(TimeError::BadFormat),
    }
    if at != text.len() {
        return Err(TimeError::BadFormat);
    }

    if !(1..=12).contains(&month) {
        return Err(TimeError::MonthOutOfRange);
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(TimeError::DayOutOfRange);
    }
    if hour > 23 {
        return Err(TimeError::HourOutOfRange);
    }
    if minute > 59 {
        return Err(TimeError::MinuteOutOfRange);
    }
    if second > 59 {
        return Err(TimeError::SecondOutOfRange);
    }

    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let extra = i64::from(finer && round == Round::Up);
    Ok(seconds * 1000 + millis + extra)
}

/// Like [`parse_iso_ms`], but a timestamp without a zone is taken as UTC: how .NET reads a
/// `DateTime` of unspecified kind on a UTC host, so how the processors read a `requestedAt`
/// sent that way (and write one back).
pub fn parse_iso_ms_assume_utc(text: &[u8], round: Round) -> Result<i64, TimeError> {
    match parse_iso_ms(text, round) {
        Err(TimeError::MissingZone) => {
            // Longer than any readable timestamp (the fraction is bounded): unreadable anyway.
            let mut zoned = [0u8; 64];
            let with_zone = zoned.get_mut(..=text.len()).ok_or(TimeError::MissingZone)?;
            with_zone[..text.len()].copy_from_slice(text);
            with_zone[text.len()] = b'Z';
            parse_iso_ms(with_zone, round)
        }
        other => other,
    }
}

/// Writes `ms` as `YYYY-MM-DDTHH:MM:SS.fffZ`, always 24 bytes. Values outside
/// [`MIN_ISO_MS`]`..=`[`MAX_ISO_MS`] (years 0000..=9999) are clamped to those ends, since a
/// fixed four-digit year cannot say more. [`parse_iso_ms`] reads the output back to `ms`.
pub fn write_iso_ms(ms: i64, out: &mut [u8; ISO_MS_LEN]) {
    let ms = ms.clamp(MIN_ISO_MS, MAX_ISO_MS);
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    *out = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut out[0..4], year);
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], in_day / 3_600_000);
    put_digits(&mut out[14..16], in_day / 60_000 % 60);
    put_digits(&mut out[17..19], in_day / 1000 % 60);
    put_digits(&mut out[20..23], in_day % 1000);
}

/// Fills `out` with the low decimal digits of `value` (not negative), zero-padded.
fn put_digits(out: &mut [u8], mut value: i64) {
    for slot in out.iter_mut().rev() {
        // rem_euclid by 10 is in 0..10, so it fits a byte.
        *slot = b'0' + value.rem_euclid(10) as u8;
        value /= 10;
    }
}

/// Reads `count` ASCII digits at `text[at..]` as a number.
fn digits(text: &[u8], at: usize, count: usize) -> Result<i64, TimeError> {
    let field = text.get(at..at + count).ok_or(TimeError::BadFormat)?;
    let mut value = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return Err(TimeError::BadFormat);
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Ok(value)
}

fn separator(text: &[u8], at: usize, want: u8) -> Result<(), TimeError> {
    match text.get(at) {
        Some(&b) if b == want => Ok(()),
        _ => Err(TimeError::BadFormat),
    }
}

/// Gregorian leap year: every 4th year, except centuries not divisible by 400.
const fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). The trick: count years from March, so the leap day is the last day of
/// the counted year and the month lengths before it follow a fixed pattern that
/// `(153 * m + 2) / 5` reproduces; then whole 400-year eras (146 097 days each) are counted
/// separately so the arithmetic inside an era never sees a negative number.
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // January and February belong to the previous March-based year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    // Months from March: March = 0 ... February = 11.
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468 days separate 0000-03-01 (an era start) from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day) of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    // Remove the leap days the era has seen so far (one per 4 years, none per 100, one per
    // 400); dividing by 365 then gives the year within the era.
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<i64, TimeError> {
        let down = parse_iso_ms(text.as_bytes(), Round::Down);
        let up = parse_iso_ms(text.as_bytes(), Round::Up);
        // Up and Down differ by at most one millisecond, and only with sub-ms digits.
        match (down, up) {
            (Ok(d), Ok(u)) => assert!(u == d || u == d + 1, "{text}"),
            (d, u) => assert_eq!(d, u, "{text}"),
        }
        down
    }

    #[test]
    fn a_timestamp_without_zone_can_be_taken_as_utc() {
        let utc = parse_iso_ms(b"2025-07-10T12:34:56.789Z", Round::Down).unwrap();
        for text in [
            &b"2025-07-10T12:34:56.789"[..],
            b"2025-07-10T12:34:56.789Z",
            b"2025-07-10T12:34:56.7891",
        ] {
            assert_eq!(parse_iso_ms_assume_utc(text, Round::Down), Ok(utc), "{text:?}");
        }
        assert_eq!(
            parse_iso_ms_assume_utc(b"2025-07-10", Round::Down),
            parse_iso_ms(b"2025-07-10", Round::Down)
        );
    }

    #[test]
    fn reads_the_table() {
        use TimeError::*;
        let table: &[(&str, Result<i64, TimeError>)] = &[
            ("1970-01-01T00:00:00.000Z", Ok(0)),
            ("1970-01-01T00:00:00Z", Ok(0)),
            ("1970-01-01T00:00:00.001Z", Ok(1)),
            ("1970-01-01T00:00:00.1Z", Ok(100)),
            ("1970-01-01T00:00:00.12Z", Ok(120)),
            ("1970-01-01T00:00:00.123456789Z", Ok(123)),
            ("1969-12-31T23:59:59.999Z", Ok(-1)),
            ("1969-12-31T23:59:59Z", Ok(-1000)),
            ("2025-07-10T12:34:56.000Z", Ok(1_752_150_896_000)),
            ("2025-07-10t12:34:56.000z", Ok(1_752_150_896_000)),
            ("2025-07-10T12:34:56.000+00:00", Ok(1_752_150_896_000)),
            ("2025-07-10T12:34:56.000-00:00", Ok(1_752_150_896_000)),
            ("2025-07-10T12:34:56+00:00", Ok(1_752_150_896_000)),
            ("2000-03-01T00:00:00Z", Ok(951_868_800_000)),
            ("2024-02-29T23:59:59Z", Ok(1_709_251_199_000)),
            ("1900-03-01T00:00:00Z", Ok(-2_203_891_200_000)),
            ("0001-01-01T00:00:00Z", Ok(-62_135_596_800_000)),
            ("0000-01-01T00:00:00.000Z", Ok(MIN_ISO_MS)),
            ("9999-12-31T23:59:59.999Z", Ok(MAX_ISO_MS)),
            ("2000-02-29T00:00:00Z", Ok(951_782_400_000)),
            ("0000-02-29T00:00:00Z", Ok(-62_162_121_600_000)),
            ("0000-01-01T00:00:00Z", Ok(-62_167_219_200_000)),
            ("1900-02-29T00:00:00Z", Err(DayOutOfRange)),
            ("2023-02-29T00:00:00Z", Err(DayOutOfRange)),
            ("2100-02-29T00:00:00Z", Err(DayOutOfRange)),
            ("2023-02-28T00:00:00Z", Ok(1_677_542_400_000)),
            ("2025-04-31T00:00:00Z", Err(DayOutOfRange)),
            ("2025-04-30T00:00:00Z", Ok(1_745_971_200_000)),
            ("2025-01-32T00:00:00Z", Err(DayOutOfRange)),
            ("2025-01-00T00:00:00Z", Err(DayOutOfRange)),
            ("2025-00-10T00:00:00Z", Err(MonthOutOfRange)),
            ("2025-13-10T00:00:00Z", Err(MonthOutOfRange)),
            ("2025-07-10T24:00:00Z", Err(HourOutOfRange)),
            ("2025-07-10T23:60:00Z", Err(MinuteOutOfRange)),
            ("2025-07-10T23:59:60Z", Err(SecondOutOfRange)),
            ("2025-07-10T12:34:56.Z", Err(BadFraction)),
            ("2025-07-10T12:34:56.1234567890Z", Err(BadFraction)),
            ("2025-07-10T12:34:56.000", Err(MissingZone)),
            ("2025-07-10T12:34:56", Err(MissingZone)),
            ("2025-07-10T12:34:56.000+01:00", Err(OffsetNotUtc)),
            ("2025-07-10T12:34:56.000-03:00", Err(OffsetNotUtc)),
            ("2025-07-10T12:34:56.000+00:01", Err(OffsetNotUtc)),
            ("2025-07-10T12:34:56.000+0000", Err(BadFormat)),
            ("2025-07-10T12:34:56.000+00", Err(BadFormat)),
            ("2025-07-10T12:34:56.000+00:00Z", Err(BadFormat)),
            ("2025-07-10T12:34:56.000ZZ", Err(BadFormat)),
            ("2025-07-10T12:34:56.000Z ", Err(BadFormat)),
            (" 2025-07-10T12:34:56.000Z", Err(BadFormat)),
            ("2025-07-10 12:34:56.000Z", Err(BadFormat)),
            ("2025-07-10T12:34:56,000Z", Err(BadFormat)),
            ("2025-7-10T12:34:56.000Z", Err(BadFormat)),
            ("+2025-07-10T12:34:56.000Z", Err(BadFormat)),
            ("-0001-07-10T12:34:56.000Z", Err(BadFormat)),
            ("12025-07-10T12:34:56.000Z", Err(BadFormat)),
            ("2025-07-10T12:34Z", Err(BadFormat)),
            ("2025-07-10", Err(BadFormat)),
            ("20250710T123456Z", Err(BadFormat)),
            ("", Err(BadFormat)),
        ];
        for &(text, expected) in table {
            assert_eq!(parse(text), expected, "{text}");
        }
    }

    #[test]
    fn rounds_only_past_the_millisecond() {
        let cases: &[(&str, i64, i64)] = &[
            ("1970-01-01T00:00:56.0005Z", 56_001, 56_000),
            ("1970-01-01T00:00:56.0000001Z", 56_001, 56_000),
            ("1970-01-01T00:00:56.000000000Z", 56_000, 56_000),
            ("1970-01-01T00:00:56.999999999Z", 57_000, 56_999),
            ("1970-01-01T00:00:56.9990Z", 56_999, 56_999),
            ("1969-12-31T23:59:59.9995Z", 0, -1),
            ("1969-12-31T23:59:59.0001Z", -999, -1000),
            ("9999-12-31T23:59:59.9991Z", MAX_ISO_MS + 1, MAX_ISO_MS),
        ];
        for &(text, up, down) in cases {
            assert_eq!(parse_iso_ms(text.as_bytes(), Round::Up), Ok(up), "{text}");
            assert_eq!(parse_iso_ms(text.as_bytes(), Round::Down), Ok(down), "{text}");
        }
    }

    #[test]
    fn writes_the_table() {
        let table: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (1_752_150_896_789, "2025-07-10T12:34:56.789Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (MIN_ISO_MS, "0000-01-01T00:00:00.000Z"),
            (MAX_ISO_MS, "9999-12-31T23:59:59.999Z"),
            (MIN_ISO_MS - 1, "0000-01-01T00:00:00.000Z"),
            (i64::MIN, "0000-01-01T00:00:00.000Z"),
            (MAX_ISO_MS + 1, "9999-12-31T23:59:59.999Z"),
            (i64::MAX, "9999-12-31T23:59:59.999Z"),
        ];
        let mut out = [0u8; ISO_MS_LEN];
        for &(ms, text) in table {
            write_iso_ms(ms, &mut out);
            assert_eq!(std::str::from_utf8(&out), Ok(text), "{ms}");
        }
    }

    #[test]
    fn calendar_matches_a_day_by_day_walk() {
        // Walk every day of years 0000..=9999 and compare the closed forms with counting.
        let mut days = days_from_civil(0, 1, 1);
        for year in 0..=9999 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(year, month, day), days);
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days * MS_PER_DAY - 1, MAX_ISO_MS);
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let low = days_from_civil(1, 1, 1) * MS_PER_DAY;
        let span = (MAX_ISO_MS - low + 1) as u64;
        let mut out = [0u8; ISO_MS_LEN];
        for i in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mix in values near the epoch and at the ends of the range.
            let ms = match i % 4 {
                0 => (state % 4_000_000_000_000) as i64 - 2_000_000_000_000,
                1 => MIN_ISO_MS + (state % 100_000_000_000) as i64,
                2 => MAX_ISO_MS - (state % 100_000_000_000) as i64,
                _ => low + (state % span) as i64,
            };
            write_iso_ms(ms, &mut out);
            assert_eq!(parse_iso_ms(&out, Round::Up), Ok(ms), "{ms}");
            assert_eq!(parse_iso_ms(&out, Round::Down), Ok(ms), "{ms}");
        }
    }

    const VALID: &[&str] = &[
        "2025-07-10T12:34:56.000Z",
        "2025-07-10T12:34:56.123456789+00:00",
        "2025-07-10T12:34:56-00:00",
        "2024-02-29T23:59:59.9Z",
    ];

    #[test]
    fn every_proper_prefix_is_an_error() {
        for text in VALID {
            assert!(parse(text).is_ok(), "{text}");
            for end in 0..text.len() {
                let prefix = &text.as_bytes()[..end];
                assert!(parse_iso_ms(prefix, Round::Up).is_err(), "{:?}", &text[..end]);
                assert!(parse_iso_ms(prefix, Round::Down).is_err(), "{:?}", &text[..end]);
            }
        }
    }

    #[test]
    fn every_invalid_byte_at_every_position_is_an_error() {
        for text in VALID {
            for at in 0..text.len() {
                for b in 0..=255u8 {
                    let mut bytes = text.as_bytes().to_vec();
                    let original = bytes[at];
                    bytes[at] = b;
                    let result = parse_iso_ms(&bytes, Round::Down);
                    // Only a digit for a digit, a case change of T/Z, or the other zero-offset
                    // sign can still be valid.
                    let may_pass = (original.is_ascii_digit() && b.is_ascii_digit())
                        || b.eq_ignore_ascii_case(&original)
                        || (matches!(original, b'+' | b'-') && matches!(b, b'+' | b'-') && at >= 19);
                    if !may_pass {
                        assert!(result.is_err(), "{text} with {b} at {at}");
                    }
                }
                // Deleting or inserting a byte never panics.
                let mut removed = text.as_bytes().to_vec();
                removed.remove(at);
                let _ = parse_iso_ms(&removed, Round::Up);
                let mut inserted = text.as_bytes().to_vec();
                inserted.insert(at, b'0');
                let _ = parse_iso_ms(&inserted, Round::Up);
            }
        }
    }

    #[test]
    fn reasons_are_json_safe_sentences() {
        use TimeError::*;
        for error in [
            BadFormat,
            MissingZone,
            OffsetNotUtc,
            BadFraction,
            MonthOutOfRange,
            DayOutOfRange,
            HourOutOfRange,
            MinuteOutOfRange,
            SecondOutOfRange,
        ] {
            let reason = error.reason();
            assert!(reason
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
        }
    }
}
