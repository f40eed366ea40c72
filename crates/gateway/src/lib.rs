//! psp-gateway: one service in front of many PSPs for shops on Hantera Commerce.
//!
//! The crate imports in one direction (`docs/architecture.md`):
//!
//! - [`server`], the assembly, builds everything and is the only module that sees all of
//!   it: the adapters, the services and the edge;
//! - [`edge`], the HTTP edge (router, handlers, errors, rate limits, accept loop), calls
//! - [`services`], what the gateway does (payments, the job queue, the jobs, the worker),
//!   which knows nothing of HTTP and uses
//! - the core's ports (`psp_core`), with [`config`] and [`metrics`] beside them.

pub mod config;
pub mod edge;
pub mod metrics;
pub mod server;
pub mod services;

// Linking the providers is what registers them: `inventory` collects the registrations of
// every crate in the binary. `all` links every provider the product ships, so nothing here
// names one.
use all as _;
