//! Every fact about Hantera's wire format that its documentation does not state.
//!
//! `docs/hantera-wire.md` marks these facts **[assumed]**. They are collected here, and
//! spelled nowhere else in this crate, so that checking the client against a real Hantera
//! instance means reading this one file. Each item says what it assumes and what to look at
//! to confirm it.

use std::time::Duration;

use psp_core::ports::{HanteraError, PaymentRef};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------

/// The OAuth scope the gateway asks for. **Unverified**: the documentation shows the scope
/// syntax (`actors/order:* graph:* me:*`) but not which scopes payment and ticket actors
/// need; confirm against the IAM client's permissions on a real instance.
pub const DEFAULT_SCOPE: &str = "actors/payment:* actors/ticket:* graph:*";

/// The answer of `POST /oauth/token`. **Unverified**: the documentation does not show it;
/// this is the standard OAuth 2.0 shape (RFC 6749 §5.1).
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// The token type; `Bearer` is expected but not enforced (so not checked either).
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub token_type: Option<String>,
    /// Seconds until the token expires. A quoted number is read; anything else unreadable
    /// is as if absent, so the cautious [`FALLBACK_TOKEN_LIFETIME`] applies.
    #[serde(default, deserialize_with = "psp_core::lenient::unsigned")]
    pub expires_in: Option<u64>,
}

// Written by hand so that the token itself never reaches a log line or an error.
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"***")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// How long a token is trusted when the token answer carries no `expires_in`.
/// **Unverified**: RFC 6749 makes `expires_in` optional; five minutes is a cautious guess
/// so that a token without a stated lifetime is refreshed long before a typical one-hour
/// expiry, at the cost of a few extra token requests.
pub const FALLBACK_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The OAuth error code of a token endpoint that refuses the client's credentials.
/// **Unverified**: RFC 6749 §5.2 names it; Hantera's documentation does not show it. It is
/// only used to describe the refusal; the decision is made by [`token_refused`].
pub const TOKEN_REFUSED_CODE: &str = "invalid_client";

/// Whether a token endpoint answer with this status refuses our credentials (as opposed to
/// being a server fault worth retrying). **Unverified**: RFC 6749 §5.2 answers refused
/// credentials with 400 or 401; 403 is included because some servers use it for a
/// suspended client.
pub fn token_refused(status: u16) -> bool {
    matches!(status, 400 | 401 | 403)
}

/// The error code of a `/resources` call whose bearer token is missing, unknown or expired.
/// **Unverified**: the documentation does not show it.
pub const UNAUTHORIZED_CODE: &str = "UNAUTHORIZED";

/// Whether a `/resources` answer says our token is not (or no longer) accepted, so that a
/// fresh token may succeed. **Unverified**: assumed to be status 401 with
/// [`UNAUTHORIZED_CODE`]; either sign alone is taken as enough, because a stale token
/// answered in a slightly different way must not block the gateway until the token's
/// natural expiry.
pub fn token_rejected(status: u16, code: Option<&str>) -> bool {
    status == 401 || code == Some(UNAUTHORIZED_CODE)
}

// ---------------------------------------------------------------------------------------
// Cart completion
// ---------------------------------------------------------------------------------------

/// The code Hantera answers when `complete` is sent to a ticket that is not open (already
/// completed or rejected). **Unverified**: the documentation does not say what completing
/// a closed ticket does; the wire contract assumes
/// `500 {"errors":[{"code":"INVALID_COMMAND","message":"ticket is not open"}]}`.
pub const TICKET_NOT_OPEN_CODE: &str = "INVALID_COMMAND";

/// Whether an error from `link_and_complete` may mean that the cart was not open. Callers
/// must still re-read the cart: the same code is also used for other validation failures,
/// such as a relation to a payment that does not exist. **Unverified**: see
/// [`TICKET_NOT_OPEN_CODE`].
pub fn is_ticket_not_open(err: &HanteraError) -> bool {
    err.code() == Some(TICKET_NOT_OPEN_CODE)
}

/// The code of the bridge app's `OnTicketComplete` rule that refuses to complete a cart
/// whose linked successful authorizations do not cover its total
/// (`docs/hantera-bridge.md`). **Unverified**: Hantera documents that a `validationError`
/// effect of `OnTicketComplete` aborts the completion, but not how the refused batch is
/// answered over HTTP; the gateway assumes a 4xx whose `{"errors":[…]}` carries this code.
/// Nothing branches on the code: every definite refusal of `complete` makes the gateway
/// read the cart again and record the completion as needing attention with both amounts.
/// Should a real instance answer the refusal with a 5xx (which the gateway would take as
/// "try again"), the completion is retried until its attempts run out and then listed as
/// failed: still visible, never completed for more than was authorized.
pub const COMPLETION_GUARD_CODE: &str = "PAYMENTS_DO_NOT_COVER_TOTAL";

/// Whether a refusal of `link_and_complete` came from the completion guard.
pub fn is_completion_guard(err: &HanteraError) -> bool {
    err.code() == Some(COMPLETION_GUARD_CODE)
}

// ---------------------------------------------------------------------------------------
// Graph lookup of a payment by external reference
// ---------------------------------------------------------------------------------------

/// The graph edge (set) that holds payments. **Unverified**: confirm with
/// `GET /resources/graph/meta`.
pub const PAYMENTS_EDGE: &str = "payments";

/// The alias under which the answer carries the lookup's result. **Unverified**: the
/// documentation shows `alias` in queries but not the answer envelope.
pub const PAYMENTS_ALIAS: &str = "payments";

/// The payment node fields the lookup asks for. **Unverified**: the field names are those
/// of the Filtrera payment type; that the graph exposes them under these names is assumed.
pub const PAYMENT_FIELDS: [&str; 5] = [
    "paymentId",
    "paymentNumber",
    "providerKey",
    "externalReference",
    "currencyCode",
];

/// The graph filter that selects a payment by external reference.
///
/// The value is written as a single-quoted string with every `'` doubled, so that a
/// reference containing a quote cannot end the string early and change the filter.
/// **Unverified**: the documentation shows the filter operators but neither the string
/// literal syntax nor its escaping.
pub fn external_reference_filter(external_reference: &str) -> String {
    format!(
        "externalReference == '{}'",
        external_reference.replace('\'', "''")
    )
}

/// One query of a `POST /resources/graph` body.
#[derive(Debug, Clone, Serialize)]
pub struct GraphQuery {
    /// The set to read.
    pub edge: &'static str,
    /// The key of the result in the answer.
    pub alias: &'static str,
    /// Which nodes to return.
    pub filter: String,
    /// What to return of each node.
    pub node: GraphNode,
}

/// The node part of a [`GraphQuery`].
#[derive(Debug, Clone, Serialize)]
pub struct GraphNode {
    /// The fields to return.
    pub fields: Vec<&'static str>,
}

/// The body of `POST /resources/graph` that looks a payment up by external reference:
/// `[{"edge":"payments","alias":"payments","filter":"externalReference == '…'",
/// "node":{"fields":[…]}}]`. **Unverified**: the query shape is taken from the
/// documentation's CSV example; that `filter` sits at the top level of a query is assumed.
pub fn payment_lookup_query(external_reference: &str) -> Vec<GraphQuery> {
    vec![GraphQuery {
        edge: PAYMENTS_EDGE,
        alias: PAYMENTS_ALIAS,
        filter: external_reference_filter(external_reference),
        node: GraphNode {
            fields: PAYMENT_FIELDS.to_vec(),
        },
    }]
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphPaymentNode {
    payment_id: Uuid,
    /// Only displayed, so read leniently.
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    payment_number: Option<String>,
    #[serde(default)]
    external_reference: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GraphNodes<T> {
    #[serde(default = "Vec::new")]
    nodes: Vec<T>,
}

/// Reads the payment that a [`payment_lookup_query`] found, from an answer shaped
/// `{"payments":{"nodes":[{"paymentId":…,"paymentNumber":…,"externalReference":…}]}}`.
///
/// Nodes whose `externalReference` is present and differs from the one asked for are
/// skipped: a server that ignored or misread the filter must not make the gateway adopt
/// another PSP payment's Hantera payment. **Unverified**: the answer envelope is assumed.
pub fn parse_payment_lookup(
    body: &[u8],
    external_reference: &str,
) -> Result<Option<PaymentRef>, String> {
    let mut answer: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| format!("unreadable graph answer: {e}"))?;
    let Some(result) = answer.remove(PAYMENTS_ALIAS) else {
        return Err(format!("graph answer has no {PAYMENTS_ALIAS:?} key"));
    };
    let result: GraphNodes<GraphPaymentNode> = serde_json::from_value(result)
        .map_err(|e| format!("unreadable {PAYMENTS_ALIAS:?} in graph answer: {e}"))?;
    let found = result.nodes.into_iter().find(|node| {
        node.external_reference
            .as_deref()
            .is_none_or(|r| r == external_reference)
    });
    Ok(found.map(|node| PaymentRef {
        payment_id: node.payment_id,
        payment_number: node.payment_number,
    }))
}

// ---------------------------------------------------------------------------------------
// Payment journal
// ---------------------------------------------------------------------------------------

/// The batch that reads a payment: `[{"type":"query"}]`. **Unverified**: `query` is a
/// documented payment message, but its body and answer are not; an empty body is assumed
/// to return the whole payment.
pub fn payment_query() -> serde_json::Value {
    serde_json::json!([{ "type": "query" }])
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueriedJournalEntry {
    #[serde(default, alias = "type")]
    payment_journal_entry_type: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: rust_decimal::Decimal,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    authorization_number: Option<String>,
    #[serde(default)]
    transaction_reference: Option<String>,
}

/// The journal entry types the gateway acts on: a charge is how it finds a capture it
/// made already, so a charge it cannot read is an error, never skipped.
const READ_ENTRY_TYPES: &[&str] = &["charge"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueriedPayment {
    #[serde(default)]
    journal_entries: Vec<serde_json::Value>,
}

/// Reads the journal from the answer of [`payment_query`], shaped
/// `{"paths":[…],"data":{"query":{…Payment…,"journalEntries":[{"amount":50,
/// "paymentJournalEntryType":"charge","transactionReference":"…"}]}}}`.
///
/// **Unverified**: the answer envelope (the result under `data.query`) is the one actor
/// messages use for `"OK"` results; that a journal entry carries the `transactionReference`
/// its charge was sent with is assumed (the documented `Payment` type lists the journal
/// entry's id, amount, type and capture, invoice and order ids only). The gateway looks for
/// its PSP capture id there before sending a charge again; a Hantera that did not return
/// it would make a lost charge answer look like no charge, so check this on a real
/// instance before relying on retried charges.
pub fn parse_payment_journal(body: &[u8]) -> Result<Vec<psp_core::ports::JournalEntry>, String> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable query answer: {e}"))?;
    let payment = answer
        .pointer("/data/query")
        .cloned()
        .ok_or("the query answer has no data.query")?;
    let payment: QueriedPayment = serde_json::from_value(payment)
        .map_err(|e| format!("unreadable payment in the query answer: {e}"))?;
    let mut journal = Vec::with_capacity(payment.journal_entries.len());
    for entry in payment.journal_entries {
        let entry_type = ["paymentJournalEntryType", "type"]
            .iter()
            .find_map(|k| entry.get(*k).and_then(serde_json::Value::as_str))
            .unwrap_or_default()
            .to_string();
        match serde_json::from_value::<QueriedJournalEntry>(entry) {
            Ok(e) => journal.push(psp_core::ports::JournalEntry {
                entry_type: e.payment_journal_entry_type,
                amount: e.amount,
                authorization_number: e.authorization_number,
                transaction_reference: e.transaction_reference,
            }),
            // An entry of a type the gateway does not act on (a new kind, or one shaped
            // differently) is left out rather than failing the whole journal.
            Err(_) if !READ_ENTRY_TYPES.contains(&entry_type.as_str()) => {}
            Err(e) => return Err(format!("unreadable {entry_type} in the journal: {e}")),
        }
    }
    Ok(journal)
}

/// The message that reads a ticket (a cart) with its relations. **Unverified**: that the
/// ticket's `query` answer lists relations as `relations: [{relationKey, nodeId}]` is an
/// assumption (the sandbox answers so); check it on a real instance.
pub fn ticket_query() -> serde_json::Value {
    serde_json::json!([{ "type": "query" }])
}

/// The payments related to a cart, from the answer of [`ticket_query`], shaped
/// `{"data":{"query":{…,"relations":[{"relationKey":"payments","nodeId":"<uuid>"}]}}}`.
pub fn parse_cart_payments(body: &[u8]) -> Result<Vec<uuid::Uuid>, String> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable query answer: {e}"))?;
    let ticket = answer
        .pointer("/data/query")
        .ok_or("the query answer has no data.query")?;
    let relations = match ticket.get("relations") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items,
        Some(_) => return Err("the ticket's relations are not a list".into()),
    };
    relations
        .iter()
        .filter(|r| r.get("relationKey").and_then(|k| k.as_str()) == Some("payments"))
        .map(|r| {
            r.get("nodeId")
                .and_then(|n| n.as_str())
                .and_then(|n| uuid::Uuid::parse_str(n).ok())
                .ok_or_else(|| format!("a payments relation without a node id: {r}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payments_related_to_a_cart_are_read_from_its_relations() {
        let body = br#"{"data":{"query":{"ticketId":"x","relations":[
            {"relationKey":"payments","nodeId":"0199a9b6-8608-7360-b98b-d2f9adeb2848"},
            {"relationKey":"order","nodeId":"0199a9b6-8608-7360-b98b-d2f9adeb2849"}]}}}"#;
        let ids = parse_cart_payments(body).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].to_string(), "0199a9b6-8608-7360-b98b-d2f9adeb2848");
        assert!(parse_cart_payments(br#"{"data":{"query":{}}}"#)
            .unwrap()
            .is_empty());
        assert!(parse_cart_payments(br#"{"data":{}}"#).is_err());
    }

    #[test]
    fn a_query_answer_yields_the_journal_with_exact_amounts_and_references() {
        let body = br#"{"paths":["resources/actors/payment/x"],"data":{"query":{
            "paymentId":"0199a9b6-8608-7360-b98b-d2f9adeb2848","journalEntries":[
            {"paymentJournalEntryId":"0199a9b6-8608-7360-b98b-d2f9adeb2849","amount":50.10,
             "paymentJournalEntryType":"charge","authorizationNumber":"mpay_1",
             "transactionReference":"mcap_1","timestamp":"2026-01-01T00:00:00Z"}]}}}"#;
        let journal = parse_payment_journal(body).unwrap();
        assert_eq!(journal.len(), 1);
        assert_eq!(journal[0].entry_type, "charge");
        assert_eq!(journal[0].amount.to_string(), "50.10");
        assert_eq!(journal[0].transaction_reference.as_deref(), Some("mcap_1"));
        assert!(parse_payment_journal(br#"{"data":{}}"#).is_err());
        assert_eq!(
            parse_payment_journal(br#"{"data":{"query":{"paymentId":"x"}}}"#).unwrap(),
            vec![]
        );
    }

    #[test]
    fn journal_entries_the_gateway_does_not_read_never_fail_the_journal() {
        let body = br#"{"data":{"query":{"journalEntries":[
            {"paymentJournalEntryType":"authorizationExpired","amount":null,"extra":{}},
            {"type":"somethingNew","details":[1]},
            {"paymentJournalEntryType":"charge","amount":50.10,"authorizationNumber":17,
             "transactionReference":"mcap_1","newField":{"x":null}}]}}}"#;
        let journal = parse_payment_journal(body).unwrap();
        assert_eq!(journal.len(), 1);
        assert_eq!(journal[0].transaction_reference.as_deref(), Some("mcap_1"));
        assert_eq!(journal[0].authorization_number.as_deref(), Some("17"));
        // A charge is how a capture made already is found: one that cannot be read is an
        // error, never skipped (skipping it could charge twice).
        let err = parse_payment_journal(
            br#"{"data":{"query":{"journalEntries":[{"paymentJournalEntryType":"charge"}]}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("charge"), "{err}");
    }

    #[test]
    fn a_lookup_node_with_an_odd_payment_number_still_yields_the_payment() {
        let body = br#"{"payments":{"nodes":[{"paymentId":"0199a9b6-8608-7360-b98b-d2f9adeb2848",
            "paymentNumber":1042,"externalReference":"pay_1","new":[{}]}]},"extra":1}"#;
        let found = parse_payment_lookup(body, "pay_1").unwrap().unwrap();
        assert_eq!(found.payment_number.as_deref(), Some("1042"));
    }

    #[test]
    fn quotes_in_the_external_reference_are_doubled() {
        assert_eq!(
            external_reference_filter("mock_pay_1"),
            "externalReference == 'mock_pay_1'"
        );
        assert_eq!(
            external_reference_filter("it's"),
            "externalReference == 'it''s'"
        );
        assert_eq!(
            external_reference_filter("x' or externalReference != '"),
            "externalReference == 'x'' or externalReference != '''"
        );
    }

    #[test]
    fn the_lookup_query_has_the_documented_shape() {
        let body = serde_json::to_string(&payment_lookup_query("a'b")).unwrap();
        assert_eq!(
            body,
            r#"[{"edge":"payments","alias":"payments","filter":"externalReference == 'a''b'","node":{"fields":["paymentId","paymentNumber","providerKey","externalReference","currencyCode"]}}]"#
        );
    }

    #[test]
    fn a_lookup_answer_with_a_node_yields_the_payment() {
        let body = br#"{"payments":{"nodes":[{"paymentId":"0199a9b6-8608-7360-b98b-d2f9adeb2848",
            "paymentNumber":"MOCK-1001","providerKey":"mock","externalReference":"mock_pay_1",
            "currencyCode":"SEK"}]}}"#;
        let found = parse_payment_lookup(body, "mock_pay_1").unwrap().unwrap();
        assert_eq!(
            found.payment_id.to_string(),
            "0199a9b6-8608-7360-b98b-d2f9adeb2848"
        );
        assert_eq!(found.payment_number.as_deref(), Some("MOCK-1001"));
    }

    #[test]
    fn a_lookup_answer_without_nodes_yields_nothing() {
        assert_eq!(
            parse_payment_lookup(br#"{"payments":{"nodes":[]}}"#, "x").unwrap(),
            None
        );
    }

    #[test]
    fn a_node_for_another_reference_is_not_adopted() {
        let body = br#"{"payments":{"nodes":[{"paymentId":"0199a9b6-8608-7360-b98b-d2f9adeb2848",
            "externalReference":"other"}]}}"#;
        assert_eq!(parse_payment_lookup(body, "mine").unwrap(), None);
    }

    #[test]
    fn a_lookup_answer_of_another_shape_is_an_error() {
        assert!(parse_payment_lookup(br#"{"data":{}}"#, "x").is_err());
        assert!(parse_payment_lookup(b"<html>", "x").is_err());
        assert!(parse_payment_lookup(br#"{"payments":{"nodes":[{"id":1}]}}"#, "x").is_err());
    }

    #[test]
    fn a_token_answer_without_a_lifetime_still_parses() {
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(t.access_token, "abc");
        assert_eq!(t.expires_in, None);
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(3600));
    }

    #[test]
    fn a_token_answer_with_odd_optional_fields_still_parses() {
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"abc","token_type":null,"expires_in":"3600","scope":["a"],"x":{}}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(3600));
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"abc","token_type":{"v":1},"expires_in":"soon"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, None, "the fallback lifetime applies");
        assert!(serde_json::from_str::<TokenResponse>(r#"{"access_token":7}"#).is_err());
    }

    #[test]
    fn a_stale_token_is_recognised_by_status_or_code() {
        assert!(token_rejected(401, None));
        assert!(token_rejected(403, Some(UNAUTHORIZED_CODE)));
        assert!(!token_rejected(500, Some("INVALID_COMMAND")));
    }

    #[test]
    fn the_ticket_not_open_answer_is_recognised() {
        let err = HanteraError::Api {
            status: 500,
            code: TICKET_NOT_OPEN_CODE.into(),
            message: "ticket is not open".into(),
        };
        assert!(is_ticket_not_open(&err));
        assert!(!is_ticket_not_open(&HanteraError::Unavailable("x".into())));
    }
}
