//! The store's integration tests, in one binary: the behaviour suite
//! (`testkit::store_suite`) against SQLite (a fresh database file per test) and PostgreSQL
//! (a fresh schema per test on the real server, `PSP_TEST_POSTGRES_URL`), plus what only
//! each has: opening SQLite by URL, its pragmas and its writer's failures (`open`), and
//! several PostgreSQL replicas on one database (`postgres::replicas`).

mod open;
mod postgres;
mod sqlite;
