//! `POST /resources/actors/{type}/{id}`: actor message batches.
//!
//! A batch is a JSON array of `{type, body?, alias?}` messages applied in order and
//! atomically: it runs against a [`Txn`] and is committed only if every message
//! succeeds, so a refused batch leaves no trace except its journal record. With
//! `?preview` the batch runs the same way and is then discarded.
//!
//! Bodies are parsed as `serde_json::Value` first and then into typed structs per
//! message: serde_json's `arbitrary_precision` (needed for exact amounts) does not mix
//! with serde's buffering of internally tagged enums, and parsing per message lets an
//! error name the message it comes from.

mod order;
mod payment;
mod ticket;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::events::{publish, Source};
use crate::hooks;
use crate::state::{now_rfc3339, ActivityLogEntry, Inner, JournalRecord, Shared, Txn};

/// The actor types the sandbox emulates.
#[derive(Debug, Clone, Copy)]
enum ActorType {
    Order,
    Payment,
    Ticket,
}

impl ActorType {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "order" => Some(Self::Order),
            "payment" => Some(Self::Payment),
            "ticket" => Some(Self::Ticket),
            _ => None,
        }
    }
}

/// One message of a batch, before its body is interpreted.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) kind: String,
    pub(crate) body: Option<Value>,
    pub(crate) alias: Option<String>,
}

impl Message {
    /// The body parsed as the message's type; a missing body reads as `{}`.
    pub(crate) fn body_as<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body = self.body.clone().unwrap_or_else(|| json!({}));
        serde_json::from_value(body).map_err(|e| {
            ApiError::invalid_message_body(format!("bad body for '{}': {e}", self.kind))
        })
    }
}

fn parse_batch(body: &[u8]) -> Result<Vec<Message>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_message_body(format!("the batch is not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(ApiError::invalid_message_body(
            "the batch must be a JSON array of messages",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::invalid_message_body("the batch has no messages"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let Value::Object(mut fields) = item else {
                return Err(ApiError::invalid_message_body(format!(
                    "message {index} is not an object"
                )));
            };
            let kind = match fields.remove("type") {
                Some(Value::String(kind)) => kind,
                _ => {
                    return Err(ApiError::invalid_message_body(format!(
                        "message {index} has no string 'type'"
                    )))
                }
            };
            let alias = match fields.remove("alias") {
                None | Some(Value::Null) => None,
                Some(Value::String(alias)) => Some(alias),
                Some(_) => {
                    return Err(ApiError::invalid_message_body(format!(
                        "message {index} has a 'alias' that is not a string"
                    )))
                }
            };
            let body = fields.remove("body").filter(|b| !b.is_null());
            Ok(Message { kind, body, alias })
        })
        .collect()
}

/// Splits a command object into its `type` and the rest, then parses the rest.
pub(crate) fn command_kind(command: &Value) -> Result<(String, Value), ApiError> {
    let Value::Object(fields) = command else {
        return Err(ApiError::invalid_message_body("a command is not an object"));
    };
    let mut fields = fields.clone();
    match fields.remove("type") {
        Some(Value::String(kind)) => Ok((kind, Value::Object(fields))),
        _ => Err(ApiError::invalid_message_body(
            "a command has no string 'type'",
        )),
    }
}

/// Parses a command's fields (its `type` removed) into the command's struct.
pub(crate) fn command_body<T: DeserializeOwned>(kind: &str, fields: Value) -> Result<T, ApiError> {
    serde_json::from_value(fields)
        .map_err(|e| ApiError::invalid_message_body(format!("bad '{kind}' command: {e}")))
}

/// `setDynamicFields`: keys not given are left alone and `null` removes a key.
pub(crate) fn set_dynamic_fields(target: &mut Map<String, Value>, fields: Map<String, Value>) {
    for (key, value) in fields {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AddActivityLog {
    message_template: String,
    dynamic: Option<Value>,
}

impl AddActivityLog {
    pub(crate) fn into_entry(self) -> ActivityLogEntry {
        ActivityLogEntry {
            message_template: self.message_template,
            dynamic: self.dynamic,
            created_at: now_rfc3339(),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TagCommand {
    key: String,
}

/// `addTag` and `removeTag`; tags are a set.
pub(crate) fn apply_tag(tags: &mut Vec<String>, kind: &str, fields: Value) -> Result<(), ApiError> {
    let TagCommand { key } = command_body(kind, fields)?;
    if kind == "addTag" {
        if !tags.contains(&key) {
            tags.push(key);
        }
    } else {
        tags.retain(|t| *t != key);
    }
    Ok(())
}

/// Whether the query string asks for a preview (`?preview` or `?preview=true`).
fn is_preview(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            key == "preview" && !matches!(value, "false" | "0")
        })
    })
}

/// What a successful batch answers.
struct Applied {
    actor_id: Uuid,
    data: Map<String, Value>,
}

pub(crate) async fn post_actor(
    State(shared): State<Arc<Shared>>,
    Path((actor_type, raw_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let preview = is_preview(query.as_deref());
    run_batch(&shared, &actor_type, &raw_id, preview, &body)
}

/// Runs one batch on an actor and answers as `POST /resources/actors/{type}/{id}` does;
/// sandbox shortcuts that stand for a back office's call use it too, so that their
/// batches are journaled and announced like any other.
pub(crate) fn run_batch(
    shared: &Arc<Shared>,
    actor_type: &str,
    raw_id: &str,
    preview: bool,
    body: &[u8],
) -> Response {
    let (actor_type, raw_id) = (actor_type.to_owned(), raw_id.to_owned());
    let batch = parse_batch(body);
    let message_types = batch
        .as_ref()
        .map(|messages| messages.iter().map(|m| m.kind.clone()).collect())
        .unwrap_or_default();

    let mut state = shared.state.lock();
    // `new` asks for a generated id; it is drawn up front so that every message of the
    // batch addresses the same actor. An order is also reached by its number (`O1001`),
    // as Hantera resolves natural keys.
    let actor_id = if raw_id == "new" {
        Some(Uuid::new_v4())
    } else {
        Uuid::parse_str(&raw_id).ok().or_else(|| {
            (actor_type == "order")
                .then(|| Txn::new(&state.world).order_by_number(&raw_id))
                .flatten()
        })
    };
    let outcome = (|| {
        let Some(kind) = ActorType::parse(&actor_type) else {
            return Err(ApiError::not_found(format!(
                "the sandbox has no actor type '{actor_type}'"
            )));
        };
        let Some(actor_id) = actor_id else {
            return Err(ApiError::not_found(format!(
                "'{raw_id}' is neither a GUID nor 'new'"
            )));
        };
        let batch = batch?;
        let mut txn = Txn::new(&state.world);
        let mut data = Map::new();
        for (index, message) in batch.iter().enumerate() {
            let result = match kind {
                ActorType::Order => order::apply(&mut txn, actor_id, message),
                ActorType::Payment => payment::apply(&mut txn, actor_id, message),
                ActorType::Ticket => ticket::apply(&mut txn, actor_id, message),
            };
            let value = result.map_err(|e| {
                e.with_detail("messageIndex", index)
                    .with_detail("messageType", message.kind.as_str())
            })?;
            let key = message
                .alias
                .clone()
                .unwrap_or_else(|| message.kind.clone());
            data.insert(key, value);
        }
        Ok((Applied { actor_id, data }, txn.into_changes()))
    })();

    let (applied, error_code) = match &outcome {
        Ok(_) => (!preview, None),
        Err(e) => (false, Some(e.code.to_owned())),
    };
    let seq = state.journal.len() as u64 + 1;
    state.journal.push(JournalRecord {
        seq,
        actor_type: actor_type.clone(),
        actor_id: actor_id.map_or(raw_id, |id| id.to_string()),
        message_types,
        applied,
        preview,
        error_code,
        received_at: now_rfc3339(),
    });
    match outcome {
        Ok((result, changes)) => {
            if !preview {
                let tickets = changes.ticket_ids();
                let captures = changes.new_captures();
                state.world.apply(changes);
                announce(shared, &mut state, &tickets, &captures);
            }
            drop(state);
            let mut answer = json!({
                "paths": [format!("resources/actors/{actor_type}/{}", result.actor_id)],
                "data": Value::Object(result.data),
            });
            if preview {
                answer["preview"] = Value::Bool(true);
            }
            Json(answer).into_response()
        }
        Err(error) => {
            drop(state);
            error.into_response()
        }
    }
}

/// Tells the outside about a committed batch: SSE subscribers about the carts it
/// changed, and the gateway (`OnPaymentCapture`) about the captures it created.
fn announce(shared: &Arc<Shared>, state: &mut Inner, tickets: &[Uuid], captures: &[(Uuid, Uuid)]) {
    for ticket in tickets {
        publish(shared, state, *ticket, Source::Actor);
    }
    for (payment_id, capture_id) in captures {
        let Some(payment) = state.world.payments.get(payment_id) else {
            continue;
        };
        let Some(capture) = payment
            .captures
            .iter()
            .find(|c| c.payment_capture_id == *capture_id)
        else {
            continue;
        };
        let body = json!({
            "hook": "OnPaymentCapture",
            "payment": payment,
            "capture": capture,
        });
        let cart = state
            .world
            .orders
            .get(&capture.order_id)
            .map(|order| order.cart_id);
        hooks::enqueue(shared, &mut state.outbox, "OnPaymentCapture", cart, body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_is_read_from_the_query_string() {
        assert!(is_preview(Some("preview")));
        assert!(is_preview(Some("a=1&preview=true")));
        assert!(!is_preview(Some("preview=false")));
        assert!(!is_preview(None));
    }

    #[test]
    fn a_batch_must_be_a_non_empty_array_of_typed_messages() {
        assert!(parse_batch(b"{}").is_err());
        assert!(parse_batch(b"[]").is_err());
        assert!(parse_batch(br#"[{"body":{}}]"#).is_err());
        let batch =
            parse_batch(br#"[{"type":"query","alias":"q"},{"type":"complete","body":null}]"#);
        let batch = batch.unwrap_or_default();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].alias.as_deref(), Some("q"));
        assert!(batch[1].body.is_none());
    }
}
