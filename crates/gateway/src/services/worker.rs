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
//! Beside the job loop run the reconciliation sweep (`services::sweep`) and a refresh of
//! the pending-job gauges.

use std::sync::Arc;
use std::time::{Duration, Instant};

use psp_core::ports::{Job, JobResult};
use rand::Rng;
use tokio::sync::{watch, Semaphore};

use super::jobs::{self, Attempt, JobCtx};
use super::Services;

/// How often the pending-job gauges are refreshed from the store.
const GAUGE_REFRESH: Duration = Duration::from_secs(1);

/// Runs until `shutdown` turns true, then waits for the jobs in flight.
pub async fn run(services: Arc<Services>, mut shutdown: watch::Receiver<bool>) {
    let cfg = services.worker.clone();
    let owner = format!("worker-{}", uuid::Uuid::new_v4());
    let slots = Arc::new(Semaphore::new(cfg.concurrency as usize));
    let lease = Duration::from_secs(cfg.lease_secs);
    let poll = Duration::from_millis(cfg.poll_interval_ms);
    let sweep = tokio::spawn(super::sweep::run(services.clone(), shutdown.clone()));
    let mut gauges_at: Option<Instant> = None;
    tracing::info!(%owner, concurrency = cfg.concurrency, "worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        if gauges_at.is_none_or(|at| at.elapsed() >= GAUGE_REFRESH) {
            refresh_gauges(&services).await;
            gauges_at = Some(Instant::now());
        }
        let free = slots.available_permits() as u32;
        let jobs = if free == 0 {
            Vec::new()
        } else {
            match services.store.lease_jobs(&owner, lease, free).await {
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
            let services = services.clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                run_one(&services, &owner, job, lease).await;
                drop(permit);
                // A finished job may unblock the next job of the same cart.
                services.jobs.wake();
            });
        }
        if leased > 0 && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            _ = services.jobs.woken() => {}
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

async fn refresh_gauges(services: &Services) {
    match services.store.pending_jobs().await {
        Ok(pending) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            services.metrics.set_pending(&pending, now);
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

async fn run_one(services: &Services, owner: &str, job: Job, lease: Duration) {
    let kind = job.kind.clone();
    let budget = attempt_budget(lease);
    let ctx = JobCtx {
        services,
        owner,
        job: &job,
    };
    let result = match tokio::time::timeout(budget, jobs::run(&ctx)).await {
        Ok(result) => result,
        // The attempt is abandoned mid-call, which is an ambiguous outcome like any
        // timeout: the retry repeats it with the same idempotency keys.
        Err(_) => Attempt::Retry(format!("timed out after {budget:?}")),
    };
    let result = match result {
        Attempt::Done => {
            services.metrics.job(&kind, "succeeded");
            JobResult::Succeeded
        }
        Attempt::Retry(error) => {
            let final_attempt = job.attempts >= job.max_attempts;
            services
                .metrics
                .job(&kind, if final_attempt { "failed" } else { "retried" });
            tracing::warn!(job_id = job.id, kind, attempt = job.attempts, %error, "job attempt failed");
            let cfg = &services.worker;
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
            services.metrics.job(&kind, "failed");
            tracing::error!(job_id = job.id, kind, %error, "job failed");
            JobResult::Failed { error }
        }
    };
    if let Err(e) = services.store.finish_job(job.id, owner, result).await {
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
