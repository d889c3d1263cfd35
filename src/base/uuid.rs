//! correlationIds: the 16 bytes of a canonical UUID, read and written without allocation.

/// A correlationId: the 16 bytes of a canonical UUID, compared and hashed as bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Uuid(pub [u8; 16]);

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

/// The value of one hex digit of either case.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match HEX_DIGIT[usize::from(b)] {
        0xff => None,
        value => Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::amount::tests::XorShift;

    const ID: &str = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";
    const ID_BYTES: [u8; 16] = [
        0x4a, 0x79, 0x01, 0xb8, 0x7d, 0x26, 0x4d, 0x9d, 0xaa, 0x19, 0x4d, 0xc1, 0xc7, 0xcf, 0x60, 0xb3,
    ];

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
}
