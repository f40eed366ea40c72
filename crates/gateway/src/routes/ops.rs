//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::app::AppState;

/// Liveness: the process answers.
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store and Hantera answer. A gateway that cannot record or complete
/// should get no traffic.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.ping().await;
    let hantera = state.hantera.ping().await;
    let ready = store.is_ok() && hantera.is_ok();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": store.map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        "hantera": hantera.map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
