//! HTTP/1.1 as this service speaks it: request framing over `httparse` ([`request`]),
//! responses written from preformatted bytes ([`response`]), and the framing of the
//! processors' answers to our own requests ([`client`]).

pub mod client;
pub mod request;
pub mod response;

pub use request::{parse_request, HttpError, Method, Need, Parse, Request};
pub use response::Status;
