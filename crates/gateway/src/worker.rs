//! The worker: leases jobs from the store and runs them. A job survives restarts because
//! it lives in the store; a crashed worker's lease expires and another worker (or the
//! restarted process) takes the job again. Every job is written to be safe to repeat.
//!
//! - Leases: a job is reserved for `worker.lease_secs`; an attempt is cut off well inside
//!   its lease, so two workers never run the same job at once.
//! - Retries: exponential backoff from `worker.base_backoff_ms`, doubling per attempt,
//!   capped at `worker.max_backoff_ms`, with 50–100 % jitter so that jobs failing together
//!   do not retry together.
//! - Budget: after `max_attempts` the job is `failed`, listed by the admin API, and waits
//!   for a replay. A definite refusal fails it at once.
//! - Order: the store leases at most one job per cart, the oldest first; different carts
//!   run concurrently, up to `worker.concurrency`.
//!
//! Beside the job loop run the reconciliation sweep (`jobs::sweep`) and a refresh of the
//! pending-job gauges.

use std::sync::Arc;
use std::time::{Duration, Instant};

use psp_core::ports::{Job, JobResult};
use psp_core::CompletionOutcome;
use rand::Rng;
use serde::Deserialize;
use tokio::sync::{watch, Semaphore};

use crate::app::AppState;
use crate::jobs::{self, Attempt, JobCtx};

pub use crate::jobs::{CAPTURE_JOB, COMPLETE_JOB, SYNC_JOB, VOID_JOB};

/// How often the pending-job gauges are refreshed from the store.
const GAUGE_REFRESH: Duration = Duration::from_secs(1);

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
    let sweep = tokio::spawn(jobs::sweep::run(state.clone(), shutdown.clone()));
    let mut gauges_at: Option<Instant> = None;
    tracing::info!(%owner, concurrency = cfg.concurrency, "worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        if gauges_at.is_none_or(|at| at.elapsed() >= GAUGE_REFRESH) {
            refresh_gauges(&state).await;
            gauges_at = Some(Instant::now());
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
            // A dropped sender can never say "stop" any more; without this the loop would
            // wake at once on every turn.
            changed = shutdown.changed() => if changed.is_err() { break },
        }
    }
    // Wait for in-flight jobs so their results are recorded before the process exits.
    let _ = slots.acquire_many(cfg.concurrency).await;
    let _ = sweep.await;
    tracing::info!("worker stopped");
}

async fn refresh_gauges(state: &AppState) {
    match state.store.pending_jobs().await {
        Ok(pending) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            state.metrics.set_pending(&pending, now);
        }
        Err(e) => tracing::warn!(error = %e, "reading the pending jobs for the gauges failed"),
    }
}

/// How long one attempt may run under a lease: a margin is kept for recording the result,
/// so the lease cannot expire under a running attempt and let a second worker start it.
pub fn attempt_budget(lease: Duration) -> Duration {
    let margin = (lease / 4).min(Duration::from_secs(5));
    lease.saturating_sub(margin).max(Duration::from_millis(100))
}

async fn run_one(state: &AppState, owner: &str, job: Job, lease: Duration) {
    let kind = job.kind.clone();
    let budget = attempt_budget(lease);
    let ctx = JobCtx {
        state,
        owner,
        job: &job,
    };
    let result = match tokio::time::timeout(budget, execute(&ctx)).await {
        Ok(result) => result,
        // The attempt is abandoned mid-call, which is an ambiguous outcome like any
        // timeout: the retry repeats it with the same idempotency keys.
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
            let cfg = &state.config.worker;
            JobResult::Retry {
                after: backoff(
                    cfg.base_backoff_ms,
                    cfg.max_backoff_ms,
                    job.attempts,
                    &mut rand::thread_rng(),
                ),
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

/// The delay before the attempt after attempt number `attempts` (1 for the first):
/// `base · 2^(attempts-1)`, capped at `max`, then a uniformly random 50–100 % of that,
/// and at least 1 ms.
pub fn backoff(base_ms: u64, max_ms: u64, attempts: u32, rng: &mut impl Rng) -> Duration {
    let step = base_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(32))
        .min(max_ms);
    let jittered = rng.gen_range(step / 2..=step);
    Duration::from_millis(jittered.max(1))
}

async fn execute(ctx: &JobCtx<'_>) -> Attempt {
    match ctx.job.kind.as_str() {
        COMPLETE_JOB => complete(ctx).await,
        VOID_JOB => void(ctx).await,
        CAPTURE_JOB => jobs::capture::run(ctx).await,
        SYNC_JOB => jobs::sync::run(ctx).await,
        other => Attempt::Fail(format!("unknown job kind {other:?}")),
    }
}

fn payment_payload(
    ctx: &JobCtx<'_>,
) -> Result<(Arc<dyn psp_core::Provider>, String, bool), Attempt> {
    let payload: PaymentPayload = serde_json::from_value(ctx.job.payload.clone())
        .map_err(|e| Attempt::Fail(format!("unreadable payload: {e}")))?;
    let provider = ctx
        .state
        .registry
        .get(&payload.provider)
        .cloned()
        .ok_or_else(|| Attempt::Fail(format!("provider {:?} is not enabled", payload.provider)))?;
    let psp_ref = payload
        .psp_ref
        .ok_or_else(|| Attempt::Fail("the job names no PSP payment".into()))?;
    Ok((provider, psp_ref, payload.authorized))
}

async fn complete(ctx: &JobCtx<'_>) -> Attempt {
    let state = ctx.state;
    let (provider, psp_ref, authorized) = match payment_payload(ctx) {
        Ok(p) => p,
        Err(stop) => return stop,
    };
    match state.completer.complete(provider.as_ref(), &psp_ref).await {
        Ok(outcome) => {
            state.metrics.completion(provider.id(), outcome.label());
            match outcome {
                // The PSP said authorized but a re-read does not (yet): PSPs are
                // eventually consistent, so look again later.
                CompletionOutcome::NotAuthorized { status } if authorized => {
                    Attempt::Retry(format!("the PSP still says {status}"))
                }
                CompletionOutcome::Completed { .. }
                | CompletionOutcome::AlreadyCompleted
                | CompletionOutcome::Underpaid { .. } => {
                    after_completion(state, provider.as_ref(), &psp_ref).await;
                    Attempt::Done
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
    }
}

/// Tells the provider its payment completed a cart (Kustom acknowledges the order). A
/// failure does not undo the completion; the PSP's own retries bring the event back.
pub(crate) async fn after_completion(
    state: &AppState,
    provider: &dyn psp_core::Provider,
    psp_ref: &str,
) {
    if let Err(e) = provider.after_completion(psp_ref).await {
        state.metrics.upstream_error(provider.id());
        tracing::warn!(provider = provider.id(), psp_ref, error = %e, "after-completion step failed");
    }
}

async fn void(ctx: &JobCtx<'_>) -> Attempt {
    let (provider, psp_ref, _) = match payment_payload(ctx) {
        Ok(p) => p,
        Err(stop) => return stop,
    };
    if !provider.capabilities().void {
        return Attempt::Fail(format!(
            "{} cannot void; release or refund {psp_ref} at the PSP by hand",
            provider.id()
        ));
    }
    // The key is derived from the payment, so every attempt (and a replay) asks the PSP
    // for the same void.
    let key = format!("void:{}:{psp_ref}", provider.id());
    match provider.void(&psp_ref, &key).await {
        Ok(()) => {
            tracing::info!(provider = provider.id(), %psp_ref, "double payment voided");
            Attempt::Done
        }
        Err(e) if e.is_transient() => {
            ctx.state.metrics.upstream_error(provider.id());
            Attempt::Retry(e.to_string())
        }
        Err(e) => Attempt::Fail(format!("the PSP refused the void: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_from_the_base_stays_within_its_jitter_and_is_capped() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempts in 1..=40u32 {
            let step = (200u64 << (attempts - 1).min(32)).min(60_000);
            for _ in 0..200 {
                let d = backoff(200, 60_000, attempts, &mut rng).as_millis() as u64;
                assert!(
                    d >= step / 2 && d <= step,
                    "attempt {attempts}: {d} ms outside {}..={step}",
                    step / 2
                );
            }
        }
        assert!(backoff(200, 60_000, 1, &mut rng) <= Duration::from_millis(200));
        assert!(backoff(200, 60_000, u32::MAX, &mut rng) <= Duration::from_secs(60));
    }

    #[test]
    fn backoff_is_jittered_so_jobs_failing_together_spread_out() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let delays: std::collections::HashSet<u128> = (0..50)
            .map(|_| backoff(1_000, 60_000, 3, &mut rng).as_millis())
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn backoff_is_never_zero() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        assert!(backoff(0, 0, 1, &mut rng) >= Duration::from_millis(1));
    }

    #[test]
    fn an_attempt_ends_well_inside_its_lease() {
        assert_eq!(
            attempt_budget(Duration::from_secs(60)),
            Duration::from_secs(55)
        );
        assert_eq!(
            attempt_budget(Duration::from_secs(2)),
            Duration::from_millis(1500)
        );
        assert!(attempt_budget(Duration::from_secs(1)) < Duration::from_secs(1));
    }
}
