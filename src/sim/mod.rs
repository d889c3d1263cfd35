//! The payment processor simulator (issue 3): the official processor's behaviour
//! as a model without I/O, so the pipeline simulation can run processors in-process on a
//! virtual clock, plus the HTTP service that puts the model on the project's reactor for the
//! `payment-processor-sim` binary.
//!
//! # Layout
//! - [`model`]: [`ProcessorState`], one processor as a state machine: admission, delay,
//!   failure, the payment table, the admin settings. Time enters only as `now_ms`.
//! - [`health`]: the health endpoint's fixed-window rate limiter and its waiting queue.
//! - [`decimal`]: amounts, sums and fees printed with .NET `decimal` scales.
//! - [`service`]: [`SimService`], requests ↔ model, Kestrel-like framing, random closes.
//! - [`config`]: environment → [`SimConfig`], the `--help` text.

pub mod body;
pub mod config;
pub mod decimal;
pub mod health;
pub mod model;
pub mod service;

pub use config::SimConfig;
pub use model::{
    AdminSummary, Answer, HealthAnswer, HealthStatus, PaymentOutcome, ProcessorConfig, ProcessorState, Unreadable,
};
pub use service::{Framing, ServiceOptions, SimService};
