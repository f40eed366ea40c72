//! The PostgreSQL backend: the store that several gateway replicas share.
//!
//! It runs the shared SQL of `crate::sql` and the rules of `crate::rules`, like the SQLite
//! backend; what it does differently is in `sql` (row locks, `SKIP LOCKED`, batched
//! inserts) and in the transactions below. Transactions run at READ COMMITTED (the server's
//! default): every decision that reads before it writes either is one conditional statement
//! (`INSERT … ON CONFLICT`, `UPDATE … WHERE <expected state>`) or reads the rows it
//! decides on with `FOR UPDATE`, so no retry loop on serialization failures is needed.

mod sql;
mod writer;

// Compiled once per backend on purpose: the same decoding against each `DbRow`.
#[allow(clippy::duplicate_mod)]
#[path = "../decode.rs"]
mod decode;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use psp_core::money::Money;
use psp_core::ports::decide_sync;
use psp_core::ports::{
    CartClaim, Completion, CompletionState, CompletionTransition, CompletionUpdate, Completions,
    Enqueued, Inbox, Job, JobEvent, JobResult, JobState, Jobs, NewJob, NewWebhook, PendingJobs,
    PendingSync, Readiness, Recorded, Session, SessionStatus, SessionSync, Sessions, StoreError,
    SyncDecision, SyncJobState, SyncScheduled,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

use self::decode::db;
use self::writer::Writer;
use crate::clock::{millis, now_ms};
use crate::sql::{cart_claims, completions, job_history, jobs, sessions, webhook_inbox};
use crate::StoredWebhook;
use psp_core::ports::rules::{self, CompletionChange, CompletionFields};

/// The database and row type that `decode` reads.
type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

/// Connections for everything except `record_webhook`, per store (per replica). The
/// server does the work, so a few more than SQLite's are useful; several replicas times
/// this must stay below the server's `max_connections`.
const POOL_SIZE: u32 = 8;

/// How long an operation waits for a free pooled connection before failing, so that an
/// unreachable server shows up as errors rather than hung requests.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The store on PostgreSQL: one database (or one schema of it, chosen with
/// `?options[search_path]=name` in the URL) shared by every replica.
///
/// `record_webhook` goes through a single writer task per store with its own connection
/// that commits concurrent webhooks together (see the `writer` module); every other
/// operation uses a pool. Dropping the store stops the writer after it has finished what
/// is queued; [`PgStore::close`] does the same and waits for it.
pub struct PgStore {
    pool: PgPool,
    writer: Writer,
    /// What `Debug` shows: host, port and database, never the URL (it may hold a password).
    target: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("server", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://…` or `postgresql://…`, every
    /// libpq-style parameter sqlx knows, e.g. `sslmode=verify-full` for TLS with the
    /// webpki roots) and brings its schema up to date. Replicas starting at once are safe:
    /// the migrator holds an advisory lock while it migrates.
    ///
    /// Every connection runs with `synchronous_commit=on`, whatever the server's default:
    /// a committed webhook has been flushed to the server's WAL, which a 2xx to the PSP
    /// promises.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
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
        let writer = Writer::start(options).await?;
        Ok(Self {
            pool,
            writer,
            target,
        })
    }

    /// Finishes the webhooks queued so far, then closes every connection. Operations after
    /// this fail.
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
        sqlx::query(webhook_inbox::GET)
            .bind(provider)
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| decode::webhook(&row))
            .transpose()
    }

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
        sqlx::query(sql)
            .bind(&cart)
            .bind(provider)
            .bind(idempotency_key)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
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
        sqlx::query(sql)
            .bind(a)
            .bind(b)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| decode::session(&row))
            .transpose()
    }

    /// The completion record of `update`, locked for the rest of `tx`, creating it first
    /// when it does not exist. `Ok(None)` means this call created it (with the fields the
    /// rules give an absent record).
    async fn lock_completion(
        tx: &mut sqlx::PgConnection,
        update: &CompletionUpdate,
        created: &CompletionFields,
        now: i64,
    ) -> Result<Option<Completion>, StoreError> {
        async fn get(
            tx: &mut sqlx::PgConnection,
            update: &CompletionUpdate,
        ) -> Result<Option<DbRow>, sqlx::Error> {
            sqlx::query(&sql::COMPLETION_GET_LOCKED)
                .bind(&update.provider)
                .bind(&update.psp_ref)
                .fetch_optional(tx)
                .await
        }
        if let Some(row) = get(&mut *tx, update).await.map_err(db)? {
            return decode::completion(&row).map(Some);
        }
        let inserted = sqlx::query(&sql::COMPLETION_INSERT_IF_ABSENT)
            .bind(&update.provider)
            .bind(&update.psp_ref)
            .bind(update.cart_id.to_string())
            .bind(created.state.as_str())
            .bind(created.payment_id.map(|p| p.to_string()))
            .bind(created.reason.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if inserted > 0 {
            return Ok(None);
        }
        // A concurrent transaction created it between our read and our insert, and has
        // committed (the insert waited for it): read it, locked, and apply the rules to it.
        let row = get(&mut *tx, update).await.map_err(db)?.ok_or_else(|| {
            StoreError::NotFound(format!("completion {} {}", update.provider, update.psp_ref))
        })?;
        decode::completion(&row).map(Some)
    }
}

/// Adds a job unless its dedupe key exists; the new id, or `None` for a duplicate.
async fn insert_job<'e, E>(ex: E, job: &NewJob, now: i64) -> Result<Option<i64>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query_scalar(jobs::INSERT)
        .bind(&job.kind)
        .bind(&job.dedupe_key)
        .bind(job.cart_id.map(|c| c.to_string()))
        .bind(job.payload.to_string())
        .bind(i64::from(job.max_attempts))
        .bind(now)
        .fetch_optional(ex)
        .await
}

/// Appends one event to a job's history.
async fn append_event<'e, E>(
    ex: E,
    id: i64,
    event: &str,
    attempt: i64,
    error: Option<&str>,
    at: i64,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(job_history::APPEND)
        .bind(id)
        .bind(event)
        .bind(attempt)
        .bind(error)
        .bind(at)
        .execute(ex)
        .await
        .map_err(db)?;
    Ok(())
}

#[async_trait]
impl Inbox for PgStore {
    async fn record_webhook(&self, webhook: NewWebhook) -> Result<Recorded, StoreError> {
        self.writer.record(webhook).await
    }
}

#[async_trait]
impl Sessions for PgStore {
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
        let updated = sqlx::query(sessions::SAVE)
            .bind(cart_id.to_string())
            .bind(provider)
            .bind(psp_ref)
            .bind(amount.minor)
            .bind(amount.currency.code())
            .bind(client.to_string())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        if updated == 0 {
            // Saving without a reservation would store a session with no idempotency key.
            return Err(StoreError::NotFound(format!(
                "session of cart {cart_id} at {provider} (reserve it first)"
            )));
        }
        Ok(())
    }

    async fn set_session_status(
        &self,
        provider: &str,
        psp_ref: &str,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        let from = rules::session_may_move_from(status);
        let sql = sessions::set_status(from.len());
        let mut query = sqlx::query(&sql)
            .bind(provider)
            .bind(psp_ref)
            .bind(status.as_str())
            .bind(now_ms());
        for s in from {
            query = query.bind(s.as_str());
        }
        // No matching row is not an error: the session may have ended already, or the PSP
        // payment was started outside a session this gateway created.
        query.execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    async fn quiet_sessions(
        &self,
        quiet_for: Duration,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        sqlx::query(sessions::QUIET)
            .bind(now_ms().saturating_sub(millis(quiet_for)))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(decode::session)
            .collect()
    }

    async fn sessions_of_cart(&self, cart_id: Uuid) -> Result<Vec<Session>, StoreError> {
        sqlx::query(sessions::OF_CART)
            .bind(cart_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
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
        // The session row and its newest sync job's row are locked until the commit (see
        // `sql::STATE_AND_LEASE_LOCKED`): a worker leasing that job commits either before
        // the read (this sees it running) or after the commit (the job reads the payload
        // written here).
        let mut tx = self.pool.begin().await.map_err(db)?;
        let Some(row) = sqlx::query(&sql::SYNC_DECIDE_LOCKED)
            .bind(&cart)
            .bind(&sync.provider)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
        else {
            // Rolled back now, not on drop, for the same reason as in `advance_completion`.
            tx.rollback().await.map_err(db)?;
            return Ok(SyncScheduled::NoSession);
        };
        let (synced, pending, job_id, seq): (Option<String>, Option<String>, Option<i64>, i64) =
            sqlx::FromRow::from_row(&row).map_err(db)?;
        let newest = match job_id {
            Some(id) => {
                let state: Option<(String, i64)> = sqlx::query_as(&sql::STATE_AND_LEASE_LOCKED)
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                match state {
                    Some((state, running)) => Some(SyncJobState::of(
                        id,
                        JobState::parse(&state).ok_or_else(|| {
                            StoreError::Backend(format!("job {id} has state {state:?}"))
                        })?,
                        running != 0,
                    )),
                    None => None,
                }
            }
            None => None,
        };
        sqlx::query(sessions::SYNC_SET_PENDING)
            .bind(&cart)
            .bind(&sync.provider)
            .bind(&sync.hash)
            .bind(sync.payload.to_string())
            .bind(sync.cart.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
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
                let id: i64 = sqlx::query_scalar(jobs::INSERT_DUE)
                    .bind(&job.kind)
                    .bind(&job.dedupe_key)
                    .bind(job.cart_id.map(|c| c.to_string()))
                    .bind(job.payload.to_string())
                    .bind(i64::from(job.max_attempts))
                    .bind(now.saturating_add(millis(delay)))
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?
                    .ok_or_else(|| {
                        StoreError::Backend(format!(
                            "sync job key {} exists already",
                            job.dedupe_key
                        ))
                    })?;
                sqlx::query(sessions::SYNC_SET_JOB)
                    .bind(&cart)
                    .bind(&sync.provider)
                    .bind(id)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
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
        sqlx::query(sessions::SYNC_GET)
            .bind(cart_id.to_string())
            .bind(provider)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| decode::session_sync(&row))
            .transpose()
    }

    async fn mark_synced(
        &self,
        cart_id: Uuid,
        provider: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(sessions::SYNC_MARK)
            .bind(cart_id.to_string())
            .bind(provider)
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn flag_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(sessions::FLAG)
            .bind(cart_id.to_string())
            .bind(provider)
            .bind(reason)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn flagged_sessions(&self, limit: u32) -> Result<Vec<SessionSync>, StoreError> {
        sqlx::query(sessions::FLAGGED)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(decode::session_sync)
            .collect()
    }
}

#[async_trait]
impl Completions for PgStore {
    async fn completion(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Completion>, StoreError> {
        sqlx::query(completions::GET)
            .bind(provider)
            .bind(psp_ref)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| decode::completion(&row))
            .transpose()
    }

    async fn advance_completion(&self, update: CompletionUpdate) -> Result<Completion, StoreError> {
        let now = now_ms();
        // The record is read with `FOR UPDATE` (created first if absent), so two
        // connections or replicas advancing it run one after the other, each seeing what
        // the other committed: the state never moves backwards and the first final state
        // wins, as the shared rules say.
        let created = match rules::advance_completion(None, &update) {
            CompletionChange::Write { fields, .. } => fields,
            CompletionChange::Keep => unreachable!("an absent record is always written"),
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let Some(stored) = Self::lock_completion(&mut tx, &update, &created, now).await? else {
            sqlx::query(completions::HISTORY_APPEND)
                .bind(&update.provider)
                .bind(&update.psp_ref)
                .bind(created.state.as_str())
                .bind(update.reason.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(Completion {
                provider: update.provider,
                psp_ref: update.psp_ref,
                cart_id: update.cart_id,
                state: created.state,
                payment_id: created.payment_id,
                reason: created.reason,
                updated_at_ms: now,
            });
        };
        let fields = CompletionFields {
            state: stored.state,
            payment_id: stored.payment_id,
            reason: stored.reason.clone(),
        };
        let (fields, state_changed) = match rules::advance_completion(Some(&fields), &update) {
            CompletionChange::Keep => {
                // Nothing to write. Rolled back here rather than on drop: a dropped
                // transaction is rolled back only when its connection is next used, and
                // until then the row lock would stay held.
                tx.rollback().await.map_err(db)?;
                return Ok(stored);
            }
            CompletionChange::Write {
                fields,
                state_changed,
            } => (fields, state_changed),
        };
        sqlx::query(completions::UPDATE)
            .bind(&update.provider)
            .bind(&update.psp_ref)
            .bind(fields.state.as_str())
            .bind(fields.payment_id.map(|p| p.to_string()))
            .bind(fields.reason.as_deref())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if state_changed {
            sqlx::query(completions::HISTORY_APPEND)
                .bind(&update.provider)
                .bind(&update.psp_ref)
                .bind(fields.state.as_str())
                .bind(update.reason.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Completion {
            cart_id: stored.cart_id,
            provider: update.provider,
            psp_ref: update.psp_ref,
            state: fields.state,
            payment_id: fields.payment_id,
            reason: fields.reason,
            updated_at_ms: now,
        })
    }

    async fn completions_in(
        &self,
        states: &[CompletionState],
        limit: u32,
    ) -> Result<Vec<Completion>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let sql = completions::in_states(states.len());
        let mut query = sqlx::query(&sql);
        for state in states {
            query = query.bind(state.as_str());
        }
        query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(decode::completion)
            .collect()
    }

    async fn completion_history(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Vec<CompletionTransition>, StoreError> {
        sqlx::query(completions::HISTORY)
            .bind(provider)
            .bind(psp_ref)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(decode::transition)
            .collect()
    }

    async fn cart_claim(&self, cart_id: Uuid) -> Result<Option<CartClaim>, StoreError> {
        sqlx::query(cart_claims::GET)
            .bind(cart_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| decode::claim(&row))
            .transpose()
    }

    async fn claim_cart(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
    ) -> Result<CartClaim, StoreError> {
        sqlx::query(cart_claims::INSERT)
            .bind(cart_id.to_string())
            .bind(provider)
            .bind(psp_ref)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        // Claims are never changed or deleted, so whoever holds it now holds it for good.
        self.cart_claim(cart_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("claim of cart {cart_id}")))
    }
}

#[async_trait]
impl Jobs for PgStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        if let Some(id) = insert_job(&self.pool, &job, now_ms()).await.map_err(db)? {
            return Ok(Enqueued::New(id));
        }
        // Jobs are never deleted, so the job that holds the key is still there.
        let id: i64 = sqlx::query_scalar(jobs::ID_BY_KEY)
            .bind(&job.dedupe_key)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(Enqueued::Duplicate(id))
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(sql::LEASE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let exhausted = sqlx::query(jobs::EXHAUST)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for row in &exhausted {
            let (id, attempts, error): (i64, i64, Option<String>) =
                sqlx::FromRow::from_row(row).map_err(db)?;
            append_event(&mut *tx, id, "expired", attempts, error.as_deref(), now).await?;
        }
        let exhausted = exhausted.len();
        let rows = sqlx::query(sql::LEASE)
            .bind(owner)
            .bind(now.saturating_add(millis(lease)))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let leased = rows
            .iter()
            .map(decode::job)
            .collect::<Result<Vec<_>, _>>()?;
        for job in &leased {
            append_event(
                &mut *tx,
                job.id,
                "leased",
                i64::from(job.attempts),
                None,
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        if exhausted > 0 {
            tracing::warn!(exhausted, "jobs failed: their last attempt's lease expired");
        }
        let mut leased = leased;
        // RETURNING gives rows in no particular order; hand them out oldest first.
        leased.sort_by_key(|j| j.id);
        Ok(leased)
    }

    async fn finish_job(&self, id: i64, owner: &str, result: JobResult) -> Result<(), StoreError> {
        let now = now_ms();
        let query = match &result {
            JobResult::Succeeded => sqlx::query(jobs::SUCCEED).bind(id).bind(owner).bind(now),
            JobResult::Retry { after, error } => sqlx::query(jobs::RETRY)
                .bind(id)
                .bind(owner)
                .bind(now.saturating_add(millis(*after)))
                .bind(error)
                .bind(now),
            JobResult::Failed { error } => sqlx::query(jobs::FAIL)
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(now),
        };
        let mut tx = self.pool.begin().await.map_err(db)?;
        let finished = query.execute(&mut *tx).await.map_err(db)?.rows_affected();
        if finished > 0 {
            sqlx::query(job_history::APPEND_FINISH)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        if finished == 0 {
            let exists: i64 = sqlx::query_scalar(jobs::EXISTS)
                .bind(id)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
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
        sqlx::query(jobs::GET)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| decode::job(&row))
            .transpose()
    }

    async fn job_by_key(&self, dedupe_key: &str) -> Result<Option<Job>, StoreError> {
        sqlx::query(jobs::BY_KEY)
            .bind(dedupe_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| decode::job(&row))
            .transpose()
    }

    async fn jobs_in(&self, state: JobState, limit: u32) -> Result<Vec<Job>, StoreError> {
        sqlx::query(jobs::IN_STATE)
            .bind(state.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(decode::job)
            .collect()
    }

    async fn replay_job(&self, id: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await.map_err(db)?;
        let replayed = sqlx::query(jobs::REPLAY)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if replayed > 0 {
            append_event(&mut *tx, id, "replayed", 0, None, now).await?;
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
        let saved = sqlx::query(jobs::SAVE_PROGRESS)
            .bind(id)
            .bind(owner)
            .bind(payload.to_string())
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(saved > 0)
    }

    async fn job_history(&self, id: i64) -> Result<Vec<JobEvent>, StoreError> {
        sqlx::query(job_history::OF_JOB)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(decode::job_event)
            .collect()
    }

    async fn pending_jobs(&self) -> Result<Vec<PendingJobs>, StoreError> {
        sqlx::query(jobs::PENDING_BY_KIND)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(decode::pending_jobs)
            .collect()
    }
}

#[async_trait]
impl Readiness for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        debug_assert_eq!(one, 1);
        Ok(())
    }
}
