//! The Kustom provider (Kustom is Klarna Checkout v3 and Order Management v1 under a new
//! name): an iframe checkout, confirmation and push with acknowledgement, the validation
//! callback, order sync, capture and void, and a strict fake Kustom.
//!
//! - **Checkout** turns the rendered cart into a Kustom checkout order ([`order`], with
//!   the tax rates derived in [`tax`]) and answers `{htmlSnippet, orderId, checkoutUrl}`. The order's
//!   `merchant_reference1` is the cart id; its push URL is the gateway's
//!   `/webhooks/kustom?kustom_order_id={checkout.order.id}` and its validation URL
//!   `/providers/kustom/validate`.
//! - **Confirm** and **push** run the gateway's shared completion, which reads the order
//!   through [`KustomProvider`]'s `fetch`; `after_completion` acknowledges the order.
//!   The push is not signed, so it is only a hint: the order is re-read with our own
//!   credentials, at most `push_reads_per_order` times per window for one order and
//!   `push_reads_per_window` times for all orders together, and only for orders a
//!   checkout session of this gateway holds.
//! - **Validation** answers Kustom's pre-purchase call within its 3 s (`validate`).
//! - **Sync** replaces the order lines while the order is `checkout_incomplete`.
//! - **Capture** and **void** go through Order Management with `Klarna-Idempotency-Key`.
//!
//! [`fake`] is Kustom for tests and the embedded default, compiled with the `fakes`
//! feature (on by default; a production build leaves it out), registered as a
//! `fake_support::FakeRegistration` and mounted by the gateway at `/fakes/kustom`.

#![warn(missing_docs)]

mod client;
pub mod config;
#[cfg(feature = "fakes")]
pub mod fake;
mod limit;
pub mod order;
mod provider;
pub mod tax;
mod validate;

pub use client::IDEMPOTENCY_HEADER;
pub use config::KustomConfig;
#[cfg(feature = "fakes")]
pub use fake::{FakeConfig, FakeKustom, PushSchedule, SANDBOX_API_KEY};
pub use order::{OrderAmounts, OrderLine};
pub use provider::{KustomProvider, FAKE_PATH, ID, ORDER_ID_PLACEHOLDER, VALIDATE_PATH};
