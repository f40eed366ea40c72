//! `/admin`: work that failed or needs a person. List it with the reasons, look at one item
//! with its history, replay it. Every route wants `Authorization: Bearer
//! <server.admin_token>`; without a configured token the admin API does not exist.
//!
//! | route | what |
//! |---|---|
//! | `GET /admin/failed[?kind=capture]` | failed jobs (captures, syncs, completions from webhooks, voids), completions needing attention or double payments, sessions whose cart changed after authorization |
//! | `GET /admin/jobs/{id}` | one job, its history, and for payment jobs the completion record |
//! | `POST /admin/jobs/{id}/replay` | a failed job runs again with a fresh attempt budget |
//! | `GET /admin/completions/{provider}/{pspRef}` | a completion with its history and its void job |
//! | `POST /admin/completions/{provider}/{pspRef}/replay` | runs the completion again |
//! | `GET /admin/carts/{cartId}/sessions` | the cart's PSP sessions with their sync state |
//!
//! Replaying is idempotent: a job that is not failed is left alone, and replaying a
//! completion twice in the same state adds one job.

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use psp_core::ports::{Completion, CompletionState, Enqueued, Job, JobState, SessionSync};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{cart_id, Path, Query};
use crate::edge::app::AppState;
use crate::edge::error::AppError;
use crate::services::jobs::{payment_of, CompleteCause, JobSpec};

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/failed", get(failed))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/replay", post(replay))
        .route("/completions/{provider}/{psp_ref}", get(completion))
        .route(
            "/completions/{provider}/{psp_ref}/replay",
            post(replay_completion),
        )
        .route("/carts/{cart_id}/sessions", get(cart_sessions))
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
    if !super::bearer_matches(req.headers(), expected) {
        return Err(AppError::unauthorized(
            "INVALID_TOKEN",
            "a valid admin bearer token is required",
        ));
    }
    Ok(next.run(req).await)
}

#[derive(Debug, Deserialize)]
struct FailedQuery {
    kind: Option<String>,
}

fn job_json(job: &Job) -> Value {
    json!({
        "id": job.id, "kind": job.kind, "dedupeKey": job.dedupe_key, "cartId": job.cart_id,
        "state": job.state.as_str(), "attempts": job.attempts, "maxAttempts": job.max_attempts,
        "nextRunAtMs": job.next_run_at_ms, "reason": job.last_error,
        "createdAtMs": job.created_at_ms, "payload": job.payload,
    })
}

fn completion_json(c: &Completion) -> Value {
    json!({
        "provider": c.provider, "pspRef": c.psp_ref, "cartId": c.cart_id,
        "state": c.state.as_str(), "paymentId": c.payment_id, "reason": c.reason,
        "updatedAtMs": c.updated_at_ms,
    })
}

fn session_json(s: &SessionSync) -> Value {
    json!({
        "cartId": s.cart_id, "provider": s.provider, "reason": s.attention,
        "flaggedAtMs": s.attention_at_ms, "syncedHash": s.synced_hash,
        "pendingHash": s.pending_hash,
    })
}

async fn failed(
    State(state): State<AppState>,
    Query(query): Query<FailedQuery>,
) -> Result<Json<Value>, AppError> {
    let jobs: Vec<Value> = state
        .services
        .store
        .jobs_in(JobState::Failed, 200)
        .await?
        .iter()
        .filter(|j| query.kind.as_deref().is_none_or(|k| j.kind == k))
        .map(job_json)
        .collect();
    let completions: Vec<Value> = state
        .services
        .store
        .completions_in(
            &[
                CompletionState::NeedsAttention,
                CompletionState::DoublePayment,
                CompletionState::Underpaid,
            ],
            200,
        )
        .await?
        .iter()
        .map(completion_json)
        .collect();
    let sessions: Vec<Value> = state
        .services
        .store
        .flagged_sessions(200)
        .await?
        .iter()
        .map(session_json)
        .collect();
    Ok(Json(
        json!({ "jobs": jobs, "completions": completions, "sessions": sessions }),
    ))
}

async fn job(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<Value>, AppError> {
    let Some(job) = state.services.store.job(id).await? else {
        return Err(AppError::not_found("JOB_NOT_FOUND", format!("no job {id}")));
    };
    let history = state.services.store.job_history(id).await?;
    let mut answer = job_json(&job);
    answer["history"] = json!(history
        .iter()
        .map(
            |e| json!({ "event": e.event, "attempt": e.attempt, "error": e.error, "atMs": e.at_ms })
        )
        .collect::<Vec<_>>());
    if let Some((provider, psp_ref)) = payment_of(&job) {
        if let Some(c) = state.services.store.completion(provider, psp_ref).await? {
            answer["completion"] = completion_json(&c);
        }
    }
    Ok(Json(answer))
}

async fn replay(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, AppError> {
    if state.services.store.job(id).await?.is_none() {
        return Err(AppError::not_found("JOB_NOT_FOUND", format!("no job {id}")));
    }
    let replayed = state.services.jobs.replay(id).await?;
    if replayed {
        tracing::info!(job_id = id, "job replayed by an admin");
    }
    Ok(Json(json!({ "jobId": id, "replayed": replayed })))
}

async fn completion_record(
    state: &AppState,
    provider: &str,
    psp_ref: &str,
) -> Result<Completion, AppError> {
    state
        .services
        .store
        .completion(provider, psp_ref)
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "COMPLETION_NOT_FOUND",
                format!("no completion of {provider} payment {psp_ref}"),
            )
        })
}

async fn completion(
    State(state): State<AppState>,
    Path((provider, psp_ref)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let record = completion_record(&state, &provider, &psp_ref).await?;
    let history = state
        .services
        .store
        .completion_history(&provider, &psp_ref)
        .await?;
    let mut answer = completion_json(&record);
    answer["history"] = json!(history
        .iter()
        .map(|t| json!({ "state": t.state.as_str(), "reason": t.reason, "atMs": t.at_ms }))
        .collect::<Vec<_>>());
    let void_key = JobSpec::void_key(&provider, &psp_ref);
    if let Some(void) = state.services.store.job_by_key(&void_key).await? {
        answer["void"] = job_json(&void);
    }
    Ok(Json(answer))
}

async fn replay_completion(
    State(state): State<AppState>,
    Path((provider, psp_ref)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let record = completion_record(&state, &provider, &psp_ref).await?;
    if record.state.is_final() {
        return Err(AppError::conflict(
            "COMPLETION_FINAL",
            format!(
                "the completion is {}; nothing runs again",
                record.state.as_str()
            ),
        ));
    }
    // Keyed by the record's last change: replaying twice before anything happened adds
    // one job; once the completion moved on, a new replay is a new job.
    let job = JobSpec::Complete {
        provider,
        psp_ref: Some(psp_ref),
        cart_id: Some(record.cart_id),
        cause: CompleteCause::AdminReplay {
            record_at_ms: record.updated_at_ms,
        },
    };
    let (job_id, replayed) = match state.services.jobs.add(job).await? {
        Enqueued::New(id) => (id, true),
        Enqueued::Duplicate(id) => (id, false),
    };
    Ok(Json(json!({ "jobId": job_id, "replayed": replayed })))
}

async fn cart_sessions(
    State(state): State<AppState>,
    Path(cart): Path<String>,
) -> Result<Json<Value>, AppError> {
    let cart_id = cart_id(&cart)?;
    let mut sessions = Vec::new();
    for s in state.services.store.sessions_of_cart(cart_id).await? {
        let sync = state
            .services
            .store
            .session_sync(cart_id, &s.provider)
            .await?;
        sessions.push(json!({
            "provider": s.provider, "pspRef": s.psp_ref, "status": s.status.as_str(),
            "amountMinor": s.amount_minor, "currency": s.currency, "updatedAtMs": s.updated_at_ms,
            "syncedHash": sync.as_ref().and_then(|x| x.synced_hash.clone()),
            "pendingHash": sync.as_ref().and_then(|x| x.pending_hash.clone()),
            "attention": sync.as_ref().and_then(|x| x.attention.clone()),
        }));
    }
    Ok(Json(json!({ "cartId": cart_id, "sessions": sessions })))
}
