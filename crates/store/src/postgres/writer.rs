//! The PostgreSQL webhook writer: group commit (`crate::group_commit`) on a task of its
//! own, with one dedicated connection. Each table gets one statement per batch (arrays
//! bound as parameters), so a batch is two round trips plus BEGIN and COMMIT however large
//! it is. The connection runs with `synchronous_commit=on`, so a COMMIT is durable.

use std::collections::HashSet;

use psp_core::ports::{Recorded, StoreError};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};

use super::sql;
use crate::clock::now_ms;
use crate::group_commit::{self, Pending, Queue, Writer, MAX_BATCH};

/// Opens the writer's connection and starts its task on the current Tokio runtime.
pub(super) async fn start(options: PgConnectOptions) -> Result<Writer, StoreError> {
    let conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| StoreError::Backend(format!("opening the webhook writer: {e}")))?;
    let (writer, queue) = Writer::channel();
    tokio::spawn(run(Some(conn), options, queue));
    Ok(writer)
}

/// The writer task. It ends on `close` or when the store is dropped; either way everything
/// queued before the end is committed and answered first.
async fn run(mut conn: Option<PgConnection>, options: PgConnectOptions, mut queue: Queue) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while queue.next(&mut batch).await {
        let result = match &mut conn {
            Some(c) => write(c, &batch).await,
            None => match PgConnection::connect_with(&options).await {
                Ok(c) => write(conn.insert(c), &batch).await,
                Err(err) => Err(err),
            },
        };
        if !group_commit::answer(&mut batch, result) {
            // The transaction rolled back (or never began). The connection may be what
            // failed, so the next batch starts on a fresh one.
            conn = None;
        }
    }
    let done = queue.finish();
    if let Some(conn) = conn {
        if let Err(err) = conn.close().await {
            tracing::warn!(%err, "closing the webhook writer's connection failed");
        }
    }
    done.signal();
}

/// Records every webhook of the batch in one transaction: the webhooks in one statement,
/// then the jobs of those that were new in another. Of several webhooks with the same
/// (provider, event id) in one batch, the first is new and the rest are duplicates, as if
/// they had arrived one after the other.
async fn write(conn: &mut PgConnection, batch: &[Pending]) -> Result<Vec<Recorded>, sqlx::Error> {
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
