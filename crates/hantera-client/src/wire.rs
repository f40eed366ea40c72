//! Documented wire facts: paths, error codes, message bodies, and the error envelope.
//!
//! Everything here is stated by Hantera's documentation (**[doc]** in
//! `docs/hantera-wire.md`); assumptions live in [`crate::unverified`].
//!
//! Message bodies are plain structs with a `type` field rather than tagged enums: amounts
//! are written through `rust_decimal::serde::arbitrary_precision`, whose exact number text
//! must reach serde_json's serializer directly, and plain structs keep that path obvious.

use psp_core::ports::{Charge, HanteraError, NewPayment};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The OAuth token endpoint.
pub(crate) const TOKEN_PATH: &str = "/oauth/token";
/// The graph query endpoint.
pub(crate) const GRAPH_PATH: &str = "/resources/graph";
/// The cart profiles of the Commerce ingress; cheap, public, and used as a liveness probe.
pub(crate) const CART_PROFILES_PATH: &str = "/ingress/commerce/cart-profiles";

/// The path of a Commerce cart.
pub(crate) fn cart_path(cart_id: Uuid) -> String {
    format!("/ingress/commerce/carts/{cart_id}")
}

/// The path of a payment actor.
pub(crate) fn payment_actor_path(payment_id: Uuid) -> String {
    format!("/resources/actors/payment/{payment_id}")
}

/// The path of a ticket actor (a Commerce cart is a ticket).
pub(crate) fn ticket_actor_path(cart_id: Uuid) -> String {
    format!("/resources/actors/ticket/{cart_id}")
}

/// An unknown id.
pub(crate) const NOT_FOUND: &str = "NOT_FOUND";
/// A create at an id that exists already.
pub(crate) const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
/// A create with an `externalReference` that another payment holds.
pub(crate) const DUPLICATE_ID: &str = "DUPLICATE_ID";

// ---------------------------------------------------------------------------------------
// Message bodies
// ---------------------------------------------------------------------------------------

/// One actor message: `{"type": …, "body": …}`.
#[derive(Debug, Serialize)]
pub(crate) struct Message<B> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<B>,
}

/// A message that carries no body.
#[derive(Debug, Serialize)]
pub(crate) enum NoBody {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatePaymentBody<'a> {
    currency_code: &'static str,
    provider_key: &'a str,
    external_reference: &'a str,
    commands: (GeneratePaymentNumber<'a>, CreateAuthorization<'a>),
}

#[derive(Debug, Serialize)]
pub(crate) struct GeneratePaymentNumber<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    prefix: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateAuthorization<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    authorization_number: &'a str,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: Decimal,
    authorization_state: &'static str,
}

/// `[{"type":"create","body":{currencyCode, providerKey, externalReference,
/// commands:[generatePaymentNumberByPrefix, createAuthorization]}}]`.
pub(crate) fn create_payment(payment: &NewPayment) -> [Message<CreatePaymentBody<'_>>; 1] {
    [Message {
        kind: "create",
        body: Some(CreatePaymentBody {
            currency_code: payment.amount.currency.code(),
            provider_key: &payment.provider_key,
            external_reference: &payment.external_reference,
            commands: (
                GeneratePaymentNumber {
                    kind: "generatePaymentNumberByPrefix",
                    prefix: &payment.payment_number_prefix,
                },
                CreateAuthorization {
                    kind: "createAuthorization",
                    authorization_number: &payment.authorization_number,
                    amount: payment.amount.to_decimal(),
                    authorization_state: "successful",
                },
            ),
        }),
    }]
}

#[derive(Debug, Serialize)]
pub(crate) struct ApplyCommandsBody {
    commands: [CreateRelation; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRelation {
    #[serde(rename = "type")]
    kind: &'static str,
    relation_key: &'static str,
    node_id: Uuid,
}

/// The two messages of a cart completion, which Hantera applies atomically.
#[derive(Debug, Serialize)]
pub(crate) struct LinkAndComplete(Message<ApplyCommandsBody>, Message<NoBody>);

/// `[{"type":"applyCommands","body":{"commands":[{"type":"createRelation",
/// "relationKey":"payments","nodeId":…}]}}, {"type":"complete"}]`.
pub(crate) fn link_and_complete(payment_id: Uuid) -> LinkAndComplete {
    LinkAndComplete(
        Message {
            kind: "applyCommands",
            body: Some(ApplyCommandsBody {
                commands: [CreateRelation {
                    kind: "createRelation",
                    relation_key: "payments",
                    node_id: payment_id,
                }],
            }),
        },
        Message {
            kind: "complete",
            body: None,
        },
    )
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChargeBody<'a> {
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_reference: Option<&'a str>,
}

/// `[{"type":"charge","body":{amount, authorizationNumber?, transactionReference?}}]`.
pub(crate) fn charge(charge: &Charge) -> [Message<ChargeBody<'_>>; 1] {
    [Message {
        kind: "charge",
        body: Some(ChargeBody {
            amount: charge.amount,
            authorization_number: charge.authorization_number.as_deref(),
            transaction_reference: charge.transaction_reference.as_deref(),
        }),
    }]
}

/// The form of a client-credentials token request.
#[derive(Serialize)]
pub(crate) struct TokenRequest<'a> {
    pub(crate) grant_type: &'static str,
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: &'a str,
    pub(crate) scope: &'a str,
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

// Error bodies are read tolerantly: only an entry's `code` is acted on, so a message or
// details of an unexpected shape, or an entry without a code, never hides the code of
// another entry (which would turn a definite `ALREADY_EXISTS` into a transient
// "unavailable" and a retry loop).

#[derive(Deserialize)]
struct ErrorsEnvelope {
    errors: Vec<LenientEntry>,
}

#[derive(Deserialize)]
struct LenientEntry {
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    code: Option<String>,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorField,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    // The Commerce documentation's `{"error":{"code","message"}}`.
    Entry(ErrorEntry),
    // OAuth's `{"error":"<code>","error_description":"…"}` (RFC 6749 §5.2). Which code
    // and status a refused client gets is an assumption, kept in `unverified`.
    Code(String),
}

#[derive(Deserialize)]
struct ErrorEntry {
    code: String,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct OAuthDescription {
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    error_description: Option<String>,
}

/// Hantera's error code and message from an error answer, in any of the shapes Hantera is
/// documented to use: `{"errors":[{code,message,details}]}` (actors, and the Commerce SDK),
/// `{"error":{code,message}}` (the Commerce documentation), or OAuth's
/// `{"error":"…","error_description":"…"}`. When several errors are listed, the first code
/// is kept and the messages are joined, so that no detail is lost in the logs.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    if let Ok(env) = serde_json::from_slice::<ErrorsEnvelope>(body) {
        let code = env
            .errors
            .iter()
            .find_map(|e| e.code.clone().filter(|c| !c.is_empty()))?;
        let message = env
            .errors
            .iter()
            .filter_map(|e| e.message.as_deref())
            .collect::<Vec<_>>()
            .join("; ");
        return Some((code, message));
    }
    // The untagged enum here holds only strings, so the exact-number concerns of
    // `arbitrary_precision` do not arise.
    match serde_json::from_slice::<ErrorEnvelope>(body).ok()?.error {
        ErrorField::Entry(e) => Some((e.code, e.message.unwrap_or_default())),
        ErrorField::Code(code) => {
            let description = serde_json::from_slice::<OAuthDescription>(body)
                .ok()
                .and_then(|d| d.error_description)
                .unwrap_or_default();
            Some((code, description))
        }
    }
}

/// The error for a non-success answer. An answer without a recognisable error body (a
/// proxy's HTML page, an empty 503) is no usable answer and so `Unavailable`.
pub(crate) fn error_from_answer(status: u16, body: &[u8]) -> HanteraError {
    match parse_error_body(body) {
        Some((code, message)) => HanteraError::Api {
            status,
            code,
            message,
        },
        None => HanteraError::Unavailable(format!(
            "HTTP {status} without a Hantera error body{}",
            snippet(body)
        )),
    }
}

/// A short, printable excerpt of a body for an error message.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    let more = if body.len() > MAX { "…" } else { "" };
    format!(": {text}{more}")
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use psp_core::{Currency, Money};

    use super::*;

    fn payment(minor: i64, currency: &str) -> NewPayment {
        NewPayment {
            provider_key: "mock".into(),
            external_reference: "mock_pay_1".into(),
            amount: Money::from_minor(minor, Currency::from_code(currency).unwrap()),
            authorization_number: "mock_pay_1".into(),
            payment_number_prefix: "MOCK-".into(),
        }
    }

    #[test]
    fn a_payment_create_is_the_documented_message_with_an_exact_amount() {
        let body = serde_json::to_string(&create_payment(&payment(12345, "SEK"))).unwrap();
        assert_eq!(
            body,
            r#"[{"type":"create","body":{"currencyCode":"SEK","providerKey":"mock","externalReference":"mock_pay_1","commands":[{"type":"generatePaymentNumberByPrefix","prefix":"MOCK-"},{"type":"createAuthorization","authorizationNumber":"mock_pay_1","amount":123.45,"authorizationState":"successful"}]}}]"#
        );
    }

    #[test]
    fn amounts_are_written_with_the_currency_scale_and_never_through_a_float() {
        // 0.1 + 0.2 is the classic float trap; 3 decimals and 0 decimals test the scale.
        for (minor, code, text) in [
            (30, "SEK", "\"amount\":0.30,"),
            (5120, "KWD", "\"amount\":5.120,"),
            (500, "JPY", "\"amount\":500,"),
            (999_999_999_999_999, "EUR", "\"amount\":9999999999999.99,"),
        ] {
            let body = serde_json::to_string(&create_payment(&payment(minor, code))).unwrap();
            assert!(body.contains(text), "{body} lacks {text}");
        }
    }

    #[test]
    fn a_link_and_complete_batch_is_the_documented_pair_of_messages() {
        let id = Uuid::from_str("0199a9b6-8608-7360-b98b-d2f9adeb2848").unwrap();
        let body = serde_json::to_string(&link_and_complete(id)).unwrap();
        assert_eq!(
            body,
            r#"[{"type":"applyCommands","body":{"commands":[{"type":"createRelation","relationKey":"payments","nodeId":"0199a9b6-8608-7360-b98b-d2f9adeb2848"}]}},{"type":"complete"}]"#
        );
    }

    #[test]
    fn a_charge_leaves_out_the_references_it_does_not_have() {
        let full = Charge {
            amount: Decimal::from_str("50.0").unwrap(),
            authorization_number: Some("a1".into()),
            transaction_reference: Some("t1".into()),
        };
        assert_eq!(
            serde_json::to_string(&charge(&full)).unwrap(),
            r#"[{"type":"charge","body":{"amount":50.0,"authorizationNumber":"a1","transactionReference":"t1"}}]"#
        );
        let bare = Charge {
            amount: Decimal::from_str("0.07").unwrap(),
            authorization_number: None,
            transaction_reference: None,
        };
        assert_eq!(
            serde_json::to_string(&charge(&bare)).unwrap(),
            r#"[{"type":"charge","body":{"amount":0.07}}]"#
        );
    }

    #[test]
    fn the_actor_error_envelope_is_parsed() {
        let err = error_from_answer(
            500,
            br#"{"errors":[{"code":"ALREADY_EXISTS","message":"exists","details":{}}]}"#,
        );
        match err {
            HanteraError::Api {
                status,
                code,
                message,
            } => {
                assert_eq!(
                    (status, code.as_str(), message.as_str()),
                    (500, "ALREADY_EXISTS", "exists")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn several_errors_keep_the_first_code_and_every_message() {
        let (code, message) = parse_error_body(
            br#"{"errors":[{"code":"INVALID_COMMAND","message":"a"},{"code":"X","message":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(code, "INVALID_COMMAND");
        assert_eq!(message, "a; b");
    }

    #[test]
    fn odd_messages_details_and_entries_without_a_code_do_not_hide_the_code() {
        for body in [
            &br#"{"errors":[{"code":"ALREADY_EXISTS","message":{"text":"exists"},"details":"x"}]}"#[..],
            br#"{"errors":[{"message":"no code here"},{"code":"ALREADY_EXISTS","message":7}],"traceId":1}"#,
            br#"{"errors":[{"code":"ALREADY_EXISTS","message":null,"details":[1,2]}]}"#,
        ] {
            let err = error_from_answer(500, body);
            match err {
                HanteraError::Api { code, .. } => assert_eq!(code, "ALREADY_EXISTS"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        let (code, message) =
            parse_error_body(br#"{"errors":[{"code":"X","message":42}]}"#).unwrap();
        assert_eq!((code.as_str(), message.as_str()), ("X", "42"));
        let (_, message) = parse_error_body(
            br#"{"error":{"code":"NOT_FOUND","message":["a"]},"error_description":1}"#,
        )
        .unwrap();
        assert_eq!(message, "");
        assert!(parse_error_body(br#"{"errors":[{"message":"no code"}]}"#).is_none());
    }

    #[test]
    fn the_commerce_documentation_error_shape_is_parsed_too() {
        let (code, message) =
            parse_error_body(br#"{"error":{"code":"NOT_FOUND","message":"no cart"}}"#).unwrap();
        assert_eq!((code.as_str(), message.as_str()), ("NOT_FOUND", "no cart"));
    }

    #[test]
    fn the_oauth_error_shape_is_parsed() {
        let (code, message) =
            parse_error_body(br#"{"error":"invalid_client","error_description":"bad secret"}"#)
                .unwrap();
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("invalid_client", "bad secret")
        );
    }

    #[test]
    fn an_answer_without_an_error_body_is_unavailable_and_transient() {
        for body in [
            &b""[..],
            b"<html>Bad Gateway</html>",
            br#"{"errors":[]}"#,
            b"[1]",
        ] {
            let err = error_from_answer(502, body);
            assert!(matches!(err, HanteraError::Unavailable(_)), "{err:?}");
            assert!(err.is_transient());
        }
    }

    #[test]
    fn definite_actor_errors_with_status_500_are_not_transient() {
        let err = error_from_answer(
            500,
            br#"{"errors":[{"code":"DUPLICATE_ID","message":"x"}]}"#,
        );
        assert!(!err.is_transient());
        let err = error_from_answer(503, br#"{"errors":[{"code":"UNAVAILABLE","message":"x"}]}"#);
        assert!(err.is_transient());
    }
}
