//! The fake's API: Kustom's checkout and Order Management endpoints, and test controls.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use fake_support::faults::take;
use fake_support::replay::Replay;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::rules::check_order;
use super::{
    hosted, now_rfc3339_ish, CompleteOptions, FakeCapture, FakeError, FakeKustom, FakeOrder,
    PushSchedule, Saved, State as FakeState,
};
use crate::client::{base64, IDEMPOTENCY_HEADER};

/// Fields a caller cannot set: Kustom decides them.
const READ_ONLY: &[&str] = &[
    "order_id",
    "status",
    "html_snippet",
    "started_at",
    "completed_at",
    "last_modified_at",
];

/// Kustom's error answer.
#[derive(Debug)]
pub(super) struct KError {
    status: StatusCode,
    code: &'static str,
    messages: Vec<String>,
}

impl KError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            messages: vec![message.into()],
        }
    }
}

impl IntoResponse for KError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({
                "error_code": self.code,
                "error_messages": self.messages,
                "correlation_id": uuid::Uuid::new_v4().to_string(),
            })),
        )
            .into_response()
    }
}

type Answer = Result<Response, KError>;

pub(super) fn router(fake: FakeKustom) -> Router {
    Router::new()
        .route("/checkout/v3/orders", post(create))
        .route("/checkout/v3/orders/{id}", get(read).post(update))
        .route("/checkout/v3/orders/{id}/abort", post(abort))
        .route("/ordermanagement/v1/orders/{id}", get(om_read))
        .route(
            "/ordermanagement/v1/orders/{id}/acknowledge",
            post(acknowledge),
        )
        .route(
            "/ordermanagement/v1/orders/{id}/captures",
            post(capture).get(captures),
        )
        .route("/ordermanagement/v1/orders/{id}/cancel", post(cancel))
        .route("/ordermanagement/v1/orders/{id}/refunds", post(refund))
        .route("/_test/orders", get(test_orders))
        .route("/_test/orders/{id}", get(test_order))
        .route("/_test/orders/{id}/complete", post(test_complete))
        .route("/_test/push-schedule", get(get_schedule).put(put_schedule))
        .route("/_test/requests", get(test_requests))
        .route("/_test/faults", put(put_faults))
        .with_state(fake)
}

/// Checks the credentials, counts the call, and injects a queued failure into API calls.
fn gate(fake: &FakeKustom, headers: &HeaderMap, route: &str, api: bool) -> Result<(), KError> {
    let cfg = &fake.inner.config;
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let raw = format!("Basic {}", cfg.api_key);
    let classic = cfg.username.as_ref().map(|u| {
        format!(
            "Basic {}",
            base64(format!("{u}:{}", cfg.api_key).as_bytes())
        )
    });
    if given != raw && Some(given) != classic.as_deref() {
        return Err(KError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Invalid credentials",
        ));
    }
    let mut st = fake.inner.state.lock();
    *st.requests.entry(route.to_string()).or_default() += 1;
    if api && take(&mut st.fail_next) {
        return Err(KError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARY_UNAVAILABLE",
            "Service temporarily unavailable",
        ));
    }
    Ok(())
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, KError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(KError::new(
            StatusCode::BAD_REQUEST,
            "BAD_VALUE",
            "Bad value: body",
        )),
    }
}

fn bad_values(messages: Vec<String>) -> KError {
    KError {
        status: StatusCode::BAD_REQUEST,
        code: "BAD_VALUE",
        messages,
    }
}

fn no_checkout_order(id: &str) -> KError {
    KError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Order {id} not found"),
    )
}

fn no_om_order(id: &str) -> KError {
    KError::new(
        StatusCode::NOT_FOUND,
        "NO_SUCH_ORDER",
        format!("Order {id} not found"),
    )
}

fn read_only(id: &str) -> KError {
    KError::new(
        StatusCode::FORBIDDEN,
        "READ_ONLY_ORDER",
        format!("Order {id} can no longer be changed"),
    )
}

async fn create(State(fake): State<FakeKustom>, headers: HeaderMap, body: Bytes) -> Answer {
    gate(&fake, &headers, "POST /checkout/v3/orders", true)?;
    let mut order = json_object(&body)?;
    for key in READ_ONLY {
        order.remove(*key);
    }
    let problems = check_order(&order);
    if !problems.is_empty() {
        return Err(bad_values(problems));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let base = fake.inner.config.public_base.clone();
    let mut st = fake.inner.state.lock();
    let stamp = now_rfc3339_ish(st.started);
    order.insert("order_id".into(), json!(id));
    order.insert("status".into(), json!("checkout_incomplete"));
    order.insert(
        "html_snippet".into(),
        json!(hosted::snippet(&base, &id, false)),
    );
    order.insert("started_at".into(), json!(stamp));
    order.insert("last_modified_at".into(), json!(stamp));
    let view = Value::Object(order.clone());
    st.orders.insert(
        id.clone(),
        FakeOrder {
            checkout: order,
            aborted: false,
            om: None,
            pushes: Vec::new(),
            pushes_gave_up: false,
            pushes_finished: false,
            validations: Vec::new(),
            updates: 0,
        },
    );
    Ok((
        StatusCode::CREATED,
        [(
            axum::http::header::LOCATION,
            format!("{base}/checkout/v3/orders/{id}"),
        )],
        Json(view),
    )
        .into_response())
}

async fn read(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(&fake, &headers, "GET /checkout/v3/orders/{id}", true)?;
    let st = fake.inner.state.lock();
    let order = st.order(&id).ok_or_else(|| no_checkout_order(&id))?;
    Ok(Json(Value::Object(order.checkout.clone())).into_response())
}

async fn update(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    gate(&fake, &headers, "POST /checkout/v3/orders/{id}", true)?;
    let changes = json_object(&body)?;
    let mut st = fake.inner.state.lock();
    let stamp = now_rfc3339_ish(st.started);
    let order = st.order_mut(&id).ok_or_else(|| no_checkout_order(&id))?;
    if order.aborted || order.status() != "checkout_incomplete" {
        return Err(read_only(&id));
    }
    // A partial update: what is sent replaces what was there, and the result must pass
    // the same rules as a new order.
    let mut merged = order.checkout.clone();
    for (k, v) in changes {
        if !READ_ONLY.contains(&k.as_str()) {
            merged.insert(k, v);
        }
    }
    let problems = check_order(&merged);
    if !problems.is_empty() {
        return Err(bad_values(problems));
    }
    merged.insert("last_modified_at".into(), json!(stamp));
    order.checkout = merged;
    order.updates += 1;
    Ok(Json(Value::Object(order.checkout.clone())).into_response())
}

async fn abort(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(&fake, &headers, "POST /checkout/v3/orders/{id}/abort", true)?;
    let mut st = fake.inner.state.lock();
    let order = st.order_mut(&id).ok_or_else(|| no_checkout_order(&id))?;
    if order.status() != "checkout_incomplete" {
        return Err(read_only(&id));
    }
    order.aborted = true;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn om_view(order: &FakeOrder) -> Option<Value> {
    let om = order.om.as_ref()?;
    let c = &order.checkout;
    let open = matches!(om.status.as_str(), "AUTHORIZED" | "PART_CAPTURED");
    Some(json!({
        "order_id": order.order_id(),
        "status": om.status,
        "fraud_status": om.fraud_status,
        "order_amount": om.order_amount,
        "original_order_amount": c.get("order_amount"),
        "captured_amount": om.captured_amount,
        "refunded_amount": om.refunded_amount,
        "remaining_authorized_amount": if open { om.order_amount - om.captured_amount } else { 0 },
        "purchase_currency": c.get("purchase_currency"),
        "purchase_country": c.get("purchase_country"),
        "locale": c.get("locale"),
        "merchant_reference1": c.get("merchant_reference1"),
        "merchant_reference2": c.get("merchant_reference2"),
        "order_lines": c.get("order_lines"),
        "captures": om.captures,
    }))
}

async fn om_read(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(&fake, &headers, "GET /ordermanagement/v1/orders/{id}", true)?;
    let st = fake.inner.state.lock();
    let view = st
        .order(&id)
        .and_then(om_view)
        .ok_or_else(|| no_om_order(&id))?;
    Ok(Json(view).into_response())
}

async fn acknowledge(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(
        &fake,
        &headers,
        "POST /ordermanagement/v1/orders/{id}/acknowledge",
        true,
    )?;
    let mut st = fake.inner.state.lock();
    let om = st
        .order_mut(&id)
        .and_then(|o| o.om.as_mut())
        .ok_or_else(|| no_om_order(&id))?;
    // Acknowledging twice is harmless and answered the same.
    om.acknowledged = true;
    om.acknowledge_calls += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|k| !k.is_empty())
}

fn render(saved: &Saved) -> Response {
    let mut headers = HeaderMap::new();
    for (k, v) in &saved.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            headers.insert(k, v);
        }
    }
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    match &saved.body {
        Some(b) => (status, headers, Json(b.clone())).into_response(),
        None => (status, headers).into_response(),
    }
}

/// Runs an Order Management change once per idempotency key: a repeat with the same key
/// gets the first answer back whatever it asks for, since Kustom disregards the input of
/// a repeated key.
fn once(
    st: &mut FakeState,
    id: &str,
    key: Option<String>,
    act: impl FnOnce(&mut FakeState) -> Result<Saved, KError>,
) -> Answer {
    let key = key.map(|k| (id.to_string(), k));
    if let Some(key) = &key {
        if let Replay::Same(saved) = st.idempotency.check(key, &()) {
            return Ok(render(saved));
        }
    }
    let saved = act(st)?;
    if let Some(key) = key {
        st.idempotency.save(key, (), saved.clone());
    }
    Ok(render(&saved))
}

#[derive(Deserialize)]
struct CaptureBody {
    captured_amount: Value,
}

async fn capture(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    gate(
        &fake,
        &headers,
        "POST /ordermanagement/v1/orders/{id}/captures",
        true,
    )?;
    let key = idempotency_key(&headers);
    let base = fake.inner.config.public_base.clone();
    let mut st = fake.inner.state.lock();
    if st.order(&id).and_then(|o| o.om.as_ref()).is_none() {
        return Err(no_om_order(&id));
    }
    let amount = serde_json::from_slice::<CaptureBody>(&body)
        .ok()
        .and_then(|b| match b.captured_amount {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            _ => None,
        })
        .filter(|a| *a >= 1)
        .ok_or_else(|| bad_values(vec!["Bad value: captured_amount".into()]))?;
    once(&mut st, &id, key, |st| {
        let om = st
            .order_mut(&id)
            .and_then(|o| o.om.as_mut())
            .ok_or_else(|| no_om_order(&id))?;
        let remaining = om.order_amount - om.captured_amount;
        if !matches!(om.status.as_str(), "AUTHORIZED" | "PART_CAPTURED") || amount > remaining {
            return Err(KError::new(
                StatusCode::FORBIDDEN,
                "CAPTURE_NOT_ALLOWED",
                format!(
                    "Capture of {amount} not allowed: {} with {remaining} remaining",
                    om.status
                ),
            ));
        }
        let capture_id = uuid::Uuid::new_v4().to_string();
        om.captured_amount += amount;
        om.status = if om.captured_amount == om.order_amount {
            "CAPTURED".into()
        } else {
            "PART_CAPTURED".into()
        };
        // Capturing counts as acknowledging.
        om.acknowledged = true;
        om.captures.push(FakeCapture {
            capture_id: capture_id.clone(),
            captured_amount: amount,
        });
        Ok(Saved {
            status: 201,
            headers: vec![
                (
                    "location".into(),
                    format!("{base}/ordermanagement/v1/orders/{id}/captures/{capture_id}"),
                ),
                ("capture-id".into(), capture_id),
            ],
            body: None,
        })
    })
}

async fn captures(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(
        &fake,
        &headers,
        "GET /ordermanagement/v1/orders/{id}/captures",
        true,
    )?;
    let st = fake.inner.state.lock();
    let om = st
        .order(&id)
        .and_then(|o| o.om.as_ref())
        .ok_or_else(|| no_om_order(&id))?;
    Ok(Json(json!(om.captures)).into_response())
}

async fn cancel(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(
        &fake,
        &headers,
        "POST /ordermanagement/v1/orders/{id}/cancel",
        true,
    )?;
    let key = idempotency_key(&headers);
    let mut st = fake.inner.state.lock();
    if st.order(&id).and_then(|o| o.om.as_ref()).is_none() {
        return Err(no_om_order(&id));
    }
    once(&mut st, &id, key, |st| {
        let om = st
            .order_mut(&id)
            .and_then(|o| o.om.as_mut())
            .ok_or_else(|| no_om_order(&id))?;
        if om.status != "AUTHORIZED" || om.captured_amount > 0 {
            return Err(KError::new(
                StatusCode::FORBIDDEN,
                "NOT_ALLOWED",
                format!("Cancel not allowed: the order is {}", om.status),
            ));
        }
        om.status = "CANCELLED".into();
        Ok(Saved {
            status: 204,
            headers: Vec::new(),
            body: None,
        })
    })
}

#[derive(Deserialize)]
struct RefundBody {
    refunded_amount: Value,
}

async fn refund(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    gate(
        &fake,
        &headers,
        "POST /ordermanagement/v1/orders/{id}/refunds",
        true,
    )?;
    let key = idempotency_key(&headers);
    let mut st = fake.inner.state.lock();
    if st.order(&id).and_then(|o| o.om.as_ref()).is_none() {
        return Err(no_om_order(&id));
    }
    let amount = serde_json::from_slice::<RefundBody>(&body)
        .ok()
        .and_then(|b| match b.refunded_amount {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            _ => None,
        })
        .filter(|a| *a >= 1)
        .ok_or_else(|| bad_values(vec!["Bad value: refunded_amount".into()]))?;
    once(&mut st, &id, key, |st| {
        let om = st
            .order_mut(&id)
            .and_then(|o| o.om.as_mut())
            .ok_or_else(|| no_om_order(&id))?;
        if amount > om.captured_amount - om.refunded_amount {
            return Err(KError::new(
                StatusCode::FORBIDDEN,
                "REFUND_NOT_ALLOWED",
                "Refund exceeds the captured amount",
            ));
        }
        om.refunded_amount += amount;
        Ok(Saved {
            status: 201,
            headers: vec![("refund-id".into(), uuid::Uuid::new_v4().to_string())],
            body: None,
        })
    })
}

async fn test_orders(State(fake): State<FakeKustom>, headers: HeaderMap) -> Answer {
    gate(&fake, &headers, "GET /_test/orders", false)?;
    Ok(Json(json!(fake.orders())).into_response())
}

async fn test_order(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    gate(&fake, &headers, "GET /_test/orders/{id}", false)?;
    let order = fake.order(&id).ok_or_else(|| no_checkout_order(&id))?;
    Ok(Json(json!(order)).into_response())
}

async fn test_complete(
    State(fake): State<FakeKustom>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    gate(&fake, &headers, "POST /_test/orders/{id}/complete", false)?;
    let options: CompleteOptions = if body.iter().all(u8::is_ascii_whitespace) {
        CompleteOptions::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            KError::new(
                StatusCode::BAD_REQUEST,
                "BAD_VALUE",
                format!("options: {e}"),
            )
        })?
    };
    match fake.complete(&id, options).await {
        Ok(outcome) => Ok(Json(json!(outcome)).into_response()),
        Err(e @ FakeError::NotFound(_)) => Err(KError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            e.to_string(),
        )),
        Err(e @ FakeError::NotOpen(_)) => Err(KError::new(
            StatusCode::CONFLICT,
            "NOT_ALLOWED",
            e.to_string(),
        )),
    }
}

async fn get_schedule(State(fake): State<FakeKustom>, headers: HeaderMap) -> Answer {
    gate(&fake, &headers, "GET /_test/push-schedule", false)?;
    let schedule = fake.inner.state.lock().push_schedule.clone();
    Ok(Json(json!(schedule)).into_response())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScheduleBody {
    Scale { scale: u64 },
    Full(PushSchedule),
}

async fn put_schedule(State(fake): State<FakeKustom>, headers: HeaderMap, body: Bytes) -> Answer {
    gate(&fake, &headers, "PUT /_test/push-schedule", false)?;
    let schedule = match serde_json::from_slice::<ScheduleBody>(&body) {
        Ok(ScheduleBody::Scale { scale }) => PushSchedule::compressed(scale),
        Ok(ScheduleBody::Full(s)) => s,
        Err(e) => {
            return Err(KError::new(
                StatusCode::BAD_REQUEST,
                "BAD_VALUE",
                format!(
                    "a schedule is {{\"scale\":n}} or {{first_ms,retry_ms,every_ms,total_ms}}: {e}"
                ),
            ))
        }
    };
    fake.set_push_schedule(schedule.clone());
    Ok(Json(json!(schedule)).into_response())
}

async fn test_requests(State(fake): State<FakeKustom>, headers: HeaderMap) -> Answer {
    gate(&fake, &headers, "GET /_test/requests", false)?;
    Ok(
        Json(json!({ "by_route": fake.requests(), "order_reads": fake.order_reads() }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    fail_next: u32,
}

async fn put_faults(State(fake): State<FakeKustom>, headers: HeaderMap, body: Bytes) -> Answer {
    gate(&fake, &headers, "PUT /_test/faults", false)?;
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|e| KError::new(StatusCode::BAD_REQUEST, "BAD_VALUE", format!("faults: {e}")))?;
    fake.fail_next(faults.fail_next);
    Ok(StatusCode::NO_CONTENT.into_response())
}
