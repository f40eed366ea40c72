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
use crate::events::publish_reset;
use crate::faults::Faults;
use crate::state::{JournalRecord, Shared, World};

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
    let order = order.map(|order| {
        let mut value = serde_json::to_value(order).unwrap_or(Value::Null);
        let captures: Vec<_> = order
            .payment_ids
            .iter()
            .filter_map(|p| state.world.payments.get(p))
            .flat_map(|p| &p.captures)
            .filter(|c| c.order_id == order.order_id)
            .collect();
        value["captures"] = serde_json::to_value(captures).unwrap_or(Value::Null);
        value
    });
    let payments: Vec<_> = ticket
        .relations
        .iter()
        .filter_map(|r| state.world.payments.get(&r.node_id))
        .collect();
    Ok(Json(json!({
        "cart": render(ticket),
        "relations": ticket.relations,
        "payments": payments,
        "ticket": ticket,
        "order": order,
    })))
}

/// `POST /sandbox/orders/{order}/capture-payments`: sends `capturePayments` to the order
/// (by id or number), as the shop's back office does when it ships. It is the actor
/// batch `[{"type":"capturePayments"}]` without the OAuth token, which the embedded
/// default keeps to itself; it answers what the actor answers.
pub(crate) async fn capture_payments(
    State(shared): State<Arc<Shared>>,
    Path(order): Path<String>,
) -> axum::response::Response {
    crate::actors::run_batch(
        &shared,
        "order",
        &order,
        false,
        br#"[{"type":"capturePayments"}]"#,
    )
}

/// The hook outbox: what waits for the gateway, and what it took or refused lately.
pub(crate) async fn hooks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let view = shared
        .state
        .lock()
        .outbox
        .view(shared.hooks.target.as_ref());
    Json(view)
}

/// `POST /sandbox/reset`: forgets every cart, order, payment, journal record and hook,
/// and restores the faults the sandbox started with. Access tokens stay valid, so a
/// gateway that holds one carries on; its own records of carts it paid do not go away.
pub(crate) async fn reset(State(shared): State<Arc<Shared>>) -> Json<Value> {
    reset_state(&shared);
    Json(json!({ "reset": true }))
}

pub(crate) fn reset_state(shared: &Shared) {
    let mut state = shared.state.lock();
    state.world = World {
        rules: shared.initial_rules,
        ..World::default()
    };
    state.journal.clear();
    state.injected = Default::default();
    state.faults = shared.initial_faults.clone();
    state.outbox.clear();
    // Streams of carts that no longer exist end, under the same lock, so none can see
    // a new cart's events as its own.
    publish_reset(shared);
}

pub(crate) async fn journal(State(shared): State<Arc<Shared>>) -> Json<Vec<JournalRecord>> {
    Json(shared.state.lock().journal.clone())
}

pub(crate) async fn injected(State(shared): State<Arc<Shared>>) -> Json<crate::faults::Injected> {
    Json(shared.state.lock().injected.clone())
}

pub(crate) async fn get_rules(State(shared): State<Arc<Shared>>) -> Json<crate::rules::Rules> {
    Json(shared.state.lock().world.rules)
}

/// Installs or removes the bridge app's rules, as a merchant would in Hantera's portal.
pub(crate) async fn put_rules(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<crate::rules::Rules>, ApiError> {
    let rules: crate::rules::Rules = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            format!("expected {{paymentsCoverTotal}}: {e}"),
        )
    })?;
    shared.state.lock().world.rules = rules;
    Ok(Json(rules))
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
