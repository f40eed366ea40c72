//! The storefront's two calls: start (or reuse) a PSP session for a cart, and confirm
//! after the customer returns from the PSP.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use psp_core::ports::{JobState, NewJob, Session, SessionStatus};
use psp_core::{
    CartState, CheckoutRequest, CompletionOutcome, ExistingSession, Money, ProviderError,
};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::AppError;
use crate::routes::{body, cart_id, provider, Path};

/// `POST /ingress/commerce/carts/{cartId}/payment/{provider}`: starts a session with the
/// PSP for the cart's current total, or returns the one already started for it.
pub(crate) async fn start(
    State(state): State<AppState>,
    Path((cart, provider_id)): Path<(String, String)>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let provider = provider(&state, &provider_id)?;
    let cart_id = cart_id(&cart)?;
    let raw = body(raw)?;
    let request_body: Value = if raw.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&raw).map_err(|e| {
            AppError::bad_request("MALFORMED_JSON", format!("the body is not JSON: {e}"))
        })?
    };
    if !request_body.is_object() {
        return Err(AppError::bad_request(
            "MALFORMED_JSON",
            "the body must be a JSON object",
        ));
    }

    let cart = match state.hantera.get_cart(cart_id).await {
        Ok(Some(cart)) => cart,
        Ok(None) => {
            return Err(AppError::not_found(
                "CART_NOT_FOUND",
                format!("cart {cart_id} does not exist"),
            ))
        }
        Err(e) => {
            state.metrics.upstream_error("hantera");
            tracing::warn!(error = %e, %cart_id, "reading the cart failed");
            return Err(AppError::upstream(
                "HANTERA_UNAVAILABLE",
                "Hantera did not answer; try again",
            ));
        }
    };
    if cart.cart_state != CartState::Open {
        return Err(AppError::conflict(
            "CART_NOT_OPEN",
            format!("cart {cart_id} is {}", cart.cart_state.as_str()),
        )
        .with_details(json!({ "cartState": cart.cart_state.as_str() })));
    }
    let amount = cart.total().map_err(|e| {
        AppError::bad_request(
            "CART_NOT_PAYABLE",
            format!("the cart total cannot be paid: {e}"),
        )
    })?;
    if amount.minor <= 0 {
        return Err(AppError::bad_request(
            "CART_NOT_PAYABLE",
            "the cart total is zero",
        ));
    }

    let id = provider.id();
    let mut session = match state.store.session(cart_id, id).await? {
        Some(s) => s,
        None => {
            // The key is stored before the PSP is called, so a retried or concurrent
            // request reuses it and the PSP answers with the same session.
            let key = uuid::Uuid::new_v4().to_string();
            state.store.reserve_session(cart_id, id, &key).await?
        }
    };
    match session.status {
        SessionStatus::Failed | SessionStatus::Canceled => {
            let key = uuid::Uuid::new_v4().to_string();
            session = state.store.restart_session(cart_id, id, &key).await?;
        }
        SessionStatus::Authorized | SessionStatus::Completed => {
            return Err(AppError::conflict(
                "PAYMENT_ALREADY_AUTHORIZED",
                "this cart's payment is authorized; it is being completed",
            ));
        }
        SessionStatus::Creating | SessionStatus::Open => {}
    }
    let existing = existing_session(&session);
    if let Some(existing) = &existing {
        if existing.amount == amount {
            return Ok(Json(existing.client.clone()));
        }
    }

    let webhook_url = state.webhook_url(id);
    // The stored key is combined with the amount: a retry for the same cart total replays
    // at the PSP, while a cart that changed before the first answer was saved is a new
    // request rather than an idempotency conflict that would block the cart for good.
    let idempotency_key = format!("{}:{}", session.idempotency_key, amount.minor);
    let result = provider
        .checkout(CheckoutRequest {
            cart: &cart,
            amount,
            body: &request_body,
            existing: existing.as_ref(),
            idempotency_key: &idempotency_key,
            webhook_url: &webhook_url,
        })
        .await;
    let started = result.map_err(|e| provider_error(&state, id, e))?;
    state
        .store
        .save_session(
            cart_id,
            id,
            &started.psp_ref,
            started.amount,
            &started.client,
        )
        .await?;
    // The PSP session now holds this cart: a later mutation syncs only what differs.
    crate::jobs::sync::record_checkout(&state, provider.as_ref(), &cart).await?;
    tracing::info!(provider = id, %cart_id, psp_ref = %started.psp_ref, amount = %started.amount, "checkout session ready");
    Ok(Json(started.client))
}

fn existing_session(session: &Session) -> Option<ExistingSession> {
    let psp_ref = session.psp_ref.clone()?;
    let currency = psp_core::Currency::from_code(session.currency.as_deref()?).ok()?;
    Some(ExistingSession {
        psp_ref,
        amount: Money::from_minor(session.amount_minor?, currency),
        client: session.client.clone().unwrap_or_else(|| json!({})),
    })
}

/// The storefront's error for a failed PSP call. A provider's own check of the request
/// is answered as it words it; whatever the PSP said goes to the log only, since the
/// caller is unauthenticated and the PSP's words can name keys, accounts or internals.
fn provider_error(state: &AppState, provider: &str, e: ProviderError) -> AppError {
    match e {
        ProviderError::BadRequest(m) => AppError::bad_request("BAD_CHECKOUT_REQUEST", m),
        ProviderError::Locked(m) => {
            tracing::info!(provider, reason = %m, "PSP session can no longer change");
            AppError::conflict(
                "PAYMENT_IN_PROGRESS",
                "the payment is in progress at the payment provider and can no longer change",
            )
        }
        ProviderError::Rejected { code, message } => {
            state.metrics.upstream_error(provider);
            tracing::warn!(provider, psp_code = %code, psp_message = %message, "PSP refused the checkout");
            AppError::upstream(
                "PSP_REJECTED",
                "the payment provider refused to start the payment",
            )
        }
        other => {
            state.metrics.upstream_error(provider);
            tracing::warn!(provider, error = %other, "PSP call failed");
            AppError::upstream(
                "PSP_UNAVAILABLE",
                "the payment provider did not answer; try again",
            )
        }
    }
}

/// `POST /ingress/commerce/carts/{cartId}/payment/{provider}/confirm`: the customer is
/// back from the PSP. Runs the same idempotent completion as the webhook, at once.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Path((cart, provider_id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let provider = provider(&state, &provider_id)?;
    let cart_id = cart_id(&cart)?;
    let id = provider.id();
    let session = state.store.session(cart_id, id).await?;
    let Some(psp_ref) = session.and_then(|s| s.psp_ref) else {
        return Err(AppError::not_found(
            "SESSION_NOT_FOUND",
            format!("no {id} payment was started for cart {cart_id}"),
        ));
    };
    let outcome = state.completer.complete(provider.as_ref(), &psp_ref).await;
    match outcome {
        Ok(outcome) => {
            state.metrics.completion(id, outcome.label());
            if matches!(
                outcome,
                CompletionOutcome::Completed { .. }
                    | CompletionOutcome::AlreadyCompleted
                    | CompletionOutcome::Underpaid { .. }
            ) {
                crate::worker::after_completion(&state, provider.as_ref(), &psp_ref).await;
            }
            confirm_answer(cart_id, &psp_ref, outcome)
        }
        Err(e) => {
            state.metrics.completion(id, "error");
            if e.is_transient() {
                // Nothing is lost: the same completion is queued as durable work, and the
                // storefront may confirm again.
                let job = NewJob {
                    kind: crate::worker::COMPLETE_JOB.into(),
                    dedupe_key: String::new(),
                    cart_id: Some(cart_id),
                    payload: json!({ "provider": id, "psp_ref": psp_ref, "event": "confirm" }),
                    max_attempts: state.config.worker.max_attempts,
                };
                if enqueue_unless_pending(&state, &format!("confirm:{id}:{psp_ref}"), job).await? {
                    state.work.notify_one();
                }
                tracing::warn!(provider = id, %cart_id, error = %e, "confirm deferred to the worker");
                Err(AppError::upstream(
                    "COMPLETION_DEFERRED",
                    "an upstream did not answer; the payment will be completed in the background",
                ))
            } else {
                tracing::error!(provider = id, %cart_id, error = %e, "confirm failed");
                Err(AppError::upstream(
                    "COMPLETION_FAILED",
                    "the payment could not be completed",
                ))
            }
        }
    }
}

/// Enqueues `job` unless a job of the same series (`base_key`) is still pending, so that a
/// storefront confirming again and again during an outage adds one job, not one per call.
///
/// The series is a chain of dedupe keys: `base_key`, then `base_key:after:<id>` for the
/// job that follows job `<id>` once it has ended. Concurrent callers compute the same next
/// key, and the store's unique dedupe key lets only one of them add it. Answers whether a
/// job was added.
async fn enqueue_unless_pending(
    state: &AppState,
    base_key: &str,
    mut job: NewJob,
) -> Result<bool, AppError> {
    let mut key = base_key.to_string();
    loop {
        match state.store.job_by_key(&key).await? {
            Some(existing) if existing.state == JobState::Pending => return Ok(false),
            Some(ended) => key = format!("{base_key}:after:{}", ended.id),
            None => {
                job.dedupe_key = key;
                return Ok(matches!(
                    state.store.enqueue(job).await?,
                    psp_core::ports::Enqueued::New(_)
                ));
            }
        }
    }
}

fn confirm_answer(
    cart_id: uuid::Uuid,
    psp_ref: &str,
    outcome: CompletionOutcome,
) -> Result<Json<Value>, AppError> {
    let status =
        match &outcome {
            // An underpaid cart is completed all the same: the order exists, and settling the
            // difference is the shop's business, flagged to it, not the customer's.
            CompletionOutcome::Completed { .. }
            | CompletionOutcome::AlreadyCompleted
            | CompletionOutcome::Underpaid { .. } => "completed",
            CompletionOutcome::NotAuthorized { status }
            | CompletionOutcome::PaymentEnded { status } => status,
            // The reason can quote Hantera's answer, which is not for an unauthenticated
            // caller; it is in the log and the admin API.
            CompletionOutcome::NeedsAttention { .. } => {
                return Err(AppError::conflict(
                    "PAYMENT_NEEDS_ATTENTION",
                    "the payment does not match the cart; the shop has been notified",
                )
                .with_details(json!({ "cartId": cart_id, "paymentId": psp_ref })))
            }
            CompletionOutcome::DoublePayment { void_scheduled } => return Err(AppError::conflict(
                "DOUBLE_PAYMENT",
                "the cart was already paid; this payment will not be used",
            )
            .with_details(
                json!({ "cartId": cart_id, "paymentId": psp_ref, "voidScheduled": void_scheduled }),
            )),
        };
    Ok(Json(
        json!({ "status": status, "cartId": cart_id, "paymentId": psp_ref }),
    ))
}
