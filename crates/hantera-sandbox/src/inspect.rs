//! `/sandbox/…`: endpoints that exist only in the sandbox, so that tests and developers
//! can see what the gateway did to "Hantera" and make it misbehave.
//!
//! They are not subject to fault injection: a test must be able to read the truth and
//! switch faults off while faults are on.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::commerce::{parse_cart_id, render};
use crate::error::ApiError;
use crate::faults::Faults;
use crate::state::{JournalRecord, Shared};

pub(crate) async fn products(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(serde_json::to_value(&shared.catalog.products).unwrap_or(Value::Null))
}

/// Every payment in creation order, each with the carts that link to it.
pub(crate) async fn payments(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let state = shared.state.lock();
    let world = &state.world;
    let mut payments: Vec<_> = world.payments.values().collect();
    payments.sort_by_key(|p| p.created_seq);
    let listed = payments
        .into_iter()
        .map(|payment| {
            let mut value = serde_json::to_value(payment).unwrap_or(Value::Null);
            // Relations are stored on the cart; a scan is fine for an inspection
            // endpoint and spares keeping a second copy in step.
            let mut linked: Vec<_> = world
                .tickets
                .values()
                .filter(|t| t.relations.iter().any(|r| r.node_id == payment.payment_id))
                .collect();
            linked.sort_by_key(|t| t.created_seq);
            let relations: Vec<Value> = linked
                .into_iter()
                .map(|t| {
                    json!({
                        "relationKey": "payments",
                        "ticketId": t.ticket_id,
                        "cartNumber": t.ticket_number,
                        "orderId": t.order_id,
                        "orderNumber": t.order_number,
                    })
                })
                .collect();
            value["relations"] = Value::Array(relations);
            value
        })
        .collect();
    Json(Value::Array(listed))
}

/// A cart as the storefront sees it, plus what only Hantera sees: the ticket itself
/// (relations, dynamic fields, activity log) and the order it became.
pub(crate) async fn cart(
    State(shared): State<Arc<Shared>>,
    Path(cart_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_cart_id(&cart_id)?;
    let state = shared.state.lock();
    let ticket = state
        .world
        .tickets
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no cart with id '{cart_id}'")))?;
    let order = ticket.order_id.and_then(|o| state.world.orders.get(&o));
    Ok(Json(json!({
        "cart": render(ticket),
        "relations": ticket.relations,
        "ticket": ticket,
        "order": order,
    })))
}

pub(crate) async fn journal(State(shared): State<Arc<Shared>>) -> Json<Vec<JournalRecord>> {
    Json(shared.state.lock().journal.clone())
}

pub(crate) async fn injected(State(shared): State<Arc<Shared>>) -> Json<crate::faults::Injected> {
    Json(shared.state.lock().injected.clone())
}

pub(crate) async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(shared.state.lock().faults.clone())
}

pub(crate) async fn put_faults(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Faults>, ApiError> {
    let faults: Faults = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            format!("expected {{latencyMs, errorRate, dropRate, dropAfterRate}}: {e}"),
        )
    })?;
    faults
        .validate()
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_BODY", message))?;
    shared.state.lock().faults = faults.clone();
    Ok(Json(faults))
}
