//! Every provider the product ships, in one crate. The gateway depends on this crate alone:
//! linking it links each provider, whose `inventory` registrations are then found at
//! start-up, so nothing outside `providers/` names a provider.
//!
//! A provider is one line below and one dependency (and its `fakes` feature) in
//! `Cargo.toml` (see `docs/providers.md`). `providers/template` is deliberately absent.

#![warn(missing_docs)]

pub use kustom;
pub use mock;
pub use stripe;
