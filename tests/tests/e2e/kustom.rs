//! Kustom end to end through the real binary: `psp-gateway sandbox` serves Hantera and the
//! fake Kustom (at /fakes/kustom), the gateway runs in another process. The customer's
//! "Complete purchase" goes through the fake's hosted page, which calls the gateway's
//! validation URL first; the confirmation page and Kustom's push both complete the cart
//! through the same completion, and the order is acknowledged.

use std::time::Duration;

use serde_json::{json, Value};
use tests::*;

/// The fake's key in the stand-alone sandbox (public on purpose).
const KUSTOM_KEY: &str = "kco_test_api_sandbox";

struct World {
    sandbox: Proc,
    _files: GatewayFiles,
    gateway: Proc,
}

fn world(extra: &str) -> World {
    let sandbox = start_sandbox();
    let config = format!(
        r#"
[providers.kustom]
api_key = "{KUSTOM_KEY}"
api_base = "{}/fakes/kustom"
payment_number_prefix = "KUSTOM-"
{extra}
"#,
        sandbox.url
    );
    let files = GatewayFiles::new(&sandbox.url, &config);
    let gateway = files.start(&[]);
    World {
        sandbox,
        _files: files,
        gateway,
    }
}

impl World {
    fn fake(&self, path: &str) -> String {
        format!("{}/fakes/kustom{path}", self.sandbox.url)
    }

    async fn fake_get(&self, path: &str) -> Value {
        http()
            .get(self.fake(path))
            .header("Authorization", format!("Basic {KUSTOM_KEY}"))
            .send()
            .await
            .expect("the fake Kustom answers")
            .json()
            .await
            .expect("JSON from the fake Kustom")
    }

    async fn fake_order(&self, order_id: &str) -> Value {
        self.fake_get(&format!("/_test/orders/{order_id}")).await
    }

    async fn compress_pushes(&self) {
        let resp = http()
            .put(self.fake("/_test/push-schedule"))
            .header("Authorization", format!("Basic {KUSTOM_KEY}"))
            .json(&json!({ "scale": 60000 }))
            .send()
            .await
            .expect("the fake Kustom answers");
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    async fn checkout(&self, cart_id: &str) -> (reqwest::StatusCode, Value) {
        let resp = http()
            .post(format!(
                "{}/ingress/commerce/carts/{cart_id}/payment/kustom",
                self.gateway.url
            ))
            .json(&json!({
                "termsUrl": "https://shop.example/terms",
                "checkoutUrl": "https://shop.example/checkout?kustom_order_id={checkout.order.id}",
                "confirmationUrl": "https://shop.example/confirmation?kustom_order_id={checkout.order.id}",
            }))
            .send()
            .await
            .expect("checkout");
        let status = resp.status();
        (status, resp.json().await.expect("checkout JSON"))
    }

    /// The customer's click on the hosted page inside the iframe.
    async fn click_complete(&self, order_id: &str) -> String {
        let resp = http()
            .post(self.fake(&format!("/checkout/{order_id}/complete")))
            .send()
            .await
            .expect("the hosted page answers");
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.text().await.expect("HTML")
    }

    async fn confirm(&self, cart_id: &str) -> (reqwest::StatusCode, Value) {
        let resp = http()
            .post(format!(
                "{}/ingress/commerce/carts/{cart_id}/payment/kustom/confirm",
                self.gateway.url
            ))
            .send()
            .await
            .expect("confirm");
        let status = resp.status();
        (status, resp.json().await.expect("confirm JSON"))
    }

    async fn push(&self, query: &str) -> (reqwest::StatusCode, Value) {
        let resp = http()
            .post(format!("{}/webhooks/kustom{query}", self.gateway.url))
            .send()
            .await
            .expect("push");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn minor(v: &Value) -> i64 {
    let text = v.to_string();
    let d: Vec<&str> = text.split('.').collect();
    match d.as_slice() {
        [whole] => whole.parse::<i64>().unwrap() * 100,
        [whole, frac] => {
            let frac = format!("{frac:0<2}");
            whole.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap()
        }
        _ => panic!("not an amount: {v}"),
    }
}

async fn paid_cart(w: &World) -> (String, Value, String) {
    let products = get_json(&format!("{}/sandbox/products", w.sandbox.url)).await;
    let a = products[0]["productNumber"].as_str().unwrap().to_string();
    let b = products[1]["productNumber"].as_str().unwrap().to_string();
    let (cart_id, cart) = create_cart(&w.sandbox.url, &[(&a, 2), (&b, 1)]).await;
    let (status, started) = w.checkout(&cart_id).await;
    assert!(status.is_success(), "checkout: {status} {started}");
    let order_id = started["orderId"].as_str().expect("orderId").to_string();
    (cart_id, cart, order_id)
}

#[tokio::test]
async fn a_kustom_purchase_is_confirmed_once_acknowledged_and_a_later_push_only_acknowledges() {
    let w = world("");
    let products = get_json(&format!("{}/sandbox/products", w.sandbox.url)).await;
    let a = products[0]["productNumber"].as_str().unwrap().to_string();
    let b = products[1]["productNumber"].as_str().unwrap().to_string();
    let (cart_id, cart) = create_cart(&w.sandbox.url, &[(&a, 2), (&b, 1)]).await;

    let (status, started) = w.checkout(&cart_id).await;
    assert!(status.is_success(), "checkout: {status} {started}");
    let order_id = started["orderId"].as_str().expect("orderId").to_string();
    let snippet = started["htmlSnippet"].as_str().expect("htmlSnippet");
    assert!(
        snippet.contains(&w.fake(&format!("/checkout/{order_id}"))),
        "the snippet frames the fake's hosted page: {snippet}"
    );
    let (_, again) = w.checkout(&cart_id).await;
    assert_eq!(again["orderId"], order_id, "one Kustom order per cart");

    let order = w.fake_order(&order_id).await;
    let checkout = &order["checkout"];
    assert_eq!(checkout["order_amount"], minor(&cart["orderTotal"]));
    assert_eq!(checkout["merchant_reference1"], cart_id);
    assert_eq!(
        checkout["merchant_urls"]["push"],
        format!(
            "{}/webhooks/kustom?kustom_order_id={{checkout.order.id}}",
            w.gateway.url
        )
    );

    // The customer clicks "Complete purchase": Kustom asks the gateway first.
    let page = w.click_complete(&order_id).await;
    assert!(
        page.contains(&format!(
            "https://shop.example/confirmation?kustom_order_id={order_id}"
        )),
        "the whole page goes to the confirmation: {page}"
    );
    let order = w.fake_order(&order_id).await;
    assert_eq!(order["validations"][0]["outcome"], "approved", "{order}");
    assert_eq!(order["validations"][0]["status"], 200);

    // The confirmation page calls confirm.
    let (status, confirmed) = w.confirm(&cart_id).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["status"], "completed");
    let done = wait_completed(&w.sandbox.url, &cart_id).await;
    assert!(done["orderNumber"].is_string(), "{done}");
    let payments = payments_for(&w.sandbox.url, &order_id).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["providerKey"], "kustom");
    assert_eq!(
        payments[0]["authorizations"][0]["amount"],
        cart["orderTotal"]
    );
    let om = &w.fake_order(&order_id).await["om"];
    assert_eq!(
        om["acknowledged"], true,
        "confirm acknowledged the order: {om}"
    );
    let acks = om["acknowledge_calls"].as_u64().unwrap();

    // The storefront retries confirm: nothing more happens.
    let (status, confirmed) = w.confirm(&cart_id).await;
    assert_eq!(
        (status.as_u16(), confirmed["status"].as_str()),
        (200, Some("completed"))
    );

    // Kustom's push arrives later: it only acknowledges.
    let (status, answer) = w.push(&format!("?kustom_order_id={order_id}")).await;
    assert_eq!(status, 200, "{answer}");
    wait_for(
        "the push to acknowledge",
        Duration::from_secs(15),
        || async {
            let om = w.fake_order(&order_id).await["om"].clone();
            (om["acknowledge_calls"].as_u64().unwrap() > acks).then_some(())
        },
    )
    .await;
    assert_eq!(payments_for(&w.sandbox.url, &order_id).await.len(), 1);
    let completes = journal(&w.sandbox.url)
        .await
        .into_iter()
        .filter(|e| e["actorId"] == cart_id && e["applied"] == true)
        .filter(|e| e["messageTypes"].to_string().contains("\"complete\""))
        .count();
    assert_eq!(completes, 1, "the cart was completed once");
}

#[tokio::test]
async fn with_confirm_never_called_kustoms_push_alone_completes_the_cart_and_is_acknowledged() {
    let w = world("");
    w.compress_pushes().await;
    let (cart_id, cart, order_id) = paid_cart(&w).await;
    w.click_complete(&order_id).await;

    let done = wait_completed(&w.sandbox.url, &cart_id).await;
    assert!(done["orderNumber"].is_string(), "{done}");
    let payments = payments_for(&w.sandbox.url, &order_id).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["providerKey"], "kustom");
    assert_eq!(payments[0]["externalReference"], order_id);
    assert_eq!(
        payments[0]["authorizations"][0]["amount"],
        cart["orderTotal"]
    );
    let order = wait_for(
        "Kustom to stop pushing",
        Duration::from_secs(30),
        || async {
            let o = w.fake_order(&order_id).await;
            (o["pushes_finished"] == true).then_some(o)
        },
    )
    .await;
    assert_eq!(order["om"]["acknowledged"], true, "{order}");
    assert_eq!(order["pushes_gave_up"], false, "{order}");
}

#[tokio::test]
async fn pushes_for_unknown_orders_complete_nothing_answer_clearly_and_cost_bounded_kustom_reads() {
    let w = world("push_reads_per_window = 5\npush_window_ms = 60000");
    let (cart_id, _, order_id) = paid_cart(&w).await;

    for _ in 0..100 {
        let id = uuid::Uuid::new_v4();
        let (status, answer) = w.push(&format!("?kustom_order_id={id}")).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("no checkout session"), "{answer}");
    }
    let (status, answer) = w.push("").await;
    assert_eq!(status, 400, "{answer}");
    let reads = w.fake_get("/_test/requests").await["order_reads"]
        .as_u64()
        .unwrap();
    assert_eq!(reads, 0, "made-up ids cost no Kustom call");

    // A flood naming a real order the customer has not paid: at most three reads (the
    // per-order limit, below the window's five).
    let mut limited = 0;
    for _ in 0..50 {
        let (status, _) = w.push(&format!("?kustom_order_id={order_id}")).await;
        match status.as_u16() {
            // Read and found unpaid.
            400 => {}
            // Beyond the window's reads: not checked, and Kustom is told to come back.
            429 => limited += 1,
            other => panic!("a push for an unpaid order answered {other}"),
        }
    }
    assert_eq!(limited, 47, "pushes beyond the read limit are answered 429");
    let reads = w.fake_get("/_test/requests").await["order_reads"]
        .as_u64()
        .unwrap();
    assert_eq!(reads, 3, "the flood was held to the order's reads");
    let c = cart(&w.sandbox.url, &cart_id).await;
    assert_eq!(c["cartState"], "open");
    assert!(payments_for(&w.sandbox.url, &order_id).await.is_empty());
}

#[tokio::test]
async fn forty_pushes_for_ones_own_order_do_not_stop_another_orders_genuine_push_from_completing_its_cart(
) {
    // The default limits: 30 reads a minute for all orders, 3 for one order.
    let w = world("");
    w.compress_pushes().await;
    // The caller's own order, never paid, pushed forty times.
    let (_, _, own_order) = paid_cart(&w).await;
    let mut limited = 0;
    for _ in 0..40 {
        let (status, answer) = w.push(&format!("?kustom_order_id={own_order}")).await;
        match status.as_u16() {
            400 => {}
            429 => limited += 1,
            other => panic!("a push for an unpaid order answered {other}: {answer}"),
        }
    }
    assert_eq!(
        limited, 37,
        "beyond the order's three reads, pushes are not read"
    );

    // Another customer pays; only Kustom's push (no confirm) completes that cart.
    let (cart_id, _, order_id) = paid_cart(&w).await;
    w.click_complete(&order_id).await;
    let done = wait_completed(&w.sandbox.url, &cart_id).await;
    assert!(done["orderNumber"].is_string(), "{done}");
    let payments = payments_for(&w.sandbox.url, &order_id).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    let order = w.fake_order(&order_id).await;
    assert_eq!(
        order["pushes"][0]["status"], 200,
        "the first genuine push was read at once: {order}"
    );
}

#[tokio::test]
async fn the_validation_callback_never_redirects_to_a_url_named_in_its_unauthenticated_body() {
    let w = world("");
    let (cart_id, _, order_id) = paid_cart(&w).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let validate = |order_id: String| {
        let body = json!({
            "order_id": order_id,
            "merchant_reference1": cart_id,
            "order_amount": 1,
            "purchase_currency": "SEK",
            "merchant_urls": { "checkout": "https://attacker.example/phish" },
        });
        let request = no_redirects
            .post(format!("{}/providers/kustom/validate", w.gateway.url))
            .body(body.to_string());
        async move {
            let resp = request.send().await.expect("validate");
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or_default()
                .to_string();
            (resp.status(), location)
        }
    };
    // A denial (the amount is wrong) for a real order: the storefront's checkout URL,
    // as stored with the session.
    let (status, location) = validate(order_id.clone()).await;
    assert_eq!(status, 303);
    assert_eq!(
        location,
        format!(
            "https://shop.example/checkout?kustom_order_id={order_id}&kustom_error=amount_mismatch"
        )
    );
    // An order no session holds: never the body's URL.
    let (status, location) = validate("made-up-order".into()).await;
    assert_eq!(status, 303);
    assert!(!location.contains("attacker"), "{location}");
    assert!(
        location.contains("kustom_error=amount_mismatch"),
        "{location}"
    );
}

#[tokio::test]
async fn a_euro_cart_becomes_an_order_the_strict_fake_accepts() {
    let w = world("");
    let created: Value = http()
        .post(format!("{}/ingress/commerce/carts", w.sandbox.url))
        .json(&json!({ "profileKey": "eu", "locale": "de-DE" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cart_id = created["cartId"].as_str().unwrap().to_string();
    let products = get_json(&format!("{}/sandbox/products", w.sandbox.url)).await;
    for (i, qty) in [(0, 3), (2, 1), (3, 2)] {
        let resp = http()
            .post(format!(
                "{}/ingress/commerce/carts/{cart_id}/add-item",
                w.sandbox.url
            ))
            .json(&json!({ "productNumber": products[i]["productNumber"], "quantity": qty }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
    let cart = cart(&w.sandbox.url, &cart_id).await;
    assert_eq!(cart["currencyCode"], "EUR");
    let (status, started) = w.checkout(&cart_id).await;
    assert!(status.is_success(), "checkout: {status} {started}");
    let order = w.fake_order(started["orderId"].as_str().unwrap()).await;
    assert_eq!(order["checkout"]["purchase_currency"], "EUR");
    assert_eq!(
        order["checkout"]["order_amount"],
        minor(&cart["orderTotal"])
    );
    for line in order["checkout"]["order_lines"].as_array().unwrap() {
        assert_eq!(line["tax_rate"], 1900, "{line}");
    }
}
