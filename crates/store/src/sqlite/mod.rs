//! The SQLite dialect: the embedded default, one database file (or a shared in-memory
//! database for tests).
//!
//! SQLite runs one writer at a time, so a transaction that writes takes the write lock at
//! its start (`BEGIN IMMEDIATE`) and reads without row locks; `crate::sql::jobs::LEASE` is
//! its lease as written.

mod writer;

use std::str::FromStr;
use std::time::Duration;

use psp_core::ports::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use crate::db::RowsAffected;
use crate::dialect::{sealed, Dialect, Opened};
use crate::engine::SqlStore;
use crate::sql::jobs;

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

/// The SQLite [`Dialect`].
///
/// [`SqliteStore::open`] takes `sqlite://path.db`, `sqlite:path.db` or `sqlite::memory:`,
/// creating the database if missing. The connections use WAL (readers never block the
/// writer), `synchronous=FULL` (a committed webhook has been fsynced, so it survives
/// SIGKILL and power loss, which a 2xx to the PSP promises), a busy timeout (other
/// connections and other gateway processes wait for the write lock instead of failing)
/// and foreign keys. `Debug` shows the database file, never the URL it came from.
#[derive(Debug)]
pub struct Sqlite;

/// How long a statement waits for another connection's write lock before failing. Long
/// enough to ride out a large webhook batch or a WAL checkpoint, short enough that a
/// stuck process shows up as errors rather than as hung requests.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections for everything except `record_webhook`. WAL lets them read while the
/// writer writes; the machines this runs on have few cores, so a few are enough.
const POOL_SIZE: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}

impl sealed::Sealed for Sqlite {}

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;

    const NAME: &'static str = "SqliteStore";
    const TARGET: &'static str = "database";

    /// `BEGIN IMMEDIATE` takes SQLite's write lock at once: a deferred transaction that
    /// reads first and writes later can fail with `SQLITE_BUSY` without waiting when
    /// another connection (or another gateway process) wrote in between, whereas an
    /// immediate one waits its turn under the busy timeout.
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");

    /// None needed: the write lock taken at `BEGIN IMMEDIATE` keeps every other writer out
    /// until the commit.
    const LOCK_ROWS: &'static str = "";

    const LEASE_LOCK: Option<&'static str> = None;

    const LEASE: &'static str = jobs::LEASE;

    async fn open(url: &str) -> Result<Opened<sqlx::Sqlite>, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let database = options.get_filename().display().to_string();

        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Backend(format!("opening {database}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {database}: {e}")))?;

        // The writer opens its own connection once the schema exists. For an in-memory
        // database the pool's permanent connection keeps the database alive.
        let writer = writer::start(&options, BUSY_TIMEOUT)?;
        Ok(Opened {
            pool,
            writer,
            target: database,
        })
    }
}
