//! Every integration test of the Kustom provider, in one binary (one link on a two-core
//! machine instead of one per file). Each module is one subject.

mod common;
mod conformance;
mod fake_api;
mod fuzz_push;
mod orders;
mod provider;
mod push;
mod validate;
