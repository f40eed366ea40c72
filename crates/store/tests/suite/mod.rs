//! The store's behaviour tests, compiled into one test binary per backend (`sqlite.rs`,
//! `postgres.rs`), so that every backend is held to the same assertions. Each binary
//! provides `crate::common`: the helpers, `Backend` (its store type), `TempDb` (a fresh
//! database that `open` can open several times, as several processes would) and `store()`.
//!
//! `MemStore` runs the suite too (`crates/testkit/tests/store_suite.rs`). It has no
//! database, so the tests that need one (reopening, several stores on one database,
//! closing) are wrapped in `persistent! { … }`, which each binary's `common` defines:
//! the real stores' binaries compile what it wraps, the `MemStore` binary drops it. The
//! `MemStore` binary's `common` has no `TempDb`, so a test that needs one and is not
//! wrapped does not compile there.

mod claims;
mod completions;
mod jobs;
mod sessions;
mod sync;
mod webhooks;
