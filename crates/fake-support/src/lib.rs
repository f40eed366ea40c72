//! What the provider fakes share. Each provider crate may ship a fake of its PSP (behind
//! its `fakes` feature) for tests, the stand-alone sandbox and the embedded default; this
//! crate holds what they have in common:
//!
//! - [`FakeCore`]: a fake's configuration, client and state under one lock, and
//!   [`Records`], the objects it holds in creation order by id;
//! - [`FakeRegistration`]: how a fake is found (`inventory`) and mounted at `/fakes/{id}`;
//! - [`faults`]: countdowns of injected failures, and answers that break the connection;
//! - [`replay`]: idempotent replay of saved answers by key, with a request fingerprint;
//! - [`delivery`]: signed webhooks in a background task, retried with a growing delay.
//!
//! Architecture invariant: nothing here is needed to run the gateway against real PSPs. A
//! build without the `fakes` feature does not link this crate.

#![warn(missing_docs)]

mod core;
pub mod delivery;
pub mod faults;
mod records;
mod registration;
pub mod replay;

pub use crate::core::{base_url, FakeCore};
pub use records::Records;
pub use registration::{fakes, FakeContext, FakeRegistration, DEMO_PATH};
