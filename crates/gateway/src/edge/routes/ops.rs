//! Liveness, readiness and metrics.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::edge::app::AppState;
use crate::edge::error::{AppError, ErrorItem};

/// Liveness: the process answers.
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store and Hantera answer. A gateway that cannot record or complete
/// should get no traffic. Why a part failed goes to the log: the probe is public, and an
/// upstream's error text is no caller's business.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.services.store.ping().await;
    let hantera = state.services.hantera.ping().await;
    if let Err(e) = &store {
        tracing::warn!(error = %e, "readiness: the store does not answer");
    }
    if let Err(e) = &hantera {
        tracing::warn!(error = %e, "readiness: Hantera does not answer");
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = store.is_ok() && hantera.is_ok();
    // The readiness fields stay at the top level for probes and people; a failure also
    // carries the `errors` every failure has.
    let errors = (!ready).then(|| {
        [AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NOT_READY",
            "a part the gateway needs does not answer",
        )
        .with_details(json!({ "store": word(store.is_ok()), "hantera": word(hantera.is_ok()) }))
        .into_item()]
    });
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        store: word(store.is_ok()),
        hantera: word(hantera.is_ok()),
        errors,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    store: &'static str,
    hantera: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<[ErrorItem; 1]>,
}

/// `server.metrics_token`, when set: `/metrics` wants it as a Bearer token, compared in
/// constant time.
pub(crate) async fn require_metrics_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    if let Some(expected) = &state.config.server.metrics_token {
        if !super::bearer_matches(req.headers(), expected) {
            return Err(AppError::unauthorized(
                "INVALID_TOKEN",
                "a valid metrics bearer token (server.metrics_token) is required",
            ));
        }
    }
    Ok(next.run(req).await)
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.services.metrics.render(),
    )
}
