//! The fake mock PSP: an axum [`Router`](axum::Router) with in-memory state.
//!
//! Wire format (all JSON; errors are `{"error":{"code":"…","message":"…"}}`):
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/payments` | create a payment (`Idempotency-Key` required) |
//! | `GET /v1/payments/{id}` | read a payment |
//! | `POST /v1/payments/{id}` | change the amount while `pending` |
//! | `POST /v1/payments/{id}/captures` | capture (several partial captures allowed) |
//! | `POST /v1/payments/{id}/void` | release a pending or authorized payment |
//! | `GET /pay/{id}` | the hosted page with Approve and Decline |
//! | `POST /pay/{id}/approve`, `POST /pay/{id}/decline` | the customer's choice, form or JSON |
//! | `PUT`/`GET /v1/_test/faults` | inject failures into the next API calls |
//! | `GET /v1/_test/payments`, `GET /v1/_test/events` | everything the fake holds, with every capture call and amount update |
//! | `POST /v1/_test/payments/{id}/approve` (and `/decline`) | the hosted choice, answered in JSON |
//!
//! `/v1/*` needs `Authorization: Bearer <api_key>`. Every POST under `/v1/payments` needs an
//! `Idempotency-Key`: the same key with the same request replays the saved answer (marked
//! `Idempotent-Replayed: true`, as Stripe does), the same key with a different request is
//! refused with `idempotency_error`. As at Stripe, a request that fails validation is not
//! saved, and everything after validation is, errors included.
//!
//! Webhooks go to the payment's `webhook_url`, signed in a `Mock-Signature` header with
//! [`psp_core::signature::sign_header`], and are retried a few times with a growing delay.

mod api;
mod delivery;
mod hosted;

use std::sync::Arc;

use axum::http::StatusCode;
use fake_support::replay::Replays;
use fake_support::{base_url, FakeCore, Records};
use psp_core::Secret;
use serde::{Deserialize, Serialize};

use self::delivery::Delivery;
use crate::provider::{DEFAULT_API_KEY, ID};
pub use fake_support::delivery::DeliveryState;

/// The webhook secret of the fake in the stand-alone sandbox (`psp-gateway sandbox`), and
/// of the gateway's embedded default. Public on purpose: no real money goes through it.
pub const SANDBOX_WEBHOOK_SECRET: &str = "whsec_mock_sandbox";

/// Builds the fake for the gateway to mount at [`crate::FAKE_PATH`]. With a config table it
/// shares the provider's key and first webhook secret; with `{}` (the stand-alone sandbox)
/// it uses the sandbox defaults, `mock_sk_test` and [`SANDBOX_WEBHOOK_SECRET`].
fn build_fake(ctx: &fake_support::FakeContext<'_>) -> axum::Router {
    let table = ctx.config;
    let text = |key: &str| {
        table
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let secret = text("webhook_secret").unwrap_or_else(|| SANDBOX_WEBHOOK_SECRET.into());
    FakeMockPsp::new(FakeConfig {
        api_key: text("api_key").unwrap_or_else(|| DEFAULT_API_KEY.into()),
        webhook_secret: Secret::new(secret),
        public_base: ctx.public_base.trim_end_matches('/').to_string(),
    })
    .router()
}

fn sandbox_config() -> serde_json::Value {
    serde_json::json!({ "webhook_secret": SANDBOX_WEBHOOK_SECRET })
}

psp_core::inventory::submit! {
    fake_support::FakeRegistration {
        id: ID,
        build: build_fake,
        sandbox_config,
        demo: Some(include_str!("demo.js")),
    }
}

/// The card number that approves, as Stripe's `4242…` test card does.
pub const CARD_APPROVE: &str = "4242424242424242";
/// The card number that is declined with `card_declined`.
pub const CARD_DECLINE: &str = "4000000000000002";
/// The card number that is declined with `insufficient_funds`.
pub const CARD_INSUFFICIENT_FUNDS: &str = "4000000000009995";

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The key expected in `Authorization: Bearer <api_key>` on `/v1/*`.
    pub api_key: String,
    /// The secret webhooks are signed with.
    pub webhook_secret: Secret,
    /// The absolute URL where the router is reachable, e.g.
    /// `http://127.0.0.1:8080/mock-psp`; hosted page URLs are built from it.
    pub public_base: String,
}

/// The status of a payment at the fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// Waiting for the customer.
    Pending,
    /// Approved; money is reserved and can be captured.
    Authorized,
    /// At least part of the authorization was captured.
    Captured,
    /// Declined by the card or by the customer.
    Failed,
    /// Released before any capture.
    Voided,
}

impl PaymentStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Voided => "voided",
        }
    }
}

/// A payment object, exactly as the API returns it (with `"object":"payment"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "payment")]
pub struct Payment {
    /// `mpay_<32 hex>`.
    pub id: String,
    /// Where the payment is in its life.
    pub status: PaymentStatus,
    /// The amount asked for, in minor units.
    pub amount: i64,
    /// Upper-case ISO 4217 code.
    pub currency: String,
    /// The cart the payment is for.
    pub cart_id: String,
    /// Where the customer is sent after choosing.
    pub return_url: Option<String>,
    /// The hosted page for the customer.
    pub hosted_url: String,
    /// What the customer approved (may differ from `amount` with `amount_override`).
    pub authorized_amount: i64,
    /// The sum of all captures.
    pub captured_amount: i64,
    /// Why the payment failed, when it did.
    pub failure_reason: Option<String>,
    /// Creation time, unix seconds.
    pub created: i64,
}

/// A capture object, exactly as the API returns it (with `"object":"capture"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "object", rename = "capture")]
pub struct Capture {
    /// `mcap_<32 hex>`.
    pub id: String,
    /// The payment captured from.
    pub payment_id: String,
    /// The amount captured, in minor units.
    pub amount: i64,
    /// Creation time, unix seconds.
    pub created: i64,
}

/// One call to the capture endpoint. Calls refused by an injected fault (`fail_next`,
/// `hang_next`) are listed too, with the fault and status 0, so that a test can see which
/// idempotency key every attempt carried; they made no capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureCall {
    /// The `Idempotency-Key` the call carried.
    pub idempotency_key: String,
    /// Whether the answer was a replay of a saved one (no new capture was made).
    pub replayed: bool,
    /// The HTTP status answered (0 when a fault broke the connection).
    pub status: u16,
    /// The injected fault that refused the call (`fail` or `hang`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
}

/// One call that changed (or tried to change) a payment's amount and reached the fake's
/// logic, for tests that count how often a PSP session was brought in step with a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmountUpdate {
    /// The `Idempotency-Key` the call carried.
    pub idempotency_key: String,
    /// The amount asked for, in minor units.
    pub amount: i64,
    /// Whether the answer was a replay of a saved one.
    pub replayed: bool,
    /// The HTTP status answered.
    pub status: u16,
}

/// Failures to inject into the next API calls (`/v1/*` except `/v1/_test/*`). They are
/// consumed in the order listed: a call first uses up `fail_next`, then `hang_next`, then
/// `drop_after_next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next n calls answer 503 `unavailable` without acting.
    pub fail_next: u32,
    /// The next n calls wait `hang_ms` and then break the connection, without acting.
    pub hang_next: u32,
    /// How long a hanging call waits, in milliseconds.
    pub hang_ms: u64,
    /// The next n calls act, and then break the connection instead of answering: the
    /// ambiguous case where the caller cannot know whether anything happened.
    pub drop_after_next: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            fail_next: 0,
            hang_next: 0,
            // Longer than the adapter's default 10 s timeout, so that a hang set without a
            // duration is seen by the caller as a timeout.
            hang_ms: fake_support::faults::DEFAULT_HANG_MS,
            drop_after_next: 0,
        }
    }
}

/// A webhook event the fake made, and what became of its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRecord {
    /// `mevt_<32 hex>`.
    pub id: String,
    /// `payment.authorized`, `payment.failed`, `payment.voided` or `payment.captured`.
    pub event_type: String,
    /// The payment the event is about.
    pub payment_id: String,
    /// Where it is sent.
    pub url: String,
    /// The exact body sent.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Where the delivery stands.
    pub state: DeliveryState,
}

/// Test triggers for an approval, as on the hosted page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApproveOptions {
    /// The card number; spaces and dashes are ignored. `None` means [`CARD_APPROVE`].
    pub card: Option<String>,
    /// Authorize this amount (minor units) instead of the payment's amount, to provoke an
    /// integrity mismatch.
    pub amount_override: Option<i64>,
    /// Change the state but send no webhook, as if it were lost (reconciliation tests).
    pub skip_webhook: bool,
}

/// Why an approval or decline was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FakeError {
    /// No payment has this id.
    #[error("no payment {0}")]
    NotFound(String),
    /// Only a pending payment can be approved or declined.
    #[error("payment {id} is {status}, not pending")]
    NotPending {
        /// The payment.
        id: String,
        /// Its status.
        status: &'static str,
    },
    /// The card number is none of the test cards.
    #[error("{0:?} is not a test card: use {CARD_APPROVE} or {CARD_DECLINE}")]
    UnknownCard(String),
    /// The test options are not understood (an unknown field, a bad `amount_override`).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

impl FakeError {
    /// The HTTP status and the error code for the API.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            FakeError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            FakeError::NotPending { .. } => (StatusCode::CONFLICT, "invalid_state"),
            FakeError::UnknownCard(_) => (StatusCode::BAD_REQUEST, "incorrect_number"),
            FakeError::InvalidOptions(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        }
    }
}

/// The fake PSP. Cloning is cheap and every clone shares the same state.
#[derive(Clone)]
pub struct FakeMockPsp {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FakeMockPsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMockPsp")
            .field("public_base", &self.inner.config.public_base)
            .finish_non_exhaustive()
    }
}

type Inner = FakeCore<FakeConfig, State>;

/// Everything the fake holds. One lock guards it all, and no handler awaits while holding
/// it, so every API call is atomic: two calls with the same idempotency key can never
/// both act.
#[derive(Default)]
struct State {
    payments: Records<Entry>,
    /// Saved answers by idempotency key, with a fingerprint of the request each answered.
    idempotency: Replays<String, String, (StatusCode, serde_json::Value)>,
    faults: Faults,
    events: Vec<WebhookRecord>,
}

struct Entry {
    payment: Payment,
    webhook_url: String,
    captures: Vec<Capture>,
    capture_calls: Vec<CaptureCall>,
    amount_updates: Vec<AmountUpdate>,
}

impl State {
    fn entry(&self, id: &str) -> Option<&Entry> {
        self.payments.get(id)
    }

    fn entry_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.payments.get_mut(id)
    }

    /// Records a webhook event for the payment and returns what the delivery task needs.
    /// The body is rendered once here, so every attempt sends the same bytes.
    fn new_event(&mut self, event_type: &str, payment_id: &str) -> Option<Delivery> {
        let entry = self.entry(payment_id)?;
        let id = new_id("mevt");
        let body = serde_json::json!({
            "id": id,
            "object": "event",
            "type": event_type,
            "created": psp_core::signature::unix_now(),
            "data": { "object": entry.payment },
        });
        let payload = body.to_string();
        let url = entry.webhook_url.clone();
        self.events.push(WebhookRecord {
            id: id.clone(),
            event_type: event_type.to_string(),
            payment_id: payment_id.to_string(),
            url: url.clone(),
            payload: payload.clone(),
            attempts: 0,
            state: DeliveryState::Pending,
        });
        Some(Delivery {
            event_id: id,
            url,
            body: payload.into(),
        })
    }
}

/// A fresh object id: the prefix and 32 lower-case hex digits.
fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A card number without the spaces and dashes people type.
fn normalize_card(card: &str) -> String {
    card.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// What a customer's choice does to a payment.
enum Choice {
    Approve { amount_override: Option<i64> },
    Fail { reason: &'static str },
}

impl FakeMockPsp {
    /// A fake with no payments.
    pub fn new(config: FakeConfig) -> Self {
        let config = FakeConfig {
            public_base: base_url(&config.public_base),
            ..config
        };
        Self {
            inner: Arc::new(FakeCore::new(config, State::default())),
        }
    }

    /// The routes, relative to wherever they are mounted (`nest("/mock-psp", …)` works).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .nest("/v1", api::router(self.clone()))
            .merge(hosted::router(self.clone()))
    }

    /// The configured public base URL, without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.inner.config.public_base
    }

    /// Every payment, in creation order.
    pub fn payments(&self) -> Vec<Payment> {
        let st = self.inner.state.lock();
        st.payments.iter().map(|e| e.payment.clone()).collect()
    }

    /// One payment.
    pub fn payment(&self, id: &str) -> Option<Payment> {
        self.inner.state.lock().entry(id).map(|e| e.payment.clone())
    }

    /// The captures of a payment, oldest first (empty for an unknown id).
    pub fn captures_of(&self, id: &str) -> Vec<Capture> {
        let st = self.inner.state.lock();
        st.entry(id).map(|e| e.captures.clone()).unwrap_or_default()
    }

    /// Every call to the capture endpoint of a payment, with its idempotency key.
    pub fn capture_calls_of(&self, id: &str) -> Vec<CaptureCall> {
        let st = self.inner.state.lock();
        st.entry(id)
            .map(|e| e.capture_calls.clone())
            .unwrap_or_default()
    }

    /// Every amount change asked of a payment, oldest first.
    pub fn amount_updates_of(&self, id: &str) -> Vec<AmountUpdate> {
        let st = self.inner.state.lock();
        st.entry(id)
            .map(|e| e.amount_updates.clone())
            .unwrap_or_default()
    }

    /// Every webhook event made so far, oldest first, with its delivery state.
    pub fn events(&self) -> Vec<WebhookRecord> {
        self.inner.state.lock().events.clone()
    }

    /// The faults still to be injected.
    pub fn faults(&self) -> Faults {
        self.inner.state.lock().faults
    }

    /// Replaces the faults to inject.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.state.lock().faults = faults;
    }

    /// Approves a pending payment as the hosted page does, with the same test triggers.
    /// The webhook (unless skipped) is sent by a background task, so it is only sent when
    /// this is called inside a Tokio runtime.
    pub fn approve(&self, id: &str, options: ApproveOptions) -> Result<Payment, FakeError> {
        let card = normalize_card(options.card.as_deref().unwrap_or(CARD_APPROVE));
        let choice = match card.as_str() {
            CARD_APPROVE => Choice::Approve {
                amount_override: options.amount_override,
            },
            CARD_DECLINE => Choice::Fail {
                reason: "card_declined",
            },
            CARD_INSUFFICIENT_FUNDS => Choice::Fail {
                reason: "insufficient_funds",
            },
            _ => return Err(FakeError::UnknownCard(card)),
        };
        if let Some(amount) = options.amount_override {
            if amount <= 0 {
                return Err(FakeError::InvalidOptions(format!(
                    "amount_override must be a positive integer, got {amount}"
                )));
            }
        }
        self.choose(id, choice, options.skip_webhook)
    }

    /// Declines a pending payment as the customer's Decline button does.
    pub fn decline(&self, id: &str, skip_webhook: bool) -> Result<Payment, FakeError> {
        self.choose(
            id,
            Choice::Fail {
                reason: "declined_by_customer",
            },
            skip_webhook,
        )
    }

    fn choose(&self, id: &str, choice: Choice, skip_webhook: bool) -> Result<Payment, FakeError> {
        let (payment, delivery) = {
            let mut st = self.inner.state.lock();
            let entry = st
                .entry_mut(id)
                .ok_or_else(|| FakeError::NotFound(id.to_string()))?;
            let p = &mut entry.payment;
            if p.status != PaymentStatus::Pending {
                return Err(FakeError::NotPending {
                    id: id.to_string(),
                    status: p.status.as_str(),
                });
            }
            let event_type = match choice {
                Choice::Approve { amount_override } => {
                    p.status = PaymentStatus::Authorized;
                    p.authorized_amount = amount_override.unwrap_or(p.amount);
                    "payment.authorized"
                }
                Choice::Fail { reason } => {
                    p.status = PaymentStatus::Failed;
                    p.failure_reason = Some(reason.to_string());
                    "payment.failed"
                }
            };
            let payment = p.clone();
            let delivery = if skip_webhook {
                None
            } else {
                st.new_event(event_type, id)
            };
            (payment, delivery)
        };
        if let Some(delivery) = delivery {
            delivery::spawn(self.inner.clone(), delivery);
        }
        Ok(payment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_32_hex_digits() {
        let id = new_id("mpay");
        let hex = id.strip_prefix("mpay_").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn card_numbers_ignore_spaces_and_dashes() {
        assert_eq!(normalize_card("4242 4242-4242 4242"), CARD_APPROVE);
        assert_eq!(normalize_card(" 4000 0000 0000 0002 "), CARD_DECLINE);
    }

    #[test]
    fn a_payment_serialises_with_its_object_tag() {
        let p = Payment {
            id: "mpay_1".into(),
            status: PaymentStatus::Pending,
            amount: 100,
            currency: "SEK".into(),
            cart_id: "c".into(),
            return_url: None,
            hosted_url: "http://x/pay/mpay_1".into(),
            authorized_amount: 0,
            captured_amount: 0,
            failure_reason: None,
            created: 1,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["object"], "payment");
        assert_eq!(v["status"], "pending");
        assert!(v["failure_reason"].is_null());
        assert_eq!(serde_json::from_value::<Payment>(v).unwrap(), p);
    }

    #[test]
    fn faults_default_to_none_with_a_hang_longer_than_the_adapter_timeout() {
        let f: Faults = serde_json::from_str(r#"{"fail_next":1}"#).unwrap();
        assert_eq!(f.fail_next, 1);
        assert_eq!(f.hang_next, 0);
        assert!(f.hang_ms > 10_000);
        assert!(serde_json::from_str::<Faults>(r#"{"fail_nxt":1}"#).is_err());
    }

    #[test]
    fn an_approval_outside_a_runtime_of_an_unknown_payment_is_not_found() {
        let fake = FakeMockPsp::new(FakeConfig {
            api_key: "k".into(),
            webhook_secret: Secret::new("s"),
            public_base: "http://127.0.0.1:1/mock-psp/".into(),
        });
        assert_eq!(fake.public_base(), "http://127.0.0.1:1/mock-psp");
        assert_eq!(
            fake.approve("mpay_x", ApproveOptions::default())
                .unwrap_err(),
            FakeError::NotFound("mpay_x".into())
        );
        assert!(matches!(
            fake.approve(
                "mpay_x",
                ApproveOptions {
                    card: Some("1234".into()),
                    ..Default::default()
                }
            ),
            Err(FakeError::UnknownCard(_))
        ));
    }

    #[test]
    fn an_approval_outside_a_runtime_changes_the_state_and_records_the_webhook_as_given_up() {
        let fake = FakeMockPsp::new(FakeConfig {
            api_key: "k".into(),
            webhook_secret: Secret::new("s"),
            public_base: "http://127.0.0.1:1/mock-psp".into(),
        });
        {
            let mut st = fake.inner.state.lock();
            st.payments.insert(
                "mpay_1".into(),
                Entry {
                    payment: Payment {
                        id: "mpay_1".into(),
                        status: PaymentStatus::Pending,
                        amount: 100,
                        currency: "SEK".into(),
                        cart_id: "c".into(),
                        return_url: None,
                        hosted_url: "http://127.0.0.1:1/mock-psp/pay/mpay_1".into(),
                        authorized_amount: 0,
                        captured_amount: 0,
                        failure_reason: None,
                        created: 1,
                    },
                    webhook_url: "http://127.0.0.1:1/hook".into(),
                    captures: Vec::new(),
                    capture_calls: Vec::new(),
                    amount_updates: Vec::new(),
                },
            );
        }
        let p = fake.approve("mpay_1", ApproveOptions::default()).unwrap();
        assert_eq!(p.status, PaymentStatus::Authorized);
        let events = fake.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "payment.authorized");
        assert_eq!(events[0].state, DeliveryState::GaveUp);
        let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
        assert_eq!(payload["data"]["object"]["status"], "authorized");
    }
}
