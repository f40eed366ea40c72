//! Fuzzing the mock PSP's webhook parser through `verify_webhook`: arbitrary headers and
//! bytes, and correctly signed events (valid-looking, with random, missing, extra and
//! wrongly typed fields). No input panics; an unsigned delivery is refused; a signed one
//! becomes exactly the event the rules say, or a clear `Malformed`. Sizes are bounded, so
//! each case is one HMAC and one small JSON parse. `PSP_FUZZ_CASES` runs more cases.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use mock::{MockProvider, SIGNATURE_HEADER};
use proptest::prelude::*;
use psp_core::signature::sign_header;
use psp_core::{EventKind, Provider, Secret, WebhookDelivery, WebhookError};
use serde_json::{json, Value};
use testkit::fuzz;

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_750_000_000;

fn provider() -> MockProvider {
    MockProvider::from_config(&json!({ "webhook_secret": SECRET }), "http://127.0.0.1:1")
        .expect("the adapter takes its config")
}

fn deliver(
    p: &MockProvider,
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

/// What the mock's rules make of a signed JSON body: the event id and kind, or `None`
/// for a body that must be refused as malformed.
fn expected(v: &Value) -> Option<(String, EventKind)> {
    let id = v.get("id")?.as_str().filter(|s| !s.trim().is_empty())?;
    let event_type = v.get("type")?.as_str()?;
    let psp_ref = || {
        v.pointer("/data/object/id")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let kind = match event_type {
        "payment.authorized" => EventKind::Authorized {
            psp_ref: psp_ref()?,
        },
        "payment.failed" => EventKind::Failed {
            psp_ref: psp_ref()?,
        },
        "payment.voided" => EventKind::Canceled {
            psp_ref: psp_ref()?,
        },
        _ => EventKind::Other,
    };
    Some((id.to_string(), kind))
}

/// A valid-looking mock PSP event.
fn event() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("payment.authorized".to_string()),
        Just("payment.failed".to_string()),
        Just("payment.voided".to_string()),
        Just("payment.captured".to_string()),
        fuzz::short_text(),
    ];
    (kind, "[a-z0-9_]{0,12}", "[a-z0-9_ ]{0,12}").prop_flat_map(|(kind, id, psp_ref)| {
        let base = json!({
            "id": format!("evt_{id}"),
            "type": kind,
            "created": NOW,
            "data": { "object": {
                "id": psp_ref, "status": "authorized", "amount": 1000,
                "authorized_amount": 1000, "currency": "SEK",
                "cart_id": "0199a9b6-8608-7360-b98b-d2f9adeb2848",
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
        let want = serde_json::from_slice::<Value>(&body).ok().and_then(|v| expected(&v));
        match (result, want) {
            (Ok(got), Some(want)) => prop_assert_eq!(got, want),
            (Err(WebhookError::Malformed(_)), None) => {}
            (got, want) => prop_assert!(false, "got {:?}, expected {:?}", got, want),
        }
    }

    #[test]
    fn signed_events_with_odd_fields_become_exactly_the_event_the_rules_say(v in event()) {
        let body = serde_json::to_vec(&v).unwrap();
        let header = signed(&body);
        let result = deliver(&provider(), Some(header.as_bytes()), &body);
        match (result, expected(&v)) {
            (Ok(got), Some(want)) => prop_assert_eq!(got, want),
            (Err(WebhookError::Malformed(m)), None) => prop_assert!(!m.is_empty()),
            (got, want) => prop_assert!(false, "{}: got {:?}, expected {:?}", v, got, want),
        }
    }
}
