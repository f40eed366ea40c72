//! Group commit for `record_webhook`, on a thread of its own.
//!
//! Recording a webhook must be durable before the PSP gets its 2xx, and with
//! `synchronous=FULL` every commit costs an fsync: one commit per webhook would cap the
//! gateway at the disk's fsync rate. Instead one writer thread owns a dedicated connection
//! and commits the webhooks of many concurrent requests together: it takes the first
//! queued request, drains whatever else is queued (up to [`MAX_BATCH`]), writes them all in
//! one transaction and commits once. Only after that commit does it answer each caller, so
//! a caller that sees `Ok` holds a durable record.
//!
//! The writer talks to SQLite directly (rusqlite, prepared statements cached on its
//! connection) on a plain OS thread rather than through sqlx: sqlx runs every statement
//! on a worker thread behind a channel, and on the webhook hot path those hand-offs, not
//! SQLite, were the cost. Both link the same bundled SQLite library.
//!
//! Architecture invariant: no caller is ever answered `Ok` for a batch that did not commit,
//! and a batch that fails answers every caller in it with an error, so nothing is ever
//! half-recorded from a caller's point of view. (An answer lost because the caller went
//! away is harmless: the PSP resends and the resend is a duplicate.)

use std::time::Duration;

use psp_core::ports::{NewWebhook, Recorded, StoreError};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::{mpsc, oneshot};

use crate::clock::now_ms;
use crate::sql::{jobs, webhook_inbox};

/// The most webhooks committed in one transaction. Large enough that a burst of thousands
/// of concurrent requests needs only a few fsyncs, small enough that one transaction holds
/// SQLite's write lock (which the other gateway writers wait for) only for milliseconds.
pub(crate) const MAX_BATCH: usize = 512;

/// How many requests may wait for the writer before callers wait to enqueue. Two batches:
/// one being written and the next one filling up.
const QUEUE: usize = 2 * MAX_BATCH;

type Reply = oneshot::Sender<Result<Recorded, StoreError>>;

/// A message to the writer thread.
// Nearly every message is a `Record`, so boxing it to shrink the rare `Close` would only
// add an allocation per webhook.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// Record a webhook and answer on the channel once it is durable (or failed).
    Record(NewWebhook, Reply),
    /// Finish what is queued before this message, close the connection and stop.
    Close(oneshot::Sender<()>),
}

/// The handle through which the store talks to its writer thread.
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
}

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

impl Writer {
    /// Opens the writer's connection and starts its thread. Call it after the migrations
    /// ran, on the database `options` name.
    pub(crate) fn start(
        options: &SqliteConnectOptions,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let target = Target::from_sqlx(options, busy_timeout);
        let conn = target
            .open()
            .map_err(|e| StoreError::Backend(format!("opening the webhook writer: {e}")))?;
        // WAL checkpoints copy the log back into the database file. Done by the writer at
        // commit time (every 1,000 pages by default) they stall every webhook waiting on
        // that commit, so a checkpointer thread of its own does them. Under a long burst
        // that thread cannot finish while the writer keeps appending, so the writer still
        // checkpoints itself past WAL_PAGES, and the file is cut back to JOURNAL_LIMIT: the
        // log stays bounded whatever the load.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)
            .and_then(|()| conn.pragma_update(None, "journal_size_limit", JOURNAL_LIMIT))
            .map_err(|e| StoreError::Backend(format!("configuring the webhook writer: {e}")))?;
        let checkpointer = target
            .open()
            .map_err(|e| StoreError::Backend(format!("opening the checkpointer: {e}")))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let alive = tx.downgrade();
        std::thread::Builder::new()
            .name("webhook-writer".into())
            .spawn(move || run(Some(conn), &target, rx))
            .map_err(|e| StoreError::Backend(format!("starting the webhook writer: {e}")))?;
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || checkpoint(checkpointer, alive))
            .map_err(|e| StoreError::Backend(format!("starting the checkpointer: {e}")))?;
        Ok(Self { tx })
    }

    /// Records one webhook through the writer and waits until it is durable.
    pub(crate) async fn record(&self, webhook: NewWebhook) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Record(webhook, reply))
            .await
            .map_err(|_| closed())?;
        // A dropped reply means the writer stopped before it got to this request, so the
        // webhook was not recorded.
        answer.await.map_err(|_| closed())?
    }

    /// Lets the writer finish every request queued so far, then stops it and waits until
    /// its connection is closed. Later `record` calls fail.
    pub(crate) async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        // A send error means the writer has stopped already.
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the store is closed: the webhook was not recorded".into())
}

/// WAL pages (4 KiB each) past which the writer checkpoints by itself: about 64 MiB.
const WAL_PAGES: i64 = 16_384;

/// The size the WAL file is cut back to after a checkpoint resets it, in bytes.
const JOURNAL_LIMIT: i64 = 64 * 1024 * 1024;

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The checkpointer thread: a PASSIVE checkpoint (it never blocks the writer) every
/// [`CHECKPOINT_EVERY`], for as long as the store exists.
fn checkpoint(conn: Connection, alive: mpsc::WeakSender<Msg>) {
    while alive.upgrade().is_some() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%err, "WAL checkpoint failed; the next one retries");
        }
    }
}

/// The writer thread. It ends on `Msg::Close` or when every sender is gone (the store was
/// dropped); either way everything queued before the end is committed and answered first,
/// and the connection is closed last.
fn run(mut conn: Option<Connection>, target: &Target, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<(NewWebhook, Reply)> = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(webhook, reply) => batch.push((webhook, reply)),
                Msg::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, target, &mut batch);
        }
    }
    // Requests queued behind `Close` are dropped with the receiver; their callers learn
    // that nothing was recorded.
    drop(rx);
    if let Some(conn) = conn {
        if let Err((_, err)) = conn.close() {
            tracing::warn!(%err, "closing the webhook writer's connection failed");
        }
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Writes and commits one batch, then answers every caller in it.
fn commit_batch(
    conn: &mut Option<Connection>,
    target: &Target,
    batch: &mut Vec<(NewWebhook, Reply)>,
) {
    let result = match conn {
        Some(c) => write(c, batch),
        None => match target.open() {
            Ok(c) => write(conn.insert(c), batch),
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(outcomes) => {
            tracing::trace!(size = batch.len(), "webhook batch committed");
            for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                // The caller may have gone away (its request was cancelled); the record
                // stands and a resend will be a duplicate.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(err) => {
            tracing::error!(%err, size = batch.len(), "webhook batch failed; nothing in it was recorded");
            // The transaction was rolled back when it was dropped. The connection may be
            // what failed, so the next batch starts on a fresh one.
            *conn = None;
            let message = format!("recording the webhook failed: {err}");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Backend(message.clone())));
            }
        }
    }
}

/// Records every webhook of the batch in one transaction. Each insert's affected-row count
/// tells a new webhook from a duplicate, including a duplicate of an earlier webhook in the
/// same batch, since the transaction sees its own inserts. The job of a webhook is added
/// only when the webhook is new, so a resent webhook never schedules work twice.
fn write(
    conn: &mut Connection,
    batch: &[(NewWebhook, Reply)],
) -> Result<Vec<Recorded>, rusqlite::Error> {
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
