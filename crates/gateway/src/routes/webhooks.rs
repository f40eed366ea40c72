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
use psp_core::ports::{NewJob, NewWebhook, Recorded};
use psp_core::{EventKind, WebhookDelivery, WebhookError};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::AppError;
use crate::routes::{body, provider, Path};
use crate::worker::COMPLETE_JOB;

/// Receives one delivery.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let provider = provider(&state, &provider_id).inspect_err(|_| {
        state.metrics.webhook("unknown", "unknown_provider");
    })?;
    let id = provider.id();
    let raw = body(raw).inspect_err(|_| state.metrics.webhook(id, "too_large"))?;
    let delivery = WebhookDelivery {
        headers: &headers,
        body: &raw,
        query: query.as_deref(),
        now: SystemTime::now(),
    };
    let event = match provider.verify_webhook(&delivery).await {
        Ok(event) => event,
        Err(WebhookError::Signature(e)) => {
            state.metrics.webhook(id, "bad_signature");
            tracing::warn!(provider = id, error = %e, "webhook refused");
            return Err(AppError::unauthorized(
                "INVALID_SIGNATURE",
                format!("webhook not verified: {e}"),
            ));
        }
        Err(WebhookError::RateLimited(m)) => {
            state.metrics.webhook(id, "rate_limited");
            return Err(AppError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                m,
            ));
        }
        Err(WebhookError::Malformed(m)) => {
            state.metrics.webhook(id, "malformed");
            return Err(AppError::bad_request("MALFORMED_PAYLOAD", m));
        }
    };

    let job = match event.kind() {
        EventKind::Other => None,
        kind => Some(NewJob {
            kind: COMPLETE_JOB.into(),
            dedupe_key: format!("webhook:{id}:{}", event.event_id()),
            cart_id: None,
            payload: json!({
                "provider": id,
                "psp_ref": kind.psp_ref(),
                "event": event.event_type(),
                "authorized": matches!(kind, EventKind::Authorized { .. }),
            }),
            max_attempts: state.config.worker.max_attempts,
        }),
    };
    let has_job = job.is_some();
    let recorded = state
        .store
        .record_webhook(NewWebhook {
            provider: id.to_string(),
            event_id: event.event_id().to_string(),
            event_type: event.event_type().to_string(),
            psp_ref: event.kind().psp_ref().map(str::to_string),
            body: raw.to_vec(),
            job,
        })
        .await?;
    let verdict = match (recorded, has_job) {
        (Recorded::Duplicate, _) => "duplicate",
        (Recorded::New, true) => {
            state.work.notify_one();
            "accepted"
        }
        (Recorded::New, false) => "ignored",
    };
    state.metrics.webhook(id, verdict);
    Ok(Json(json!({ "received": true, "verdict": verdict })))
}
