//! `psp-gateway sandbox --gateway-url URL --hook-token TOKEN`: a stand-alone sandbox
//! forwarding its hooks to a gateway in another process, as the bridge app of a real
//! Hantera instance does.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{binary, create_cart, get_json, spawn_with, wait_for, GatewayFiles, Proc};

const HOOK_TOKEN: &str = "e2e-hook-token-0123456789abcdef";

fn sandbox_forwarding(gateway_url: &str, token: &str, by_env: bool) -> Proc {
    let mut cmd = Command::new(binary());
    cmd.args(["sandbox", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn");
    if by_env {
        cmd.env("PSP_SANDBOX_GATEWAY_URL", gateway_url)
            .env("PSP_SANDBOX_HOOK_TOKEN", token);
    } else {
        cmd.args(["--gateway-url", gateway_url, "--hook-token", token]);
    }
    spawn_with(cmd, "psp-gateway sandbox listening on ")
}

/// A loopback address nothing listens on yet, for a gateway that starts later.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    addr.to_string()
}

/// The finished hooks of one cart, once there are `count` of them.
async fn finished_hooks(sandbox: &str, cart_id: &str, count: usize) -> Vec<Value> {
    wait_for(
        &format!("{count} finished hooks"),
        Duration::from_secs(30),
        || async {
            let outbox = get_json(&format!("{sandbox}/sandbox/hooks")).await;
            let finished: Vec<Value> = outbox["finished"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|h| h["cartId"] == cart_id)
                .collect();
            (finished.len() >= count).then_some(finished)
        },
    )
    .await
}

#[tokio::test]
async fn a_gateway_that_starts_after_the_sandbox_receives_the_hooks_it_missed() {
    let gateway_addr = free_address();
    let gateway_url = format!("http://{gateway_addr}");
    let sandbox = sandbox_forwarding(&gateway_url, HOOK_TOKEN, false);
    // The storefront works while the gateway is not there yet.
    let (cart_id, _) = create_cart(&sandbox.url, &[("MUG-002", 1), ("CAP-003", 1)]).await;
    let outbox = get_json(&format!("{}/sandbox/hooks", sandbox.url)).await;
    assert_eq!(outbox["target"], gateway_url.as_str());

    let files = GatewayFiles::new(&sandbox.url, "");
    let _gateway = files.start(&[
        ("PSP_SERVER__LISTEN", gateway_addr.as_str()),
        ("PSP_HANTERA__HOOK_TOKEN", HOOK_TOKEN),
    ]);
    let finished = finished_hooks(&sandbox.url, &cart_id, 2).await;
    for hook in &finished {
        assert_eq!(hook["hook"], "OnCartMutation");
        assert_eq!(
            hook["outcome"], "delivered",
            "the gateway took the token: {hook}"
        );
    }
}

#[tokio::test]
async fn the_gateway_url_and_token_can_come_from_the_environment() {
    // The gateway knows another token: it refuses the hook (401), and the sandbox drops
    // it rather than retrying forever.
    let files = GatewayFiles::new("http://127.0.0.1:9", "");
    let gateway = files.start(&[("PSP_HANTERA__HOOK_TOKEN", HOOK_TOKEN)]);
    let sandbox = sandbox_forwarding(&gateway.url, "a-token-the-gateway-does-not-know", true);
    let (cart_id, _) = create_cart(&sandbox.url, &[("MUG-002", 1)]).await;
    let finished = finished_hooks(&sandbox.url, &cart_id, 1).await;
    assert_eq!(finished[0]["outcome"], "rejected");
    assert_eq!(finished[0]["status"], 401);
}

#[test]
fn a_gateway_url_without_a_hook_token_is_refused() {
    let output = Command::new(binary())
        .args(["sandbox", "--gateway-url", "http://127.0.0.1:8080"])
        .env_remove("PSP_SANDBOX_HOOK_TOKEN")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--hook-token"), "{stderr}");
}
