//! The fake Kustom: the checkout and Order Management APIs with Kustom's status machine,
//! error shape and amount rules, a hosted page standing in for the checkout iframe, the
//! validation call before completion, and pushes repeated on Kustom's schedule until the
//! order is acknowledged.
//!
//! | route | what |
//! |---|---|
//! | `POST /checkout/v3/orders` | create (`201`, `Location`, `html_snippet`) |
//! | `GET /checkout/v3/orders/{id}` | read; `404` when unknown |
//! | `POST /checkout/v3/orders/{id}` | partial update while `checkout_incomplete`, else `403 READ_ONLY_ORDER` |
//! | `POST /checkout/v3/orders/{id}/abort` | the customer can no longer complete it |
//! | `GET /ordermanagement/v1/orders/{id}` | the order after completion (`404 NO_SUCH_ORDER` before) |
//! | `POST …/acknowledge` | `204`; stops the pushes |
//! | `POST …/captures`, `GET …/captures` | capture (`Klarna-Idempotency-Key` replays), list |
//! | `POST …/cancel` | release an uncaptured authorization |
//! | `POST …/refunds` | refund captured money |
//! | `GET /checkout/{id}` | the hosted page with "Complete purchase" (what the iframe shows) |
//! | `POST /checkout/{id}/complete` | the customer's click: validation, completion, redirect |
//! | `GET /_test/orders`, `GET /_test/orders/{id}` | everything the fake holds |
//! | `POST /_test/orders/{id}/complete` | the click, answered in JSON (`skip_validation`, `skip_push`, `fraud_status`) |
//! | `GET`/`PUT /_test/push-schedule` | the push schedule (`{"scale": 60000}` compresses Kustom's) |
//! | `GET /_test/requests` | how many API calls reached the fake, by route |
//! | `PUT /_test/faults` | `{"fail_next": n}`: the next n API calls answer 503 |
//!
//! Every route but the hosted page needs `Authorization: Basic <api_key>` (or classic
//! Basic with the configured username). Errors are Kustom's
//! `{"error_code","error_messages","correlation_id"}`.

mod api;
mod hosted;
mod push;
pub(crate) mod rules;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_support::replay::Replays;
use fake_support::{base_url, FakeCore, Records};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::provider::{ID, ORDER_ID_PLACEHOLDER};

/// The key of the fake in the stand-alone sandbox and the embedded default. Public on
/// purpose: no real money goes through it.
pub const SANDBOX_API_KEY: &str = "kco_test_api_sandbox";

/// Builds the fake for the gateway to mount at [`crate::FAKE_PATH`]: with the provider's
/// table it takes the provider's key (and username); with `{}` (the stand-alone sandbox)
/// the public [`SANDBOX_API_KEY`].
fn build_fake(ctx: &fake_support::FakeContext<'_>) -> axum::Router {
    let text = |key: &str| {
        ctx.config
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.trim().is_empty())
    };
    let mut config = FakeConfig::sandbox(ctx.public_base);
    if let Some(key) = text("api_key") {
        config.api_key = key;
    }
    config.username = text("username");
    FakeKustom::new(config).router()
}

fn sandbox_config() -> Value {
    json!({ "api_key": SANDBOX_API_KEY })
}

psp_core::inventory::submit! {
    fake_support::FakeRegistration {
        id: ID,
        build: build_fake,
        sandbox_config,
        demo: Some(include_str!("demo.js")),
    }
}

/// When Kustom pushes, measured from the purchase: a first push, repeats at offsets from
/// the first, then one every `every`, until `total` has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSchedule {
    /// The first push after completion.
    pub first_ms: u64,
    /// Repeats, as offsets from the first push.
    pub retry_ms: Vec<u64>,
    /// Then one push every this long.
    pub every_ms: u64,
    /// No pushes after this long from completion.
    pub total_ms: u64,
}

impl PushSchedule {
    /// Kustom's documented schedule: about 2 minutes after the purchase, then at 5, 15, 30
    /// and 60 minutes, then every 4 hours, for 48 hours in all.
    pub fn kustom() -> Self {
        const MIN: u64 = 60_000;
        Self {
            first_ms: 2 * MIN,
            retry_ms: vec![5 * MIN, 15 * MIN, 30 * MIN, 60 * MIN],
            every_ms: 240 * MIN,
            total_ms: 48 * 60 * MIN,
        }
    }

    /// Kustom's schedule with every span divided by `factor` (tests: 60 000 turns a minute
    /// into a millisecond).
    pub fn compressed(factor: u64) -> Self {
        let f = factor.max(1);
        let k = Self::kustom();
        Self {
            first_ms: k.first_ms / f,
            retry_ms: k.retry_ms.iter().map(|r| r / f).collect(),
            every_ms: (k.every_ms / f).max(1),
            total_ms: k.total_ms / f,
        }
    }

    /// When each push is due, from the purchase.
    pub fn offsets(&self) -> Vec<Duration> {
        let mut out = vec![self.first_ms];
        out.extend(self.retry_ms.iter().map(|r| self.first_ms + r));
        let mut next = *out.last().unwrap_or(&self.first_ms) + self.every_ms.max(1);
        while next <= self.total_ms && out.len() < 1000 {
            out.push(next);
            next += self.every_ms.max(1);
        }
        out.retain(|&t| t <= self.total_ms);
        out.into_iter().map(Duration::from_millis).collect()
    }
}

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The API key callers must present.
    pub api_key: String,
    /// The `<MID>-<suffix>` username accepted with classic Basic authentication.
    pub username: Option<String>,
    /// Where the fake is reachable (hosted pages and `Location`s are built from it).
    pub public_base: String,
    /// When pushes are sent.
    pub push_schedule: PushSchedule,
    /// How long the validation call may take before Kustom approves anyway (3 s).
    pub validation_timeout: Duration,
}

impl FakeConfig {
    /// The sandbox defaults at `public_base`.
    pub fn sandbox(public_base: &str) -> Self {
        Self {
            api_key: SANDBOX_API_KEY.into(),
            username: None,
            public_base: public_base.trim_end_matches('/').to_string(),
            push_schedule: PushSchedule::kustom(),
            validation_timeout: Duration::from_secs(3),
        }
    }
}

/// One push sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushAttempt {
    /// When it was sent, in milliseconds after the purchase.
    pub at_ms: u64,
    /// The status answered, or none when no answer came.
    pub status: Option<u16>,
}

/// What a validation call came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationOutcome {
    /// `200`.
    Approved,
    /// `303` (or another 4xx): the purchase is refused.
    Denied,
    /// No answer in time, or a 5xx: approved, as Kustom does.
    AutoApproved,
    /// No answer in time with `require_validate_callback_success`: the purchase fails.
    Failed,
}

/// One validation call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationRecord {
    /// The status answered, if any.
    pub status: Option<u16>,
    /// Where a denial sends the customer.
    pub location: Option<String>,
    /// What it came to.
    pub outcome: ValidationOutcome,
    /// How long the merchant took.
    pub elapsed_ms: u64,
}

/// A capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FakeCapture {
    /// Its id.
    pub capture_id: String,
    /// Minor units.
    pub captured_amount: i64,
}

/// Order Management's view of a completed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OmState {
    /// `AUTHORIZED`, `PART_CAPTURED`, `CAPTURED`, `CANCELLED`.
    pub status: String,
    /// `ACCEPTED`, `PENDING` or `REJECTED`.
    pub fraud_status: String,
    /// The authorized amount.
    pub order_amount: i64,
    /// Captured so far.
    pub captured_amount: i64,
    /// Refunded so far.
    pub refunded_amount: i64,
    /// Whether the merchant acknowledged it (or captured, which counts).
    pub acknowledged: bool,
    /// How many acknowledge calls arrived.
    pub acknowledge_calls: u32,
    /// Captures.
    pub captures: Vec<FakeCapture>,
}

/// Everything the fake holds about one order.
#[derive(Debug, Clone, Serialize)]
pub struct FakeOrder {
    /// The checkout order as the checkout API returns it.
    pub checkout: Map<String, Value>,
    /// Whether the merchant aborted it.
    pub aborted: bool,
    /// After completion.
    pub om: Option<OmState>,
    /// Pushes sent.
    pub pushes: Vec<PushAttempt>,
    /// Whether the push schedule ran out without an acknowledgement.
    pub pushes_gave_up: bool,
    /// Whether pushing is over (acknowledged, or given up).
    pub pushes_finished: bool,
    /// Validation calls made.
    pub validations: Vec<ValidationRecord>,
    /// How many times the order was updated.
    pub updates: u32,
}

impl FakeOrder {
    /// The order id.
    pub fn order_id(&self) -> &str {
        self.checkout
            .get("order_id")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The checkout status.
    pub fn status(&self) -> &str {
        self.checkout
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn merchant_url(&self, key: &str) -> Option<String> {
        self.checkout
            .get("merchant_urls")
            .and_then(|u| u.get(key))
            .and_then(Value::as_str)
            .map(|u| u.replace(ORDER_ID_PLACEHOLDER, self.order_id()))
    }
}

/// Test options for a completion.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompleteOptions {
    /// Do not call the validation URL.
    pub skip_validation: bool,
    /// Send no pushes (as if they were all lost).
    pub skip_push: bool,
    /// The fraud decision (`ACCEPTED` unless set).
    pub fraud_status: Option<String>,
}

/// What a completion came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CompleteOutcome {
    /// The purchase went through; the customer goes to the confirmation URL.
    Completed {
        /// The merchant's confirmation URL, placeholder replaced.
        confirmation_url: String,
    },
    /// The merchant's validation refused it.
    Denied {
        /// Where the merchant sends the customer, if it said.
        location: Option<String>,
    },
    /// The validation did not answer and success was required.
    Failed,
}

/// Why a completion could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FakeError {
    /// No such order.
    #[error("no order {0}")]
    NotFound(String),
    /// The order is not waiting for the customer.
    #[error("order {0} is not open for completion")]
    NotOpen(String),
}

/// The fake. Clones share the state.
#[derive(Clone)]
pub struct FakeKustom {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FakeKustom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKustom")
            .field("public_base", &self.inner.config.public_base)
            .finish_non_exhaustive()
    }
}

type Inner = FakeCore<FakeConfig, State>;

/// One lock over everything; no handler awaits while holding it, so each API call is
/// atomic.
struct State {
    orders: Records<FakeOrder>,
    /// Order Management answers saved per (order, idempotency key). Kustom disregards the
    /// input of a repeated key, so there is no fingerprint to compare.
    idempotency: Replays<(String, String), (), Saved>,
    requests: BTreeMap<String, u64>,
    fail_next: u32,
    push_schedule: PushSchedule,
    started: Instant,
}

#[derive(Clone)]
struct Saved {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl State {
    fn order(&self, id: &str) -> Option<&FakeOrder> {
        self.orders.get(id)
    }

    fn order_mut(&mut self, id: &str) -> Option<&mut FakeOrder> {
        self.orders.get_mut(id)
    }
}

fn now_rfc3339_ish(started: Instant) -> String {
    // Only ordering matters to callers of the fake; a real clock format is not needed.
    format!("T+{}ms", started.elapsed().as_millis())
}

impl FakeKustom {
    /// A fake with no orders.
    pub fn new(config: FakeConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let config = FakeConfig {
            public_base: base_url(&config.public_base),
            ..config
        };
        let push_schedule = config.push_schedule.clone();
        let state = State {
            orders: Records::default(),
            idempotency: Replays::default(),
            requests: BTreeMap::new(),
            fail_next: 0,
            push_schedule,
            started: Instant::now(),
        };
        Self {
            inner: Arc::new(FakeCore::with_client(config, http, state)),
        }
    }

    /// The routes, relative to wherever they are mounted.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone()).merge(hosted::router(self.clone()))
    }

    /// The configured public base URL, without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.inner.config.public_base
    }

    /// Every order, oldest first.
    pub fn orders(&self) -> Vec<FakeOrder> {
        self.inner.state.lock().orders.iter().cloned().collect()
    }

    /// One order.
    pub fn order(&self, id: &str) -> Option<FakeOrder> {
        self.inner.state.lock().order(id).cloned()
    }

    /// How many API calls reached the fake, by `"METHOD route"`.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.inner.state.lock().requests.clone()
    }

    /// How many order reads (checkout and Order Management) reached the fake.
    pub fn order_reads(&self) -> u64 {
        self.inner
            .state
            .lock()
            .requests
            .iter()
            .filter(|(k, _)| {
                k.starts_with("GET ") && k.ends_with("/orders/{id}") && !k.contains("/_test/")
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Replaces the push schedule for purchases made from now on.
    pub fn set_push_schedule(&self, schedule: PushSchedule) {
        self.inner.state.lock().push_schedule = schedule;
    }

    /// Makes the next `n` API calls fail with 503.
    pub fn fail_next(&self, n: u32) {
        self.inner.state.lock().fail_next = n;
    }

    /// Completes a purchase as the customer's click does: the validation call (unless
    /// skipped), then the order is complete, Order Management holds it authorized, and
    /// pushes start (unless skipped). Pushes are sent by a background task, so they are
    /// only sent inside a Tokio runtime.
    pub async fn complete(
        &self,
        order_id: &str,
        options: CompleteOptions,
    ) -> Result<CompleteOutcome, FakeError> {
        let (order_json, validation_url, require) = {
            let st = self.inner.state.lock();
            let order = st
                .order(order_id)
                .ok_or_else(|| FakeError::NotFound(order_id.to_string()))?;
            if order.aborted || order.status() != "checkout_incomplete" {
                return Err(FakeError::NotOpen(order_id.to_string()));
            }
            let require = order
                .checkout
                .get("options")
                .and_then(|o| o.get("require_validate_callback_success"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            (
                Value::Object(order.checkout.clone()),
                order.merchant_url("validation"),
                require,
            )
        };

        if let (Some(url), false) = (validation_url, options.skip_validation) {
            let record = self.validate(&url, &order_json, require).await;
            let outcome = record.outcome.clone();
            let location = record.location.clone();
            if let Some(o) = self.inner.state.lock().order_mut(order_id) {
                o.validations.push(record);
            }
            match outcome {
                ValidationOutcome::Approved | ValidationOutcome::AutoApproved => {}
                ValidationOutcome::Denied => return Ok(CompleteOutcome::Denied { location }),
                ValidationOutcome::Failed => return Ok(CompleteOutcome::Failed),
            }
        }

        let (confirmation_url, push_url, schedule) = {
            let mut st = self.inner.state.lock();
            let schedule = st.push_schedule.clone();
            let stamp = now_rfc3339_ish(st.started);
            let base = self.inner.config.public_base.clone();
            let order = st
                .order_mut(order_id)
                .ok_or_else(|| FakeError::NotFound(order_id.to_string()))?;
            // Two clicks racing: the validation ran unlocked, so look again.
            if order.aborted || order.status() != "checkout_incomplete" {
                return Err(FakeError::NotOpen(order_id.to_string()));
            }
            let amount = order
                .checkout
                .get("order_amount")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            order
                .checkout
                .insert("status".into(), json!("checkout_complete"));
            order.checkout.insert("completed_at".into(), json!(stamp));
            order.checkout.insert(
                "html_snippet".into(),
                json!(hosted::snippet(&base, order_id, true)),
            );
            order.om = Some(OmState {
                status: "AUTHORIZED".into(),
                fraud_status: options
                    .fraud_status
                    .clone()
                    .unwrap_or_else(|| "ACCEPTED".into()),
                order_amount: amount,
                captured_amount: 0,
                refunded_amount: 0,
                acknowledged: false,
                acknowledge_calls: 0,
                captures: Vec::new(),
            });
            (
                order.merchant_url("confirmation").unwrap_or_default(),
                order.merchant_url("push"),
                schedule,
            )
        };
        if let (Some(url), false) = (push_url, options.skip_push) {
            push::spawn(self.clone(), order_id.to_string(), url, schedule);
        }
        Ok(CompleteOutcome::Completed { confirmation_url })
    }

    async fn validate(&self, url: &str, order: &Value, require: bool) -> ValidationRecord {
        // With `require_validate_callback_success` Kustom waits 10 s and fails the order
        // without an answer; otherwise it waits 3 s and approves.
        let limit = if require {
            Duration::from_secs(10)
        } else {
            self.inner.config.validation_timeout
        };
        let started = Instant::now();
        let sent = tokio::time::timeout(limit, self.inner.http.post(url).json(order).send()).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let no_answer = if require {
            ValidationOutcome::Failed
        } else {
            ValidationOutcome::AutoApproved
        };
        match sent {
            Ok(Ok(resp)) => {
                let status = resp.status();
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let outcome = if status.is_success() {
                    ValidationOutcome::Approved
                } else if status.as_u16() == 303 || status.is_client_error() {
                    ValidationOutcome::Denied
                } else {
                    no_answer
                };
                ValidationRecord {
                    status: Some(status.as_u16()),
                    location,
                    outcome,
                    elapsed_ms,
                }
            }
            _ => ValidationRecord {
                status: None,
                location: None,
                outcome: no_answer,
                elapsed_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kustoms_schedule_pushes_sixteen_times_in_48_hours() {
        let offsets = PushSchedule::kustom().offsets();
        let minutes: Vec<u64> = offsets.iter().map(|d| d.as_secs() / 60).collect();
        assert_eq!(&minutes[..5], &[2, 7, 17, 32, 62]);
        assert_eq!(minutes[5], 62 + 240);
        assert!(*minutes.last().unwrap() <= 48 * 60);
        assert_eq!(minutes.len(), 16);
    }

    #[test]
    fn a_compressed_schedule_keeps_the_shape() {
        let c = PushSchedule::compressed(60_000).offsets();
        let k = PushSchedule::kustom().offsets();
        assert_eq!(c.len(), k.len());
        assert_eq!(c[0], Duration::from_millis(2));
        assert_eq!(c[4], Duration::from_millis(62));
    }
}
