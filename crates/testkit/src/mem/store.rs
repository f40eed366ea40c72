//! `MemStore`: the durable store in memory, following each method's doc comment on the
//! store's roles and deciding what to write by the core's rules (`psp_core::ports::rules`),
//! like the SQL backends. Time comes from the system clock plus an offset that tests move
//! forward with [`MemStore::advance_clock`], so backoffs, leases and quiet periods can be
//! tested without sleeping.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use parking_lot::Mutex;
use psp_core::ports::rules::{self, CompletionChange, CompletionFields};
use psp_core::ports::{
    decide_sync, CartClaim, Completion, CompletionState, CompletionTransition, CompletionUpdate,
    Completions, Enqueued, Inbox, Job, JobEvent, JobResult, JobState, Jobs, NewJob, NewWebhook,
    PendingJobs, PendingSync, Readiness, Recorded, Session, SessionStatus, SessionSync, Sessions,
    StoreError, StoredWebhook, SyncDecision, SyncJobState, SyncScheduled,
};
use psp_core::Money;
use uuid::Uuid;

#[derive(Debug, Clone)]
struct JobRow {
    job: Job,
    lease: Option<(String, i64)>,
}

/// The sync bookkeeping kept beside a session.
#[derive(Debug, Clone, Default)]
struct SyncRow {
    synced_hash: Option<String>,
    pending_hash: Option<String>,
    pending_payload: Option<serde_json::Value>,
    pending_cart: Option<serde_json::Value>,
    job_id: Option<i64>,
    seq: u64,
    attention: Option<String>,
    attention_at_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct CompletionRow {
    completion: Completion,
    // Bumped on every change; breaks ties between equal timestamps in "newest first".
    seq: u64,
}

#[derive(Debug, Default)]
struct State {
    webhooks: Vec<StoredWebhook>,
    webhook_keys: HashSet<(String, String)>,
    sessions: HashMap<(Uuid, String), Session>,
    syncs: HashMap<(Uuid, String), SyncRow>,
    completion_history: HashMap<(String, String), Vec<CompletionTransition>>,
    job_history: HashMap<i64, Vec<JobEvent>>,
    completions: HashMap<(String, String), CompletionRow>,
    claims: HashMap<Uuid, CartClaim>,
    jobs: BTreeMap<i64, JobRow>,
    dedupe: HashMap<String, i64>,
    next_job_id: i64,
    seq: u64,
    clock_offset_ms: i64,
    failures: usize,
}

/// The store in memory. Share it through an `Arc`.
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<State>,
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl State {
    fn now(&self) -> i64 {
        system_ms() + self.clock_offset_ms
    }

    /// Fails the call when a failure was scripted with [`MemStore::fail_next`].
    fn check(&mut self) -> Result<(), StoreError> {
        if self.failures > 0 {
            self.failures -= 1;
            return Err(StoreError::Backend("injected store failure".into()));
        }
        Ok(())
    }

    fn enqueue(&mut self, job: NewJob) -> Enqueued {
        let now = self.now();
        self.enqueue_due(job, now)
    }

    fn enqueue_due(&mut self, job: NewJob, due: i64) -> Enqueued {
        if let Some(id) = self.dedupe.get(&job.dedupe_key) {
            return Enqueued::Duplicate(*id);
        }
        self.next_job_id += 1;
        let id = self.next_job_id;
        let now = self.now();
        self.dedupe.insert(job.dedupe_key.clone(), id);
        self.jobs.insert(
            id,
            JobRow {
                job: Job {
                    id,
                    kind: job.kind,
                    dedupe_key: job.dedupe_key,
                    cart_id: job.cart_id,
                    payload: job.payload,
                    state: JobState::Pending,
                    attempts: 0,
                    max_attempts: job.max_attempts,
                    next_run_at_ms: due,
                    last_error: None,
                    created_at_ms: now,
                },
                lease: None,
            },
        );
        Enqueued::New(id)
    }

    fn event(&mut self, id: i64, event: &str, attempt: u32, error: Option<String>) {
        let at_ms = self.now();
        self.job_history.entry(id).or_default().push(JobEvent {
            event: event.to_string(),
            attempt,
            error,
            at_ms,
        });
    }

    fn sync_view(&self, key: &(Uuid, String)) -> Option<SessionSync> {
        self.sessions.get(key)?;
        let row = self.syncs.get(key).cloned().unwrap_or_default();
        Some(SessionSync {
            cart_id: key.0,
            provider: key.1.clone(),
            synced_hash: row.synced_hash,
            pending_hash: row.pending_hash,
            pending_payload: row.pending_payload,
            pending_cart: row.pending_cart,
            attention: row.attention,
            attention_at_ms: row.attention_at_ms,
        })
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The store's clock, unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.state.lock().now()
    }

    /// Moves the store's clock forward: due times, leases and quiet periods see it.
    pub fn advance_clock(&self, by: Duration) {
        self.state.lock().clock_offset_ms += ms(by);
    }

    /// The next `n` calls of any method fail with `StoreError::Backend`, changing nothing.
    pub fn fail_next(&self, n: usize) {
        self.state.lock().failures += n;
    }

    /// Every recorded webhook, in arrival order.
    pub fn webhooks(&self) -> Vec<StoredWebhook> {
        self.state.lock().webhooks.clone()
    }

    /// A recorded webhook, as received, like the real stores' `webhook`. Inspection only:
    /// it never fails, not even after [`MemStore::fail_next`].
    pub async fn webhook(
        &self,
        provider: &str,
        event_id: &str,
    ) -> Result<Option<StoredWebhook>, StoreError> {
        Ok(self
            .state
            .lock()
            .webhooks
            .iter()
            .find(|w| w.provider == provider && w.event_id == event_id)
            .cloned())
    }

    /// Every session.
    pub fn sessions(&self) -> Vec<Session> {
        self.state.lock().sessions.values().cloned().collect()
    }

    /// Every completion record.
    pub fn completions(&self) -> Vec<Completion> {
        self.state
            .lock()
            .completions
            .values()
            .map(|r| r.completion.clone())
            .collect()
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<Job> {
        self.state
            .lock()
            .jobs
            .values()
            .map(|r| r.job.clone())
            .collect()
    }

    /// Every job of a kind, oldest first.
    pub fn jobs_of_kind(&self, kind: &str) -> Vec<Job> {
        self.jobs().into_iter().filter(|j| j.kind == kind).collect()
    }

    /// Who holds the lease of a job now (an expired lease is nobody's).
    pub fn lease_holder(&self, id: i64) -> Option<String> {
        let s = self.state.lock();
        let now = s.now();
        s.jobs
            .get(&id)
            .and_then(|r| r.lease.as_ref())
            .filter(|(_, until)| *until > now)
            .map(|(owner, _)| owner.clone())
    }
}

#[async_trait]
impl Inbox for MemStore {
    async fn record_webhook(&self, webhook: NewWebhook) -> Result<Recorded, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let key = (webhook.provider.clone(), webhook.event_id.clone());
        if s.webhook_keys.contains(&key) {
            return Ok(Recorded::Duplicate);
        }
        let now = s.now();
        s.webhook_keys.insert(key);
        let id = s.webhooks.len() as i64 + 1;
        s.webhooks.push(StoredWebhook {
            id,
            provider: webhook.provider,
            event_id: webhook.event_id,
            event_type: webhook.event_type,
            psp_ref: webhook.psp_ref,
            body: webhook.body,
            received_at_ms: now,
        });
        if let Some(job) = webhook.job {
            s.enqueue(job);
        }
        Ok(Recorded::New)
    }
}

#[async_trait]
impl Sessions for MemStore {
    async fn session(&self, cart_id: Uuid, provider: &str) -> Result<Option<Session>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.sessions.get(&(cart_id, provider.to_string())).cloned())
    }

    async fn session_by_ref(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Session>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.sessions
            .values()
            .find(|x| x.provider == provider && x.psp_ref.as_deref() == Some(psp_ref))
            .cloned())
    }

    async fn reserve_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        let session = s
            .sessions
            .entry((cart_id, provider.to_string()))
            .or_insert_with(|| Session {
                cart_id,
                provider: provider.to_string(),
                idempotency_key: idempotency_key.to_string(),
                psp_ref: None,
                amount_minor: None,
                currency: None,
                client: None,
                status: SessionStatus::Creating,
                updated_at_ms: now,
            });
        Ok(session.clone())
    }

    async fn restart_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        let session = s
            .sessions
            .get_mut(&(cart_id, provider.to_string()))
            .ok_or_else(|| StoreError::NotFound(format!("session {cart_id}/{provider}")))?;
        if rules::session_may_restart(session.status) {
            *session = Session {
                cart_id,
                provider: provider.to_string(),
                idempotency_key: idempotency_key.to_string(),
                psp_ref: None,
                amount_minor: None,
                currency: None,
                client: None,
                status: SessionStatus::Creating,
                updated_at_ms: now,
            };
        }
        Ok(session.clone())
    }

    async fn save_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
        amount: Money,
        client: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        let session = s
            .sessions
            .get_mut(&(cart_id, provider.to_string()))
            .ok_or_else(|| StoreError::NotFound(format!("session {cart_id}/{provider}")))?;
        session.psp_ref = Some(psp_ref.to_string());
        session.amount_minor = Some(amount.minor);
        session.currency = Some(amount.currency.code().to_string());
        session.client = Some(client.clone());
        session.status = rules::session_status_after_save(session.status);
        session.updated_at_ms = now;
        Ok(())
    }

    async fn set_session_amount(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
        amount: Money,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        let Some(session) = s
            .sessions
            .get_mut(&(cart_id, provider.to_string()))
            .filter(|session| session.psp_ref.as_deref() == Some(psp_ref))
        else {
            return Ok(false);
        };
        session.amount_minor = Some(amount.minor);
        session.currency = Some(amount.currency.code().to_string());
        session.updated_at_ms = now;
        Ok(true)
    }

    async fn set_session_status(
        &self,
        provider: &str,
        psp_ref: &str,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        // A PSP payment the gateway holds no session for (its cart came from the PSP's
        // own record) has nothing to move, which is not an error.
        if let Some(session) = s
            .sessions
            .values_mut()
            .find(|x| x.provider == provider && x.psp_ref.as_deref() == Some(psp_ref))
        {
            // Setting the same status again records that the session was looked at.
            if rules::session_may_move(session.status, status) {
                session.status = status;
                session.updated_at_ms = now;
            }
        }
        Ok(())
    }

    async fn quiet_sessions(
        &self,
        quiet_for: Duration,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let cutoff = s.now() - ms(quiet_for);
        // Only sessions holding a PSP payment can be asked about at the PSP.
        let mut quiet: Vec<Session> = s
            .sessions
            .values()
            .filter(|x| !x.status.is_terminal() && x.psp_ref.is_some() && x.updated_at_ms < cutoff)
            .cloned()
            .collect();
        // The longest-quiet sessions first: they are the likeliest to be paid but lost.
        quiet.sort_by_key(|x| (x.updated_at_ms, x.cart_id));
        quiet.truncate(limit as usize);
        Ok(quiet)
    }

    async fn sessions_of_cart(&self, cart_id: Uuid) -> Result<Vec<Session>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let mut found: Vec<Session> = s
            .sessions
            .values()
            .filter(|x| x.cart_id == cart_id)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(found)
    }

    async fn schedule_sync(
        &self,
        sync: PendingSync,
        job: NewJob,
        delay: Duration,
    ) -> Result<SyncScheduled, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let key = (sync.cart_id, sync.provider.clone());
        if !s.sessions.contains_key(&key) {
            return Ok(SyncScheduled::NoSession);
        }
        let now = s.now();
        let row = s.syncs.get(&key).cloned().unwrap_or_default();
        let newest = row.job_id.and_then(|id| {
            s.jobs.get(&id).map(|r| {
                let leased = r.lease.as_ref().is_some_and(|(_, until)| *until >= now);
                SyncJobState::of(id, r.job.state, leased)
            })
        });
        let decision = decide_sync(
            &sync.hash,
            row.synced_hash.as_deref(),
            row.pending_hash.as_deref(),
            newest,
        );
        let entry = s.syncs.entry(key.clone()).or_default();
        entry.pending_hash = Some(sync.hash);
        entry.pending_payload = Some(sync.payload);
        entry.pending_cart = Some(sync.cart);
        Ok(match decision {
            SyncDecision::Unchanged => SyncScheduled::Unchanged,
            SyncDecision::Coalesced(id) => SyncScheduled::Coalesced(id),
            SyncDecision::Schedule => {
                entry.seq += 1;
                let seq = entry.seq;
                let job = NewJob {
                    dedupe_key: format!("{}:{seq}", job.dedupe_key),
                    ..job
                };
                let due = now.saturating_add(ms(delay));
                let id = match s.enqueue_due(job, due) {
                    Enqueued::New(id) => id,
                    Enqueued::Duplicate(id) => {
                        return Err(StoreError::Backend(format!(
                            "sync job key of job {id} exists already"
                        )))
                    }
                };
                if let Some(entry) = s.syncs.get_mut(&key) {
                    entry.job_id = Some(id);
                }
                SyncScheduled::Scheduled(id)
            }
        })
    }

    async fn session_sync(
        &self,
        cart_id: Uuid,
        provider: &str,
    ) -> Result<Option<SessionSync>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.sync_view(&(cart_id, provider.to_string())))
    }

    async fn mark_synced(
        &self,
        cart_id: Uuid,
        provider: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let key = (cart_id, provider.to_string());
        if s.sessions.contains_key(&key) {
            s.syncs.entry(key).or_default().synced_hash = Some(hash.to_string());
        }
        Ok(())
    }

    async fn flag_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        let key = (cart_id, provider.to_string());
        if s.sessions.contains_key(&key) {
            let row = s.syncs.entry(key).or_default();
            row.attention = Some(reason.to_string());
            row.attention_at_ms = Some(now);
        }
        Ok(())
    }

    async fn flagged_sessions(&self, limit: u32) -> Result<Vec<SessionSync>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let mut flagged: Vec<SessionSync> = s
            .syncs
            .iter()
            .filter(|(_, row)| row.attention.is_some())
            .filter_map(|(key, _)| s.sync_view(key))
            .collect();
        flagged.sort_by_key(|x| std::cmp::Reverse(x.attention_at_ms));
        flagged.truncate(limit as usize);
        Ok(flagged)
    }
}

#[async_trait]
impl Completions for MemStore {
    async fn completion(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Completion>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.completions
            .get(&(provider.to_string(), psp_ref.to_string()))
            .map(|r| r.completion.clone()))
    }

    async fn advance_completion(&self, update: CompletionUpdate) -> Result<Completion, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let key = (update.provider.clone(), update.psp_ref.clone());
        let stored = s.completions.get(&key).map(|r| r.completion.clone());
        let fields = stored.as_ref().map(|c| CompletionFields {
            state: c.state,
            payment_id: c.payment_id,
            reason: c.reason.clone(),
        });
        let (fields, state_changed) = match rules::advance_completion(fields.as_ref(), &update) {
            CompletionChange::Keep => {
                return stored.ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "completion {} {}",
                        update.provider, update.psp_ref
                    ))
                })
            }
            CompletionChange::Write {
                fields,
                state_changed,
            } => (fields, state_changed),
        };
        let now = s.now();
        s.seq += 1;
        let seq = s.seq;
        let completion = Completion {
            cart_id: stored.map_or(update.cart_id, |c| c.cart_id),
            provider: update.provider,
            psp_ref: update.psp_ref,
            state: fields.state,
            payment_id: fields.payment_id,
            reason: fields.reason,
            updated_at_ms: now,
        };
        if state_changed {
            s.completion_history
                .entry(key.clone())
                .or_default()
                .push(CompletionTransition {
                    state: completion.state,
                    reason: update.reason,
                    at_ms: now,
                });
        }
        s.completions.insert(
            key,
            CompletionRow {
                completion: completion.clone(),
                seq,
            },
        );
        Ok(completion)
    }

    async fn completions_in(
        &self,
        states: &[CompletionState],
        limit: u32,
    ) -> Result<Vec<Completion>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let mut rows: Vec<&CompletionRow> = s
            .completions
            .values()
            .filter(|r| states.contains(&r.completion.state))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.completion.updated_at_ms, r.seq)));
        Ok(rows
            .into_iter()
            .take(limit as usize)
            .map(|r| r.completion.clone())
            .collect())
    }

    async fn completion_history(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Vec<CompletionTransition>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.completion_history
            .get(&(provider.to_string(), psp_ref.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    async fn cart_claim(&self, cart_id: Uuid) -> Result<Option<CartClaim>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.claims.get(&cart_id).cloned())
    }

    async fn claim_cart(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
    ) -> Result<CartClaim, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.claims
            .entry(cart_id)
            .or_insert_with(|| CartClaim {
                provider: provider.to_string(),
                psp_ref: psp_ref.to_string(),
            })
            .clone())
    }
}

#[async_trait]
impl Jobs for MemStore {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.enqueue(job))
    }

    async fn lease_jobs(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        let until = now.saturating_add(ms(lease));
        // The candidates: pending jobs with no older pending job of the same cart, because
        // the jobs of one cart run in order and one at a time.
        let mut seen_carts = HashSet::new();
        let mut candidates = Vec::new();
        let mut expired = Vec::new();
        for row in s.jobs.values_mut() {
            if row.job.state != JobState::Pending {
                continue;
            }
            if let Some(cart) = row.job.cart_id {
                if !seen_carts.insert(cart) {
                    continue;
                }
            }
            let held = row.lease.as_ref().is_some_and(|(_, u)| *u > now);
            if held || row.job.next_run_at_ms > now {
                continue;
            }
            if rules::job_attempts_spent(row.job.attempts, row.job.max_attempts) {
                // The last attempt's lease ran out without an answer (a crashed worker).
                row.job.state = JobState::Failed;
                row.job.last_error = Some(rules::EXPIRED_LAST_ATTEMPT.to_string());
                row.lease = None;
                if let Some(cart) = row.job.cart_id {
                    seen_carts.remove(&cart);
                }
                expired.push((row.job.id, row.job.attempts, row.job.last_error.clone()));
                continue;
            }
            candidates.push((row.job.next_run_at_ms, row.job.id));
        }
        // The longest-due first.
        candidates.sort_unstable();
        let mut leased = Vec::new();
        for (_, id) in candidates.into_iter().take(limit as usize) {
            let row = s.jobs.get_mut(&id).expect("a candidate exists");
            row.job.attempts += 1;
            row.lease = Some((owner.to_string(), until));
            leased.push(row.job.clone());
        }
        for (id, attempt, error) in expired {
            s.event(id, "expired", attempt, error);
        }
        for job in &leased {
            s.event(job.id, "leased", job.attempts, None);
        }
        Ok(leased)
    }

    async fn finish_job(&self, id: i64, owner: &str, result: JobResult) -> Result<(), StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        let row = s
            .jobs
            .get_mut(&id)
            .ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
        let holds = row.job.state == JobState::Pending
            && row.lease.as_ref().is_some_and(|(o, _)| o == owner);
        if !holds {
            return Ok(());
        }
        row.lease = None;
        row.job.state = rules::job_state_after(&result, row.job.attempts, row.job.max_attempts);
        match result {
            JobResult::Succeeded => {}
            JobResult::Retry { after, error } => {
                row.job.next_run_at_ms = now.saturating_add(ms(after));
                row.job.last_error = Some(error);
            }
            JobResult::Failed { error } => row.job.last_error = Some(error),
        }
        let (event, error) = match row.job.state {
            JobState::Succeeded => ("succeeded", None),
            JobState::Failed => ("failed", row.job.last_error.clone()),
            JobState::Pending => ("retry", row.job.last_error.clone()),
        };
        let attempt = row.job.attempts;
        s.event(id, event, attempt, error);
        Ok(())
    }

    async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.jobs.get(&id).map(|r| r.job.clone()))
    }

    async fn job_by_key(&self, dedupe_key: &str) -> Result<Option<Job>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.dedupe
            .get(dedupe_key)
            .and_then(|id| s.jobs.get(id))
            .map(|r| r.job.clone()))
    }

    async fn jobs_in(&self, state: JobState, limit: u32) -> Result<Vec<Job>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.jobs
            .values()
            .rev()
            .filter(|r| r.job.state == state)
            .take(limit as usize)
            .map(|r| r.job.clone())
            .collect())
    }

    async fn replay_job(&self, id: i64) -> Result<bool, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        match s.jobs.get_mut(&id) {
            Some(row) if row.job.state == JobState::Failed => {
                row.job.state = JobState::Pending;
                row.job.attempts = 0;
                row.job.next_run_at_ms = now;
                row.lease = None;
                s.event(id, "replayed", 0, None);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save_job_progress(
        &self,
        id: i64,
        owner: &str,
        payload: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let now = s.now();
        match s.jobs.get_mut(&id) {
            Some(row)
                if row.job.state == JobState::Pending
                    && row
                        .lease
                        .as_ref()
                        .is_some_and(|(o, until)| o == owner && *until >= now) =>
            {
                row.job.payload = payload.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn job_history(&self, id: i64) -> Result<Vec<JobEvent>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        Ok(s.job_history.get(&id).cloned().unwrap_or_default())
    }

    async fn pending_jobs(&self) -> Result<Vec<PendingJobs>, StoreError> {
        let mut s = self.state.lock();
        s.check()?;
        let mut by_kind: BTreeMap<String, PendingJobs> = BTreeMap::new();
        for row in s.jobs.values() {
            if row.job.state != JobState::Pending {
                continue;
            }
            let entry = by_kind
                .entry(row.job.kind.clone())
                .or_insert_with(|| PendingJobs {
                    kind: row.job.kind.clone(),
                    count: 0,
                    oldest_created_at_ms: row.job.created_at_ms,
                });
            entry.count += 1;
            entry.oldest_created_at_ms = entry.oldest_created_at_ms.min(row.job.created_at_ms);
        }
        Ok(by_kind.into_values().collect())
    }
}

#[async_trait]
impl Readiness for MemStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.state.lock().check()
    }
}
