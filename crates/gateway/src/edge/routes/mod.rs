//! HTTP handlers, one module per concern.

pub(crate) mod admin;
pub(crate) mod checkout;
pub(crate) mod hooks;
pub(crate) mod ops;
pub(crate) mod webhooks;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use psp_core::{Provider, Secret};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::app::AppState;
use super::error::AppError;

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
    let registry = &state.services.registry;
    registry.get(id).cloned().ok_or_else(|| {
        AppError::not_found("UNKNOWN_PROVIDER", format!("no provider {id:?} is enabled"))
            .with_details(serde_json::json!({ "enabled": registry.ids().collect::<Vec<_>>() }))
    })
}

/// The cart id from the path; a value that is no UUID names no cart (as in Hantera).
pub(crate) fn cart_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw)
        .map_err(|_| AppError::not_found("CART_NOT_FOUND", format!("{raw:?} is not a cart id")))
}

/// Whether `Authorization: Bearer <token>` carries `expected`, compared in constant time.
pub(crate) fn bearer_matches(headers: &HeaderMap, expected: &Secret) -> bool {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = expected.expose();
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// `axum::extract::Path` whose rejection is a 400 `INVALID_PATH` in the error shape.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r| AppError::bad_request("INVALID_PATH", r.body_text()))
    }
}

/// `axum::extract::Query` whose rejection is a 400 `INVALID_QUERY` in the error shape.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r| AppError::bad_request("INVALID_QUERY", r.body_text()))
    }
}
