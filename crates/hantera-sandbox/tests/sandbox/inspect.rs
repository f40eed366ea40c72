use reqwest::StatusCode;
use serde_json::json;

use crate::common::{error_code, Harness};

#[tokio::test]
async fn the_journal_records_every_batch_in_arrival_order_with_its_outcome() {
    let h = Harness::start().await;
    let token = h.token().await;
    let payment = "0199a9b6-8608-7360-b98b-d2f9adeb2848";
    let cart = h.new_cart("default").await;
    h.create_payment(&token, payment, "p-1", json!(1)).await;
    h.create_payment(&token, payment, "p-1", json!(1)).await;
    h.actor(
        &token,
        &format!("ticket/{cart}"),
        json!([{"type": "applyCommands", "body": {"commands": [
                   {"type": "createRelation", "relationKey": "payments", "nodeId": payment}]}},
               {"type": "complete"}]),
    )
    .await;

    let (status, journal) = h.get("/sandbox/journal").await;
    assert_eq!(status, StatusCode::OK);
    let summary: Vec<_> = journal
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            json!([
                r["seq"],
                r["actorType"],
                r["actorId"],
                r["messageTypes"],
                r["applied"],
                r["errorCode"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!([1, "payment", payment, ["create"], true, null]),
            json!([2, "payment", payment, ["create"], false, "ALREADY_EXISTS"]),
            json!([3, "ticket", cart, ["applyCommands", "complete"], true, null]),
        ]
    );
}

#[tokio::test]
async fn sandbox_payments_lists_payments_with_the_carts_linked_to_them() {
    let h = Harness::start().await;
    let token = h.token().await;
    let payment = "0199a9b6-8608-7360-b98b-d2f9adeb2848";
    let cart = h.new_cart("default").await;
    h.create_payment(&token, payment, "p-1", json!(1)).await;
    h.actor(
        &token,
        &format!("ticket/{cart}"),
        json!([{"type": "applyCommands", "body": {"commands": [
                   {"type": "createRelation", "relationKey": "payments", "nodeId": payment}]}},
               {"type": "complete"}]),
    )
    .await;
    let (_, payments) = h.get("/sandbox/payments").await;
    let listed = &payments[0];
    assert_eq!(listed["paymentId"], payment);
    assert_eq!(listed["authorizations"][0]["authorizationNumber"], "p-1");
    assert_eq!(listed["captures"], json!([]));
    assert_eq!(listed["journalEntries"], json!([]));
    assert_eq!(listed["relations"][0]["ticketId"], cart.as_str());
    assert_eq!(listed["relations"][0]["orderNumber"], "O1001");
}

#[tokio::test]
async fn sandbox_products_lists_the_seeded_catalog_with_prices_per_currency() {
    let h = Harness::start().await;
    let (status, products) = h.get("/sandbox/products").await;
    assert_eq!(status, StatusCode::OK);
    let products = products.as_array().expect("an array");
    assert!(products.len() >= 6);
    let shirt = products
        .iter()
        .find(|p| p["productNumber"] == "TSHIRT-001")
        .expect("the T-shirt");
    assert_eq!(shirt["prices"]["SEK"].to_string(), "99.90");
    assert_eq!(shirt["prices"]["KWD"].to_string(), "3.250");
    assert!(shirt["image"]
        .as_str()
        .is_some_and(|i| i.starts_with("https://")));
}

#[tokio::test]
async fn sandbox_carts_answers_404_for_an_unknown_cart() {
    let h = Harness::start().await;
    let (status, body) = h
        .get("/sandbox/carts/0199a9b6-8608-7360-b98b-d2f9adeb2848")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn a_reset_forgets_carts_payments_and_the_journal_but_keeps_tokens_valid() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "MUG-002", 1).await;
    h.create_payment(
        &token,
        "0199a9b6-8608-7360-b98b-d2f9adeb2848",
        "p-1",
        json!(1),
    )
    .await;
    h.set_faults(hantera_sandbox::Faults {
        latency_ms: 1,
        ..Default::default()
    });

    let (status, answer) = h.post("/sandbox/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"reset": true}));
    let (status, _) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h.get("/sandbox/payments").await.1, json!([]));
    assert_eq!(h.get("/sandbox/journal").await.1, json!([]));
    assert_eq!(h.get("/sandbox/faults").await.1["latencyMs"], 0);
    // Numbering starts again, and the old token still works.
    let cart = h.new_cart("default").await;
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    assert_eq!(rendered["cartNumber"], "C1001");
    let (status, _) = h
        .create_payment(
            &token,
            "0199a9b6-8608-7360-b98b-d2f9adeb2848",
            "p-1",
            json!(1),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_cart_inspection_shows_relations_linked_payments_and_the_order() {
    let h = Harness::start().await;
    let token = h.token().await;
    let payment = "0199a9b6-8608-7360-b98b-d2f9adeb2848";
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "MUG-002", 1).await;
    h.create_payment(&token, payment, "p-1", json!(198)).await;
    h.actor(
        &token,
        &format!("ticket/{cart}"),
        json!([{"type": "applyCommands", "body": {"commands": [
                   {"type": "createRelation", "relationKey": "payments", "nodeId": payment}]}},
               {"type": "complete"}]),
    )
    .await;
    let (status, inspected) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inspected["cart"]["cartState"], "completed");
    assert_eq!(inspected["relations"][0]["nodeId"], payment);
    assert_eq!(inspected["payments"][0]["externalReference"], "p-1");
    assert_eq!(inspected["order"]["orderNumber"], "O1001");
    assert_eq!(inspected["order"]["orderState"], "open");
    assert_eq!(inspected["order"]["captures"], json!([]));
}
