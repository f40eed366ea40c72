//! The storefront's two calls: start (or reuse) a PSP session for a cart, and confirm
//! after the customer returns from the PSP.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use psp_core::CompletionOutcome;
use serde_json::{json, Value};

use super::{body, cart_id, provider, Path};
use crate::edge::app::AppState;
use crate::edge::error::AppError;
use crate::services::{checkout, payments};

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
    let client =
        checkout::start(&state.services, provider.as_ref(), cart_id, &request_body).await?;
    Ok(Json(client))
}

/// `POST /ingress/commerce/carts/{cartId}/payment/{provider}/confirm`: the customer is
/// back from the PSP. Runs the same idempotent completion as the webhook, at once.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Path((cart, provider_id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let provider = provider(&state, &provider_id)?;
    let cart_id = cart_id(&cart)?;
    let confirmed = payments::confirm(&state.services, provider.as_ref(), cart_id).await?;
    confirm_answer(cart_id, &confirmed.psp_ref, confirmed.outcome)
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
