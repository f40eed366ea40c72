//! The SQLite backend.

// Compiled once per backend on purpose: the same decoding against each `DbRow`.
#[allow(clippy::duplicate_mod)]
#[path = "../decode.rs"]
mod decode;
mod writer;

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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use self::decode::db;
use self::writer::Writer;
use crate::clock::{millis, now_ms};
use crate::sql::{cart_claims, completions, job_history, jobs, sessions, webhook_inbox};
use crate::StoredWebhook;
use psp_core::ports::rules::{self, CompletionChange, CompletionFields};

/// The database and row type that `decode` reads.
type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;

/// How a transaction that writes begins. `BEGIN IMMEDIATE` takes SQLite's write lock at
/// once: a deferred transaction that reads first and writes later can fail with
/// `SQLITE_BUSY` without waiting when another connection (or another gateway process)
/// wrote in between, whereas an immediate one waits its turn under `busy_timeout`.
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How long a statement waits for another connection's write lock before failing. Long
/// enough to ride out a large webhook batch or a WAL checkpoint, short enough that a
/// stuck process shows up as errors rather than as hung requests.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections for everything except `record_webhook`. WAL lets them read while the
/// writer writes; the machines this runs on have few cores, so a few are enough.
const POOL_SIZE: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The store on SQLite: one database file (or a shared in-memory database for tests).
///
/// `record_webhook` goes through a single writer task with its own connection that commits
/// concurrent webhooks together (see the `writer` module); every other operation uses a
/// small pool. Dropping the store stops the writer after it has finished what is queued;
/// [`SqliteStore::close`] does the same and waits for it.
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Writer,
    /// What `Debug` shows: the database file, never the URL it came from.
    database: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path.db`,
    /// `sqlite:path.db` or `sqlite::memory:`) and brings its schema up to date.
    ///
    /// The connections use WAL (readers never block the writer), `synchronous=FULL` (a
    /// committed webhook has been fsynced, so it survives SIGKILL and power loss, which a
    /// 2xx to the PSP promises), a busy timeout (other connections and other gateway
    /// processes wait for the write lock instead of failing) and foreign keys.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let database = options.get_filename().display().to_string();

        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Backend(format!("opening {database}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {database}: {e}")))?;

        // The writer opens its own connection once the schema exists. For an in-memory
        // database the pool's permanent connection keeps the database alive.
        let writer = Writer::start(&options, BUSY_TIMEOUT)?;
        Ok(Self {
            pool,
            writer,
            database,
        })
    }

    /// Finishes the webhooks queued so far, then closes every connection. Operations after
    /// this fail. A graceful shutdown calls it so that the last WAL checkpoint runs.
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
}

/// Adds a job unless its dedupe key exists; the new id, or `None` for a duplicate. Shared
/// by `enqueue` and the webhook writer so that both add jobs the same way.
pub(crate) async fn insert_job<'e, E>(
    ex: E,
    job: &NewJob,
    now: i64,
) -> Result<Option<i64>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
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
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
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
impl Inbox for SqliteStore {
    async fn record_webhook(&self, webhook: NewWebhook) -> Result<Recorded, StoreError> {
        self.writer.record(webhook).await
    }
}

#[async_trait]
impl Sessions for SqliteStore {
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
        // One write transaction: a worker leasing the session's sync job commits either
        // before it (the job then reads the payload written here) or after it (this sees
        // the job as not started and leaves the sending to it).
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(db)?;
        let Some(row) = sqlx::query(sessions::SYNC_DECIDE)
            .bind(&cart)
            .bind(&sync.provider)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
        else {
            return Ok(SyncScheduled::NoSession);
        };
        let (synced, pending, job_id, seq): (Option<String>, Option<String>, Option<i64>, i64) =
            sqlx::FromRow::from_row(&row).map_err(db)?;
        let newest = match job_id {
            Some(id) => {
                let state: Option<(String, i64)> = sqlx::query_as(jobs::STATE_AND_LEASE)
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
impl Completions for SqliteStore {
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
        // Read, compare and write in one write transaction, so that two workers advancing
        // the same record cannot both act on the state they read.
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(db)?;
        let stored = sqlx::query(completions::GET)
            .bind(&update.provider)
            .bind(&update.psp_ref)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .map(|row| decode::completion(&row))
            .transpose()?;
        let fields = stored.as_ref().map(|c| CompletionFields {
            state: c.state,
            payment_id: c.payment_id,
            reason: c.reason.clone(),
        });
        let (fields, state_changed) = match rules::advance_completion(fields.as_ref(), &update) {
            CompletionChange::Keep => {
                // Nothing to write; the transaction ends without a commit.
                return stored.ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "completion {} {}",
                        update.provider, update.psp_ref
                    ))
                });
            }
            CompletionChange::Write {
                fields,
                state_changed,
            } => (fields, state_changed),
        };

        let now = now_ms();
        let payment_id = fields.payment_id.map(|p| p.to_string());
        let query = match &stored {
            None => sqlx::query(completions::INSERT)
                .bind(&update.provider)
                .bind(&update.psp_ref)
                .bind(update.cart_id.to_string())
                .bind(fields.state.as_str())
                .bind(payment_id)
                .bind(fields.reason.as_deref())
                .bind(now),
            Some(_) => sqlx::query(completions::UPDATE)
                .bind(&update.provider)
                .bind(&update.psp_ref)
                .bind(fields.state.as_str())
                .bind(payment_id)
                .bind(fields.reason.as_deref())
                .bind(now),
        };
        query.execute(&mut *tx).await.map_err(db)?;
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
            cart_id: stored.map_or(update.cart_id, |s| s.cart_id),
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
impl Jobs for SqliteStore {
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
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(db)?;
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
        let rows = sqlx::query(jobs::LEASE)
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
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(db)?;
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
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(db)?;
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
impl Readiness for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        debug_assert_eq!(one, 1);
        Ok(())
    }
}
