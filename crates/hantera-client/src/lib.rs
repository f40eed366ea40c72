//! Hantera over HTTP: the gateway's adapter for the [`psp_core::ports::Hantera`] port.
//!
//! [`HanteraClient`] obtains and caches an OAuth client-credentials token, sends actor
//! messages to `/resources/actors/…`, looks payments up through `/resources/graph`, and
//! reads carts from the public Commerce ingress. The wire format is specified in
//! `docs/hantera-wire.md`; every part of it that Hantera's documentation does not state is
//! in [`unverified`], and nowhere else.
//!
//! Architecture invariant: this crate knows nothing of PSPs, the store or the completion
//! flow. It turns port calls into HTTP and HTTP answers into [`psp_core::ports::HanteraError`],
//! and it repeats a call only where repeating cannot double an effect.

mod client;
mod config;
mod retry;
mod token;
pub mod unverified;
mod wire;

pub use client::HanteraClient;
pub use config::{ClientConfig, RetryPolicy};
