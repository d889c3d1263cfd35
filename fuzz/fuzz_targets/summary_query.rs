//! `parse_window` never panics, and a bound it returns is one `write_iso_ms` can print and
//! `parse_iso_ms` reads back, so a window can always be echoed to the client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payrelay::base::iso8601::{parse_iso_ms, write_iso_ms, Round, ISO_MS_LEN, MAX_ISO_MS, MIN_ISO_MS};
use payrelay::base::window::parse_window;

fuzz_target!(|query: &[u8]| {
    let Ok(window) = parse_window(query) else {
        return;
    };
    for ms in [window.from_ms, window.to_ms].into_iter().flatten() {
        // `from` rounds up, so it may pass the last printable millisecond by one.
        assert!((MIN_ISO_MS..=MAX_ISO_MS + 1).contains(&ms));
        if ms <= MAX_ISO_MS {
            let mut out = [0u8; ISO_MS_LEN];
            write_iso_ms(ms, &mut out);
            assert_eq!(parse_iso_ms(&out, Round::Down), Ok(ms));
        }
    }
});
