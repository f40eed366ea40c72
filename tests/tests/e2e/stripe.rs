//! Stripe end to end through the real binary: `psp-gateway sandbox` serves the Hantera
//! sandbox and the fake Stripe (at /fakes/stripe), the gateway runs in another process,
//! and the fake sends signed events to the webhook endpoint the test registers through
//! Stripe's own API, as an operator would.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tests::*;

/// The keys of the sandbox's fake Stripe (public on purpose: no money moves).
const SECRET_KEY: &str = "sk_test_sandbox";
const PUBLISHABLE_KEY: &str = "pk_test_sandbox";
const WEBHOOK_SECRET: &str = "whsec_stripe_sandbox";
const STRIPE_PREFIX: &str = "STRIPE-";

struct World {
    sandbox: Proc,
    files: GatewayFiles,
    gateway: Proc,
}

impl World {
    fn stripe(&self) -> String {
        format!("{}/fakes/stripe", self.sandbox.url)
    }
}

fn world() -> World {
    let sandbox = start_sandbox();
    let extra = format!(
        r#"
[providers.stripe]
secret_key = "{SECRET_KEY}"
publishable_key = "{PUBLISHABLE_KEY}"
webhook_secrets = ["{WEBHOOK_SECRET}"]
api_base = "{}/fakes/stripe"
payment_number_prefix = "{STRIPE_PREFIX}"
"#,
        sandbox.url
    );
    let files = GatewayFiles::new(&sandbox.url, &extra);
    let gateway = files.start(&[]);
    World {
        sandbox,
        files,
        gateway,
    }
}

/// Registers the gateway's webhook URL with the fake Stripe, for every event type.
async fn register_webhook(w: &World) -> Value {
    let resp = http()
        .post(format!("{}/v1/webhook_endpoints", w.stripe()))
        .bearer_auth(SECRET_KEY)
        .form(&[
            ("url", format!("{}/webhooks/stripe", w.gateway.url).as_str()),
            ("enabled_events[]", "*"),
            ("api_version", "2025-01-27.acacia"),
        ])
        .send()
        .await
        .expect("register the webhook endpoint");
    let status = resp.status();
    let body: Value = resp.json().await.expect("endpoint json");
    assert!(status.is_success(), "webhook endpoint: {status} {body}");
    assert_eq!(body["secret"], WEBHOOK_SECRET);
    body
}

/// Starts a Stripe checkout through the gateway: `(paymentIntentId, clientSecret)`.
async fn stripe_checkout(gateway: &str, cart_id: &str) -> (String, String) {
    let resp = http()
        .post(format!(
            "{gateway}/ingress/commerce/carts/{cart_id}/payment/stripe"
        ))
        .json(&json!({}))
        .send()
        .await
        .expect("checkout");
    let status = resp.status();
    let body: Value = resp.json().await.expect("checkout json");
    assert!(status.is_success(), "checkout: {status} {body}");
    let pi = body["paymentIntentId"].as_str().expect("paymentIntentId");
    let secret = body["clientSecret"].as_str().expect("clientSecret");
    assert!(secret.starts_with(&format!("{pi}_secret_")), "{body}");
    (pi.to_string(), secret.to_string())
}

/// The customer pays at the fake Stripe (what Stripe.js's confirmPayment does).
async fn pay(stripe: &str, pi: &str, payment_method: &str, webhook: &str) -> (u16, Value) {
    let resp = http()
        .post(format!("{stripe}/v1/_test/payment_intents/{pi}/confirm"))
        .bearer_auth(SECRET_KEY)
        .json(&json!({ "payment_method": payment_method, "webhook": webhook }))
        .send()
        .await
        .expect("confirm at the fake Stripe");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("confirm json"))
}

async fn stripe_get(stripe: &str, path: &str) -> Value {
    http()
        .get(format!("{stripe}{path}"))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .expect("the fake Stripe answers")
        .json()
        .await
        .expect("json")
}

/// The fake's deliveries to the gateway, once none is pending any more.
async fn settled_deliveries(stripe: &str, at_least: usize) -> Vec<Value> {
    wait_for(
        "the fake Stripe's deliveries to settle",
        Duration::from_secs(30),
        || async {
            let d = stripe_get(stripe, "/v1/_test/deliveries").await["data"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (d.len() >= at_least && d.iter().all(|d| d["state"] != "pending")).then_some(d)
        },
    )
    .await
}

fn completes_in(journal: &[Value], cart_id: &str) -> usize {
    journal
        .iter()
        .filter(|e| e["actorType"] == "ticket" && e["actorId"] == cart_id && e["applied"] == true)
        .filter(|e| {
            e["messageTypes"]
                .as_array()
                .is_some_and(|m| m.iter().any(|t| t == "complete"))
        })
        .count()
}

fn assert_one_stripe_payment(payments: &[Value], pi: &str, cart: &Value) {
    assert_eq!(payments.len(), 1, "exactly one payment: {payments:?}");
    let p = &payments[0];
    assert_eq!(p["providerKey"], "stripe");
    assert_eq!(p["externalReference"], pi);
    assert_eq!(p["currencyCode"], cart["currencyCode"]);
    assert!(
        p["paymentNumber"]
            .as_str()
            .is_some_and(|n| n.starts_with(STRIPE_PREFIX)),
        "{p}"
    );
    let auths = p["authorizations"].as_array().expect("authorizations");
    assert_eq!(auths.len(), 1, "{p}");
    assert_eq!(
        auths[0]["amount"], cart["orderTotal"],
        "authorized exactly the order total"
    );
}

#[tokio::test]
async fn a_payment_intent_paid_at_stripe_completes_the_cart_through_the_signed_webhook() {
    let w = world();
    register_webhook(&w).await;
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, cart) = create_cart(&w.sandbox.url, &[(&product, 2)]).await;
    let (pi, _) = stripe_checkout(&w.gateway.url, &cart_id).await;

    // The PaymentIntent holds the cart total in Stripe's units, for manual capture.
    let intent = stripe_get(&w.stripe(), &format!("/v1/payment_intents/{pi}")).await;
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(intent["capture_method"], "manual");
    assert_eq!(intent["metadata"]["cart_id"], cart_id.as_str());
    assert_eq!(
        intent["currency"],
        cart["currencyCode"].as_str().unwrap().to_ascii_lowercase()
    );

    // The storefront loads Stripe.js with the publishable key.
    let key = http()
        .get(format!("{}/ingress/stripe/publicKey", w.gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 200);
    assert_eq!(key.text().await.unwrap(), PUBLISHABLE_KEY);

    let (status, paid) = pay(&w.stripe(), &pi, "pm_card_visa", "send").await;
    assert_eq!((status, &paid["status"]), (200, &json!("requires_capture")));

    // No confirm call: only the webhook completes the cart.
    let done = wait_completed(&w.sandbox.url, &cart_id).await;
    assert!(done["orderNumber"].is_string(), "{done}");
    assert_one_stripe_payment(&payments_for(&w.sandbox.url, &pi).await, &pi, &cart);
    let deliveries = settled_deliveries(&w.stripe(), 2).await;
    assert!(
        deliveries.iter().all(|d| d["state"] == "delivered"),
        "every signed event was accepted: {deliveries:?}"
    );
    assert_eq!(completes_in(&journal(&w.sandbox.url).await, &cart_id), 1);
}

#[tokio::test]
async fn a_confirm_racing_the_webhook_still_yields_one_payment() {
    let w = world();
    register_webhook(&w).await;
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, cart) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let (pi, _) = stripe_checkout(&w.gateway.url, &cart_id).await;

    let (status, _) = pay(&w.stripe(), &pi, "pm_card_visa", "send").await;
    assert_eq!(status, 200);
    // Stripe.js returns the customer while the webhook is on its way: several confirms
    // race it.
    let confirm_url = format!(
        "{}/ingress/commerce/carts/{cart_id}/payment/stripe/confirm",
        w.gateway.url
    );
    let mut confirms = Vec::new();
    for _ in 0..3 {
        let url = confirm_url.clone();
        confirms.push(tokio::spawn(async move {
            http().post(url).send().await.expect("confirm")
        }));
    }
    for c in confirms {
        let resp = c.await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "confirm: {status} {body}");
        assert_eq!(body["status"], "completed", "{body}");
        assert_eq!(body["paymentId"], pi.as_str());
    }
    wait_completed(&w.sandbox.url, &cart_id).await;
    settled_deliveries(&w.stripe(), 2).await;
    assert_one_stripe_payment(&payments_for(&w.sandbox.url, &pi).await, &pi, &cart);
    assert_eq!(completes_in(&journal(&w.sandbox.url).await, &cart_id), 1);
}

#[tokio::test]
async fn duplicated_and_reordered_events_and_other_integrations_events_change_nothing() {
    let w = world();
    register_webhook(&w).await;
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, cart) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let (pi, _) = stripe_checkout(&w.gateway.url, &cart_id).await;
    // The first deliveries are lost; Stripe then sends the events again, newest first,
    // each twice.
    let (status, _) = pay(&w.stripe(), &pi, "pm_card_visa", "skip").await;
    assert_eq!(status, 200);
    let events = stripe_get(&w.stripe(), "/v1/_test/events").await["data"]
        .as_array()
        .cloned()
        .unwrap();
    let ours: Vec<String> = events
        .iter()
        .filter(|e| e["payment_intent"] == pi.as_str())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ours.len(),
        2,
        "created and amount_capturable_updated: {events:?}"
    );
    for id in ours.iter().rev().chain(ours.iter().rev()) {
        let resp = http()
            .post(format!("{}/v1/_test/events/{id}/redeliver", w.stripe()))
            .bearer_auth(SECRET_KEY)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
    wait_completed(&w.sandbox.url, &cart_id).await;

    // A PaymentIntent of another integration on the same account: verified, answered 200,
    // and ignored.
    let theirs: Value = http()
        .post(format!("{}/v1/payment_intents", w.stripe()))
        .bearer_auth(SECRET_KEY)
        .form(&[
            ("amount", "5000"),
            ("currency", "sek"),
            ("capture_method", "manual"),
            ("metadata[order_id]", "elsewhere-1"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let theirs_id = theirs["id"].as_str().unwrap();
    let (status, _) = pay(&w.stripe(), theirs_id, "pm_card_visa", "send").await;
    assert_eq!(status, 200);

    let deliveries = settled_deliveries(&w.stripe(), 6).await;
    assert!(
        deliveries.iter().all(|d| d["state"] == "delivered"),
        "duplicates and foreign events get a 2xx, so Stripe stops resending: {deliveries:?}"
    );
    assert_one_stripe_payment(&payments_for(&w.sandbox.url, &pi).await, &pi, &cart);
    assert!(payments_for(&w.sandbox.url, theirs_id).await.is_empty());
    assert_eq!(completes_in(&journal(&w.sandbox.url).await, &cart_id), 1);
    assert_eq!(
        w.files.count("webhook_inbox").await,
        4,
        "each distinct event is recorded once (two of ours, two of theirs)"
    );
}

#[tokio::test]
async fn forged_and_stale_stripe_signatures_are_refused_with_401() {
    let w = world();
    let body = br#"{"id":"evt_forged","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_forged","object":"payment_intent","metadata":{"gateway":"psp-gateway"}}}}"#.to_vec();
    let now = psp_core::signature::unix_now();
    let secret = psp_core::Secret::new(WEBHOOK_SECRET);
    let cases = [
        (
            "a made-up signature",
            format!("t={now},v1={}", "ab".repeat(32)),
        ),
        (
            "a stale timestamp",
            psp_core::signature::sign_header(&secret, now - 600, &body),
        ),
        (
            "another secret",
            psp_core::signature::sign_header(&psp_core::Secret::new("whsec_other"), now, &body),
        ),
        (
            "only a v0",
            psp_core::signature::sign_header(&secret, now, &body).replace("v1=", "v0="),
        ),
    ];
    for (what, header) in cases {
        let resp = http()
            .post(format!("{}/webhooks/stripe", w.gateway.url))
            .header("Stripe-Signature", header)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["errors"][0]["code"], "INVALID_SIGNATURE", "{what}");
    }
    let good = psp_core::signature::sign_header(&secret, now, &body);
    let resp = http()
        .post(format!("{}/webhooks/stripe", w.gateway.url))
        .header("Stripe-Signature", good)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "a good signature is accepted");
    assert_eq!(w.files.count("webhook_inbox").await, 1);
}

#[tokio::test]
async fn a_declined_card_ends_the_session_and_the_next_checkout_gets_a_new_payment_intent() {
    let w = world();
    register_webhook(&w).await;
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, cart) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let (first, _) = stripe_checkout(&w.gateway.url, &cart_id).await;
    let (status, declined) = pay(&w.stripe(), &first, "pm_card_chargeDeclined", "send").await;
    assert_eq!(status, 402, "{declined}");
    assert_eq!(declined["error"]["decline_code"], "generic_decline");
    let second = wait_for(
        "a new PaymentIntent after the decline",
        Duration::from_secs(20),
        || async {
            let (pi, _) = stripe_checkout(&w.gateway.url, &cart_id).await;
            (pi != first).then_some(pi)
        },
    )
    .await;
    assert_eq!(
        tests::cart(&w.sandbox.url, &cart_id).await["cartState"],
        "open"
    );
    let (status, _) = pay(&w.stripe(), &second, "pm_card_visa", "send").await;
    assert_eq!(status, 200);
    wait_completed(&w.sandbox.url, &cart_id).await;
    assert_one_stripe_payment(&payments_for(&w.sandbox.url, &second).await, &second, &cart);
    assert!(payments_for(&w.sandbox.url, &first).await.is_empty());
}

#[tokio::test]
async fn the_embedded_default_pays_with_the_fake_stripe_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path())
        // Configured from the environment, the embedded default is asked for explicitly.
        .env("PSP_SANDBOX__ENABLED", "true")
        .env("PSP_SERVER__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    let gateway = spawn_with(cmd, "psp-gateway listening on ");
    let url = gateway.url.clone();
    let product = a_product(&url).await;
    let (cart_id, cart) = create_cart(&url, &[(&product, 1)]).await;
    let (pi, secret) = stripe_checkout(&url, &cart_id).await;
    // The demo's hosted test page stands in for Stripe.js.
    let page = http()
        .get(format!(
            "{url}/fakes/stripe/pay/{pi}?client_secret={secret}"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">Pay</button>"), "{page}");
    let paid = http()
        .post(format!("{url}/fakes/stripe/pay/{pi}/confirm"))
        .form(&[
            ("payment_method", "pm_card_visa"),
            ("return_url", "http://127.0.0.1:9/thanks"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    // The fake sends the event to the gateway's own /webhooks/stripe, signed with the
    // embedded default's secret, without any endpoint registration.
    wait_completed(&url, &cart_id).await;
    assert_one_stripe_payment(&payments_for(&url, &pi).await, &pi, &cart);
}
