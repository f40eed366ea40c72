//! The API under `/v1`: PaymentIntents, webhook endpoints and events, with Stripe's
//! authentication, parameter validation, idempotency and errors; fault injection; and the
//! `/v1/_test` controls.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, MethodRouter};
use axum::{Json, Router};
use fake_support::faults::{broken, hang, take};
use fake_support::replay::{mark_replayed, Replay};
use psp_core::signature::unix_now;
use psp_core::Currency;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::form::{self, Params};
use super::{
    delivery, new_id, random, Endpoint, FakeStripe, Fingerprint, IntentStatus, Outcome,
    PaymentIntent, RequestRecord, Saved, State,
};
use crate::currency::{self, MAX_AMOUNT};

/// Stripe's limit on the length of an idempotency key.
const MAX_KEY_LEN: usize = 255;
/// The largest request body read.
const MAX_BODY: usize = 1 << 20;

/// Event types an endpoint may subscribe to (`*` for all).
const EVENT_TYPES: &[&str] = &[
    "*",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.partially_funded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "charge.captured",
    "charge.expired",
    "charge.failed",
    "charge.pending",
    "charge.refunded",
    "charge.succeeded",
    "charge.updated",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    "refund.created",
    "refund.failed",
    "refund.updated",
];

pub(super) fn router(fake: FakeStripe) -> Router {
    Router::new()
        .route(
            "/payment_intents",
            stripe_methods(post(create_intent).get(list_intents)),
        )
        .route(
            "/payment_intents/search",
            stripe_methods(get(search_intents)),
        )
        .route(
            "/payment_intents/{id}",
            stripe_methods(get(retrieve_intent).post(update_intent)),
        )
        .route(
            "/payment_intents/{id}/confirm",
            stripe_methods(post(confirm_intent)),
        )
        .route(
            "/payment_intents/{id}/capture",
            stripe_methods(post(capture_intent)),
        )
        .route(
            "/payment_intents/{id}/cancel",
            stripe_methods(post(cancel_intent)),
        )
        .route(
            "/webhook_endpoints",
            stripe_methods(post(create_endpoint).get(list_endpoints)),
        )
        .route(
            "/webhook_endpoints/{id}",
            stripe_methods(get(retrieve_endpoint).delete(delete_endpoint)),
        )
        .route("/events", stripe_methods(get(list_events)))
        .route("/events/{id}", stripe_methods(get(retrieve_event)))
        // Faults apply to Stripe's API only, never to the test controls that set them.
        .route_layer(middleware::from_fn_with_state(fake.clone(), inject_faults))
        .route("/_test/faults", get(get_faults).put(put_faults))
        .route("/_test/requests", get(test_requests))
        .route("/_test/payment_intents", get(test_intents))
        .route("/_test/payment_intents/{id}/confirm", post(test_confirm))
        .route(
            "/_test/payment_intents/{id}/authenticate",
            post(test_authenticate),
        )
        .route("/_test/deliveries", get(test_deliveries))
        .route("/_test/events", get(test_events))
        .route("/_test/events/{id}/redeliver", post(test_redeliver))
        .route_layer(middleware::from_fn_with_state(fake.clone(), require_auth))
        .route_layer(middleware::from_fn_with_state(fake.clone(), log_requests))
        // A catch-all route rather than a fallback: a nested router's fallback is not
        // reached once the gateway nests this router a second time.
        .route("/{*rest}", any(unrecognized))
        .with_state(fake)
}

/// A wrong method on a known path is answered as Stripe does, as an unrecognized URL.
fn stripe_methods(methods: MethodRouter<FakeStripe>) -> MethodRouter<FakeStripe> {
    methods.fallback(unrecognized)
}

async fn unrecognized(method: Method, uri: Uri) -> Response {
    let path = if uri.path().starts_with("/v1") {
        uri.path().to_string()
    } else {
        format!("/v1{}", uri.path())
    };
    let mut resp = ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        ),
    )
    .into_response();
    // Inside a known route the logging layer sets it; the catch-all has no layers.
    if !resp.headers().contains_key("Request-Id") {
        if let Ok(v) = HeaderValue::from_str(&format!("req_{}", random(14))) {
            resp.headers_mut().insert("Request-Id", v);
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------
// Middleware: request log, authentication, faults
// ---------------------------------------------------------------------------------------

/// Who is calling: the secret key may do everything, the publishable key only what
/// Stripe.js does with a client secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Secret,
    Publishable,
}

/// The `Request-Id` of the call, put into events it causes.
#[derive(Debug, Clone)]
struct RequestId(String);

/// An injected 500 for the handler to save under the idempotency key.
#[derive(Debug, Clone, Copy)]
struct InjectedError {
    applied: bool,
    should_retry: Option<bool>,
}

/// Which fault a call met, for the request log.
#[derive(Debug, Clone, Copy)]
struct FaultTag(&'static str);

async fn log_requests(
    AxumState(fake): AxumState<FakeStripe>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let path = format!("/v1{}", req.uri().path());
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let version = req
        .headers()
        .get("Stripe-Version")
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&fake.inner.config.api_version)
                .unwrap_or(HeaderValue::from_static(""))
        });
    let request_id = format!("req_{}", random(14));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("Request-Id", v);
    }
    resp.headers_mut().insert("Stripe-Version", version);
    if let Some(k) = key.as_deref().and_then(|k| HeaderValue::from_str(k).ok()) {
        resp.headers_mut().insert("Idempotency-Key", k);
    }
    if !path.starts_with("/v1/_test") {
        let fault = resp.extensions().get::<FaultTag>().map(|f| f.0.to_string());
        let status = if fault.as_deref() == Some("hang") {
            0
        } else {
            resp.status().as_u16()
        };
        let replayed = resp.headers().contains_key("Idempotent-Replayed");
        fake.inner.state.lock().requests.push(RequestRecord {
            method,
            path,
            idempotency_key: key,
            status,
            replayed,
            fault,
        });
    }
    resp
}

fn unauthorized(message: impl Into<String>) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message).into_response()
}

/// Whether the publishable key may make this call (as Stripe.js does).
fn publishable_may(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["payment_intents", id]) => *id != "search",
        (&Method::POST, ["payment_intents", _, "confirm"]) => true,
        _ => false,
    }
}

async fn require_auth(
    AxumState(fake): AxumState<FakeStripe>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let config = &fake.inner.config;
    let caller = match token {
        None | Some("") => {
            return unauthorized("You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.")
        }
        Some(k) if k == config.secret_key => Caller::Secret,
        Some(k) if k == config.publishable_key => Caller::Publishable,
        Some(k) => {
            let shown: String = k.chars().take(8).collect();
            let tail: String = k.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            return unauthorized(format!("Invalid API Key provided: {shown}****{tail}"));
        }
    };
    if caller == Caller::Publishable && !publishable_may(req.method(), req.uri().path()) {
        return unauthorized("This API call cannot be made with a publishable API key. Please use a secret API key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.");
    }
    if let Some(v) = req.headers().get("Stripe-Version") {
        let text = v.to_str().unwrap_or("");
        if !crate::config::is_api_version(text) {
            return ApiError::invalid(format!("Invalid Stripe API version: {text}"))
                .into_response();
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

enum Fault {
    Hang(Duration),
    Reject(StatusCode, Option<bool>),
    Error(InjectedError),
    DropAfter,
}

impl FakeStripe {
    fn take_fault(&self) -> Option<Fault> {
        let mut st = self.inner.state.lock();
        let f = &mut st.faults;
        if take(&mut f.hang_next) {
            Some(Fault::Hang(Duration::from_millis(f.hang_ms)))
        } else if take(&mut f.reject_next) {
            let status =
                StatusCode::from_u16(f.reject_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(Fault::Reject(status, f.should_retry))
        } else if take(&mut f.error_next) {
            Some(Fault::Error(InjectedError {
                applied: f.error_applied,
                should_retry: f.should_retry,
            }))
        } else if take(&mut f.drop_after_next) {
            Some(Fault::DropAfter)
        } else {
            None
        }
    }
}

fn tagged(mut resp: Response, tag: &'static str) -> Response {
    resp.extensions_mut().insert(FaultTag(tag));
    resp
}

async fn inject_faults(
    AxumState(fake): AxumState<FakeStripe>,
    mut req: Request,
    next: Next,
) -> Response {
    match fake.take_fault() {
        None => next.run(req).await,
        Some(Fault::Hang(wait)) => tagged(hang(wait).await, "hang"),
        Some(Fault::Reject(status, should_retry)) => {
            let mut err = match status.as_u16() {
                409 => ApiError::new(status, "idempotency_error", "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through). Please try again later.").code("idempotency_key_in_use"),
                429 => ApiError::new(status, "invalid_request_error", "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.").code("rate_limit"),
                400..=499 => ApiError::invalid("Injected refusal by the fake Stripe."),
                _ => ApiError::server_error(status),
            };
            err.status = status;
            err.should_retry = should_retry;
            tagged(err.into_response(), "reject")
        }
        Some(Fault::Error(injected)) if req.method() == Method::POST => {
            req.extensions_mut().insert(injected);
            tagged(next.run(req).await, "error")
        }
        Some(Fault::Error(injected)) => {
            let mut err = ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR);
            err.should_retry = injected.should_retry;
            tagged(err.into_response(), "error")
        }
        Some(Fault::DropAfter) => {
            let resp = next.run(req).await;
            tagged(broken(resp).await, "drop_after")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading a call, and running it once per idempotency key
// ---------------------------------------------------------------------------------------

/// One API call, parsed.
struct Call {
    params: Params,
    /// The parameters as sent, for comparing a replay with the original.
    fingerprint: String,
    key: Option<String>,
    caller: Caller,
    injected: Option<InjectedError>,
    request_id: String,
}

fn decode(bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        ApiError::invalid(format!(
            "Invalid request: the parameters could not be decoded ({e})"
        ))
    })
}

async fn read(req: Request) -> Result<Call, ApiError> {
    let (parts, body) = req.into_parts();
    let caller = parts
        .extensions
        .get::<Caller>()
        .copied()
        .unwrap_or(Caller::Secret);
    let injected = parts.extensions.get::<InjectedError>().copied();
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::invalid("Invalid request: the body is too large"))?;
    let mut pairs = Vec::new();
    if let Some(q) = parts.uri.query() {
        pairs.extend(decode(q.as_bytes())?);
    }
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(ApiError::invalid(format!(
                "Invalid request: unsupported Content-Type {content_type:?}. Stripe's API takes application/x-www-form-urlencoded parameters."
            )));
        }
        pairs.extend(decode(&bytes)?);
    }
    let key = match parts.headers.get("Idempotency-Key") {
        None => None,
        Some(v) => {
            let key = v.to_str().unwrap_or("").trim().to_string();
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(ApiError::invalid(format!(
                    "Invalid Idempotency-Key: it must be 1 to {MAX_KEY_LEN} characters long"
                )));
            }
            // Stripe ignores keys on GET and DELETE.
            (parts.method == Method::POST).then_some(key)
        }
    };
    let params = Params::new(form::parse(pairs)?);
    Ok(Call {
        fingerprint: params.canonical(),
        params,
        key,
        caller,
        injected,
        request_id,
    })
}

/// Refuses whatever the handler did not take.
fn finish(call: &mut Call) -> Result<(), ApiError> {
    std::mem::take(&mut call.params).finish()
}

fn json_response(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

impl FakeStripe {
    /// Runs `act` once per idempotency key: a repeat of the same request replays the saved
    /// answer (500s included), the same key on another endpoint or with other parameters is
    /// an `idempotency_error`, and the events the action made are sent.
    fn execute(
        &self,
        call: &Call,
        endpoint: &str,
        act: impl FnOnce(&mut State) -> Outcome,
    ) -> Response {
        let config = &self.inner.config;
        let (status, body, replayed, deliveries) = {
            let mut st = self.inner.state.lock();
            let fingerprint = Fingerprint {
                endpoint: endpoint.to_string(),
                params: call.fingerprint.clone(),
            };
            let check = match &call.key {
                Some(key) => st.idempotency.check(key, &fingerprint),
                None => Replay::New,
            };
            match (check, &call.key) {
                (Replay::Other(saved), Some(key)) if saved.endpoint != endpoint => {
                    return ApiError::new(StatusCode::BAD_REQUEST, "idempotency_error", format!(
                        "Keys for idempotent requests can only be used for the same endpoint they were first used for ('{}' vs '{endpoint}'). Try using a key other than '{key}' if you meant to execute a different request.",
                        saved.endpoint
                    ))
                    .into_response();
                }
                (Replay::Other(_), Some(key)) => {
                    return ApiError::new(StatusCode::BAD_REQUEST, "idempotency_error", format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                    ))
                    .into_response();
                }
                (Replay::Same(saved), _) => (saved.status, saved.body.clone(), true, Vec::new()),
                _ => run(&mut st, call, fingerprint, act, config),
            }
        };
        delivery::spawn_all(&self.inner, deliveries);
        let mut resp = json_response(status, body);
        if replayed {
            mark_replayed(&mut resp);
        }
        if let Some(retry) = call.injected.and_then(|i| i.should_retry) {
            resp.headers_mut().insert(
                "Stripe-Should-Retry",
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        resp
    }
}

fn run(
    st: &mut State,
    call: &Call,
    fingerprint: Fingerprint,
    act: impl FnOnce(&mut State) -> Outcome,
    config: &super::FakeStripeConfig,
) -> (u16, Value, bool, Vec<delivery::Delivery>) {
    let outcome = match call.injected {
        None => act(st),
        // The operation took effect, then Stripe broke: its events still go out.
        Some(InjectedError { applied: true, .. }) => {
            let done = act(st);
            let err = ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR);
            Outcome {
                status: 500,
                body: err.body(),
                ..done
            }
        }
        Some(InjectedError { applied: false, .. }) => {
            Outcome::err(ApiError::server_error(StatusCode::INTERNAL_SERVER_ERROR))
        }
    };
    let request = json!({ "id": call.request_id, "idempotency_key": call.key });
    let mut deliveries = Vec::new();
    if let Some(intent) = &outcome.intent {
        for event in &outcome.events {
            deliveries.extend(st.emit(event, intent, request.clone(), config, true));
        }
    }
    if let Some(key) = &call.key {
        st.idempotency.save(
            key.clone(),
            fingerprint,
            Saved {
                status: outcome.status,
                body: outcome.body.clone(),
            },
        );
    }
    (outcome.status, outcome.body, false, deliveries)
}

// ---------------------------------------------------------------------------------------
// Validation shared by the PaymentIntent endpoints
// ---------------------------------------------------------------------------------------

/// A currency Stripe takes: lower case, and in its currency table.
fn check_currency(code: &str) -> Result<Currency, ApiError> {
    let lower = code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase());
    let currency = Currency::from_code(code)
        .ok()
        .filter(|c| lower && currency::stripe_unit(*c).is_ok());
    currency.ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid currency: {code}. Stripe currently supports these currencies: usd, eur, sek, nok, dkk, gbp, jpy, kwd, isk, ugx, … (three-letter ISO codes in lower case)."
        ))
        .param("currency")
    })
}

/// An amount Stripe takes in `currency`: 1 to eight digits, and a multiple of the
/// currency's step (10 for three-decimal currencies, 100 for ISK).
fn check_amount(param: &str, amount: i64, currency: Currency) -> Result<(), ApiError> {
    if amount < 1 {
        return Err(
            ApiError::invalid("This value must be greater than or equal to 1.")
                .code("parameter_invalid_integer")
                .param(param),
        );
    }
    if amount > MAX_AMOUNT {
        return Err(ApiError::invalid("Amount must be no more than 99,999,999")
            .code("amount_too_large")
            .param(param));
    }
    let unit = currency::stripe_unit(currency).map_err(|e| ApiError::invalid(e.to_string()))?;
    if amount % unit.step != 0 {
        let err = if currency.code() == "ISK" {
            // Stripe's published answer since April 2023.
            ApiError::invalid("Invalid amount. Currency ISK has become effectively zero-decimal and charged amounts must be evenly divisible by 100. See https://stripe.com/docs/currencies#special-cases for more information.")
                .code("invalid_charge_amount_no_decimal_compatible")
        } else {
            // The rule is Stripe's; the code is the fake's own (Stripe's is not documented).
            ApiError::invalid(format!(
                "Invalid amount. {} amounts must be rounded to the nearest ten: the last of the three decimals must be 0. See https://stripe.com/docs/currencies#three-decimal for more information.",
                currency.code()
            ))
            .code("invalid_charge_amount")
        };
        return Err(err.param(param));
    }
    Ok(())
}

fn unexpected_state(pi: &PaymentIntent, what: &str, allowed: &str) -> ApiError {
    ApiError::invalid(format!(
        "{what} because it has a status of {}. {allowed}",
        pi.status.as_str()
    ))
    .code("payment_intent_unexpected_state")
    .with_intent(pi.to_json())
}

fn missing_intent(id: &str) -> Outcome {
    Outcome::err(ApiError::resource_missing("payment_intent", id, "intent"))
}

fn check_url(param: &str, value: &str) -> Result<(), ApiError> {
    match reqwest::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(ApiError::invalid(format!("Invalid URL: {value}")).param(param)),
    }
}

/// Applies `metadata` changes: a value sets, an empty value unsets.
fn merge_metadata(
    target: &mut std::collections::BTreeMap<String, String>,
    changes: std::collections::BTreeMap<String, Option<String>>,
) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                target.insert(k, v);
            }
            None => {
                target.remove(&k);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// PaymentIntents
// ---------------------------------------------------------------------------------------

struct NewIntent {
    amount: i64,
    currency: String,
    capture_method: &'static str,
    automatic_payment_methods: Option<bool>,
    metadata: std::collections::BTreeMap<String, String>,
    description: Option<String>,
    confirm: bool,
    payment_method: Option<String>,
    return_url: Option<String>,
}

fn parse_create(call: &mut Call) -> Result<NewIntent, ApiError> {
    let p = &mut call.params;
    let amount = p.required_integer("amount")?;
    let currency_code = p.required_string("currency")?;
    let capture_method = p
        .enumeration(
            "capture_method",
            &["automatic", "automatic_async", "manual"],
        )?
        .unwrap_or("automatic");
    let automatic_payment_methods = match p.hash("automatic_payment_methods")? {
        None => None,
        Some(mut apm) => {
            let enabled = apm
                .boolean("enabled")?
                .ok_or_else(|| ApiError::missing_parameter("automatic_payment_methods[enabled]"))?;
            apm.enumeration("allow_redirects", &["always", "never"])?;
            apm.finish()?;
            Some(enabled)
        }
    };
    let metadata = p.metadata()?.unwrap_or_default();
    let description = p.string("description")?.filter(|d| !d.is_empty());
    let confirm = p.boolean("confirm")?.unwrap_or(false);
    let payment_method = p.string("payment_method")?.filter(|s| !s.is_empty());
    let payment_method_types = p.list("payment_method_types")?;
    let return_url = p.string("return_url")?.filter(|s| !s.is_empty());
    p.string("receipt_email")?;
    p.expand()?;
    finish(call)?;

    let currency = check_currency(&currency_code)?;
    check_amount("amount", amount, currency)?;
    if automatic_payment_methods.is_some() && payment_method_types.is_some() {
        return Err(ApiError::invalid("You may only specify one of these parameters: automatic_payment_methods, payment_method_types.")
            .code("parameters_exclusive")
            .param("automatic_payment_methods"));
    }
    if let Some(types) = &payment_method_types {
        if let Some(bad) = types.iter().find(|t| t.as_str() != "card") {
            return Err(ApiError::invalid(format!(
                "The payment method type \"{bad}\" is invalid. The fake Stripe offers card only."
            ))
            .param("payment_method_types"));
        }
    }
    if let Some(url) = &return_url {
        if !confirm {
            return Err(ApiError::invalid(
                "You can only provide a return_url when confirm is true.",
            )
            .param("return_url"));
        }
        check_url("return_url", url)?;
    }
    Ok(NewIntent {
        amount,
        currency: currency_code,
        capture_method,
        automatic_payment_methods,
        metadata: metadata
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
        description,
        confirm,
        payment_method,
        return_url,
    })
}

async fn create_intent(AxumState(fake): AxumState<FakeStripe>, req: Request) -> Response {
    let mut call = match read(req).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let new = match parse_create(&mut call) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let public_base = fake.public_base().to_string();
    fake.execute(&call, "POST /v1/payment_intents", move |st| {
        let id = new_id("pi");
        let intent = PaymentIntent {
            client_secret: format!("{id}_secret_{}", random(25)),
            id: id.clone(),
            amount: new.amount,
            amount_capturable: 0,
            amount_received: 0,
            automatic_payment_methods: new.automatic_payment_methods,
            canceled_at: None,
            cancellation_reason: None,
            capture_method: new.capture_method.to_string(),
            created: unix_now(),
            currency: new.currency,
            description: new.description,
            last_payment_error: None,
            latest_charge: None,
            metadata: new.metadata,
            next_action: None,
            status: if new.payment_method.is_some() {
                IntentStatus::RequiresConfirmation
            } else {
                IntentStatus::RequiresPaymentMethod
            },
            payment_method: new.payment_method,
            payment_method_types: vec!["card".into()],
            return_url: new.return_url,
        };
        st.insert(intent);
        let mut events = vec!["payment_intent.created"];
        if new.confirm {
            let confirmed = st.confirm(&id, None, &public_base);
            events.extend(confirmed.events);
            return Outcome {
                events,
                intent: Some(id),
                ..confirmed
            };
        }
        Outcome::ok(&st.entry(&id).expect("just inserted").intent, events)
    })
}

async fn retrieve_intent(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let mut call = match read(req).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let client_secret = match call.params.string("client_secret").and_then(|s| {
        call.params.expand()?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = finish(&mut call) {
        return e.into_response();
    }
    match fake.intent(&id) {
        Some(pi)
            if call.caller == Caller::Secret
                || client_secret.as_deref() == Some(pi.client_secret.as_str()) =>
        {
            Json(pi.to_json()).into_response()
        }
        _ => ApiError::resource_missing("payment_intent", &id, "intent").into_response(),
    }
}

fn created_filter(p: &mut Params) -> Result<Box<dyn Fn(i64) -> bool + Send>, ApiError> {
    if !p.has("created") {
        return Ok(Box::new(|_| true));
    }
    // `created=<t>` or `created[gte]=<t>` and friends.
    if let Ok(Some(exact)) = p.clone().integer("created") {
        p.integer("created")?;
        return Ok(Box::new(move |t| t == exact));
    }
    let mut range = p
        .hash("created")?
        .ok_or_else(|| ApiError::invalid("Invalid created").param("created"))?;
    let gt = range.integer("gt")?;
    let gte = range.integer("gte")?;
    let lt = range.integer("lt")?;
    let lte = range.integer("lte")?;
    range.finish()?;
    Ok(Box::new(move |t| {
        gt.is_none_or(|v| t > v)
            && gte.is_none_or(|v| t >= v)
            && lt.is_none_or(|v| t < v)
            && lte.is_none_or(|v| t <= v)
    }))
}

/// Stripe's cursor pagination over a newest-first list.
fn paginate(p: &mut Params, items: Vec<(String, Value)>, url: &str) -> Result<Value, ApiError> {
    let limit = p.integer("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("Invalid limit: must be between 1 and 100").param("limit"));
    }
    let starting_after = p.string("starting_after")?;
    let ending_before = p.string("ending_before")?;
    let position = |cursor: &str, param: &str| {
        items
            .iter()
            .position(|(id, _)| id == cursor)
            .ok_or_else(|| ApiError::resource_missing("object", cursor, param))
    };
    let (from, to) = match (&starting_after, &ending_before) {
        (Some(c), None) => (position(c, "starting_after")? + 1, items.len()),
        (None, Some(c)) => (0, position(c, "ending_before")?),
        (None, None) => (0, items.len()),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
            .code("parameters_exclusive"))
        }
    };
    let window = &items[from..to];
    let limit = limit as usize;
    let page: Vec<Value> = if ending_before.is_some() {
        window
            .iter()
            .rev()
            .take(limit)
            .rev()
            .map(|(_, v)| v.clone())
            .collect()
    } else {
        window.iter().take(limit).map(|(_, v)| v.clone()).collect()
    };
    Ok(json!({ "object": "list", "data": page, "has_more": window.len() > limit, "url": url }))
}

async fn list_intents(AxumState(fake): AxumState<FakeStripe>, req: Request) -> Response {
    let result = async {
        let mut call = read(req).await?;
        let created = created_filter(&mut call.params)?;
        call.params.string("customer")?;
        call.params.expand()?;
        let items: Vec<(String, Value)> = fake
            .intents()
            .into_iter()
            .rev()
            .filter(|pi| created(pi.created))
            .map(|pi| (pi.id.clone(), pi.to_json()))
            .collect();
        let page = paginate(&mut call.params, items, "/v1/payment_intents")?;
        finish(&mut call)?;
        Ok::<_, ApiError>(page)
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// One clause of a search query.
#[derive(Debug, PartialEq, Eq)]
enum Clause {
    Metadata(String, String),
    Field(String, String),
}

/// Reads a quoted value (`'…'` or `"…"`, backslash escapes) at the start of `s`.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    let (_, quote) = chars.next().filter(|(_, c)| *c == '\'' || *c == '"')?;
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some((out, &s[i + 1..]));
        } else {
            out.push(c);
        }
    }
    None
}

/// Parses the subset of Stripe's search language the fake knows: clauses joined by `AND`,
/// each `metadata['key']:'value'` or `status|currency|amount:'value'`.
fn parse_query(query: &str) -> Option<Vec<Clause>> {
    let mut clauses = Vec::new();
    let mut rest = query.trim();
    loop {
        let clause;
        if let Some(after) = rest.strip_prefix("metadata[") {
            let (key, after) = quoted(after)?;
            let after = after.strip_prefix("]:")?;
            let (value, after) = quoted(after)?;
            clause = Clause::Metadata(key, value);
            rest = after;
        } else {
            let colon = rest.find(':')?;
            let field = &rest[..colon];
            if !["status", "currency", "amount"].contains(&field) {
                return None;
            }
            let after = &rest[colon + 1..];
            let (value, after) = match quoted(after) {
                Some(q) => q,
                None => {
                    let end = after.find(' ').unwrap_or(after.len());
                    (after[..end].to_string(), &after[end..])
                }
            };
            clause = Clause::Field(field.to_string(), value);
            rest = after;
        }
        clauses.push(clause);
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(clauses);
        }
        rest = rest.strip_prefix("AND ")?.trim_start();
    }
}

fn matches(pi: &PaymentIntent, clause: &Clause) -> bool {
    match clause {
        Clause::Metadata(k, v) => pi.metadata.get(k) == Some(v),
        Clause::Field(f, v) => match f.as_str() {
            "status" => pi.status.as_str() == v,
            "currency" => pi.currency == *v,
            "amount" => pi.amount.to_string() == *v,
            _ => false,
        },
    }
}

async fn search_intents(AxumState(fake): AxumState<FakeStripe>, req: Request) -> Response {
    let result = async {
        let mut call = read(req).await?;
        let query = call.params.required_string("query")?;
        let limit = call.params.integer("limit")?.unwrap_or(10);
        call.params.string("page")?;
        call.params.expand()?;
        finish(&mut call)?;
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid("Invalid limit: must be between 1 and 100").param("limit"));
        }
        let clauses = parse_query(&query).ok_or_else(|| {
            ApiError::invalid(format!("Invalid search query: {query}. The fake Stripe knows metadata['key']:'value', status, currency and amount clauses joined by AND."))
                .param("query")
        })?;
        // Newest first. Unlike Stripe's search, the fake's is immediately consistent.
        let data: Vec<Value> = fake
            .intents()
            .into_iter()
            .rev()
            .filter(|pi| clauses.iter().all(|c| matches(pi, c)))
            .take(limit as usize)
            .map(|pi| pi.to_json())
            .collect();
        Ok(json!({
            "object": "search_result",
            "data": data,
            "has_more": false,
            "next_page": null,
            "url": "/v1/payment_intents/search",
        }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

struct Update {
    amount: Option<i64>,
    currency: Option<String>,
    metadata: Option<std::collections::BTreeMap<String, Option<String>>>,
    description: Option<String>,
    payment_method: Option<String>,
    capture_method: Option<&'static str>,
}

async fn update_intent(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let parsed = async {
        let mut call = read(req).await?;
        let p = &mut call.params;
        let update = Update {
            amount: p.integer("amount")?,
            currency: p.string("currency")?,
            metadata: p.metadata()?,
            description: p.string("description")?,
            payment_method: p.string("payment_method")?.filter(|s| !s.is_empty()),
            capture_method: p.enumeration(
                "capture_method",
                &["automatic", "automatic_async", "manual"],
            )?,
        };
        p.string("receipt_email")?;
        p.expand()?;
        finish(&mut call)?;
        if let Some(c) = &update.currency {
            check_currency(c)?;
        }
        Ok::<_, ApiError>((call, update))
    }
    .await;
    let (call, update) = match parsed {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let endpoint = format!("POST /v1/payment_intents/{id}");
    fake.execute(&call, &endpoint, move |st| {
        let Some(entry) = st.entry_mut(&id) else {
            return missing_intent(&id);
        };
        let pi = &mut entry.intent;
        let changes_payment = update.amount.is_some()
            || update.currency.is_some()
            || update.payment_method.is_some()
            || update.capture_method.is_some();
        if changes_payment && !pi.status.is_unconfirmed() {
            return Outcome::err(unexpected_state(
                pi,
                "This PaymentIntent's amount, currency, payment_method or capture_method could not be updated",
                "You may only update them on a PaymentIntent with one of the following statuses: requires_payment_method, requires_confirmation, requires_action.",
            ));
        }
        let currency_code = update.currency.clone().unwrap_or_else(|| pi.currency.clone());
        let currency = match check_currency(&currency_code) {
            Ok(c) => c,
            Err(e) => return Outcome::err(e),
        };
        let amount = update.amount.unwrap_or(pi.amount);
        if update.amount.is_some() || update.currency.is_some() {
            if let Err(e) = check_amount("amount", amount, currency) {
                return Outcome::err(e);
            }
        }
        pi.amount = amount;
        pi.currency = currency_code;
        if let Some(changes) = update.metadata {
            merge_metadata(&mut pi.metadata, changes);
        }
        if let Some(d) = update.description {
            pi.description = (!d.is_empty()).then_some(d);
        }
        if let Some(cm) = update.capture_method {
            pi.capture_method = cm.to_string();
        }
        if let Some(pm) = update.payment_method {
            pi.payment_method = Some(pm);
        }
        // A changed payment needs a new confirmation.
        if changes_payment {
            pi.next_action = None;
            pi.status = if pi.payment_method.is_some() {
                IntentStatus::RequiresConfirmation
            } else {
                IntentStatus::RequiresPaymentMethod
            };
        }
        Outcome::ok(pi, Vec::new())
    })
}

async fn confirm_intent(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let parsed = async {
        let mut call = read(req).await?;
        let p = &mut call.params;
        let payment_method = p.string("payment_method")?.filter(|s| !s.is_empty());
        let return_url = p.string("return_url")?.filter(|s| !s.is_empty());
        let client_secret = p.string("client_secret")?;
        p.expand()?;
        finish(&mut call)?;
        if let Some(url) = &return_url {
            check_url("return_url", url)?;
        }
        Ok::<_, ApiError>((call, payment_method, return_url, client_secret))
    }
    .await;
    let (call, payment_method, return_url, client_secret) = match parsed {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let public_base = fake.public_base().to_string();
    let endpoint = format!("POST /v1/payment_intents/{id}/confirm");
    let caller = call.caller;
    fake.execute(&call, &endpoint, move |st| {
        let Some(entry) = st.entry_mut(&id) else {
            return missing_intent(&id);
        };
        // Stripe.js confirms with the publishable key and proves itself with the secret.
        if caller == Caller::Publishable
            && client_secret.as_deref() != Some(entry.intent.client_secret.as_str())
        {
            return missing_intent(&id);
        }
        if return_url.is_some() {
            entry.intent.return_url = return_url;
        }
        st.confirm(&id, payment_method, &public_base)
    })
}

async fn capture_intent(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let parsed = async {
        let mut call = read(req).await?;
        let amount_to_capture = call.params.integer("amount_to_capture")?;
        let metadata = call.params.metadata()?;
        call.params.expand()?;
        finish(&mut call)?;
        Ok::<_, ApiError>((call, amount_to_capture, metadata))
    }
    .await;
    let (call, amount_to_capture, metadata) = match parsed {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let endpoint = format!("POST /v1/payment_intents/{id}/capture");
    let key = call.key.clone();
    fake.execute(&call, &endpoint, move |st| {
        let Some(entry) = st.entry_mut(&id) else {
            return missing_intent(&id);
        };
        let pi = &mut entry.intent;
        if pi.status != IntentStatus::RequiresCapture {
            return Outcome::err(unexpected_state(
                pi,
                "This PaymentIntent could not be captured",
                "Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
            ));
        }
        let amount = amount_to_capture.unwrap_or(pi.amount_capturable);
        let currency = match check_currency(&pi.currency) {
            Ok(c) => c,
            Err(e) => return Outcome::err(e),
        };
        if let Err(e) = check_amount("amount_to_capture", amount, currency) {
            return Outcome::err(e);
        }
        if amount > pi.amount_capturable {
            return Outcome::err(
                ApiError::invalid(format!(
                    "The amount_to_capture ({amount}) must be less than or equal to the PaymentIntent's amount_capturable ({}).",
                    pi.amount_capturable
                ))
                .code("amount_too_large")
                .param("amount_to_capture"),
            );
        }
        if let Some(changes) = metadata {
            merge_metadata(&mut pi.metadata, changes);
        }
        // Capturing less releases the rest; a PaymentIntent is captured once.
        pi.status = IntentStatus::Succeeded;
        pi.amount_received = amount;
        pi.amount_capturable = 0;
        let record = super::CaptureRecord {
            payment_intent: pi.id.clone(),
            charge: pi.latest_charge.clone(),
            amount,
            idempotency_key: key,
        };
        let outcome = Outcome::ok(pi, vec!["payment_intent.succeeded"]);
        entry.captures.push(record);
        outcome
    })
}

async fn cancel_intent(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let parsed = async {
        let mut call = read(req).await?;
        let reason = call.params.enumeration(
            "cancellation_reason",
            &[
                "abandoned",
                "duplicate",
                "fraudulent",
                "requested_by_customer",
            ],
        )?;
        call.params.expand()?;
        finish(&mut call)?;
        Ok::<_, ApiError>((call, reason))
    }
    .await;
    let (call, reason) = match parsed {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let endpoint = format!("POST /v1/payment_intents/{id}/cancel");
    fake.execute(&call, &endpoint, move |st| {
        let Some(entry) = st.entry_mut(&id) else {
            return missing_intent(&id);
        };
        let pi = &mut entry.intent;
        let cancellable = pi.status.is_unconfirmed()
            || matches!(pi.status, IntentStatus::RequiresCapture | IntentStatus::Processing);
        if !cancellable {
            return Outcome::err(unexpected_state(
                pi,
                "You cannot cancel this PaymentIntent",
                "Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.",
            ));
        }
        pi.status = IntentStatus::Canceled;
        pi.canceled_at = Some(unix_now());
        pi.cancellation_reason = reason.map(str::to_string);
        pi.amount_capturable = 0;
        pi.next_action = None;
        Outcome::ok(pi, vec!["payment_intent.canceled"])
    })
}

// ---------------------------------------------------------------------------------------
// Webhook endpoints and events
// ---------------------------------------------------------------------------------------

async fn create_endpoint(AxumState(fake): AxumState<FakeStripe>, req: Request) -> Response {
    let parsed = async {
        let mut call = read(req).await?;
        let p = &mut call.params;
        let url = p.required_string("url")?;
        let enabled_events = p
            .list("enabled_events")?
            .filter(|l| !l.is_empty())
            .ok_or_else(|| ApiError::missing_parameter("enabled_events"))?;
        let api_version = p.string("api_version")?.filter(|v| !v.is_empty());
        let description = p.string("description")?.filter(|d| !d.is_empty());
        let metadata = p.metadata()?.unwrap_or_default();
        let connect = p.boolean("connect")?.unwrap_or(false);
        p.expand()?;
        finish(&mut call)?;
        check_url("url", &url)?;
        for (i, e) in enabled_events.iter().enumerate() {
            if !EVENT_TYPES.contains(&e.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Invalid enabled_events[{i}]: {e:?} is not an event type the fake Stripe knows"
                ))
                .param(format!("enabled_events[{i}]")));
            }
        }
        if let Some(v) = &api_version {
            if !crate::config::is_api_version(v) {
                return Err(
                    ApiError::invalid(format!("Invalid api_version: {v}")).param("api_version")
                );
            }
        }
        if connect {
            return Err(
                ApiError::invalid("The fake Stripe has no Connect accounts.").param("connect"),
            );
        }
        let endpoint = Endpoint {
            id: new_id("we"),
            url,
            enabled_events,
            api_version,
            description,
            metadata: metadata
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            created: unix_now(),
        };
        Ok::<_, ApiError>((call, endpoint))
    }
    .await;
    let (call, endpoint) = match parsed {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let secret = fake.inner.config.webhook_secret.expose().to_string();
    fake.execute(&call, "POST /v1/webhook_endpoints", move |st| {
        let body = endpoint.to_json(Some(&secret));
        st.endpoints.push(endpoint);
        Outcome {
            status: 200,
            body,
            events: Vec::new(),
            intent: None,
        }
    })
}

async fn list_endpoints(AxumState(fake): AxumState<FakeStripe>, req: Request) -> Response {
    let result = async {
        let mut call = read(req).await?;
        call.params.expand()?;
        let items: Vec<(String, Value)> = fake
            .inner
            .state
            .lock()
            .endpoints
            .iter()
            .rev()
            .map(|e| (e.id.clone(), e.to_json(None)))
            .collect();
        let page = paginate(&mut call.params, items, "/v1/webhook_endpoints")?;
        finish(&mut call)?;
        Ok::<_, ApiError>(page)
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn no_endpoint(id: &str) -> Response {
    ApiError::resource_missing("webhook endpoint", id, "id").into_response()
}

async fn retrieve_endpoint(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(e) = read(req).await.and_then(|mut c| {
        c.params.expand()?;
        finish(&mut c)
    }) {
        return e.into_response();
    }
    let st = fake.inner.state.lock();
    match st.endpoints.iter().find(|e| e.id == id) {
        Some(e) => Json(e.to_json(None)).into_response(),
        None => no_endpoint(&id),
    }
}

async fn delete_endpoint(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(e) = read(req).await.and_then(|mut c| finish(&mut c)) {
        return e.into_response();
    }
    let mut st = fake.inner.state.lock();
    let before = st.endpoints.len();
    st.endpoints.retain(|e| e.id != id);
    if st.endpoints.len() == before {
        return no_endpoint(&id);
    }
    Json(json!({ "id": id, "object": "webhook_endpoint", "deleted": true })).into_response()
}

fn event_json(payload: &str) -> Value {
    serde_json::from_str(payload).unwrap_or(Value::Null)
}

async fn list_events(AxumState(fake): AxumState<FakeStripe>, req: Request) -> Response {
    let result = async {
        let mut call = read(req).await?;
        let created = created_filter(&mut call.params)?;
        let event_type = call.params.string("type")?;
        let types = call.params.list("types")?;
        call.params.boolean("delivery_success")?;
        call.params.expand()?;
        let items: Vec<(String, Value)> = fake
            .events()
            .into_iter()
            .rev()
            .filter(|e| event_type.as_ref().is_none_or(|t| *t == e.event_type))
            .filter(|e| types.as_ref().is_none_or(|ts| ts.contains(&e.event_type)))
            .map(|e| (e.id.clone(), event_json(&e.payload)))
            .filter(|(_, v)| created(v["created"].as_i64().unwrap_or(0)))
            .collect();
        let page = paginate(&mut call.params, items, "/v1/events")?;
        finish(&mut call)?;
        Ok::<_, ApiError>(page)
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn retrieve_event(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Err(e) = read(req).await.and_then(|mut c| {
        c.params.expand()?;
        finish(&mut c)
    }) {
        return e.into_response();
    }
    match fake.events().into_iter().find(|e| e.id == id) {
        Some(e) => Json(event_json(&e.payload)).into_response(),
        None => ApiError::resource_missing("event", &id, "id").into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Test controls
// ---------------------------------------------------------------------------------------

async fn get_faults(AxumState(fake): AxumState<FakeStripe>) -> Json<super::Faults> {
    Json(fake.faults())
}

async fn put_faults(AxumState(fake): AxumState<FakeStripe>, body: Bytes) -> Response {
    match serde_json::from_slice::<super::Faults>(&body) {
        Ok(faults) => {
            fake.set_faults(faults);
            Json(faults).into_response()
        }
        Err(e) => ApiError::invalid(format!("invalid faults: {e}")).into_response(),
    }
}

async fn test_requests(AxumState(fake): AxumState<FakeStripe>) -> Json<Value> {
    Json(json!({ "object": "list", "data": fake.requests() }))
}

async fn test_intents(AxumState(fake): AxumState<FakeStripe>) -> Json<Value> {
    let st = fake.inner.state.lock();
    let data: Vec<Value> = st
        .intents
        .iter()
        .map(|e| {
            let mut v = e.intent.to_json();
            v["captures"] = json!(e.captures);
            v
        })
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn test_deliveries(AxumState(fake): AxumState<FakeStripe>) -> Json<Value> {
    Json(json!({ "object": "list", "data": fake.deliveries() }))
}

async fn test_events(AxumState(fake): AxumState<FakeStripe>) -> Json<Value> {
    let data: Vec<Value> = fake
        .events()
        .into_iter()
        .map(|e| json!({ "id": e.id, "type": e.event_type, "payment_intent": e.payment_intent, "payload": e.payload }))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

async fn test_redeliver(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
) -> Response {
    match fake.redeliver(&id) {
        Some(n) => Json(json!({ "id": id, "deliveries": n })).into_response(),
        None => ApiError::resource_missing("event", &id, "id").into_response(),
    }
}

/// The body of the customer test controls. Unknown fields are refused, so that a test
/// that misspells a trigger fails loudly instead of paying for the wrong reason.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerAction {
    #[serde(default)]
    payment_method: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
}

fn customer_action(body: &Bytes) -> Result<(CustomerAction, bool), ApiError> {
    let action: CustomerAction = if body.iter().all(u8::is_ascii_whitespace) {
        CustomerAction::default()
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid body: {e}")))?
    };
    let deliver = match action.webhook.as_deref() {
        None | Some("send") => true,
        Some("skip") => false,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "webhook must be \"send\" or \"skip\", got {other:?}"
            )))
        }
    };
    Ok((action, deliver))
}

fn customer_reply(
    result: Result<(Outcome, PaymentIntent), super::FakeError>,
    id: &str,
) -> Response {
    match result {
        Ok((outcome, _)) => json_response(outcome.status, outcome.body),
        Err(_) => ApiError::resource_missing("payment_intent", id, "intent").into_response(),
    }
}

async fn test_confirm(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    _headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (action, deliver) = match customer_action(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if action.outcome.is_some() {
        return ApiError::invalid("outcome belongs to /authenticate").into_response();
    }
    let pm = action
        .payment_method
        .unwrap_or_else(|| super::PM_VISA.to_string());
    let public_base = fake.public_base().to_string();
    let result = fake.act_as_customer(&id, deliver, |st| st.confirm(&id, Some(pm), &public_base));
    customer_reply(result, &id)
}

async fn test_authenticate(
    AxumState(fake): AxumState<FakeStripe>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (action, deliver) = match customer_action(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let succeed = match action.outcome.as_deref() {
        None | Some("succeed") => true,
        Some("fail") => false,
        Some(other) => {
            return ApiError::invalid(format!(
                "outcome must be \"succeed\" or \"fail\", got {other:?}"
            ))
            .into_response()
        }
    };
    if action.payment_method.is_some() {
        return ApiError::invalid("payment_method belongs to /confirm").into_response();
    }
    let result = fake.act_as_customer(&id, deliver, |st| st.authenticate(&id, succeed));
    customer_reply(result, &id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_queries_parse_metadata_and_field_clauses() {
        assert_eq!(
            parse_query("metadata['checkout_key']:'a\\'b'").unwrap(),
            vec![Clause::Metadata("checkout_key".into(), "a'b".into())]
        );
        assert_eq!(
            parse_query("metadata[\"cart_id\"]:\"c\" AND status:'requires_capture' AND amount:500")
                .unwrap(),
            vec![
                Clause::Metadata("cart_id".into(), "c".into()),
                Clause::Field("status".into(), "requires_capture".into()),
                Clause::Field("amount".into(), "500".into()),
            ]
        );
        for bad in [
            "",
            "metadata['x']",
            "foo:'x'",
            "status:'x' OR status:'y'",
            "metadata[x]:'y'",
        ] {
            assert!(parse_query(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_publishable_key_may_only_retrieve_and_confirm() {
        assert!(publishable_may(&Method::GET, "/payment_intents/pi_1"));
        assert!(publishable_may(
            &Method::POST,
            "/payment_intents/pi_1/confirm"
        ));
        assert!(!publishable_may(&Method::GET, "/payment_intents/search"));
        assert!(!publishable_may(&Method::POST, "/payment_intents"));
        assert!(!publishable_may(
            &Method::POST,
            "/payment_intents/pi_1/capture"
        ));
        assert!(!publishable_may(&Method::GET, "/events"));
    }
}
