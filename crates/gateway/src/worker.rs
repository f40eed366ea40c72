//! The worker: leases jobs from the store and runs them. A job survives restarts because
//! it lives in the store; a crashed worker's lease expires and another worker (or the
//! restarted process) takes the job again. Every job is written to be safe to repeat.

use std::sync::Arc;
use std::time::Duration;

use psp_core::completion::VOID_JOB;
use psp_core::ports::{Job, JobResult};
use psp_core::CompletionOutcome;
use rand::Rng;
use serde::Deserialize;
use tokio::sync::{watch, Semaphore};

use crate::app::AppState;

/// Completes the cart of a PSP payment (from a webhook or a deferred confirm).
pub const COMPLETE_JOB: &str = "complete";

#[derive(Debug, Deserialize)]
struct PaymentPayload {
    provider: String,
    psp_ref: Option<String>,
    #[serde(default)]
    authorized: bool,
}

/// Runs until `shutdown` turns true, then waits for the jobs in flight.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let cfg = state.config.worker.clone();
    let owner = format!("worker-{}", uuid::Uuid::new_v4());
    let slots = Arc::new(Semaphore::new(cfg.concurrency as usize));
    let lease = Duration::from_secs(cfg.lease_secs);
    let poll = Duration::from_millis(cfg.poll_interval_ms);
    tracing::info!(%owner, concurrency = cfg.concurrency, "worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let free = slots.available_permits() as u32;
        let jobs = if free == 0 {
            Vec::new()
        } else {
            match state.store.lease_jobs(&owner, lease, free).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::error!(error = %e, "leasing jobs failed");
                    Vec::new()
                }
            }
        };
        let leased = jobs.len();
        for job in jobs {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let state = state.clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                run_one(&state, &owner, job, lease).await;
                drop(permit);
                // A finished job may unblock the next job of the same cart.
                state.work.notify_one();
            });
        }
        if leased > 0 && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            _ = state.work.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Wait for in-flight jobs so their results are recorded before the process exits.
    let _ = slots.acquire_many(cfg.concurrency).await;
    tracing::info!("worker stopped");
}

async fn run_one(state: &AppState, owner: &str, job: Job, lease: Duration) {
    let kind = job.kind.clone();
    // A job must finish well inside its lease, or another worker could start it too.
    let budget = lease
        .saturating_sub(Duration::from_secs(5))
        .max(Duration::from_secs(1));
    let result = match tokio::time::timeout(budget, execute(state, &job)).await {
        Ok(result) => result,
        Err(_) => Attempt::Retry(format!("timed out after {budget:?}")),
    };
    let result = match result {
        Attempt::Done => {
            state.metrics.job(&kind, "succeeded");
            JobResult::Succeeded
        }
        Attempt::Retry(error) => {
            let final_attempt = job.attempts >= job.max_attempts;
            state
                .metrics
                .job(&kind, if final_attempt { "failed" } else { "retried" });
            tracing::warn!(job_id = job.id, kind, attempt = job.attempts, %error, "job attempt failed");
            JobResult::Retry {
                after: backoff(state, job.attempts),
                error,
            }
        }
        Attempt::Fail(error) => {
            state.metrics.job(&kind, "failed");
            tracing::error!(job_id = job.id, kind, %error, "job failed");
            JobResult::Failed { error }
        }
    };
    if let Err(e) = state.store.finish_job(job.id, owner, result).await {
        tracing::error!(job_id = job.id, error = %e, "recording a job result failed; the lease will expire and the job run again");
    }
}

/// Exponential backoff with jitter (50–100 % of the step), capped.
fn backoff(state: &AppState, attempts: u32) -> Duration {
    let cfg = &state.config.worker;
    let step = cfg
        .base_backoff_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
        .min(cfg.max_backoff_ms);
    let jittered = rand::thread_rng().gen_range(step / 2..=step.max(1));
    Duration::from_millis(jittered.max(1))
}

enum Attempt {
    Done,
    Retry(String),
    Fail(String),
}

async fn execute(state: &AppState, job: &Job) -> Attempt {
    let payload: PaymentPayload = match serde_json::from_value(job.payload.clone()) {
        Ok(p) => p,
        Err(e) => return Attempt::Fail(format!("unreadable payload: {e}")),
    };
    let Some(provider) = state.registry.get(&payload.provider).cloned() else {
        return Attempt::Fail(format!("provider {:?} is not enabled", payload.provider));
    };
    let Some(psp_ref) = payload.psp_ref.as_deref() else {
        return Attempt::Fail("the job names no PSP payment".into());
    };
    match job.kind.as_str() {
        COMPLETE_JOB => match state.completer.complete(provider.as_ref(), psp_ref).await {
            Ok(outcome) => {
                state.metrics.completion(provider.id(), outcome.label());
                match outcome {
                    // The PSP said authorized but a re-read does not (yet): PSPs are
                    // eventually consistent, so look again later.
                    CompletionOutcome::NotAuthorized { status } if payload.authorized => {
                        Attempt::Retry(format!("the PSP still says {status}"))
                    }
                    _ => Attempt::Done,
                }
            }
            Err(e) => {
                state.metrics.completion(provider.id(), "error");
                if e.is_transient() {
                    state.metrics.upstream_error(provider.id());
                    Attempt::Retry(e.to_string())
                } else {
                    Attempt::Fail(e.to_string())
                }
            }
        },
        VOID_JOB => {
            let key = format!("void:{}:{psp_ref}", provider.id());
            match provider.void(psp_ref, &key).await {
                Ok(()) => {
                    tracing::info!(provider = provider.id(), psp_ref, "double payment voided");
                    Attempt::Done
                }
                Err(e) if e.is_transient() => Attempt::Retry(e.to_string()),
                Err(e) => Attempt::Fail(e.to_string()),
            }
        }
        other => Attempt::Fail(format!("unknown job kind {other:?}")),
    }
}
