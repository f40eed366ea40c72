//! Checkout sessions and their cart-sync bookkeeping.

use std::time::Duration;

use async_trait::async_trait;
use psp_core::money::Money;
use psp_core::ports::{
    decide_sync, rules, JobState, NewJob, PendingSync, Session, SessionStatus, SessionSync,
    Sessions, StoreError, SyncDecision, SyncJobState, SyncScheduled,
};
use sqlx::Database;
use uuid::Uuid;

use super::{execute, fetch_optional, SqlStore};
use crate::clock::{millis, now_ms};
use crate::db::{db, Bind, SqlRow};
use crate::decode;
use crate::dialect::Dialect;
use crate::sql::{jobs, sessions};

impl<D: Dialect> SqlStore<D> {
    /// Runs a statement that sets a session's idempotency key (reserve or restart), then
    /// reads the row back. Sessions are never deleted, so the row exists afterwards
    /// whether or not the statement changed it.
    async fn write_session_key(
        &self,
        sql: &str,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError> {
        let cart = cart_id.to_string();
        self.execute(
            Self::query(sql)
                .arg(&cart)
                .arg(provider)
                .arg(idempotency_key)
                .arg(now_ms()),
        )
        .await?;
        self.fetch_session(sessions::GET, &cart, provider)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session of cart {cart_id} at {provider}")))
    }

    async fn fetch_session(
        &self,
        sql: &'static str,
        a: &str,
        b: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.fetch_optional(Self::query(sql).arg(a).arg(b))
            .await?
            .map(|row| decode::session(&row))
            .transpose()
    }

    /// Where the session's newest sync job `id` is, read (locked) inside `tx`.
    async fn sync_job_state(
        &self,
        tx: &mut <D::Db as Database>::Connection,
        id: i64,
        now: i64,
    ) -> Result<Option<SyncJobState>, StoreError> {
        let statement = Self::query(&self.locked.sync_job).arg(id).arg(now);
        let Some(row) = fetch_optional(tx, statement).await? else {
            return Ok(None);
        };
        let state: String = row.col("state")?;
        let running: i64 = row.col("running")?;
        let state = JobState::parse(&state)
            .ok_or_else(|| StoreError::Backend(format!("job {id} has state {state:?}")))?;
        Ok(Some(SyncJobState::of(id, state, running != 0)))
    }
}

#[async_trait]
impl<D: Dialect> Sessions for SqlStore<D> {
    async fn session(&self, cart_id: Uuid, provider: &str) -> Result<Option<Session>, StoreError> {
        self.fetch_session(sessions::GET, &cart_id.to_string(), provider)
            .await
    }

    async fn session_by_ref(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.fetch_session(sessions::BY_REF, provider, psp_ref)
            .await
    }

    async fn reserve_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError> {
        self.write_session_key(sessions::RESERVE, cart_id, provider, idempotency_key)
            .await
    }

    async fn restart_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError> {
        self.write_session_key(sessions::RESTART, cart_id, provider, idempotency_key)
            .await
    }

    async fn save_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
        amount: Money,
        client: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let updated = self
            .execute(
                Self::query(sessions::SAVE)
                    .arg(cart_id.to_string())
                    .arg(provider)
                    .arg(psp_ref)
                    .arg(amount.minor)
                    .arg(amount.currency.code())
                    .arg(client.to_string())
                    .arg(now_ms()),
            )
            .await?;
        if updated == 0 {
            // Saving without a reservation would store a session with no idempotency key.
            return Err(StoreError::NotFound(format!(
                "session of cart {cart_id} at {provider} (reserve it first)"
            )));
        }
        Ok(())
    }

    async fn set_session_amount(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
        amount: Money,
    ) -> Result<bool, StoreError> {
        let updated = self
            .execute(
                Self::query(sessions::SET_AMOUNT)
                    .arg(cart_id.to_string())
                    .arg(provider)
                    .arg(psp_ref)
                    .arg(amount.minor)
                    .arg(amount.currency.code())
                    .arg(now_ms()),
            )
            .await?;
        Ok(updated > 0)
    }

    async fn set_session_status(
        &self,
        provider: &str,
        psp_ref: &str,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        let from = rules::session_may_move_from(status);
        let sql = sessions::set_status(from.len());
        let mut statement = Self::query(&sql)
            .arg(provider)
            .arg(psp_ref)
            .arg(status.as_str())
            .arg(now_ms());
        for s in from {
            statement = statement.arg(s.as_str());
        }
        // No matching row is not an error: the session may have ended already, or the PSP
        // payment was started outside a session this gateway created.
        self.execute(statement).await?;
        Ok(())
    }

    async fn quiet_sessions(
        &self,
        quiet_for: Duration,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        self.fetch_all(
            Self::query(sessions::QUIET)
                .arg(now_ms().saturating_sub(millis(quiet_for)))
                .arg(i64::from(limit)),
        )
        .await?
        .iter()
        .map(decode::session)
        .collect()
    }

    async fn sessions_of_cart(&self, cart_id: Uuid) -> Result<Vec<Session>, StoreError> {
        self.fetch_all(Self::query(sessions::OF_CART).arg(cart_id.to_string()))
            .await?
            .iter()
            .map(decode::session)
            .collect()
    }

    async fn schedule_sync(
        &self,
        sync: PendingSync,
        job: NewJob,
        delay: Duration,
    ) -> Result<SyncScheduled, StoreError> {
        let cart = sync.cart_id.to_string();
        let now = now_ms();
        // One write transaction, with the session row and its newest sync job's row read
        // locked: a worker leasing that job (an UPDATE of its row) commits either before
        // the read (this sees it running and schedules a new job) or after this commits
        // (the job then reads the payload written here). Otherwise the lease could commit
        // between the read and the commit, and the mutation would join a job that already
        // read an older payload. Concurrent mutations of one session decide one after the
        // other, and number their sync jobs without gaps or repeats.
        let mut tx = self.begin_write().await?;
        let decide = Self::query(&self.locked.sync_decide)
            .arg(&cart)
            .arg(&sync.provider);
        let Some(row) = fetch_optional(&mut *tx, decide).await? else {
            // Rolled back now rather than on drop: a dropped transaction is rolled back
            // only when its connection is next used, and until then its locks stay held.
            tx.rollback().await.map_err(db)?;
            return Ok(SyncScheduled::NoSession);
        };
        let synced: Option<String> = row.col("synced_hash")?;
        let pending: Option<String> = row.col("pending_hash")?;
        let job_id: Option<i64> = row.col("sync_job_id")?;
        let seq: i64 = row.col("sync_seq")?;
        let newest = match job_id {
            Some(id) => self.sync_job_state(&mut *tx, id, now).await?,
            None => None,
        };
        let set_pending = Self::query(sessions::SYNC_SET_PENDING)
            .arg(&cart)
            .arg(&sync.provider)
            .arg(&sync.hash)
            .arg(sync.payload.to_string())
            .arg(sync.cart.to_string());
        execute(&mut *tx, set_pending).await?;
        let decision = decide_sync(&sync.hash, synced.as_deref(), pending.as_deref(), newest);
        let outcome = match decision {
            SyncDecision::Unchanged => SyncScheduled::Unchanged,
            SyncDecision::Coalesced(id) => SyncScheduled::Coalesced(id),
            SyncDecision::Schedule => {
                let seq = seq + 1;
                let job = NewJob {
                    dedupe_key: format!("{}:{seq}", job.dedupe_key),
                    ..job
                };
                let insert = Self::query(jobs::INSERT_DUE)
                    .arg(&job.kind)
                    .arg(&job.dedupe_key)
                    .arg(job.cart_id.map(|c| c.to_string()))
                    .arg(job.payload.to_string())
                    .arg(i64::from(job.max_attempts))
                    .arg(now.saturating_add(millis(delay)))
                    .arg(now);
                let id: i64 = fetch_optional(&mut *tx, insert)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Backend(format!(
                            "sync job key {} exists already",
                            job.dedupe_key
                        ))
                    })?
                    .col("id")?;
                let set_job = Self::query(sessions::SYNC_SET_JOB)
                    .arg(&cart)
                    .arg(&sync.provider)
                    .arg(id)
                    .arg(seq);
                execute(&mut *tx, set_job).await?;
                SyncScheduled::Scheduled(id)
            }
        };
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }

    async fn session_sync(
        &self,
        cart_id: Uuid,
        provider: &str,
    ) -> Result<Option<SessionSync>, StoreError> {
        self.fetch_optional(
            Self::query(sessions::SYNC_GET)
                .arg(cart_id.to_string())
                .arg(provider),
        )
        .await?
        .map(|row| decode::session_sync(&row))
        .transpose()
    }

    async fn mark_synced(
        &self,
        cart_id: Uuid,
        provider: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            Self::query(sessions::SYNC_MARK)
                .arg(cart_id.to_string())
                .arg(provider)
                .arg(hash),
        )
        .await?;
        Ok(())
    }

    async fn flag_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            Self::query(sessions::FLAG)
                .arg(cart_id.to_string())
                .arg(provider)
                .arg(reason)
                .arg(now_ms()),
        )
        .await?;
        Ok(())
    }

    async fn flagged_sessions(&self, limit: u32) -> Result<Vec<SessionSync>, StoreError> {
        self.fetch_all(Self::query(sessions::FLAGGED).arg(i64::from(limit)))
            .await?
            .iter()
            .map(decode::session_sync)
            .collect()
    }
}
