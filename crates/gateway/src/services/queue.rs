//! The job queue: the one way work is added. Every producer (the webhook receiver, the
//! hooks, a confirm the worker takes over, the sweep, an admin's replay, the cart syncs and
//! the completion orchestrator's voids) hands it a [`JobSpec`]; the queue writes the spec's
//! row, counts a new job as `scheduled` in `psp_gateway_jobs_total`, and wakes the worker.
//!
//! Architecture invariant: a job is counted `scheduled` exactly when the store added it,
//! whoever asked, because nothing in the gateway adds jobs otherwise
//! (`hooks_and_jobs::a_capture_hook_delivered_five_times_captures_once_and_charges_exactly_the_amount_asked`,
//! `architecture::void_jobs_are_the_rows_testkit_expects`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use psp_core::ports::{
    Enqueued, JobState, NewWebhook, PendingSync, Recorded, Store, StoreError, SyncScheduled,
    VoidScheduler,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::jobs::{JobSpec, SYNC_JOB};
use crate::metrics::Metrics;

/// Adds jobs to the store, counts them, and wakes the worker.
#[derive(Clone)]
pub struct JobQueue {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// Wakes the worker when work was added or replayed.
    work: Arc<Notify>,
    /// The attempt budget of a job whose kind has none of its own.
    max_attempts: u32,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl JobQueue {
    /// A queue over `store`, giving jobs `max_attempts` attempts unless their kind says
    /// otherwise.
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, max_attempts: u32) -> Self {
        Self {
            store,
            metrics,
            work: Arc::new(Notify::new()),
            max_attempts,
        }
    }

    /// Adds a job unless one with its dedupe key exists.
    pub async fn add(&self, spec: JobSpec) -> Result<Enqueued, StoreError> {
        let enqueued = self.store.enqueue(spec.row(self.max_attempts)).await?;
        if matches!(enqueued, Enqueued::New(_)) {
            self.added(spec.kind());
        }
        Ok(enqueued)
    }

    /// Adds a job unless a job of the same series is still pending, so that a storefront
    /// confirming again and again during an outage adds one job, not one per call.
    ///
    /// The series is a chain of dedupe keys: the spec's key, then `<key>:after:<id>` for
    /// the job that follows job `<id>` once it has ended. Concurrent callers compute the
    /// same next key, and the store's unique dedupe key lets only one of them add it.
    /// Answers whether a job was added.
    pub async fn add_unless_pending(&self, spec: JobSpec) -> Result<bool, StoreError> {
        let mut row = spec.row(self.max_attempts);
        let base_key = row.dedupe_key.clone();
        loop {
            match self.store.job_by_key(&row.dedupe_key).await? {
                Some(existing) if existing.state == JobState::Pending => return Ok(false),
                Some(ended) => row.dedupe_key = format!("{base_key}:after:{}", ended.id),
                None => {
                    let added = matches!(self.store.enqueue(row).await?, Enqueued::New(_));
                    if added {
                        self.added(spec.kind());
                    }
                    return Ok(added);
                }
            }
        }
    }

    /// Records a webhook and, in the same transaction, the job it asks for (`job`
    /// replaces whatever `webhook.job` held).
    pub async fn record_webhook(
        &self,
        mut webhook: NewWebhook,
        job: Option<JobSpec>,
    ) -> Result<Recorded, StoreError> {
        webhook.job = job.as_ref().map(|spec| spec.row(self.max_attempts));
        let recorded = self.store.record_webhook(webhook).await?;
        if let (Recorded::New, Some(spec)) = (recorded, &job) {
            self.added(spec.kind());
        }
        Ok(recorded)
    }

    /// Stores a cart mutation's payload on its session and adds a sync job for it unless
    /// one is waiting (see `Store::schedule_sync`); the job runs after `delay`.
    pub async fn schedule_sync(
        &self,
        pending: PendingSync,
        delay: Duration,
    ) -> Result<SyncScheduled, StoreError> {
        let job = JobSpec::Sync {
            provider: pending.provider.clone(),
            cart_id: pending.cart_id,
        }
        .row(self.max_attempts);
        let scheduled = self.store.schedule_sync(pending, job, delay).await?;
        if matches!(scheduled, SyncScheduled::Scheduled(_)) {
            self.added(SYNC_JOB);
        }
        Ok(scheduled)
    }

    /// Gives failed job `id` a fresh attempt budget; answers whether it was failed.
    pub async fn replay(&self, id: i64) -> Result<bool, StoreError> {
        let replayed = self.store.replay_job(id).await?;
        if replayed {
            self.wake();
        }
        Ok(replayed)
    }

    /// Wakes the worker: work may be ready.
    pub fn wake(&self) {
        self.work.notify_one();
    }

    /// Resolves when work was added or replayed since the last call (or during it).
    pub(crate) async fn woken(&self) {
        self.work.notified().await;
    }

    fn added(&self, kind: &str) {
        self.metrics.job(kind, "scheduled");
        self.wake();
    }
}

/// The completion orchestrator's voids are jobs like any other.
#[async_trait]
impl VoidScheduler for JobQueue {
    async fn schedule_void(
        &self,
        provider: &str,
        psp_ref: &str,
        cart_id: Uuid,
    ) -> Result<(), StoreError> {
        self.add(JobSpec::Void {
            provider: provider.to_string(),
            psp_ref: psp_ref.to_string(),
            cart_id,
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use psp_core::ports::{JobResult, Jobs};
    use testkit::mem::MemStore;

    use super::*;
    use crate::services::jobs::CompleteCause;

    fn confirm() -> JobSpec {
        JobSpec::Complete {
            provider: "mock".into(),
            psp_ref: Some("mpay_1".into()),
            cart_id: None,
            cause: CompleteCause::Confirm,
        }
    }

    #[tokio::test]
    async fn a_confirm_series_has_one_pending_job_and_a_new_one_only_after_it_ended() {
        let store = Arc::new(MemStore::new());
        let queue = JobQueue::new(store.clone(), Arc::new(Metrics::new()), 5);
        assert!(queue.add_unless_pending(confirm()).await.unwrap());
        assert!(!queue.add_unless_pending(confirm()).await.unwrap());
        assert_eq!(store.jobs_of_kind("complete").len(), 1);

        // The pending job runs and ends; the next confirm during an outage adds the next
        // job of the series, and only one.
        let leased = store
            .lease_jobs("w", Duration::from_secs(10), 10)
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);
        let first = leased[0].id;
        store
            .finish_job(first, "w", JobResult::Succeeded)
            .await
            .unwrap();
        assert!(queue.add_unless_pending(confirm()).await.unwrap());
        assert!(!queue.add_unless_pending(confirm()).await.unwrap());
        let next = store
            .job_by_key(&format!("confirm:mock:mpay_1:after:{first}"))
            .await
            .unwrap()
            .expect("the series' next job");
        assert_eq!(next.state, JobState::Pending);
        assert_eq!(store.jobs_of_kind("complete").len(), 2);
    }
}
