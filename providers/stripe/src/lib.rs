//! The Stripe provider: PaymentIntents checkout, verified webhooks, manual capture, amount
//! sync, and a fake Stripe speaking Stripe's wire format.
//!
//! - [`StripeProvider`] is the adapter, registered with `inventory` under the id
//!   `"stripe"`. It creates one PaymentIntent per cart (`capture_method=manual` by
//!   default), verifies `Stripe-Signature` with the core verifier against every configured
//!   secret, re-reads PaymentIntents before anything is completed, captures with
//!   `amount_to_capture`, and cancels double payments. Requests follow the retry rule of
//!   Stripe's own libraries with one idempotency key per operation (see `client.rs`).
//! - [`currency`] is Stripe's own currency table (zero-decimal, three-decimal with a last
//!   digit of 0, ISK), so amounts are converted exactly or refused.
//! - [`fake`] is a fake Stripe: PaymentIntents with Stripe's status machine, strict form
//!   parsing, idempotent replay, test payment methods, signed events to webhook endpoints,
//!   fault injection and a hosted test page. It is compiled with the `fakes` feature (on
//!   by default; a production build leaves it out) and registered as a
//!   `fake_support::FakeRegistration`, so the gateway mounts it at `/fakes/stripe` in
//!   `psp-gateway sandbox` and in the embedded default without naming this crate.
//!
//! Architecture invariant: the adapter talks to Stripe (or the fake) over HTTP only; the
//! two agree through Stripe's wire format, never through shared types.

#![warn(missing_docs)]

mod client;
pub mod config;
pub mod currency;
#[cfg(feature = "fakes")]
pub mod fake;
mod provider;
mod transformers;

pub use config::{CaptureMethod, StripeConfig, DEFAULT_API_VERSION};
#[cfg(feature = "fakes")]
pub use fake::{
    FakeStripe, FakeStripeConfig, SANDBOX_PUBLISHABLE_KEY, SANDBOX_SECRET_KEY,
    SANDBOX_WEBHOOK_SECRET,
};
pub use provider::{StripeProvider, FAKE_PATH, ID, PUBLIC_KEY_PATH, SIGNATURE_HEADER};
