//! The base layer: plain data and pure functions over std alone, which every layer above may
//! use and which use nothing of ours.
//!
//! - [`clock`]: the loop's reading of the clocks, [`clock::Now`].
//! - [`uuid`]: correlationIds as 16 bytes, read and written.
//! - [`amount`]: exact cents ⇄ JSON numbers.
//! - [`json`]: the one JSON object reader.
//! - [`error`]: why a body was refused.
//! - [`payment`]: the processors, and our `POST /payments` body.
//! - [`iso8601`]: ISO-8601 ⇄ milliseconds without a date library.
//! - [`window`]: the summary query string → an inclusive millisecond window.
//! - [`settings`]: the shapes of settings read from the environment.

pub mod amount;
pub mod clock;
pub mod error;
pub mod iso8601;
pub mod json;
pub mod payment;
pub mod settings;
pub mod uuid;
pub mod window;
