//! The store's behaviour suite (`suite/`) against the real PostgreSQL server, on a fresh
//! schema per test, plus what only PostgreSQL has: several replicas (stores) on one
//! database at once, and opening by URL.

#[path = "common/mod.rs"]
mod shared;

#[path = "common/postgres.rs"]
mod common;

mod suite;

#[path = "postgres/replicas.rs"]
mod replicas;
