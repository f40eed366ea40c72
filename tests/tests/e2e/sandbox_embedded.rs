//! The embedded default as a storefront developer meets it: the demo page, the providers
//! it offers, hooks forwarded from the in-process sandbox to the gateway, and a capture
//! asked of an order going all the way to the PSP and back.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tests::{
    binary, cart, create_cart, get_json, http, spawn_with, wait_completed, wait_for, Proc,
};

/// Starts `psp-gateway` with no configuration, as a new user would, in a fresh folder.
fn embedded() -> (Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path())
        // Configured from the environment, the embedded default is asked for explicitly.
        .env("PSP_SANDBOX__ENABLED", "true")
        .env("PSP_SERVER__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    (spawn_with(cmd, "psp-gateway listening on "), dir)
}

/// Pays a one-shoe cart with the mock provider, approving on the hosted page as a
/// customer would, and waits for the completed cart.
async fn paid_cart(url: &str) -> Value {
    let (cart_id, _) = create_cart(url, &[("SHOE-006", 1)]).await;
    let session: Value = http()
        .post(format!(
            "{url}/ingress/commerce/carts/{cart_id}/payment/mock"
        ))
        .json(&json!({}))
        .send()
        .await
        .expect("checkout")
        .json()
        .await
        .expect("checkout JSON");
    let redirect = session["redirectUrl"].as_str().expect("redirectUrl");
    let approved = http()
        .post(format!("{redirect}/approve"))
        .form(&[("card", "4242424242424242")])
        .send()
        .await
        .expect("approve");
    assert!(approved.status().is_success(), "{}", approved.status());
    wait_completed(url, &cart_id).await
}

#[tokio::test]
async fn the_embedded_default_serves_the_demo_checkout_and_lists_its_enabled_providers() {
    let (gateway, _dir) = embedded();
    let url = gateway.url.clone();
    let page = http()
        .get(format!("{url}/"))
        .send()
        .await
        .expect("demo page");
    assert!(page.status().is_success());
    let page = page.text().await.expect("HTML");
    assert!(
        page.contains("Sandbox Store") && page.contains(&url),
        "{page}"
    );
    let providers = get_json(&format!("{url}/sandbox/providers")).await;
    let ids: Vec<&str> = providers["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&"mock"), "{providers}");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "listed in the registry's order");
    assert_eq!(
        providers["preferred"], "mock",
        "the test-only provider first"
    );
    // The page's script and style, and each provider's part of the page: an ES module
    // served by its fake.
    let mut assets = vec![
        ("/demo/app.js".to_string(), "javascript"),
        ("/demo/app.css".to_string(), "css"),
    ];
    for provider in providers["providers"].as_array().expect("providers") {
        let demo = provider["demo"]
            .as_str()
            .expect("every fake here has a demo module");
        assert!(demo.starts_with("/fakes/"), "{provider}");
        assets.push((demo.to_string(), "javascript"));
    }
    for (asset, kind) in assets {
        let response = http()
            .get(format!("{url}{asset}"))
            .send()
            .await
            .expect("asset");
        assert!(response.status().is_success(), "{asset}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.contains(kind), "{asset}: {content_type}");
        if asset.starts_with("/fakes/") {
            let module = response.text().await.expect("the module");
            assert!(module.contains("export"), "{asset}");
        }
    }
}

#[tokio::test]
async fn the_in_process_sandbox_forwards_cart_mutations_that_the_gateway_accepts() {
    let (gateway, _dir) = embedded();
    let url = gateway.url.clone();
    let (cart_id, _) = create_cart(&url, &[("MUG-002", 1), ("CAP-003", 2)]).await;
    let hooks = wait_for("both hooks delivered", Duration::from_secs(20), || async {
        let outbox = get_json(&format!("{url}/sandbox/hooks")).await;
        let finished: Vec<Value> = outbox["finished"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|h| h["cartId"] == cart_id.as_str())
            .collect();
        (finished.len() == 2).then_some(finished)
    })
    .await;
    for hook in &hooks {
        assert_eq!(hook["hook"], "OnCartMutation");
        assert_eq!(hook["outcome"], "delivered", "the gateway took it: {hook}");
    }
    assert_eq!(
        hooks[1]["body"]["items"].as_array().map(Vec::len),
        Some(2),
        "in order: the second hook has both lines"
    );
}

#[tokio::test]
async fn a_capture_asked_of_a_paid_order_is_captured_at_the_psp_and_charged_to_the_payment() {
    let (gateway, _dir) = embedded();
    let url = gateway.url.clone();
    let done = paid_cart(&url).await;
    let order = done["orderNumber"].as_str().expect("orderNumber");

    // The shop ships: its back office sends capturePayments to the order.
    let answer: Value = http()
        .post(format!("{url}/sandbox/orders/{order}/capture-payments"))
        .send()
        .await
        .expect("capture-payments")
        .json()
        .await
        .expect("JSON");
    let capture = &answer["data"]["capturePayments"][0];
    assert_eq!(capture["amount"].to_string(), "1299.00", "{answer}");
    let capture_id = capture["paymentCaptureId"].clone();

    // OnPaymentCapture reaches the gateway, whose capture job captures at the mock PSP
    // and sends `charge`, which completes the pending capture.
    let payment = wait_for(
        "the capture to be completed",
        Duration::from_secs(30),
        || async {
            let payments = get_json(&format!("{url}/sandbox/payments")).await;
            payments
                .as_array()
                .and_then(|list| {
                    list.iter()
                        .find(|p| p["captures"][0]["paymentCaptureId"] == capture_id)
                })
                .filter(|p| p["captures"][0]["state"] == "completed")
                .cloned()
        },
    )
    .await;
    let journal: Vec<&str> = payment["journalEntries"]
        .as_array()
        .expect("journal")
        .iter()
        .filter_map(|e| e["paymentJournalEntryType"].as_str())
        .collect();
    assert_eq!(journal, ["charge", "capture"]);
    assert_eq!(
        payment["captures"][0]["capturedAmount"].to_string(),
        "1299.00"
    );
    let outbox = get_json(&format!("{url}/sandbox/hooks")).await;
    let forwarded = outbox["finished"]
        .as_array()
        .and_then(|f| f.iter().find(|h| h["hook"] == "OnPaymentCapture"))
        .cloned()
        .expect("OnPaymentCapture was forwarded");
    assert_eq!(forwarded["outcome"], "delivered", "{forwarded}");
    assert_eq!(forwarded["body"]["capture"]["paymentCaptureId"], capture_id);
}

#[tokio::test]
async fn sigterm_stops_the_gateway_promptly_even_with_a_cart_event_stream_open() {
    let (mut gateway, _dir) = embedded();
    let url = gateway.url.clone();
    let (cart_id, _) = create_cart(&url, &[("MUG-002", 1)]).await;
    let mut stream = http()
        .get(format!("{url}/ingress/commerce/carts/{cart_id}/events"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("events");
    let first = stream.chunk().await.expect("readable").expect("a chunk");
    assert!(String::from_utf8_lossy(&first).contains("event: init"));
    assert_eq!(cart(&url, &cart_id).await["cartState"], "open");

    // A browser never closes an event stream by itself; shutdown must end it.
    let stopped = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || gateway.terminate()),
    )
    .await
    .expect("the gateway stopped within 15 s")
    .expect("the waiting thread finished");
    assert!(stopped.success(), "{stopped:?}");
}
