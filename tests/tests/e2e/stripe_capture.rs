//! Stripe capture end to end through the real binary, in the embedded default: the shop
//! ships, Hantera's `capturePayments` creates a pending capture, the sandbox forwards
//! `OnPaymentCapture` to the gateway, and the capture job captures the PaymentIntent at
//! the fake Stripe once, with one idempotency key across the retries of a dropped answer.
//!
//! Kept apart from `stripe.rs` because it rests on the jobs machinery (hooks, capture job)
//! as well as on the Stripe provider.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tests::*;

#[tokio::test]
async fn capture_payments_captures_the_payment_intent_once_with_one_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path())
        // Configured from the environment, the embedded default is asked for explicitly.
        .env("PSP_SANDBOX__ENABLED", "true")
        .env("PSP_SERVER__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    let gateway = spawn_with(cmd, "psp-gateway listening on ");
    let url = gateway.url.clone();
    let stripe = format!("{url}/fakes/stripe");

    let product = a_product(&url).await;
    let (cart_id, _) = create_cart(&url, &[(&product, 1)]).await;
    let checkout: Value = http()
        .post(format!(
            "{url}/ingress/commerce/carts/{cart_id}/payment/stripe"
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pi = checkout["paymentIntentId"]
        .as_str()
        .expect("paymentIntentId")
        .to_string();
    let paid = http()
        .post(format!("{stripe}/v1/_test/payment_intents/{pi}/confirm"))
        .bearer_auth("sk_test_sandbox")
        .json(&json!({ "payment_method": "pm_card_visa" }))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success());
    let done = wait_completed(&url, &cart_id).await;
    let order = done["orderNumber"].as_str().expect("an order").to_string();

    // The first answer to the capture is lost after Stripe acted; the adapter retries with
    // the same key and Stripe replays.
    let faults = http()
        .put(format!("{stripe}/v1/_test/faults"))
        .bearer_auth("sk_test_sandbox")
        .json(&json!({ "drop_after_next": 1 }))
        .send()
        .await
        .unwrap();
    assert!(faults.status().is_success());
    let shipped = http()
        .post(format!("{url}/sandbox/orders/{order}/capture-payments"))
        .send()
        .await
        .unwrap();
    assert!(
        shipped.status().is_success(),
        "capturePayments: {}",
        shipped.status()
    );

    let intent = wait_for(
        "the PaymentIntent to be captured",
        Duration::from_secs(30),
        || async {
            let v: Value = http()
                .get(format!("{stripe}/v1/_test/payment_intents"))
                .bearer_auth("sk_test_sandbox")
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["data"]
                .as_array()?
                .iter()
                .find(|p| p["id"] == pi.as_str() && p["status"] == "succeeded")
                .cloned()
        },
    )
    .await;
    assert_eq!(intent["amount_received"], intent["amount"]);
    let captures = intent["captures"].as_array().unwrap().clone();
    assert_eq!(captures.len(), 1, "captured once: {captures:?}");

    // The job finishes when Hantera's capture is covered by the charge: by then the
    // dropped answer has been retried.
    wait_for(
        "Hantera's capture to be completed",
        Duration::from_secs(30),
        || async {
            let payments = payments_for(&url, &pi).await;
            let state = payments.first()?["captures"].as_array()?.first()?["state"].clone();
            (state == "completed").then_some(())
        },
    )
    .await;

    let requests: Value = http()
        .get(format!("{stripe}/v1/_test/requests"))
        .bearer_auth("sk_test_sandbox")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let capture_path = format!("/v1/payment_intents/{pi}/capture");
    let calls: Vec<&Value> = requests["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == capture_path.as_str())
        .collect();
    assert!(
        calls.len() >= 2,
        "the dropped answer was retried: {calls:?}"
    );
    let keys: std::collections::BTreeSet<&str> = calls
        .iter()
        .filter_map(|r| r["idempotency_key"].as_str())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one idempotency key across retries: {keys:?}"
    );
    assert_eq!(
        captures[0]["idempotency_key"].as_str(),
        keys.first().copied()
    );
}
