//! The PostgreSQL dialect: the store that several gateway replicas share.
//!
//! Transactions run at READ COMMITTED (the server's default), several at once: a decision
//! reads its rows `FOR UPDATE`, leasing skips rows another transaction holds and is
//! serialised per schema by an advisory lock, and the webhook writer inserts a whole batch
//! in one statement per table (all in `sql`).

mod sql;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use psp_core::ports::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};

use crate::db::RowsAffected;
use crate::dialect::{sealed, Dialect, Opened};
use crate::engine::SqlStore;

/// The store on PostgreSQL.
pub type PgStore = SqlStore<Postgres>;

/// The PostgreSQL [`Dialect`]: one database (or one schema of it, chosen with
/// `?options[search_path]=name` in the URL) shared by every replica.
///
/// [`PgStore::open`] takes `postgres://…` or `postgresql://…` with every libpq-style
/// parameter sqlx knows (e.g. `sslmode=verify-full` for TLS with the webpki roots); the
/// database must exist, and its schema is migrated. Replicas starting at once are safe: the
/// migrator holds an advisory lock while it migrates. Every connection runs with
/// `synchronous_commit=on`, whatever the server's default: a committed webhook has been
/// flushed to the server's WAL, which a 2xx to the PSP promises. `Debug` shows host, port
/// and database, never the URL (it may hold a password).
#[derive(Debug)]
pub struct Postgres;

/// Connections for everything except `record_webhook`, per store (per replica). The
/// server does the work, so a few more than SQLite's are useful; several replicas times
/// this must stay below the server's `max_connections`.
const POOL_SIZE: u32 = 8;

/// How long an operation waits for a free pooled connection before failing, so that an
/// unreachable server shows up as errors rather than hung requests.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

impl sealed::Sealed for Postgres {}

impl Dialect for Postgres {
    type Db = sqlx::Postgres;

    const NAME: &'static str = "PgStore";
    const TARGET: &'static str = "server";

    const BEGIN_WRITE: Option<&'static str> = None;

    /// Row locks until the transaction ends: a second transaction reading the same rows
    /// waits for the first to commit, then sees what it wrote.
    const LOCK_ROWS: &'static str = " FOR UPDATE";

    const LEASE_LOCK: Option<&'static str> = Some(sql::LEASE_LOCK);

    const LEASE: &'static str = sql::LEASE;

    async fn open(url: &str) -> Result<Opened<sqlx::Postgres>, StoreError> {
        // The parse error never holds the URL (sqlx reports which part is wrong), but the
        // message stays generic about where it came from.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?
            .options([("synchronous_commit", "on")]);
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );

        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Backend(format!("connecting to {target}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {target}: {e}")))?;
        let writer = writer::start(options).await?;
        Ok(Opened {
            pool,
            writer,
            target,
        })
    }
}
