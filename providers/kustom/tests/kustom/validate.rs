//! Kustom's validation callback: approve, deny on a changed or closed cart, the
//! merchant's veto, and an answer inside Kustom's 3 s even when the merchant's rule hangs.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use common::{cart, item, world, World};
use kustom::fake::{CompleteOptions, CompleteOutcome, ValidationOutcome};
use kustom::VALIDATE_PATH;
use parking_lot::Mutex;
use psp_core::{CartState, Currency, Money};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// What the merchant's rule does.
#[derive(Clone)]
enum Rule {
    Approve,
    Veto,
    Hang,
}

/// Serves a merchant rule; returns its URL and the inputs it received.
async fn merchant(rule: Rule) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let inputs = seen.clone();
    let app = Router::new().route(
        "/rules/kustom",
        post(move |Json(input): Json<Value>| {
            let rule = rule.clone();
            let seen = inputs.clone();
            async move {
                seen.lock().push(input);
                match rule {
                    Rule::Approve => Json(json!({})),
                    Rule::Veto => Json(json!({ "error": {
                        "code": "out_of_stock",
                        "message": "The enamel mug sold out a moment ago",
                    }})),
                    Rule::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Json(json!({}))
                    }
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rules/kustom", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// An order Kustom would post: the fake's own copy of it.
async fn open_order(w: &World) -> (uuid::Uuid, Value) {
    let (c, session) = w
        .cart_and_checkout(cart(
            "SEK",
            vec![
                item("MUG", 2, "149.00", "0", "25"),
                item("BOOK", 1, "189.00", "0", "6"),
            ],
            Some(("49.00", "25")),
        ))
        .await;
    let order = w.fake.order(&session.psp_ref).unwrap();
    (c.cart_id, Value::Object(order.checkout))
}

async fn validate(w: &World, order: &Value) -> (reqwest::Response, Duration) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = Instant::now();
    let resp = client
        .post(format!("{}{VALIDATE_PATH}", w.gateway_url))
        .json(order)
        .send()
        .await
        .unwrap();
    (resp, started.elapsed())
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_open_cart_with_kustoms_amount_is_approved_with_200() {
    let w = world(json!({})).await;
    let (_, order) = open_order(&w).await;
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_cart_whose_total_changed_is_denied_with_a_redirect_back_to_the_checkout() {
    let w = world(json!({})).await;
    let (cart_id, order) = open_order(&w).await;
    let sek = Currency::from_code("SEK").unwrap();
    w.hantera.set_cart_total(cart_id, Money::from_minor(1, sek));
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 303, "Kustom's documented denial");
    let to = location(&resp);
    assert!(to.starts_with("https://shop.example/checkout"), "{to}");
    assert!(to.contains("kustom_error=amount_mismatch"), "{to}");
}

#[tokio::test]
async fn a_cart_that_is_no_longer_open_is_denied() {
    let w = world(json!({})).await;
    let (cart_id, order) = open_order(&w).await;
    w.hantera.set_cart_state(cart_id, CartState::Completed);
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("kustom_error=cart_not_open"));
}

#[tokio::test]
async fn an_order_naming_no_cart_of_ours_is_denied() {
    let w = world(json!({})).await;
    let (_, mut order) = open_order(&w).await;
    order["merchant_reference1"] = json!(uuid::Uuid::new_v4().to_string());
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("kustom_error=cart_not_found"));
    order["merchant_reference1"] = json!("not-a-cart");
    let (resp, _) = validate(&w, &order).await;
    assert!(location(&resp).contains("kustom_error=unknown_cart"));
}

#[tokio::test]
async fn the_merchants_veto_is_returned_and_its_rule_sees_hanteras_hook_input() {
    let (url, seen) = merchant(Rule::Veto).await;
    let w = world(json!({ "validation_callback_url": url })).await;
    let (cart_id, order) = open_order(&w).await;
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("kustom_error=out_of_stock"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "The enamel mug sold out a moment ago"
    );

    let inputs = seen.lock().clone();
    assert_eq!(inputs.len(), 1);
    let input = &inputs[0];
    assert_eq!(input["hook"], "OnKustomValidation");
    assert_eq!(input["cartId"], cart_id.to_string());
    assert_eq!(input["currencyCode"], "SEK");
    assert_eq!(input["orderTotal"].to_string(), "536.00");
    assert_eq!(input["orderLines"][0]["productNumber"], "MUG");
    assert_eq!(input["orderLines"][0]["salesTotal"].to_string(), "298.00");
}

#[tokio::test]
async fn an_approving_merchant_rule_lets_the_purchase_through() {
    let (url, seen) = merchant(Rule::Approve).await;
    let w = world(json!({ "validation_callback_url": url })).await;
    let (_, order) = open_order(&w).await;
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(seen.lock().len(), 1);
}

#[tokio::test]
async fn a_hanging_merchant_rule_does_not_make_the_answer_miss_three_seconds() {
    let (url, _) = merchant(Rule::Hang).await;
    let w = world(json!({ "validation_callback_url": url, "validation_timeout_ms": 800 })).await;
    let (_, order) = open_order(&w).await;
    let (resp, took) = validate(&w, &order).await;
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(
        resp.status(),
        200,
        "approved, as Kustom itself would on a timeout"
    );

    // A merchant who prefers refusing when its rule cannot answer.
    let (url, _) = merchant(Rule::Hang).await;
    let w = world(json!({
        "validation_callback_url": url,
        "validation_on_error": "deny",
    }))
    .await;
    let (_, order) = open_order(&w).await;
    let (resp, took) = validate(&w, &order).await;
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).contains("kustom_error=validation_unavailable"));
}

/// An order Kustom would post for a cart whose total then changed (so validation denies),
/// its checkout started with `body`; the body Kustom posts names an attacker's page.
async fn denied_order_naming_an_attacker(w: &World, body: Value) -> (String, Value) {
    let c = cart("SEK", vec![item("MUG", 2, "149.00", "0", "25")], None);
    w.hantera.insert_cart(c.clone());
    let session = w.checkout_with(&c, &body).await;
    let sek = Currency::from_code("SEK").unwrap();
    w.hantera
        .set_cart_total(c.cart_id, Money::from_minor(1, sek));
    let mut order = Value::Object(w.fake.order(&session.psp_ref).unwrap().checkout);
    order["merchant_urls"]["checkout"] = json!("https://attacker.example/phish");
    (session.psp_ref, order)
}

#[tokio::test]
async fn a_denial_redirects_to_the_checkout_url_stored_with_the_session_never_to_the_bodys() {
    let w = world(json!({})).await;
    let (order_id, order) = denied_order_naming_an_attacker(
        &w,
        json!({ "checkoutUrl": "https://shop.example/basket?order={checkout.order.id}" }),
    )
    .await;
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 303);
    let to = location(&resp);
    assert!(
        to.starts_with(&format!("https://shop.example/basket?order={order_id}&")),
        "{to}"
    );
    assert!(to.contains("kustom_error=amount_mismatch"), "{to}");
    assert!(!to.contains("attacker"), "{to}");
}

#[tokio::test]
async fn an_unknown_order_naming_an_attacker_url_is_not_redirected_there() {
    // No default checkout URL configured: the gateway's own root is the fallback.
    let w = world(json!({ "checkout_url": null })).await;
    let (_, mut order) = denied_order_naming_an_attacker(
        &w,
        json!({ "checkoutUrl": "https://shop.example/basket" }),
    )
    .await;
    for order_id in [
        json!("made-up-order"),
        json!("../x y"),
        json!(7),
        Value::Null,
    ] {
        order["order_id"] = order_id.clone();
        let (resp, _) = validate(&w, &order).await;
        assert_eq!(resp.status(), 303);
        let to = location(&resp);
        assert!(
            to.starts_with(&format!("{}/?kustom_error=", w.gateway_url)),
            "{order_id}: {to}"
        );
    }
    // With a default checkout URL configured, an unknown order is sent there.
    let w = world(json!({})).await;
    let (_, mut order) = denied_order_naming_an_attacker(&w, json!({})).await;
    order["order_id"] = json!("made-up-order");
    let (resp, _) = validate(&w, &order).await;
    let to = location(&resp);
    assert!(
        to.starts_with("https://shop.example/checkout?kustom_error="),
        "{to}"
    );
}

#[tokio::test]
async fn hanteras_400_style_of_denial_can_be_chosen() {
    let w = world(json!({ "validation_deny": "status_400" })).await;
    let (cart_id, order) = open_order(&w).await;
    w.hantera.set_cart_state(cart_id, CartState::Rejected);
    let (resp, _) = validate(&w, &order).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cart_not_open");
}

#[tokio::test]
async fn kustom_calls_the_validation_before_completing_and_a_denial_stops_the_purchase() {
    let w = world(json!({})).await;
    let (cart_id, order) = open_order(&w).await;
    let order_id = order["order_id"].as_str().unwrap().to_string();
    // The cart grew in another tab after the checkout started.
    let sek = Currency::from_code("SEK").unwrap();
    w.hantera
        .set_cart_total(cart_id, Money::from_minor(99_900, sek));
    let outcome = w
        .fake
        .complete(&order_id, CompleteOptions::default())
        .await
        .unwrap();
    match outcome {
        CompleteOutcome::Denied { location: Some(l) } => {
            assert!(l.contains("kustom_error=amount_mismatch"), "{l}")
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    let held = w.fake.order(&order_id).unwrap();
    assert_eq!(held.status(), "checkout_incomplete", "nothing was bought");
    assert!(held.om.is_none());
    assert_eq!(held.validations[0].outcome, ValidationOutcome::Denied);

    // Put back, the purchase goes through.
    w.hantera
        .set_cart_total(cart_id, Money::from_minor(53_600, sek));
    let outcome = w
        .fake
        .complete(&order_id, CompleteOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(outcome, CompleteOutcome::Completed { .. }),
        "{outcome:?}"
    );
    let held = w.fake.order(&order_id).unwrap();
    assert_eq!(held.validations[1].outcome, ValidationOutcome::Approved);
    assert_eq!(held.status(), "checkout_complete");
}
