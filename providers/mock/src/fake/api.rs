//! The JSON API under `/v1`, its authentication, the fault injection and the `/_test`
//! controls.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State as AxumState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use fake_support::faults::{broken, hang, take};
use fake_support::replay::{mark_replayed, Replay};
use psp_core::signature::unix_now;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::delivery::{self, Delivery};
use super::{
    hosted, new_id, AmountUpdate, Capture, CaptureCall, Entry, FakeError, FakeMockPsp, Faults,
    Payment, PaymentStatus, State,
};

/// Stripe's limit on the length of an idempotency key.
const MAX_KEY_LEN: usize = 255;
/// The largest amount accepted, in minor units. Far above any real payment, and far below
/// where sums of captures could overflow.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

pub(super) fn router(fake: FakeMockPsp) -> Router {
    Router::new()
        .route("/payments", post(create_payment))
        .route("/payments/{id}", get(get_payment).post(update_payment))
        .route("/payments/{id}/captures", post(capture))
        .route("/payments/{id}/void", post(void))
        // Faults apply to the PSP's API only, never to the test controls that set them.
        .route_layer(middleware::from_fn_with_state(fake.clone(), inject_faults))
        .route("/_test/faults", get(get_faults).put(put_faults))
        .route("/_test/payments", get(list_payments))
        .route("/_test/events", get(list_events))
        .route("/_test/payments/{id}/approve", post(test_approve))
        .route("/_test/payments/{id}/decline", post(test_decline))
        .route_layer(middleware::from_fn_with_state(fake.clone(), require_auth))
        // A catch-all route rather than a fallback: a nested router's fallback is not
        // reached once the gateway nests this router a second time.
        .route(
            "/{*rest}",
            any(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") }),
        )
        .with_state(fake)
}

/// An API error, rendered as `{"error":{"code","message"}}`.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    fn reply(&self) -> Reply {
        (
            self.status,
            json!({ "error": { "code": self.code, "message": self.message } }),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.reply();
        (status, Json(body)).into_response()
    }
}

impl From<FakeError> for ApiError {
    fn from(err: FakeError) -> Self {
        let (status, code) = err.status_and_code();
        ApiError::new(status, code, err.to_string())
    }
}

/// A status and a JSON body: what is saved under an idempotency key and replayed.
type Reply = (StatusCode, Value);

/// What an idempotent call produced.
struct Executed {
    reply: Reply,
    replayed: bool,
    delivery: Option<Delivery>,
}

impl State {
    /// Runs `act` once per idempotency key. A repeat of the same request gets the saved
    /// reply without acting again; a different request under the same key is refused.
    fn idempotent(
        &mut self,
        key: &str,
        fingerprint: String,
        act: impl FnOnce(&mut State) -> (Reply, Option<Delivery>),
    ) -> Result<Executed, ApiError> {
        match self.idempotency.check(&key.to_string(), &fingerprint) {
            Replay::Other(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    format!("the idempotency key {key:?} was already used for a different request"),
                ))
            }
            Replay::Same(saved) => {
                return Ok(Executed {
                    reply: saved.clone(),
                    replayed: true,
                    delivery: None,
                })
            }
            Replay::New => {}
        }
        let (reply, delivery) = act(self);
        self.idempotency
            .save(key.to_string(), fingerprint, reply.clone());
        Ok(Executed {
            reply,
            replayed: false,
            delivery,
        })
    }
}

impl FakeMockPsp {
    /// Sends the webhook an execution produced, if any, and renders its reply.
    fn finish(&self, done: Executed) -> Response {
        if let Some(d) = done.delivery {
            delivery::spawn(self.inner.clone(), d);
        }
        let (status, body) = done.reply;
        let mut resp = (status, Json(body)).into_response();
        if done.replayed {
            mark_replayed(&mut resp);
        }
        resp
    }

    fn take_fault(&self) -> Option<Fault> {
        let mut st = self.inner.state.lock();
        let f = &mut st.faults;
        if take(&mut f.fail_next) {
            Some(Fault::Fail)
        } else if take(&mut f.hang_next) {
            Some(Fault::Hang(Duration::from_millis(f.hang_ms)))
        } else if take(&mut f.drop_after_next) {
            Some(Fault::DropAfter)
        } else {
            None
        }
    }
}

impl FakeMockPsp {
    /// Lists a capture call that an injected fault refuses before the fake's logic sees it,
    /// so tests can check the idempotency key of every attempt.
    fn record_refused_capture(&self, req: &Request, fault: &'static str) {
        let path = req.uri().path();
        let Some(id) = path
            .strip_suffix("/captures")
            .and_then(|p| p.rsplit('/').next())
        else {
            return;
        };
        let key = req
            .headers()
            .get("Idempotency-Key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if let Some(entry) = self.inner.state.lock().entry_mut(id) {
            entry.capture_calls.push(CaptureCall {
                idempotency_key: key,
                replayed: false,
                status: 0,
                fault: Some(fault),
            });
        }
    }
}

fn payment_json(p: &Payment) -> Value {
    serde_json::to_value(p).expect("a payment serialises")
}

fn not_found(id: &str) -> Reply {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no payment {id:?}"),
    )
    .reply()
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_missing",
            "an Idempotency-Key header is required on this request",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::invalid(format!(
            "the Idempotency-Key is longer than {MAX_KEY_LEN} characters"
        )));
    }
    Ok(key.to_string())
}

/// Parses a body strictly: the typed structs refuse unknown fields, and an `i64` field
/// refuses `1.5`, `"100"` and `1e3`, which is the validation a real PSP does.
fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid body: {e}")))
}

fn check_amount(amount: i64) -> Result<(), ApiError> {
    if amount <= 0 || amount > MAX_AMOUNT {
        return Err(ApiError::invalid(format!(
            "amount must be a positive integer in minor units, at most {MAX_AMOUNT}"
        )));
    }
    Ok(())
}

/// Checks that a URL is absolute http(s), since the fake will redirect a browser or send
/// a webhook to it.
fn check_url(field: &str, value: &str) -> Result<(), ApiError> {
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => Err(ApiError::invalid(format!(
            "{field} must be an absolute http(s) URL"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePayment {
    amount: i64,
    currency: String,
    cart_id: String,
    #[serde(default)]
    return_url: Option<String>,
    webhook_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountBody {
    amount: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

async fn create_payment(
    AxumState(fake): AxumState<FakeMockPsp>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let req: CreatePayment = parse_json(&body)?;
    check_amount(req.amount)?;
    // Upper case only: the fake is strict where Stripe is strict the other way round, so
    // an adapter that forgets which case its PSP wants is caught by tests.
    let currency_ok = req.currency.len() == 3
        && req.currency.bytes().all(|b| b.is_ascii_uppercase())
        && psp_core::Currency::from_code(&req.currency).is_ok();
    if !currency_ok {
        return Err(ApiError::invalid(format!(
            "currency {:?} is not an upper-case ISO 4217 code with a minor unit",
            req.currency
        )));
    }
    let cart_id = uuid::Uuid::parse_str(&req.cart_id)
        .map_err(|_| ApiError::invalid("cart_id must be a UUID"))?;
    if let Some(url) = &req.return_url {
        check_url("return_url", url)?;
    }
    check_url("webhook_url", &req.webhook_url)?;

    let fingerprint = format!("POST /v1/payments {req:?}");
    let public_base = fake.public_base().to_string();
    let done = fake
        .inner
        .state
        .lock()
        .idempotent(&key, fingerprint, |st| {
            let id = new_id("mpay");
            let payment = Payment {
                hosted_url: format!("{public_base}/pay/{id}"),
                id: id.clone(),
                status: PaymentStatus::Pending,
                amount: req.amount,
                currency: req.currency.clone(),
                cart_id: cart_id.hyphenated().to_string(),
                return_url: req.return_url.clone(),
                authorized_amount: 0,
                captured_amount: 0,
                failure_reason: None,
                created: unix_now(),
            };
            let body = payment_json(&payment);
            st.payments.insert(
                id,
                Entry {
                    payment,
                    webhook_url: req.webhook_url.clone(),
                    captures: Vec::new(),
                    capture_calls: Vec::new(),
                    amount_updates: Vec::new(),
                },
            );
            ((StatusCode::CREATED, body), None)
        })?;
    Ok(fake.finish(done))
}

async fn get_payment(AxumState(fake): AxumState<FakeMockPsp>, Path(id): Path<String>) -> Response {
    match fake.payment(&id) {
        Some(p) => Json(payment_json(&p)).into_response(),
        None => {
            let (status, body) = not_found(&id);
            (status, Json(body)).into_response()
        }
    }
}

async fn update_payment(
    AxumState(fake): AxumState<FakeMockPsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let req: AmountBody = parse_json(&body)?;
    check_amount(req.amount)?;
    let fingerprint = format!("POST /v1/payments/{id} {req:?}");
    let mut st = fake.inner.state.lock();
    let done = st.idempotent(&key, fingerprint, |st| {
        let Some(entry) = st.entry_mut(&id) else {
            return (not_found(&id), None);
        };
        let p = &mut entry.payment;
        if p.status != PaymentStatus::Pending {
            let err = ApiError::new(
                StatusCode::CONFLICT,
                "payment_locked",
                format!(
                    "payment is {}; only a pending payment can change",
                    p.status.as_str()
                ),
            );
            return (err.reply(), None);
        }
        p.amount = req.amount;
        ((StatusCode::OK, payment_json(p)), None)
    })?;
    if let Some(entry) = st.entry_mut(&id) {
        entry.amount_updates.push(AmountUpdate {
            idempotency_key: key.clone(),
            amount: req.amount,
            replayed: done.replayed,
            status: done.reply.0.as_u16(),
        });
    }
    drop(st);
    Ok(fake.finish(done))
}

async fn capture(
    AxumState(fake): AxumState<FakeMockPsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let req: AmountBody = parse_json(&body)?;
    check_amount(req.amount)?;
    let fingerprint = format!("POST /v1/payments/{id}/captures {req:?}");
    let done = {
        let mut st = fake.inner.state.lock();
        let done = st.idempotent(&key, fingerprint, |st| capture_once(st, &id, req.amount))?;
        // Every call that got this far is listed, replays included, so tests can see that
        // a retry reused its key and did not capture again.
        if let Some(entry) = st.entry_mut(&id) {
            entry.capture_calls.push(CaptureCall {
                idempotency_key: key.clone(),
                replayed: done.replayed,
                status: done.reply.0.as_u16(),
                fault: None,
            });
        }
        done
    };
    Ok(fake.finish(done))
}

fn capture_once(st: &mut State, id: &str, amount: i64) -> (Reply, Option<Delivery>) {
    let Some(entry) = st.entry_mut(id) else {
        return (not_found(id), None);
    };
    let p = &mut entry.payment;
    let remaining = p.authorized_amount - p.captured_amount;
    let capturable = p.status == PaymentStatus::Authorized
        || (p.status == PaymentStatus::Captured && remaining > 0);
    if !capturable {
        let err = ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            format!(
                "payment is {} with {remaining} left to capture",
                p.status.as_str()
            ),
        );
        return (err.reply(), None);
    }
    if amount > remaining {
        let err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "amount_too_large",
            format!("{amount} is more than the {remaining} left to capture"),
        );
        return (err.reply(), None);
    }
    p.captured_amount += amount;
    p.status = PaymentStatus::Captured;
    let capture = Capture {
        id: new_id("mcap"),
        payment_id: id.to_string(),
        amount,
        created: unix_now(),
    };
    entry.captures.push(capture.clone());
    let delivery = st.new_event("payment.captured", id);
    let body = serde_json::to_value(&capture).expect("a capture serialises");
    ((StatusCode::CREATED, body), delivery)
}

async fn void(
    AxumState(fake): AxumState<FakeMockPsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    // A void takes no parameters; an empty body and `{}` are both fine.
    if !body.iter().all(u8::is_ascii_whitespace) {
        parse_json::<EmptyBody>(&body)?;
    }
    let fingerprint = format!("POST /v1/payments/{id}/void");
    let done = fake
        .inner
        .state
        .lock()
        .idempotent(&key, fingerprint, |st| {
            let Some(entry) = st.entry_mut(&id) else {
                return (not_found(&id), None);
            };
            let p = &mut entry.payment;
            if !matches!(p.status, PaymentStatus::Pending | PaymentStatus::Authorized) {
                let err = ApiError::new(
                    StatusCode::CONFLICT,
                    "invalid_state",
                    format!("a {} payment cannot be voided", p.status.as_str()),
                );
                return (err.reply(), None);
            }
            p.status = PaymentStatus::Voided;
            let body = payment_json(p);
            let delivery = st.new_event("payment.voided", &id);
            ((StatusCode::OK, body), delivery)
        })?;
    Ok(fake.finish(done))
}

/// An injected failure for one call.
enum Fault {
    Fail,
    Hang(Duration),
    DropAfter,
}

async fn require_auth(
    AxumState(fake): AxumState<FakeMockPsp>,
    req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given != Some(fake.inner.config.api_key.as_str()) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key (Authorization: Bearer <api_key>)",
        )
        .into_response();
    }
    next.run(req).await
}

async fn inject_faults(
    AxumState(fake): AxumState<FakeMockPsp>,
    req: Request,
    next: Next,
) -> Response {
    let fault = fake.take_fault();
    let refused = match fault {
        Some(Fault::Fail) => Some("fail"),
        Some(Fault::Hang(_)) => Some("hang"),
        _ => None,
    };
    if let Some(refused) = refused {
        fake.record_refused_capture(&req, refused);
    }
    match fault {
        None => next.run(req).await,
        Some(Fault::Fail) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "injected fault: the mock PSP is unavailable",
        )
        .into_response(),
        Some(Fault::Hang(wait)) => hang(wait).await,
        Some(Fault::DropAfter) => {
            let resp = next.run(req).await;
            broken(resp).await
        }
    }
}

async fn get_faults(AxumState(fake): AxumState<FakeMockPsp>) -> Json<Faults> {
    Json(fake.faults())
}

async fn put_faults(
    AxumState(fake): AxumState<FakeMockPsp>,
    body: Bytes,
) -> Result<Json<Faults>, ApiError> {
    let faults: Faults = parse_json(&body)?;
    fake.set_faults(faults);
    Ok(Json(faults))
}

async fn list_payments(AxumState(fake): AxumState<FakeMockPsp>) -> Json<Value> {
    let st = fake.inner.state.lock();
    let data: Vec<Value> = st
        .payments
        .iter()
        .map(|e| {
            let mut v = payment_json(&e.payment);
            if let Value::Object(map) = &mut v {
                map.insert("webhook_url".into(), json!(e.webhook_url));
                map.insert("captures".into(), json!(e.captures));
                map.insert("capture_calls".into(), json!(e.capture_calls));
                map.insert("amount_updates".into(), json!(e.amount_updates));
            }
            v
        })
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn list_events(AxumState(fake): AxumState<FakeMockPsp>) -> Json<Value> {
    Json(json!({ "object": "list", "data": fake.events() }))
}

async fn test_approve(
    AxumState(fake): AxumState<FakeMockPsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let options = hosted::parse_options(&headers, &body).map_err(ApiError::invalid)?;
    let payment = fake.approve(&id, options)?;
    Ok(Json(payment_json(&payment)))
}

async fn test_decline(
    AxumState(fake): AxumState<FakeMockPsp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let options = hosted::parse_options(&headers, &body).map_err(ApiError::invalid)?;
    let payment = fake.decline(&id, options.skip_webhook)?;
    Ok(Json(payment_json(&payment)))
}
