//! A fake of the PSP, speaking its wire format, for tests, `psp-gateway sandbox` and the
//! embedded default. It keeps its state in memory, under one lock
//! (`fake_support::FakeCore`), and uses the machinery all fakes share: idempotent replay,
//! signed webhook delivery with retries.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/payments` | create a payment (`Idempotency-Key` required) |
//! | `GET /v1/payments/{id}` | read a payment |
//! | `POST /v1/payments/{id}/capture` | capture an authorized payment (once) |
//! | `POST /v1/payments/{id}/void` | release a pending or authorized payment |
//! | `GET /pay/{id}` | the hosted page with Approve and Decline |
//! | `POST /pay/{id}/approve`, `POST /pay/{id}/decline` | the customer's choice, then back to `return_url` with `status` |
//!
//! `/v1/*` needs `Authorization: Bearer <api_key>`. The same `Idempotency-Key` with the
//! same request replays the saved answer; with another request it is an
//! `idempotency_error`. Webhooks are `{id, type, payment}`, signed in `template-signature`
//! with the core scheme.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fake_support::delivery::Delivery;
use fake_support::replay::{mark_replayed, Replay, Replays};
use fake_support::{base_url, FakeContext, FakeCore, FakeRegistration, Records};
use psp_core::signature::{sign_header, unix_now};
use psp_core::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::provider::{ID, SANDBOX_API_KEY, SIGNATURE_HEADER};

/// The secret the sandbox's fake signs webhooks with. Public on purpose.
pub const SANDBOX_WEBHOOK_SECRET: &str = "whsec_template_sandbox";

/// How the fake is set up.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The key expected in `Authorization: Bearer <api_key>`.
    pub api_key: String,
    /// The secret webhooks are signed with.
    pub webhook_secret: Secret,
    /// Where the fake is reachable (its hosted pages are built from it).
    pub public_base: String,
}

/// A payment, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    /// `pay_<32 hex>`.
    pub id: String,
    /// `pending`, `authorized`, `captured`, `failed` or `voided`.
    pub status: &'static str,
    /// In minor units.
    pub amount: i64,
    /// Upper-case ISO 4217.
    pub currency: String,
    /// The cart it pays.
    pub cart_id: String,
    /// The hosted page.
    pub redirect_url: String,
    /// Where the customer goes back to.
    pub return_url: Option<String>,
    /// What was captured.
    pub captured_amount: i64,
}

struct Entry {
    payment: Payment,
    webhook_url: String,
}

#[derive(Default)]
struct FakeState {
    payments: Records<Entry>,
    /// Saved answers by idempotency key, with the request each answered.
    replays: Replays<String, String, (StatusCode, Value)>,
}

/// The fake PSP. Clones share the state.
#[derive(Clone)]
pub struct FakePsp {
    inner: Arc<FakeCore<FakeConfig, FakeState>>,
}

impl std::fmt::Debug for FakePsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePsp")
            .field("public_base", &self.inner.config.public_base)
            .finish_non_exhaustive()
    }
}

fn build_fake(ctx: &FakeContext<'_>) -> Router {
    let secret = match ctx.config.get("webhook_secrets") {
        Some(Value::Array(items)) => items.first().and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let api_key = ctx.config.get("api_key").and_then(Value::as_str);
    FakePsp::new(FakeConfig {
        api_key: api_key.unwrap_or(SANDBOX_API_KEY).to_string(),
        webhook_secret: Secret::new(secret.unwrap_or(SANDBOX_WEBHOOK_SECRET)),
        public_base: ctx.public_base.to_string(),
    })
    .router()
}

fn sandbox_config() -> Value {
    json!({ "webhook_secrets": [SANDBOX_WEBHOOK_SECRET] })
}

psp_core::inventory::submit! {
    FakeRegistration {
        id: ID,
        build: build_fake,
        sandbox_config,
        demo: Some(include_str!("demo.js")),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "error": { "code": code, "message": message } }),
    )
}

fn answer((status, body): (StatusCode, Value)) -> Response {
    (status, Json(body)).into_response()
}

impl FakePsp {
    /// A fake with no payments.
    pub fn new(config: FakeConfig) -> Self {
        let config = FakeConfig {
            public_base: base_url(&config.public_base),
            ..config
        };
        Self {
            inner: Arc::new(FakeCore::new(config, FakeState::default())),
        }
    }

    /// The routes, relative to wherever they are mounted.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/payments", post(create))
            .route("/v1/payments/{id}", get(read))
            .route("/v1/payments/{id}/capture", post(capture))
            .route("/v1/payments/{id}/void", post(void))
            .route("/pay/{id}", get(page))
            .route("/pay/{id}/{choice}", post(choose))
            .with_state(self.clone())
    }

    /// Every payment, oldest first.
    pub fn payments(&self) -> Vec<Payment> {
        let st = self.inner.state.lock();
        st.payments.iter().map(|e| e.payment.clone()).collect()
    }

    /// How many captures a payment had (one at most).
    pub fn captures_of(&self, id: &str) -> usize {
        let st = self.inner.state.lock();
        st.payments
            .get(id)
            .map_or(0, |e| usize::from(e.payment.captured_amount > 0))
    }

    /// The customer's choice on the hosted page: authorizes (or declines) a pending
    /// payment and, with `webhook`, sends the signed event. `None` when the payment is not
    /// pending.
    pub fn choose(&self, id: &str, approve: bool, webhook: bool) -> Option<Payment> {
        let (payment, url) = {
            let mut st = self.inner.state.lock();
            let entry = st.payments.get_mut(id)?;
            if entry.payment.status != "pending" {
                return None;
            }
            entry.payment.status = if approve { "authorized" } else { "failed" };
            (entry.payment.clone(), entry.webhook_url.clone())
        };
        if webhook {
            self.send_event(&payment, url);
        }
        Some(payment)
    }

    fn send_event(&self, payment: &Payment, url: String) {
        let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
        let kind = if payment.status == "authorized" {
            "payment.authorized"
        } else {
            "payment.failed"
        };
        let body = json!({ "id": event_id, "type": kind, "payment": payment }).to_string();
        let secret = self.inner.config.webhook_secret.clone();
        Delivery {
            sender: "fake template PSP",
            label: event_id,
            url,
            body: body.into(),
            headers: move |body: &[u8]| {
                vec![
                    (SIGNATURE_HEADER, sign_header(&secret, unix_now(), body)),
                    ("Content-Type", "application/json".to_string()),
                ]
            },
            // This fake keeps no delivery records; a fake whose tests read them records
            // each attempt here.
            record: |_| {},
        }
        .spawn(&self.inner.http);
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = format!("Bearer {}", self.inner.config.api_key);
        headers
            .get(header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == expected.as_bytes())
    }

    /// Runs a change once per idempotency key, after the caller's authentication.
    fn once(
        &self,
        headers: &HeaderMap,
        request: String,
        act: impl FnOnce(&mut FakeState) -> (StatusCode, Value),
    ) -> Response {
        if !self.authorized(headers) {
            return answer(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong API key",
            ));
        }
        let Some(key) = headers
            .get("Idempotency-Key")
            .and_then(|v| v.to_str().ok())
            .filter(|k| !k.trim().is_empty())
            .map(str::to_string)
        else {
            return answer(error(
                StatusCode::BAD_REQUEST,
                "idempotency_key_missing",
                "an Idempotency-Key is required",
            ));
        };
        let mut st = self.inner.state.lock();
        match st.replays.check(&key, &request) {
            Replay::Same(saved) => {
                let mut resp = answer(saved.clone());
                mark_replayed(&mut resp);
                resp
            }
            Replay::Other(_) => answer(error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                "this key was used for another request",
            )),
            Replay::New => {
                let done = act(&mut st);
                st.replays.save(key, request, done.clone());
                answer(done)
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPayment {
    amount: i64,
    currency: String,
    cart_id: String,
    webhook_url: String,
    #[serde(default)]
    return_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureBody {
    amount: i64,
}

async fn create(State(fake): State<FakePsp>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(new) = serde_json::from_slice::<NewPayment>(&body) else {
        return answer(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "not a payment",
        ));
    };
    if new.amount <= 0 || psp_core::Currency::from_code(&new.currency).is_err() {
        return answer(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad amount",
        ));
    }
    let base = fake.inner.config.public_base.clone();
    fake.once(&headers, format!("create {new:?}"), |st| {
        let id = format!("pay_{}", uuid::Uuid::new_v4().simple());
        let payment = Payment {
            redirect_url: format!("{base}/pay/{id}"),
            id: id.clone(),
            status: "pending",
            amount: new.amount,
            currency: new.currency,
            cart_id: new.cart_id,
            return_url: new.return_url,
            captured_amount: 0,
        };
        let body = json!(payment);
        st.payments.insert(
            id,
            Entry {
                payment,
                webhook_url: new.webhook_url,
            },
        );
        (StatusCode::CREATED, body)
    })
}

async fn read(State(fake): State<FakePsp>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !fake.authorized(&headers) {
        return answer(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong API key",
        ));
    }
    match fake.inner.state.lock().payments.get(&id) {
        Some(e) => answer((StatusCode::OK, json!(e.payment))),
        None => answer(error(StatusCode::NOT_FOUND, "not_found", "no such payment")),
    }
}

async fn capture(
    State(fake): State<FakePsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<CaptureBody>(&body) else {
        return answer(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "not a capture",
        ));
    };
    fake.once(&headers, format!("capture {id} {req:?}"), |st| {
        let Some(entry) = st.payments.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "not_found", "no such payment");
        };
        let p = &mut entry.payment;
        if p.status != "authorized" || req.amount <= 0 || req.amount > p.amount {
            return error(StatusCode::CONFLICT, "invalid_state", "cannot capture that");
        }
        p.status = "captured";
        p.captured_amount = req.amount;
        (StatusCode::OK, json!(p))
    })
}

async fn void(State(fake): State<FakePsp>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    fake.once(&headers, format!("void {id}"), |st| {
        let Some(entry) = st.payments.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "not_found", "no such payment");
        };
        let p = &mut entry.payment;
        if !matches!(p.status, "pending" | "authorized") {
            return error(StatusCode::CONFLICT, "invalid_state", "cannot void that");
        }
        p.status = "voided";
        (StatusCode::OK, json!(p))
    })
}

async fn page(State(fake): State<FakePsp>, Path(id): Path<String>) -> Response {
    let Some(p) = fake
        .inner
        .state
        .lock()
        .payments
        .get(&id)
        .map(|e| e.payment.clone())
    else {
        return (StatusCode::NOT_FOUND, "no such payment").into_response();
    };
    // The id is made by the fake (hex), the amount and currency were checked at creation.
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Pay</title>\
         <h1>Pay {amount} {currency} (minor units)</h1>\
         <form method=post action=\"{id}/approve\"><button>Approve</button></form>\
         <form method=post action=\"{id}/decline\"><button>Decline</button></form>",
        amount = p.amount,
        currency = p.currency,
        id = p.id,
    ))
    .into_response()
}

async fn choose(
    State(fake): State<FakePsp>,
    Path((id, choice)): Path<(String, String)>,
) -> Response {
    let approve = match choice.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let Some(p) = fake.choose(&id, approve, true) else {
        return (
            StatusCode::CONFLICT,
            "the payment is not waiting for the customer",
        )
            .into_response();
    };
    match p
        .return_url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
    {
        Some(mut url) => {
            url.query_pairs_mut().append_pair("status", p.status);
            Redirect::to(url.as_str()).into_response()
        }
        None => Html(format!("<p>The payment is {}.</p>", p.status)).into_response(),
    }
}
