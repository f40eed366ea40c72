//! `POST /hantera/hooks/{hook}`: the hooks a small Hantera app forwards to the gateway.
//!
//! - `OnCartMutation`: `{hook, …the rendered cart at the top level}`. Every open PSP session
//!   of the cart gets a sync scheduled (coalescing bursts); an authorized one whose cart
//!   changed is recorded for a person.
//! - `OnPaymentCapture`: `{hook, payment, capture}`. A pending capture of a payment whose
//!   `providerKey` is an enabled provider becomes a durable `capture` job keyed by
//!   Hantera's capture id, so a second delivery adds nothing.
//!
//! Both want `Authorization: Bearer <hantera.hook_token>`, compared in constant time. A
//! body is validated before anything is stored (400 with the documented error shape
//! otherwise), and the 2xx is sent only once the work is durable. Only what the gateway
//! uses is validated: unknown fields, and odd values in fields it does not act on (a
//! line's `cartItemId`, a capture's `orderId`), never refuse a hook, since a refused hook
//! is retried by Hantera for ever while the PSP never learns of the change. A hook about a
//! payment of another app (an unknown `providerKey`) is answered `200 {"ignored":true}`:
//! Hantera may forward hooks for every payment, and an error would only make it resend.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use psp_core::ports::Enqueued;
use psp_core::{Currency, Money, RenderedCart};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::body;
use crate::edge::app::AppState;
use crate::edge::error::AppError;
use crate::services::jobs::{sync, JobSpec, RequestedCapture};

const CART_MUTATION: &str = "OnCartMutation";
const PAYMENT_CAPTURE: &str = "OnPaymentCapture";

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/OnCartMutation", post(on_cart_mutation))
        .route("/OnPaymentCapture", post(on_payment_capture))
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    if !super::bearer_matches(req.headers(), &state.hook_token) {
        let hook = if req.uri().path().ends_with(PAYMENT_CAPTURE) {
            PAYMENT_CAPTURE
        } else {
            CART_MUTATION
        };
        state.services.metrics.hook(hook, "bad_token");
        return Err(AppError::unauthorized(
            "INVALID_TOKEN",
            "a valid hook bearer token (hantera.hook_token) is required",
        ));
    }
    Ok(next.run(req).await)
}

/// The body as a JSON object whose `hook` is `expected`.
fn hook_body(raw: &[u8], expected: &str) -> Result<Value, AppError> {
    let value: Value = serde_json::from_slice(raw).map_err(|e| {
        AppError::bad_request("MALFORMED_JSON", format!("the body is not JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(AppError::bad_request(
            "MALFORMED_JSON",
            "the body must be a JSON object",
        ));
    }
    match value.get("hook").and_then(Value::as_str) {
        Some(hook) if hook == expected => Ok(value),
        Some(other) => Err(AppError::bad_request(
            "WRONG_HOOK",
            format!("this endpoint takes {expected}, the body says {other}"),
        )),
        None => Err(AppError::bad_request(
            "INVALID_HOOK_BODY",
            format!("the body has no \"hook\": \"{expected}\""),
        )),
    }
}

/// `POST /hantera/hooks/OnCartMutation`.
pub(crate) async fn on_cart_mutation(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let metrics = state.services.metrics.clone();
    let answer = cart_mutation(&state, raw).await;
    metrics.hook(
        CART_MUTATION,
        match &answer {
            Ok(_) => "accepted",
            Err(e) if e.status().is_client_error() => "malformed",
            Err(_) => "error",
        },
    );
    answer
}

async fn cart_mutation(
    state: &AppState,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let raw = body(raw)?;
    let mut value = hook_body(&raw, CART_MUTATION)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("hook");
    }
    let cart: RenderedCart = serde_json::from_value(value.clone()).map_err(|e| {
        AppError::bad_request(
            "INVALID_HOOK_BODY",
            format!("the body is not a rendered cart: {e}"),
        )
    })?;
    // Kept as the typed subset: that is what a sync job reads back.
    let cart_json = serde_json::to_value(&cart).map_err(AppError::internal)?;
    let sessions = sync::on_mutation(&state.services, &cart, &cart_json).await?;
    Ok(Json(json!({
        "received": true,
        "cartId": cart.cart_id,
        "sessions": sessions,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaptureHook {
    payment: HookPayment,
    capture: HookCapture,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HookPayment {
    payment_id: Uuid,
    #[serde(default)]
    provider_key: Option<String>,
    #[serde(default)]
    external_reference: Option<String>,
    currency_code: String,
    #[serde(default)]
    authorizations: Vec<HookAuthorization>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HookAuthorization {
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: Decimal,
    #[serde(default)]
    authorization_state: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HookCapture {
    payment_capture_id: String,
    /// Only carried along for the record: an id that is not a UUID is dropped rather than
    /// refusing a capture the gateway can perform without it.
    #[serde(default, deserialize_with = "psp_core::lenient::uuid")]
    order_id: Option<Uuid>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: Decimal,
    #[serde(default)]
    state: Option<String>,
}

/// `POST /hantera/hooks/OnPaymentCapture`.
pub(crate) async fn on_payment_capture(
    State(state): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let answer = payment_capture(&state, raw).await;
    let verdict = match &answer {
        Ok((verdict, _)) => *verdict,
        Err(e) if e.status().is_client_error() => "malformed",
        Err(_) => "error",
    };
    state.services.metrics.hook(PAYMENT_CAPTURE, verdict);
    answer.map(|(_, body)| Json(body))
}

fn ignored(reason: String) -> (&'static str, Value) {
    ("ignored", json!({ "ignored": true, "reason": reason }))
}

async fn payment_capture(
    state: &AppState,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(&'static str, Value), AppError> {
    let raw = body(raw)?;
    let value = hook_body(&raw, PAYMENT_CAPTURE)?;
    let hook: CaptureHook = serde_json::from_value(value).map_err(|e| {
        AppError::bad_request(
            "INVALID_HOOK_BODY",
            format!("the body is not {{payment, capture}}: {e}"),
        )
    })?;
    let (payment, capture) = (hook.payment, hook.capture);

    // Another app's payment: not ours to capture, and not an error either.
    let Some(provider) = payment
        .provider_key
        .as_deref()
        .and_then(|key| state.services.registry.get(key))
        .cloned()
    else {
        return Ok(ignored(format!(
            "providerKey {:?} is not a provider enabled in this gateway",
            payment.provider_key.as_deref().unwrap_or("")
        )));
    };
    let capture_id = capture.payment_capture_id.trim();
    if capture_id.is_empty() || capture_id.len() > 100 {
        return Err(AppError::bad_request(
            "INVALID_HOOK_BODY",
            "capture.paymentCaptureId must be a non-empty id of at most 100 characters",
        ));
    }
    // Only a pending capture asks for money; the same capture completed (after our charge)
    // is reported again by Hantera and needs nothing.
    match capture.state.as_deref() {
        None | Some("pending") => {}
        Some(other) => return Ok(ignored(format!("the capture is {other}, not pending"))),
    }
    let Some(psp_ref) = payment
        .external_reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    else {
        return Err(AppError::bad_request(
            "INVALID_HOOK_BODY",
            "payment.externalReference (the PSP payment) is missing",
        ));
    };
    let currency = Currency::from_code(&payment.currency_code).map_err(|e| {
        AppError::bad_request("INVALID_HOOK_BODY", format!("payment.currencyCode: {e}"))
    })?;
    let amount = Money::from_decimal(capture.amount, currency)
        .map_err(|e| AppError::bad_request("INVALID_HOOK_BODY", format!("capture.amount: {e}")))?;
    if amount.minor <= 0 {
        return Err(AppError::bad_request(
            "INVALID_HOOK_BODY",
            "capture.amount must be positive",
        ));
    }
    let mut authorized: Option<i64> = None;
    for auth in &payment.authorizations {
        if auth.authorization_state.as_deref().unwrap_or("successful") != "successful" {
            continue;
        }
        let minor = Money::from_decimal(auth.amount, currency)
            .map_err(|e| {
                AppError::bad_request(
                    "INVALID_HOOK_BODY",
                    format!("payment.authorizations[].amount: {e}"),
                )
            })?
            .minor;
        authorized = Some(authorized.unwrap_or(0).saturating_add(minor));
    }

    let job = JobSpec::Capture(RequestedCapture {
        provider: provider.id().to_string(),
        psp_ref: psp_ref.to_string(),
        payment_id: payment.payment_id,
        payment_capture_id: capture_id.to_string(),
        order_id: capture.order_id,
        currency: currency.code().to_string(),
        amount_minor: amount.minor,
        authorized_minor: authorized,
    });
    let (verdict, job_id, duplicate) = match state.services.jobs.add(job).await? {
        Enqueued::New(id) => ("accepted", id, false),
        Enqueued::Duplicate(id) => ("duplicate", id, true),
    };
    tracing::info!(provider = provider.id(), %psp_ref, capture = capture_id, %amount, duplicate, "capture requested");
    Ok((
        verdict,
        json!({ "accepted": true, "jobId": job_id, "duplicate": duplicate }),
    ))
}
