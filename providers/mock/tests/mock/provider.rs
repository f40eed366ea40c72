//! The adapter against the fake over real HTTP: checkout, fetch, capture, void, fault
//! mapping, webhook verification, configuration and registration.

use crate::common;

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue};
use common::{cart, sek, Harness, SECRET};
use mock::fake::{ApproveOptions, Faults};
use mock::MockProvider;
use psp_core::signature::{sign_header, unix_now};
use psp_core::{
    CaptureRequest, CheckoutRequest, CheckoutSession, EventKind, ExistingSession, Provider,
    ProviderError, PspStatus, RenderedCart, Secret, SyncRequest, VerifyError, WebhookDelivery,
    WebhookError,
};
use serde_json::{json, Value};

async fn checkout(
    h: &Harness,
    p: &MockProvider,
    cart: &RenderedCart,
    amount: i64,
    key: &str,
    body: &Value,
    existing: Option<&ExistingSession>,
) -> Result<CheckoutSession, ProviderError> {
    p.checkout(CheckoutRequest {
        cart,
        amount: sek(amount),
        body,
        existing,
        idempotency_key: key,
        webhook_url: &h.receiver.url,
    })
    .await
}

fn existing(s: &CheckoutSession) -> ExistingSession {
    ExistingSession {
        psp_ref: s.psp_ref.clone(),
        amount: s.amount,
        client: s.client.clone(),
    }
}

async fn capture(
    p: &MockProvider,
    psp_ref: &str,
    amount: i64,
    key: &str,
) -> Result<String, ProviderError> {
    p.capture(CaptureRequest {
        psp_ref,
        amount: sek(amount),
        idempotency_key: key,
    })
    .await
    .map(|done| done.psp_capture_id)
}

/// An authorized payment of `amount`, made through the adapter.
async fn authorized(h: &Harness, p: &MockProvider, amount: i64) -> String {
    let c = cart("10.00");
    let key = uuid::Uuid::new_v4().to_string();
    let s = checkout(h, p, &c, amount, &key, &json!({}), None)
        .await
        .unwrap();
    h.fake
        .approve(&s.psp_ref, ApproveOptions::default())
        .unwrap();
    s.psp_ref
}

fn signed(secret: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = sign_header(&Secret::new(secret), timestamp, body);
    headers.insert("Mock-Signature", HeaderValue::from_str(&value).unwrap());
    headers
}

async fn verify(
    p: &MockProvider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<psp_core::VerifiedEvent, WebhookError> {
    p.verify_webhook(&WebhookDelivery {
        headers,
        body,
        query: None,
        now: SystemTime::now(),
    })
    .await
}

const EVENT: &str = r#"{"id":"mevt_1","object":"event","type":"payment.voided","created":1,"data":{"object":{"id":"mpay_1"}}}"#;

#[tokio::test]
async fn the_mock_provider_is_compiled_in_and_builds_from_the_registry() {
    // Naming an item of the crate keeps it, and with it the registration, in the binary.
    assert_eq!(mock::ID, "mock");
    let ids = psp_core::Registry::compiled_in().unwrap();
    assert!(ids.contains(&"mock"), "{ids:?}");

    let mut configured = BTreeMap::new();
    configured.insert("mock".to_string(), json!({ "webhook_secret": "whsec_x" }));
    let registry = psp_core::Registry::build(
        &configured,
        "http://127.0.0.1:8080",
        psp_core::HanteraMode::Sandbox,
        &testkit::mem::services(),
    )
    .unwrap();
    let provider = registry.get("mock").unwrap();
    assert_eq!(provider.id(), "mock");
    assert_eq!(provider.payment_number_prefix(), "MOCK-");
    let caps = provider.capabilities();
    assert!(
        caps.capture
            && caps.partial_capture
            && caps.void
            && caps.update_amount
            && caps.signed_webhooks
    );
}

#[test]
fn the_mock_is_test_only_so_a_real_hantera_refuses_it_unless_its_table_allows_it() {
    let real = psp_core::HanteraMode::Real;
    let mut configured = BTreeMap::new();
    configured.insert("mock".to_string(), json!({ "webhook_secret": "whsec_x" }));
    let err = psp_core::Registry::build(
        &configured,
        "http://127.0.0.1:8080",
        real,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(
        matches!(err, psp_core::RegistryError::TestOnlyWithRealHantera { .. }),
        "{err}"
    );
    configured.insert(
        "mock".to_string(),
        json!({ "webhook_secret": "whsec_x", "allow_with_real_hantera": true }),
    );
    let registry = psp_core::Registry::build(
        &configured,
        "http://127.0.0.1:8080",
        real,
        &testkit::mem::services(),
    )
    .unwrap();
    assert_eq!(registry.test_only().collect::<Vec<_>>(), ["mock"]);
}

#[tokio::test]
async fn a_missing_webhook_secret_stops_the_registry_from_building() {
    let mut configured = BTreeMap::new();
    configured.insert("mock".to_string(), json!({ "api_key": "k" }));
    let err = psp_core::Registry::build(
        &configured,
        "http://127.0.0.1:8080",
        psp_core::HanteraMode::Sandbox,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("webhook_secret"), "{err}");
    let err = MockProvider::from_config(&json!({ "webhook_secret": "" }), "http://x").unwrap_err();
    assert!(matches!(err, ProviderError::Config(_)), "{err}");
}

#[tokio::test]
async fn checkout_creates_a_session_with_a_redirect_url_and_replays_it_for_the_same_key() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let c = cart("10.00");
    let body = json!({ "returnUrl": "https://shop.example/thanks?cart=1" });
    let s = checkout(&h, &p, &c, 1000, "ck-1", &body, None)
        .await
        .unwrap();
    assert!(s.psp_ref.starts_with("mpay_"));
    assert_eq!(s.amount, sek(1000));
    assert_eq!(s.client["paymentId"], s.psp_ref.as_str());
    assert_eq!(
        s.client["redirectUrl"],
        format!("{}/pay/{}", h.base, s.psp_ref).as_str()
    );

    let held = h.fake.payment(&s.psp_ref).unwrap();
    assert_eq!(held.cart_id, c.cart_id.to_string());
    assert_eq!(held.currency, "SEK");
    assert_eq!(
        held.return_url.as_deref(),
        Some("https://shop.example/thanks?cart=1")
    );

    let again = checkout(&h, &p, &c, 1000, "ck-1", &body, None)
        .await
        .unwrap();
    assert_eq!(again.psp_ref, s.psp_ref);
    assert_eq!(h.fake.payments().len(), 1);
}

#[tokio::test]
async fn a_relative_return_url_is_a_bad_request_and_nothing_is_created() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let err = checkout(
        &h,
        &p,
        &cart("1"),
        100,
        "k",
        &json!({ "returnUrl": "/thanks" }),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProviderError::BadRequest(_)), "{err}");
    assert!(h.fake.payments().is_empty());
}

#[tokio::test]
async fn an_existing_session_is_reused_unchanged_or_updated_until_it_is_locked() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let c = cart("10.00");
    let s = checkout(&h, &p, &c, 1000, "ck", &json!({}), None)
        .await
        .unwrap();

    h.set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    let same = checkout(&h, &p, &c, 1000, "ck", &json!({}), Some(&existing(&s)))
        .await
        .unwrap();
    assert_eq!(same.psp_ref, s.psp_ref);
    assert_eq!(same.client, s.client);
    assert_eq!(
        h.fake.faults().fail_next,
        1,
        "an unchanged session costs no PSP call"
    );
    h.set_faults(Faults::default());

    let updated = checkout(&h, &p, &c, 1500, "ck", &json!({}), Some(&existing(&s)))
        .await
        .unwrap();
    assert_eq!(updated.psp_ref, s.psp_ref);
    assert_eq!(updated.amount, sek(1500));
    assert_eq!(h.fake.payment(&s.psp_ref).unwrap().amount, 1500);

    h.fake
        .approve(&s.psp_ref, ApproveOptions::default())
        .unwrap();
    let err = checkout(
        &h,
        &p,
        &c,
        2000,
        "ck",
        &json!({}),
        Some(&existing(&updated)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProviderError::Locked(_)), "{err}");
}

#[tokio::test]
async fn an_amount_that_moves_back_and_forth_ends_at_the_latest_amount() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let c = cart("10.00");
    let mut s = checkout(&h, &p, &c, 1000, "ck", &json!({}), None)
        .await
        .unwrap();
    // A→B→A→B reuses the key "ck:amount:1500"; the replayed answer must not be believed.
    for amount in [1500, 1000, 1500] {
        s = checkout(&h, &p, &c, amount, "ck", &json!({}), Some(&existing(&s)))
            .await
            .unwrap();
        assert_eq!(s.amount, sek(amount));
        assert_eq!(h.fake.payment(&s.psp_ref).unwrap().amount, amount);
    }
}

async fn sync(
    p: &MockProvider,
    psp_ref: &str,
    total: &str,
    key: &str,
) -> Result<(), ProviderError> {
    let c = cart(total);
    let amount = c.total().unwrap();
    let payload = p.sync_payload(&c).unwrap();
    p.sync(SyncRequest {
        psp_ref,
        cart: &c,
        amount,
        payload: &payload,
        idempotency_key: key,
    })
    .await
}

#[tokio::test]
async fn a_sync_sets_the_amount_of_a_pending_payment_once_and_is_locked_after_approval() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let s = checkout(&h, &p, &cart("10.00"), 1000, "ck", &json!({}), None)
        .await
        .unwrap();
    assert_eq!(
        p.sync_payload(&cart("12.50")).unwrap(),
        json!({ "amount": 1250, "currency": "SEK" })
    );

    // The PSP does not answer: nothing happened, and the retry under the same key works.
    h.set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    let err = sync(&p, &s.psp_ref, "12.50", "sync-1").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    h.set_faults(Faults::default());
    sync(&p, &s.psp_ref, "12.50", "sync-1").await.unwrap();
    assert_eq!(h.fake.payment(&s.psp_ref).unwrap().amount, 1250);
    let updates = h.fake.amount_updates_of(&s.psp_ref);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!((updates[0].amount, updates[0].replayed), (1250, false));

    // What the PSP holds already costs no update.
    sync(&p, &s.psp_ref, "12.50", "sync-2").await.unwrap();
    assert_eq!(h.fake.amount_updates_of(&s.psp_ref).len(), 1);

    h.fake
        .approve(&s.psp_ref, ApproveOptions::default())
        .unwrap();
    let err = sync(&p, &s.psp_ref, "15.00", "sync-3").await.unwrap_err();
    assert!(matches!(err, ProviderError::Locked(_)), "{err}");
    assert_eq!(h.fake.payment(&s.psp_ref).unwrap().amount, 1250);
}

#[tokio::test]
async fn fetch_reads_every_status_the_psp_can_report() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let c = cart("10.00");
    let s = checkout(&h, &p, &c, 1000, "a", &json!({}), None)
        .await
        .unwrap();
    let read = p.fetch(&s.psp_ref).await.unwrap();
    assert_eq!(read.status, PspStatus::Pending);
    assert_eq!(read.cart_id, Some(c.cart_id));
    assert_eq!(read.psp_ref, s.psp_ref);

    let opts = ApproveOptions {
        amount_override: Some(990),
        ..Default::default()
    };
    h.fake.approve(&s.psp_ref, opts).unwrap();
    assert_eq!(
        p.fetch(&s.psp_ref).await.unwrap().status,
        PspStatus::Authorized { amount: sek(990) }
    );
    capture(&p, &s.psp_ref, 500, "cap").await.unwrap();
    assert_eq!(
        p.fetch(&s.psp_ref).await.unwrap().status,
        PspStatus::Captured { amount: sek(990) }
    );

    let declined = checkout(&h, &p, &c, 1000, "b", &json!({}), None)
        .await
        .unwrap();
    let card = ApproveOptions {
        card: Some("4000 0000 0000 0002".into()),
        ..Default::default()
    };
    h.fake.approve(&declined.psp_ref, card).unwrap();
    assert_eq!(
        p.fetch(&declined.psp_ref).await.unwrap().status,
        PspStatus::Failed {
            reason: "card_declined".into()
        }
    );

    let voided = checkout(&h, &p, &c, 1000, "c", &json!({}), None)
        .await
        .unwrap();
    p.void(&voided.psp_ref, "v").await.unwrap();
    assert_eq!(
        p.fetch(&voided.psp_ref).await.unwrap().status,
        PspStatus::Canceled
    );

    let missing = p.fetch("mpay_missing").await.unwrap_err();
    assert!(matches!(missing, ProviderError::NotFound(_)), "{missing}");
}

#[tokio::test]
async fn a_capture_retried_with_its_key_captures_once_and_partial_captures_add_up() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let id = authorized(&h, &p, 1000).await;
    let first = capture(&p, &id, 400, "cap-1").await.unwrap();
    assert!(first.starts_with("mcap_"));
    assert_eq!(capture(&p, &id, 400, "cap-1").await.unwrap(), first);
    assert_eq!(h.fake.captures_of(&id).len(), 1);

    capture(&p, &id, 600, "cap-2").await.unwrap();
    match capture(&p, &id, 1, "cap-3").await.unwrap_err() {
        ProviderError::Rejected { code, .. } => assert_eq!(code, "invalid_state"),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.fake.payment(&id).unwrap().captured_amount, 1000);

    let other = authorized(&h, &p, 1000).await;
    match capture(&p, &other, 1001, "too-much").await.unwrap_err() {
        ProviderError::Rejected { code, .. } => assert_eq!(code, "amount_too_large"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_void_succeeds_once_released_and_is_refused_after_a_capture() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let id = authorized(&h, &p, 1000).await;
    p.void(&id, "v-1").await.unwrap();
    p.void(&id, "v-1").await.unwrap();
    // Another key finds the payment already voided, which is the outcome wanted.
    p.void(&id, "v-2").await.unwrap();
    h.receiver.wait_for(&id, "payment.voided").await;

    let captured = authorized(&h, &p, 1000).await;
    capture(&p, &captured, 1000, "c").await.unwrap();
    match p.void(&captured, "v-3").await.unwrap_err() {
        ProviderError::Rejected { code, .. } => assert_eq!(code, "invalid_state"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unavailable_psp_is_transient_and_nothing_happens() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    h.set_faults(Faults {
        fail_next: 2,
        ..Faults::default()
    });
    let err = checkout(&h, &p, &cart("1"), 100, "k", &json!({}), None)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(h.fake.payments().is_empty());
    let err = p.fetch("mpay_whatever").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let s = checkout(&h, &p, &cart("1"), 100, "k", &json!({}), None)
        .await
        .unwrap();
    assert!(h.fake.payment(&s.psp_ref).is_some());
}

#[tokio::test]
async fn a_capture_whose_answer_is_lost_is_transient_and_its_retry_does_not_capture_twice() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let id = authorized(&h, &p, 1000).await;
    h.set_faults(Faults {
        drop_after_next: 1,
        ..Faults::default()
    });
    let err = capture(&p, &id, 1000, "cap-lost").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(h.fake.captures_of(&id).len(), 1, "the capture happened");

    let retried = capture(&p, &id, 1000, "cap-lost").await.unwrap();
    let captures = h.fake.captures_of(&id);
    assert_eq!(
        captures.len(),
        1,
        "the retry replayed instead of capturing again"
    );
    assert_eq!(captures[0].id, retried);
    let calls = h.fake.capture_calls_of(&id);
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.idempotency_key == "cap-lost"));
    assert!(calls[1].replayed);
    assert_eq!(h.fake.payment(&id).unwrap().captured_amount, 1000);
}

#[tokio::test]
async fn a_psp_that_hangs_past_the_timeout_is_transient_and_nothing_happens() {
    let h = Harness::start().await;
    let p = h.provider(json!({ "timeout_ms": 200 }));
    let id = authorized(&h, &p, 1000).await;
    h.set_faults(Faults {
        hang_next: 1,
        hang_ms: 2_000,
        ..Faults::default()
    });
    let err = capture(&p, &id, 1000, "cap-hang").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(h.fake.captures_of(&id).is_empty());
    capture(&p, &id, 1000, "cap-hang").await.unwrap();
    assert_eq!(h.fake.captures_of(&id).len(), 1);
}

#[tokio::test]
async fn a_wrong_api_key_is_a_definite_refusal() {
    let h = Harness::start().await;
    let p = h.provider(json!({ "api_key": "mock_sk_wrong" }));
    match p.fetch("mpay_x").await.unwrap_err() {
        ProviderError::Rejected { code, .. } => assert_eq!(code, "unauthorized"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_psp_that_cannot_be_reached_is_transient() {
    let listener = common::bind().await;
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = MockProvider::from_config(
        &json!({ "webhook_secret": SECRET, "api_base": format!("http://{addr}") }),
        "http://127.0.0.1:1",
    )
    .unwrap();
    let err = p.fetch("mpay_x").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_webhook_signed_with_a_rotated_secret_still_verifies() {
    let p = MockProvider::from_config(
        &json!({ "webhook_secret": "whsec_new", "webhook_secrets": ["whsec_old"], "api_base": "http://127.0.0.1:1" }),
        "http://127.0.0.1:1",
    )
    .unwrap();
    for secret in ["whsec_new", "whsec_old"] {
        let headers = signed(secret, unix_now(), EVENT.as_bytes());
        let event = verify(&p, &headers, EVENT.as_bytes()).await.unwrap();
        assert_eq!(
            event.kind(),
            &EventKind::Canceled {
                psp_ref: "mpay_1".into()
            }
        );
    }
    let retired = signed("whsec_retired", unix_now(), EVENT.as_bytes());
    assert!(matches!(
        verify(&p, &retired, EVENT.as_bytes()).await,
        Err(WebhookError::Signature(VerifyError::NoMatch))
    ));
}

#[tokio::test]
async fn stale_forged_unsigned_and_tampered_webhooks_are_refused() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    let body = EVENT.as_bytes();

    let stale = signed(SECRET, unix_now() - 301, body);
    assert!(matches!(
        verify(&p, &stale, body).await,
        Err(WebhookError::Signature(VerifyError::Stale))
    ));

    let forged = signed("whsec_attacker", unix_now(), body);
    assert!(matches!(
        verify(&p, &forged, body).await,
        Err(WebhookError::Signature(VerifyError::NoMatch))
    ));

    assert!(matches!(
        verify(&p, &HeaderMap::new(), body).await,
        Err(WebhookError::Signature(VerifyError::MissingHeader))
    ));

    let good = signed(SECRET, unix_now(), body);
    let tampered = EVENT.replace("mpay_1", "mpay_2");
    assert!(matches!(
        verify(&p, &good, tampered.as_bytes()).await,
        Err(WebhookError::Signature(VerifyError::NoMatch))
    ));
    assert!(verify(&p, &good, body).await.is_ok());
    // Signed four minutes ago is still inside the five-minute tolerance.
    let recent = signed(SECRET, unix_now() - 240, body);
    assert!(verify(&p, &recent, body).await.is_ok());
}

#[tokio::test]
async fn a_validly_signed_body_that_is_not_an_event_is_malformed() {
    let h = Harness::start().await;
    let p = h.provider(json!({}));
    for body in [
        &b"{not json"[..],
        br#"{"object":"event","type":"payment.authorized","data":{"object":{"id":"mpay_1"}}}"#,
        br#"{"id":"","type":"payment.authorized","data":{"object":{"id":"mpay_1"}}}"#,
        br#"{"id":"mevt_1","type":"payment.authorized","data":{}}"#,
    ] {
        let headers = signed(SECRET, unix_now(), body);
        assert!(
            matches!(
                verify(&p, &headers, body).await,
                Err(WebhookError::Malformed(_))
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let other = br#"{"id":"mevt_2","type":"payment.captured","data":{"object":{"id":"mpay_1"}}}"#;
    let headers = signed(SECRET, unix_now(), other);
    assert_eq!(
        verify(&p, &headers, other).await.unwrap().kind(),
        &EventKind::Other
    );
}

#[tokio::test]
async fn the_registered_fake_serves_a_whole_payment_where_the_gateway_mounts_it() {
    // The gateway mounts every registered fake at /fakes/{id}; with no api_base the
    // adapter talks to it there, over HTTP like any PSP.
    let listener = common::bind().await;
    let public_url = format!("http://{}", listener.local_addr().unwrap());
    let fake = fake_support::fakes()
        .get("mock")
        .copied()
        .expect("the mock crate registers its fake");
    let public_base = format!("{public_url}{}", mock::FAKE_PATH);
    let config = json!({ "webhook_secret": SECRET });
    let router = (fake.build)(&fake_support::FakeContext {
        public_base: &public_base,
        config: &config,
        webhook_url: None,
    });
    common::serve_on(listener, axum::Router::new().nest(mock::FAKE_PATH, router)).await;
    let p = MockProvider::from_config(&config, &public_url).unwrap();
    assert_eq!(p.api_base(), public_base);

    let receiver = common::Receiver::start().await;
    let c = cart("25.50");
    let s = p
        .checkout(CheckoutRequest {
            cart: &c,
            amount: sek(2550),
            body: &json!({}),
            existing: None,
            idempotency_key: "embedded-1",
            webhook_url: &receiver.url,
        })
        .await
        .unwrap();
    assert!(s.client["redirectUrl"]
        .as_str()
        .unwrap()
        .starts_with(&public_base));
    let approved = reqwest::Client::new()
        .post(format!(
            "{public_base}/v1/_test/payments/{}/approve",
            s.psp_ref
        ))
        .bearer_auth("mock_sk_test")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(approved.status().is_success());
    let got = receiver.wait_for(&s.psp_ref, "payment.authorized").await;
    let event = p.verify_webhook(&got.delivery()).await.unwrap();
    assert_eq!(
        event.kind(),
        &EventKind::Authorized {
            psp_ref: s.psp_ref.clone()
        }
    );
    assert_eq!(
        p.fetch(&s.psp_ref).await.unwrap().status,
        PspStatus::Authorized { amount: sek(2550) }
    );
}
