//! What SQLite and PostgreSQL really do differently, as the engine (`crate::engine`) asks
//! for it: how a database is opened and its webhooks written, how a write transaction
//! begins, how the rows a decision reads are locked, and how jobs are leased.
//!
//! The differences exist because PostgreSQL runs transactions of several connections (and
//! of several gateway replicas) at once at READ COMMITTED, where SQLite runs one writer at
//! a time: SQLite takes its write lock up front (`BEGIN IMMEDIATE`), PostgreSQL locks the
//! rows a decision reads (`FOR UPDATE`) and serialises leasing with an advisory lock.

use std::future::Future;

use psp_core::ports::StoreError;
use sqlx::{Database, Pool};

use crate::db::SqlDb;
use crate::group_commit::Writer;

/// A database the store runs on: [`Sqlite`](crate::Sqlite) or
/// [`Postgres`](crate::Postgres). Sealed: the engine's correctness rests on what each
/// implementation says here.
pub trait Dialect: sealed::Sealed + Sized + Send + Sync + 'static {
    /// The sqlx database.
    type Db: SqlDb;

    /// How `Debug` names the store.
    const NAME: &'static str;

    /// What `Debug` calls the place the store was opened on (never the URL: it may hold a
    /// password).
    const TARGET: &'static str;

    /// How a transaction that writes begins; `None` for the database's plain `BEGIN`.
    const BEGIN_WRITE: Option<&'static str>;

    /// Appended to a query that reads the rows a decision in the same transaction rests
    /// on, so that a concurrent transaction cannot change them before the commit.
    const LOCK_ROWS: &'static str;

    /// Run first in the transaction of `lease_jobs`, if the database needs it.
    const LEASE_LOCK: Option<&'static str>;

    /// The statement that leases jobs: `$1` owner, `$2` lease end, `$3` now, `$4` limit.
    const LEASE: &'static str;

    /// Opens (and migrates) the database at `url` and starts its webhook writer.
    fn open(url: &str) -> impl Future<Output = Result<Opened<Self::Db>, StoreError>> + Send;
}

/// A database opened by a [`Dialect`].
pub struct Opened<DB: Database> {
    /// The pool for everything except `record_webhook`.
    pub(crate) pool: Pool<DB>,
    /// The group-commit writer of `record_webhook`.
    pub(crate) writer: Writer,
    /// What `Debug` shows.
    pub(crate) target: String,
}

pub(crate) mod sealed {
    /// Keeps [`Dialect`](super::Dialect) to this crate's implementations.
    pub trait Sealed {}
}
