//! Bad input gets a clear error and loses nothing: each case answers its documented status
//! and code, and neither the gateway's store nor Hantera sees anything.

use serde_json::{json, Value};
use tests::*;

struct World {
    sandbox: Proc,
    files: GatewayFiles,
    gateway: Proc,
}

fn world() -> World {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[]);
    World {
        sandbox,
        files,
        gateway,
    }
}

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("errors are JSON");
    let code = body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    (status, code)
}

fn payment_event() -> Vec<u8> {
    mock_event(
        "mevt_bad_input",
        "payment.authorized",
        &json!({ "id": "mpay_00000000000000000000000000000001", "object": "payment",
                 "status": "authorized", "amount": 100, "currency": "SEK",
                 "cart_id": "0199a9b6-8608-7360-b98b-d2f9adeb2848" }),
    )
}

/// Nothing reached the store or Hantera.
async fn assert_nothing_happened(w: &World, journal_before: usize) {
    assert_eq!(w.files.count("webhook_inbox").await, 0, "nothing recorded");
    assert_eq!(w.files.count("jobs").await, 0, "no work queued");
    assert_eq!(
        journal(&w.sandbox.url).await.len(),
        journal_before,
        "nothing sent to Hantera"
    );
}

#[tokio::test]
async fn a_forged_signature_is_401_and_records_nothing() {
    let w = world();
    let body = payment_event();
    let header = mock_signature("whsec_not_the_secret", &body);
    let (status, code) = error_of(post_webhook(&w.gateway.url, &header, body).await).await;
    assert_eq!((status, code.as_str()), (401, "INVALID_SIGNATURE"));
    let missing = http()
        .post(format!("{}/webhooks/mock", w.gateway.url))
        .body(payment_event())
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await, (401, "INVALID_SIGNATURE".into()));
    assert_nothing_happened(&w, 0).await;
}

#[tokio::test]
async fn a_stale_timestamp_is_401_and_records_nothing() {
    let w = world();
    let body = payment_event();
    let old = psp_core::signature::unix_now() - 3600;
    let header = psp_core::signature::sign_header(&psp_core::Secret::new(MOCK_SECRET), old, &body);
    let (status, code) = error_of(post_webhook(&w.gateway.url, &header, body).await).await;
    assert_eq!((status, code.as_str()), (401, "INVALID_SIGNATURE"));
    assert_nothing_happened(&w, 0).await;
}

#[tokio::test]
async fn signed_malformed_json_is_400_and_records_nothing() {
    let w = world();
    let body = b"{\"id\": \"mevt_1\", \"type\": ".to_vec();
    let header = mock_signature(MOCK_SECRET, &body);
    let (status, code) = error_of(post_webhook(&w.gateway.url, &header, body).await).await;
    assert_eq!((status, code.as_str()), (400, "MALFORMED_PAYLOAD"));
    assert_nothing_happened(&w, 0).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_records_nothing() {
    let w = world();
    let mut body = payment_event();
    body.extend(std::iter::repeat_n(b' ', 70_000));
    let header = mock_signature(MOCK_SECRET, &body);
    let (status, code) = error_of(post_webhook(&w.gateway.url, &header, body).await).await;
    assert_eq!((status, code.as_str()), (413, "PAYLOAD_TOO_LARGE"));
    assert_nothing_happened(&w, 0).await;
}

#[tokio::test]
async fn an_unknown_provider_is_404_for_webhooks_and_checkout() {
    let w = world();
    let resp = http()
        .post(format!("{}/webhooks/paypal", w.gateway.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (404, "UNKNOWN_PROVIDER".into()));
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let resp = http()
        .post(format!(
            "{}/ingress/commerce/carts/{cart_id}/payment/paypal",
            w.gateway.url
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (404, "UNKNOWN_PROVIDER".into()));
    assert_nothing_happened(&w, 0).await;
}

#[tokio::test]
async fn a_cart_id_that_is_no_uuid_or_unknown_is_404() {
    let w = world();
    for cart in ["not-a-uuid", "0199a9b6-8608-7360-b98b-d2f9adeb2848"] {
        let resp = http()
            .post(format!(
                "{}/ingress/commerce/carts/{cart}/payment/mock",
                w.gateway.url
            ))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(resp).await,
            (404, "CART_NOT_FOUND".into()),
            "{cart}"
        );
    }
    assert_eq!(w.files.count("sessions").await, 0);
    assert_nothing_happened(&w, 0).await;
}

#[tokio::test]
async fn malformed_checkout_json_is_400() {
    let w = world();
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let resp = http()
        .post(format!(
            "{}/ingress/commerce/carts/{cart_id}/payment/mock",
            w.gateway.url
        ))
        .header("Content-Type", "application/json")
        .body("{\"returnUrl\":")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (400, "MALFORMED_JSON".into()));
    assert_eq!(w.files.count("sessions").await, 0);
}

#[tokio::test]
async fn a_completed_cart_is_409_and_gets_no_new_session() {
    let w = world();
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;
    approve(&w.sandbox.url, &psp_ref, json!({})).await;
    wait_completed(&w.sandbox.url, &cart_id).await;
    let journal_before = journal(&w.sandbox.url).await.len();
    let resp = http()
        .post(format!(
            "{}/ingress/commerce/carts/{cart_id}/payment/mock",
            w.gateway.url
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (409, "CART_NOT_OPEN".into()));
    assert_eq!(
        journal(&w.sandbox.url).await.len(),
        journal_before,
        "nothing sent to Hantera"
    );
    assert_eq!(w.files.count("sessions").await, 1);
}

#[tokio::test]
async fn a_verified_event_of_a_type_the_gateway_does_not_use_gets_200() {
    let w = world();
    let body = mock_event("mevt_other", "payment.created", &json!({ "id": "mpay_x" }));
    let header = mock_signature(MOCK_SECRET, &body);
    let resp = post_webhook(&w.gateway.url, &header, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        w.files.count("jobs").await,
        0,
        "no work for an event we do not act on"
    );
}

#[tokio::test]
async fn the_admin_api_wants_its_token() {
    let w = world();
    let resp = http()
        .get(format!("{}/admin/failed", w.gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (401, "INVALID_TOKEN".into()));
    let resp = http()
        .get(format!("{}/admin/failed", w.gateway.url))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (401, "INVALID_TOKEN".into()));
    let resp = http()
        .get(format!("{}/admin/failed", w.gateway.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
