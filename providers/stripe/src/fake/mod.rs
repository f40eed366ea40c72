//! A fake Stripe: an axum [`Router`](axum::Router) with in-memory state that speaks
//! Stripe's wire format, for tests and for the embedded default (so the demo can pay "with
//! Stripe" offline).
//!
//! Wire format: form-encoded requests with bracket nesting, JSON answers, Stripe's
//! `{"error":{…}}` errors and status codes, `Authorization: Bearer <secret key>`, an
//! optional `Stripe-Version`, and `Request-Id` on every answer.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/payment_intents` | create (`requires_payment_method`; `confirm=true` confirms at once) |
//! | `GET /v1/payment_intents` | list, newest first (`limit`, `created`, `starting_after`, `ending_before`) |
//! | `GET /v1/payment_intents/search` | search: `metadata['k']:'v'`, `status:'…'`, `currency:'…'` joined by `AND` |
//! | `GET /v1/payment_intents/{id}` | retrieve |
//! | `POST /v1/payment_intents/{id}` | update (amount and currency only while unconfirmed) |
//! | `POST /v1/payment_intents/{id}/confirm` | confirm with a test payment method |
//! | `POST /v1/payment_intents/{id}/capture` | capture (`amount_to_capture` ≤ `amount_capturable`), once |
//! | `POST /v1/payment_intents/{id}/cancel` | cancel (`cancellation_reason`) |
//! | `POST`/`GET /v1/webhook_endpoints`, `GET`/`DELETE /v1/webhook_endpoints/{id}` | account webhook endpoints |
//! | `GET /v1/events`, `GET /v1/events/{id}` | the events made so far |
//! | `GET /pay/{id}` | a hosted test page with Pay, Decline and 3-D Secure buttons (stands in for Stripe.js) |
//! | `PUT`/`GET /v1/_test/faults` | failures to inject into the next API calls |
//! | `GET /v1/_test/requests` | every API call: method, path, idempotency key, status, replayed |
//! | `GET /v1/_test/payment_intents` | every PaymentIntent with its captures |
//! | `POST /v1/_test/payment_intents/{id}/confirm` | confirm as the customer would (JSON: `payment_method`, `webhook`) |
//! | `POST /v1/_test/payment_intents/{id}/authenticate` | finish or fail 3-D Secure (JSON: `outcome`) |
//! | `GET /v1/_test/deliveries` | every webhook delivery and its state |
//! | `POST /v1/_test/events/{id}/redeliver` | send an event again, newly signed |
//!
//! Test payment methods, as in Stripe's test mode: `pm_card_visa` and `pm_card_mastercard`
//! authorize; `pm_card_chargeDeclined` is declined (`generic_decline`),
//! `pm_card_chargeDeclinedInsufficientFunds` with `insufficient_funds`;
//! `pm_card_authenticationRequired` (and `pm_card_threeDSecure2Required`) stop in
//! `requires_action` until authenticated.
//!
//! Idempotency as at Stripe: the first answer to a POST with an `Idempotency-Key` is saved
//! once the request passed validation, errors and 500s included, and replayed for that key
//! with `Idempotent-Replayed: true`. The same key with other parameters, or on another
//! endpoint, is an `idempotency_error`. Requests refused by validation are not saved.
//!
//! Webhooks: every event goes to the endpoints registered with `POST /v1/webhook_endpoints`
//! whose `enabled_events` match, and to the gateway's URL when the fake was built with one
//! (the embedded default). Each delivery is signed in `Stripe-Signature` with the fake's
//! signing secret (the same for every endpoint, so a gateway can be configured before its
//! endpoint is registered), carries a test-mode `v0` as Stripe's test mode does, and is
//! retried a few times.
//!
//! Where the fake is knowingly simpler than Stripe: one account, no customers, charges or
//! refunds as objects of their own, no minimum charge amounts, search is immediately
//! consistent, and only the parameters listed in `api.rs` are known (any other is refused
//! as unknown, which is at least as strict as Stripe).

mod api;
mod delivery;
mod error;
mod form;
mod hosted;

use std::collections::BTreeMap;
use std::sync::Arc;

use fake_support::replay::Replays;
use fake_support::{base_url, FakeCore, Records};
use psp_core::signature::unix_now;
use psp_core::Secret;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use self::delivery::Delivery;
use self::error::ApiError;
use crate::{DEFAULT_API_VERSION, ID};
pub use fake_support::delivery::DeliveryState;

/// The fake's secret key in the stand-alone sandbox and the embedded default. Public on
/// purpose: no real money goes through it.
pub const SANDBOX_SECRET_KEY: &str = "sk_test_sandbox";
/// The fake's publishable key in the sandbox.
pub const SANDBOX_PUBLISHABLE_KEY: &str = "pk_test_sandbox";
/// The secret the sandbox's fake signs webhooks with.
pub const SANDBOX_WEBHOOK_SECRET: &str = "whsec_stripe_sandbox";

/// The `[providers.stripe]` table of the embedded default: the sandbox keys, which match
/// the fake's defaults. The gateway adds `api_base` (its own `/fakes/stripe`).
fn sandbox_config() -> Value {
    json!({
        "secret_key": SANDBOX_SECRET_KEY,
        "publishable_key": SANDBOX_PUBLISHABLE_KEY,
        "webhook_secrets": [SANDBOX_WEBHOOK_SECRET],
        "capture_method": "manual",
    })
}

/// Builds the fake for the gateway to mount at [`crate::FAKE_PATH`]. With a provider table
/// it shares the provider's keys and signs with its first webhook secret; with `{}` (the
/// stand-alone sandbox) it uses the sandbox keys. It sends every event to
/// `ctx.webhook_url` when given, and to the endpoints registered through its API.
fn build_fake(ctx: &fake_support::FakeContext<'_>) -> axum::Router {
    let table = ctx.config;
    let text = |key: &str| table.get(key).and_then(Value::as_str).map(str::to_string);
    let first_secret = match table.get("webhook_secrets") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => items.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    FakeStripe::new(FakeStripeConfig {
        secret_key: text("secret_key").unwrap_or_else(|| SANDBOX_SECRET_KEY.into()),
        publishable_key: text("publishable_key").unwrap_or_else(|| SANDBOX_PUBLISHABLE_KEY.into()),
        webhook_secret: Secret::new(first_secret.unwrap_or_else(|| SANDBOX_WEBHOOK_SECRET.into())),
        public_base: ctx.public_base.trim_end_matches('/').to_string(),
        webhook_url: ctx.webhook_url.map(str::to_string),
        api_version: text("api_version").unwrap_or_else(|| DEFAULT_API_VERSION.into()),
    })
    .router()
}

psp_core::inventory::submit! {
    fake_support::FakeRegistration {
        id: ID,
        build: build_fake,
        sandbox_config,
        demo: Some(include_str!("demo.js")),
    }
}

/// Test payment methods that authorize.
pub const PM_VISA: &str = "pm_card_visa";
/// A test payment method declined with `generic_decline`.
pub const PM_DECLINED: &str = "pm_card_chargeDeclined";
/// A test payment method declined with `insufficient_funds`.
pub const PM_INSUFFICIENT_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";
/// A test payment method that needs 3-D Secure (`requires_action`).
pub const PM_AUTHENTICATION_REQUIRED: &str = "pm_card_authenticationRequired";

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct FakeStripeConfig {
    /// The key expected in `Authorization: Bearer …` (`sk_…`).
    pub secret_key: String,
    /// The key Stripe.js would use (`pk_…`); it may only retrieve and confirm a
    /// PaymentIntent together with its client secret.
    pub publishable_key: String,
    /// The secret every webhook is signed with.
    pub webhook_secret: Secret,
    /// The absolute URL where the router is reachable (hosted pages link there).
    pub public_base: String,
    /// A URL that receives every event, besides registered endpoints (the gateway's own
    /// `/webhooks/stripe` in the embedded default).
    pub webhook_url: Option<String>,
    /// The account's default API version, written into events.
    pub api_version: String,
}

/// A PaymentIntent's status, Stripe's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Created, or declined and waiting for another payment method.
    RequiresPaymentMethod,
    /// A payment method is attached; confirm next.
    RequiresConfirmation,
    /// The customer must authenticate (3-D Secure).
    RequiresAction,
    /// Being processed.
    Processing,
    /// Authorized under manual capture.
    RequiresCapture,
    /// Captured (terminal).
    Succeeded,
    /// Cancelled (terminal).
    Canceled,
}

impl IntentStatus {
    /// Stripe's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::RequiresPaymentMethod => "requires_payment_method",
            IntentStatus::RequiresConfirmation => "requires_confirmation",
            IntentStatus::RequiresAction => "requires_action",
            IntentStatus::Processing => "processing",
            IntentStatus::RequiresCapture => "requires_capture",
            IntentStatus::Succeeded => "succeeded",
            IntentStatus::Canceled => "canceled",
        }
    }

    /// Whether the amount may still change and the PaymentIntent may be confirmed.
    pub fn is_unconfirmed(self) -> bool {
        matches!(
            self,
            IntentStatus::RequiresPaymentMethod
                | IntentStatus::RequiresConfirmation
                | IntentStatus::RequiresAction
        )
    }
}

/// A PaymentIntent as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntent {
    /// `pi_…`.
    pub id: String,
    /// In Stripe's minor unit.
    pub amount: i64,
    /// What can be captured now.
    pub amount_capturable: i64,
    /// What was captured.
    pub amount_received: i64,
    /// `automatic_payment_methods[enabled]`, when given.
    pub automatic_payment_methods: Option<bool>,
    /// Unix seconds, once cancelled.
    pub canceled_at: Option<i64>,
    /// Why it was cancelled.
    pub cancellation_reason: Option<String>,
    /// `automatic`, `automatic_async` or `manual`.
    pub capture_method: String,
    /// `pi_…_secret_…`.
    pub client_secret: String,
    /// Unix seconds.
    pub created: i64,
    /// Lower case.
    pub currency: String,
    /// Free text.
    pub description: Option<String>,
    /// Why the last confirmation failed.
    pub last_payment_error: Option<Value>,
    /// The charge of the last confirmation (`ch_…`).
    pub latest_charge: Option<String>,
    /// Key-value pairs.
    pub metadata: BTreeMap<String, String>,
    /// What the customer must do next (3-D Secure).
    pub next_action: Option<Value>,
    /// The attached payment method.
    pub payment_method: Option<String>,
    /// Always `["card"]` here.
    pub payment_method_types: Vec<String>,
    /// Where it is in its life.
    pub status: IntentStatus,
    /// Where a redirect-based confirmation returns the customer (not part of the object).
    pub return_url: Option<String>,
}

impl PaymentIntent {
    /// The object as Stripe's API returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_details": { "tip": {} },
            "amount_received": self.amount_received,
            "application": null,
            "application_fee_amount": null,
            "automatic_payment_methods": self.automatic_payment_methods.map(|enabled| json!({ "enabled": enabled })),
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": self.capture_method,
            "client_secret": self.client_secret,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": null,
            "description": self.description,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": false,
            "metadata": self.metadata,
            "next_action": self.next_action,
            "on_behalf_of": null,
            "payment_method": self.payment_method,
            "payment_method_options": {},
            "payment_method_types": self.payment_method_types,
            "processing": null,
            "receipt_email": null,
            "review": null,
            "setup_future_usage": null,
            "shipping": null,
            "statement_descriptor": null,
            "statement_descriptor_suffix": null,
            "status": self.status.as_str(),
            "transfer_data": null,
            "transfer_group": null,
        })
    }
}

/// A capture the fake performed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureRecord {
    /// The PaymentIntent.
    pub payment_intent: String,
    /// The charge captured.
    pub charge: Option<String>,
    /// In Stripe's minor unit.
    pub amount: i64,
    /// The key of the request that captured.
    pub idempotency_key: Option<String>,
}

/// One API call that reached the fake (test controls excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// The path below `/v1`, e.g. `/v1/payment_intents`.
    pub path: String,
    /// The `Idempotency-Key` sent, if any.
    pub idempotency_key: Option<String>,
    /// The status answered (0 when the connection was broken instead).
    pub status: u16,
    /// Whether the answer was replayed from an earlier request with the same key.
    pub replayed: bool,
    /// The injected fault, if any.
    pub fault: Option<String>,
}

/// Failures to inject into the next API calls (`/v1/*` except `/v1/_test/*`), consumed in
/// this order: `hang_next`, `reject_next`, `error_next`, `drop_after_next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The next n calls wait `hang_ms`, then break the connection without acting.
    pub hang_next: u32,
    /// How long a hanging call waits, in milliseconds.
    pub hang_ms: u64,
    /// The next n calls are answered `reject_status` before reaching Stripe's logic:
    /// nothing happens and nothing is saved under the key (a 503 from the edge, a 429, a
    /// 409 for a key in use).
    pub reject_next: u32,
    /// The status of rejected calls.
    pub reject_status: u16,
    /// The next n POSTs begin executing and fail with a 500 `api_error`, which is saved
    /// under their idempotency key and replayed, as Stripe does.
    pub error_next: u32,
    /// Whether those failing POSTs took effect before the error.
    pub error_applied: bool,
    /// The next n calls act, and then break the connection instead of answering (the
    /// answer is saved under the key).
    pub drop_after_next: u32,
    /// `Stripe-Should-Retry` on injected error answers, when set.
    pub should_retry: Option<bool>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            hang_next: 0,
            hang_ms: fake_support::faults::DEFAULT_HANG_MS,
            reject_next: 0,
            reject_status: 503,
            error_next: 0,
            error_applied: false,
            drop_after_next: 0,
            should_retry: None,
        }
    }
}

/// An event the fake made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    /// `evt_…`.
    pub id: String,
    /// e.g. `payment_intent.succeeded`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The PaymentIntent it is about.
    pub payment_intent: Option<String>,
    /// The exact body sent.
    pub payload: String,
}

/// One event on its way to one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Where it goes.
    pub url: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The last HTTP status received, if any.
    pub last_status: Option<u16>,
    /// Where it stands.
    pub state: DeliveryState,
}

/// A registered webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    id: String,
    url: String,
    enabled_events: Vec<String>,
    api_version: Option<String>,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    created: i64,
}

impl Endpoint {
    fn wants(&self, event_type: &str) -> bool {
        self.enabled_events
            .iter()
            .any(|e| e == "*" || e == event_type)
    }

    fn to_json(&self, secret: Option<&str>) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": null,
            "created": self.created,
            "description": self.description,
            "enabled_events": self.enabled_events,
            "livemode": false,
            "metadata": self.metadata,
            "status": "enabled",
            "url": self.url,
        });
        // Stripe shows the signing secret only in the answer to the create call.
        if let Some(secret) = secret {
            v["secret"] = json!(secret);
        }
        v
    }
}

/// Why a test control refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FakeError {
    /// No PaymentIntent has this id.
    #[error("no PaymentIntent {0}")]
    NotFound(String),
    /// Stripe refused the confirmation or authentication (declines included).
    #[error("{status}: {message}")]
    Refused {
        /// The HTTP status Stripe would answer.
        status: u16,
        /// Stripe's message.
        message: String,
    },
}

/// The fake Stripe. Cloning is cheap and every clone shares the same state.
#[derive(Clone)]
pub struct FakeStripe {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FakeStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeStripe")
            .field("public_base", &self.inner.config.public_base)
            .finish_non_exhaustive()
    }
}

type Inner = FakeCore<FakeStripeConfig, State>;

/// Everything the fake holds. One lock guards it all and no handler awaits while holding
/// it, so every API call is atomic: two calls with one idempotency key never both act.
#[derive(Default)]
struct State {
    intents: Records<Entry>,
    /// Saved answers by idempotency key, with the endpoint and parameters each answered.
    idempotency: Replays<String, Fingerprint, Saved>,
    faults: Faults,
    events: Vec<EventRecord>,
    deliveries: Vec<DeliveryRecord>,
    endpoints: Vec<Endpoint>,
    requests: Vec<RequestRecord>,
}

struct Entry {
    intent: PaymentIntent,
    captures: Vec<CaptureRecord>,
}

/// What a request under an idempotency key is compared by: the endpoint it called and its
/// parameters, as sent.
#[derive(PartialEq)]
struct Fingerprint {
    endpoint: String,
    params: String,
}

/// A saved answer for an idempotency key.
#[derive(Clone)]
struct Saved {
    status: u16,
    body: Value,
}

/// What one operation did: its answer and the events it made.
struct Outcome {
    status: u16,
    body: Value,
    events: Vec<&'static str>,
    intent: Option<String>,
}

impl Outcome {
    fn ok(intent: &PaymentIntent, events: Vec<&'static str>) -> Self {
        Self {
            status: 200,
            body: intent.to_json(),
            events,
            intent: Some(intent.id.clone()),
        }
    }

    fn err(error: ApiError) -> Self {
        Self {
            status: error.status.as_u16(),
            body: error.body(),
            events: Vec::new(),
            intent: None,
        }
    }

    /// An error answer that still made events (a decline sends payment_failed).
    fn err_with_events(error: ApiError, intent: &str, events: Vec<&'static str>) -> Self {
        Self {
            status: error.status.as_u16(),
            body: error.body(),
            events,
            intent: Some(intent.to_string()),
        }
    }
}

/// Random alphanumerics, as in Stripe's ids.
fn random(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random(24))
}

/// What a test payment method does.
enum CardOutcome {
    Authorize,
    Decline(&'static str),
    Authenticate,
}

fn card_outcome(pm: &str) -> Option<CardOutcome> {
    Some(match pm {
        "pm_card_visa" | "pm_card_mastercard" | "pm_card_visa_debit" | "pm_card_amex" => {
            CardOutcome::Authorize
        }
        PM_DECLINED => CardOutcome::Decline("generic_decline"),
        PM_INSUFFICIENT_FUNDS => CardOutcome::Decline("insufficient_funds"),
        PM_AUTHENTICATION_REQUIRED | "pm_card_threeDSecure2Required" => CardOutcome::Authenticate,
        _ => return None,
    })
}

impl State {
    fn entry(&self, id: &str) -> Option<&Entry> {
        self.intents.get(id)
    }

    fn entry_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.intents.get_mut(id)
    }

    fn insert(&mut self, intent: PaymentIntent) {
        self.intents.insert(
            intent.id.clone(),
            Entry {
                intent,
                captures: Vec::new(),
            },
        );
    }

    /// Moves a PaymentIntent forward with a payment method, as Stripe's confirmation does.
    fn confirm(&mut self, id: &str, pm: Option<String>, public_base: &str) -> Outcome {
        let Some(entry) = self.entry_mut(id) else {
            return Outcome::err(ApiError::resource_missing("payment_intent", id, "intent"));
        };
        let pi = &mut entry.intent;
        if !pi.status.is_unconfirmed() {
            return Outcome::err(
                ApiError::invalid(format!(
                    "You cannot confirm this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_payment_method, requires_confirmation, requires_action.",
                    pi.status.as_str()
                ))
                .code("payment_intent_unexpected_state")
                .with_intent(pi.to_json()),
            );
        }
        let Some(pm) = pm.or_else(|| pi.payment_method.clone()) else {
            return Outcome::err(
                ApiError::invalid("You cannot confirm this PaymentIntent because it's missing a payment method. Specify a payment method with the payment_method parameter.")
                    .code("payment_intent_unexpected_state")
                    .param("payment_method")
                    .with_intent(pi.to_json()),
            );
        };
        let Some(outcome) = card_outcome(&pm) else {
            return Outcome::err(ApiError::resource_missing(
                "PaymentMethod",
                &pm,
                "payment_method",
            ));
        };
        pi.payment_method = Some(pm.clone());
        pi.next_action = None;
        match outcome {
            CardOutcome::Authorize => {
                let events = authorize(pi);
                Outcome::ok(pi, events)
            }
            CardOutcome::Decline(decline_code) => {
                let charge = new_id("ch");
                // Stripe detaches a declined payment method; the customer picks another.
                pi.payment_method = None;
                pi.status = IntentStatus::RequiresPaymentMethod;
                pi.latest_charge = Some(charge.clone());
                pi.last_payment_error = Some(json!({
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline_code,
                    "message": "Your card was declined.",
                    "charge": charge,
                    "payment_method": { "id": pm, "object": "payment_method", "type": "card" },
                }));
                let mut err = ApiError::new(
                    axum::http::StatusCode::PAYMENT_REQUIRED,
                    "card_error",
                    "Your card was declined.",
                )
                .code("card_declined")
                .with_intent(pi.to_json());
                err.decline_code = Some(decline_code);
                Outcome::err_with_events(err, id, vec!["payment_intent.payment_failed"])
            }
            CardOutcome::Authenticate => {
                pi.status = IntentStatus::RequiresAction;
                pi.next_action = Some(json!({
                    "type": "redirect_to_url",
                    "redirect_to_url": {
                        "url": format!("{public_base}/pay/{}", pi.id),
                        "return_url": pi.return_url,
                    }
                }));
                Outcome::ok(pi, vec!["payment_intent.requires_action"])
            }
        }
    }

    /// Finishes (or fails) the customer's 3-D Secure step.
    fn authenticate(&mut self, id: &str, succeed: bool) -> Outcome {
        let Some(entry) = self.entry_mut(id) else {
            return Outcome::err(ApiError::resource_missing("payment_intent", id, "intent"));
        };
        let pi = &mut entry.intent;
        if pi.status != IntentStatus::RequiresAction {
            return Outcome::err(
                ApiError::invalid(format!(
                    "This PaymentIntent has a status of {} and needs no authentication.",
                    pi.status.as_str()
                ))
                .code("payment_intent_unexpected_state"),
            );
        }
        pi.next_action = None;
        if succeed {
            let events = authorize(pi);
            Outcome::ok(pi, events)
        } else {
            pi.status = IntentStatus::RequiresPaymentMethod;
            pi.payment_method = None;
            pi.last_payment_error = Some(json!({
                "type": "invalid_request_error",
                "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication.",
            }));
            Outcome::ok(pi, vec!["payment_intent.payment_failed"])
        }
    }

    /// Records an event about a PaymentIntent and returns what the delivery tasks need.
    fn emit(
        &mut self,
        event_type: &'static str,
        intent_id: &str,
        request: Value,
        config: &FakeStripeConfig,
        deliver: bool,
    ) -> Vec<Delivery> {
        let Some(entry) = self.entry(intent_id) else {
            return Vec::new();
        };
        let mut targets: Vec<String> = config.webhook_url.iter().cloned().collect();
        targets.extend(
            self.endpoints
                .iter()
                .filter(|e| e.wants(event_type))
                .map(|e| e.url.clone()),
        );
        if !deliver {
            targets.clear();
        }
        let id = new_id("evt");
        // The body is rendered once, so every attempt and every endpoint gets the same bytes.
        let payload = json!({
            "id": id,
            "object": "event",
            "api_version": config.api_version,
            "created": unix_now(),
            "data": { "object": entry.intent.to_json() },
            "livemode": false,
            "pending_webhooks": targets.len(),
            "request": request,
            "type": event_type,
        })
        .to_string();
        self.events.push(EventRecord {
            id: id.clone(),
            event_type: event_type.to_string(),
            payment_intent: Some(intent_id.to_string()),
            payload: payload.clone(),
        });
        self.deliver(&id, event_type, &payload, targets)
    }

    fn deliver(
        &mut self,
        event_id: &str,
        event_type: &str,
        payload: &str,
        targets: Vec<String>,
    ) -> Vec<Delivery> {
        targets
            .into_iter()
            .map(|url| {
                self.deliveries.push(DeliveryRecord {
                    event_id: event_id.to_string(),
                    event_type: event_type.to_string(),
                    url: url.clone(),
                    attempts: 0,
                    last_status: None,
                    state: DeliveryState::Pending,
                });
                Delivery {
                    index: self.deliveries.len() - 1,
                    url,
                    body: payload.to_string().into(),
                }
            })
            .collect()
    }
}

/// Authorizes (manual capture) or captures (automatic) a confirmed PaymentIntent.
fn authorize(pi: &mut PaymentIntent) -> Vec<&'static str> {
    pi.latest_charge = Some(new_id("ch"));
    pi.last_payment_error = None;
    if pi.capture_method == "manual" {
        pi.status = IntentStatus::RequiresCapture;
        pi.amount_capturable = pi.amount;
        vec!["payment_intent.amount_capturable_updated"]
    } else {
        pi.status = IntentStatus::Succeeded;
        pi.amount_received = pi.amount;
        vec!["payment_intent.succeeded"]
    }
}

impl FakeStripe {
    /// A fake with no PaymentIntents.
    pub fn new(config: FakeStripeConfig) -> Self {
        let config = FakeStripeConfig {
            public_base: base_url(&config.public_base),
            ..config
        };
        Self {
            inner: Arc::new(FakeCore::new(config, State::default())),
        }
    }

    /// The routes, relative to wherever they are mounted.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .nest("/v1", api::router(self.clone()))
            .merge(hosted::router(self.clone()))
    }

    /// The configured public base URL, without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.inner.config.public_base
    }

    /// Every PaymentIntent, in creation order.
    pub fn intents(&self) -> Vec<PaymentIntent> {
        let st = self.inner.state.lock();
        st.intents.iter().map(|e| e.intent.clone()).collect()
    }

    /// One PaymentIntent.
    pub fn intent(&self, id: &str) -> Option<PaymentIntent> {
        self.inner.state.lock().entry(id).map(|e| e.intent.clone())
    }

    /// The captures of a PaymentIntent.
    pub fn captures_of(&self, id: &str) -> Vec<CaptureRecord> {
        let st = self.inner.state.lock();
        st.entry(id).map(|e| e.captures.clone()).unwrap_or_default()
    }

    /// Every API call so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.state.lock().requests.clone()
    }

    /// Every event so far, oldest first.
    pub fn events(&self) -> Vec<EventRecord> {
        self.inner.state.lock().events.clone()
    }

    /// Every webhook delivery so far, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.inner.state.lock().deliveries.clone()
    }

    /// The faults still to be injected.
    pub fn faults(&self) -> Faults {
        self.inner.state.lock().faults
    }

    /// Replaces the faults to inject.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.state.lock().faults = faults;
    }

    /// Confirms a PaymentIntent with a test payment method, as the customer does through
    /// Stripe.js. With `deliver` false the events are made but not sent (a lost webhook).
    /// Sending needs a Tokio runtime.
    pub fn confirm(
        &self,
        id: &str,
        payment_method: &str,
        deliver: bool,
    ) -> Result<PaymentIntent, FakeError> {
        let public_base = self.public_base().to_string();
        self.customer_action(id, deliver, |st| {
            st.confirm(id, Some(payment_method.to_string()), &public_base)
        })
    }

    /// Finishes (`succeed`) or fails the 3-D Secure step of a PaymentIntent in
    /// `requires_action`.
    pub fn authenticate(
        &self,
        id: &str,
        succeed: bool,
        deliver: bool,
    ) -> Result<PaymentIntent, FakeError> {
        self.customer_action(id, deliver, |st| st.authenticate(id, succeed))
    }

    fn customer_action(
        &self,
        id: &str,
        deliver: bool,
        act: impl FnOnce(&mut State) -> Outcome,
    ) -> Result<PaymentIntent, FakeError> {
        let (outcome, intent) = self.act_as_customer(id, deliver, act)?;
        if outcome.status == 200 {
            Ok(intent)
        } else {
            Err(FakeError::Refused {
                status: outcome.status,
                message: outcome.body["error"]["message"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_string(),
            })
        }
    }

    /// Runs a customer's action (outside the API, so without idempotency or faults) and
    /// sends the events it made.
    fn act_as_customer(
        &self,
        id: &str,
        deliver: bool,
        act: impl FnOnce(&mut State) -> Outcome,
    ) -> Result<(Outcome, PaymentIntent), FakeError> {
        let (outcome, deliveries, intent) = {
            let mut st = self.inner.state.lock();
            if st.entry(id).is_none() {
                return Err(FakeError::NotFound(id.to_string()));
            }
            let outcome = act(&mut st);
            let request = json!({ "id": null, "idempotency_key": null });
            let mut deliveries = Vec::new();
            for event in &outcome.events {
                deliveries.extend(st.emit(event, id, request.clone(), &self.inner.config, deliver));
            }
            let intent = st.entry(id).map(|e| e.intent.clone());
            (outcome, deliveries, intent)
        };
        delivery::spawn_all(&self.inner, deliveries);
        let intent = intent.ok_or_else(|| FakeError::NotFound(id.to_string()))?;
        Ok((outcome, intent))
    }

    /// Sends an event again to every URL that should receive it now, newly signed.
    pub fn redeliver(&self, event_id: &str) -> Option<usize> {
        let deliveries = {
            let mut st = self.inner.state.lock();
            let event = st.events.iter().find(|e| e.id == event_id)?.clone();
            let mut targets: Vec<String> = self.inner.config.webhook_url.iter().cloned().collect();
            targets.extend(
                st.endpoints
                    .iter()
                    .filter(|e| e.wants(&event.event_type))
                    .map(|e| e.url.clone()),
            );
            st.deliver(&event.id, &event.event_type, &event.payload, targets)
        };
        let n = deliveries.len();
        delivery::spawn_all(&self.inner, deliveries);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CaptureMethod, StripeProvider};

    #[test]
    fn the_sandbox_config_is_a_valid_provider_table() {
        let mut table = sandbox_config();
        table["api_base"] = json!("http://127.0.0.1:1/fakes/stripe");
        let provider = StripeProvider::from_config(&table).unwrap();
        assert_eq!(provider.config().capture_method, CaptureMethod::Manual);
        assert_eq!(
            provider.config().publishable_key.as_deref(),
            Some(SANDBOX_PUBLISHABLE_KEY)
        );
    }

    #[test]
    fn stripe_and_its_fake_are_registered() {
        assert!(psp_core::Registry::compiled_in().unwrap().contains(&ID));
        assert!(fake_support::fakes().contains_key(ID));
    }

    fn fake() -> FakeStripe {
        FakeStripe::new(FakeStripeConfig {
            secret_key: "sk_test_x".into(),
            publishable_key: "pk_test_x".into(),
            webhook_secret: Secret::new("whsec_x"),
            public_base: "http://127.0.0.1:1/fakes/stripe/".into(),
            webhook_url: None,
            api_version: "2025-01-27.acacia".into(),
        })
    }

    fn seed(fake: &FakeStripe, capture_method: &str) -> String {
        let id = new_id("pi");
        let mut st = fake.inner.state.lock();
        st.insert(PaymentIntent {
            id: id.clone(),
            amount: 1000,
            amount_capturable: 0,
            amount_received: 0,
            automatic_payment_methods: Some(true),
            canceled_at: None,
            cancellation_reason: None,
            capture_method: capture_method.into(),
            client_secret: format!("{id}_secret_{}", random(25)),
            created: 1,
            currency: "sek".into(),
            description: None,
            last_payment_error: None,
            latest_charge: None,
            metadata: BTreeMap::new(),
            next_action: None,
            payment_method: None,
            payment_method_types: vec!["card".into()],
            status: IntentStatus::RequiresPaymentMethod,
            return_url: None,
        });
        id
    }

    #[test]
    fn ids_look_like_stripes() {
        let id = new_id("pi");
        assert_eq!(id.len(), 3 + 24);
        assert!(id[3..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn a_visa_card_authorizes_under_manual_capture_and_captures_under_automatic() {
        let f = fake();
        assert_eq!(f.public_base(), "http://127.0.0.1:1/fakes/stripe");
        let manual = seed(&f, "manual");
        let pi = f.confirm(&manual, PM_VISA, false).unwrap();
        assert_eq!(pi.status, IntentStatus::RequiresCapture);
        assert_eq!(pi.amount_capturable, 1000);
        let automatic = seed(&f, "automatic");
        let pi = f.confirm(&automatic, PM_VISA, false).unwrap();
        assert_eq!(pi.status, IntentStatus::Succeeded);
        assert_eq!(pi.amount_received, 1000);
        let types: Vec<String> = f.events().into_iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [
                "payment_intent.amount_capturable_updated",
                "payment_intent.succeeded"
            ]
        );
        assert!(
            f.deliveries().is_empty(),
            "nothing is sent when delivery is off"
        );
    }

    #[test]
    fn a_declined_card_leaves_the_intent_waiting_for_another_payment_method() {
        let f = fake();
        let id = seed(&f, "manual");
        let err = f.confirm(&id, PM_INSUFFICIENT_FUNDS, false).unwrap_err();
        assert!(
            matches!(err, FakeError::Refused { status: 402, .. }),
            "{err}"
        );
        let pi = f.intent(&id).unwrap();
        assert_eq!(pi.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(
            pi.last_payment_error.unwrap()["decline_code"],
            "insufficient_funds"
        );
        assert_eq!(f.events()[0].event_type, "payment_intent.payment_failed");
        // The customer may try again with another card.
        assert_eq!(
            f.confirm(&id, PM_VISA, false).unwrap().status,
            IntentStatus::RequiresCapture
        );
    }

    #[test]
    fn three_d_secure_stops_in_requires_action_until_authenticated() {
        let f = fake();
        let id = seed(&f, "manual");
        let pi = f.confirm(&id, PM_AUTHENTICATION_REQUIRED, false).unwrap();
        assert_eq!(pi.status, IntentStatus::RequiresAction);
        assert_eq!(pi.next_action.unwrap()["type"], "redirect_to_url");
        let pi = f.authenticate(&id, true, false).unwrap();
        assert_eq!(pi.status, IntentStatus::RequiresCapture);
        assert!(f.authenticate(&id, true, false).is_err());

        let failed = seed(&f, "manual");
        f.confirm(&failed, PM_AUTHENTICATION_REQUIRED, false)
            .unwrap();
        let pi = f.authenticate(&failed, false, false).unwrap();
        assert_eq!(pi.status, IntentStatus::RequiresPaymentMethod);
        assert!(pi.last_payment_error.is_some());
    }

    #[test]
    fn an_unknown_payment_method_or_intent_is_refused() {
        let f = fake();
        let id = seed(&f, "manual");
        assert!(matches!(
            f.confirm(&id, "pm_card_bogus", false),
            Err(FakeError::Refused { status: 404, .. })
        ));
        assert_eq!(
            f.confirm("pi_missing", PM_VISA, false).unwrap_err(),
            FakeError::NotFound("pi_missing".into())
        );
    }

    #[test]
    fn faults_default_to_none_and_refuse_unknown_fields() {
        let f: Faults = serde_json::from_str(r#"{"error_next":1}"#).unwrap();
        assert_eq!(f.error_next, 1);
        assert_eq!(f.reject_status, 503);
        assert!(f.hang_ms > 10_000);
        assert!(serde_json::from_str::<Faults>(r#"{"eror_next":1}"#).is_err());
    }
}
