//! The `capture` job: Hantera asked to capture (`OnPaymentCapture`); capture at the PSP,
//! then record the charge on the payment actor. Two steps, each done at most once:
//!
//! 1. The PSP capture carries an idempotency key derived from Hantera's capture id and
//!    stored in the payload before the first attempt. An ambiguous failure (timeout, reset,
//!    5xx) is retried with the same key, so the PSP captures once however often we ask.
//!    The PSP's capture id is saved as soon as it is known.
//! 2. The `charge` is not idempotent in Hantera, so it is never sent blindly twice: every
//!    attempt first reads the payment's journal and looks for a charge carrying our PSP
//!    capture id as its transaction reference; only when there is none is the charge sent,
//!    once per attempt. A charge whose answer was lost is found there by the next attempt.
//!
//! A definite refusal (the PSP's 4xx, or Hantera refusing the charge) ends the job `failed`
//! with the reason, visible in the admin API, and is written to the payment's activity log
//! for the person who asked for the capture.
//!
//! The PSP is never asked for more than was authorized. A capture above the authorization
//! (an order that ended up costing more than its payment covers) captures and charges what
//! the authorization holds, then ends `failed` with the shortfall: the payment is tagged
//! `capture-shortfall` with an activity log entry, and nothing retries it.

use psp_core::ports::{Charge, HanteraError};
use psp_core::{CaptureRequest, Currency, Money, ProviderError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Attempt, JobCtx};

/// A capture as Hantera asked for it (`OnPaymentCapture`), which a capture job is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedCapture {
    /// The provider id (Hantera's `providerKey`).
    pub provider: String,
    /// The PSP payment (Hantera's `externalReference`; also the authorization number).
    pub psp_ref: String,
    /// The Hantera payment.
    pub payment_id: Uuid,
    /// Hantera's capture id; one job per capture id.
    pub payment_capture_id: String,
    /// The order captured for, when Hantera named it.
    pub order_id: Option<Uuid>,
    /// The currency code.
    pub currency: String,
    /// Exactly what Hantera asked to capture, in minor units.
    pub amount_minor: i64,
    /// The payment's successful authorizations, summed, when Hantera sent them.
    pub authorized_minor: Option<i64>,
}

/// The payload of a capture job: the request as Hantera made it, and the progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePayload {
    /// The provider id (Hantera's `providerKey`).
    pub(crate) provider: String,
    /// The PSP payment (Hantera's `externalReference`; also the authorization number).
    pub(crate) psp_ref: String,
    /// The Hantera payment.
    pub(crate) payment_id: Uuid,
    /// Hantera's capture id.
    pub(crate) payment_capture_id: String,
    /// The order captured for, when Hantera named it.
    pub(crate) order_id: Option<Uuid>,
    /// The currency code.
    pub(crate) currency: String,
    /// Exactly what Hantera asked to capture, in minor units.
    pub(crate) amount_minor: i64,
    /// The payment's successful authorizations, summed, when Hantera sent them.
    pub(crate) authorized_minor: Option<i64>,
    /// What is captured when Hantera asked for more than was authorized: the authorized
    /// amount, fixed before the first PSP attempt so that every attempt asks the same.
    #[serde(default)]
    pub(crate) capture_minor: Option<i64>,
    /// Sent with every PSP capture attempt of this job; fixed before the first.
    pub(crate) idempotency_key: String,
    /// The PSP's capture id, once the PSP captured.
    #[serde(default)]
    pub(crate) psp_capture_id: Option<String>,
    /// Whether Hantera's journal holds the charge.
    #[serde(default)]
    pub(crate) charged: bool,
    /// A definite refusal whose activity log entry is still to be written.
    #[serde(default)]
    pub(crate) refused: Option<String>,
    /// How many definite refusals ended attempts of this job; each one rotates the key.
    #[serde(default)]
    pub(crate) refusals: u32,
}

/// The idempotency key of the PSP capture for Hantera capture `capture_id`.
pub(crate) fn idempotency_key(capture_id: &str) -> String {
    format!("hantera-capture-{capture_id}")
}

pub(crate) async fn run(ctx: &JobCtx<'_>, mut p: CapturePayload) -> Attempt {
    let Some(provider) = ctx.services.provider(&p.provider) else {
        return Attempt::Fail(format!("provider {:?} is not enabled", p.provider));
    };
    let currency = match Currency::from_code(&p.currency) {
        Ok(c) => c,
        Err(e) => return Attempt::Fail(format!("currency {:?}: {e}", p.currency)),
    };
    let asked = Money::from_minor(p.amount_minor, currency);

    if let Some(reason) = p.refused.clone() {
        return refuse(ctx, &mut p, asked, reason).await;
    }

    if p.psp_capture_id.is_none() && p.capture_minor.is_none() {
        let authorized = match p.authorized_minor {
            Some(a) => Some(a),
            None => match authorized_at_psp(provider.as_ref(), &p.psp_ref).await {
                Ok(a) => a,
                Err(e) => {
                    ctx.services.metrics.upstream_error(&p.provider);
                    return Attempt::Retry(format!("reading the authorization: {e}"));
                }
            },
        };
        if let Some(authorized) = authorized.filter(|a| p.amount_minor > *a) {
            if authorized <= 0 {
                let reason = format!("nothing is authorized to capture ({asked} asked)");
                return refuse(ctx, &mut p, asked, reason).await;
            }
            p.capture_minor = Some(authorized);
            if let Err(stop) = ctx.save(&p).await {
                return stop;
            }
        }
    }
    let amount = Money::from_minor(p.capture_minor.unwrap_or(p.amount_minor), currency);

    if p.psp_capture_id.is_none() {
        let caps = provider.capabilities();
        if !caps.capture {
            let reason = format!(
                "{} cannot capture through the gateway; capture it at the PSP by hand",
                p.provider
            );
            return refuse(ctx, &mut p, amount, reason).await;
        }
        if !caps.partial_capture && p.authorized_minor.is_some_and(|a| p.amount_minor < a) {
            let reason = format!(
                "{} cannot capture part of an authorization ({amount} asked)",
                p.provider
            );
            return refuse(ctx, &mut p, amount, reason).await;
        }
        let result = provider
            .capture(CaptureRequest {
                psp_ref: &p.psp_ref,
                amount,
                idempotency_key: &p.idempotency_key,
            })
            .await;
        match result {
            Ok(done) => {
                tracing::info!(provider = %p.provider, psp_ref = %p.psp_ref, capture = %p.payment_capture_id, psp_capture = %done.psp_capture_id, %amount, "captured at the PSP");
                p.psp_capture_id = Some(done.psp_capture_id);
                if let Err(stop) = ctx.save(&p).await {
                    return stop;
                }
            }
            Err(e) if e.is_transient() => {
                ctx.services.metrics.upstream_error(&p.provider);
                return Attempt::Retry(format!("PSP capture: {e}"));
            }
            Err(e) => {
                let reason = match &e {
                    ProviderError::Rejected { code, message } => {
                        format!("the PSP refused the capture: {code}: {message}")
                    }
                    other => format!("the PSP capture failed: {other}"),
                };
                return refuse(ctx, &mut p, amount, reason).await;
            }
        }
    }

    if !p.charged {
        let psp_capture_id = p.psp_capture_id.clone().unwrap_or_default();
        match charged_already(ctx, &p, &psp_capture_id).await {
            Ok(true) => {}
            Ok(false) => {
                let charge = Charge {
                    amount: amount.to_decimal(),
                    authorization_number: Some(p.psp_ref.clone()),
                    transaction_reference: Some(psp_capture_id.clone()),
                };
                match ctx.services.hantera.charge(p.payment_id, &charge).await {
                    Ok(()) => {}
                    // The answer is lost or Hantera failed: the charge may have been
                    // recorded. The next attempt reads the journal before it sends again.
                    Err(e) if e.is_transient() => {
                        ctx.services.metrics.upstream_error("hantera");
                        return Attempt::Retry(format!("Hantera charge: {e}"));
                    }
                    Err(e) => {
                        let reason = format!(
                            "captured at the PSP ({psp_capture_id}) but Hantera refused the charge: {e}"
                        );
                        activity(ctx, &p, amount, &reason).await;
                        return Attempt::Fail(reason);
                    }
                }
            }
            Err(stop) => return stop,
        }
        p.charged = true;
        // Recording it spares the journal read on a repeat; a repeat without it reads the
        // journal and finds the charge, so a failure here is harmless.
        let _ = ctx.save(&p).await;
        tracing::info!(provider = %p.provider, payment_id = %p.payment_id, capture = %p.payment_capture_id, %amount, "payment charged");
    }
    if amount != asked {
        return shortfall(ctx, &p, asked, amount).await;
    }
    Attempt::Done
}

/// What the PSP says it authorized, in minor units, when Hantera did not send it.
async fn authorized_at_psp(
    provider: &dyn psp_core::Provider,
    psp_ref: &str,
) -> Result<Option<i64>, ProviderError> {
    match provider.fetch(psp_ref).await {
        Ok(payment) => Ok(match payment.status {
            psp_core::PspStatus::Authorized { amount }
            | psp_core::PspStatus::Captured { amount } => Some(amount.minor),
            _ => None,
        }),
        Err(e) if e.is_transient() => Err(e),
        // The capture itself meets the same refusal and records it.
        Err(_) => Ok(None),
    }
}

/// Ends a capture that took all the authorization held but less than Hantera asked: the
/// payment is tagged and logged for a person, and the job is `failed` so the admin API
/// lists it. Retrying could not capture money that was never authorized.
async fn shortfall(ctx: &JobCtx<'_>, p: &CapturePayload, asked: Money, captured: Money) -> Attempt {
    let reason = format!(
        "capture {} asked for {asked} but the authorization covers {captured}: {captured} was captured and charged, the rest needs a person",
        p.payment_capture_id
    );
    let message = format!("psp-gateway: {reason}");
    match ctx
        .services
        .hantera
        .flag_payment(p.payment_id, CAPTURE_SHORTFALL_TAG, &message)
        .await
    {
        Ok(()) => {}
        Err(e) if e.is_transient() => {
            ctx.services.metrics.upstream_error("hantera");
            return Attempt::Retry(format!("{reason} (tagging the payment: {e})"));
        }
        Err(e) => {
            tracing::warn!(payment_id = %p.payment_id, error = %e, "tagging a capture shortfall was refused")
        }
    }
    tracing::error!(provider = %p.provider, psp_ref = %p.psp_ref, %reason, "capture above the authorization");
    Attempt::Fail(reason)
}

/// The tag of a payment whose capture asked for more than was authorized.
pub(crate) const CAPTURE_SHORTFALL_TAG: &str = "capture-shortfall";

/// Whether the payment's journal holds a charge for our PSP capture.
async fn charged_already(
    ctx: &JobCtx<'_>,
    p: &CapturePayload,
    psp_capture_id: &str,
) -> Result<bool, Attempt> {
    match ctx.services.hantera.payment_journal(p.payment_id).await {
        Ok(Some(journal)) => Ok(journal.iter().any(|entry| {
            entry.entry_type == "charge"
                && entry.transaction_reference.as_deref() == Some(psp_capture_id)
        })),
        Ok(None) => Err(Attempt::Fail(format!(
            "captured at the PSP ({psp_capture_id}) but Hantera has no payment {}",
            p.payment_id
        ))),
        Err(e) if e.is_transient() => {
            ctx.services.metrics.upstream_error("hantera");
            Err(Attempt::Retry(format!(
                "reading the payment's journal: {e}"
            )))
        }
        Err(e) => Err(Attempt::Fail(format!(
            "reading the payment's journal was refused: {e}"
        ))),
    }
}

/// Ends the job on a definite refusal. The reason is kept in the payload first, so that a
/// failing activity write retries only the write, never the capture. Once the entry is
/// written the idempotency key is rotated: the PSP answered this key definitely and would
/// answer a replay under it with the same saved refusal, whereas a person who replays the
/// job has changed something and wants a new attempt. (Only a definite answer rotates the
/// key; after an ambiguous one the key is always reused.)
async fn refuse(
    ctx: &JobCtx<'_>,
    p: &mut CapturePayload,
    amount: Money,
    reason: String,
) -> Attempt {
    if p.refused.is_none() {
        p.refused = Some(reason.clone());
        if let Err(stop) = ctx.save(p).await {
            return stop;
        }
    }
    if let Err(e) = write_activity(ctx, p, amount, &reason).await {
        if e.is_transient() {
            return Attempt::Retry(format!(
                "{reason} (writing the payment's activity log: {e})"
            ));
        }
        tracing::warn!(payment_id = %p.payment_id, error = %e, "the activity log entry was refused");
    }
    p.refused = None;
    p.refusals += 1;
    p.idempotency_key = format!("{}-r{}", idempotency_key(&p.payment_capture_id), p.refusals);
    if let Err(stop) = ctx.save(p).await {
        return stop;
    }
    tracing::warn!(provider = %p.provider, psp_ref = %p.psp_ref, capture = %p.payment_capture_id, %reason, "capture failed");
    Attempt::Fail(reason)
}

/// Writes the activity entry, logging instead of failing: the job's own failure is the
/// durable record.
async fn activity(ctx: &JobCtx<'_>, p: &CapturePayload, amount: Money, reason: &str) {
    if let Err(e) = write_activity(ctx, p, amount, reason).await {
        tracing::warn!(payment_id = %p.payment_id, error = %e, "writing the activity log failed");
    }
}

async fn write_activity(
    ctx: &JobCtx<'_>,
    p: &CapturePayload,
    amount: Money,
    reason: &str,
) -> Result<(), HanteraError> {
    let message = format!(
        "psp-gateway: capture {} of {amount} failed: {reason}",
        p.payment_capture_id
    );
    ctx.services
        .hantera
        .add_payment_activity(p.payment_id, &message)
        .await
}
