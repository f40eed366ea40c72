//! The hosted page, the customer's choice, and the signed webhooks that follow it.

use crate::common;

use common::{error_code, Harness};
use mock::fake::{DeliveryState, PaymentStatus};
use psp_core::{EventKind, Provider};
use reqwest::Method;
use serde_json::{json, Value};

async fn pending(h: &Harness, amount: i64) -> String {
    h.create(amount).await["id"].as_str().unwrap().to_string()
}

async fn submit(h: &Harness, id: &str, action: &str, form: &[(&str, &str)]) -> reqwest::Response {
    h.http
        .post(h.url(&format!("/pay/{id}/{action}")))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_hosted_page_shows_the_merchant_the_amount_the_test_card_and_both_buttons() {
    let h = Harness::start().await;
    let p = h.create(12345).await;
    let resp = h
        .http
        .get(p["hosted_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Mock PSP"));
    assert!(html.contains("123.45 SEK"));
    assert!(html.contains("4242 4242 4242 4242"));
    assert!(html.contains(">Approve</button>") && html.contains(">Decline</button>"));
    assert!(
        !html.contains("<link") && !html.contains("<script src"),
        "no external assets"
    );

    let missing = h.http.get(h.url("/pay/mpay_missing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn approving_by_form_redirects_to_the_return_url_with_the_payment_id_and_status() {
    let h = Harness::start().await;
    let id = pending(&h, 1000).await;
    let resp = submit(&h, &id, "approve", &[("card", "4242 4242 4242 4242")]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        format!("https://shop.example/return?order=42&payment_id={id}&status=authorized").as_str()
    );
    let p = h.fake.payment(&id).unwrap();
    assert_eq!(p.status, PaymentStatus::Authorized);
    assert_eq!(p.authorized_amount, 1000);
}

#[tokio::test]
async fn an_approval_sends_a_signed_webhook_that_the_adapter_verifies() {
    let h = Harness::start().await;
    let provider = h.provider(json!({}));
    let id = pending(&h, 1000).await;
    submit(&h, &id, "approve", &[]).await;

    let got = h.receiver.wait_for(&id, "payment.authorized").await;
    let signature = got.headers["mock-signature"].to_str().unwrap();
    assert!(
        signature.starts_with("t=") && signature.contains(",v1="),
        "{signature}"
    );
    let event = got.json();
    assert!(event["id"].as_str().unwrap().starts_with("mevt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["data"]["object"]["status"], "authorized");
    assert_eq!(event["data"]["object"]["authorized_amount"], 1000);

    let verified = provider.verify_webhook(&got.delivery()).await.unwrap();
    assert_eq!(verified.event_id(), event["id"].as_str().unwrap());
    assert_eq!(verified.event_type(), "payment.authorized");
    assert_eq!(
        verified.kind(),
        &EventKind::Authorized {
            psp_ref: id.clone()
        }
    );
    common::wait_until("the delivery to be recorded", || {
        h.fake
            .events()
            .into_iter()
            .find(|e| e.payment_id == id && e.state == DeliveryState::Delivered)
    })
    .await;
}

#[tokio::test]
async fn the_decline_button_fails_the_payment_and_sends_a_failed_webhook() {
    let h = Harness::start().await;
    let provider = h.provider(json!({}));
    let id = pending(&h, 1000).await;
    // The Decline button submits the same form as Approve, card number included.
    let resp = submit(
        &h,
        &id,
        "decline",
        &[("card", "4242 4242 4242 4242"), ("amount_override", "")],
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("&status=failed"));
    let p = h.fake.payment(&id).unwrap();
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(p.failure_reason.as_deref(), Some("declined_by_customer"));
    let got = h.receiver.wait_for(&id, "payment.failed").await;
    let verified = provider.verify_webhook(&got.delivery()).await.unwrap();
    assert_eq!(verified.kind(), &EventKind::Failed { psp_ref: id });
}

#[tokio::test]
async fn the_decline_test_card_fails_the_payment_with_card_declined() {
    let h = Harness::start().await;
    let id = pending(&h, 1000).await;
    let resp = submit(&h, &id, "approve", &[("card", "4000 0000 0000 0002")]).await;
    assert_eq!(resp.status(), 303);
    let p = h.fake.payment(&id).unwrap();
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(p.failure_reason.as_deref(), Some("card_declined"));
    assert_eq!(p.authorized_amount, 0);
    let got = h.receiver.wait_for(&id, "payment.failed").await;
    assert_eq!(
        got.json()["data"]["object"]["failure_reason"],
        "card_declined"
    );
}

#[tokio::test]
async fn amount_override_authorizes_another_amount_than_asked() {
    let h = Harness::start().await;
    let id = pending(&h, 1000).await;
    submit(&h, &id, "approve", &[("amount_override", "999")]).await;
    let p = h.fake.payment(&id).unwrap();
    assert_eq!(p.status, PaymentStatus::Authorized);
    assert_eq!((p.amount, p.authorized_amount), (1000, 999));
    let got = h.receiver.wait_for(&id, "payment.authorized").await;
    assert_eq!(got.json()["data"]["object"]["authorized_amount"], 999);

    let other = pending(&h, 1000).await;
    let resp = h
        .http
        .post(h.url(&format!("/pay/{other}/approve")))
        .json(&json!({"amount_override": 1001}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "a JSON body is accepted too");
    assert_eq!(h.fake.payment(&other).unwrap().authorized_amount, 1001);
}

#[tokio::test]
async fn webhook_skip_changes_the_state_but_sends_nothing() {
    let h = Harness::start().await;
    let skipped = pending(&h, 1000).await;
    let resp = submit(&h, &skipped, "approve", &[("webhook", "skip")]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        h.fake.payment(&skipped).unwrap().status,
        PaymentStatus::Authorized
    );
    assert!(h.fake.events().is_empty(), "no event was even made");

    // A later payment's webhook arriving shows the receiver is live; the skipped one
    // still has nothing.
    let later = pending(&h, 1000).await;
    submit(&h, &later, "approve", &[]).await;
    h.receiver.wait_for(&later, "payment.authorized").await;
    assert!(h.receiver.for_payment(&skipped).is_empty());
}

#[tokio::test]
async fn only_a_pending_payment_can_be_approved_or_declined() {
    let h = Harness::start().await;
    let id = pending(&h, 1000).await;
    submit(&h, &id, "approve", &[]).await;
    let again = submit(&h, &id, "decline", &[]).await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("authorized"));
    let json = h
        .http
        .post(h.url(&format!("/pay/{id}/approve")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 409);
    assert_eq!(error_code(json).await, "invalid_state");
    assert_eq!(
        h.fake.payment(&id).unwrap().status,
        PaymentStatus::Authorized
    );
}

#[tokio::test]
async fn an_unknown_card_or_field_leaves_the_payment_pending() {
    let h = Harness::start().await;
    let id = pending(&h, 1000).await;
    let resp = submit(&h, &id, "approve", &[("card", "1234 5678")]).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("not a test card"));
    let resp = submit(&h, &id, "approve", &[("amountOverride", "5")]).await;
    assert_eq!(resp.status(), 400);
    let resp = submit(&h, &id, "approve", &[("amount_override", "-5")]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(h.fake.payment(&id).unwrap().status, PaymentStatus::Pending);
}

#[tokio::test]
async fn without_a_return_url_the_customer_sees_a_result_page() {
    let h = Harness::start().await;
    let mut body = h.create_body(1000);
    body.as_object_mut().unwrap().remove("return_url");
    let p: Value = h
        .post("/v1/payments", "k", body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(p["return_url"].is_null());
    let id = p["id"].as_str().unwrap();
    let resp = submit(&h, id, "approve", &[]).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("authorized") && html.contains("10.00 SEK"),
        "{html}"
    );
}

#[tokio::test]
async fn the_test_approve_endpoint_answers_with_the_payment_in_json() {
    let h = Harness::start().await;
    let id = pending(&h, 1000).await;
    let resp = h
        .api(Method::POST, &format!("/v1/_test/payments/{id}/approve"))
        .json(&json!({"card": "4242424242424242", "webhook": "skip"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["status"], "authorized");
    assert!(h.fake.events().is_empty());
    let again = h
        .api(Method::POST, &format!("/v1/_test/payments/{id}/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let unauthenticated = h
        .http
        .post(h.url(&format!("/v1/_test/payments/{id}/decline")))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn a_refused_webhook_is_retried_until_the_receiver_accepts_it() {
    let h = Harness::start().await;
    h.receiver.refuse_next(2);
    let id = pending(&h, 1000).await;
    h.fake.approve(&id, Default::default()).unwrap();
    let record = common::wait_until("the third attempt to be accepted", || {
        h.fake
            .events()
            .into_iter()
            .find(|e| e.state == DeliveryState::Delivered)
    })
    .await;
    assert_eq!(record.attempts, 3);
    let got = h.receiver.for_payment(&id);
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every attempt sends the same bytes"
    );

    let listed: Value = h
        .api(Method::GET, "/v1/_test/events")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["state"], "delivered");
}
