//! The provider conformance suite: what every PSP adapter must do, checked against the
//! adapter and its fake PSP.
//!
//! A provider crate implements [`Harness`] in a test and runs each check as its own
//! `#[tokio::test]` (or all of them with [`run_all`]):
//!
//! ```text
//! #[tokio::test]
//! async fn a_forged_signature_is_refused() {
//!     testkit::conformance::a_forged_signature_is_refused(&MyHarness::start().await).await;
//! }
//! ```
//!
//! The signature checks apply to providers whose capabilities say `signed_webhooks`; for
//! a provider that does not sign they are skipped with a note on stderr.
//!
//! Each check panics with a sentence saying what did not hold. Checks count things at the
//! fake PSP, so each expects a harness of its own (or at least not shared with a check
//! running at the same time). Every step is bounded by [`STEP_TIMEOUT`], so a hanging
//! adapter fails instead of stalling the test run.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue};
use psp_core::ports::{Inbox, Sessions};
use psp_core::ports::{NewWebhook, Recorded};
use psp_core::signature::{sign_header, unix_now};
use psp_core::{
    CaptureRequest, CartState, CheckoutRequest, CheckoutSession, Completer, CompletionOutcome,
    Currency, EventKind, ExistingSession, Money, Provider, ProviderError, RenderedCart, Secret,
    VerifiedEvent, VerifyError, WebhookDelivery, WebhookError,
};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::mem::{MemHantera, MemStore};

/// How long any single step (one adapter call, one fake PSP action) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// What a provider's conformance test supplies: the adapter wired to its fake PSP, and
/// the few things only the provider knows (its event format, its signature header).
#[async_trait]
pub trait Harness: Send + Sync {
    /// The adapter under test, configured against its fake PSP, with the secrets below.
    fn provider(&self) -> Arc<dyn Provider>;

    /// Webhook secrets the provider accepts (at least two, to test rotation) and one it
    /// must not accept.
    fn secrets(&self) -> (Vec<Secret>, Secret);

    /// The header name the provider reads its signature from.
    fn signature_header(&self) -> &'static str;

    /// A webhook body saying `psp_ref` is authorized, in the PSP's own format, with event
    /// id `event_id`.
    fn authorized_event(&self, event_id: &str, psp_ref: &str) -> Vec<u8>;

    /// Makes the fake PSP authorize `psp_ref` as a customer would (amount as requested).
    async fn authorize(&self, psp_ref: &str);

    /// How many captures the fake PSP has performed for `psp_ref`.
    async fn captures_at_psp(&self, psp_ref: &str) -> usize;

    /// How many checkout sessions (PSP payments) the fake PSP holds in all.
    async fn sessions_at_psp(&self) -> usize;

    /// The storefront's JSON body for a checkout (return URLs and the like).
    fn checkout_body(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// The webhook URL handed to the PSP at checkout.
    fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:9/webhooks/{}", self.provider().id())
    }

    /// The amount the checks pay: 123.45 SEK unless the PSP needs something else.
    fn amount(&self) -> Money {
        let sek = Currency::from_code("SEK").expect("SEK is an ISO 4217 currency");
        Money::from_minor(12_345, sek)
    }
}

/// Runs every check in turn on one harness. Prefer one `#[tokio::test]` per check, so a
/// failure names the check; this is for a quick all-in-one run.
pub async fn run_all(h: &dyn Harness) {
    checkout_with_the_same_key_returns_the_same_session(h).await;
    a_valid_signature_verifies_and_names_the_payment(h).await;
    a_forged_signature_is_refused(h).await;
    a_stale_timestamp_is_refused(h).await;
    a_replayed_delivery_yields_the_same_event_id(h).await;
    every_configured_secret_verifies_during_rotation(h).await;
    an_unknown_secret_is_refused(h).await;
    an_authorized_payment_completes_the_cart_once(h).await;
    capture_with_the_same_key_captures_once(h).await;
}

// ---------------------------------------------------------------------------------------
// Checkout
// ---------------------------------------------------------------------------------------

/// Two checkouts with one idempotency key and no session yet give one PSP session; a
/// third that passes it as `existing` with the same amount reuses it.
pub async fn checkout_with_the_same_key_returns_the_same_session(h: &dyn Harness) {
    let provider = h.provider();
    let cart = open_cart(Uuid::new_v4(), h.amount());
    let body = h.checkout_body();
    let url = h.webhook_url();
    let key = format!("conformance-{}", Uuid::new_v4());
    let before = step("count sessions at the fake PSP", h.sessions_at_psp()).await;

    let first = checkout(&*provider, &cart, h.amount(), &body, None, &key, &url).await;
    assert_eq!(
        first.amount,
        h.amount(),
        "checkout must hold exactly the cart total at the PSP"
    );
    let after_first = step("count sessions at the fake PSP", h.sessions_at_psp()).await;
    assert_eq!(
        after_first,
        before + 1,
        "the first checkout must create exactly one PSP session"
    );

    // A retry after a lost answer: the same key must not create a second session.
    let second = checkout(&*provider, &cart, h.amount(), &body, None, &key, &url).await;
    assert_eq!(
        second.psp_ref, first.psp_ref,
        "a second checkout with the same idempotency key must return the same PSP session"
    );

    let existing = ExistingSession {
        psp_ref: first.psp_ref.clone(),
        amount: first.amount,
        client: first.client.clone(),
    };
    let third = checkout(
        &*provider,
        &cart,
        h.amount(),
        &body,
        Some(&existing),
        &key,
        &url,
    )
    .await;
    assert_eq!(
        third.psp_ref, first.psp_ref,
        "a checkout passing the existing session with the same amount must reuse it"
    );
    let after_all = step("count sessions at the fake PSP", h.sessions_at_psp()).await;
    assert_eq!(
        after_all,
        before + 1,
        "repeated checkouts for one unchanged cart must leave exactly one PSP session"
    );
}

// ---------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------

/// A delivery signed with a configured secret verifies, and the event names the payment
/// and the event id as sent.
pub async fn a_valid_signature_verifies_and_names_the_payment(h: &dyn Harness) {
    let provider = h.provider();
    if !signs(
        &*provider,
        "a_valid_signature_verifies_and_names_the_payment",
    ) {
        return;
    }
    let (secrets, _) = configured_secrets(h);
    let body = h.authorized_event("evt_conformance_valid", "conformance_ref_valid");
    let event = verify(h, &*provider, &secrets[0], unix_now(), &body)
        .await
        .unwrap_or_else(|e| {
            panic!("a delivery signed with the first configured secret must verify, got: {e}")
        });
    assert_eq!(
        event.event_id(),
        "evt_conformance_valid",
        "the verified event must carry the PSP's event id"
    );
    assert_eq!(
        event.kind(),
        &EventKind::Authorized {
            psp_ref: "conformance_ref_valid".into()
        },
        "an authorized event must name the PSP payment it authorizes"
    );
}

/// A body changed after signing, a made-up signature and a missing header are refused as
/// signature failures (HTTP 401), never parsed.
pub async fn a_forged_signature_is_refused(h: &dyn Harness) {
    let provider = h.provider();
    if !signs(&*provider, "a_forged_signature_is_refused") {
        return;
    }
    let (secrets, _) = configured_secrets(h);
    let body = h.authorized_event("evt_conformance_forged", "conformance_ref_forged");
    let now = unix_now();

    // A good signature over different bytes: the body was tampered with in transit.
    let header = sign_header(&secrets[0], now, &body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let err = verify_with_header(h, &*provider, Some(&header), &tampered)
        .await
        .expect_err("a body changed after signing must be refused");
    assert_signature_error(&err, "a body changed after signing");

    // A signature nobody computed.
    let forged = format!("t={now},v1={}", "ab".repeat(32));
    let err = verify_with_header(h, &*provider, Some(&forged), &body)
        .await
        .expect_err("a made-up signature must be refused");
    assert_signature_error(&err, "a made-up signature");

    // No signature at all.
    let err = verify_with_header(h, &*provider, None, &body)
        .await
        .expect_err("a delivery without a signature header must be refused");
    assert_signature_error(&err, "a missing signature header");
}

/// A delivery correctly signed ten minutes ago is refused as stale (a replay).
pub async fn a_stale_timestamp_is_refused(h: &dyn Harness) {
    let provider = h.provider();
    if !signs(&*provider, "a_stale_timestamp_is_refused") {
        return;
    }
    let (secrets, _) = configured_secrets(h);
    let body = h.authorized_event("evt_conformance_stale", "conformance_ref_stale");
    let err = verify(h, &*provider, &secrets[0], unix_now() - 600, &body)
        .await
        .expect_err("a delivery signed ten minutes ago must be refused");
    assert!(
        matches!(err, WebhookError::Signature(VerifyError::Stale)),
        "a delivery signed ten minutes ago must be refused as stale, got: {err}"
    );
}

/// A redelivery (re-signed later, as PSPs do on retry) yields the same event id, so the
/// store's unique (provider, event id) records it once.
pub async fn a_replayed_delivery_yields_the_same_event_id(h: &dyn Harness) {
    let provider = h.provider();
    if !signs(&*provider, "a_replayed_delivery_yields_the_same_event_id") {
        return;
    }
    let (secrets, _) = configured_secrets(h);
    let body = h.authorized_event("evt_conformance_replay", "conformance_ref_replay");
    let now = unix_now();
    let first = verify(h, &*provider, &secrets[0], now - 60, &body)
        .await
        .unwrap_or_else(|e| panic!("the first delivery must verify, got: {e}"));
    let again = verify(h, &*provider, &secrets[0], now, &body)
        .await
        .unwrap_or_else(|e| panic!("the redelivery must verify, got: {e}"));
    assert_eq!(
        first.event_id(),
        again.event_id(),
        "a redelivery of one event must yield the same event id"
    );

    let store = MemStore::new();
    let record = |e: &VerifiedEvent| NewWebhook {
        provider: provider.id().to_string(),
        event_id: e.event_id().to_string(),
        event_type: e.event_type().to_string(),
        psp_ref: e.kind().psp_ref().map(str::to_string),
        body: body.clone(),
        job: None,
    };
    let recorded = step(
        "record the first delivery",
        store.record_webhook(record(&first)),
    )
    .await
    .expect("MemStore records a webhook");
    assert_eq!(recorded, Recorded::New);
    let recorded = step(
        "record the redelivery",
        store.record_webhook(record(&again)),
    )
    .await
    .expect("MemStore records a webhook");
    assert_eq!(
        recorded,
        Recorded::Duplicate,
        "the store must recognise the redelivery as a duplicate"
    );
}

/// During a rotation every configured secret verifies, alone or next to another `v1`.
pub async fn every_configured_secret_verifies_during_rotation(h: &dyn Harness) {
    let provider = h.provider();
    if !signs(
        &*provider,
        "every_configured_secret_verifies_during_rotation",
    ) {
        return;
    }
    let (secrets, unknown) = configured_secrets(h);
    let body = h.authorized_event("evt_conformance_rotation", "conformance_ref_rotation");
    let now = unix_now();
    for (i, secret) in secrets.iter().enumerate() {
        if let Err(e) = verify(h, &*provider, secret, now, &body).await {
            panic!("a delivery signed with configured secret #{i} must verify, got: {e}");
        }
    }
    // While the PSP rotates, it signs with the old and the new secret side by side.
    let old = sign_header(&unknown, now, &body);
    let new = sign_header(&secrets[secrets.len() - 1], now, &body);
    let v1 = new.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
    let both = format!("{old},v1={v1}");
    if let Err(e) = verify_with_header(h, &*provider, Some(&both), &body).await {
        panic!("a header carrying one good v1 among several must verify, got: {e}");
    }
}

/// A delivery signed with a secret that is not configured is refused.
pub async fn an_unknown_secret_is_refused(h: &dyn Harness) {
    let provider = h.provider();
    if !signs(&*provider, "an_unknown_secret_is_refused") {
        return;
    }
    let (_, unknown) = configured_secrets(h);
    let body = h.authorized_event("evt_conformance_unknown", "conformance_ref_unknown");
    let err = verify(h, &*provider, &unknown, unix_now(), &body)
        .await
        .expect_err("a delivery signed with an unknown secret must be refused");
    assert!(
        matches!(err, WebhookError::Signature(VerifyError::NoMatch)),
        "a delivery signed with an unknown secret must be refused as not matching, got: {err}"
    );
}

// ---------------------------------------------------------------------------------------
// Completion and capture
// ---------------------------------------------------------------------------------------

/// After checkout and authorization at the PSP, two concurrent completions and a repeat
/// give one Hantera payment and one completed cart.
pub async fn an_authorized_payment_completes_the_cart_once(h: &dyn Harness) {
    let provider = h.provider();
    let hantera = Arc::new(MemHantera::new());
    let store = Arc::new(MemStore::new());
    let amount = h.amount();
    let cart_id = hantera.add_cart(amount);
    let session = start_session(h, &*provider, &hantera, &store, cart_id).await;
    step("authorize at the fake PSP", h.authorize(&session.psp_ref)).await;

    let completer = Completer::new(hantera.clone(), store.clone());
    let (a, b) = step("complete twice at once", async {
        tokio::join!(
            completer.complete(&*provider, &session.psp_ref),
            completer.complete(&*provider, &session.psp_ref)
        )
    })
    .await;
    let mut outcomes = [
        a.unwrap_or_else(|e| panic!("a completion of an authorized payment failed: {e}")),
        b.unwrap_or_else(|e| panic!("a completion of an authorized payment failed: {e}")),
    ];
    outcomes.sort_by_key(|o| o.label());
    let payment_id = match &outcomes {
        [CompletionOutcome::AlreadyCompleted, CompletionOutcome::Completed { payment_id }] => {
            *payment_id
        }
        other => panic!(
            "two concurrent completions must give one Completed and one AlreadyCompleted, got {other:?}"
        ),
    };
    let again = step(
        "complete a third time",
        completer.complete(&*provider, &session.psp_ref),
    )
    .await
    .unwrap_or_else(|e| panic!("a repeated completion failed: {e}"));
    assert_eq!(
        again,
        CompletionOutcome::AlreadyCompleted,
        "a repeated completion must be AlreadyCompleted"
    );

    let payments = hantera.payments();
    assert_eq!(
        payments.len(),
        1,
        "exactly one Hantera payment must exist, found {payments:?}"
    );
    let payment = &payments[0];
    assert_eq!(payment.payment_id, payment_id);
    assert_eq!(payment.provider_key, provider.id());
    assert_eq!(payment.external_reference, session.psp_ref);
    assert_eq!(
        payment.authorizations[0].amount,
        amount.to_decimal(),
        "the payment must be authorized for the amount the PSP authorized"
    );
    assert_eq!(
        hantera.cart_state(cart_id),
        Some(CartState::Completed),
        "the cart must be completed"
    );
    assert_eq!(hantera.cart_payments(cart_id), vec![payment_id]);
}

/// Two captures with one idempotency key capture once at the PSP and answer the same.
pub async fn capture_with_the_same_key_captures_once(h: &dyn Harness) {
    let provider = h.provider();
    let hantera = Arc::new(MemHantera::new());
    let store = Arc::new(MemStore::new());
    let cart_id = hantera.add_cart(h.amount());
    let session = start_session(h, &*provider, &hantera, &store, cart_id).await;
    step("authorize at the fake PSP", h.authorize(&session.psp_ref)).await;

    let key = format!("capture-{}", Uuid::new_v4());
    let request = || CaptureRequest {
        psp_ref: &session.psp_ref,
        amount: h.amount(),
        idempotency_key: &key,
    };
    if !provider.capabilities().capture {
        let err = step("capture", provider.capture(request())).await;
        assert!(
            matches!(err, Err(ProviderError::Unsupported(_))),
            "a provider without the capture capability must refuse capture as unsupported, got {err:?}"
        );
        return;
    }
    let first = step("capture", provider.capture(request()))
        .await
        .unwrap_or_else(|e| panic!("capturing an authorized payment failed: {e}"));
    // A retry after a timeout: the same key.
    let second = step(
        "capture again with the same key",
        provider.capture(request()),
    )
    .await
    .unwrap_or_else(|e| panic!("repeating a capture with the same key failed: {e}"));
    assert_eq!(
        first, second,
        "a repeated capture with the same key must answer with the same capture"
    );
    let captures = step(
        "count captures at the fake PSP",
        h.captures_at_psp(&session.psp_ref),
    )
    .await;
    assert_eq!(
        captures, 1,
        "two captures with the same idempotency key must capture once at the PSP"
    );
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// An open cart of one total, rendered as Hantera would.
pub fn open_cart(cart_id: Uuid, total: Money) -> RenderedCart {
    RenderedCart {
        cart_id,
        cart_number: Some("C-CONFORMANCE".into()),
        cart_state: CartState::Open,
        currency_code: total.currency.code().to_string(),
        order_total: total.to_decimal(),
        order_tax_total: Decimal::ZERO,
        items: Vec::new(),
        order_number: None,
    }
}

/// Request headers carrying one signature header.
pub fn signed_headers(header_name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_bytes(header_name.as_bytes()).expect("a valid header name"),
        HeaderValue::from_str(value).expect("a signature header is visible ASCII"),
    );
    headers
}

/// Runs `fut`, panicking with `what` when it takes longer than [`STEP_TIMEOUT`].
pub async fn step<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("step {what:?} did not finish within {STEP_TIMEOUT:?}"),
    }
}

/// Whether the provider signs its webhooks. The signature checks do not apply to one that
/// does not (its webhook is only a hint to re-read the PSP), and say so on stderr.
fn signs(provider: &dyn Provider, check: &str) -> bool {
    let signs = provider.capabilities().signed_webhooks;
    if !signs {
        eprintln!(
            "{check}: skipped, provider {} does not sign its webhooks",
            provider.id()
        );
    }
    signs
}

fn configured_secrets(h: &dyn Harness) -> (Vec<Secret>, Secret) {
    let (secrets, unknown) = h.secrets();
    assert!(
        secrets.len() >= 2,
        "the harness must configure at least two webhook secrets to test rotation"
    );
    assert!(
        !secrets.contains(&unknown),
        "the harness's unknown secret must not be one of the configured ones"
    );
    (secrets, unknown)
}

async fn verify(
    h: &dyn Harness,
    provider: &dyn Provider,
    secret: &Secret,
    timestamp: i64,
    body: &[u8],
) -> Result<VerifiedEvent, WebhookError> {
    let header = sign_header(secret, timestamp, body);
    verify_with_header(h, provider, Some(&header), body).await
}

async fn verify_with_header(
    h: &dyn Harness,
    provider: &dyn Provider,
    header: Option<&str>,
    body: &[u8],
) -> Result<VerifiedEvent, WebhookError> {
    let headers = match header {
        Some(value) => signed_headers(h.signature_header(), value),
        None => HeaderMap::new(),
    };
    provider
        .verify_webhook(&WebhookDelivery {
            headers: &headers,
            body,
            query: None,
            now: SystemTime::now(),
        })
        .await
}

fn assert_signature_error(err: &WebhookError, what: &str) {
    assert!(
        matches!(err, WebhookError::Signature(_)),
        "{what} must be refused as a signature failure (HTTP 401), got: {err}"
    );
}

#[allow(clippy::too_many_arguments)]
async fn checkout(
    provider: &dyn Provider,
    cart: &RenderedCart,
    amount: Money,
    body: &serde_json::Value,
    existing: Option<&ExistingSession>,
    idempotency_key: &str,
    webhook_url: &str,
) -> CheckoutSession {
    step(
        "checkout",
        provider.checkout(CheckoutRequest {
            cart,
            amount,
            body,
            existing,
            idempotency_key,
            webhook_url,
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("checkout for an open cart failed: {e}"))
}

/// Starts a PSP session for a cart the way the gateway does: the key is reserved in the
/// store before the PSP call and the answer saved after it, so completion can find the
/// cart from the session even when the PSP's record does not name it.
async fn start_session(
    h: &dyn Harness,
    provider: &dyn Provider,
    hantera: &MemHantera,
    store: &MemStore,
    cart_id: Uuid,
) -> CheckoutSession {
    let cart = hantera
        .cart(cart_id)
        .expect("the cart was just added to MemHantera");
    let key = format!("checkout-{cart_id}");
    step(
        "reserve the session",
        store.reserve_session(cart_id, provider.id(), &key),
    )
    .await
    .expect("MemStore reserves a session");
    let session = checkout(
        provider,
        &cart,
        h.amount(),
        &h.checkout_body(),
        None,
        &key,
        &h.webhook_url(),
    )
    .await;
    step(
        "save the session",
        store.save_session(
            cart_id,
            provider.id(),
            &session.psp_ref,
            session.amount,
            &session.client,
        ),
    )
    .await
    .expect("MemStore saves a session");
    session
}
