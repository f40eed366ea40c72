//! The command line contract: `providers`, `check-config`, and the embedded default that
//! a new user starts with no configuration at all.

use std::process::Command;

use serde_json::{json, Value};
use tests::*;

#[test]
fn providers_lists_the_compiled_in_providers_sorted() {
    let out = Command::new(binary()).arg("providers").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text.lines().collect();
    assert!(ids.contains(&"mock"), "{text}");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[test]
fn check_config_accepts_a_good_file_and_names_what_is_wrong_in_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[sandbox]\nenabled = true\n[providers.mock]\nwebhook_secret = \"whsec_x\"\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cases = [
        ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
        ("[providers.paypal]\nkey = \"x\"\n", "paypal"),
        ("[providers.mock]\napi_key = \"x\"\n", "webhook_secret"),
        ("[store]\nurl = \"mysql://x\"\n", "store.url"),
    ];
    for (toml, needle) in cases {
        let bad = dir.path().join("bad.toml");
        // In sandbox mode, so that the error is the one the case is about.
        std::fs::write(&bad, format!("[sandbox]\nenabled = true\n{toml}")).unwrap();
        let out = Command::new(binary())
            .args(["check-config", "--config"])
            .arg(&bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{toml} should be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{toml}: {err}");
    }
}

#[test]
fn an_environment_override_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[sandbox]\nenabled = true\n[server]\nlisten = \"127.0.0.1:1\"\n[providers.mock]\nwebhook_secret = \"x\"\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&file)
        .env("PSP_SERVER__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The file's address is good, so an error about it comes from the environment; the
    // value itself is not repeated (config errors never show values).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.listen"), "{stderr}");
}

#[tokio::test]
async fn the_embedded_default_pays_a_cart_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary());
    cmd.current_dir(dir.path())
        // Configured from the environment, the embedded default is asked for explicitly.
        .env("PSP_SANDBOX__ENABLED", "true")
        .env("PSP_SERVER__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    let gateway = spawn_embedded(cmd);
    let url = gateway.url.clone();
    let index = http()
        .get(format!("{url}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        index.contains("psp-gateway") && index.contains(&url),
        "the printed address serves a page"
    );
    // One origin serves the storefront's cart API (the sandbox) and the payment API.
    let product = a_product(&url).await;
    let (cart_id, _) = create_cart(&url, &[(&product, 1)]).await;
    let resp = http()
        .post(format!(
            "{url}/ingress/commerce/carts/{cart_id}/payment/mock"
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let session: Value = resp.json().await.unwrap();
    let redirect = session["redirectUrl"].as_str().unwrap();
    assert!(
        redirect.starts_with(&url),
        "the hosted page is served by the gateway: {redirect}"
    );
    let page = http()
        .get(redirect)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approve"));
    // The customer presses Approve on the hosted page (a form post).
    let approve = http()
        .post(format!("{redirect}/approve"))
        .form(&[("card", "4242 4242 4242 4242")])
        .send()
        .await
        .unwrap();
    assert!(approve.status().is_redirection() || approve.status().is_success());
    wait_completed(&url, &cart_id).await;
    assert!(
        dir.path().join("psp-gateway.db").exists(),
        "the SQLite file is in the working folder"
    );
}

fn spawn_embedded(cmd: Command) -> Proc {
    tests::spawn_with(cmd, "psp-gateway listening on ")
}

#[tokio::test]
async fn sigterm_stops_the_gateway_cleanly() {
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let mut gateway = files.start(&[]);
    assert!(http()
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let status = gateway.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn readiness_follows_hantera() {
    let mut sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let gateway = files.start(&[]);
    let ready = http()
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    sandbox.kill9();
    let not_ready = http()
        .get(format!("{}/readyz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(not_ready.status(), 503);
    let body: Value = not_ready.json().await.unwrap();
    assert_eq!(body["store"], "ok");
    assert_ne!(body["hantera"], "ok");
    let live = http()
        .get(format!("{}/healthz", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200, "liveness does not depend on Hantera");
}
