//! HTTP handlers, one module per concern.

pub(crate) mod admin;
pub(crate) mod checkout;
pub(crate) mod hooks;
pub(crate) mod ops;
pub(crate) mod webhooks;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use psp_core::Provider;
use std::sync::Arc;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::AppError;

/// The request body, or the documented error when it is too large or unreadable.
pub(crate) fn body(result: Result<Bytes, BytesRejection>) -> Result<Bytes, AppError> {
    result.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the request body is larger than this gateway accepts",
            )
        } else {
            AppError::bad_request("UNREADABLE_BODY", rejection.body_text())
        }
    })
}

/// The enabled provider named by the path, or 404.
pub(crate) fn provider(state: &AppState, id: &str) -> Result<Arc<dyn Provider>, AppError> {
    state.registry.get(id).cloned().ok_or_else(|| {
        AppError::not_found("UNKNOWN_PROVIDER", format!("no provider {id:?} is enabled"))
            .with_details(
                serde_json::json!({ "enabled": state.registry.ids().collect::<Vec<_>>() }),
            )
    })
}

/// The cart id from the path; a value that is no UUID names no cart (as in Hantera).
pub(crate) fn cart_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw)
        .map_err(|_| AppError::not_found("CART_NOT_FOUND", format!("{raw:?} is not a cart id")))
}
