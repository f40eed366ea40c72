//! Stripe's wire format and its conversions to and from the core's types, kept apart from
//! the flow in `provider.rs`.
//!
//! Requests are form-encoded with bracket nesting (`metadata[cart_id]=…`) by `serde_qs`
//! from typed structs, never by string concatenation. Responses are read leniently: Stripe
//! adds fields in new API versions, and a field we do not read must not break a payment.

use std::collections::BTreeMap;

use psp_core::{
    CheckoutSession, EventKind, Money, ParsedEvent, ProviderError, PspPayment, PspStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::currency;

/// The value of `metadata[gateway]` on every PaymentIntent this gateway creates. Events
/// about PaymentIntents without it belong to another integration on the same account.
pub(crate) const GATEWAY_TAG: &str = "psp-gateway";

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// `POST /v1/payment_intents`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateIntent<'a> {
    pub(crate) amount: i64,
    /// Lower case, as Stripe requires.
    pub(crate) currency: String,
    pub(crate) capture_method: &'static str,
    pub(crate) automatic_payment_methods: AutomaticPaymentMethods,
    pub(crate) metadata: IntentMetadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
}

/// `automatic_payment_methods[enabled]=true`: Stripe offers what the dashboard enables.
#[derive(Debug, Serialize)]
pub(crate) struct AutomaticPaymentMethods {
    pub(crate) enabled: bool,
}

/// What the gateway writes into a PaymentIntent's metadata.
#[derive(Debug, Serialize)]
pub(crate) struct IntentMetadata<'a> {
    /// The Hantera cart, so completion finds it from the PaymentIntent alone.
    pub(crate) cart_id: String,
    /// [`GATEWAY_TAG`]: marks the PaymentIntent as ours.
    pub(crate) gateway: &'static str,
    /// The persisted checkout idempotency key. After a saved 500 Stripe replays the 500 for
    /// that key forever (24 h), so the PaymentIntent is found again by searching for it.
    pub(crate) checkout_key: &'a str,
}

/// `POST /v1/payment_intents/{id}` changing the amount (and currency) of an unconfirmed
/// PaymentIntent.
#[derive(Debug, Serialize)]
pub(crate) struct UpdateAmount {
    pub(crate) amount: i64,
    pub(crate) currency: String,
}

/// `POST /v1/payment_intents/{id}/capture`.
#[derive(Debug, Serialize)]
pub(crate) struct Capture {
    pub(crate) amount_to_capture: i64,
}

/// `POST /v1/payment_intents/{id}/cancel`.
#[derive(Debug, Serialize)]
pub(crate) struct Cancel {
    pub(crate) cancellation_reason: &'static str,
}

/// `GET /v1/payment_intents/search`.
#[derive(Debug, Serialize)]
pub(crate) struct Search {
    pub(crate) query: String,
    pub(crate) limit: u32,
}

/// Encodes request parameters as `application/x-www-form-urlencoded` with Stripe's bracket
/// nesting.
pub(crate) fn form<T: Serialize>(params: &T) -> Result<String, ProviderError> {
    serde_qs::Config::new()
        .use_form_encoding(true)
        .serialize_string(params)
        .map_err(|e| ProviderError::Transient(format!("encoding a Stripe request: {e}")))
}

/// The search query finding the PaymentIntent created under a checkout key. Stripe's search
/// syntax quotes values in single quotes and escapes a quote with a backslash.
pub(crate) fn checkout_key_query(key: &str) -> String {
    let escaped = key.replace('\\', "\\\\").replace('\'', "\\'");
    format!("metadata['checkout_key']:'{escaped}'")
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// A PaymentIntent, as much of it as the gateway reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PaymentIntent {
    pub(crate) id: String,
    pub(crate) amount: i64,
    #[serde(default)]
    pub(crate) amount_capturable: i64,
    #[serde(default)]
    pub(crate) amount_received: i64,
    pub(crate) currency: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) client_secret: Option<String>,
    /// Read leniently: a value that is not text is not ours (our tag and cart id are
    /// text), so it is left out rather than failing the whole PaymentIntent.
    #[serde(default, deserialize_with = "psp_core::lenient::text_map")]
    pub(crate) metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "last_payment_error")]
    pub(crate) last_payment_error: Option<LastPaymentError>,
    /// Only names the capture; the PaymentIntent's id stands in when it is unreadable.
    #[serde(default, deserialize_with = "expandable")]
    pub(crate) latest_charge: Option<Expandable>,
}

/// `last_payment_error`: absent or `null` is none; any other value says the last attempt
/// failed, whatever its shape (its fields only describe the failure).
fn last_payment_error<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<LastPaymentError>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Null => None,
        v => Some(serde_json::from_value(v).unwrap_or_default()),
    })
}

fn expandable<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Expandable>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(deserializer)?).ok())
}

/// A field Stripe returns as an id, or as the object when `expand[]` asked for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub(crate) fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

/// Why the last confirmation failed (descriptive only, so read leniently).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct LastPaymentError {
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub(crate) code: Option<String>,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub(crate) decline_code: Option<String>,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub(crate) message: Option<String>,
}

/// Stripe's statuses where the amount of a PaymentIntent can still change.
pub(crate) const UNCONFIRMED: &[&str] = &[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
];

impl PaymentIntent {
    /// Whether the PaymentIntent carries this gateway's tag.
    pub(crate) fn is_ours(&self) -> bool {
        self.metadata.get("gateway").map(String::as_str) == Some(GATEWAY_TAG)
    }

    pub(crate) fn is_unconfirmed(&self) -> bool {
        UNCONFIRMED.contains(&self.status.as_str())
    }

    /// Stripe's `amount` as cart money.
    pub(crate) fn money(&self, stripe_amount: i64) -> Result<Money, ProviderError> {
        currency::from_stripe_amount(stripe_amount, &self.currency).map_err(protocol_error)
    }

    /// The id the capture is known by: the charge, or the PaymentIntent when Stripe did not
    /// name one.
    pub(crate) fn capture_id(&self) -> String {
        self.latest_charge
            .as_ref()
            .map(|c| c.id().to_string())
            .unwrap_or_else(|| self.id.clone())
    }
}

/// `{"object":"search_result","data":[…]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchResult {
    pub(crate) data: Vec<PaymentIntent>,
}

pub(crate) fn parse_intent(body: &[u8]) -> Result<PaymentIntent, ProviderError> {
    serde_json::from_slice(body).map_err(protocol_error)
}

/// An answer that is not what Stripe sends. It is treated as ambiguous, not as a refusal:
/// a garbled answer to a capture may hide a capture that happened, and a retry with the
/// same idempotency key finds out safely.
pub(crate) fn protocol_error(message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transient(format!("unexpected answer from Stripe: {message}"))
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Stripe's `{"error":{…}}`.
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

/// The fields of Stripe's error object. Every one is read leniently: an odd value in one
/// field must not lose the others (the type and code classify the error).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(
        rename = "type",
        default,
        deserialize_with = "psp_core::lenient::string"
    )]
    pub(crate) kind: String,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub(crate) code: Option<String>,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub(crate) decline_code: Option<String>,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub(crate) message: Option<String>,
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    pub(crate) param: Option<String>,
}

/// An error answer from Stripe, with what its headers said.
#[derive(Debug, Clone)]
pub(crate) struct StripeError {
    pub(crate) status: u16,
    /// `Stripe-Should-Retry`, when Stripe sent it.
    pub(crate) should_retry: Option<bool>,
    pub(crate) request_id: Option<String>,
    pub(crate) body: ErrorBody,
}

/// What an error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// 401: the key is wrong.
    Authentication,
    /// 402 `card_error`: the card was declined.
    Card,
    /// The idempotency key was reused with other parameters (a bug on our side).
    Idempotency,
    /// 404 `resource_missing`.
    NotFound,
    /// `payment_intent_unexpected_state`: the PaymentIntent is past the operation.
    UnexpectedState,
    /// 429: too many requests; not saved under the key, so a later retry is safe.
    RateLimited,
    /// 409: another request with the same key was executing.
    Conflict,
    /// 5xx: Stripe may or may not have acted, and saved the answer under the key.
    Server,
    /// Any other definite refusal.
    InvalidRequest,
}

impl StripeError {
    /// Reads an error answer. A body that is not Stripe's shape (a proxy's HTML page) still
    /// gives an error with the status.
    pub(crate) fn from_answer(
        status: u16,
        should_retry: Option<bool>,
        request_id: Option<String>,
        body: &[u8],
    ) -> Self {
        let body = serde_json::from_slice::<ErrorEnvelope>(body)
            .map(|e| e.error)
            .unwrap_or_else(|_| ErrorBody {
                message: Some(String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
                ..ErrorBody::default()
            });
        Self {
            status,
            should_retry,
            request_id,
            body,
        }
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        let code = self.body.code.as_deref().unwrap_or("");
        match (self.status, self.body.kind.as_str()) {
            (500.., _) => ErrorKind::Server,
            (409, _) => ErrorKind::Conflict,
            (429, _) => ErrorKind::RateLimited,
            (401, _) => ErrorKind::Authentication,
            (_, "idempotency_error") => ErrorKind::Idempotency,
            (_, "card_error") => ErrorKind::Card,
            (404, _) => ErrorKind::NotFound,
            _ if code == "resource_missing" => ErrorKind::NotFound,
            _ if code == "payment_intent_unexpected_state" => ErrorKind::UnexpectedState,
            _ => ErrorKind::InvalidRequest,
        }
    }

    /// Whether Stripe may have acted: after this the object is re-read before deciding.
    pub(crate) fn is_ambiguous(&self) -> bool {
        matches!(self.kind(), ErrorKind::Server | ErrorKind::Conflict)
    }

    /// The most telling code: the decline code, else the error code, else the type.
    pub(crate) fn code(&self) -> String {
        self.body
            .decline_code
            .clone()
            .or_else(|| self.body.code.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| {
                if self.body.kind.is_empty() {
                    format!("http_{}", self.status)
                } else {
                    self.body.kind.clone()
                }
            })
    }

    pub(crate) fn message(&self) -> String {
        let mut m = self
            .body
            .message
            .clone()
            .unwrap_or_else(|| format!("Stripe answered {}", self.status));
        if let Some(param) = &self.body.param {
            m.push_str(&format!(" (param {param})"));
        }
        if let Some(id) = &self.request_id {
            m.push_str(&format!(" [{id}]"));
        }
        m
    }

    /// The core's error for this answer: `Transient` where a later retry may succeed,
    /// otherwise a definite `Rejected`, `NotFound` or `Locked`.
    pub(crate) fn into_provider_error(self) -> ProviderError {
        match self.kind() {
            ErrorKind::Server | ErrorKind::Conflict | ErrorKind::RateLimited => {
                ProviderError::Transient(format!(
                    "Stripe answered {}: {}: {}",
                    self.status,
                    self.code(),
                    self.message()
                ))
            }
            ErrorKind::NotFound => ProviderError::NotFound(self.message()),
            ErrorKind::UnexpectedState => ProviderError::Locked(self.message()),
            ErrorKind::Authentication
            | ErrorKind::Card
            | ErrorKind::Idempotency
            | ErrorKind::InvalidRequest => ProviderError::Rejected {
                code: self.code(),
                message: self.message(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------

/// What the storefront needs for Stripe.js.
pub(crate) fn session(pi: &PaymentIntent) -> Result<CheckoutSession, ProviderError> {
    let client_secret = pi
        .client_secret
        .clone()
        .ok_or_else(|| protocol_error("the PaymentIntent has no client_secret"))?;
    Ok(CheckoutSession {
        psp_ref: pi.id.clone(),
        amount: pi.money(pi.amount)?,
        client: json!({ "clientSecret": client_secret, "paymentIntentId": pi.id }),
    })
}

/// Maps Stripe's status to the core's. Every terminal Stripe state maps to a terminal
/// core state; an unknown status (a newer API version) is pending, never authorized.
pub(crate) fn psp_status(pi: &PaymentIntent) -> Result<PspStatus, ProviderError> {
    Ok(match pi.status.as_str() {
        "requires_capture" => PspStatus::Authorized {
            amount: pi.money(pi.amount_capturable)?,
        },
        "succeeded" => PspStatus::Captured {
            amount: pi.money(pi.amount_received)?,
        },
        "canceled" => PspStatus::Canceled,
        // After a decline Stripe returns the PaymentIntent to requires_payment_method with
        // the reason in last_payment_error; the customer may try another card, but this
        // attempt has failed.
        "requires_payment_method" => match &pi.last_payment_error {
            Some(e) => PspStatus::Failed {
                reason: e
                    .decline_code
                    .clone()
                    .or_else(|| e.code.clone())
                    .or_else(|| e.message.clone())
                    .unwrap_or_else(|| "payment_failed".into()),
            },
            None => PspStatus::Pending,
        },
        "requires_confirmation" | "requires_action" | "processing" => PspStatus::Pending,
        other => {
            tracing::warn!(
                status = other,
                payment_intent = %pi.id,
                "unknown PaymentIntent status; treated as pending"
            );
            PspStatus::Pending
        }
    })
}

/// The PaymentIntent as the completion orchestrator reads it. The cart id in the metadata
/// is trusted only on PaymentIntents this gateway tagged.
pub(crate) fn psp_payment(pi: &PaymentIntent) -> Result<PspPayment, ProviderError> {
    let cart_id = pi
        .is_ours()
        .then(|| pi.metadata.get("cart_id"))
        .flatten()
        .and_then(|c| uuid::Uuid::parse_str(c).ok());
    Ok(PspPayment {
        psp_ref: pi.id.clone(),
        cart_id,
        status: psp_status(pi)?,
    })
}

/// A Stripe event, as much as the gateway reads.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

/// Parses a verified event body. Event types the gateway does not act on, and
/// PaymentIntent events of other integrations on the same account, become
/// [`EventKind::Other`] (answered 200), never an error, so Stripe does not resend them.
pub(crate) fn parse_event(bytes: &[u8]) -> Result<ParsedEvent, String> {
    let event: Event =
        serde_json::from_slice(bytes).map_err(|e| format!("not a Stripe event: {e}"))?;
    if event.id.trim().is_empty() {
        return Err("the event has no id".into());
    }
    let object = &event.data.object;
    let is_intent = object.get("object").and_then(Value::as_str) == Some("payment_intent");
    let ours = object.pointer("/metadata/gateway").and_then(Value::as_str) == Some(GATEWAY_TAG);
    let psp_ref = || {
        object
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("{} event has no data.object.id", event.event_type))
    };
    let kind = match event.event_type.as_str() {
        _ if !is_intent || !ours => EventKind::Other,
        // Manual capture reached requires_capture, or automatic capture succeeded (also
        // sent after our own capture, when completion is long done: a no-op then).
        "payment_intent.amount_capturable_updated" | "payment_intent.succeeded" => {
            EventKind::Authorized {
                psp_ref: psp_ref()?,
            }
        }
        "payment_intent.payment_failed" => EventKind::Failed {
            psp_ref: psp_ref()?,
        },
        "payment_intent.canceled" => EventKind::Canceled {
            psp_ref: psp_ref()?,
        },
        _ => EventKind::Other,
    };
    Ok(ParsedEvent {
        event_id: event.id,
        event_type: event.event_type,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_core::Currency;

    /// A PaymentIntent as Stripe's API reference prints it (API version 2025-01-27), with
    /// our metadata. Fields the adapter does not read are kept, to show they do no harm.
    const STRIPE_INTENT: &str = r#"{
      "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
      "object": "payment_intent",
      "amount": 123450,
      "amount_capturable": 123450,
      "amount_details": { "tip": {} },
      "amount_received": 0,
      "application": null,
      "application_fee_amount": null,
      "automatic_payment_methods": { "enabled": true },
      "canceled_at": null,
      "cancellation_reason": null,
      "capture_method": "manual",
      "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
      "confirmation_method": "automatic",
      "created": 1680800504,
      "currency": "sek",
      "customer": null,
      "description": null,
      "last_payment_error": null,
      "latest_charge": "ch_3MtwBwLkdIwHu7ix0snN0B15",
      "livemode": false,
      "metadata": { "cart_id": "0b6f7c1e-2a49-4a8e-9d7e-52f1f0a1c001", "gateway": "psp-gateway" },
      "next_action": null,
      "on_behalf_of": null,
      "payment_method": "pm_1MtwBwLkdIwHu7ixXLq2sRtJ",
      "payment_method_configuration_details": { "id": "pmc_1MtwBwLkdIwHu7ix", "parent": null },
      "payment_method_options": { "card": { "request_three_d_secure": "automatic" } },
      "payment_method_types": ["card"],
      "processing": null,
      "receipt_email": null,
      "review": null,
      "setup_future_usage": null,
      "shipping": null,
      "source": null,
      "statement_descriptor": null,
      "statement_descriptor_suffix": null,
      "status": "requires_capture",
      "transfer_data": null,
      "transfer_group": null
    }"#;

    fn sek(minor: i64) -> Money {
        Money::from_minor(minor, Currency::from_code("SEK").unwrap())
    }

    fn intent(patch: Value) -> PaymentIntent {
        let mut v: Value = serde_json::from_str(STRIPE_INTENT).unwrap();
        if let (Some(map), Some(p)) = (v.as_object_mut(), patch.as_object()) {
            for (k, val) in p {
                map.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_are_form_encoded_with_bracket_nesting() {
        let body = form(&CreateIntent {
            amount: 123_450,
            currency: "sek".into(),
            capture_method: "manual",
            automatic_payment_methods: AutomaticPaymentMethods { enabled: true },
            metadata: IntentMetadata {
                cart_id: "c1".into(),
                gateway: GATEWAY_TAG,
                checkout_key: "k 1&2",
            },
            description: Some("Cart C-1".into()),
        })
        .unwrap();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
        let expected = [
            ("amount", "123450"),
            ("currency", "sek"),
            ("capture_method", "manual"),
            ("automatic_payment_methods[enabled]", "true"),
            ("metadata[cart_id]", "c1"),
            ("metadata[gateway]", "psp-gateway"),
            ("metadata[checkout_key]", "k 1&2"),
            ("description", "Cart C-1"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected, "{body}");
    }

    #[test]
    fn a_payment_intent_from_stripes_reference_is_read() {
        let pi = intent(json!({}));
        assert!(pi.is_ours());
        assert_eq!(pi.capture_id(), "ch_3MtwBwLkdIwHu7ix0snN0B15");
        let payment = psp_payment(&pi).unwrap();
        assert_eq!(
            payment.status,
            PspStatus::Authorized {
                amount: sek(123_450)
            }
        );
        assert_eq!(
            payment.cart_id.unwrap().to_string(),
            "0b6f7c1e-2a49-4a8e-9d7e-52f1f0a1c001"
        );
        let s = session(&pi).unwrap();
        assert_eq!(s.amount, sek(123_450));
        assert_eq!(s.client["paymentIntentId"], "pi_3MtwBwLkdIwHu7ix28a3tqPa");
        assert!(s.client["clientSecret"]
            .as_str()
            .unwrap()
            .contains("_secret_"));
    }

    #[test]
    fn an_expanded_latest_charge_gives_the_same_capture_id() {
        let pi =
            intent(json!({ "latest_charge": { "id": "ch_1", "object": "charge", "amount": 5 } }));
        assert_eq!(pi.capture_id(), "ch_1");
    }

    #[test]
    fn every_status_maps_to_a_core_state() {
        let cases = [
            (
                json!({ "status": "requires_capture" }),
                PspStatus::Authorized {
                    amount: sek(123_450),
                },
            ),
            (
                json!({ "status": "succeeded", "amount_capturable": 0, "amount_received": 100_000 }),
                PspStatus::Captured {
                    amount: sek(100_000),
                },
            ),
            (json!({ "status": "canceled" }), PspStatus::Canceled),
            (
                json!({ "status": "requires_payment_method" }),
                PspStatus::Pending,
            ),
            (
                json!({ "status": "requires_payment_method", "last_payment_error": { "code": "card_declined", "decline_code": "insufficient_funds" } }),
                PspStatus::Failed {
                    reason: "insufficient_funds".into(),
                },
            ),
            (
                json!({ "status": "requires_confirmation" }),
                PspStatus::Pending,
            ),
            (json!({ "status": "requires_action" }), PspStatus::Pending),
            (json!({ "status": "processing" }), PspStatus::Pending),
            (
                json!({ "status": "some_future_status" }),
                PspStatus::Pending,
            ),
        ];
        for (patch, expected) in cases {
            assert_eq!(
                psp_status(&intent(patch.clone())).unwrap(),
                expected,
                "{patch}"
            );
        }
    }

    #[test]
    fn fields_the_adapter_only_describes_with_never_fail_a_payment_intent() {
        // Odd shapes in fields that only describe or name things: the PaymentIntent is
        // still read, and what the gateway acts on is unchanged.
        for patch in [
            json!({ "last_payment_error": { "code": 7, "decline_code": ["x"], "message": {} } }),
            json!({ "last_payment_error": "card_declined" }),
            json!({ "latest_charge": { "object": "charge" } }),
            json!({ "latest_charge": 17 }),
            json!({ "metadata": { "cart_id": "0b6f7c1e-2a49-4a8e-9d7e-52f1f0a1c001",
                                  "gateway": "psp-gateway", "note": { "x": 1 }, "n": null } }),
            json!({ "brand_new_field": { "deep": [1, null] } }),
        ] {
            let pi = intent(patch.clone());
            assert!(pi.is_ours(), "{patch}");
            assert_eq!(
                psp_payment(&pi)
                    .unwrap()
                    .cart_id
                    .map(|c| c.to_string())
                    .as_deref(),
                Some("0b6f7c1e-2a49-4a8e-9d7e-52f1f0a1c001"),
                "{patch}"
            );
        }
        let failed =
            intent(json!({ "status": "requires_payment_method", "last_payment_error": "x" }));
        assert!(matches!(
            psp_status(&failed).unwrap(),
            PspStatus::Failed { .. }
        ));
        assert_eq!(
            intent(json!({ "latest_charge": 17 })).capture_id(),
            "pi_3MtwBwLkdIwHu7ix28a3tqPa"
        );
        // A field the gateway acts on is still checked.
        let mut bad: Value = serde_json::from_str(STRIPE_INTENT).unwrap();
        bad["amount_capturable"] = json!("lots");
        assert!(serde_json::from_value::<PaymentIntent>(bad).is_err());
    }

    #[test]
    fn an_error_answer_with_odd_descriptive_fields_keeps_its_type_and_code() {
        let e = StripeError::from_answer(
            402,
            None,
            None,
            json!({ "error": { "type": "card_error", "code": "card_declined", "param": ["x"],
                               "message": null, "decline_code": 5, "doc_url": {} } })
            .to_string()
            .as_bytes(),
        );
        assert_eq!(e.kind(), ErrorKind::Card);
        assert_eq!(e.body.code.as_deref(), Some("card_declined"));
    }

    #[test]
    fn the_cart_id_of_a_foreign_payment_intent_is_not_trusted() {
        let pi =
            intent(json!({ "metadata": { "cart_id": "0b6f7c1e-2a49-4a8e-9d7e-52f1f0a1c001" } }));
        assert!(!pi.is_ours());
        assert_eq!(psp_payment(&pi).unwrap().cart_id, None);
    }

    #[test]
    fn error_answers_map_to_typed_errors() {
        let err = |status: u16, body: Value| {
            StripeError::from_answer(
                status,
                None,
                Some("req_1".into()),
                body.to_string().as_bytes(),
            )
        };
        let declined = err(
            402,
            json!({ "error": { "type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined." } }),
        );
        assert_eq!(declined.kind(), ErrorKind::Card);
        match declined.into_provider_error() {
            ProviderError::Rejected { code, message } => {
                assert_eq!(code, "generic_decline");
                assert!(
                    message.contains("declined") && message.contains("req_1"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let missing = err(
            404,
            json!({ "error": { "type": "invalid_request_error", "code": "resource_missing", "param": "intent", "message": "No such payment_intent: 'pi_x'" } }),
        );
        assert!(matches!(
            missing.into_provider_error(),
            ProviderError::NotFound(_)
        ));
        let state = err(
            400,
            json!({ "error": { "type": "invalid_request_error", "code": "payment_intent_unexpected_state", "message": "m" } }),
        );
        assert!(matches!(
            state.into_provider_error(),
            ProviderError::Locked(_)
        ));
        let saved_500 = err(
            500,
            json!({ "error": { "type": "api_error", "message": "m" } }),
        );
        assert!(saved_500.is_ambiguous());
        assert!(saved_500.into_provider_error().is_transient());
        let conflict = err(
            409,
            json!({ "error": { "type": "idempotency_error", "message": "m" } }),
        );
        assert!(conflict.is_ambiguous());
        let reused = err(
            400,
            json!({ "error": { "type": "idempotency_error", "message": "m" } }),
        );
        assert_eq!(reused.kind(), ErrorKind::Idempotency);
        assert!(!reused.is_ambiguous());
        let limited = err(
            429,
            json!({ "error": { "type": "invalid_request_error", "code": "rate_limit" } }),
        );
        assert!(!limited.is_ambiguous());
        assert!(limited.into_provider_error().is_transient());
        let auth = err(
            401,
            json!({ "error": { "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****" } }),
        );
        assert_eq!(auth.kind(), ErrorKind::Authentication);
        let html = StripeError::from_answer(502, None, None, b"<html>bad gateway</html>");
        assert_eq!(html.code(), "http_502");
        assert!(html.message().contains("bad gateway"));
    }

    fn event(event_type: &str, object: Value) -> Vec<u8> {
        json!({ "id": "evt_1", "object": "event", "type": event_type, "data": { "object": object } })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn events_map_by_type_and_foreign_or_unknown_ones_are_other() {
        let ours = json!({ "id": "pi_1", "object": "payment_intent", "metadata": { "gateway": "psp-gateway" } });
        let theirs =
            json!({ "id": "pi_2", "object": "payment_intent", "metadata": { "order_id": "9" } });
        let kind = |t: &str, o: &Value| parse_event(&event(t, o.clone())).unwrap().kind;
        let pi1 = || "pi_1".to_string();
        assert_eq!(
            kind("payment_intent.amount_capturable_updated", &ours),
            EventKind::Authorized { psp_ref: pi1() }
        );
        assert_eq!(
            kind("payment_intent.succeeded", &ours),
            EventKind::Authorized { psp_ref: pi1() }
        );
        assert_eq!(
            kind("payment_intent.payment_failed", &ours),
            EventKind::Failed { psp_ref: pi1() }
        );
        assert_eq!(
            kind("payment_intent.canceled", &ours),
            EventKind::Canceled { psp_ref: pi1() }
        );
        assert_eq!(kind("payment_intent.created", &ours), EventKind::Other);
        assert_eq!(
            kind("payment_intent.requires_action", &ours),
            EventKind::Other
        );
        assert_eq!(kind("payment_intent.succeeded", &theirs), EventKind::Other);
        assert_eq!(
            kind("payment_intent.amount_capturable_updated", &theirs),
            EventKind::Other
        );
        assert_eq!(
            kind(
                "charge.succeeded",
                &json!({ "id": "ch_1", "object": "charge" })
            ),
            EventKind::Other
        );
        let parsed = parse_event(&event("payment_intent.succeeded", ours.clone())).unwrap();
        assert_eq!(parsed.event_id, "evt_1");
        assert_eq!(parsed.event_type, "payment_intent.succeeded");
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(parse_event(b"not json").is_err());
        assert!(parse_event(br#"{"id":"evt_1","type":"x"}"#).is_err());
        let no_id = json!({ "object": "payment_intent", "metadata": { "gateway": "psp-gateway" } });
        assert!(parse_event(&event("payment_intent.succeeded", no_id)).is_err());
    }

    #[test]
    fn search_values_are_quoted_and_escaped() {
        assert_eq!(checkout_key_query("abc"), "metadata['checkout_key']:'abc'");
        assert_eq!(
            checkout_key_query("a'b\\"),
            r"metadata['checkout_key']:'a\'b\\'"
        );
    }
}
