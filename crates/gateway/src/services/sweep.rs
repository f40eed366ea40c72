//! The reconciliation sweep: sessions that went quiet (no webhook, no checkout, no sweep
//! for `worker.quiet_after_ms`) get a `complete` job, which asks their PSP and completes
//! the cart if the payment is authorized, or closes the session if it failed or was
//! cancelled. A lost webhook or a closed browser tab so never leaves a paid cart without an
//! order.
//!
//! Several replicas may sweep the same store at once; that is harmless rather than
//! prevented. A job's dedupe key names the session and the sweep's time bucket
//! (`now / sweep_interval`), so replicas sweeping in the same bucket add one job between
//! them, and the completion they run is idempotent whoever runs it. Each swept session is
//! touched, so it is looked at again only after another quiet period.

use std::sync::Arc;
use std::time::Duration;

use psp_core::ports::Enqueued;
use tokio::sync::watch;

use super::jobs::{CompleteCause, JobSpec};
use super::{now_ms, Services};

/// Sweeps every `worker.sweep_interval_ms` until `shutdown` turns true.
pub(crate) async fn run(services: Arc<Services>, mut shutdown: watch::Receiver<bool>) {
    let cfg = &services.worker;
    let interval = Duration::from_millis(cfg.sweep_interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            // A dropped sender can never say "stop" any more; stopping is the only safe
            // reading (waiting on it again would return at once, forever).
            changed = shutdown.changed() => if changed.is_err() { break },
        }
        if *shutdown.borrow() {
            break;
        }
        match sweep_once(&services, now_ms()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    sessions = n,
                    "sweep scheduled completions for quiet sessions"
                );
            }
            Err(e) => tracing::error!(error = %e, "the sweep failed; it runs again next interval"),
        }
    }
}

/// One sweep at time `now_ms`: returns how many sessions got a new `complete` job.
pub(crate) async fn sweep_once(
    services: &Services,
    now_ms: i64,
) -> Result<usize, psp_core::ports::StoreError> {
    let cfg = &services.worker;
    let quiet = Duration::from_millis(cfg.quiet_after_ms);
    let bucket = now_ms / i64::try_from(cfg.sweep_interval_ms.max(1)).unwrap_or(i64::MAX);
    let mut scheduled = 0;
    for session in services
        .store
        .quiet_sessions(quiet, cfg.sweep_batch)
        .await?
    {
        let Some(psp_ref) = session.psp_ref.as_deref() else {
            continue;
        };
        if services.provider(&session.provider).is_none() {
            continue;
        }
        let job = JobSpec::Complete {
            provider: session.provider.clone(),
            psp_ref: Some(psp_ref.to_string()),
            cart_id: Some(session.cart_id),
            cause: CompleteCause::Sweep { bucket },
        };
        if matches!(services.jobs.add(job).await?, Enqueued::New(_)) {
            scheduled += 1;
        }
        // Setting the status it has marks the session as looked at, so it is swept again
        // only after another quiet period, not on every interval.
        services
            .store
            .set_session_status(&session.provider, psp_ref, session.status)
            .await?;
    }
    Ok(scheduled)
}
