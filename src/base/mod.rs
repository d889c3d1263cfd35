//! The base layer: plain data and pure functions over std alone, which every layer above may
//! use and which use nothing of ours.
//!
//! - [`clock`]: the loop's reading of the clocks, [`clock::Now`].
//! - [`payment`]: correlationIds, exact cents, processors, the JSON reader for payment bodies.
//! - [`iso8601`]: ISO-8601 ⇄ milliseconds without a date library.
//! - [`window`]: the summary query string → an inclusive millisecond window.

pub mod clock;
pub mod iso8601;
pub mod payment;
pub mod window;
