//! `/admin`: failed work for people. List what failed or needs attention, look at one job,
//! replay it. Every route wants `Authorization: Bearer <server.admin_token>`; without a
//! configured token the admin API does not exist.

use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use psp_core::ports::{CompletionState, JobState};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::error::AppError;

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/failed", get(failed))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/replay", post(replay))
        .route_layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(expected) = state.config.server.admin_token.as_ref() else {
        return Err(AppError::not_found(
            "ADMIN_DISABLED",
            "no admin_token is configured",
        ));
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
        return Err(AppError::unauthorized(
            "INVALID_TOKEN",
            "a valid admin bearer token is required",
        ));
    }
    Ok(next.run(req).await)
}

async fn failed(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let jobs = state.store.jobs_in(JobState::Failed, 200).await?;
    let completions = state
        .store
        .completions_in(
            &[
                CompletionState::NeedsAttention,
                CompletionState::DoublePayment,
            ],
            200,
        )
        .await?;
    let completions: Vec<Value> = completions
        .into_iter()
        .map(|c| {
            json!({
                "provider": c.provider, "pspRef": c.psp_ref, "cartId": c.cart_id,
                "state": c.state.as_str(), "paymentId": c.payment_id, "reason": c.reason,
                "updatedAtMs": c.updated_at_ms,
            })
        })
        .collect();
    Ok(Json(json!({ "jobs": jobs, "completions": completions })))
}

async fn job(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    match state.store.job(id).await? {
        Some(job) => Ok(Json(json!(job))),
        None => Err(AppError::not_found("JOB_NOT_FOUND", format!("no job {id}"))),
    }
}

async fn replay(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    if state.store.job(id).await?.is_none() {
        return Err(AppError::not_found("JOB_NOT_FOUND", format!("no job {id}")));
    }
    let replayed = state.store.replay_job(id).await?;
    if replayed {
        state.work.notify_one();
    }
    Ok(Json(json!({ "jobId": id, "replayed": replayed })))
}
