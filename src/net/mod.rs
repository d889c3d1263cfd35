//! The only home of `mio` and of socket `libc` calls: the event loop, the inbound
//! connection protocol, listeners, timers, buffers and the few system calls around them.

pub mod buf;
pub mod conn;
pub mod event_loop;
pub mod listen;
pub mod outbound;
pub mod service;
pub mod sys;
pub mod timers;
