//! A cart that changes while it is being completed, through the real binary: the customer
//! adds an item (another tab, any storefront call) while `confirm` or the PSP's webhook is
//! completing the cart. Whatever the timing, every trial must end in one of three visible
//! ways, never in a cart that silently costs more than was authorized:
//! - completed, with the order total equal to the authorization;
//! - not completed (the change was seen before `complete`, or the bridge app's rule refused
//!   it), the completion `needs_attention` and listed by the admin API;
//! - completed for more than was authorized, the completion `underpaid`, the Hantera payment
//!   tagged, listed by the admin API and counted in the metrics.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use tests::*;

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    CompletedExactly,
    NotCompletedFlagged,
    UnderpaidFlagged,
}

/// Where the gateway and its Hantera are.
struct Setup {
    gateway: String,
    hantera: String,
}

/// Which path completes the cart.
#[derive(Debug, Clone, Copy)]
enum Path {
    Confirm,
    Webhook,
}

async fn put(url: &str, body: Value) {
    let resp = http().put(url).json(&body).send().await.expect("PUT");
    assert!(resp.status().is_success(), "PUT {url}: {}", resp.status());
}

async fn admin(setup: &Setup, path: &str) -> Value {
    let resp = http()
        .get(format!("{}/admin{path}", setup.gateway))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin GET");
    assert!(
        resp.status().is_success(),
        "admin {path}: {}",
        resp.status()
    );
    resp.json().await.expect("admin JSON")
}

async fn add_item(hantera: &str, cart_id: &str, product: &str) {
    // The change may come too late (the cart is completed already), which is a refusal the
    // storefront sees; either way the trial must end visibly.
    let _ = http()
        .post(format!(
            "{hantera}/ingress/commerce/carts/{cart_id}/add-item"
        ))
        .json(&json!({ "productNumber": product, "quantity": 1 }))
        .send()
        .await
        .expect("add-item");
}

/// One trial: checkout, approval, then the completion path and a cart change at once. The
/// change is fired after `offset_ms`, which spreads the trials over the whole completion.
async fn trial(setup: &Setup, path: Path, offset_ms: u64) -> Ended {
    let (cart_id, _) = create_cart(&setup.hantera, &[("TSHIRT-001", 1)]).await;
    let psp_ref = checkout(&setup.gateway, &cart_id).await;
    let approval = match path {
        Path::Confirm => json!({ "webhook": "skip" }),
        Path::Webhook => json!({}),
    };
    let complete = async {
        match path {
            Path::Webhook => approve(&setup.hantera, &psp_ref, approval).await,
            Path::Confirm => {
                approve(&setup.hantera, &psp_ref, approval).await;
                let resp = http()
                    .post(format!(
                        "{}/ingress/commerce/carts/{cart_id}/payment/mock/confirm",
                        setup.gateway
                    ))
                    .send()
                    .await
                    .expect("confirm");
                resp.json().await.unwrap_or(Value::Null)
            }
        }
    };
    let change = async {
        tokio::time::sleep(Duration::from_millis(offset_ms)).await;
        add_item(&setup.hantera, &cart_id, "SHOE-006").await;
    };
    tokio::join!(complete, change);

    // The completion settles into a state a person or the storefront can see.
    let record = wait_for(
        "the completion to settle",
        Duration::from_secs(60),
        || async {
            let resp = http()
                .get(format!(
                    "{}/admin/completions/mock/{psp_ref}",
                    setup.gateway
                ))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .ok()?;
            let record: Value = resp.json().await.ok()?;
            let state = record["state"].as_str()?.to_string();
            ["completed", "underpaid", "needs_attention"]
                .contains(&state.as_str())
                .then_some(record)
        },
    )
    .await;
    let state = record["state"].as_str().unwrap();
    let cart = cart(&setup.hantera, &cart_id).await;
    let failed = admin(setup, "/failed").await;
    let listed = failed["completions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["pspRef"] == psp_ref.as_str() && c["state"] == state);

    if cart["cartState"] != "completed" {
        assert_eq!(state, "needs_attention", "an open cart: {record} {cart}");
        assert!(
            listed,
            "a completion that needs attention is listed: {failed}"
        );
        return Ended::NotCompletedFlagged;
    }
    let payments = payments_for(&setup.hantera, &psp_ref).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    let authorized = &payments[0]["authorizations"][0]["amount"];
    if &cart["orderTotal"] == authorized {
        assert_eq!(state, "completed", "{record} {cart}");
        return Ended::CompletedExactly;
    }
    assert_eq!(
        state, "underpaid",
        "a cart completed for {} on an authorization of {authorized} must be underpaid: {record}",
        cart["orderTotal"]
    );
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("underpaid: the cart was completed with a total of")
            && reason.contains("but the mock payment authorized"),
        "the reason names both amounts: {reason}"
    );
    assert!(listed, "an underpaid completion is listed: {failed}");
    let tags = payments[0]["tags"].as_array().unwrap();
    assert!(
        tags.iter().any(|t| t == "underpaid"),
        "the Hantera payment is tagged: {}",
        payments[0]
    );
    assert!(
        payments[0]["activityLog"]
            .as_array()
            .is_some_and(|log| !log.is_empty()),
        "the Hantera payment's activity log says why: {}",
        payments[0]
    );
    Ended::UnderpaidFlagged
}

/// Runs `n` trials per path at once, the cart change spread over `spread_ms`.
async fn trials(setup: &Setup, n: u64, spread_ms: u64) -> Vec<Ended> {
    let mut all = Vec::new();
    for path in [Path::Confirm, Path::Webhook] {
        let runs = (0..n).map(|i| trial(setup, path, i * spread_ms / n));
        all.extend(futures::future::join_all(runs).await);
    }
    all
}

async fn underpaid_metric(gateway: &str) -> usize {
    let text = http()
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| {
            l.starts_with(r#"psp_gateway_completions_total{provider="mock",outcome="underpaid"}"#)
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

fn count(ended: &[Ended], what: Ended) -> usize {
    ended.iter().filter(|e| **e == what).count()
}

/// A stand-alone sandbox answering every call after `latency_ms`, with or without the
/// bridge app's completion guard, and a gateway in another process.
async fn separate(latency_ms: u64, guard: bool) -> (Proc, GatewayFiles, Proc) {
    let sandbox = start_sandbox();
    put(
        &format!("{}/sandbox/rules", sandbox.url),
        json!({ "paymentsCoverTotal": guard }),
    )
    .await;
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[]);
    put(
        &format!("{}/sandbox/faults", sandbox.url),
        json!({ "latencyMs": latency_ms }),
    )
    .await;
    (sandbox, files, gateway)
}

#[tokio::test]
async fn against_a_slow_hantera_without_the_guard_a_racing_cart_change_is_completed_exactly_or_flagged_underpaid(
) {
    let (sandbox, _files, gateway) = separate(150, false).await;
    let setup = Setup {
        gateway: gateway.url.clone(),
        hantera: sandbox.url.clone(),
    };
    let ended = trials(&setup, 8, 1200).await;
    eprintln!("without the guard: {ended:?}");
    assert_eq!(
        underpaid_metric(&setup.gateway).await,
        count(&ended, Ended::UnderpaidFlagged),
        "every underpaid completion is counted once"
    );
}

#[tokio::test]
async fn against_a_slow_hantera_with_the_bridge_apps_guard_no_cart_is_completed_for_more_than_was_authorized(
) {
    let (sandbox, _files, gateway) = separate(150, true).await;
    let setup = Setup {
        gateway: gateway.url.clone(),
        hantera: sandbox.url.clone(),
    };
    let ended = trials(&setup, 8, 1200).await;
    eprintln!("with the guard: {ended:?}");
    assert_eq!(count(&ended, Ended::UnderpaidFlagged), 0, "{ended:?}");
    assert_eq!(underpaid_metric(&setup.gateway).await, 0);
}

#[tokio::test]
async fn on_the_embedded_default_a_racing_cart_change_never_completes_a_cart_for_more_than_was_authorized(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path())
        // Configured from the environment, the embedded default is asked for explicitly.
        .env("PSP_SANDBOX__ENABLED", "true")
        .env("PSP_SERVER__LISTEN", "127.0.0.1:0")
        .env("PSP_SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "error");
    let gateway = spawn_with(cmd, "psp-gateway listening on ");
    let setup = Setup {
        gateway: gateway.url.clone(),
        hantera: gateway.url.clone(),
    };
    // The embedded Hantera runs the bridge app's rules, as a shop with the app installed.
    let rules = get_json(&format!("{}/sandbox/rules", setup.hantera)).await;
    assert_eq!(rules, json!({ "paymentsCoverTotal": true }));
    let ended = trials(&setup, 12, 400).await;
    eprintln!("embedded default: {ended:?}");
    assert_eq!(count(&ended, Ended::UnderpaidFlagged), 0, "{ended:?}");
}
