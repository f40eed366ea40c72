use hantera_sandbox::Faults;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, Harness};

const PAYMENT: &str = "0199a9b6-8608-7360-b98b-d2f9adeb2848";

/// Sends a request that must fail in transport, before any answer arrives: that is what
/// a caller sees when a connection drops, and it cannot tell whether the request took
/// effect. (Hyper buffers the answer's head and aborts before flushing it, so not even a
/// status line gets out.)
async fn expect_transport_error(request: reqwest::RequestBuilder) -> reqwest::Error {
    match request.send().await {
        Err(error) => {
            assert!(!error.is_status(), "{error}");
            error
        }
        Ok(response) => panic!("expected a dropped connection, got {}", response.status()),
    }
}

fn create_payment(h: &Harness, token: &str) -> reqwest::RequestBuilder {
    h.http
        .post(h.url(&format!("/resources/actors/payment/{PAYMENT}")))
        .bearer_auth(token)
        .json(&json!([{"type": "create", "body": {"currencyCode": "SEK",
                                                  "externalReference": "faulty"}}]))
}

async fn payment_count(h: &Harness) -> usize {
    let (_, payments) = h.get("/sandbox/payments").await;
    payments.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn error_rate_one_answers_503_service_unavailable_and_changes_nothing() {
    let h = Harness::start().await;
    let token = h.token().await;
    h.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let response = create_payment(&h, &token).send().await.expect("an answer");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
    let (status, _) = h.post("/ingress/commerce/carts", json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    h.set_faults(Faults::default());
    assert_eq!(payment_count(&h).await, 0);
    let (_, journal) = h.get("/sandbox/journal").await;
    assert_eq!(journal, json!([]), "the request never reached the actor");
}

#[tokio::test]
async fn drop_after_rate_one_loses_the_answer_but_applies_the_change() {
    let h = Harness::start().await;
    let token = h.token().await;
    h.set_faults(Faults {
        drop_after_rate: 1.0,
        ..Faults::default()
    });
    expect_transport_error(create_payment(&h, &token)).await;

    h.set_faults(Faults::default());
    assert_eq!(payment_count(&h).await, 1);
    // A retry of the same create now meets the payment it cannot see it made.
    let response = create_payment(&h, &token).send().await.expect("an answer");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "ALREADY_EXISTS");
}

#[tokio::test]
async fn drop_rate_one_loses_the_request_and_applies_nothing() {
    let h = Harness::start().await;
    let token = h.token().await;
    h.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    expect_transport_error(create_payment(&h, &token)).await;
    expect_transport_error(
        h.http
            .post(h.url("/ingress/commerce/carts"))
            .json(&json!({"profileKey": "default"})),
    )
    .await;

    h.set_faults(Faults::default());
    assert_eq!(payment_count(&h).await, 0);
    let (_, journal) = h.get("/sandbox/journal").await;
    assert_eq!(journal, json!([]));
}

#[tokio::test]
async fn sandbox_routes_ignore_faults_so_faults_can_be_read_and_switched_off_over_http() {
    let h = Harness::start().await;
    let (status, body) = h
        .http
        .put(h.url("/sandbox/faults"))
        .json(&json!({"errorRate": 1, "dropRate": 0, "dropAfterRate": 0, "latencyMs": 0}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .expect("PUT faults");
    assert_eq!(status, StatusCode::OK);
    let body: Value = body.json().await.expect("JSON");
    assert_eq!(body["errorRate"], json!(1.0));

    let (status, _) = h.get("/ingress/commerce/cart-profiles").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, faults) = h.get("/sandbox/faults").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(faults["errorRate"], json!(1.0));

    let response = h
        .http
        .put(h.url("/sandbox/faults"))
        .json(&json!({}))
        .send()
        .await
        .expect("PUT faults");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "missing fields mean no fault"
    );
    let (status, _) = h.get("/ingress/commerce/cart-profiles").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_rate_outside_zero_to_one_is_refused() {
    let h = Harness::start().await;
    let response = h
        .http
        .put(h.url("/sandbox/faults"))
        .json(&json!({"errorRate": 50}))
        .send()
        .await
        .expect("PUT faults");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, faults) = h.get("/sandbox/faults").await;
    assert_eq!(faults["errorRate"], json!(0.0));
}
