//! The store's behaviour suite (`suite/`) against SQLite, on a fresh database file per test.

mod common;
mod suite;
