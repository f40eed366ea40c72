//! Jobs: enqueued, leased, finished, replayed, with progress and history.

use std::time::Duration;

use async_trait::async_trait;
use psp_core::ports::{
    Enqueued, Job, JobEvent, JobResult, JobState, Jobs, NewJob, PendingJobs, StoreError,
};

use super::{execute, fetch_all, fetch_one, SqlStore};
use crate::clock::{millis, now_ms};
use crate::db::{db, Bind, SqlDb, SqlRow};
use crate::decode;
use crate::dialect::Dialect;
use crate::sql::{job_history, jobs};

/// Appends one event to a job's history.
async fn append_event<DB: SqlDb>(
    conn: &mut DB::Connection,
    id: i64,
    event: &str,
    attempt: i64,
    error: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    let statement = sqlx::query::<DB>(job_history::APPEND)
        .arg(id)
        .arg(event)
        .arg(attempt)
        .arg(error)
        .arg(at);
    execute(conn, statement).await?;
    Ok(())
}

#[async_trait]
impl<D: Dialect> Jobs for SqlStore<D> {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        let insert = Self::query(jobs::INSERT)
            .arg(&job.kind)
            .arg(&job.dedupe_key)
            .arg(job.cart_id.map(|c| c.to_string()))
            .arg(job.payload.to_string())
            .arg(i64::from(job.max_attempts))
            .arg(now_ms());
        if let Some(row) = self.fetch_optional(insert).await? {
            return Ok(Enqueued::New(row.col("id")?));
        }
        // Jobs are never deleted, so the job that holds the key is still there.
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let row = fetch_one(
            &mut *conn,
            Self::query(jobs::ID_BY_KEY).arg(&job.dedupe_key),
        )
        .await?;
        Ok(Enqueued::Duplicate(row.col("id")?))
    }

    async fn lease_jobs(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let now = now_ms();
        // Both statements run in one write transaction, so the jobs failed by the first are
        // out of the way (and their carts' next jobs leasable) when the second picks.
        let mut tx = self.begin_write().await?;
        if let Some(lock) = D::LEASE_LOCK {
            execute(&mut *tx, Self::query(lock)).await?;
        }
        let exhausted = fetch_all(&mut *tx, Self::query(jobs::EXHAUST).arg(now)).await?;
        for row in &exhausted {
            let id: i64 = row.col("id")?;
            let attempts: i64 = row.col("attempts")?;
            let error: Option<String> = row.col("last_error")?;
            append_event::<D::Db>(&mut *tx, id, "expired", attempts, error.as_deref(), now).await?;
        }
        let exhausted = exhausted.len();
        let lease = Self::query(D::LEASE)
            .arg(owner)
            .arg(now.saturating_add(millis(lease)))
            .arg(now)
            .arg(i64::from(limit));
        let mut leased = fetch_all(&mut *tx, lease)
            .await?
            .iter()
            .map(decode::job)
            .collect::<Result<Vec<_>, _>>()?;
        for job in &leased {
            let attempt = i64::from(job.attempts);
            append_event::<D::Db>(&mut *tx, job.id, "leased", attempt, None, now).await?;
        }
        tx.commit().await.map_err(db)?;
        if exhausted > 0 {
            tracing::warn!(exhausted, "jobs failed: their last attempt's lease expired");
        }
        // RETURNING gives rows in no particular order; hand them out oldest first.
        leased.sort_by_key(|j| j.id);
        Ok(leased)
    }

    async fn finish_job(&self, id: i64, owner: &str, result: JobResult) -> Result<(), StoreError> {
        let now = now_ms();
        let statement = match &result {
            JobResult::Succeeded => Self::query(jobs::SUCCEED).arg(id).arg(owner).arg(now),
            JobResult::Retry { after, error } => Self::query(jobs::RETRY)
                .arg(id)
                .arg(owner)
                .arg(now.saturating_add(millis(*after)))
                .arg(error)
                .arg(now),
            JobResult::Failed { error } => Self::query(jobs::FAIL)
                .arg(id)
                .arg(owner)
                .arg(error)
                .arg(now),
        };
        let mut tx = self.begin_write().await?;
        let finished = execute(&mut *tx, statement).await?;
        if finished > 0 {
            let history = Self::query(job_history::APPEND_FINISH).arg(id).arg(now);
            execute(&mut *tx, history).await?;
        }
        tx.commit().await.map_err(db)?;
        if finished == 0 {
            let mut conn = self.pool.acquire().await.map_err(db)?;
            let exists: i64 = fetch_one(&mut *conn, Self::query(jobs::EXISTS).arg(id))
                .await?
                .col("count")?;
            if exists == 0 {
                return Err(StoreError::NotFound(format!("job {id}")));
            }
            // Another worker took the job over after our lease expired (or it ended): its
            // attempt is the one that counts.
            tracing::debug!(
                id,
                owner,
                "finish of a job whose lease this owner lost: ignored"
            );
        }
        Ok(())
    }

    async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        self.fetch_optional(Self::query(jobs::GET).arg(id))
            .await?
            .map(|row| decode::job(&row))
            .transpose()
    }

    async fn job_by_key(&self, dedupe_key: &str) -> Result<Option<Job>, StoreError> {
        self.fetch_optional(Self::query(jobs::BY_KEY).arg(dedupe_key))
            .await?
            .map(|row| decode::job(&row))
            .transpose()
    }

    async fn jobs_in(&self, state: JobState, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.fetch_all(
            Self::query(jobs::IN_STATE)
                .arg(state.as_str())
                .arg(i64::from(limit)),
        )
        .await?
        .iter()
        .map(decode::job)
        .collect()
    }

    async fn replay_job(&self, id: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let replayed = execute(&mut *tx, Self::query(jobs::REPLAY).arg(id).arg(now)).await?;
        if replayed > 0 {
            append_event::<D::Db>(&mut *tx, id, "replayed", 0, None, now).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(replayed > 0)
    }

    async fn save_job_progress(
        &self,
        id: i64,
        owner: &str,
        payload: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let saved = self
            .execute(
                Self::query(jobs::SAVE_PROGRESS)
                    .arg(id)
                    .arg(owner)
                    .arg(payload.to_string())
                    .arg(now_ms()),
            )
            .await?;
        Ok(saved > 0)
    }

    async fn job_history(&self, id: i64) -> Result<Vec<JobEvent>, StoreError> {
        self.fetch_all(Self::query(job_history::OF_JOB).arg(id))
            .await?
            .iter()
            .map(decode::job_event)
            .collect()
    }

    async fn pending_jobs(&self) -> Result<Vec<PendingJobs>, StoreError> {
        self.fetch_all(Self::query(jobs::PENDING_BY_KIND))
            .await?
            .iter()
            .map(decode::pending_jobs)
            .collect()
    }
}
