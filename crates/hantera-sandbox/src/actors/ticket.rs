//! The ticket actor, which is how Hantera's Commerce cart is messaged: `applyCommands`,
//! `complete`, `reject` and `query`.

use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{apply_tag, command_body, command_kind, set_dynamic_fields, AddActivityLog, Message};
use crate::commerce::render;
use crate::error::ApiError;
use crate::rules::PAYMENTS_DO_NOT_COVER_TOTAL;
use crate::state::{
    now_rfc3339, AuthorizationState, Order, OrderState, Relation, Ticket, TicketState, Txn,
};

/// The one relation key the sandbox knows: a cart's link to the payments that pay it.
const PAYMENTS: &str = "payments";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplyCommands {
    commands: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RelationCommand {
    relation_key: String,
    node_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SetDynamicFields {
    fields: Map<String, Value>,
}

/// Applies one message to the ticket `id` within the batch's transaction.
pub(super) fn apply(txn: &mut Txn<'_>, id: Uuid, message: &Message) -> Result<Value, ApiError> {
    match message.kind.as_str() {
        "applyCommands" => {
            let ApplyCommands { commands } = message.body_as()?;
            let mut ticket = existing(txn, id)?.clone();
            for command in &commands {
                apply_command(txn, &mut ticket, command)?;
            }
            txn.insert_ticket(ticket);
            Ok(ok())
        }
        "complete" => complete(txn, id),
        "reject" => {
            let ticket = open_ticket(txn, id)?;
            ticket.state = TicketState::Rejected;
            ticket.closed_at = Some(now_rfc3339());
            Ok(ok())
        }
        "query" => serde_json::to_value(existing(txn, id)?)
            .map_err(|e| ApiError::invalid_command(format!("cannot render ticket: {e}"))),
        "create" => Err(ApiError::invalid_message_body(
            "the sandbox creates tickets only as carts, through POST /ingress/commerce/carts",
        )),
        other => Err(ApiError::invalid_message_body(format!(
            "the ticket actor has no message '{other}' in the sandbox \
             (known: applyCommands, complete, reject, query)"
        ))),
    }
}

fn ok() -> Value {
    Value::String("OK".into())
}

fn existing<'t>(txn: &'t Txn<'_>, id: Uuid) -> Result<&'t Ticket, ApiError> {
    txn.ticket(id)
        .ok_or_else(|| ApiError::not_found(format!("no ticket {id}")))
}

/// The ticket, which must exist and be open, ready to be changed.
fn open_ticket<'t>(txn: &'t mut Txn<'_>, id: Uuid) -> Result<&'t mut Ticket, ApiError> {
    match txn.ticket(id).map(|t| t.state) {
        None => Err(ApiError::not_found(format!("no ticket {id}"))),
        Some(TicketState::Open) => txn
            .ticket_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("no ticket {id}"))),
        Some(_) => Err(ApiError::invalid_command("ticket is not open")),
    }
}

/// `complete`: the cart becomes an order. Real Hantera runs its cart-to-order rule here;
/// the sandbox records the order as a snapshot of the rendered cart and its payments.
fn complete(txn: &mut Txn<'_>, id: Uuid) -> Result<Value, ApiError> {
    open_ticket(txn, id)?;
    if txn.rules().payments_cover_total {
        guard_payments_cover_total(txn, id)?;
    }
    let order_id = Uuid::new_v4();
    let order_number = txn.next_order_number();
    let ticket = txn
        .ticket_mut(id)
        .ok_or_else(|| ApiError::not_found(format!("no ticket {id}")))?;
    let now = now_rfc3339();
    ticket.state = TicketState::Completed;
    ticket.closed_at = Some(now.clone());
    ticket.order_id = Some(order_id);
    ticket.order_number = Some(order_number.clone());
    let rendered = render(ticket);
    let order = Order {
        order_id,
        order_number,
        order_state: OrderState::Open,
        cart_id: id,
        currency_code: ticket.profile.currency_code.clone(),
        order_total: rendered.order_total.0,
        order_tax_total: rendered.order_tax_total.0,
        items: serde_json::to_value(&rendered.items).unwrap_or(Value::Null),
        payment_ids: ticket
            .relations
            .iter()
            .filter(|r| r.relation_key == PAYMENTS)
            .map(|r| r.node_id)
            .collect(),
        created_at: now,
        cancelled_at: None,
    };
    txn.insert_order(order);
    Ok(ok())
}

/// The bridge app's `OnTicketComplete` rule (docs/hantera-bridge.md): the successful
/// authorizations of the payments related to the cart, in the cart's currency, must cover
/// its `orderTotal`. It runs inside the batch, after the batch's own `createRelation`, as
/// Hantera previews a hook's effects before it completes a ticket, and its
/// `validationError` refuses the whole batch.
fn guard_payments_cover_total(txn: &Txn<'_>, id: Uuid) -> Result<(), ApiError> {
    let ticket = existing(txn, id)?;
    let total = render(ticket).order_total.0;
    let currency = &ticket.profile.currency_code;
    let covered: rust_decimal::Decimal = ticket
        .relations
        .iter()
        .filter(|r| r.relation_key == PAYMENTS)
        .filter_map(|r| txn.payment(r.node_id))
        .filter(|p| &p.currency_code == currency)
        .flat_map(|p| &p.authorizations)
        .filter(|a| a.authorization_state == AuthorizationState::Successful)
        .map(|a| a.amount)
        .sum();
    if covered >= total {
        return Ok(());
    }
    Err(ApiError::bad_request(
        PAYMENTS_DO_NOT_COVER_TOTAL,
        format!(
            "the cart's payments authorize {covered} {currency}, less than its total of {total} {currency}"
        ),
    )
    .with_detail("authorized", covered.to_string())
    .with_detail("orderTotal", total.to_string()))
}

fn apply_command(txn: &mut Txn<'_>, ticket: &mut Ticket, command: &Value) -> Result<(), ApiError> {
    let (kind, fields) = command_kind(command)?;
    match kind.as_str() {
        "createRelation" | "deleteRelation" => {
            let RelationCommand {
                relation_key,
                node_id,
            } = command_body(&kind, fields)?;
            if relation_key != PAYMENTS {
                return Err(ApiError::invalid_command(format!(
                    "the sandbox only knows relationKey '{PAYMENTS}', not '{relation_key}'"
                )));
            }
            let node_id = Uuid::parse_str(&node_id).map_err(|_| {
                ApiError::invalid_command(format!("nodeId '{node_id}' is not a GUID"))
            })?;
            let relation = Relation {
                relation_key,
                node_id,
            };
            if kind == "createRelation" {
                // Payments created earlier in the same batch count, as they would in
                // Hantera's transaction.
                if txn.payment(node_id).is_none() {
                    return Err(ApiError::invalid_command(format!(
                        "nodeId {node_id} is no existing payment"
                    )));
                }
                // Relations are a set: linking the same payment twice changes nothing.
                if !ticket.relations.contains(&relation) {
                    ticket.relations.push(relation);
                }
            } else {
                ticket.relations.retain(|r| *r != relation);
            }
        }
        "setDynamicFields" => {
            let SetDynamicFields { fields } = command_body(&kind, fields)?;
            set_dynamic_fields(&mut ticket.dynamic, fields);
        }
        "addActivityLog" => {
            let log: AddActivityLog = command_body(&kind, fields)?;
            ticket.activity_log.push(log.into_entry());
        }
        "addTag" | "removeTag" => apply_tag(&mut ticket.tags, &kind, fields)?,
        other => {
            return Err(ApiError::invalid_message_body(format!(
                "the sandbox knows no ticket command '{other}' (known: createRelation, \
                 deleteRelation, setDynamicFields, addActivityLog, addTag, removeTag)"
            )))
        }
    }
    Ok(())
}
