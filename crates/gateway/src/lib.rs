//! psp-gateway: one service in front of many PSPs for shops on Hantera Commerce.
//!
//! The binary's pieces: configuration ([`config`]), the HTTP edge ([`app`], `routes`),
//! the background worker ([`worker`]), metrics, and the assembly of it all ([`server`]).

pub mod app;
pub mod config;
pub mod error;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod ratelimit;
mod routes;
pub mod server;
pub mod worker;

// Linking the provider crates is what registers them: `inventory` collects the
// registrations of every crate in the binary. Nothing here names a provider otherwise.
use kustom as _;
use mock as _;
use stripe as _;
