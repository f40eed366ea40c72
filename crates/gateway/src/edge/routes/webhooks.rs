//! `POST /webhooks/{provider}`: verify on the raw bytes, record durably under the unique
//! (provider, event id), answer 2xx. The worker completes afterwards.
//!
//! Architecture invariant: nothing is recorded or sent anywhere before verification, and
//! the 200 is sent only after the record is durable.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use psp_core::{WebhookDelivery, WebhookError};
use serde_json::{json, Value};

use super::{body, provider, Path};
use crate::edge::app::AppState;
use crate::edge::error::AppError;
use crate::services::payments;

/// Receives one delivery.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let metrics = &state.services.metrics;
    let provider = provider(&state, &provider_id).inspect_err(|_| {
        metrics.webhook("unknown", "unknown_provider");
    })?;
    let id = provider.id();
    let raw = body(raw).inspect_err(|_| metrics.webhook(id, "too_large"))?;
    let delivery = WebhookDelivery {
        headers: &headers,
        body: &raw,
        query: query.as_deref(),
        now: SystemTime::now(),
    };
    let event = provider
        .verify_webhook(&delivery)
        .await
        .inspect_err(|e| match e {
            WebhookError::Signature(e) => {
                metrics.webhook(id, "bad_signature");
                tracing::warn!(provider = id, error = %e, "webhook refused");
            }
            WebhookError::RateLimited(_) => metrics.webhook(id, "rate_limited"),
            WebhookError::Malformed(_) => metrics.webhook(id, "malformed"),
        })?;
    let verdict = payments::record_event(&state.services, provider.as_ref(), &event, &raw)
        .await?
        .as_str();
    metrics.webhook(id, verdict);
    Ok(Json(json!({ "received": true, "verdict": verdict })))
}
