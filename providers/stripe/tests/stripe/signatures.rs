//! Webhook signatures against Stripe's official Python library.
//!
//! `tests/vectors/webhook_signatures.json` was generated once by `tests/vectors/generate.py`
//! with `stripe==16.1.0` (`WebhookSignature.generate_signature_header` for the headers,
//! `verify_header` with the default 300 s tolerance for the verdicts) and is committed, so
//! these tests need no Python. Every header must verify through the adapter exactly when
//! stripe-python accepts it, and every header the gateway signs must equal stripe-python's.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use psp_core::signature::sign_header;
use psp_core::{Provider, Secret, VerifyError, WebhookDelivery, WebhookError};
use serde::Deserialize;
use serde_json::json;
use stripe::{StripeProvider, SIGNATURE_HEADER};

#[derive(Debug, Deserialize)]
struct Vectors {
    generator: String,
    tolerance: u64,
    signatures: Vec<Signature>,
    verifications: Vec<Verification>,
}

#[derive(Debug, Deserialize)]
struct Signature {
    payload_name: String,
    payload: String,
    secret: String,
    timestamp: i64,
    header: String,
}

#[derive(Debug, Deserialize)]
struct Verification {
    name: String,
    payload: String,
    header: String,
    secrets: Vec<String>,
    now: u64,
    accepted: bool,
    kind: Option<String>,
}

fn vectors() -> Vectors {
    let text = include_str!("../vectors/webhook_signatures.json");
    serde_json::from_str(text).expect("the committed vectors parse")
}

fn adapter(secrets: &[String]) -> StripeProvider {
    StripeProvider::from_config(&json!({
        "secret_key": "sk_test_vectors",
        "webhook_secrets": secrets,
        "api_base": "http://127.0.0.1:9",
    }))
    .expect("the adapter accepts the vector secrets")
}

async fn verify(
    provider: &StripeProvider,
    header: &str,
    body: &[u8],
    now: u64,
) -> Result<(), WebhookError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(header).expect("an ASCII header"),
    );
    let delivery = WebhookDelivery {
        headers: &headers,
        body,
        query: None,
        now: UNIX_EPOCH + Duration::from_secs(now),
    };
    match provider.verify_webhook(&delivery).await {
        Ok(_) => Ok(()),
        // The signature held; only the body is not an event the adapter reads (`{}`).
        Err(WebhookError::Malformed(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

#[test]
fn the_vectors_were_made_by_stripe_python_with_stripes_default_tolerance() {
    let v = vectors();
    assert!(
        v.generator.starts_with("stripe-python 16."),
        "{}",
        v.generator
    );
    assert_eq!(v.tolerance, 300);
    assert!(v.signatures.len() >= 20 && v.verifications.len() >= 15);
}

#[test]
fn the_gateway_signs_exactly_as_stripe_python_does() {
    for s in vectors().signatures {
        let ours = sign_header(&Secret::new(&s.secret), s.timestamp, s.payload.as_bytes());
        assert_eq!(
            ours, s.header,
            "signing {} with {} at {}",
            s.payload_name, s.secret, s.timestamp
        );
    }
}

#[tokio::test]
async fn every_header_stripe_python_generates_verifies_through_the_adapter() {
    for s in vectors().signatures {
        let provider = adapter(std::slice::from_ref(&s.secret));
        let now = u64::try_from(s.timestamp).expect("a positive timestamp") + 1;
        verify(&provider, &s.header, s.payload.as_bytes(), now)
            .await
            .unwrap_or_else(|e| panic!("{} signed with {}: {e}", s.payload_name, s.secret));
    }
}

#[tokio::test]
async fn the_adapter_accepts_and_refuses_exactly_what_stripe_python_does() {
    for case in vectors().verifications {
        let provider = adapter(&case.secrets);
        let result = verify(&provider, &case.header, case.payload.as_bytes(), case.now).await;
        match (case.accepted, &result) {
            (true, Ok(())) => {}
            (false, Err(WebhookError::Signature(e))) => {
                let expected = match case.kind.as_deref() {
                    Some("stale") => VerifyError::Stale,
                    Some("no_match") => VerifyError::NoMatch,
                    Some("malformed") => VerifyError::MalformedHeader,
                    Some("missing") => VerifyError::MissingHeader,
                    other => panic!("{}: unexpected verdict kind {other:?}", case.name),
                };
                assert_eq!(e, &expected, "{}", case.name);
            }
            _ => panic!(
                "{}: stripe-python says accepted={}, the adapter says {result:?}",
                case.name, case.accepted
            ),
        }
    }
}

#[tokio::test]
async fn the_vector_published_in_the_stripe_brief_verifies_with_extra_v1_and_v0() {
    let payload = r#"{"id":"evt_test_webhook","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":false,"data":{"object":{"id":"pi_123","object":"payment_intent","amount":2000,"currency":"sek","status":"succeeded","metadata":{"order_id":"ord_1"}}}}"#;
    let good = "4ab0c3c5ecce87d571d759a8ddea2b9522d1113b3d62e7b3396a4ac6473db61b";
    let provider = adapter(&["whsec_test_secret".to_string()]);
    let header = format!("t=1700000000,v1=deadbeef,v1={good},v0=abc");
    verify(&provider, &header, payload.as_bytes(), 1_700_000_000)
        .await
        .expect("one good v1 among others verifies");
    let err = verify(&provider, &header, payload.as_bytes(), 1_700_000_301)
        .await
        .expect_err("past the tolerance");
    assert!(matches!(err, WebhookError::Signature(VerifyError::Stale)));
    let v0_only = format!("t=1700000000,v0={good}");
    assert!(
        verify(&provider, &v0_only, payload.as_bytes(), 1_700_000_000)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_delivery_from_the_fake_stripe_verifies_and_carries_a_test_mode_v0() {
    let (url, inbox) = common::receiver().await;
    let fake = common::start_fake(Some(url)).await;
    let provider = common::provider(&fake.base, json!({}));
    let cart = uuid::Uuid::new_v4();
    let created = common::http()
        .post(format!("{}/v1/payment_intents", fake.base))
        .bearer_auth(common::SECRET_KEY)
        .form(&[
            ("amount", "1000"),
            ("currency", "sek"),
            ("capture_method", "manual"),
            ("metadata[gateway]", "psp-gateway"),
            ("metadata[cart_id]", &cart.to_string()),
        ])
        .send()
        .await
        .expect("create");
    let pi: serde_json::Value = created.json().await.expect("json");
    let id = pi["id"].as_str().expect("id").to_string();
    fake.fake
        .confirm(&id, stripe::fake::PM_VISA, true)
        .expect("confirm");
    let deliveries = common::eventually("two deliveries (created, capturable)", || async {
        let got = inbox.received.lock().clone();
        (got.len() >= 2).then_some(got)
    })
    .await;
    for (headers, body) in deliveries {
        let header = headers[SIGNATURE_HEADER].to_str().expect("ASCII");
        assert!(
            header.contains(",v1=") && header.contains(",v0="),
            "{header}"
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        verify(&provider, header, &body, now)
            .await
            .unwrap_or_else(|e| panic!("a delivery from the fake must verify: {e}"));
    }
}
