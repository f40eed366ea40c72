//! The mock PSP: a payment service provider that exists only for development, tests and
//! demonstrations, in two parts.
//!
//! - [`fake`] is the PSP itself: an axum router with in-memory state that speaks a small
//!   Stripe-like JSON API (`/v1/payments`, captures, voids, idempotency keys, signed
//!   webhooks) and serves a hosted Approve/Decline page for the customer. It also has
//!   fault controls under `/v1/_test/` so tests can make it fail, hang or lose an answer.
//! - [`MockProvider`] is the adapter the gateway uses, registered with `inventory` under
//!   the id `"mock"`. It talks to the fake only over HTTP, exactly as the Stripe adapter
//!   talks to Stripe, so the fake and the adapter agree through the wire format alone.
//!
//! The fake is compiled with the `fakes` feature (on by default; a production build leaves
//! it out) and registered with `inventory` as a `fake_support::FakeRegistration`: the
//! gateway mounts it at `/fakes/mock` in `psp-gateway sandbox` and in the embedded default
//! (which points `api_base` there), without naming this crate.

#![warn(missing_docs)]

#[cfg(feature = "fakes")]
pub mod fake;
mod provider;

#[cfg(feature = "fakes")]
pub use fake::{ApproveOptions, FakeConfig, FakeMockPsp, SANDBOX_WEBHOOK_SECRET};
pub use provider::{MockProvider, FAKE_PATH, ID, SIGNATURE_HEADER};
