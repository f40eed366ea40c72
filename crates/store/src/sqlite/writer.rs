//! Group commit for `record_webhook`.
//!
//! Recording a webhook must be durable before the PSP gets its 2xx, and with
//! `synchronous=FULL` every commit costs an fsync: one commit per webhook would cap the
//! gateway at the disk's fsync rate. Instead one writer task owns a dedicated connection
//! and commits the webhooks of many concurrent requests together: it takes the first
//! queued request, drains whatever else is queued (up to [`MAX_BATCH`]), writes them all in
//! one transaction and commits once. Only after that commit does it answer each caller, so
//! a caller that sees `Ok` holds a durable record.
//!
//! Architecture invariant: no caller is ever answered `Ok` for a batch that did not commit,
//! and a batch that fails answers every caller in it with an error, so nothing is ever
//! half-recorded from a caller's point of view. (An answer lost because the caller went
//! away is harmless: the PSP resends and the resend is a duplicate.)

use psp_core::ports::{NewWebhook, Recorded, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite};

use super::sql::{jobs as jobs_sql, webhook_inbox};
use super::BEGIN_WRITE;
use crate::clock::now_ms;

/// The most webhooks committed in one transaction. Large enough that a burst of thousands
/// of concurrent requests needs only a few fsyncs, small enough that one transaction holds
/// SQLite's write lock (which the other gateway writers wait for) only for milliseconds.
pub(crate) const MAX_BATCH: usize = 512;

/// How many requests may wait for the writer before callers wait to enqueue. Two batches:
/// one being written and the next one filling up.
const QUEUE: usize = 2 * MAX_BATCH;

/// A message to the writer task.
// Nearly every message is a `Record`, so boxing it to shrink the rare `Close` would only
// add an allocation per webhook.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// Record a webhook and answer on the channel once it is durable (or failed).
    Record(NewWebhook, oneshot::Sender<Result<Recorded, StoreError>>),
    /// Finish what is queued before this message, close the connection and stop.
    Close,
}

/// The handle through which the store talks to its writer task.
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer task on `conn`. `options` reopen the connection after a failed
    /// batch, so that one broken connection does not fail every later webhook.
    pub(crate) fn start(conn: SqliteConnection, options: SqliteConnectOptions) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(Some(conn), options, rx));
        Self {
            tx,
            task: std::sync::Mutex::new(Some(task)),
        }
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
        // A send error means the writer has stopped already.
        let _ = self.tx.send(Msg::Close).await;
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            if let Err(err) = task.await {
                tracing::error!(%err, "the webhook writer task ended abnormally");
            }
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the store is closed: the webhook was not recorded".into())
}

/// The writer task. It ends on `Msg::Close` or when every sender is gone (the store was
/// dropped); either way everything queued before the end is committed and answered first,
/// and the connection is closed last.
async fn run(
    mut conn: Option<SqliteConnection>,
    options: SqliteConnectOptions,
    mut rx: mpsc::Receiver<Msg>,
) {
    let mut batch: Vec<(NewWebhook, oneshot::Sender<Result<Recorded, StoreError>>)> =
        Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    while !closing {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(webhook, reply) => batch.push((webhook, reply)),
                Msg::Close => {
                    closing = true;
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, &options, &mut batch).await;
        }
    }
    // Requests queued behind `Close` are dropped with the receiver; their callers learn
    // that nothing was recorded.
    drop(rx);
    if let Some(conn) = conn {
        if let Err(err) = conn.close().await {
            tracing::warn!(%err, "closing the webhook writer's connection failed");
        }
    }
}

/// Writes and commits one batch, then answers every caller in it.
async fn commit_batch(
    conn: &mut Option<SqliteConnection>,
    options: &SqliteConnectOptions,
    batch: &mut Vec<(NewWebhook, oneshot::Sender<Result<Recorded, StoreError>>)>,
) {
    let result = match conn {
        Some(c) => write(c, batch).await,
        None => match SqliteConnection::connect_with(options).await {
            Ok(c) => write(conn.insert(c), batch).await,
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
            // The transaction was rolled back. The connection may be what failed, so the
            // next batch starts on a fresh one.
            *conn = None;
            let message = format!("recording the webhook failed: {err}");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Backend(message.clone())));
            }
        }
    }
}

/// Rows per multi-row statement: 6 bound values a row stays far below SQLite's limit of
/// 32,766 variables per statement.
const ROWS_PER_STATEMENT: usize = 1000;

/// Records every webhook of the batch in one transaction, with one multi-row statement for
/// the inbox and one for the jobs, so a batch costs a handful of round trips to SQLite
/// instead of two per webhook. `RETURNING` names the rows that were inserted, which tells a
/// new webhook from a duplicate, including a duplicate of an earlier webhook in the same
/// batch (SQLite inserts the rows in order, so the first occurrence wins). The job of a
/// webhook is added only when the webhook is new, so a resent webhook never schedules work
/// twice.
async fn write(
    conn: &mut SqliteConnection,
    batch: &[(NewWebhook, oneshot::Sender<Result<Recorded, StoreError>>)],
) -> Result<Vec<Recorded>, sqlx::Error> {
    let now = now_ms();
    let mut tx = conn.begin_with(BEGIN_WRITE).await?;
    let mut inserted: HashSet<(String, String)> = HashSet::with_capacity(batch.len());
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(webhook_inbox::INSERT_MANY_HEAD);
        insert.push_values(chunk, |mut row, (webhook, _)| {
            row.push_bind(&webhook.provider)
                .push_bind(&webhook.event_id)
                .push_bind(&webhook.event_type)
                .push_bind(webhook.psp_ref.as_deref())
                .push_bind(&webhook.body[..])
                .push_bind(now);
        });
        insert.push(webhook_inbox::INSERT_MANY_TAIL);
        let rows: Vec<(String, String)> = insert.build_query_as().fetch_all(&mut *tx).await?;
        inserted.extend(rows);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut jobs = Vec::new();
    for (webhook, _) in batch {
        // Removing the key makes a second occurrence in the same batch a duplicate.
        if inserted.remove(&(webhook.provider.clone(), webhook.event_id.clone())) {
            outcomes.push(Recorded::New);
            jobs.extend(webhook.job.as_ref());
        } else {
            outcomes.push(Recorded::Duplicate);
        }
    }
    for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(jobs_sql::INSERT_MANY_HEAD);
        insert.push_values(chunk, |mut row, job| {
            row.push_bind(&job.kind)
                .push_bind(&job.dedupe_key)
                .push_bind(job.cart_id.map(|c| c.to_string()))
                .push_bind(job.payload.to_string())
                .push_unseparated(", 'pending', 0, ")
                .push_bind_unseparated(i64::from(job.max_attempts))
                .push_bind(now)
                .push_bind(now)
                .push_bind(now);
        });
        insert.push(jobs_sql::INSERT_MANY_TAIL);
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}
