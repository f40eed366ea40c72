//! The fake PSP's JSON API, driven over real HTTP.

use crate::common;

use common::{error_code, Harness};
use mock::fake::{Faults, PaymentStatus};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn a_created_payment_is_pending_with_a_hosted_url_under_the_public_base() {
    let h = Harness::start().await;
    let p = h.create(12345).await;
    let id = p["id"].as_str().unwrap();
    assert!(id.starts_with("mpay_") && id.len() == 5 + 32, "{id}");
    assert_eq!(p["object"], "payment");
    assert_eq!(p["status"], "pending");
    assert_eq!(p["amount"], 12345);
    assert_eq!(p["currency"], "SEK");
    assert_eq!(p["authorized_amount"], 0);
    assert_eq!(p["captured_amount"], 0);
    assert!(p["failure_reason"].is_null());
    assert!(p["created"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(p["hosted_url"], format!("{}/pay/{id}", h.base));

    let read: Value = h
        .api(Method::GET, &format!("/v1/payments/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, p);
}

#[tokio::test]
async fn requests_that_a_real_psp_would_refuse_are_refused_and_not_saved() {
    let h = Harness::start().await;
    let valid = h.create_body(100);
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        ("an unknown field", with("metadata", json!({"a": 1}))),
        ("a lower-case currency", with("currency", json!("sek"))),
        ("an unknown currency", with("currency", json!("XYZ"))),
        ("a float amount", with("amount", json!(10.5))),
        ("an amount as text", with("amount", json!("100"))),
        ("a zero amount", with("amount", json!(0))),
        ("a negative amount", with("amount", json!(-100))),
        (
            "a cart id that is not a UUID",
            with("cart_id", json!("cart-1")),
        ),
        ("a relative return URL", with("return_url", json!("/back"))),
        ("no webhook URL", without("webhook_url")),
        ("no amount", without("amount")),
    ];
    for (what, body) in cases {
        // The same key every time: a refused request is not saved, so it cannot be replayed.
        let resp = h
            .post("/v1/payments", "same-key", body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{what}");
        assert_eq!(error_code(resp).await, "invalid_request", "{what}");
    }
    let raw = h
        .api(Method::POST, "/v1/payments")
        .header("Idempotency-Key", "same-key")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert!(h.fake.payments().is_empty());

    let resp = h
        .post("/v1/payments", "same-key", valid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        201,
        "the key is still free after refused requests"
    );
}

#[tokio::test]
async fn a_post_without_an_idempotency_key_is_refused() {
    let h = Harness::start().await;
    let resp = h
        .api(Method::POST, "/v1/payments")
        .json(&h.create_body(100))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error_code(resp).await, "idempotency_key_missing");
    assert!(h.fake.payments().is_empty());
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_unauthorized() {
    let h = Harness::start().await;
    let missing = h
        .http
        .get(h.url("/v1/_test/payments"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(error_code(missing).await, "unauthorized");
    let wrong = h
        .http
        .post(h.url("/v1/payments"))
        .bearer_auth("mock_sk_wrong")
        .header("Idempotency-Key", "k")
        .json(&h.create_body(100))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(h.fake.payments().is_empty());
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_saved_answer_without_a_second_payment() {
    let h = Harness::start().await;
    let body = h.create_body(5000);
    let first = h
        .post("/v1/payments", "k-1", body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("Idempotent-Replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let again = h.post("/v1/payments", "k-1", body).send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["Idempotent-Replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(h.fake.payments().len(), 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_an_idempotency_error() {
    let h = Harness::start().await;
    let body = h.create_body(5000);
    let first = h
        .post("/v1/payments", "k-1", body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let mut changed = body;
    changed["amount"] = json!(5001);
    let resp = h.post("/v1/payments", "k-1", changed).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error_code(resp).await, "idempotency_error");
    assert_eq!(h.fake.payments().len(), 1);
}

#[tokio::test]
async fn unknown_payments_and_routes_are_not_found() {
    let h = Harness::start().await;
    let resp = h
        .api(Method::GET, "/v1/payments/mpay_missing")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(resp).await, "not_found");
    let resp = h.api(Method::GET, "/v1/nothing").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(resp).await, "not_found");
}

#[tokio::test]
async fn the_amount_changes_while_pending_and_is_locked_after_approval() {
    let h = Harness::start().await;
    let id = h.create(1000).await["id"].as_str().unwrap().to_string();
    let path = format!("/v1/payments/{id}");
    let resp = h
        .post(&path, "u-1", json!({"amount": 1500}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["amount"], 1500);
    assert_eq!(h.fake.payment(&id).unwrap().amount, 1500);

    h.fake.approve(&id, Default::default()).unwrap();
    let resp = h
        .post(&path, "u-2", json!({"amount": 2000}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert_eq!(error_code(resp).await, "payment_locked");
    assert_eq!(h.fake.payment(&id).unwrap().amount, 1500);
}

#[tokio::test]
async fn a_capture_repeated_with_its_key_returns_the_same_capture_and_captures_once() {
    let h = Harness::start().await;
    let id = h.create(1000).await["id"].as_str().unwrap().to_string();
    h.fake.approve(&id, Default::default()).unwrap();
    let path = format!("/v1/payments/{id}/captures");

    let first = h
        .post(&path, "cap-1", json!({"amount": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert!(first["id"].as_str().unwrap().starts_with("mcap_"));
    assert_eq!(first["payment_id"], id.as_str());
    assert_eq!(first["amount"], 1000);

    let again = h
        .post(&path, "cap-1", json!({"amount": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    assert_eq!(h.fake.captures_of(&id).len(), 1);
    let p = h.fake.payment(&id).unwrap();
    assert_eq!(p.status, PaymentStatus::Captured);
    assert_eq!(p.captured_amount, 1000);
    let calls = h.fake.capture_calls_of(&id);
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.idempotency_key == "cap-1"));
    assert!(!calls[0].replayed && calls[1].replayed);

    let listed: Value = h
        .api(Method::GET, "/v1/_test/payments")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &listed["data"][0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["captures"].as_array().unwrap().len(), 1);
    assert_eq!(entry["capture_calls"][1]["idempotency_key"], "cap-1");
    assert_eq!(entry["webhook_url"], h.receiver.url.as_str());
}

#[tokio::test]
async fn capture_calls_refused_by_an_injected_fault_are_listed_with_their_key() {
    let h = Harness::start().await;
    let id = h.create(1000).await["id"].as_str().unwrap().to_string();
    h.fake
        .approve(&id, mock::fake::ApproveOptions::default())
        .unwrap();
    let path = format!("/v1/payments/{id}/captures");
    h.set_faults(Faults {
        fail_next: 1,
        ..Default::default()
    });
    let refused = h
        .post(&path, "cap-f", json!({"amount": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let done = h
        .post(&path, "cap-f", json!({"amount": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 201);
    let calls = h.fake.capture_calls_of(&id);
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].status, calls[0].fault), (0, Some("fail")));
    assert_eq!((calls[1].status, calls[1].fault), (201, None));
    assert!(calls.iter().all(|c| c.idempotency_key == "cap-f"));
    assert_eq!(h.fake.captures_of(&id).len(), 1);
}

#[tokio::test]
async fn partial_captures_add_up_to_the_authorized_amount_and_no_further() {
    let h = Harness::start().await;
    let id = h.create(1000).await["id"].as_str().unwrap().to_string();
    let path = format!("/v1/payments/{id}/captures");

    let early = h
        .post(&path, "early", json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409, "a pending payment cannot be captured");
    assert_eq!(error_code(early).await, "invalid_state");

    h.fake.approve(&id, Default::default()).unwrap();
    for (key, amount) in [("c1", 300), ("c2", 600)] {
        let resp = h
            .post(&path, key, json!({"amount": amount}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{key}");
    }
    let too_much = h
        .post(&path, "c3", json!({"amount": 101}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_much.status(), 400);
    assert_eq!(error_code(too_much).await, "amount_too_large");
    let rest = h
        .post(&path, "c4", json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 201);
    let done = h
        .post(&path, "c5", json!({"amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 409, "nothing is left to capture");

    assert_eq!(h.fake.captures_of(&id).len(), 3);
    assert_eq!(h.fake.payment(&id).unwrap().captured_amount, 1000);
    let float = h
        .post(&path, "c6", json!({"amount": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(float.status(), 400);
}

#[tokio::test]
async fn a_void_releases_a_payment_once_and_is_refused_after_a_capture() {
    let h = Harness::start().await;
    let id = h.create(1000).await["id"].as_str().unwrap().to_string();
    h.fake.approve(&id, Default::default()).unwrap();
    let path = format!("/v1/payments/{id}/void");
    let resp = h.post(&path, "v-1", json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "voided");
    let replay = h.post(&path, "v-1", json!({})).send().await.unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["Idempotent-Replayed"], "true");
    h.receiver.wait_for(&id, "payment.voided").await;

    let other = h.create(1000).await["id"].as_str().unwrap().to_string();
    h.fake.approve(&other, Default::default()).unwrap();
    let cap = h
        .post(
            &format!("/v1/payments/{other}/captures"),
            "c",
            json!({"amount": 10}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(cap.status(), 201);
    let resp = h
        .post(&format!("/v1/payments/{other}/void"), "v-2", json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert_eq!(error_code(resp).await, "invalid_state");
    let no_key = h
        .api(Method::POST, &format!("/v1/payments/{other}/void"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
}

#[tokio::test]
async fn fail_next_answers_503_without_acting() {
    let h = Harness::start().await;
    let resp = h
        .api(Method::PUT, "/v1/_test/faults")
        .json(&json!({"fail_next": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = h.create_body(100);
    let failed = h
        .post("/v1/payments", "k", body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 503);
    assert_eq!(error_code(failed).await, "unavailable");
    assert!(h.fake.payments().is_empty());
    let ok = h.post("/v1/payments", "k", body).send().await.unwrap();
    assert_eq!(
        ok.status(),
        201,
        "the fault was used up and the key was not saved"
    );
}

#[tokio::test]
async fn hang_next_breaks_the_connection_without_acting() {
    let h = Harness::start().await;
    h.set_faults(Faults {
        hang_next: 1,
        hang_ms: 50,
        ..Faults::default()
    });
    let result = async {
        let resp = h
            .post("/v1/payments", "k", h.create_body(100))
            .send()
            .await?;
        resp.bytes().await
    }
    .await;
    assert!(result.is_err(), "the answer must break off: {result:?}");
    assert!(h.fake.payments().is_empty());
    assert_eq!(h.fake.faults().hang_next, 0);
}

#[tokio::test]
async fn drop_after_next_acts_and_then_breaks_the_answer_so_a_retry_replays() {
    let h = Harness::start().await;
    h.set_faults(Faults {
        drop_after_next: 1,
        ..Faults::default()
    });
    let body = h.create_body(100);
    let result = async {
        let resp = h.post("/v1/payments", "k", body.clone()).send().await?;
        resp.bytes().await
    }
    .await;
    assert!(result.is_err(), "the answer must break off: {result:?}");
    assert_eq!(h.fake.payments().len(), 1, "the call acted");

    let retry = h.post("/v1/payments", "k", body).send().await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["Idempotent-Replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], h.fake.payments()[0].id.as_str());
    assert_eq!(h.fake.payments().len(), 1);
}

#[tokio::test]
async fn fault_settings_are_strict_and_readable() {
    let h = Harness::start().await;
    let typo = h
        .api(Method::PUT, "/v1/_test/faults")
        .json(&json!({"fail_nxt": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(typo.status(), 400);
    h.api(Method::PUT, "/v1/_test/faults")
        .json(&json!({"drop_after_next": 2, "hang_ms": 10}))
        .send()
        .await
        .unwrap();
    let read: Value = h
        .api(Method::GET, "/v1/_test/faults")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        read,
        json!({"fail_next": 0, "hang_next": 0, "hang_ms": 10, "drop_after_next": 2})
    );
    // The test controls themselves are never hit by faults.
    h.api(Method::GET, "/v1/_test/payments")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(h.fake.faults().drop_after_next, 2);
}
