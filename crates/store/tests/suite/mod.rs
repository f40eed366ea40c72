//! The store's behaviour tests, compiled into one test binary per backend (`sqlite.rs`,
//! `postgres.rs`), so that every backend is held to the same assertions. Each binary
//! provides `crate::common`: the helpers, `Backend` (its store type), `TempDb` (a fresh
//! database that `open` can open several times, as several processes would) and `store()`.

mod claims;
mod completions;
mod jobs;
mod sessions;
mod sync;
mod webhooks;
