//! Test helpers shared by every crate of the workspace:
//!
//! - [`mem`]: in-memory implementations of the core's ports, [`mem::MemHantera`] and
//!   [`mem::MemStore`], faithful to the semantics the completion orchestrator relies on
//!   and with programmable faults, so tests can replay a retry, a race or a crash exactly;
//! - [`conformance`]: the suite every provider crate runs against itself and its fake PSP;
//! - [`store_suite`](mod@store_suite): the behaviour suite every implementation of the store passes;
//! - [`routes`]: a provider's own routes on an axum router, as the gateway mounts them;
//! - [`fuzz`]: bounded proptest generators (arbitrary and structure-aware JSON) and the
//!   case count every fuzz test takes from `PSP_FUZZ_CASES`;
//! - [`voids`]: the completion orchestrator's void port, writing the gateway's void job.
//!
//! Architecture invariant: this crate depends on the core only. It is used from tests
//! (`[dev-dependencies]`) and never by production code.

pub mod conformance;
pub mod fuzz;
pub mod mem;
pub mod routes;
pub mod store_suite;
pub mod voids;

pub use voids::{VoidJobs, VOID_JOB};
