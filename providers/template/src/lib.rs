//! The template provider: an adapter and a fake of its PSP, in the smallest complete shape
//! a provider crate has (`docs/providers.md`).
//!
//! - [`provider`]: the adapter (`impl Provider`), registered with `inventory` under the id
//!   `"template"`. It talks to its PSP over HTTP only: a JSON API with bearer
//!   authentication, idempotency keys on every change, and webhooks signed with the core
//!   scheme in the `template-signature` header.
//! - [`fake`]: a fake of that PSP (behind the `fakes` feature, on by default), registered
//!   as a `fake_support::FakeRegistration`: the gateway mounts it at `/fakes/template` in
//!   the embedded default and `psp-gateway sandbox`, and the conformance suite
//!   (`tests/integration/conformance.rs`) runs the adapter against it.
//!
//! For a real PSP, replace the fake's wire format with the PSP's own (its documentation's
//! requests, answers, errors and signature scheme), keep the adapter talking to it over
//! HTTP only, and add what the PSP can do (`sync`, `after_completion`, `routes`,
//! `live_credential`) to the adapter.

#![warn(missing_docs)]

#[cfg(feature = "fakes")]
pub mod fake;
pub mod provider;

pub use provider::{Adapter, ID, SIGNATURE_HEADER};
