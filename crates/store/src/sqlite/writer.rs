//! The SQLite webhook writer: group commit (`crate::group_commit`) on a thread of its own.
//!
//! The writer talks to SQLite directly (rusqlite, prepared statements cached on its
//! connection) on a plain OS thread rather than through sqlx: sqlx runs every statement
//! on a worker thread behind a channel, and on the webhook hot path those hand-offs, not
//! SQLite, were the cost. Both link the same bundled SQLite library.

use std::time::Duration;

use psp_core::ports::{Recorded, StoreError};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use sqlx::sqlite::SqliteConnectOptions;

use crate::clock::now_ms;
use crate::group_commit::{self, Alive, Pending, Queue, Writer, MAX_BATCH};
use crate::sql::{jobs, webhook_inbox};

/// How to open the writer's own connection to the database the pool uses.
struct Target {
    filename: String,
    flags: OpenFlags,
    busy_timeout: Duration,
}

impl Target {
    fn from_sqlx(options: &SqliteConnectOptions, busy_timeout: Duration) -> Self {
        let filename = options.get_filename().display().to_string();
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // sqlx names an in-memory database `file:sqlx-in-memory-N` and opens it as a
        // shared-cache URI; opening the same name the same way joins that database.
        if filename.starts_with("file:") {
            flags |= OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_MEMORY
                | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        Self {
            filename,
            flags,
            busy_timeout,
        }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(&self.filename, self.flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        // The pool set WAL on the database already (it is persistent); FULL is per
        // connection and is what makes a commit an fsync.
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(conn)
    }
}

/// Opens the writer's connection and starts its thread. Call it after the migrations ran,
/// on the database `options` name.
pub(super) fn start(
    options: &SqliteConnectOptions,
    busy_timeout: Duration,
) -> Result<Writer, StoreError> {
    let target = Target::from_sqlx(options, busy_timeout);
    let conn = target
        .open()
        .map_err(|e| StoreError::Backend(format!("opening the webhook writer: {e}")))?;
    // WAL checkpoints copy the log back into the database file. Done by the writer at
    // commit time (every 1,000 pages by default) they stall every webhook waiting on that
    // commit, so a checkpointer thread of its own does them. Under a long burst that thread
    // cannot finish while the writer keeps appending, so the writer still checkpoints
    // itself past WAL_PAGES, and the file is cut back to JOURNAL_LIMIT: the log stays
    // bounded whatever the load.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)
        .and_then(|()| conn.pragma_update(None, "journal_size_limit", JOURNAL_LIMIT))
        .map_err(|e| StoreError::Backend(format!("configuring the webhook writer: {e}")))?;
    let checkpointer = target
        .open()
        .map_err(|e| StoreError::Backend(format!("opening the checkpointer: {e}")))?;
    let (writer, queue) = Writer::channel();
    let alive = writer.alive();
    std::thread::Builder::new()
        .name("webhook-writer".into())
        .spawn(move || run(Some(conn), &target, queue))
        .map_err(|e| StoreError::Backend(format!("starting the webhook writer: {e}")))?;
    std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || checkpoint(checkpointer, &alive))
        .map_err(|e| StoreError::Backend(format!("starting the checkpointer: {e}")))?;
    Ok(writer)
}

/// WAL pages (4 KiB each) past which the writer checkpoints by itself: about 64 MiB.
const WAL_PAGES: i64 = 16_384;

/// The size the WAL file is cut back to after a checkpoint resets it, in bytes.
const JOURNAL_LIMIT: i64 = 64 * 1024 * 1024;

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The checkpointer thread: a PASSIVE checkpoint (it never blocks the writer) every
/// [`CHECKPOINT_EVERY`], for as long as the store exists.
fn checkpoint(conn: Connection, alive: &Alive) {
    while alive.get() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%err, "WAL checkpoint failed; the next one retries");
        }
    }
}

/// The writer thread. It ends on `close` or when the store is dropped; either way
/// everything queued before the end is committed and answered first, and the connection is
/// closed last.
fn run(mut conn: Option<Connection>, target: &Target, mut queue: Queue) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while queue.blocking_next(&mut batch) {
        let result = match &mut conn {
            Some(c) => write(c, &batch),
            None => match target.open() {
                Ok(c) => write(conn.insert(c), &batch),
                Err(err) => Err(err),
            },
        };
        if !group_commit::answer(&mut batch, result) {
            // The transaction was rolled back when it was dropped. The connection may be
            // what failed, so the next batch starts on a fresh one.
            conn = None;
        }
    }
    let done = queue.finish();
    if let Some(conn) = conn {
        if let Err((_, err)) = conn.close() {
            tracing::warn!(%err, "closing the webhook writer's connection failed");
        }
    }
    done.signal();
}

/// Records every webhook of the batch in one transaction. Each insert's affected-row count
/// tells a new webhook from a duplicate, including a duplicate of an earlier webhook in the
/// same batch, since the transaction sees its own inserts. The job of a webhook is added
/// only when the webhook is new, so a resent webhook never schedules work twice.
fn write(conn: &mut Connection, batch: &[Pending]) -> Result<Vec<Recorded>, rusqlite::Error> {
    let now = now_ms();
    // IMMEDIATE takes the write lock up front, so a second gateway process on the same
    // file waits its turn (busy_timeout) instead of failing half-way.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut insert_webhook = tx.prepare_cached(webhook_inbox::INSERT)?;
        let mut insert_job = tx.prepare_cached(jobs::INSERT_QUIET)?;
        for (webhook, _) in batch {
            let inserted = insert_webhook.execute(params![
                webhook.provider,
                webhook.event_id,
                webhook.event_type,
                webhook.psp_ref,
                webhook.body,
                now,
            ])?;
            if inserted == 0 {
                outcomes.push(Recorded::Duplicate);
                continue;
            }
            if let Some(job) = &webhook.job {
                insert_job.execute(params![
                    job.kind,
                    job.dedupe_key,
                    job.cart_id.map(|c| c.to_string()),
                    job.payload.to_string(),
                    i64::from(job.max_attempts),
                    now,
                ])?;
            }
            outcomes.push(Recorded::New);
        }
    }
    tx.commit()?;
    Ok(outcomes)
}
