//! The gateway's integration tests, one binary (linking one per file costs minutes on two
//! cores): each module is what used to be a file of its own.

mod architecture;
mod config_fuzz;
mod fuzz_hooks;
mod hooks_and_jobs;
