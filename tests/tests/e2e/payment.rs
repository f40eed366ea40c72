//! A cart paid end to end through the real binary: sandbox Hantera and mock PSP in one
//! process (`psp-gateway sandbox`), the gateway in another.

use std::time::Duration;

use serde_json::{json, Value};
use tests::*;

struct World {
    sandbox: Proc,
    files: GatewayFiles,
    gateway: Proc,
}

fn world(extra: &str) -> World {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, extra);
    let gateway = files.start(&[]);
    World {
        sandbox,
        files,
        gateway,
    }
}

fn completes_in(journal: &[Value], cart_id: &str) -> Vec<Value> {
    journal
        .iter()
        .filter(|e| e["actorType"] == "ticket" && e["actorId"] == cart_id && e["applied"] == true)
        .filter(|e| {
            e["messageTypes"]
                .as_array()
                .is_some_and(|m| m.iter().any(|t| t == "complete"))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_approved_mock_payment_completes_the_cart_with_one_linked_payment() {
    let w = world("");
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, cart) = create_cart(&w.sandbox.url, &[(&product, 2)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;
    approve(&w.sandbox.url, &psp_ref, json!({})).await;

    let done = wait_completed(&w.sandbox.url, &cart_id).await;
    assert!(
        done["orderNumber"].is_string(),
        "an order was created: {done}"
    );

    let payments = payments_for(&w.sandbox.url, &psp_ref).await;
    assert_eq!(payments.len(), 1, "exactly one payment: {payments:?}");
    let p = &payments[0];
    assert_eq!(p["providerKey"], "mock");
    assert_eq!(p["currencyCode"], cart["currencyCode"]);
    assert!(
        p["paymentNumber"].as_str().unwrap().starts_with(PREFIX),
        "{p}"
    );
    let auths = p["authorizations"].as_array().unwrap();
    assert_eq!(auths.len(), 1);
    assert_eq!(auths[0]["authorizationState"], "successful");
    assert_eq!(
        auths[0]["amount"], cart["orderTotal"],
        "authorized exactly the order total"
    );

    let detail = get_json(&format!("{}/sandbox/carts/{cart_id}", w.sandbox.url)).await;
    let relations = detail["relations"].to_string();
    assert!(
        relations.contains(p["paymentId"].as_str().unwrap()),
        "the payment is related to the cart: {detail}"
    );

    // The payment was created before the cart was completed.
    let journal = journal(&w.sandbox.url).await;
    let created = journal
        .iter()
        .find(|e| e["actorType"] == "payment" && e["applied"] == true)
        .expect("a payment create in the journal");
    let completes = completes_in(&journal, &cart_id);
    assert_eq!(completes.len(), 1, "one completion: {journal:?}");
    assert!(created["seq"].as_i64() < completes[0]["seq"].as_i64());
}

#[tokio::test]
async fn twenty_concurrent_webhook_deliveries_and_a_racing_confirm_complete_once() {
    let w = world("");
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;
    // The fake sends no webhook; the test delivers the same event 20 times itself.
    let payment = approve(&w.sandbox.url, &psp_ref, json!({ "webhook": "skip" })).await;
    let body = mock_event("mevt_race_0001", "payment.authorized", &payment);
    let header = mock_signature(MOCK_SECRET, &body);

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (url, header, body) = (w.gateway.url.clone(), header.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            post_webhook(&url, &header, body).await.status()
        }));
    }
    let confirm_url = format!(
        "{}/ingress/commerce/carts/{cart_id}/payment/mock/confirm",
        w.gateway.url
    );
    let confirm = tokio::spawn(async move { http().post(confirm_url).send().await.unwrap() });
    for t in tasks {
        assert!(t.await.unwrap().is_success());
    }
    let confirm = confirm.await.unwrap();
    assert!(
        confirm.status().is_success(),
        "confirm: {}",
        confirm.status()
    );
    let answer: Value = confirm.json().await.unwrap();
    assert_eq!(answer["status"], "completed");

    wait_completed(&w.sandbox.url, &cart_id).await;
    // Let the worker drain the recorded event, then count.
    wait_for(
        "the webhook job to finish",
        Duration::from_secs(20),
        || async {
            let m = http()
                .get(format!("{}/metrics", w.gateway.url))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            m.contains(r#"psp_gateway_jobs_total{kind="complete",result="succeeded"} 1"#)
                .then_some(())
        },
    )
    .await;
    assert_eq!(payments_for(&w.sandbox.url, &psp_ref).await.len(), 1);
    assert_eq!(
        completes_in(&journal(&w.sandbox.url).await, &cart_id).len(),
        1
    );
    assert_eq!(
        w.files.count("webhook_inbox").await,
        1,
        "one event recorded"
    );
}

#[tokio::test]
async fn an_authorized_amount_different_from_the_cart_total_is_not_completed() {
    let w = world("");
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;
    approve(&w.sandbox.url, &psp_ref, json!({ "amount_override": 100 })).await;

    let failed = wait_for(
        "the mismatch to be recorded",
        Duration::from_secs(20),
        || async {
            let v: Value = http()
                .get(format!("{}/admin/failed", w.gateway.url))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let c = v["completions"]
                .as_array()?
                .iter()
                .find(|c| c["pspRef"] == psp_ref.as_str())?
                .clone();
            Some(c)
        },
    )
    .await;
    assert_eq!(failed["state"], "needs_attention");
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("authorized 1.00 SEK"), "{reason}");
    assert_eq!(cart(&w.sandbox.url, &cart_id).await["cartState"], "open");
    assert!(
        payments_for(&w.sandbox.url, &psp_ref).await.is_empty(),
        "no payment was created"
    );

    let confirm = http()
        .post(format!(
            "{}/ingress/commerce/carts/{cart_id}/payment/mock/confirm",
            w.gateway.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 409);
    let body: Value = confirm.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "PAYMENT_NEEDS_ATTENTION");
}

#[tokio::test]
async fn the_same_cart_checked_out_twice_gets_the_same_session() {
    let w = world("");
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let first = checkout(&w.gateway.url, &cart_id).await;
    let second = checkout(&w.gateway.url, &cart_id).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn a_cart_that_changed_before_payment_updates_the_session_amount() {
    let w = world("");
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let first = checkout(&w.gateway.url, &cart_id).await;
    let resp = http()
        .post(format!(
            "{}/ingress/commerce/carts/{cart_id}/add-item",
            w.sandbox.url
        ))
        .json(&json!({ "productNumber": product, "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let second = checkout(&w.gateway.url, &cart_id).await;
    assert_eq!(first, second, "the session is reused");
    approve(&w.sandbox.url, &first, json!({})).await;
    let done = wait_completed(&w.sandbox.url, &cart_id).await;
    let p = &payments_for(&w.sandbox.url, &first).await[0];
    assert_eq!(p["authorizations"][0]["amount"], done["orderTotal"]);
}

#[tokio::test]
async fn a_declined_payment_leaves_the_cart_open_and_a_new_checkout_starts_over() {
    let w = world("");
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let first = checkout(&w.gateway.url, &cart_id).await;
    approve(
        &w.sandbox.url,
        &first,
        json!({ "card": "4000000000000002" }),
    )
    .await;
    // The failure webhook closes the session; a new checkout then gets a new payment.
    let second = wait_for(
        "a new session after the decline",
        Duration::from_secs(20),
        || async {
            let id = checkout(&w.gateway.url, &cart_id).await;
            (id != first).then_some(id)
        },
    )
    .await;
    assert_eq!(cart(&w.sandbox.url, &cart_id).await["cartState"], "open");
    approve(&w.sandbox.url, &second, json!({})).await;
    wait_completed(&w.sandbox.url, &cart_id).await;
}
