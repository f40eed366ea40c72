//! The Stripe adapter against the fake Stripe over real HTTP: what it sends, how it
//! converts amounts, how it retries and resolves ambiguous answers, and how it maps
//! PaymentIntents, webhooks and errors.

use crate::common;

use std::sync::Arc;

use common::{money, sek, world};
use psp_core::{
    CaptureRequest, CheckoutRequest, CheckoutSession, Completer, CompletionOutcome, EventKind,
    ExistingSession, Money, Provider, ProviderError, PspStatus, SyncRequest, WebhookDelivery,
};
use serde_json::{json, Value};
use stripe::fake::{
    Faults, IntentStatus, RequestRecord, PM_AUTHENTICATION_REQUIRED, PM_DECLINED, PM_VISA,
};
use stripe::StripeProvider;
use testkit::conformance::open_cart;
use testkit::mem::{MemHantera, MemStore};
use uuid::Uuid;

async fn checkout(
    provider: &StripeProvider,
    amount: Money,
    key: &str,
    existing: Option<&ExistingSession>,
) -> Result<CheckoutSession, ProviderError> {
    let cart = open_cart(Uuid::new_v4(), amount);
    provider
        .checkout(CheckoutRequest {
            cart: &cart,
            amount,
            body: &json!({}),
            existing,
            idempotency_key: key,
            webhook_url: "http://127.0.0.1:9/webhooks/stripe",
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

fn posts(requests: &[RequestRecord], path: &str) -> Vec<RequestRecord> {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .cloned()
        .collect()
}

fn key() -> String {
    Uuid::new_v4().to_string()
}

// ---------------------------------------------------------------------------------------
// Checkout
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn checkout_creates_a_payment_intent_with_stripes_parameters() {
    let (fake, provider) = world(json!({})).await;
    let k = key();
    let s = checkout(&provider, sek(12_345), &k, None).await.unwrap();
    let pi = fake
        .fake
        .intent(&s.psp_ref)
        .expect("the PaymentIntent exists");
    assert_eq!(pi.amount, 12_345);
    assert_eq!(pi.currency, "sek");
    assert_eq!(pi.capture_method, "manual");
    assert_eq!(pi.automatic_payment_methods, Some(true));
    assert_eq!(pi.metadata["gateway"], "psp-gateway");
    assert_eq!(pi.metadata["checkout_key"], k);
    assert!(Uuid::parse_str(&pi.metadata["cart_id"]).is_ok());
    assert_eq!(pi.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(
        s.client,
        json!({ "clientSecret": pi.client_secret, "paymentIntentId": pi.id })
    );
    assert_eq!(s.amount, sek(12_345));
    let create = posts(&fake.fake.requests(), "/v1/payment_intents");
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].idempotency_key.as_deref(), Some(k.as_str()));
}

#[tokio::test]
async fn automatic_capture_is_sent_when_configured() {
    let (fake, provider) = world(json!({ "capture_method": "automatic" })).await;
    let s = checkout(&provider, sek(500), &key(), None).await.unwrap();
    assert_eq!(
        fake.fake.intent(&s.psp_ref).unwrap().capture_method,
        "automatic"
    );
}

#[tokio::test]
async fn amounts_are_sent_in_stripes_minor_units_for_every_currency_rule() {
    let (fake, provider) = world(json!({})).await;
    for (major, code, expected) in [
        ("1234.50", "SEK", 123_450),
        ("1500", "JPY", 1_500),
        ("5.120", "KWD", 5_120),
        ("123", "ISK", 12_300),
        ("5000", "UGX", 5_000),
        ("10.05", "EUR", 1_005),
    ] {
        let s = checkout(&provider, money(major, code), &key(), None)
            .await
            .unwrap_or_else(|e| panic!("{major} {code}: {e}"));
        let pi = fake.fake.intent(&s.psp_ref).unwrap();
        assert_eq!(pi.amount, expected, "{major} {code}");
        assert_eq!(pi.currency, code.to_ascii_lowercase());
        assert_eq!(s.amount, money(major, code), "read back exactly");
    }
}

#[tokio::test]
async fn amounts_stripe_cannot_represent_are_refused_before_any_request() {
    let (fake, provider) = world(json!({})).await;
    for (major, code) in [("5.125", "KWD"), ("1", "LYD"), ("1000000", "SEK")] {
        let err = checkout(&provider, money(major, code), &key(), None)
            .await
            .expect_err(major);
        assert!(
            matches!(err, ProviderError::BadRequest(_)),
            "{major} {code}: {err}"
        );
    }
    assert!(
        fake.fake.requests().is_empty(),
        "nothing was sent, in particular never 5125 for KWD 5.125"
    );
}

#[tokio::test]
async fn an_unchanged_cart_reuses_its_payment_intent_without_calling_stripe() {
    let (fake, provider) = world(json!({})).await;
    let k = key();
    let first = checkout(&provider, sek(1_000), &k, None).await.unwrap();
    let before = fake.fake.requests().len();
    let again = checkout(&provider, sek(1_000), &k, Some(&existing(&first)))
        .await
        .unwrap();
    assert_eq!(again.psp_ref, first.psp_ref);
    assert_eq!(again.client, first.client);
    assert_eq!(fake.fake.requests().len(), before);
}

#[tokio::test]
async fn a_changed_cart_updates_the_amount_of_the_unconfirmed_payment_intent() {
    let (fake, provider) = world(json!({})).await;
    let k = key();
    let a = checkout(&provider, sek(1_000), &k, None).await.unwrap();
    let b = checkout(&provider, sek(2_000), &k, Some(&existing(&a)))
        .await
        .unwrap();
    assert_eq!(b.psp_ref, a.psp_ref, "the same PaymentIntent");
    assert_eq!(b.amount, sek(2_000));
    assert_eq!(fake.fake.intent(&a.psp_ref).unwrap().amount, 2_000);
    // Back and forth (A→B→A→B): the last change reuses B's key, Stripe replays B's old
    // answer, and the adapter notices and sets B again.
    let a2 = checkout(&provider, sek(1_000), &k, Some(&existing(&b)))
        .await
        .unwrap();
    assert_eq!(fake.fake.intent(&a.psp_ref).unwrap().amount, 1_000);
    let b2 = checkout(&provider, sek(2_000), &k, Some(&existing(&a2)))
        .await
        .unwrap();
    assert_eq!(b2.amount, sek(2_000));
    assert_eq!(fake.fake.intent(&a.psp_ref).unwrap().amount, 2_000);
    assert_eq!(fake.fake.intents().len(), 1);
}

#[tokio::test]
async fn a_confirmed_payment_intent_is_locked_against_amount_changes() {
    let (fake, provider) = world(json!({})).await;
    let k = key();
    let s = checkout(&provider, sek(1_000), &k, None).await.unwrap();
    fake.fake.confirm(&s.psp_ref, PM_VISA, false).unwrap();
    let err = checkout(&provider, sek(2_000), &k, Some(&existing(&s)))
        .await
        .expect_err("a PaymentIntent in requires_capture cannot change");
    assert!(matches!(err, ProviderError::Locked(_)), "{err}");
    assert_eq!(fake.fake.intent(&s.psp_ref).unwrap().amount, 1_000);
}

#[tokio::test]
async fn a_key_reused_after_the_cart_changed_finds_its_payment_intent_and_updates_it() {
    // The first checkout's answer was lost (nothing saved at the gateway), then the cart
    // changed: the same persisted key now comes with another amount, which Stripe refuses
    // as an idempotency_error. The PaymentIntent is found by its key instead.
    let (fake, provider) = world(json!({})).await;
    let k = key();
    fake.fake.set_faults(Faults {
        drop_after_next: 3,
        ..Faults::default()
    });
    let lost = checkout(&provider, sek(1_000), &k, None).await;
    assert!(lost.unwrap_err().is_transient());
    let s = checkout(&provider, sek(1_500), &k, None).await.unwrap();
    assert_eq!(fake.fake.intents().len(), 1);
    assert_eq!(fake.fake.intent(&s.psp_ref).unwrap().amount, 1_500);
}

// ---------------------------------------------------------------------------------------
// Retries and idempotency
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_dropped_answer_is_retried_with_the_same_key_and_creates_one_payment_intent() {
    let (fake, provider) = world(json!({})).await;
    fake.fake.set_faults(Faults {
        drop_after_next: 1,
        ..Faults::default()
    });
    let k = key();
    let s = checkout(&provider, sek(1_000), &k, None).await.unwrap();
    assert_eq!(fake.fake.intents().len(), 1);
    let create = posts(&fake.fake.requests(), "/v1/payment_intents");
    assert_eq!(create.len(), 2, "{create:?}");
    assert!(create
        .iter()
        .all(|r| r.idempotency_key.as_deref() == Some(k.as_str())));
    assert_eq!(create[0].fault.as_deref(), Some("drop_after"));
    assert!(create[1].replayed, "the retry got Stripe's saved answer");
    assert_eq!(s.psp_ref, fake.fake.intents()[0].id);
}

#[tokio::test]
async fn a_timeout_is_retried_with_the_same_key() {
    // Generous for a loopback call on a busy machine, well below the hang.
    let (fake, provider) = world(json!({ "timeout_ms": 700 })).await;
    fake.fake.set_faults(Faults {
        hang_next: 1,
        hang_ms: 3_000,
        ..Faults::default()
    });
    let k = key();
    checkout(&provider, sek(1_000), &k, None).await.unwrap();
    assert_eq!(fake.fake.intents().len(), 1);
    let create = posts(&fake.fake.requests(), "/v1/payment_intents");
    assert!(create
        .iter()
        .all(|r| r.idempotency_key.as_deref() == Some(k.as_str())));
}

#[tokio::test]
async fn a_saved_500_that_created_nothing_is_resolved_by_searching_then_a_fresh_key() {
    let (fake, provider) = world(json!({})).await;
    fake.fake.set_faults(Faults {
        error_next: 1,
        error_applied: false,
        ..Faults::default()
    });
    let k = key();
    let s = checkout(&provider, sek(1_000), &k, None).await.unwrap();
    assert_eq!(fake.fake.intents().len(), 1, "exactly one PaymentIntent");
    let requests = fake.fake.requests();
    let create = posts(&requests, "/v1/payment_intents");
    let keys: Vec<&str> = create
        .iter()
        .filter_map(|r| r.idempotency_key.as_deref())
        .collect();
    // The 500 is saved under the key, so the retries replay it; then a search finds
    // nothing, and one fresh key derived from the persisted one creates the intent.
    assert_eq!(keys.last().copied(), Some(format!("{k}:rekey-1").as_str()));
    assert!(keys[..keys.len() - 1].iter().all(|key| *key == k));
    assert!(create[1..create.len() - 1]
        .iter()
        .all(|r| r.replayed && r.status == 500));
    assert!(requests
        .iter()
        .any(|r| r.method == "GET" && r.path == "/v1/payment_intents/search"));
    assert_eq!(
        fake.fake.intent(&s.psp_ref).unwrap().metadata["checkout_key"],
        k,
        "the persisted key is in the metadata whatever key created it"
    );
    // The storefront calls again with the persisted key: the 500 replays, and the search
    // finds the intent made under the fresh key.
    let again = checkout(&provider, sek(1_000), &k, None).await.unwrap();
    assert_eq!(again.psp_ref, s.psp_ref);
    assert_eq!(fake.fake.intents().len(), 1);
}

#[tokio::test]
async fn a_saved_500_after_the_payment_intent_was_created_is_resolved_by_searching() {
    let (fake, provider) = world(json!({})).await;
    fake.fake.set_faults(Faults {
        error_next: 1,
        error_applied: true,
        ..Faults::default()
    });
    let k = key();
    let s = checkout(&provider, sek(1_000), &k, None).await.unwrap();
    assert_eq!(fake.fake.intents().len(), 1, "exactly one PaymentIntent");
    assert_eq!(s.psp_ref, fake.fake.intents()[0].id);
    let create = posts(&fake.fake.requests(), "/v1/payment_intents");
    assert!(create
        .iter()
        .all(|r| r.idempotency_key.as_deref() == Some(k.as_str())));
}

#[tokio::test]
async fn four_hundreds_are_never_retried_and_stripe_should_retry_is_honoured() {
    let (fake, provider) = world(json!({})).await;
    let count = |fake: &common::Fake| posts(&fake.fake.requests(), "/v1/payment_intents").len();

    fake.fake.set_faults(Faults {
        reject_next: 5,
        reject_status: 400,
        ..Faults::default()
    });
    let err = checkout(&provider, sek(1_000), &key(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err}");
    assert_eq!(count(&fake), 1, "a 400 is sent once");

    fake.fake.set_faults(Faults {
        reject_next: 5,
        reject_status: 429,
        ..Faults::default()
    });
    let err = checkout(&provider, sek(1_000), &key(), None)
        .await
        .unwrap_err();
    assert!(
        err.is_transient(),
        "a 429 is for the job to retry later: {err}"
    );
    assert_eq!(count(&fake), 2, "a 429 is sent once");

    fake.fake.set_faults(Faults {
        reject_next: 1,
        reject_status: 429,
        should_retry: Some(true),
        ..Faults::default()
    });
    checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    assert_eq!(count(&fake), 4, "Stripe-Should-Retry: true is retried");

    fake.fake.set_faults(Faults {
        reject_next: 5,
        reject_status: 503,
        should_retry: Some(false),
        ..Faults::default()
    });
    let err = checkout(&provider, sek(1_000), &key(), None)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    let after = count(&fake);
    assert_eq!(after, 5, "Stripe-Should-Retry: false is not retried");

    fake.fake.set_faults(Faults {
        reject_next: 1,
        reject_status: 409,
        ..Faults::default()
    });
    checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    assert_eq!(
        count(&fake),
        after + 2,
        "a 409 is retried with the same key"
    );
}

// ---------------------------------------------------------------------------------------
// Capture and void
// ---------------------------------------------------------------------------------------

async fn authorized(fake: &common::Fake, provider: &StripeProvider, amount: Money) -> String {
    let s = checkout(provider, amount, &key(), None).await.unwrap();
    fake.fake.confirm(&s.psp_ref, PM_VISA, false).unwrap();
    s.psp_ref
}

async fn capture(
    provider: &StripeProvider,
    psp_ref: &str,
    amount: Money,
    key: &str,
) -> Result<psp_core::CaptureDone, ProviderError> {
    provider
        .capture(CaptureRequest {
            psp_ref,
            amount,
            idempotency_key: key,
        })
        .await
}

#[tokio::test]
async fn capture_sends_amount_to_capture_and_a_retry_with_the_key_captures_once() {
    let (fake, provider) = world(json!({})).await;
    let pi = authorized(&fake, &provider, sek(1_000)).await;
    fake.fake.set_faults(Faults {
        drop_after_next: 1,
        ..Faults::default()
    });
    let k = key();
    let done = capture(&provider, &pi, sek(1_000), &k).await.unwrap();
    let again = capture(&provider, &pi, sek(1_000), &k).await.unwrap();
    assert_eq!(done, again);
    assert!(done.psp_capture_id.starts_with("ch_"), "{done:?}");
    let captures = fake.fake.captures_of(&pi);
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0].amount, 1_000);
    let calls = posts(
        &fake.fake.requests(),
        &format!("/v1/payment_intents/{pi}/capture"),
    );
    assert_eq!(calls.len(), 3, "dropped, retried, repeated: {calls:?}");
    assert!(calls
        .iter()
        .all(|r| r.idempotency_key.as_deref() == Some(k.as_str())));
}

#[tokio::test]
async fn a_partial_capture_captures_the_amount_asked_and_more_is_refused() {
    let (fake, provider) = world(json!({})).await;
    let pi = authorized(&fake, &provider, sek(1_000)).await;
    let err = capture(&provider, &pi, sek(1_001), &key())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Rejected { ref code, .. } if code == "amount_too_large"),
        "{err}"
    );
    capture(&provider, &pi, sek(600), &key()).await.unwrap();
    let intent = fake.fake.intent(&pi).unwrap();
    assert_eq!(intent.amount_received, 600);
    assert_eq!(intent.status, IntentStatus::Succeeded);
}

#[tokio::test]
async fn a_saved_500_on_capture_is_resolved_by_re_reading_the_payment_intent() {
    for applied in [false, true] {
        let (fake, provider) = world(json!({})).await;
        let pi = authorized(&fake, &provider, sek(1_000)).await;
        fake.fake.set_faults(Faults {
            error_next: 1,
            error_applied: applied,
            ..Faults::default()
        });
        let k = key();
        capture(&provider, &pi, sek(1_000), &k)
            .await
            .unwrap_or_else(|e| panic!("applied={applied}: {e}"));
        assert_eq!(fake.fake.captures_of(&pi).len(), 1, "applied={applied}");
        // The job retries with the persisted key later: the 500 replays, the re-read says
        // captured, and nothing is captured again.
        capture(&provider, &pi, sek(1_000), &k).await.unwrap();
        assert_eq!(fake.fake.captures_of(&pi).len(), 1, "applied={applied}");
        let reads = fake
            .fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path == format!("/v1/payment_intents/{pi}"))
            .count();
        assert!(reads >= 1, "the PaymentIntent was re-read");
    }
}

#[tokio::test]
async fn a_capture_of_a_payment_intent_that_is_not_authorized_is_rejected() {
    let (fake, provider) = world(json!({})).await;
    let s = checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    let err = capture(&provider, &s.psp_ref, sek(1_000), &key())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err}");
    assert!(fake.fake.captures_of(&s.psp_ref).is_empty());
    let err = capture(&provider, "pi_doesnotexist", sek(1_000), &key())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn void_cancels_as_a_duplicate_once_and_refuses_a_captured_payment() {
    let (fake, provider) = world(json!({})).await;
    let pi = authorized(&fake, &provider, sek(1_000)).await;
    provider.void(&pi, &key()).await.unwrap();
    let intent = fake.fake.intent(&pi).unwrap();
    assert_eq!(intent.status, IntentStatus::Canceled);
    assert_eq!(intent.cancellation_reason.as_deref(), Some("duplicate"));
    // Another attempt under another key finds it cancelled: done, not an error.
    provider.void(&pi, &key()).await.unwrap();

    let captured = authorized(&fake, &provider, sek(1_000)).await;
    capture(&provider, &captured, sek(1_000), &key())
        .await
        .unwrap();
    let err = provider.void(&captured, &key()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Reading PaymentIntents
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fetch_maps_every_stage_of_a_payment_intent() {
    let (fake, provider) = world(json!({})).await;
    let status = |p: &Arc<StripeProvider>, id: String| {
        let p = p.clone();
        async move { p.fetch(&id).await.unwrap().status }
    };

    let s = checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    assert_eq!(
        status(&provider, s.psp_ref.clone()).await,
        PspStatus::Pending
    );
    let payment = provider.fetch(&s.psp_ref).await.unwrap();
    assert!(
        payment.cart_id.is_some(),
        "the cart id comes from the metadata"
    );

    fake.fake
        .confirm(&s.psp_ref, PM_DECLINED, false)
        .unwrap_err();
    assert_eq!(
        status(&provider, s.psp_ref.clone()).await,
        PspStatus::Failed {
            reason: "generic_decline".into()
        }
    );

    let three_ds = checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    fake.fake
        .confirm(&three_ds.psp_ref, PM_AUTHENTICATION_REQUIRED, false)
        .unwrap();
    assert_eq!(
        status(&provider, three_ds.psp_ref.clone()).await,
        PspStatus::Pending
    );
    fake.fake
        .authenticate(&three_ds.psp_ref, true, false)
        .unwrap();
    assert_eq!(
        status(&provider, three_ds.psp_ref.clone()).await,
        PspStatus::Authorized { amount: sek(1_000) }
    );
    capture(&provider, &three_ds.psp_ref, sek(800), &key())
        .await
        .unwrap();
    assert_eq!(
        status(&provider, three_ds.psp_ref.clone()).await,
        PspStatus::Captured { amount: sek(800) }
    );

    let canceled = authorized(&fake, &provider, sek(1_000)).await;
    provider.void(&canceled, &key()).await.unwrap();
    assert_eq!(status(&provider, canceled).await, PspStatus::Canceled);

    let err = provider.fetch("pi_unknown").await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err}");
    let err = provider.fetch("../v1/events").await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn the_integrity_check_refuses_a_payment_intent_whose_amount_differs_from_the_cart() {
    let (fake, provider) = world(json!({})).await;
    let hantera = Arc::new(MemHantera::new());
    let store = Arc::new(MemStore::new());
    let cart_id = hantera.add_cart(sek(1_000));
    let cart = hantera.cart(cart_id).unwrap();
    let s = provider
        .checkout(CheckoutRequest {
            cart: &cart,
            amount: sek(1_000),
            body: &json!({}),
            existing: None,
            idempotency_key: &key(),
            webhook_url: "http://127.0.0.1:9/webhooks/stripe",
        })
        .await
        .unwrap();
    // Someone changes the PaymentIntent behind the gateway's back (the dashboard, another
    // integration) before the customer pays.
    let resp = common::http()
        .post(format!("{}/v1/payment_intents/{}", fake.base, s.psp_ref))
        .bearer_auth(common::SECRET_KEY)
        .header("Idempotency-Key", key())
        .form(&[("amount", "900")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    fake.fake.confirm(&s.psp_ref, PM_VISA, false).unwrap();

    let completer = Completer::new(hantera.clone(), store.clone());
    let outcome = completer
        .complete(provider.as_ref(), &s.psp_ref)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CompletionOutcome::NeedsAttention { ref reason } if reason.contains("9.00") && reason.contains("10.00")),
        "{outcome:?}"
    );
    assert!(hantera.payments().is_empty(), "no payment was created");
    assert_eq!(hantera.cart_state(cart_id), Some(psp_core::CartState::Open));
}

#[tokio::test]
async fn sync_updates_the_amount_until_the_payment_intent_is_confirmed() {
    let (fake, provider) = world(json!({})).await;
    let s = checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    let cart = open_cart(Uuid::new_v4(), sek(1_500));
    let payload = provider.sync_payload(&cart).unwrap();
    assert_eq!(payload, json!({ "amount": 1_500, "currency": "sek" }));
    let sync = |amount: Money, k: String| {
        let provider = provider.clone();
        let cart = open_cart(Uuid::new_v4(), amount);
        let payload = payload.clone();
        let psp_ref = s.psp_ref.clone();
        async move {
            provider
                .sync(SyncRequest {
                    psp_ref: &psp_ref,
                    cart: &cart,
                    amount,
                    payload: &payload,
                    idempotency_key: &k,
                })
                .await
        }
    };
    sync(sek(1_500), key()).await.unwrap();
    assert_eq!(fake.fake.intent(&s.psp_ref).unwrap().amount, 1_500);
    fake.fake.confirm(&s.psp_ref, PM_VISA, false).unwrap();
    let err = sync(sek(2_000), key()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Locked(_)), "{err}");
    let kwd = open_cart(Uuid::new_v4(), money("5.125", "KWD"));
    assert!(matches!(
        provider.sync_payload(&kwd),
        Err(ProviderError::BadRequest(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Webhooks from the fake, through the adapter
// ---------------------------------------------------------------------------------------

async fn verify(
    provider: &StripeProvider,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> EventKind {
    provider
        .verify_webhook(&WebhookDelivery {
            headers,
            body,
            query: None,
            now: std::time::SystemTime::now(),
        })
        .await
        .unwrap_or_else(|e| panic!("a delivery from the fake must verify: {e}"))
        .kind()
        .clone()
}

#[tokio::test]
async fn events_of_our_payment_intents_drive_completion_and_others_are_ignored() {
    let (url, inbox) = common::receiver().await;
    let fake = common::start_fake(None).await;
    let provider = common::provider(&fake.base, json!({}));
    // The endpoint is registered through Stripe's API, as an operator would.
    let resp = common::http()
        .post(format!("{}/v1/webhook_endpoints", fake.base))
        .bearer_auth(common::SECRET_KEY)
        .form(&[
            ("url", url.as_str()),
            (
                "enabled_events[]",
                "payment_intent.amount_capturable_updated",
            ),
            ("enabled_events[]", "payment_intent.payment_failed"),
            ("enabled_events[]", "payment_intent.canceled"),
            ("enabled_events[]", "payment_intent.succeeded"),
            ("api_version", stripe::DEFAULT_API_VERSION),
        ])
        .send()
        .await
        .unwrap();
    let endpoint: Value = resp.json().await.unwrap();
    assert_eq!(endpoint["secret"], common::PRIMARY);

    let ours = checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    fake.fake.confirm(&ours.psp_ref, PM_VISA, true).unwrap();
    let declined = checkout(&provider, sek(1_000), &key(), None).await.unwrap();
    fake.fake
        .confirm(&declined.psp_ref, PM_DECLINED, true)
        .unwrap_err();
    provider.void(&declined.psp_ref, &key()).await.unwrap();
    // Another integration on the same account: no gateway tag in the metadata.
    let theirs: Value = common::http()
        .post(format!("{}/v1/payment_intents", fake.base))
        .bearer_auth(common::SECRET_KEY)
        .form(&[
            ("amount", "700"),
            ("currency", "sek"),
            ("capture_method", "manual"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let theirs_id = theirs["id"].as_str().unwrap().to_string();
    fake.fake.confirm(&theirs_id, PM_VISA, true).unwrap();

    // Ours authorized, the declined one failed and was cancelled, theirs authorized.
    let got = common::eventually("four deliveries", || async {
        let got = inbox.received.lock().clone();
        (got.len() >= 4).then_some(got)
    })
    .await;
    let mut kinds = Vec::new();
    for (headers, body) in &got {
        kinds.push(verify(&provider, headers, body).await);
    }
    let expect = [
        EventKind::Authorized {
            psp_ref: ours.psp_ref.clone(),
        },
        EventKind::Failed {
            psp_ref: declined.psp_ref.clone(),
        },
        EventKind::Canceled {
            psp_ref: declined.psp_ref.clone(),
        },
        EventKind::Other,
    ];
    for e in &expect {
        assert!(kinds.contains(e), "{e:?} in {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::Other).count(), 1);
    assert_eq!(got.len(), 4, "payment_intent.created was not subscribed to");
}

#[tokio::test]
async fn the_publishable_key_is_served_as_text_or_json() {
    // The fake is not called; it only gives the adapter a base URL.
    let (_fake, provider) = world(json!({})).await;
    let routes = provider.routes();
    assert!(!routes.is_empty(), "Stripe serves the key");
    let router = testkit::routes::router(routes);
    let base = common::serve(router).await;
    let url = format!("{base}{}", stripe::PUBLIC_KEY_PATH);
    let text = common::http().get(&url).send().await.unwrap();
    assert_eq!(text.status(), 200);
    assert_eq!(text.text().await.unwrap(), common::PUBLISHABLE_KEY);
    let json: Value = common::http()
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json, json!({ "publicKey": common::PUBLISHABLE_KEY }));

    let without = common::provider("http://127.0.0.1:9", json!({ "publishable_key": null }));
    let base = common::serve(testkit::routes::router(without.routes())).await;
    let resp = common::http()
        .get(format!("{base}{}", stripe::PUBLIC_KEY_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["code"],
        "STRIPE_PUBLIC_KEY_NOT_CONFIGURED"
    );
}
