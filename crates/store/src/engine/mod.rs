//! The store on SQL: one implementation of every role of `psp_core::ports::Store` for both
//! databases, generic over the [`Dialect`] that says what differs.
//!
//! It runs the shared SQL of `crate::sql` and decides what to write by the core's rules
//! (`psp_core::ports::rules`). Every decision that reads before it writes is either one
//! conditional statement (`INSERT … ON CONFLICT`, `UPDATE … WHERE <expected state>`) or
//! runs in a write transaction that reads its rows with the dialect's lock
//! ([`Dialect::LOCK_ROWS`]): SQLite's `BEGIN IMMEDIATE` holds the database's write lock
//! from the start, PostgreSQL's `FOR UPDATE` holds the rows at READ COMMITTED, so two
//! connections (or two gateway processes or replicas) deciding on the same rows decide one
//! after the other, each seeing what the other committed. No retry loop on serialization
//! failures is needed.

mod completions;
mod jobs;
mod sessions;

use std::fmt;

use async_trait::async_trait;
use psp_core::ports::{Inbox, NewWebhook, Readiness, Recorded, StoreError};
use sqlx::{Database, Pool, Transaction};

use crate::db::{db, Bind, SqlDb, Statement};
use crate::decode;
use crate::dialect::{Dialect, Opened};
use crate::group_commit::Writer;
use crate::sql;
use crate::StoredWebhook;

/// The store on a SQL database: [`SqliteStore`](crate::SqliteStore) or
/// [`PgStore`](crate::PgStore).
///
/// `record_webhook` goes through a single writer with its own connection that commits
/// concurrent webhooks together (`crate::group_commit`); every other operation uses a
/// pool. Dropping the store stops the writer after it has finished what is queued;
/// [`SqlStore::close`] does the same and waits for it.
pub struct SqlStore<D: Dialect> {
    pool: Pool<D::Db>,
    writer: Writer,
    /// What `Debug` shows: never the URL the store was opened with.
    target: String,
    locked: Locked,
}

/// The shared queries whose rows a decision rests on, with the dialect's lock appended.
struct Locked {
    completion: String,
    sync_decide: String,
    sync_job: String,
}

impl<D: Dialect> fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(D::NAME)
            .field(D::TARGET, &self.target)
            .finish_non_exhaustive()
    }
}

/// Runs a statement on a connection; the number of rows it changed.
async fn execute<DB: SqlDb>(
    conn: &mut DB::Connection,
    statement: Statement<'_, DB>,
) -> Result<u64, StoreError> {
    let done = DB::execute(conn, statement).await.map_err(db)?;
    Ok(DB::rows_affected(&done))
}

/// Runs a query on a connection; every row.
async fn fetch_all<DB: SqlDb>(
    conn: &mut DB::Connection,
    statement: Statement<'_, DB>,
) -> Result<Vec<DB::Row>, StoreError> {
    DB::fetch_all(conn, statement).await.map_err(db)
}

/// Runs a query on a connection; its first row, if any.
async fn fetch_optional<DB: SqlDb>(
    conn: &mut DB::Connection,
    statement: Statement<'_, DB>,
) -> Result<Option<DB::Row>, StoreError> {
    DB::fetch_optional(conn, statement).await.map_err(db)
}

/// Runs a query on a connection; its first row, which must exist.
async fn fetch_one<DB: SqlDb>(
    conn: &mut DB::Connection,
    statement: Statement<'_, DB>,
) -> Result<DB::Row, StoreError> {
    fetch_optional(conn, statement)
        .await?
        .ok_or_else(|| db(sqlx::Error::RowNotFound))
}

impl<D: Dialect> SqlStore<D> {
    /// Opens the database at `url` and brings its schema up to date. The URLs and
    /// connection settings of each database are described at [`Sqlite`](crate::Sqlite)
    /// and [`Postgres`](crate::Postgres).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let Opened {
            pool,
            writer,
            target,
        } = D::open(url).await?;
        let locked = Locked {
            completion: format!("{}{}", sql::completions::GET, D::LOCK_ROWS),
            sync_decide: format!("{}{}", sql::sessions::SYNC_DECIDE, D::LOCK_ROWS),
            sync_job: format!("{}{}", sql::jobs::STATE_AND_LEASE, D::LOCK_ROWS),
        };
        Ok(Self {
            pool,
            writer,
            target,
            locked,
        })
    }

    /// Finishes the webhooks queued so far, then closes every connection. Operations after
    /// this fail. A graceful shutdown calls it so that the last writes (for SQLite, the
    /// last WAL checkpoint) are done.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// A recorded webhook, as received, for inspection and replay.
    pub async fn webhook(
        &self,
        provider: &str,
        event_id: &str,
    ) -> Result<Option<StoredWebhook>, StoreError> {
        self.fetch_optional(
            Self::query(sql::webhook_inbox::GET)
                .arg(provider)
                .arg(event_id),
        )
        .await?
        .map(|row| decode::webhook(&row))
        .transpose()
    }

    /// A statement of this store's database.
    fn query(text: &str) -> Statement<'_, D::Db> {
        sqlx::query(text)
    }

    /// Begins a transaction that writes, as the dialect begins one.
    async fn begin_write(&self) -> Result<Transaction<'static, D::Db>, StoreError> {
        match D::BEGIN_WRITE {
            Some(begin) => self.pool.begin_with(begin).await,
            None => self.pool.begin().await,
        }
        .map_err(db)
    }

    /// Runs a statement on a pooled connection; the number of rows it changed.
    async fn execute(&self, statement: Statement<'_, D::Db>) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        execute(&mut *conn, statement).await
    }

    /// Runs a query on a pooled connection; every row.
    async fn fetch_all(
        &self,
        statement: Statement<'_, D::Db>,
    ) -> Result<Vec<<D::Db as Database>::Row>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        fetch_all(&mut *conn, statement).await
    }

    /// Runs a query on a pooled connection; its first row, if any.
    async fn fetch_optional(
        &self,
        statement: Statement<'_, D::Db>,
    ) -> Result<Option<<D::Db as Database>::Row>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        fetch_optional(&mut *conn, statement).await
    }
}

#[async_trait]
impl<D: Dialect> Inbox for SqlStore<D> {
    async fn record_webhook(&self, webhook: NewWebhook) -> Result<Recorded, StoreError> {
        self.writer.record(webhook).await
    }
}

#[async_trait]
impl<D: Dialect> Readiness for SqlStore<D> {
    async fn ping(&self) -> Result<(), StoreError> {
        self.execute(Self::query("SELECT 1")).await?;
        Ok(())
    }
}
