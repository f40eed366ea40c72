//! Rows to domain types. A row that does not decode (an unknown state name, a malformed
//! UUID) is reported as a backend error naming the column, never silently defaulted.
//!
//! Both backends store the same column types (TEXT, BIGINT, BLOB/BYTEA), so each decoder is
//! one generic function over the row of any [`SqlDb`](crate::db::SqlDb).

use psp_core::ports::{
    CartClaim, Completion, CompletionState, CompletionTransition, Job, JobEvent, JobState,
    PendingJobs, Session, SessionStatus, SessionSync, StoreError,
};
use uuid::Uuid;

use crate::db::{Column, SqlRow};
use crate::StoredWebhook;

fn get<T: Column>(row: &impl SqlRow, column: &str) -> Result<T, StoreError> {
    row.col(column)
}

fn corrupt(column: &str, value: &str) -> StoreError {
    StoreError::Backend(format!(
        "column {column} holds an unreadable value {value:?}"
    ))
}

fn uuid(column: &str, value: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(value).map_err(|_| corrupt(column, value))
}

fn opt_uuid(row: &impl SqlRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    get::<Option<String>>(row, column)?
        .map(|v| uuid(column, &v))
        .transpose()
}

fn count(row: &impl SqlRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = get(row, column)?;
    u32::try_from(value).map_err(|_| corrupt(column, &value.to_string()))
}

fn json(column: &str, value: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(value).map_err(|_| corrupt(column, value))
}

fn completion_state(value: &str) -> Result<CompletionState, StoreError> {
    CompletionState::parse(value).ok_or_else(|| corrupt("state", value))
}

pub(crate) fn session(row: &impl SqlRow) -> Result<Session, StoreError> {
    let status: String = get(row, "status")?;
    Ok(Session {
        cart_id: uuid("cart_id", &get::<String>(row, "cart_id")?)?,
        provider: get(row, "provider")?,
        idempotency_key: get(row, "idempotency_key")?,
        psp_ref: get(row, "psp_ref")?,
        amount_minor: get(row, "amount_minor")?,
        currency: get(row, "currency")?,
        client: get::<Option<String>>(row, "client_json")?
            .map(|v| json("client_json", &v))
            .transpose()?,
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        updated_at_ms: get(row, "updated_at")?,
    })
}

pub(crate) fn session_sync(row: &impl SqlRow) -> Result<SessionSync, StoreError> {
    let opt_json = |column: &str| -> Result<Option<serde_json::Value>, StoreError> {
        get::<Option<String>>(row, column)?
            .map(|v| json(column, &v))
            .transpose()
    };
    Ok(SessionSync {
        cart_id: uuid("cart_id", &get::<String>(row, "cart_id")?)?,
        provider: get(row, "provider")?,
        synced_hash: get(row, "synced_hash")?,
        pending_hash: get(row, "pending_hash")?,
        pending_payload: opt_json("pending_payload")?,
        pending_cart: opt_json("pending_cart")?,
        attention: get(row, "attention")?,
        attention_at_ms: get(row, "attention_at")?,
    })
}

pub(crate) fn job_event(row: &impl SqlRow) -> Result<JobEvent, StoreError> {
    Ok(JobEvent {
        event: get(row, "event")?,
        attempt: count(row, "attempt")?,
        error: get(row, "error")?,
        at_ms: get(row, "at")?,
    })
}

pub(crate) fn pending_jobs(row: &impl SqlRow) -> Result<PendingJobs, StoreError> {
    let count: i64 = get(row, "count")?;
    Ok(PendingJobs {
        kind: get(row, "kind")?,
        count: u64::try_from(count).map_err(|_| corrupt("count", &count.to_string()))?,
        oldest_created_at_ms: get(row, "oldest")?,
    })
}

pub(crate) fn completion(row: &impl SqlRow) -> Result<Completion, StoreError> {
    Ok(Completion {
        provider: get(row, "provider")?,
        psp_ref: get(row, "psp_ref")?,
        cart_id: uuid("cart_id", &get::<String>(row, "cart_id")?)?,
        state: completion_state(&get::<String>(row, "state")?)?,
        payment_id: opt_uuid(row, "payment_id")?,
        reason: get(row, "reason")?,
        updated_at_ms: get(row, "updated_at")?,
    })
}

pub(crate) fn transition(row: &impl SqlRow) -> Result<CompletionTransition, StoreError> {
    Ok(CompletionTransition {
        state: completion_state(&get::<String>(row, "state")?)?,
        reason: get(row, "reason")?,
        at_ms: get(row, "at")?,
    })
}

pub(crate) fn claim(row: &impl SqlRow) -> Result<CartClaim, StoreError> {
    Ok(CartClaim {
        provider: get(row, "provider")?,
        psp_ref: get(row, "psp_ref")?,
    })
}

pub(crate) fn job(row: &impl SqlRow) -> Result<Job, StoreError> {
    let state: String = get(row, "state")?;
    Ok(Job {
        id: get(row, "id")?,
        kind: get(row, "kind")?,
        dedupe_key: get(row, "dedupe_key")?,
        cart_id: opt_uuid(row, "cart_id")?,
        payload: json("payload", &get::<String>(row, "payload")?)?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        attempts: count(row, "attempts")?,
        max_attempts: count(row, "max_attempts")?,
        next_run_at_ms: get(row, "next_run_at")?,
        last_error: get(row, "last_error")?,
        created_at_ms: get(row, "created_at")?,
    })
}

pub(crate) fn webhook(row: &impl SqlRow) -> Result<StoredWebhook, StoreError> {
    Ok(StoredWebhook {
        id: get(row, "id")?,
        provider: get(row, "provider")?,
        event_id: get(row, "event_id")?,
        event_type: get(row, "event_type")?,
        psp_ref: get(row, "psp_ref")?,
        body: get(row, "body")?,
        received_at_ms: get(row, "received_at")?,
    })
}
