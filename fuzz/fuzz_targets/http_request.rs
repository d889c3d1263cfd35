//! Request framing never panics, and a `Complete` answer is consistent: its length covers a
//! head that ends in a blank line plus exactly the body it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payrelay::http::request::{parse_request, MAX_HEADERS, MAX_REQUEST_BYTES};
use payrelay::http::Parse;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    if let Parse::Complete(req, used) = parse_request(data, &mut headers) {
        assert!(used <= data.len() && used <= MAX_REQUEST_BYTES);
        assert!(req.body.len() <= used);
        assert_eq!(&data[used - req.body.len()..used], req.body);
    }
});
