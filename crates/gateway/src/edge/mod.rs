//! The HTTP edge: the router and its layers, the handlers, the one error type, the rate
//! limits and the accept loop. Handlers parse and check what arrives, call the services
//! (`crate::services`), and turn their answers and typed errors into HTTP.
//!
//! Architecture invariant: the edge sits on top. It uses the services and the core, and
//! nothing below it uses the edge (`architecture::the_gateway_imports_in_one_direction`).

pub mod app;
pub mod error;
pub mod http;
pub mod ratelimit;
mod routes;

pub use app::{metrics_router, router, AppState};
