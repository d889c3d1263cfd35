//! payrelay: a payment intermediary for the Rinha de Backend 2025 rules, built as one
//! thread running one `mio` reactor per process, with payments kept in a lock-free table in
//! a memory-mapped file that every instance shares.
//!
//! # Layers
//! Each folder is a layer; a layer imports only from layers below it (`tests/architecture.rs`
//! checks this, and that `mio` stays in `net` and `libc` in the files that make system
//! calls). From the bottom up:
//! - [`base`]: std only (and `itoa`): the clock reading [`base::clock::Now`], payment types,
//!   the JSON reader, amounts in cents, UUIDs, ISO-8601, the summary window, settings.
//! - [`segment`]: the shared payment table in a memory-mapped file: atomics, owners and
//!   their liveness, claims, the time index, purge.
//! - [`http`]: HTTP/1.1 framing without I/O: requests over `httparse`, preformatted
//!   responses, the client's answer parser. Beside `segment`; neither uses the other.
//! - [`dispatch`]: the dispatcher, sans I/O: claims, routing, retries, exactly once. It owns
//!   the vocabulary of its calls ([`dispatch::Call`], [`dispatch::Completion`]).
//! - [`net`]: the only home of `mio` and of socket system calls: the event loop, the
//!   service interface it offers, the inbound connection protocol, listeners, outbound
//!   sockets, timers, buffers.
//! - [`upstream`]: pools of keep-alive connections to the processors (pool, resolver, wire
//!   format), performing the dispatcher's calls on the loop.
//! - [`app`]: the application: HTTP routes, the pipeline joining dispatcher and pools,
//!   configuration, command line.
//! - [`sim`]: the payment processor simulator, sans I/O plus its service; nothing imports
//!   it. Beside `app`.
//!
//! `docs/ARCHITECTURE.md` tells the whole design: topology, a payment's life, the
//! correctness rules, routing, and the segment's protocol.
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
