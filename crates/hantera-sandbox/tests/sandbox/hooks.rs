//! Forwarded hooks: `OnCartMutation` after every successful storefront mutation,
//! `OnPaymentCapture` after a capture is created, in order, retried while the gateway is
//! down.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cart_api::every_mutation;
use crate::common::{eventually, exact, Harness, Receiver, HOOK_TOKEN};

fn path(cart: &str, action: &str) -> String {
    format!("/ingress/commerce/carts/{cart}/{action}")
}

/// A successful mutation whose hook marks "everything before has arrived": the outbox
/// delivers in order, so once this one is in, nothing fired earlier is still on its way.
async fn sentinel(h: &Harness, cart: &str) {
    let (status, _) = h
        .post(&path(cart, "set-field/sentinel"), json!({"value": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_mutation_type_fires_exactly_one_on_cart_mutation_with_the_rendered_cart() {
    let gateway = Receiver::start().await;
    let h = Harness::forwarding_to(&gateway.url).await;
    let cart = h.new_cart("default").await;
    let (_, first) = h.add_item(&cart, "TSHIRT-001", 1).await;
    gateway.wait_for(1).await;
    let item = first["items"][0]["cartItemId"]
        .as_str()
        .expect("cartItemId")
        .to_owned();

    let mutations = every_mutation(&item);
    for (index, (action, body)) in mutations.iter().enumerate() {
        let (status, rendered) = h.post(&path(&cart, action), body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{action}: {rendered}");
        // One more hook, and it carries the cart as the mutation answered it, with the
        // cart's fields at the top level beside `hook`.
        let received = gateway.wait_for(index + 2).await;
        let hook = &received[index + 1];
        assert_eq!(hook.hook, "OnCartMutation", "{action}");
        assert_eq!(hook.body["hook"], "OnCartMutation");
        let mut cart_fields = hook.body.clone();
        if let Value::Object(fields) = &mut cart_fields {
            fields.remove("hook");
        }
        assert_eq!(cart_fields, rendered, "{action}");
        assert_eq!(
            hook.authorization.as_deref(),
            Some(format!("Bearer {HOOK_TOKEN}").as_str())
        );
    }
    sentinel(&h, &cart).await;
    let received = gateway.wait_for(mutations.len() + 2).await;
    assert_eq!(received.len(), mutations.len() + 2, "no extra hooks");
}

#[tokio::test]
async fn failed_mutations_reads_streams_and_cart_creation_fire_no_hook() {
    let gateway = Receiver::start().await;
    let h = Harness::forwarding_to(&gateway.url).await;
    let cart = h.new_cart("default").await;
    let closed = h.new_cart("default").await;
    h.actor_once(&format!("ticket/{closed}"), json!([{"type": "complete"}]))
        .await;

    let failures = [
        (
            cart.as_str(),
            "add-item",
            json!({"productNumber": "NOPE", "quantity": 1}),
        ),
        (
            cart.as_str(),
            "add-item",
            json!({"productNumber": "MUG-002", "quantity": 0}),
        ),
        (
            cart.as_str(),
            "set-quantity",
            json!({"cartItemId": "x", "quantity": 1}),
        ),
        (cart.as_str(), "remove-item", json!({"cartItemId": "x"})),
        (cart.as_str(), "add-coupon", json!({"couponCode": "BOGUS"})),
        (
            cart.as_str(),
            "remove-coupon",
            json!({"couponCode": "VIP20"}),
        ),
        (
            cart.as_str(),
            "address",
            json!({"address": {"countryCode": "US"}}),
        ),
        (cart.as_str(), "email", json!({"email": "nope"})),
        (cart.as_str(), "phone", json!({"phone": "nope"})),
        (cart.as_str(), "set-field/bad%20key", json!({"value": 1})),
        (cart.as_str(), "cancel-order", json!({})),
        (
            closed.as_str(),
            "add-item",
            json!({"productNumber": "MUG-002", "quantity": 1}),
        ),
        (
            closed.as_str(),
            "email",
            json!({"email": "ada@example.com"}),
        ),
        // A completed cart's order can be cancelled, but that changes the order, not
        // the cart: no OnCartMutation either.
        (closed.as_str(), "cancel-order", json!({})),
    ];
    for (target, action, body) in failures {
        h.post(&path(target, action), body).await;
    }
    h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    let mut events = h.events(&cart).await;
    events.next().await;

    sentinel(&h, &cart).await;
    let received = gateway.wait_for(1).await;
    assert_eq!(received[0].body["fields"], json!({"sentinel": true}));
}

#[tokio::test]
async fn a_gateway_that_is_down_receives_the_hooks_it_missed_in_order_once_it_is_back() {
    // Reserve an address, then leave it closed: the gateway is down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let url = format!("http://{addr}");
    let h = Harness::forwarding_to(&url).await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "MUG-002", 1).await;
    h.add_item(&cart, "MUG-002", 1).await;

    // The sandbox keeps trying the first hook, and the second waits behind it.
    let outbox = eventually("a few failed attempts", || async {
        let (_, outbox) = h.get("/sandbox/hooks").await;
        (outbox["pending"][0]["attempts"].as_u64() >= Some(2)).then_some(outbox)
    })
    .await;
    assert_eq!(outbox["pending"].as_array().map(Vec::len), Some(2));
    assert!(outbox["pending"][0]["lastError"]
        .as_str()
        .unwrap_or_default()
        .contains("no answer"));

    // The gateway comes back on its address.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the gateway's address");
    let gateway = Receiver::serve(listener);
    let received = gateway.wait_for(2).await;
    let quantities: Vec<&Value> = received
        .iter()
        .map(|r| &r.body["items"][0]["quantity"])
        .collect();
    assert_eq!(
        quantities,
        [&json!(1), &json!(2)],
        "in the order they happened"
    );
    let (_, outbox) = h.get("/sandbox/hooks").await;
    assert_eq!(outbox["pending"], json!([]));
    assert_eq!(outbox["finished"][0]["outcome"], "delivered");
}

#[tokio::test]
async fn a_gateway_answering_503_gets_the_hook_again_and_a_400_drops_it() {
    let gateway = Receiver::start().await;
    let h = Harness::forwarding_to(&gateway.url).await;
    let cart = h.new_cart("default").await;

    gateway.answer(503);
    h.add_item(&cart, "MUG-002", 1).await;
    eventually("a retried hook", || async {
        let (_, outbox) = h.get("/sandbox/hooks").await;
        (outbox["pending"][0]["attempts"].as_u64() >= Some(2)).then_some(())
    })
    .await;
    gateway.answer(200);
    let received = gateway.wait_for(1).await;
    assert_eq!(received[0].body["items"][0]["quantity"], 1);

    // A refusal is final: the hook is dropped (and listed), and later hooks still flow.
    gateway.answer(400);
    h.add_item(&cart, "MUG-002", 1).await;
    let outbox = eventually("a rejected hook", || async {
        let (_, outbox) = h.get("/sandbox/hooks").await;
        let finished = outbox["finished"].as_array().cloned().unwrap_or_default();
        finished
            .iter()
            .any(|f| f["outcome"] == "rejected")
            .then_some(outbox)
    })
    .await;
    assert_eq!(outbox["pending"], json!([]));
    let rejected = outbox["finished"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["outcome"] == "rejected"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(rejected["status"], 400);
    gateway.answer(200);
    sentinel(&h, &cart).await;
    let received = gateway.wait_for(2).await;
    assert_eq!(received[1].body["fields"], json!({"sentinel": true}));
}

#[tokio::test]
async fn without_a_hook_target_nothing_is_queued() {
    let h = Harness::start().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "MUG-002", 1).await;
    let (_, outbox) = h.get("/sandbox/hooks").await;
    assert_eq!(outbox["target"], Value::Null);
    assert_eq!(outbox["pending"], json!([]));
    assert_eq!(outbox["finished"], json!([]));
}

#[tokio::test]
async fn capture_payments_fires_on_payment_capture_with_the_payment_and_the_pending_capture() {
    let gateway = Receiver::start().await;
    let h = Harness::forwarding_to(&gateway.url).await;
    let token = h.token().await;
    let cart = h.new_cart("default").await;
    h.add_item(&cart, "SHOE-006", 1).await;
    let payment = "0199a9b6-8608-7360-b98b-000000000001";
    h.create_payment(&token, payment, "mock_pay_hook", exact("1299.00"))
        .await;
    h.actor(
        &token,
        &format!("ticket/{cart}"),
        json!([{"type": "applyCommands", "body": {"commands": [
            {"type": "createRelation", "relationKey": "payments", "nodeId": payment}]}},
            {"type": "complete"}]),
    )
    .await;
    gateway.wait_for(1).await;
    let (_, rendered) = h.get(&format!("/ingress/commerce/carts/{cart}")).await;
    let order = rendered["orderId"].as_str().expect("orderId").to_owned();

    let (status, answer) = h
        .actor(
            &token,
            &format!("order/{order}"),
            json!([{"type": "capturePayments"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let received = gateway.wait_for(2).await;
    let hook = &received[1];
    assert_eq!(hook.hook, "OnPaymentCapture");
    assert_eq!(hook.body["hook"], "OnPaymentCapture");
    assert_eq!(hook.body["payment"]["paymentId"], payment);
    assert_eq!(hook.body["payment"]["providerKey"], "mock");
    assert_eq!(hook.body["payment"]["externalReference"], "mock_pay_hook");
    let capture = &hook.body["capture"];
    assert_eq!(
        capture["paymentCaptureId"],
        answer["data"]["capturePayments"][0]["paymentCaptureId"]
    );
    assert_eq!(capture["orderId"], order.as_str());
    assert_eq!(capture["state"], "pending");
    assert_eq!(capture["amount"].to_string(), "1299.00");
    assert_eq!(capture["capturedAmount"].to_string(), "0.00");
    assert_eq!(capture["remainingAmount"].to_string(), "1299.00");
    // The charge that covers it completes the capture; that update is not forwarded.
    h.actor(
        &token,
        &format!("payment/{payment}"),
        json!([{"type": "charge", "body": {"amount": exact("1299.00")}}]),
    )
    .await;
    sentinel_on_new_cart(&h).await;
    gateway.wait_for(3).await;
}

/// A sentinel on a fresh cart, for tests whose cart is completed.
async fn sentinel_on_new_cart(h: &Harness) {
    let cart = h.new_cart("default").await;
    sentinel(h, &cart).await;
}
