//! The store's behaviour suite (`crates/store/tests/suite/`) against `MemStore`, so that
//! the in-process tests of the orchestrator and the gateway cannot rely on semantics the
//! real stores do not have. The suite's tests of what only a database has (reopening,
//! several processes on one database, closing) are left out at compile time: see
//! `common::persistent`.

#[path = "store_suite/common.rs"]
mod common;

#[path = "../../store/tests/suite/mod.rs"]
mod suite;
