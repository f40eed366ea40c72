//! Group commit for `record_webhook` on PostgreSQL, on a task of its own.
//!
//! The same design as the SQLite writer (`crate::sqlite::writer`): one task owns one
//! dedicated connection, takes the first queued request, drains whatever else is queued
//! (up to [`MAX_BATCH`]), writes them all in one transaction and commits once, so that a
//! burst of webhooks costs one WAL flush on the server instead of one per webhook. Each
//! table gets one statement per batch (arrays bound as parameters), so a batch is two
//! round trips plus BEGIN and COMMIT however large it is.
//!
//! Architecture invariant: no caller is answered `Ok` before the COMMIT that made its
//! webhook durable (the connection runs with `synchronous_commit=on`), and a batch that
//! fails answers every caller in it with an error.

use std::collections::HashSet;

use psp_core::ports::{NewWebhook, Recorded, StoreError};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::sql;
use crate::clock::now_ms;

/// The most webhooks committed in one transaction; see the SQLite writer's reasoning.
pub(crate) const MAX_BATCH: usize = 512;

/// How many requests may wait for the writer before callers wait to enqueue.
const QUEUE: usize = 2 * MAX_BATCH;

type Reply = oneshot::Sender<Result<Recorded, StoreError>>;

// Nearly every message is a `Record`, so boxing it to shrink the rare `Close` would only
// add an allocation per webhook.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// Record a webhook and answer on the channel once it is durable (or failed).
    Record(NewWebhook, Reply),
    /// Finish what is queued before this message, close the connection and stop.
    Close(oneshot::Sender<()>),
}

/// The handle through which the store talks to its writer task.
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
}

impl Writer {
    /// Opens the writer's connection and starts its task on the current Tokio runtime.
    pub(crate) async fn start(options: PgConnectOptions) -> Result<Self, StoreError> {
        let conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::Backend(format!("opening the webhook writer: {e}")))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(Some(conn), options, rx));
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
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = stopped.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend("the store is closed: the webhook was not recorded".into())
}

/// The writer task. It ends on `Msg::Close` or when every sender is gone (the store was
/// dropped); either way everything queued before the end is committed and answered first.
async fn run(
    mut conn: Option<PgConnection>,
    options: PgConnectOptions,
    mut rx: mpsc::Receiver<Msg>,
) {
    let mut batch: Vec<(NewWebhook, Reply)> = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else {
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
            commit_batch(&mut conn, &options, &mut batch).await;
        }
    }
    drop(rx);
    if let Some(conn) = conn {
        if let Err(err) = conn.close().await {
            tracing::warn!(%err, "closing the webhook writer's connection failed");
        }
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Writes and commits one batch, then answers every caller in it.
async fn commit_batch(
    conn: &mut Option<PgConnection>,
    options: &PgConnectOptions,
    batch: &mut Vec<(NewWebhook, Reply)>,
) {
    let result = match conn {
        Some(c) => write(c, batch).await,
        None => match PgConnection::connect_with(options).await {
            Ok(c) => write(conn.insert(c), batch).await,
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(outcomes) => {
            tracing::trace!(size = batch.len(), "webhook batch committed");
            for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                // The caller may have gone away; the record stands and a resend will be a
                // duplicate.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(err) => {
            tracing::error!(%err, size = batch.len(), "webhook batch failed; nothing in it was recorded");
            // The transaction rolled back (or never began). The connection may be what
            // failed, so the next batch starts on a fresh one.
            *conn = None;
            let message = format!("recording the webhook failed: {err}");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Backend(message.clone())));
            }
        }
    }
}

/// Records every webhook of the batch in one transaction: the webhooks in one statement,
/// then the jobs of those that were new in another. Of several webhooks with the same
/// (provider, event id) in one batch, the first is new and the rest are duplicates, as if
/// they had arrived one after the other.
async fn write(
    conn: &mut PgConnection,
    batch: &[(NewWebhook, Reply)],
) -> Result<Vec<Recorded>, sqlx::Error> {
    let now = now_ms();
    let mut tx = conn.begin().await?;
    let webhooks = batch.iter().map(|(w, _)| w);
    let inserted = sqlx::query(sql::WEBHOOKS_INSERT)
        .bind(
            webhooks
                .clone()
                .map(|w| w.provider.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            webhooks
                .clone()
                .map(|w| w.event_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            webhooks
                .clone()
                .map(|w| w.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            webhooks
                .clone()
                .map(|w| w.psp_ref.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            webhooks
                .clone()
                .map(|w| w.body.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
    let mut new: HashSet<(String, String)> = inserted
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;

    let mut outcomes = Vec::with_capacity(batch.len());
    let mut jobs = Vec::new();
    for webhook in webhooks {
        // Removing the key makes a later webhook of the batch with the same key a duplicate.
        if new.remove(&(webhook.provider.clone(), webhook.event_id.clone())) {
            outcomes.push(Recorded::New);
            jobs.extend(webhook.job.as_ref());
        } else {
            outcomes.push(Recorded::Duplicate);
        }
    }
    if !jobs.is_empty() {
        sqlx::query(sql::JOBS_INSERT)
            .bind(jobs.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>())
            .bind(
                jobs.iter()
                    .map(|j| j.dedupe_key.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.cart_id.map(|c| c.to_string()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| j.payload.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                jobs.iter()
                    .map(|j| i64::from(j.max_attempts))
                    .collect::<Vec<_>>(),
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}
