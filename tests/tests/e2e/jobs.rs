//! Durable jobs through the real binary: captures on `OnPaymentCapture`, PSP sync on
//! `OnCartMutation`, the reconciliation sweep, voiding a double payment, and the admin API
//! for failed work. The sandbox (`psp-gateway sandbox`) runs Hantera and the mock PSP and
//! forwards its hooks to the gateway, as the bridge app of a real Hantera does.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use psp_core::{Currency, Money};
use serde_json::{json, Value};
use tests::*;

/// The hook token shared by the sandbox (which sends it) and the gateway (which wants it).
const HOOK_TOKEN: &str = "e2e-hook-token-0123456789";

struct World {
    sandbox: Proc,
    files: GatewayFiles,
    gateway: Proc,
    /// The gateway's own environment, so that a restart runs the same gateway.
    env: Vec<(String, String)>,
}

/// A port that is free now. The gateway binds it a moment later; the sandbox must know
/// the gateway's address before the gateway exists, because it forwards hooks there.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A sandbox forwarding hooks to a gateway on `port`, and that gateway, configured with
/// `extra` TOML lines in `[providers.mock]` and `env` overrides (`PSP_WORKER__…`).
fn world(extra: &str, env: &[(&str, &str)]) -> World {
    let port = free_port();
    let gateway_url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(binary());
    cmd.args(["sandbox", "--listen", "127.0.0.1:0"])
        .args(["--gateway-url", &gateway_url])
        .args(["--hook-token", HOOK_TOKEN]);
    let sandbox = spawn_with(cmd, "psp-gateway sandbox listening on ");
    let files = GatewayFiles::new(&sandbox.url, extra);
    let mut all = vec![
        (
            "PSP_SERVER__LISTEN".to_string(),
            format!("127.0.0.1:{port}"),
        ),
        (
            "PSP_HANTERA__HOOK_TOKEN".to_string(),
            HOOK_TOKEN.to_string(),
        ),
    ];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let gateway = start(&files, &all);
    World {
        sandbox,
        files,
        gateway,
        env: all,
    }
}

fn start(files: &GatewayFiles, env: &[(String, String)]) -> Proc {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    files.start(&env)
}

impl World {
    fn fake(&self, path: &str) -> String {
        format!("{}/fakes/mock/v1{path}", self.sandbox.url)
    }

    /// The mock PSP's view of one payment: captures, capture calls, amount updates.
    async fn psp_payment(&self, psp_ref: &str) -> Value {
        let all: Value = http()
            .get(self.fake("/_test/payments"))
            .bearer_auth("mock_sk_test")
            .send()
            .await
            .expect("fake payments")
            .json()
            .await
            .expect("fake payments json");
        all["data"]
            .as_array()
            .and_then(|d| d.iter().find(|p| p["id"] == psp_ref).cloned())
            .unwrap_or_else(|| panic!("the mock PSP has no payment {psp_ref}"))
    }

    async fn set_psp_faults(&self, faults: Value) {
        let resp = http()
            .put(self.fake("/_test/faults"))
            .bearer_auth("mock_sk_test")
            .json(&faults)
            .send()
            .await
            .expect("set faults");
        assert!(resp.status().is_success(), "faults: {}", resp.status());
    }

    async fn admin(&self, path: &str) -> Value {
        http()
            .get(format!("{}/admin{path}", self.gateway.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("admin")
            .json()
            .await
            .expect("admin json")
    }

    async fn metrics(&self) -> String {
        http()
            .get(format!("{}/metrics", self.gateway.url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// A cart paid with the mock provider and completed: (cart id, PSP payment, the
    /// sandbox's rendered cart after completion).
    async fn completed_cart(&self, quantity: i64) -> (String, String, Value) {
        let product = a_product(&self.sandbox.url).await;
        let (cart_id, _) = create_cart(&self.sandbox.url, &[(&product, quantity)]).await;
        let psp_ref = checkout(&self.gateway.url, &cart_id).await;
        approve(&self.sandbox.url, &psp_ref, json!({})).await;
        let done = wait_completed(&self.sandbox.url, &cart_id).await;
        (cart_id, psp_ref, done)
    }

    /// The sandbox's payment for a PSP payment.
    async fn hantera_payment(&self, psp_ref: &str) -> Value {
        let found = payments_for(&self.sandbox.url, psp_ref).await;
        assert_eq!(
            found.len(),
            1,
            "one Hantera payment for {psp_ref}: {found:?}"
        );
        found[0].clone()
    }

    /// Posts `OnPaymentCapture` as Hantera's bridge app would.
    async fn capture_hook(&self, payment: &Value, capture_id: &str, amount: &str) -> Value {
        let body = format!(
            r#"{{"hook":"OnPaymentCapture","payment":{payment},
                "capture":{{"paymentCaptureId":"{capture_id}","orderId":null,"amount":{amount},
                  "capturedAmount":0,"remainingAmount":{amount},"state":"pending"}}}}"#
        );
        let resp = http()
            .post(format!(
                "{}/hantera/hooks/OnPaymentCapture",
                self.gateway.url
            ))
            .bearer_auth(HOOK_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("capture hook");
        let status = resp.status();
        let v: Value = resp.json().await.expect("hook json");
        assert!(status.is_success(), "capture hook: {status} {v}");
        v
    }
}

fn minor(amount: &Value, currency: &Value) -> i64 {
    let currency = Currency::from_code(currency.as_str().expect("currency")).expect("currency");
    Money::parse_major(&amount.to_string(), currency)
        .expect("an exact amount")
        .minor
}

fn charges(payment: &Value) -> Vec<Value> {
    payment["journalEntries"]
        .as_array()
        .map(|j| {
            j.iter()
                .filter(|e| e["paymentJournalEntryType"] == "charge")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_charges(w: &World, psp_ref: &str, n: usize) -> Value {
    wait_for("the charge in Hantera", Duration::from_secs(30), || async {
        let p = payments_for(&w.sandbox.url, psp_ref).await.pop()?;
        (charges(&p).len() >= n).then_some(p)
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn capture_payments_on_the_order_captures_the_order_total_once_and_completes_the_capture() {
    let w = world("", &[]);
    let (cart_id, psp_ref, done) = w.completed_cart(2).await;
    let order_id = done["orderId"].as_str().expect("an order").to_string();
    let resp = http()
        .post(format!(
            "{}/sandbox/orders/{order_id}/capture-payments",
            w.sandbox.url
        ))
        .send()
        .await
        .expect("capturePayments");
    assert!(
        resp.status().is_success(),
        "capturePayments: {}",
        resp.status()
    );

    let payment = wait_charges(&w, &psp_ref, 1).await;
    let total = minor(&done["orderTotal"], &done["currencyCode"]);
    let psp = w.psp_payment(&psp_ref).await;
    let captures = psp["captures"].as_array().unwrap();
    assert_eq!(captures.len(), 1, "one capture at the PSP: {psp}");
    assert_eq!(captures[0]["amount"], total, "the order total, exactly");
    let charge = &charges(&payment)[0];
    assert_eq!(minor(&charge["amount"], &done["currencyCode"]), total);
    assert_eq!(charge["transactionReference"], captures[0]["id"]);
    assert_eq!(charge["authorizationNumber"], psp_ref.as_str());

    let detail = wait_for(
        "the capture to complete",
        Duration::from_secs(10),
        || async {
            let d = get_json(&format!("{}/sandbox/carts/{cart_id}", w.sandbox.url)).await;
            let state = d["order"]["captures"][0]["state"].clone();
            (state == "completed").then_some(d)
        },
    )
    .await;
    assert_eq!(detail["order"]["captures"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_capture_hook_delivered_five_times_captures_once_at_the_psp() {
    let w = world("", &[]);
    let (_, psp_ref, done) = w.completed_cart(1).await;
    let payment = w.hantera_payment(&psp_ref).await;
    let total = done["orderTotal"].to_string();
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(
            w.capture_hook(&payment, "11111111-2222-4333-8444-555555555555", &total)
                .await,
        );
    }
    assert_eq!(
        answers.iter().filter(|a| a["duplicate"] == true).count(),
        4,
        "{answers:?}"
    );
    wait_charges(&w, &psp_ref, 1).await;
    let psp = w.psp_payment(&psp_ref).await;
    assert_eq!(psp["captures"].as_array().unwrap().len(), 1, "{psp}");
    assert_eq!(psp["capture_calls"].as_array().unwrap().len(), 1, "{psp}");
    assert_eq!(charges(&w.hantera_payment(&psp_ref).await).len(), 1);
    let metrics = w.metrics().await;
    assert!(
        metrics.contains(r#"psp_gateway_jobs_total{kind="capture",result="scheduled"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn captures_that_time_out_twice_succeed_on_the_third_attempt_with_one_idempotency_key() {
    // The adapter gives up after 1 s; the PSP hangs for 4 s on the first two calls. (The
    // margin keeps a loaded machine's slow but answered third call from timing out too.)
    let w = world("timeout_ms = 1000", &[]);
    let (_, psp_ref, done) = w.completed_cart(1).await;
    let payment = w.hantera_payment(&psp_ref).await;
    w.set_psp_faults(json!({ "hang_next": 2, "hang_ms": 4000 }))
        .await;
    w.capture_hook(
        &payment,
        "22222222-2222-4333-8444-555555555555",
        &done["orderTotal"].to_string(),
    )
    .await;
    wait_charges(&w, &psp_ref, 1).await;

    let psp = w.psp_payment(&psp_ref).await;
    let calls = psp["capture_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3, "two timeouts and a success: {psp}");
    assert_eq!(calls[0]["fault"], "hang");
    assert_eq!(calls[1]["fault"], "hang");
    assert_eq!(calls[2]["status"], 201);
    let keys: Vec<&Value> = calls.iter().map(|c| &c["idempotency_key"]).collect();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "one key for every attempt: {keys:?}"
    );
    assert_eq!(psp["captures"].as_array().unwrap().len(), 1);
    let metrics = w.metrics().await;
    assert!(
        metrics.contains(r#"psp_gateway_jobs_total{kind="capture",result="retried"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_refused_capture_fails_once_is_listed_with_the_reason_and_runs_again_only_when_replayed()
{
    let w = world("", &[]);
    let (_, psp_ref, done) = w.completed_cart(1).await;
    let payment = w.hantera_payment(&psp_ref).await;
    // The authorization was voided at the PSP (in its dashboard, say): the PSP refuses
    // the capture with a 4xx. (The gateway never asks for more than was authorized, so an
    // amount cannot provoke the refusal.)
    let voided = http()
        .post(w.fake(&format!("/payments/{psp_ref}/void")))
        .bearer_auth("mock_sk_test")
        .header("Idempotency-Key", "dashboard-void")
        .send()
        .await
        .expect("void at the PSP");
    assert!(voided.status().is_success(), "void: {}", voided.status());
    let answer = w
        .capture_hook(
            &payment,
            "33333333-2222-4333-8444-555555555555",
            &done["orderTotal"].to_string(),
        )
        .await;
    let job_id = answer["jobId"].as_i64().unwrap();

    let failed = wait_for(
        "the capture to be listed as failed",
        Duration::from_secs(20),
        || async {
            let v = w.admin("/failed?kind=capture").await;
            v["jobs"]
                .as_array()?
                .iter()
                .find(|j| j["id"] == job_id)
                .cloned()
        },
    )
    .await;
    let reason = failed["reason"].as_str().unwrap();
    assert!(reason.contains("invalid_state"), "{reason}");
    let job = w.admin(&format!("/jobs/{job_id}")).await;
    let leased = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "leased")
        .count();
    assert_eq!((job["attempts"].as_i64(), leased), (Some(1), 1), "{job}");
    assert_eq!(job["state"], "failed");
    let activity = w.hantera_payment(&psp_ref).await["activityLog"].to_string();
    assert!(activity.contains("invalid_state"), "{activity}");
    assert_eq!(
        w.psp_payment(&psp_ref).await["capture_calls"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A replay runs it once more; the PSP refuses again and it is failed again.
    let replay: Value = http()
        .post(format!("{}/admin/jobs/{job_id}/replay", w.gateway.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replay["replayed"], true);
    wait_for("the replayed attempt", Duration::from_secs(20), || async {
        let job = w.admin(&format!("/jobs/{job_id}")).await;
        (job["state"] == "failed" && job["history"].as_array()?.len() >= 5).then_some(())
    })
    .await;
    let psp = w.psp_payment(&psp_ref).await;
    assert_eq!(psp["capture_calls"].as_array().unwrap().len(), 2);
    assert!(psp["captures"].as_array().unwrap().is_empty());
    assert!(charges(&w.hantera_payment(&psp_ref).await).is_empty());
}

#[tokio::test]
async fn captures_leased_when_the_gateway_is_killed_happen_exactly_once_after_a_restart() {
    // Short leases, so that the restarted gateway takes the dead one's jobs over quickly.
    let mut w = world("", &[("PSP_WORKER__LEASE_SECS", "2")]);
    let mut paid = Vec::new();
    for _ in 0..3 {
        let (_, psp_ref, done) = w.completed_cart(1).await;
        paid.push((psp_ref, done));
    }
    // Every capture call hangs (and does nothing) until the gateway is dead.
    w.set_psp_faults(json!({ "hang_next": 1000, "hang_ms": 20000 }))
        .await;
    for (i, (psp_ref, done)) in paid.iter().enumerate() {
        let payment = w.hantera_payment(psp_ref).await;
        let capture_id = format!("44444444-2222-4333-8444-00000000000{i}");
        w.capture_hook(&payment, &capture_id, &done["orderTotal"].to_string())
            .await;
    }
    for (psp_ref, _) in &paid {
        wait_for(
            "the capture to hang at the PSP",
            Duration::from_secs(20),
            || async {
                let p = w.psp_payment(psp_ref).await;
                (!p["capture_calls"].as_array()?.is_empty()).then_some(())
            },
        )
        .await;
    }
    w.gateway.kill9();
    w.set_psp_faults(json!({})).await;
    w.gateway = start(&w.files, &w.env);

    for (psp_ref, done) in &paid {
        let payment = wait_charges(&w, psp_ref, 1).await;
        let psp = w.psp_payment(psp_ref).await;
        let captures = psp["captures"].as_array().unwrap();
        assert_eq!(captures.len(), 1, "exactly one capture: {psp}");
        assert_eq!(
            captures[0]["amount"],
            minor(&done["orderTotal"], &done["currencyCode"])
        );
        let keys: Vec<&Value> = psp["capture_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["idempotency_key"])
            .collect();
        assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
        assert_eq!(charges(&payment).len(), 1, "exactly one charge: {payment}");
    }
    // The charge is visible in Hantera a moment before the job records its success.
    wait_for(
        "every capture job to succeed",
        Duration::from_secs(10),
        || async {
            let done = w
                .files
                .count("jobs WHERE kind = 'capture' AND state = 'succeeded'")
                .await;
            (done == 3).then_some(())
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Cart sync
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fifty_rapid_cart_mutations_reach_the_psp_as_a_few_updates_ending_with_the_final_cart() {
    let w = world("", &[("PSP_WORKER__SYNC_DELAY_MS", "300")]);
    let products = get_json(&format!("{}/sandbox/products", w.sandbox.url)).await;
    let product = products[0]["productNumber"].as_str().unwrap().to_string();
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;

    let mut last = Value::Null;
    for _ in 0..50 {
        let resp = http()
            .post(format!(
                "{}/ingress/commerce/carts/{cart_id}/add-item",
                w.sandbox.url
            ))
            .json(&json!({ "productNumber": product, "quantity": 1 }))
            .send()
            .await
            .expect("add-item");
        assert!(resp.status().is_success(), "add-item: {}", resp.status());
        last = resp.json().await.unwrap();
    }
    let final_total = minor(&last["orderTotal"], &last["currencyCode"]);
    let psp = wait_for(
        "the PSP to hold the final cart",
        Duration::from_secs(30),
        || async {
            let p = w.psp_payment(&psp_ref).await;
            (p["amount"] == final_total).then_some(p)
        },
    )
    .await;
    let updates = psp["amount_updates"].as_array().unwrap();
    assert!(
        !updates.is_empty() && updates.len() <= 10,
        "{} PSP updates for 50 mutations",
        updates.len()
    );
    assert_eq!(updates.last().unwrap()["amount"], final_total);
    eprintln!(
        "50 cart mutations reached the PSP as {} updates",
        updates.len()
    );

    // The cart carries the hashes a storefront watches; they agree once the sync is done.
    let fields = wait_for(
        "the sync hashes on the cart",
        Duration::from_secs(10),
        || async {
            // A storefront reads them from the rendered cart's `fields`.
            let fields = cart(&w.sandbox.url, &cart_id).await["fields"].clone();
            let synced = fields["mockSyncHash"].as_str()?.to_string();
            (fields["mockPendingHash"] == synced.as_str()).then_some(fields)
        },
    )
    .await;
    assert_eq!(fields["mockSyncHash"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn a_cart_mutation_whose_lines_carry_non_uuid_cart_item_ids_is_accepted_and_synced_to_the_psp(
) {
    // A sandbox that forwards no hooks: the only OnCartMutation is the one posted below.
    let sandbox = start_sandbox();
    let files = GatewayFiles::new(&sandbox.url, "");
    let env = vec![(
        "PSP_HANTERA__HOOK_TOKEN".to_string(),
        HOOK_TOKEN.to_string(),
    )];
    let gateway = start(&files, &env);
    let w = World {
        sandbox,
        files,
        gateway,
        env,
    };
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;
    let resp = http()
        .post(format!(
            "{}/ingress/commerce/carts/{cart_id}/add-item",
            w.sandbox.url
        ))
        .json(&json!({ "productNumber": product, "quantity": 2 }))
        .send()
        .await
        .expect("add-item");
    assert!(resp.status().is_success(), "add-item: {}", resp.status());
    let mut rendered: Value = resp.json().await.unwrap();
    let total = minor(&rendered["orderTotal"], &rendered["currencyCode"]);

    // The storefront SDK types cartItemId as a string; the gateway does not use it.
    for (i, item) in rendered["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        item["cartItemId"] = json!(format!("line-{i}"));
        item["somethingNew"] = json!({ "shape": ["unknown", 1] });
    }
    rendered["hook"] = json!("OnCartMutation");
    rendered["cartNumber"] = json!(1042);
    let resp = http()
        .post(format!("{}/hantera/hooks/OnCartMutation", w.gateway.url))
        .bearer_auth(HOOK_TOKEN)
        .json(&rendered)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sessions"][0]["outcome"], "scheduled", "{answer}");
    wait_for(
        "the PSP to hold the changed cart",
        Duration::from_secs(30),
        || async { (w.psp_payment(&psp_ref).await["amount"] == total).then_some(()) },
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Reconciliation and double payments
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_paid_cart_whose_webhook_never_arrives_is_completed_by_the_sweep() {
    let w = world(
        "",
        &[
            ("PSP_WORKER__SWEEP_INTERVAL_MS", "200"),
            ("PSP_WORKER__QUIET_AFTER_MS", "500"),
        ],
    );
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;
    let approved = Instant::now();
    approve(&w.sandbox.url, &psp_ref, json!({ "webhook": "skip" })).await;

    // Quiet for 500 ms, then the next sweep (every 200 ms) schedules the completion.
    let limit = Duration::from_millis(500 + 200) + Duration::from_secs(5);
    wait_for("the sweep to complete the cart", limit, || async {
        let c = cart(&w.sandbox.url, &cart_id).await;
        (c["cartState"] == "completed").then_some(())
    })
    .await;
    let took = approved.elapsed();
    assert_eq!(w.hantera_payment(&psp_ref).await["providerKey"], "mock");
    assert_eq!(w.files.count("webhook_inbox").await, 0, "no webhook came");
    // The completion came from a sweep job (it records its success just after the cart
    // completed).
    wait_for(
        "the sweep's job to succeed",
        Duration::from_secs(10),
        || async {
            let swept = w
                .files
                .count("jobs WHERE dedupe_key LIKE 'sweep:%' AND state = 'succeeded'")
                .await;
            (swept >= 1).then_some(())
        },
    )
    .await;
    eprintln!("the sweep completed the cart {took:?} after the approval");
}

#[tokio::test]
async fn a_second_payment_for_a_completed_cart_is_voided_at_the_psp_and_recorded() {
    let w = world("", &[]);
    let (cart_id, first, done) = w.completed_cart(1).await;
    // A second payment for the same cart, made at the PSP directly (a second tab).
    let total = minor(&done["orderTotal"], &done["currencyCode"]);
    let second: Value = http()
        .post(w.fake("/payments"))
        .bearer_auth("mock_sk_test")
        .header("Idempotency-Key", "e2e-second-payment")
        .json(&json!({
            "amount": total, "currency": done["currencyCode"], "cart_id": cart_id,
            "webhook_url": format!("{}/webhooks/mock", w.gateway.url),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = second["id"].as_str().unwrap().to_string();
    approve(&w.sandbox.url, &second, json!({})).await;

    wait_for(
        "the double payment to be voided",
        Duration::from_secs(30),
        || async {
            let p = w.psp_payment(&second).await;
            (p["status"] == "voided").then_some(())
        },
    )
    .await;
    let record = wait_for(
        "the void job to be recorded",
        Duration::from_secs(10),
        || async {
            let c = w.admin(&format!("/completions/mock/{second}")).await;
            (c["void"]["state"] == "succeeded").then_some(c)
        },
    )
    .await;
    assert_eq!(record["state"], "double_payment");
    assert!(
        record["reason"].as_str().unwrap().contains("void"),
        "{record}"
    );
    let listed = w.admin("/failed").await;
    assert!(
        listed["completions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["pspRef"] == second.as_str() && c["state"] == "double_payment"),
        "{listed}"
    );
    assert_eq!(w.psp_payment(&first).await["status"], "authorized");
    assert!(payments_for(&w.sandbox.url, &second).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Hook authentication through the real binary
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn hooks_with_a_wrong_token_are_refused_and_bad_bodies_are_400() {
    let w = world("", &[]);
    let url = format!("{}/hantera/hooks/OnPaymentCapture", w.gateway.url);
    let resp = http()
        .post(&url)
        .bearer_auth("not-the-hook-token-at-all")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "INVALID_TOKEN");
    let resp = http()
        .post(&url)
        .bearer_auth(HOOK_TOKEN)
        .body(r#"{"hook":"OnPaymentCapture"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "INVALID_HOOK_BODY");
    assert_eq!(w.files.count("jobs").await, 0);
}

#[tokio::test]
async fn a_hundred_confirms_during_a_psp_outage_leave_one_pending_complete_job() {
    // The worker is held back so every deferred completion stays pending. The cart's
    // rate limit (30 calls at once by default) is raised: this is about what a hundred
    // confirms that get through leave behind.
    let w = world(
        "",
        &[
            ("PSP_WORKER__ENABLED", "false"),
            ("PSP_SERVER__RATE_LIMIT__CART_BURST", "200"),
        ],
    );
    let product = a_product(&w.sandbox.url).await;
    let (cart_id, _) = create_cart(&w.sandbox.url, &[(&product, 1)]).await;
    let psp_ref = checkout(&w.gateway.url, &cart_id).await;
    approve(&w.sandbox.url, &psp_ref, json!({ "webhook": "skip" })).await;
    w.set_psp_faults(json!({ "fail_next": 1_000_000 })).await;

    let confirm = format!(
        "{}/ingress/commerce/carts/{cart_id}/payment/mock/confirm",
        w.gateway.url
    );
    for _ in 0..5 {
        let burst = (0..20).map(|_| http().post(&confirm).send());
        for resp in futures::future::join_all(burst).await {
            let resp = resp.expect("confirm");
            let status = resp.status();
            let body: Value = resp.json().await.expect("error JSON");
            assert_eq!(status.as_u16(), 502, "{body}");
            assert_eq!(body["errors"][0]["code"], "COMPLETION_DEFERRED", "{body}");
        }
    }
    let jobs = w
        .files
        .count("jobs WHERE kind = 'complete' AND state = 'pending'")
        .await;
    assert_eq!(
        jobs, 1,
        "one pending completion for the session, not one per confirm"
    );
}
