//! `POST /resources/graph`: the slice of Hantera's graph the gateway needs, which is
//! finding a payment by its external reference.
//!
//! Supported: the `payments` edge, an optional filter of the form
//! `<field> == '<text>'` (quotes inside the text doubled), `node.fields`, and `limit`.
//! Anything else is refused with a 400 that names what the sandbox lacks, so that a
//! client relying on more learns it at once rather than getting a silently wrong answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::state::{Payment, Shared};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", message)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Query {
    edge: String,
    alias: Option<String>,
    filter: Option<String>,
    node: Option<NodeSpec>,
    limit: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeSpec {
    fields: Option<Vec<String>>,
}

/// A parsed filter: the field and the text it must equal.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Equals {
    pub(crate) field: String,
    pub(crate) value: String,
}

/// Parses `<field> == '<text>'`, where a quote inside the text is written twice.
pub(crate) fn parse_filter(filter: &str) -> Result<Equals, String> {
    let unsupported = || {
        format!(
            "the sandbox graph only understands filters of the form \
             <field> == '<text>', got: {filter}"
        )
    };
    let (field, rest) = filter.split_once("==").ok_or_else(unsupported)?;
    let field = field.trim();
    if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(unsupported());
    }
    let mut chars = rest.trim().chars();
    if chars.next() != Some('\'') {
        return Err(unsupported());
    }
    let mut value = String::new();
    loop {
        match chars.next() {
            None => return Err(format!("unterminated text in filter: {filter}")),
            Some('\'') => {
                if chars.clone().next() == Some('\'') {
                    chars.next();
                    value.push('\'');
                } else {
                    break;
                }
            }
            Some(c) => value.push(c),
        }
    }
    if !chars.as_str().trim().is_empty() {
        return Err(unsupported());
    }
    Ok(Equals {
        field: field.to_owned(),
        value,
    })
}

/// The fields of a payment node: the keys of a serialized [`Payment`], which a unit test
/// keeps in step with the struct. Field names are checked against this list rather than
/// against the payments found, so that a misspelt field is refused even when nothing
/// matches.
const PAYMENT_FIELDS: &[&str] = &[
    "paymentId",
    "paymentNumber",
    "providerKey",
    "currencyCode",
    "externalReference",
    "createdAt",
    "dynamic",
    "tags",
    "authorizations",
    "captures",
    "journalEntries",
    "activityLog",
];

fn check_field(name: &str) -> Result<(), ApiError> {
    if PAYMENT_FIELDS.contains(&name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "payments have no field '{name}' (fields: {})",
            PAYMENT_FIELDS.join(", ")
        )))
    }
}

/// A payment as a graph node: Hantera's Payment fields, camelCase.
fn node(payment: &Payment) -> Map<String, Value> {
    match serde_json::to_value(payment) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

/// The fields asked for, or every field when none are named.
fn project(full: Map<String, Value>, fields: Option<&[String]>) -> Result<Value, ApiError> {
    let Some(fields) = fields else {
        return Ok(Value::Object(full));
    };
    let mut out = Map::new();
    for name in fields {
        let value = full.get(name).cloned().unwrap_or(Value::Null);
        out.insert(name.clone(), value);
    }
    Ok(Value::Object(out))
}

pub(crate) async fn query(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
    let queries: Vec<Query> = serde_json::from_value(value).map_err(|e| {
        invalid(format!(
            "expected an array of {{edge, alias?, filter?, node?: {{fields}}, limit?}} \
             (the sandbox supports nothing more): {e}"
        ))
    })?;

    let state = shared.state.lock();
    let world = &state.world;
    let mut answer = Map::new();
    for query in queries {
        if query.edge != "payments" {
            return Err(invalid(format!(
                "the sandbox graph only has the 'payments' edge, not '{}'",
                query.edge
            )));
        }
        let filter = query
            .filter
            .as_deref()
            .map(parse_filter)
            .transpose()
            .map_err(invalid)?;
        if let Some(filter) = &filter {
            check_field(&filter.field)?;
        }
        let fields = query.node.unwrap_or_default().fields;
        for name in fields.iter().flatten() {
            check_field(name)?;
        }
        let mut payments: Vec<&Payment> = match &filter {
            // The external reference is indexed: it is the gateway's idempotency lookup,
            // run once per completion however many payments exist.
            Some(Equals { field, value }) if field == "externalReference" => world
                .payment_by_ref
                .get(value)
                .and_then(|id| world.payments.get(id))
                .into_iter()
                .collect(),
            Some(Equals { field, value }) => {
                let mut found = Vec::new();
                for payment in world.payments.values() {
                    match node(payment).get(field) {
                        Some(Value::String(text)) if text == value => found.push(payment),
                        Some(Value::String(_)) | Some(Value::Null) | None => {}
                        Some(_) => {
                            return Err(invalid(format!(
                                "payment field '{field}' is not text and cannot be filtered"
                            )))
                        }
                    }
                }
                found
            }
            None => world.payments.values().collect(),
        };
        payments.sort_by_key(|p| p.created_seq);
        if let Some(limit) = query.limit {
            payments.truncate(limit);
        }
        let nodes = payments
            .into_iter()
            .map(|p| project(node(p), fields.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let alias = query.alias.unwrap_or(query.edge);
        answer.insert(alias, serde_json::json!({ "nodes": nodes }));
    }
    Ok(Json(Value::Object(answer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_value_may_contain_doubled_quotes() {
        assert_eq!(
            parse_filter("externalReference == 'it''s'"),
            Ok(Equals {
                field: "externalReference".into(),
                value: "it's".into()
            })
        );
        assert_eq!(
            parse_filter("  paymentNumber=='MOCK-1001'  ").map(|e| e.value),
            Ok("MOCK-1001".into())
        );
        assert_eq!(
            parse_filter("externalReference == ''''").map(|e| e.value),
            Ok("'".into())
        );
    }

    #[test]
    fn the_field_list_names_exactly_the_fields_of_a_serialized_payment() {
        let payment = Payment {
            payment_id: uuid::Uuid::nil(),
            payment_number: "P1001".into(),
            provider_key: None,
            currency_code: "SEK".into(),
            external_reference: None,
            created_at: String::new(),
            dynamic: Map::new(),
            tags: Vec::new(),
            authorizations: Vec::new(),
            captures: Vec::new(),
            journal_entries: Vec::new(),
            activity_log: Vec::new(),
            created_seq: 0,
        };
        let mut serialized: Vec<String> = node(&payment).keys().cloned().collect();
        let mut listed: Vec<String> = PAYMENT_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        serialized.sort();
        listed.sort();
        assert_eq!(serialized, listed);
    }

    #[test]
    fn filters_the_sandbox_does_not_understand_are_refused() {
        assert!(parse_filter("externalReference != 'x'").is_err());
        assert!(parse_filter("externalReference == 'x' and a == 'b'").is_err());
        assert!(parse_filter("externalReference == 'x").is_err());
        assert!(parse_filter("externalReference == x").is_err());
    }
}
