//! `parse_iso_ms` never panics; a millisecond-precision timestamp it accepts is written back
//! by `write_iso_ms` as the same instant, and Up/Down differ only by sub-millisecond digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payrelay::base::iso8601::{parse_iso_ms, write_iso_ms, Round, ISO_MS_LEN, MAX_ISO_MS};

fuzz_target!(|text: &[u8]| {
    let up = parse_iso_ms(text, Round::Up);
    let down = parse_iso_ms(text, Round::Down);
    let (Ok(up), Ok(down)) = (up, down) else {
        assert_eq!(up.is_ok(), down.is_ok());
        return;
    };
    assert!(up == down || up == down + 1);
    let mut out = [0u8; ISO_MS_LEN];
    write_iso_ms(down, &mut out);
    assert_eq!(parse_iso_ms(&out, Round::Down), Ok(down));
    if up == down && up <= MAX_ISO_MS {
        // No digit past the millisecond mattered: the text and our output name one instant.
        write_iso_ms(up, &mut out);
        assert_eq!(parse_iso_ms(&out, Round::Up), Ok(up));
    }
});
