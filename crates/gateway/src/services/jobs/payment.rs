//! The `complete` and `void` jobs: a PSP payment's completion, run by the worker, and the
//! release of a double payment at the PSP.

use std::sync::Arc;

use psp_core::{CompletionOutcome, Provider};

use super::{Attempt, JobCtx, PaymentPayload};
use crate::services::payments::after_completion;

/// The enabled provider and the PSP payment a payment job names.
fn payment(ctx: &JobCtx<'_>, p: PaymentPayload) -> Result<(Arc<dyn Provider>, String), Attempt> {
    let provider = ctx
        .services
        .provider(&p.provider)
        .ok_or_else(|| Attempt::Fail(format!("provider {:?} is not enabled", p.provider)))?;
    let psp_ref = p
        .psp_ref
        .ok_or_else(|| Attempt::Fail("the job names no PSP payment".into()))?;
    Ok((provider, psp_ref))
}

pub(crate) async fn complete(ctx: &JobCtx<'_>, p: PaymentPayload) -> Attempt {
    let services = ctx.services;
    let authorized = p.authorized.unwrap_or(false);
    let (provider, psp_ref) = match payment(ctx, p) {
        Ok(p) => p,
        Err(stop) => return stop,
    };
    match services
        .completer
        .complete(provider.as_ref(), &psp_ref)
        .await
    {
        Ok(outcome) => {
            services.metrics.completion(provider.id(), outcome.label());
            match outcome {
                // The PSP said authorized but a re-read does not (yet): PSPs are
                // eventually consistent, so look again later.
                CompletionOutcome::NotAuthorized { status } if authorized => {
                    Attempt::Retry(format!("the PSP still says {status}"))
                }
                CompletionOutcome::Completed { .. }
                | CompletionOutcome::AlreadyCompleted
                | CompletionOutcome::Underpaid { .. } => {
                    after_completion(services, provider.as_ref(), &psp_ref).await;
                    Attempt::Done
                }
                _ => Attempt::Done,
            }
        }
        Err(e) => {
            services.metrics.completion(provider.id(), "error");
            if e.is_transient() {
                services.metrics.upstream_error(provider.id());
                Attempt::Retry(e.to_string())
            } else {
                Attempt::Fail(e.to_string())
            }
        }
    }
}

pub(crate) async fn void(ctx: &JobCtx<'_>, p: PaymentPayload) -> Attempt {
    let (provider, psp_ref) = match payment(ctx, p) {
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
            ctx.services.metrics.upstream_error(provider.id());
            Attempt::Retry(e.to_string())
        }
        Err(e) => Attempt::Fail(format!("the PSP refused the void: {e}")),
    }
}
