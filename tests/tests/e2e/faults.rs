//! Faults are normal: Hantera failing a third of its calls, and the gateway killed with
//! SIGKILL between answering a webhook and completing. Every cart still completes, once.

use std::time::Duration;

use serde_json::{json, Value};
use tests::*;

async fn set_faults(sandbox: &str, faults: Value) {
    let resp = http()
        .put(format!("{sandbox}/sandbox/faults"))
        .json(&faults)
        .send()
        .await
        .expect("set faults");
    assert!(resp.status().is_success(), "set faults: {}", resp.status());
}

fn successful_completes(journal: &[Value], cart_id: &str) -> usize {
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

/// Checkout as a storefront does: a 502 means "try again".
async fn checkout_with_retries(gateway: &str, cart_id: &str) -> String {
    wait_for(
        "a checkout through the faults",
        Duration::from_secs(30),
        || async {
            let resp = http()
                .post(format!(
                    "{gateway}/ingress/commerce/carts/{cart_id}/payment/mock"
                ))
                .json(&json!({}))
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let v: Value = resp.json().await.ok()?;
            v["paymentId"].as_str().map(str::to_string)
        },
    )
    .await
}

#[tokio::test]
async fn every_cart_completes_once_while_hantera_fails_thirty_percent_of_calls() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[]);
    let product = a_product(&sandbox.url).await;
    let mut carts = Vec::new();
    for _ in 0..6 {
        carts.push(create_cart(&sandbox.url, &[(&product, 1)]).await.0);
    }
    set_faults(
        &sandbox.url,
        json!({ "errorRate": 0.15, "dropRate": 0.1, "dropAfterRate": 0.05, "latencyMs": 0 }),
    )
    .await;
    let mut refs = Vec::new();
    for cart_id in &carts {
        let psp_ref = checkout_with_retries(&gateway.url, cart_id).await;
        approve(&sandbox.url, &psp_ref, json!({})).await;
        refs.push(psp_ref);
    }
    // Completion happens through the faults; the inspection endpoints are not faulted.
    for cart_id in &carts {
        wait_for(
            "the cart to complete through the faults",
            Duration::from_secs(60),
            || async {
                let c = get_json(&format!("{}/sandbox/carts/{cart_id}", sandbox.url)).await;
                (c["cart"]["cartState"] == "completed" || c["cartState"] == "completed")
                    .then_some(())
            },
        )
        .await;
    }
    set_faults(&sandbox.url, json!({})).await;
    let injected = get_json(&format!("{}/sandbox/faults/injected", sandbox.url)).await;
    let struck = ["errors", "drops", "dropsAfter"]
        .iter()
        .map(|k| injected[k].as_u64().unwrap())
        .sum::<u64>();
    assert!(struck >= 3, "the faults struck: {injected}");
    let journal = journal(&sandbox.url).await;
    for (cart_id, psp_ref) in carts.iter().zip(&refs) {
        assert_eq!(
            payments_for(&sandbox.url, psp_ref).await.len(),
            1,
            "one payment for {cart_id}"
        );
        assert_eq!(
            successful_completes(&journal, cart_id),
            1,
            "one completion of {cart_id}"
        );
    }
    drop(gateway);
}

#[tokio::test]
async fn a_gateway_killed_after_answering_a_webhook_completes_the_cart_after_restart() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    // The first gateway answers webhooks but runs no jobs: it dies between the answer
    // and the completion.
    let mut first = files.start(&[("PSP_WORKER__ENABLED", "false")]);
    let product = a_product(&sandbox.url).await;
    let (cart_id, _) = create_cart(&sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&first.url, &cart_id).await;
    approve(&sandbox.url, &psp_ref, json!({})).await;
    wait_for(
        "the webhook to be answered",
        Duration::from_secs(20),
        || async {
            let m = http()
                .get(format!("{}/metrics", first.url))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            m.contains(r#"verdict="accepted"} 1"#).then_some(())
        },
    )
    .await;
    first.kill9();
    assert_eq!(cart(&sandbox.url, &cart_id).await["cartState"], "open");
    assert_eq!(files.count("jobs").await, 1, "the work survived the kill");

    let _second = files.start(&[]);
    wait_completed(&sandbox.url, &cart_id).await;
    assert_eq!(payments_for(&sandbox.url, &psp_ref).await.len(), 1);
    assert_eq!(
        successful_completes(&journal(&sandbox.url).await, &cart_id),
        1
    );
}
