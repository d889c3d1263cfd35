//! `parse_payment` never panics, and whatever it accepts survives a trip through our own
//! canonical serialisation unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payrelay::base::amount::{parse_amount, write_amount, MAX_CENTS};
use payrelay::base::payment::parse_payment;

fuzz_target!(|body: &[u8]| {
    // The amount reader alone, on raw tokens: in range whenever it says Ok.
    if let Ok(cents) = parse_amount(body) {
        assert!((1..=MAX_CENTS).contains(&cents));
    }
    let Ok(request) = parse_payment(body) else {
        return;
    };
    assert!((1..=MAX_CENTS).contains(&request.cents));
    let mut id = [0u8; 36];
    request.id.write_canonical(&mut id);
    let mut again = Vec::with_capacity(80);
    again.extend_from_slice(b"{\"correlationId\":\"");
    again.extend_from_slice(&id);
    again.extend_from_slice(b"\",\"amount\":");
    write_amount(request.cents, &mut again);
    again.push(b'}');
    assert_eq!(parse_payment(&again), Ok(request));
});
