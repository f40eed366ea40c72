//! The hook endpoints and the jobs they schedule, in process: the gateway's router and
//! worker over the in-memory Hantera and store, with a scripted provider. The end-to-end
//! versions through the real binary are in `tests/tests/e2e/jobs.rs`; these pin down the
//! edges (tokens, bad bodies, refusals, lost answers) quickly and exactly.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use gateway::config::Config;
use gateway::edge::{router, AppState};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use psp_core::ports::{Completions, JobState, Jobs, NewPayment, SessionStatus, Sessions};
use psp_core::{
    Capabilities, CaptureDone, CaptureRequest, CheckoutRequest, CheckoutSession, Currency, Money,
    Provider, ProviderError, PspPayment, PspStatus, Registry, SyncRequest, VerifiedEvent,
    WebhookDelivery, WebhookError,
};
use serde_json::{json, Value};
use testkit::mem::{MemHantera, MemStore, Op};
use tower::ServiceExt;
use uuid::Uuid;

const TOKEN: &str = "hook-token-0123456789abcdef";

// ---------------------------------------------------------------------------------------
// A provider whose answers the test scripts
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Scripted {
    capabilities: Mutex<Capabilities>,
    /// Answers for the next captures; empty means success.
    capture_script: Mutex<VecDeque<ProviderError>>,
    /// (idempotency key, amount) of every capture call.
    captures: Mutex<Vec<(String, i64)>>,
    /// (idempotency key, amount) of every sync call.
    syncs: Mutex<Vec<(String, i64)>>,
    sync_script: Mutex<VecDeque<ProviderError>>,
    status: Mutex<Option<PspStatus>>,
    /// Runs while the checkout talks to the PSP (what the customer does meanwhile).
    during_checkout: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Scripted {
    fn new() -> Arc<Self> {
        let s = Self::default();
        *s.capabilities.lock() = Capabilities {
            capture: true,
            partial_capture: true,
            void: true,
            update_amount: true,
            signed_webhooks: true,
        };
        Arc::new(s)
    }
}

#[async_trait]
impl Provider for Scripted {
    fn id(&self) -> &'static str {
        "scripted"
    }

    fn capabilities(&self) -> Capabilities {
        *self.capabilities.lock()
    }

    fn payment_number_prefix(&self) -> &str {
        "S-"
    }

    async fn checkout(&self, req: CheckoutRequest<'_>) -> Result<CheckoutSession, ProviderError> {
        let meanwhile = self.during_checkout.lock().take();
        if let Some(meanwhile) = meanwhile {
            meanwhile();
        }
        Ok(CheckoutSession {
            psp_ref: "pay_s".into(),
            amount: req.amount,
            client: json!({ "redirectUrl": "http://psp.test/pay/pay_s" }),
        })
    }

    async fn verify_webhook(&self, _: &WebhookDelivery<'_>) -> Result<VerifiedEvent, WebhookError> {
        Err(WebhookError::Malformed("webhooks are not scripted".into()))
    }

    async fn fetch(&self, psp_ref: &str) -> Result<PspPayment, ProviderError> {
        let status = self.status.lock().clone().unwrap_or(PspStatus::Pending);
        Ok(PspPayment {
            psp_ref: psp_ref.to_string(),
            cart_id: None,
            status,
        })
    }

    async fn capture(&self, req: CaptureRequest<'_>) -> Result<CaptureDone, ProviderError> {
        self.captures
            .lock()
            .push((req.idempotency_key.to_string(), req.amount.minor));
        if let Some(err) = self.capture_script.lock().pop_front() {
            return Err(err);
        }
        Ok(CaptureDone {
            psp_capture_id: format!("cap_for_{}", req.idempotency_key),
        })
    }

    async fn void(&self, _: &str, _: &str) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn sync(&self, req: SyncRequest<'_>) -> Result<(), ProviderError> {
        self.syncs
            .lock()
            .push((req.idempotency_key.to_string(), req.amount.minor));
        // Every sync takes a little while, as a PSP call does, so that mutations arrive
        // while one runs.
        tokio::time::sleep(Duration::from_millis(5)).await;
        match self.sync_script.lock().pop_front() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------

struct World {
    state: AppState,
    store: Arc<MemStore>,
    hantera: Arc<MemHantera>,
    provider: Arc<Scripted>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn config(extra: &str) -> Config {
    // Tests that need a sync to wait name their own delay.
    let extra = if extra.contains("sync_delay_ms") {
        extra.to_string()
    } else {
        format!("sync_delay_ms = 30\n{extra}")
    };
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        r#"
[hantera]
base_url = "http://127.0.0.1:1"
client_id = "psp-gateway"
client_secret = "secret"
hook_token = "{TOKEN}"

[worker]
poll_interval_ms = 10
base_backoff_ms = 5
max_backoff_ms = 20
max_attempts = 5
lease_secs = 10
{extra}
"#
    )
    .unwrap();
    Config::load(Some(file.path())).unwrap()
}

fn world(extra: &str) -> World {
    let store = Arc::new(MemStore::new());
    let hantera = Arc::new(MemHantera::new());
    let provider = Scripted::new();
    let registry = Registry::from_providers([provider.clone() as Arc<dyn Provider>]);
    let state = gateway::server::assemble(
        Arc::new(config(extra)),
        "http://gateway.test",
        registry,
        store.clone(),
        hantera.clone(),
    );
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(gateway::services::worker::run(state.services.clone(), rx));
    World {
        state,
        store,
        hantera,
        provider,
        stop,
    }
}

fn sek(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("SEK").unwrap())
}

async fn post(w: &World, path: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = router(w.state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A Hantera payment for PSP payment `psp_ref`, authorized for `minor` öre.
fn seed_payment(w: &World, psp_ref: &str, minor: i64) -> Uuid {
    let id = Uuid::new_v4();
    w.hantera.seed_payment(
        id,
        &NewPayment {
            provider_key: "scripted".into(),
            external_reference: psp_ref.into(),
            amount: sek(minor),
            authorization_number: psp_ref.into(),
            payment_number_prefix: "S-".into(),
        },
    );
    id
}

fn capture_hook(payment_id: Uuid, psp_ref: &str, capture_id: &str, amount: &str) -> String {
    format!(
        r#"{{"hook":"OnPaymentCapture",
            "payment":{{"paymentId":"{payment_id}","providerKey":"scripted",
              "externalReference":"{psp_ref}","currencyCode":"SEK",
              "authorizations":[{{"authorizationNumber":"{psp_ref}","amount":100.00,
                                  "authorizationState":"successful"}}]}},
            "capture":{{"paymentCaptureId":"{capture_id}","orderId":"{}","amount":{amount},
              "capturedAmount":0,"remainingAmount":{amount},"state":"pending"}}}}"#,
        Uuid::new_v4()
    )
}

fn capture_job_state(w: &World) -> Option<(JobState, Option<String>)> {
    w.store
        .jobs_of_kind("capture")
        .first()
        .map(|j| (j.state, j.last_error.clone()))
}

// ---------------------------------------------------------------------------------------
// Authentication and validation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn hooks_without_the_hook_token_are_refused_with_401_and_store_nothing() {
    let w = world("");
    let body = capture_hook(Uuid::new_v4(), "pay_1", "cap-1", "10.00");
    for path in [
        "/hantera/hooks/OnPaymentCapture",
        "/hantera/hooks/OnCartMutation",
    ] {
        for token in [None, Some("wrong-token-0123456789abcdef"), Some("")] {
            let (status, v) = post(&w, path, token, &body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {token:?}");
            assert_eq!(v["errors"][0]["code"], "INVALID_TOKEN");
        }
    }
    assert!(w.store.jobs().is_empty());
    let metrics = w.state.services.metrics.render();
    assert!(
        metrics
            .contains(r#"psp_gateway_hooks_total{hook="OnPaymentCapture",verdict="bad_token"} 3"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn malformed_hook_bodies_are_refused_with_400_in_the_documented_shape() {
    let w = world("");
    let payment = Uuid::new_v4();
    let cases = [
        (
            "/hantera/hooks/OnPaymentCapture",
            "not json".to_string(),
            "MALFORMED_JSON",
        ),
        (
            "/hantera/hooks/OnPaymentCapture",
            "[1]".to_string(),
            "MALFORMED_JSON",
        ),
        (
            "/hantera/hooks/OnPaymentCapture",
            capture_hook(payment, "pay_1", "cap-1", "10.00")
                .replace("OnPaymentCapture", "OnCartMutation"),
            "WRONG_HOOK",
        ),
        (
            "/hantera/hooks/OnPaymentCapture",
            r#"{"hook":"OnPaymentCapture","payment":{}}"#.to_string(),
            "INVALID_HOOK_BODY",
        ),
        (
            "/hantera/hooks/OnPaymentCapture",
            capture_hook(payment, "pay_1", "cap-1", "10.005"),
            "INVALID_HOOK_BODY",
        ),
        (
            "/hantera/hooks/OnPaymentCapture",
            capture_hook(payment, "pay_1", "cap-1", "0"),
            "INVALID_HOOK_BODY",
        ),
        (
            "/hantera/hooks/OnPaymentCapture",
            capture_hook(payment, "", "cap-1", "10.00"),
            "INVALID_HOOK_BODY",
        ),
        (
            "/hantera/hooks/OnCartMutation",
            r#"{"hook":"OnCartMutation","cartId":"nope"}"#.to_string(),
            "INVALID_HOOK_BODY",
        ),
        (
            "/hantera/hooks/OnCartMutation",
            r#"{"cartId":"0199a9b6-8608-7360-b98b-d2f9adeb2848"}"#.to_string(),
            "INVALID_HOOK_BODY",
        ),
    ];
    for (path, body, code) in cases {
        let (status, v) = post(&w, path, Some(TOKEN), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["errors"][0]["code"], code, "{body}: {v}");
        assert!(v["errors"][0]["message"].is_string());
    }
    assert!(w.store.jobs().is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_capture_hook_for_another_apps_payment_or_a_completed_capture_is_ignored() {
    let w = world("");
    let body = capture_hook(Uuid::new_v4(), "pay_1", "cap-1", "10.00");
    let other = body.replace(r#""providerKey":"scripted""#, r#""providerKey":"adyen""#);
    let (status, v) = post(&w, "/hantera/hooks/OnPaymentCapture", Some(TOKEN), &other).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ignored"], true, "{v}");
    let none = body.replace(r#""providerKey":"scripted","#, "");
    let (_, v) = post(&w, "/hantera/hooks/OnPaymentCapture", Some(TOKEN), &none).await;
    assert_eq!(v["ignored"], true, "{v}");
    let done = body.replace(r#""state":"pending""#, r#""state":"completed""#);
    let (_, v) = post(&w, "/hantera/hooks/OnPaymentCapture", Some(TOKEN), &done).await;
    assert_eq!(v["ignored"], true, "{v}");
    assert!(w.store.jobs().is_empty());
}

#[tokio::test]
async fn a_capture_hook_with_unknown_fields_and_an_odd_order_id_is_accepted_as_a_capture() {
    let w = world("");
    let payment_id = seed_payment(&w, "pay_1", 10_000);
    let body = capture_hook(payment_id, "pay_1", "cap-1", "40.50");
    let mut v: Value = serde_json::from_str(&body).unwrap();
    // Hantera's order ids are UUIDs today; the gateway only records this one, so another
    // shape (or a new field anywhere) must not stop the money from being captured.
    v["capture"]["orderId"] = json!("ORDER-1042");
    v["capture"]["invoiceId"] = json!(7);
    v["capture"]["newField"] = json!({ "nested": [1, null] });
    v["payment"]["paymentNumber"] = json!(123);
    v["payment"]["captures"] = json!([{ "anything": true }]);
    v["payment"]["authorizations"][0]["extra"] = json!([]);
    v["sentAt"] = json!("2025-01-01T00:00:00Z");
    let (status, answer) = post(
        &w,
        "/hantera/hooks/OnPaymentCapture",
        Some(TOKEN),
        &v.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], true, "{answer}");
    until("the capture job to succeed", || {
        (capture_job_state(&w)?.0 == JobState::Succeeded).then_some(())
    })
    .await;
    assert_eq!(
        *w.provider.captures.lock(),
        [("hantera-capture-cap-1".to_string(), 4050)]
    );
}

// ---------------------------------------------------------------------------------------
// Captures
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_capture_hook_delivered_five_times_captures_once_and_charges_exactly_the_amount_asked() {
    let w = world("");
    let payment_id = seed_payment(&w, "pay_1", 10_000);
    let body = capture_hook(payment_id, "pay_1", "cap-1", "40.50");
    let mut duplicates = 0;
    for _ in 0..5 {
        let (status, v) = post(&w, "/hantera/hooks/OnPaymentCapture", Some(TOKEN), &body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["accepted"], true);
        duplicates += usize::from(v["duplicate"] == true);
    }
    assert_eq!(duplicates, 4);
    until("the capture job to succeed", || {
        (capture_job_state(&w)?.0 == JobState::Succeeded).then_some(())
    })
    .await;
    assert_eq!(
        *w.provider.captures.lock(),
        [("hantera-capture-cap-1".to_string(), 4050)],
        "one partial capture of exactly 40.50"
    );
    let payment = w.hantera.payment(payment_id).unwrap();
    assert_eq!(payment.charges.len(), 1);
    let charge = &payment.charges[0];
    assert_eq!(charge.amount.to_string(), "40.50");
    assert_eq!(charge.authorization_number.as_deref(), Some("pay_1"));
    assert_eq!(
        charge.transaction_reference.as_deref(),
        Some("cap_for_hantera-capture-cap-1")
    );
    let metrics = w.state.services.metrics.render();
    assert!(
        metrics.contains(r#"psp_gateway_jobs_total{kind="capture",result="scheduled"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"psp_gateway_jobs_total{kind="capture",result="succeeded"} 1"#));
}

#[tokio::test]
async fn captures_that_time_out_are_retried_with_the_same_idempotency_key() {
    let w = world("");
    let payment_id = seed_payment(&w, "pay_1", 10_000);
    for _ in 0..2 {
        w.provider
            .capture_script
            .lock()
            .push_back(ProviderError::Transient("timed out".into()));
    }
    post(
        &w,
        "/hantera/hooks/OnPaymentCapture",
        Some(TOKEN),
        &capture_hook(payment_id, "pay_1", "cap-7", "100.00"),
    )
    .await;
    until("the capture job to succeed", || {
        (capture_job_state(&w)?.0 == JobState::Succeeded).then_some(())
    })
    .await;
    let keys: Vec<String> = w
        .provider
        .captures
        .lock()
        .iter()
        .map(|c| c.0.clone())
        .collect();
    assert_eq!(keys, ["hantera-capture-cap-7"; 3]);
    assert_eq!(w.hantera.payment(payment_id).unwrap().charges.len(), 1);
    let metrics = w.state.services.metrics.render();
    assert!(metrics.contains(r#"psp_gateway_jobs_total{kind="capture",result="retried"} 2"#));
}

#[tokio::test]
async fn a_refused_capture_fails_once_with_the_reason_and_an_activity_entry_until_replayed() {
    let w = world("");
    let payment_id = seed_payment(&w, "pay_1", 10_000);
    w.provider
        .capture_script
        .lock()
        .push_back(ProviderError::Rejected {
            code: "amount_too_large".into(),
            message: "more than authorized".into(),
        });
    post(
        &w,
        "/hantera/hooks/OnPaymentCapture",
        Some(TOKEN),
        &capture_hook(payment_id, "pay_1", "cap-9", "100.00"),
    )
    .await;
    let (_, reason) = until("the capture job to fail", || {
        capture_job_state(&w).filter(|(s, _)| *s == JobState::Failed)
    })
    .await;
    let reason = reason.unwrap();
    assert!(reason.contains("amount_too_large"), "{reason}");
    assert_eq!(w.provider.captures.lock().len(), 1, "not retried");
    let activity = w.hantera.payment(payment_id).unwrap().activity;
    assert_eq!(activity.len(), 1);
    assert!(activity[0].contains("cap-9") && activity[0].contains("amount_too_large"));
    assert!(w.hantera.payment(payment_id).unwrap().charges.is_empty());

    // A replay runs it again (the PSP now accepts). The PSP answered the first key
    // definitely, so the replay asks under a new one.
    let job = w.store.jobs_of_kind("capture")[0].id;
    assert!(w.store.replay_job(job).await.unwrap());
    w.state.services.jobs.wake();
    until("the replayed capture to succeed", || {
        (capture_job_state(&w)?.0 == JobState::Succeeded).then_some(())
    })
    .await;
    let calls = w.provider.captures.lock().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, "hantera-capture-cap-9");
    assert_eq!(calls[1].0, "hantera-capture-cap-9-r1");
    assert_eq!(w.hantera.payment(payment_id).unwrap().charges.len(), 1);
}

#[tokio::test]
async fn a_capture_above_the_authorization_captures_only_what_was_authorized_and_fails_visibly_once(
) {
    let w = world("");
    let payment_id = seed_payment(&w, "pay_1", 10_000);
    post(
        &w,
        "/hantera/hooks/OnPaymentCapture",
        Some(TOKEN),
        &capture_hook(payment_id, "pay_1", "cap-9", "500.00"),
    )
    .await;
    let (_, reason) = until("the capture job to fail", || {
        capture_job_state(&w).filter(|(s, _)| *s == JobState::Failed)
    })
    .await;
    let reason = reason.unwrap();
    assert!(
        reason.contains("500.00 SEK") && reason.contains("100.00 SEK"),
        "the shortfall names both amounts: {reason}"
    );
    let calls = w.provider.captures.lock().clone();
    assert_eq!(calls.len(), 1, "captured once, not retried");
    assert_eq!(
        calls[0].1, 10_000,
        "the PSP is never asked for more than was authorized"
    );
    let payment = w.hantera.payment(payment_id).unwrap();
    assert_eq!(payment.charges.len(), 1);
    assert_eq!(
        payment.charges[0].amount,
        rust_decimal::Decimal::new(10_000, 2)
    );
    assert_eq!(payment.tags, ["capture-shortfall"]);
    assert!(payment.activity.iter().any(|a| a.contains("cap-9")));
}

#[tokio::test]
async fn a_charge_whose_answer_was_lost_is_found_in_the_journal_and_not_sent_again() {
    let w = world("");
    let payment_id = seed_payment(&w, "pay_1", 10_000);
    w.hantera.apply_then_lose_answer(Op::Charge, 1);
    post(
        &w,
        "/hantera/hooks/OnPaymentCapture",
        Some(TOKEN),
        &capture_hook(payment_id, "pay_1", "cap-3", "25.00"),
    )
    .await;
    until("the capture job to succeed", || {
        (capture_job_state(&w)?.0 == JobState::Succeeded).then_some(())
    })
    .await;
    assert_eq!(w.hantera.count(Op::Charge), 1, "the charge was sent once");
    assert_eq!(w.hantera.payment(payment_id).unwrap().charges.len(), 1);
    assert!(w.hantera.count(Op::PaymentJournal) >= 2);
    assert_eq!(
        w.provider.captures.lock().len(),
        1,
        "the PSP capture was not repeated"
    );
}

#[tokio::test]
async fn a_provider_that_cannot_capture_fails_the_job_with_a_clear_reason() {
    let w = world("");
    w.provider.capabilities.lock().capture = false;
    let payment_id = seed_payment(&w, "pay_1", 10_000);
    post(
        &w,
        "/hantera/hooks/OnPaymentCapture",
        Some(TOKEN),
        &capture_hook(payment_id, "pay_1", "cap-4", "25.00"),
    )
    .await;
    let (_, reason) = until("the capture job to fail", || {
        capture_job_state(&w).filter(|(s, _)| *s == JobState::Failed)
    })
    .await;
    assert!(reason.unwrap().contains("cannot capture"));
    assert!(w.provider.captures.lock().is_empty());
}

// ---------------------------------------------------------------------------------------
// Cart sync
// ---------------------------------------------------------------------------------------

fn cart_hook(cart_id: Uuid, total: &str) -> String {
    format!(
        r#"{{"hook":"OnCartMutation","cartId":"{cart_id}","cartNumber":"C1","cartState":"open",
            "currencyCode":"SEK","taxIncluded":true,"orderTotal":{total},"orderTaxTotal":0,
            "shippingTotal":0,"productTotal":{total},"items":[],"fields":{{}},
            "email":null,"phone":null,"address":null,"invoiceAddress":null,"locale":"sv-SE",
            "profileKey":"default"}}"#
    )
}

async fn open_session(w: &World, cart_id: Uuid, minor: i64) {
    w.store
        .reserve_session(cart_id, "scripted", "key")
        .await
        .unwrap();
    w.store
        .save_session(cart_id, "scripted", "pay_s", sek(minor), &json!({}))
        .await
        .unwrap();
}

#[tokio::test]
async fn rapid_cart_mutations_reach_the_psp_as_few_updates_ending_with_the_final_cart() {
    let w = world("");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    for i in 1..=30 {
        // Hantera holds the cart each hook carries.
        w.hantera.set_cart_total(cart_id, sek((100 + i) * 100));
        let (status, v) = post(
            &w,
            "/hantera/hooks/OnCartMutation",
            Some(TOKEN),
            &cart_hook(cart_id, &format!("{}.00", 100 + i)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let last = until("the final cart to reach the PSP", || {
        let syncs = w.provider.syncs.lock().clone();
        (syncs.last()?.1 == 13_000).then_some(syncs)
    })
    .await;
    assert!(last.len() <= 5, "{} updates for 30 mutations", last.len());
    let fields = until("the sync hash on the cart", || {
        let f = w.hantera.cart_fields(cart_id);
        f.contains_key("field:scriptedSyncHash").then_some(f)
    })
    .await;
    assert_eq!(
        fields["field:scriptedSyncHash"],
        fields["field:scriptedPendingHash"]
    );
    let sync = w
        .store
        .session_sync(cart_id, "scripted")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sync.synced_hash, sync.pending_hash);
}

#[tokio::test]
async fn a_cart_mutation_with_non_uuid_line_ids_and_unknown_fields_is_synced() {
    let w = world("");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    w.hantera.set_cart_total(cart_id, sek(12_000));
    let mut hook: Value = serde_json::from_str(&cart_hook(cart_id, "120.00")).unwrap();
    hook["items"] = json!([{
        "cartItemId": "line-1", "productNumber": "MUG", "quantity": 1,
        "unitPrice": 120.00, "total": 120.00, "tax": 24.00, "image": { "url": null },
    }]);
    hook["cartNumber"] = json!(1042);
    hook["somethingNew"] = json!([{ "shape": "unknown" }]);
    let (status, v) = post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &hook.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["sessions"][0]["outcome"], "scheduled", "{v}");
    until("the changed cart to reach the PSP", || {
        let syncs = w.provider.syncs.lock().clone();
        (syncs.last()?.1 == 12_000).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_cart_synced_before_it_was_paid_is_not_flagged_when_a_later_mutation_changes_nothing() {
    let w = world("");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    w.hantera.set_cart_total(cart_id, sek(15_000));
    post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &cart_hook(cart_id, "150.00"),
    )
    .await;
    until("the new amount to reach the PSP", || {
        (w.provider.syncs.lock().last()?.1 == 15_000).then_some(())
    })
    .await;
    // The job records the synced hash after the amount, so once the hash is there the
    // session holds the amount too.
    until("the sync to be recorded", || {
        let f = w.hantera.cart_fields(cart_id);
        f.contains_key("field:scriptedSyncHash").then_some(())
    })
    .await;
    let session = w.store.session(cart_id, "scripted").await.unwrap().unwrap();
    assert_eq!(session.amount_minor, Some(15_000));
    assert_eq!(session.currency.as_deref(), Some("SEK"));

    // The customer pays the synced amount; the cart completes.
    *w.provider.status.lock() = Some(PspStatus::Authorized {
        amount: sek(15_000),
    });
    let outcome = w
        .state
        .services
        .completer
        .complete(w.provider.as_ref(), "pay_s")
        .await
        .unwrap();
    assert!(
        matches!(outcome, psp_core::CompletionOutcome::Completed { .. }),
        "{outcome:?}"
    );

    // A late mutation hook with the same cart (an e-mail address, say) is no change.
    let (status, v) = post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &cart_hook(cart_id, "150.00"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["sessions"][0]["outcome"], "unchanged", "{v}");
    assert!(w.store.flagged_sessions(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_mutation_that_changes_nothing_the_psp_needs_sends_nothing() {
    let w = world("");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    let hash =
        gateway::services::jobs::payload_hash(&json!({ "amount": 10_000, "currency": "SEK" }));
    w.store
        .mark_synced(cart_id, "scripted", &hash)
        .await
        .unwrap();
    let (_, v) = post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &cart_hook(cart_id, "100.00"),
    )
    .await;
    assert_eq!(v["sessions"][0]["outcome"], "unchanged", "{v}");
    assert!(w.store.jobs().is_empty());
}

#[tokio::test]
async fn a_cart_changed_and_changed_back_leaves_no_pending_sync_signal_behind() {
    let w = world("");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    let synced =
        gateway::services::jobs::payload_hash(&json!({ "amount": 10_000, "currency": "SEK" }));
    w.store
        .mark_synced(cart_id, "scripted", &synced)
        .await
        .unwrap();
    // The hook says 120.00, but by the time the job runs Hantera holds 100.00 again.
    let (_, v) = post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &cart_hook(cart_id, "120.00"),
    )
    .await;
    assert_eq!(v["sessions"][0]["outcome"], "scheduled", "{v}");
    until("the pending hash to name what the PSP holds", || {
        let fields = w.hantera.cart_fields(cart_id);
        (fields.get("field:scriptedPendingHash")? == synced.as_str()).then_some(())
    })
    .await;
    assert!(
        w.provider.syncs.lock().is_empty(),
        "nothing was sent to the PSP"
    );
}

#[tokio::test]
async fn a_cart_changed_after_authorization_is_recorded_for_a_person_and_not_synced() {
    let w = world("");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    w.store
        .set_session_status("scripted", "pay_s", SessionStatus::Authorized)
        .await
        .unwrap();
    let (_, v) = post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &cart_hook(cart_id, "120.00"),
    )
    .await;
    assert_eq!(v["sessions"][0]["outcome"], "needs_attention", "{v}");
    let flagged = w.store.flagged_sessions(10).await.unwrap();
    assert_eq!(flagged.len(), 1);
    assert!(flagged[0]
        .attention
        .as_deref()
        .unwrap()
        .contains("120.00 SEK"));
    assert!(w.store.jobs().is_empty());
    assert!(w.provider.syncs.lock().is_empty());
}

#[tokio::test]
async fn a_mutation_that_arrives_while_the_checkout_creates_the_psp_session_is_synced_after_it() {
    let w = world("");
    let cart_id = w.hantera.add_cart(sek(10_000));
    // The checkout has reserved its session and is talking to the PSP when the customer
    // changes the cart.
    w.store
        .reserve_session(cart_id, "scripted", "key")
        .await
        .unwrap();
    let (_, v) = post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &cart_hook(cart_id, "120.00"),
    )
    .await;
    assert_eq!(v["sessions"][0]["outcome"], "scheduled", "{v}");
    // The checkout read the cart before the change and creates the PSP session for 100.00;
    // Hantera holds the changed cart by the time the PSP answers.
    let hantera = w.hantera.clone();
    *w.provider.during_checkout.lock() = Some(Box::new(move || {
        hantera.set_cart_total(cart_id, sek(12_000))
    }));
    let (status, v) = post(
        &w,
        &format!("/ingress/commerce/carts/{cart_id}/payment/scripted"),
        None,
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    until("the changed cart to reach the PSP", || {
        (w.provider.syncs.lock().last()?.1 == 12_000).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_sync_job_that_finds_its_cart_completed_for_more_than_was_authorized_flags_it_underpaid()
{
    let w = world("sync_delay_ms = 60000");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    // A mutation is accepted while the session is open; its sync waits out the delay.
    let (status, v) = post(
        &w,
        "/hantera/hooks/OnCartMutation",
        Some(TOKEN),
        &cart_hook(cart_id, "150.00"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Meanwhile the payment of 100.00 completes the cart, and the change lands in the
    // completed cart (the race Hantera cannot refuse without the bridge app's rule).
    *w.provider.status.lock() = Some(PspStatus::Authorized {
        amount: sek(10_000),
    });
    let outcome = w
        .state
        .services
        .completer
        .complete(w.provider.as_ref(), "pay_s")
        .await
        .unwrap();
    let psp_core::CompletionOutcome::Completed { payment_id } = outcome else {
        panic!("{outcome:?}")
    };
    w.hantera.set_cart_total(cart_id, sek(15_000));
    w.store.advance_clock(Duration::from_secs(61));
    w.state.services.jobs.wake();

    until("the completion to be underpaid", || {
        w.hantera.payment(payment_id).filter(|p| !p.tags.is_empty())
    })
    .await;
    let record = w
        .store
        .completion("scripted", "pay_s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, psp_core::ports::CompletionState::Underpaid);
    let reason = record.reason.unwrap();
    assert!(
        reason.contains("150.00 SEK") && reason.contains("100.00 SEK"),
        "{reason}"
    );
    assert_eq!(w.hantera.payment(payment_id).unwrap().tags, ["underpaid"]);
    let flagged = w.store.flagged_sessions(10).await.unwrap();
    assert_eq!(flagged.len(), 1, "the session is flagged for a person");
    assert_eq!(flagged[0].attention.as_deref(), Some(reason.as_str()));
    let text = w.state.services.metrics.render();
    assert!(
        text.contains(
            r#"psp_gateway_completions_total{provider="scripted",outcome="underpaid"} 1"#
        ),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Reconciliation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_sweep_completes_a_quiet_authorized_session_whose_webhook_never_came() {
    let w = world("sweep_interval_ms = 20\nquiet_after_ms = 1000");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    *w.provider.status.lock() = Some(PspStatus::Authorized {
        amount: sek(10_000),
    });
    w.store.advance_clock(Duration::from_secs(2));
    until("the cart to be completed", || {
        (w.hantera.cart_state(cart_id)? == psp_core::CartState::Completed).then_some(())
    })
    .await;
    assert_eq!(w.hantera.payments().len(), 1);
}

#[tokio::test]
async fn the_sweep_asks_once_per_quiet_period_and_closes_a_session_whose_payment_failed() {
    let w = world("sweep_interval_ms = 20\nquiet_after_ms = 1000");
    let cart_id = w.hantera.add_cart(sek(10_000));
    open_session(&w, cart_id, 10_000).await;
    w.store.advance_clock(Duration::from_secs(2));
    // Still pending at the PSP: the sweep asks, finds nothing to do, and marks the session
    // as looked at, so it is not asked about again on every sweep.
    until("the first sweep", || {
        (w.store.jobs_of_kind("complete").len() == 1).then_some(())
    })
    .await;
    assert!(
        w.store
            .quiet_sessions(Duration::from_secs(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "a swept session is quiet again only after another quiet period"
    );
    assert_eq!(
        w.store
            .session(cart_id, "scripted")
            .await
            .unwrap()
            .unwrap()
            .status,
        SessionStatus::Open
    );

    *w.provider.status.lock() = Some(PspStatus::Failed {
        reason: "card_declined".into(),
    });
    w.store.advance_clock(Duration::from_secs(2));
    let status = until("the session to end", || {
        let s = w
            .store
            .sessions()
            .into_iter()
            .find(|s| s.cart_id == cart_id)?;
        s.status.is_terminal().then_some(s.status)
    })
    .await;
    assert_eq!(status, SessionStatus::Failed);
    assert_eq!(
        w.hantera.cart_state(cart_id),
        Some(psp_core::CartState::Open)
    );
}
