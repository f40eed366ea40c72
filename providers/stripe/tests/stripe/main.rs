//! Every integration test of the Stripe provider, in one binary (one link on a two-core
//! machine instead of one per file). Each module is one subject.

mod common;
mod conformance;
mod fake_api;
mod fuzz_webhook;
mod provider;
mod signatures;
