//! The order actor: `capturePayments` creates pending captures, and `charge` on the
//! payment covers them.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, exact, number, Harness};

const PAYMENT: &str = "0199a9b6-8608-7360-b98b-0000000000aa";

/// A completed cart paid by [`PAYMENT`] (authorized for `authorized`); answers the
/// cart id, the order id and a token.
async fn paid_order(h: &Harness, authorized: &str) -> (String, String, String) {
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    // 1299.00: free shipping, so the order total is the shoe's price.
    h.add_item(&cart, "SHOE-006", 1).await;
    let (status, body) = h
        .create_payment(&token, PAYMENT, "mock_pay_order", exact(authorized))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = h
        .actor(
            &token,
            &format!("ticket/{cart}"),
            json!([{"type": "applyCommands", "body": {"commands": [
                {"type": "createRelation", "relationKey": "payments", "nodeId": PAYMENT}]}},
                {"type": "complete"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    let order = rendered["orderId"].as_str().expect("orderId").to_owned();
    (cart, order, token)
}

async fn payment(h: &Harness) -> Value {
    let (_, payments) = h.get("/sandbox/payments").await;
    payments[0].clone()
}

#[tokio::test]
async fn capture_payments_creates_a_pending_capture_for_the_order_total() {
    let h = Harness::start().await;
    let (_, order, token) = paid_order(&h, "1299.00").await;
    let (status, answer) = h
        .actor(
            &token,
            &format!("order/{order}"),
            json!([{"type": "capturePayments"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let captures = answer["data"]["capturePayments"]
        .as_array()
        .expect("an array");
    assert_eq!(captures.len(), 1);
    let capture = &captures[0];
    assert_eq!(capture["orderId"], order.as_str());
    assert_eq!(capture["paymentId"], PAYMENT);
    assert!(capture["invoiceId"].is_string());
    assert!(capture["paymentCaptureId"].is_string());
    assert_eq!(number(&capture["amount"]), "1299.00");
    assert_eq!(number(&capture["capturedAmount"]), "0.00");
    assert_eq!(number(&capture["remainingAmount"]), "1299.00");

    let payment = payment(&h).await;
    assert_eq!(payment["captures"][0]["state"], "pending");
    assert_eq!(
        payment["captures"][0]["paymentCaptureId"],
        capture["paymentCaptureId"]
    );

    // Asking again captures nothing more: the whole total is already asked for.
    let (status, answer) = h
        .actor(
            &token,
            &format!("order/{order}"),
            json!([{"type": "capturePayments"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["data"]["capturePayments"], json!([]));
}

#[tokio::test]
async fn charges_cover_a_pending_capture_until_it_completes_with_a_journal_entry() {
    let h = Harness::start().await;
    let (_, order, token) = paid_order(&h, "1299.00").await;
    h.actor(
        &token,
        &format!("order/{order}"),
        json!([{"type": "capturePayments"}]),
    )
    .await;
    let charge = |amount: &str| {
        json!([{"type": "charge", "body": {"amount": exact(amount),
            "authorizationNumber": "mock_pay_order", "transactionReference": "cap_1"}}])
    };
    let (status, body) = h
        .actor(&token, &format!("payment/{PAYMENT}"), charge("299.00"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let partly = payment(&h).await;
    let capture = &partly["captures"][0];
    assert_eq!(capture["state"], "pending");
    assert_eq!(number(&capture["capturedAmount"]), "299.00");
    assert_eq!(number(&capture["remainingAmount"]), "1000.00");

    h.actor(&token, &format!("payment/{PAYMENT}"), charge("1000.00"))
        .await;
    let done = payment(&h).await;
    let capture = &done["captures"][0];
    assert_eq!(capture["state"], "completed");
    assert_eq!(number(&capture["capturedAmount"]), "1299.00");
    assert_eq!(number(&capture["remainingAmount"]), "0.00");
    let kinds: Vec<&Value> = done["journalEntries"]
        .as_array()
        .expect("journal")
        .iter()
        .map(|e| &e["paymentJournalEntryType"])
        .collect();
    assert_eq!(
        kinds,
        [&json!("charge"), &json!("charge"), &json!("capture")]
    );
    let entry = &done["journalEntries"][2];
    assert_eq!(entry["captureId"], capture["paymentCaptureId"]);
    assert_eq!(entry["orderId"], order.as_str());
    assert_eq!(number(&entry["amount"]), "1299.00");
}

#[tokio::test]
async fn an_order_is_reached_by_its_number_too() {
    let h = Harness::start().await;
    let (_, order, token) = paid_order(&h, "1299.00").await;
    let (status, answer) = h
        .actor(&token, "order/O1001", json!([{"type": "query"}]))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["query"]["orderId"], order.as_str());
    assert_eq!(
        answer["paths"][0],
        format!("resources/actors/order/{order}")
    );
}

#[tokio::test]
async fn the_sandbox_shortcut_captures_like_the_actor_message() {
    let h = Harness::start().await;
    let (cart, _, _) = paid_order(&h, "1299.00").await;
    let (status, answer) = h
        .post("/sandbox/orders/O1001/capture-payments", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        number(&answer["data"]["capturePayments"][0]["amount"]),
        "1299.00"
    );
    let (_, inspected) = h.get(&format!("/sandbox/carts/{cart}")).await;
    assert_eq!(inspected["order"]["captures"][0]["state"], "pending");
    assert_eq!(inspected["payments"][0]["paymentId"], PAYMENT);
}

#[tokio::test]
async fn capture_payments_refuses_a_cancelled_order_and_a_captured_order_cannot_be_cancelled() {
    let h = Harness::start().await;
    let (cart, order, token) = paid_order(&h, "1299.00").await;
    h.actor(
        &token,
        &format!("order/{order}"),
        json!([{"type": "capturePayments"}]),
    )
    .await;
    let (status, body) = h
        .post(
            &format!("/ingress/commerce/carts/{cart}/cancel-order"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "CANCEL_ORDER_FAILED");

    let h = Harness::start().await;
    let (cart, order, token) = paid_order(&h, "1299.00").await;
    h.post(
        &format!("/ingress/commerce/carts/{cart}/cancel-order"),
        json!({}),
    )
    .await;
    let (status, body) = h
        .actor(
            &token,
            &format!("order/{order}"),
            json!([{"type": "capturePayments"}]),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "INVALID_COMMAND");
}

#[tokio::test]
async fn an_order_without_payments_has_nothing_to_capture() {
    let h = Harness::start().await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "MUG-002", 1).await;
    h.actor(
        &token,
        &format!("ticket/{cart}"),
        json!([{"type": "complete"}]),
    )
    .await;
    let (status, body) = h
        .actor(&token, "order/O1001", json!([{"type": "capturePayments"}]))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "INVALID_COMMAND");
    let (status, body) = h
        .actor(
            &token,
            "order/0199a9b6-8608-7360-b98b-d2f9adeb2848",
            json!([{"type": "capturePayments"}]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn complete_capture_completes_a_pending_capture_without_a_charge() {
    let h = Harness::start().await;
    let (_, order, token) = paid_order(&h, "1299.00").await;
    let (_, answer) = h
        .actor(
            &token,
            &format!("order/{order}"),
            json!([{"type": "capturePayments"}]),
        )
        .await;
    let capture = answer["data"]["capturePayments"][0]["paymentCaptureId"].clone();
    let (status, body) = h
        .actor(
            &token,
            &format!("payment/{PAYMENT}"),
            json!([{"type": "completeCapture", "body": {"paymentCaptureId": capture}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(payment(&h).await["captures"][0]["state"], "completed");
    let (status, body) = h
        .actor(
            &token,
            &format!("payment/{PAYMENT}"),
            json!([{"type": "completeCapture", "body": {"paymentCaptureId": capture}}]),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
}
