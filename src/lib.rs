//! payrelay: a payment intermediary for the Rinha de Backend 2025 rules, built as one
//! thread running one `mio` reactor per process, with payments kept in a lock-free table in
//! a memory-mapped file that every instance shares.
//!
//! # Layout
//! - [`config`]: environment → typed [`config::Config`], defaults, `--help` text.
//! - [`cli`]: the few command-line arguments both binaries take.
//! - [`sys`]: the few thin `libc` wrappers (termination signals, accept backlog).
//! - [`timer`]: deadlines; the next poll timeout.
//! - [`buf`]: capped read/write buffers; the only socket drain loops.
//! - [`reactor`]: the event loop: listeners, a slab of connections, timers, deferred close.
//! - [`http`]: request framing over `httparse` and preformatted responses.
//! - [`server`]: one inbound connection's state machine.
//! - [`api`]: the routes of SPEC §2: decode, validate, call the segment, encode.
//! - [`payment`]: correlationIds, exact cents, the JSON reader for the payment body.
//! - [`time`]: ISO-8601 ⇄ milliseconds without a date library.
//! - [`window`]: the summary query string → an inclusive millisecond window.
//! - [`segment`]: the shared payment table (mmap, atomics, time index, purge).
//! - [`dispatch`]: the dispatcher: claims, routing, retries, exactly once; sans I/O.
//! - [`pipeline`]: performs the dispatcher's actions with the upstream pools.
//! - [`processor_api`]: the processors' wire format as we call it (requests, answers, URLs).
//! - [`upstream`]: pools of keep-alive connections to the processors, on the reactor.
//! - [`sim`]: the payment processor simulator's logic, sans I/O (issue 3).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod app;
pub mod base;
pub mod dispatch;
pub mod http;
pub mod net;
pub mod segment;
pub mod sim;
pub mod upstream;
