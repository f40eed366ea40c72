//! A [`Store`] that counts every job it adds as `scheduled`, whoever adds it: the HTTP
//! edge, the sweep, the completion orchestrator (voids) or a provider's own routes. It
//! wraps the real store once, in `AppState::new`, and passes everything else through.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use psp_core::ports::{
    CartClaim, Completion, CompletionState, CompletionTransition, CompletionUpdate, Enqueued, Job,
    JobEvent, JobResult, JobState, NewJob, NewWebhook, PendingJobs, PendingSync, Recorded, Session,
    SessionStatus, SessionSync, Store, StoreError, SyncScheduled,
};
use psp_core::Money;
use uuid::Uuid;

use crate::metrics::Metrics;

/// The store with `scheduled` counted.
pub(crate) struct CountedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl CountedStore {
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl Store for CountedStore {
    async fn record_webhook(&self, webhook: NewWebhook) -> Result<Recorded, StoreError> {
        let kind = webhook.job.as_ref().map(|j| j.kind.clone());
        let recorded = self.inner.record_webhook(webhook).await?;
        if let (Recorded::New, Some(kind)) = (recorded, kind) {
            self.metrics.job(&kind, "scheduled");
        }
        Ok(recorded)
    }

    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        let kind = job.kind.clone();
        let enqueued = self.inner.enqueue(job).await?;
        if matches!(enqueued, Enqueued::New(_)) {
            self.metrics.job(&kind, "scheduled");
        }
        Ok(enqueued)
    }

    async fn schedule_sync(
        &self,
        sync: PendingSync,
        job: NewJob,
        delay: Duration,
    ) -> Result<SyncScheduled, StoreError> {
        let kind = job.kind.clone();
        let scheduled = self.inner.schedule_sync(sync, job, delay).await?;
        if matches!(scheduled, SyncScheduled::Scheduled(_)) {
            self.metrics.job(&kind, "scheduled");
        }
        Ok(scheduled)
    }

    // Everything below passes through unchanged.

    async fn session(&self, cart_id: Uuid, provider: &str) -> Result<Option<Session>, StoreError> {
        self.inner.session(cart_id, provider).await
    }

    async fn session_by_ref(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.session_by_ref(provider, psp_ref).await
    }

    async fn reserve_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError> {
        self.inner
            .reserve_session(cart_id, provider, idempotency_key)
            .await
    }

    async fn restart_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError> {
        self.inner
            .restart_session(cart_id, provider, idempotency_key)
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
        self.inner
            .save_session(cart_id, provider, psp_ref, amount, client)
            .await
    }

    async fn set_session_status(
        &self,
        provider: &str,
        psp_ref: &str,
        status: SessionStatus,
    ) -> Result<(), StoreError> {
        self.inner
            .set_session_status(provider, psp_ref, status)
            .await
    }

    async fn quiet_sessions(
        &self,
        quiet_for: Duration,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.quiet_sessions(quiet_for, limit).await
    }

    async fn completion(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Completion>, StoreError> {
        self.inner.completion(provider, psp_ref).await
    }

    async fn advance_completion(&self, update: CompletionUpdate) -> Result<Completion, StoreError> {
        self.inner.advance_completion(update).await
    }

    async fn completions_in(
        &self,
        states: &[CompletionState],
        limit: u32,
    ) -> Result<Vec<Completion>, StoreError> {
        self.inner.completions_in(states, limit).await
    }

    async fn cart_claim(&self, cart_id: Uuid) -> Result<Option<CartClaim>, StoreError> {
        self.inner.cart_claim(cart_id).await
    }

    async fn claim_cart(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
    ) -> Result<CartClaim, StoreError> {
        self.inner.claim_cart(cart_id, provider, psp_ref).await
    }

    async fn lease_jobs(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        self.inner.lease_jobs(owner, lease, limit).await
    }

    async fn finish_job(&self, id: i64, owner: &str, result: JobResult) -> Result<(), StoreError> {
        self.inner.finish_job(id, owner, result).await
    }

    async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        self.inner.job(id).await
    }

    async fn job_by_key(&self, dedupe_key: &str) -> Result<Option<Job>, StoreError> {
        self.inner.job_by_key(dedupe_key).await
    }

    async fn jobs_in(&self, state: JobState, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.inner.jobs_in(state, limit).await
    }

    async fn replay_job(&self, id: i64) -> Result<bool, StoreError> {
        self.inner.replay_job(id).await
    }

    async fn save_job_progress(
        &self,
        id: i64,
        owner: &str,
        payload: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.inner.save_job_progress(id, owner, payload).await
    }

    async fn job_history(&self, id: i64) -> Result<Vec<JobEvent>, StoreError> {
        self.inner.job_history(id).await
    }

    async fn pending_jobs(&self) -> Result<Vec<PendingJobs>, StoreError> {
        self.inner.pending_jobs().await
    }

    async fn completion_history(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Vec<CompletionTransition>, StoreError> {
        self.inner.completion_history(provider, psp_ref).await
    }

    async fn sessions_of_cart(&self, cart_id: Uuid) -> Result<Vec<Session>, StoreError> {
        self.inner.sessions_of_cart(cart_id).await
    }

    async fn session_sync(
        &self,
        cart_id: Uuid,
        provider: &str,
    ) -> Result<Option<SessionSync>, StoreError> {
        self.inner.session_sync(cart_id, provider).await
    }

    async fn mark_synced(
        &self,
        cart_id: Uuid,
        provider: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        self.inner.mark_synced(cart_id, provider, hash).await
    }

    async fn flag_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.inner.flag_session(cart_id, provider, reason).await
    }

    async fn flagged_sessions(&self, limit: u32) -> Result<Vec<SessionSync>, StoreError> {
        self.inner.flagged_sessions(limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
