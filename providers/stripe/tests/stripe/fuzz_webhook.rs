//! Fuzzing the Stripe adapter's webhook parser through `verify_webhook`: arbitrary
//! headers and bytes, and correctly signed Stripe events (valid-looking, with random,
//! missing, extra and wrongly typed fields). No input panics; an unsigned delivery is
//! refused; a signed one is the event Stripe's fields say (only our own PaymentIntents'
//! events are acted on), or a clear `Malformed`. Sizes are bounded, so each case is one
//! HMAC and one small JSON parse. `PSP_FUZZ_CASES` runs more cases.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use psp_core::signature::sign_header;
use psp_core::{EventKind, Provider, Secret, WebhookDelivery, WebhookError};
use serde_json::{json, Value};
use stripe::{StripeProvider, SIGNATURE_HEADER};
use testkit::fuzz;

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_750_000_000;

fn provider() -> StripeProvider {
    StripeProvider::from_config(&json!({
        "secret_key": "sk_test_fuzz",
        "publishable_key": "pk_test_fuzz",
        "webhook_secrets": [SECRET],
        "api_base": "http://127.0.0.1:1",
    }))
    .expect("the adapter takes its config")
}

fn deliver(
    p: &StripeProvider,
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(String, EventKind), WebhookError> {
    let mut headers = HeaderMap::new();
    if let Some(h) = header.and_then(|h| HeaderValue::from_bytes(h).ok()) {
        headers.insert(SIGNATURE_HEADER, h);
    }
    let delivery = WebhookDelivery {
        headers: &headers,
        body,
        query: None,
        now: UNIX_EPOCH + Duration::from_secs(NOW as u64),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(p.verify_webhook(&delivery))
        .map(|e| (e.event_id().to_string(), e.kind().clone()))
}

fn signed(body: &[u8]) -> String {
    sign_header(&Secret::new(SECRET), NOW, body)
}

const ACTED_ON: &[&str] = &[
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
];

/// Checks a verdict on a signed body against Stripe's rules.
fn check(v: Option<&Value>, got: &Result<(String, EventKind), WebhookError>) -> Result<(), String> {
    let well_formed = v.is_some_and(|v| {
        v.get("id")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
            && v.get("type").is_some_and(Value::is_string)
            && v.get("data")
                .and_then(Value::as_object)
                .is_some_and(|d| d.contains_key("object"))
    });
    match got {
        Err(WebhookError::Malformed(m)) if !m.is_empty() => {
            // Only a body missing what the gateway reads may be refused; an event of
            // ours that it acts on also needs its PaymentIntent id.
            let ours = v.and_then(|v| v.pointer("/data/object")).is_some_and(|o| {
                o.get("object").and_then(Value::as_str) == Some("payment_intent")
                    && o.pointer("/metadata/gateway").and_then(Value::as_str) == Some("psp-gateway")
            });
            let acted_on = v
                .and_then(|v| v.get("type"))
                .and_then(Value::as_str)
                .is_some_and(|t| ACTED_ON.contains(&t));
            let has_ref = v
                .and_then(|v| v.pointer("/data/object/id"))
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty());
            if well_formed && !(ours && acted_on && !has_ref) {
                return Err(format!("a readable event was refused: {m}"));
            }
            Ok(())
        }
        Ok((id, kind)) => {
            let v = v.ok_or("a body that is not JSON became an event")?;
            if v.is_object() && v.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                return Err(format!("event id {id:?} is not the body's"));
            }
            let object = v.pointer("/data/object").cloned().unwrap_or(Value::Null);
            let ours = object.get("object").and_then(Value::as_str) == Some("payment_intent")
                && object.pointer("/metadata/gateway").and_then(Value::as_str)
                    == Some("psp-gateway");
            match kind {
                EventKind::Other => Ok(()),
                EventKind::Authorized { psp_ref }
                | EventKind::Failed { psp_ref }
                | EventKind::Canceled { psp_ref } => {
                    if !ours {
                        return Err("an event of another integration was acted on".into());
                    }
                    if object.get("id").and_then(Value::as_str) != Some(psp_ref.as_str()) {
                        return Err(format!("psp_ref {psp_ref:?} is not data.object.id"));
                    }
                    Ok(())
                }
            }
        }
        Err(other) => Err(format!("a signed body was refused with {other:?}")),
    }
}

/// A valid-looking Stripe event about a PaymentIntent.
fn event() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("payment_intent.amount_capturable_updated".to_string()),
        Just("payment_intent.succeeded".to_string()),
        Just("payment_intent.payment_failed".to_string()),
        Just("payment_intent.canceled".to_string()),
        Just("charge.refunded".to_string()),
        fuzz::short_text(),
    ];
    let gateway = prop_oneof![
        Just(json!("psp-gateway")),
        Just(json!("other")),
        fuzz::json()
    ];
    (kind, gateway, "[a-zA-Z0-9_]{0,12}").prop_flat_map(|(kind, gateway, id)| {
        let base = json!({
            "id": format!("evt_{id}"),
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": NOW,
            "livemode": false,
            "type": kind,
            "data": { "object": {
                "id": format!("pi_{id}"), "object": "payment_intent", "amount": 2000,
                "amount_capturable": 2000, "currency": "sek", "status": "requires_capture",
                "metadata": { "gateway": gateway, "cart_id": "0199a9b6-8608-7360-b98b-d2f9adeb2848" },
                "last_payment_error": null, "latest_charge": "ch_1",
            }},
        });
        fuzz::mutated(base, 4)
    })
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn arbitrary_headers_and_bytes_are_refused_as_unsigned(
        header in proptest::option::of(fuzz::bytes(200)),
        body in fuzz::bytes(2048),
    ) {
        let result = deliver(&provider(), header.as_deref(), &body);
        prop_assert!(matches!(result, Err(WebhookError::Signature(_))), "{:?}", result);
    }

    #[test]
    fn signed_arbitrary_bytes_are_an_event_or_malformed(body in fuzz::bytes(2048)) {
        let header = signed(&body);
        let result = deliver(&provider(), Some(header.as_bytes()), &body);
        let v = serde_json::from_slice::<Value>(&body).ok();
        if let Err(why) = check(v.as_ref(), &result) {
            prop_assert!(false, "{}: {:?}", why, result);
        }
    }

    #[test]
    fn signed_events_with_odd_fields_are_read_by_stripes_rules(v in event()) {
        let body = serde_json::to_vec(&v).unwrap();
        let header = signed(&body);
        let result = deliver(&provider(), Some(header.as_bytes()), &body);
        if let Err(why) = check(Some(&v), &result) {
            prop_assert!(false, "{}: {} gave {:?}", why, v, result);
        }
    }
}

#[test]
fn an_unmutated_event_of_ours_is_acted_on() {
    let body = serde_json::to_vec(&json!({
        "id": "evt_1", "type": "payment_intent.succeeded",
        "data": { "object": { "id": "pi_1", "object": "payment_intent",
                              "metadata": { "gateway": "psp-gateway" } } },
    }))
    .unwrap();
    let result = deliver(&provider(), Some(signed(&body).as_bytes()), &body);
    assert_eq!(
        result.unwrap(),
        (
            "evt_1".to_string(),
            EventKind::Authorized {
                psp_ref: "pi_1".into()
            }
        )
    );
}
