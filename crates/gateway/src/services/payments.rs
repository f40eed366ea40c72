//! A payment's way to completion outside the worker: a verified PSP event recorded with
//! the job that completes its cart, and the storefront's confirm, which completes at once
//! or hands the completion to the worker.

use psp_core::ports::{NewWebhook, Recorded, StoreError};
use psp_core::{CompletionError, CompletionOutcome, EventKind, Provider, VerifiedEvent};
use uuid::Uuid;

use super::jobs::{CompleteCause, JobSpec};
use super::Services;

/// What became of a verified webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventVerdict {
    /// Recorded with a job that completes (or closes) the payment.
    Accepted,
    /// Recorded; an event of a type the gateway does not act on.
    Ignored,
    /// Recorded before; nothing was added.
    Duplicate,
}

impl EventVerdict {
    /// The verdict's name in answers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            EventVerdict::Accepted => "accepted",
            EventVerdict::Ignored => "ignored",
            EventVerdict::Duplicate => "duplicate",
        }
    }
}

/// Records a verified event under its unique (provider, event id), with the `complete`
/// job it asks for in the same transaction. Returns once both are durable.
pub async fn record_event(
    services: &Services,
    provider: &dyn Provider,
    event: &VerifiedEvent,
    body: &[u8],
) -> Result<EventVerdict, StoreError> {
    let id = provider.id();
    let job = match event.kind() {
        EventKind::Other => None,
        kind => Some(JobSpec::Complete {
            provider: id.to_string(),
            psp_ref: kind.psp_ref().map(str::to_string),
            cart_id: None,
            cause: CompleteCause::Webhook {
                event_id: event.event_id().to_string(),
                event_type: event.event_type().to_string(),
                authorized: matches!(kind, EventKind::Authorized { .. }),
            },
        }),
    };
    let has_job = job.is_some();
    let webhook = NewWebhook {
        provider: id.to_string(),
        event_id: event.event_id().to_string(),
        event_type: event.event_type().to_string(),
        psp_ref: event.kind().psp_ref().map(str::to_string),
        body: body.to_vec(),
        job: None,
    };
    Ok(
        match (services.jobs.record_webhook(webhook, job).await?, has_job) {
            (Recorded::Duplicate, _) => EventVerdict::Duplicate,
            (Recorded::New, true) => EventVerdict::Accepted,
            (Recorded::New, false) => EventVerdict::Ignored,
        },
    )
}

/// A confirm that ran its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// The PSP payment of the cart's session.
    pub psp_ref: String,
    /// How the completion ended.
    pub outcome: CompletionOutcome,
}

/// Why a confirm has no outcome to show.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// No payment was started for the cart with this provider.
    #[error("no {provider} payment was started for cart {cart_id}")]
    NoSession {
        /// The provider id.
        provider: String,
        /// The cart.
        cart_id: Uuid,
    },
    /// An upstream did not answer; the completion continues as a job.
    #[error("the completion was deferred to the worker: {0}")]
    Deferred(#[source] CompletionError),
    /// The completion failed for good.
    #[error("the completion failed: {0}")]
    Failed(#[source] CompletionError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The customer is back from the PSP: runs the same idempotent completion as the webhook,
/// at once. When an upstream does not answer, the completion is queued as durable work,
/// one pending job however often the storefront confirms.
pub async fn confirm(
    services: &Services,
    provider: &dyn Provider,
    cart_id: Uuid,
) -> Result<Confirmed, ConfirmError> {
    let id = provider.id();
    let session = services.store.session(cart_id, id).await?;
    let Some(psp_ref) = session.and_then(|s| s.psp_ref) else {
        return Err(ConfirmError::NoSession {
            provider: id.to_string(),
            cart_id,
        });
    };
    match services.completer.complete(provider, &psp_ref).await {
        Ok(outcome) => {
            services.metrics.completion(id, outcome.label());
            if matches!(
                outcome,
                CompletionOutcome::Completed { .. }
                    | CompletionOutcome::AlreadyCompleted
                    | CompletionOutcome::Underpaid { .. }
            ) {
                after_completion(services, provider, &psp_ref).await;
            }
            Ok(Confirmed { psp_ref, outcome })
        }
        Err(e) => {
            services.metrics.completion(id, "error");
            if e.is_transient() {
                // Nothing is lost: the same completion is queued as durable work, and the
                // storefront may confirm again.
                let job = JobSpec::Complete {
                    provider: id.to_string(),
                    psp_ref: Some(psp_ref),
                    cart_id: Some(cart_id),
                    cause: CompleteCause::Confirm,
                };
                services.jobs.add_unless_pending(job).await?;
                tracing::warn!(provider = id, %cart_id, error = %e, "confirm deferred to the worker");
                Err(ConfirmError::Deferred(e))
            } else {
                tracing::error!(provider = id, %cart_id, error = %e, "confirm failed");
                Err(ConfirmError::Failed(e))
            }
        }
    }
}

/// Tells the provider its payment completed a cart (Kustom acknowledges the order). A
/// failure does not undo the completion; the PSP's own retries bring the event back.
pub(crate) async fn after_completion(services: &Services, provider: &dyn Provider, psp_ref: &str) {
    if let Err(e) = provider.after_completion(psp_ref).await {
        services.metrics.upstream_error(provider.id());
        tracing::warn!(provider = provider.id(), psp_ref, error = %e, "after-completion step failed");
    }
}
