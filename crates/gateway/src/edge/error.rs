//! The one error type of the HTTP edge. Every failure leaves as
//! `{"errors":[{"code":"UPPER_SNAKE","message":"…","details":{…}}]}`, the shape Hantera's
//! storefront SDK recognises, with a status that says who must act: 4xx the caller,
//! 5xx/502 an upstream.
//!
//! Every error carries the request's id in `details.requestId`, so a caller can
//! quote it and the operator finds the cause in the log. Responses that did not come from
//! an `AppError` (axum's 404/405, an extractor's rejection, a timeout's 408, a provider
//! route's text error) are rewritten into the same shape by [`uniform_errors`].

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use psp_core::ports::StoreError;
use psp_core::{ProviderError, WebhookError};
use serde::Serialize;
use serde_json::json;

use crate::services::checkout::CheckoutError;
use crate::services::payments::ConfirmError;

tokio::task_local! {
    /// The id of the request being handled, for the errors rendered while it runs.
    static REQUEST_ID: Arc<str>;
}

/// The error body the storefront SDK recognises.
#[derive(Serialize)]
struct ErrorBody {
    errors: [ErrorItem; 1],
}

/// One entry of `errors`.
#[derive(Debug, Serialize)]
pub struct ErrorItem {
    code: &'static str,
    message: String,
    details: serde_json::Value,
}

/// An error answered to an HTTP caller. Internal details stay in the logs.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: serde_json::Value,
}

impl AppError {
    /// An error with a status, a code and a message for the caller.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 502: an upstream (Hantera, a PSP) failed. The message names which, never how
    /// (upstream error texts can carry identifiers that are not the caller's business).
    pub fn upstream(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, code, message)
    }

    /// 500: our own fault. The cause is logged, not answered.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error; see the gateway's logs",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl AppError {
    /// The entry of `errors`, with `request_id` added to the details.
    fn item(self, request_id: Option<&str>) -> ErrorItem {
        let mut details = self.details;
        if let (Some(id), Some(map)) = (request_id, details.as_object_mut()) {
            map.entry("requestId").or_insert_with(|| id.into());
        }
        ErrorItem {
            code: self.code,
            message: self.message,
            details,
        }
    }

    /// The entry of `errors` for the request being handled, for an answer that carries
    /// more than the error.
    pub fn into_item(self) -> ErrorItem {
        let id = REQUEST_ID.try_with(Arc::clone).ok();
        self.item(id.as_deref())
    }

    fn render(self, request_id: Option<&str>) -> Response {
        let status = self.status;
        let body = ErrorBody {
            errors: [self.item(request_id)],
        };
        (status, Json(body)).into_response()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let id = REQUEST_ID.try_with(Arc::clone).ok();
        self.render(id.as_deref())
    }
}

/// Middleware (inside the request-id layers): runs the request with its id known to
/// `AppError`, and rewrites any error response that is not JSON into the error shape.
/// A 4xx keeps its text as the message (it is the framework's own words about the
/// request, never an upstream's); a 5xx gets a fixed message.
pub async fn uniform_errors(req: Request, next: Next) -> Response {
    let id: Option<Arc<str>> = req
        .headers()
        .get(&super::app::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(Arc::from);
    let resp = match &id {
        Some(id) => REQUEST_ID.scope(id.clone(), next.run(req)).await,
        None => next.run(req).await,
    };
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let (code, fixed) = status_words(status);
    let text = if status.is_client_error() {
        axum::body::to_bytes(body, 1024)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .filter(|t| !t.trim().is_empty())
    } else {
        None
    };
    let rendered =
        AppError::new(status, code, text.unwrap_or_else(|| fixed.into())).render(id.as_deref());
    // The original headers stay (`Allow` of a 405, `Retry-After`), the body is ours.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, rendered.into_body())
}

/// The code and fixed message of an error response that came without ours.
fn status_words(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("BAD_REQUEST", "the request is malformed"),
        StatusCode::UNAUTHORIZED => ("UNAUTHORIZED", "authentication is required"),
        StatusCode::FORBIDDEN => ("FORBIDDEN", "not allowed"),
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("METHOD_NOT_ALLOWED", "this route does not take this method")
        }
        StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "PAYLOAD_TOO_LARGE",
            "the request body is larger than this gateway accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "the request body has the wrong content type",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("UNPROCESSABLE_ENTITY", "the request body is invalid"),
        StatusCode::TOO_MANY_REQUESTS => ("RATE_LIMITED", "too many requests; try again later"),
        StatusCode::BAD_GATEWAY => ("UPSTREAM_FAILED", "an upstream failed; try again"),
        StatusCode::SERVICE_UNAVAILABLE => ("UNAVAILABLE", "unavailable; try again"),
        StatusCode::GATEWAY_TIMEOUT => ("UPSTREAM_TIMEOUT", "an upstream did not answer in time"),
        s if s.is_client_error() => ("BAD_REQUEST", "the request cannot be served"),
        _ => ("INTERNAL", "internal error; see the gateway's logs"),
    }
}

// What the services' errors are to an HTTP caller. The services log and count upstream
// failures where they happen; here they only get their status, code and message, so a
// handler answers any of them with `?`.

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::internal(e)
    }
}

impl From<CheckoutError> for AppError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::CartNotFound(_) => AppError::not_found("CART_NOT_FOUND", e.to_string()),
            CheckoutError::Hantera(_) => {
                AppError::upstream("HANTERA_UNAVAILABLE", "Hantera did not answer; try again")
            }
            CheckoutError::CartNotOpen { state, .. } => {
                AppError::conflict("CART_NOT_OPEN", e.to_string())
                    .with_details(json!({ "cartState": state.as_str() }))
            }
            CheckoutError::NotPayable(_) | CheckoutError::ZeroTotal => {
                AppError::bad_request("CART_NOT_PAYABLE", e.to_string())
            }
            CheckoutError::AlreadyAuthorized => {
                AppError::conflict("PAYMENT_ALREADY_AUTHORIZED", e.to_string())
            }
            CheckoutError::Provider(e) => e.into(),
            CheckoutError::Store(e) => e.into(),
        }
    }
}

/// A failed PSP call, as a storefront is told it: a provider's own check of the request
/// as it words it, anything the PSP said never (it can name keys, accounts or internals).
impl From<ProviderError> for AppError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::BadRequest(m) => AppError::bad_request("BAD_CHECKOUT_REQUEST", m),
            ProviderError::Locked(_) => AppError::conflict(
                "PAYMENT_IN_PROGRESS",
                "the payment is in progress at the payment provider and can no longer change",
            ),
            ProviderError::Rejected { .. } => AppError::upstream(
                "PSP_REJECTED",
                "the payment provider refused to start the payment",
            ),
            _ => AppError::upstream(
                "PSP_UNAVAILABLE",
                "the payment provider did not answer; try again",
            ),
        }
    }
}

impl From<ConfirmError> for AppError {
    fn from(e: ConfirmError) -> Self {
        match e {
            ConfirmError::NoSession { .. } => {
                AppError::not_found("SESSION_NOT_FOUND", e.to_string())
            }
            ConfirmError::Deferred(_) => AppError::upstream(
                "COMPLETION_DEFERRED",
                "an upstream did not answer; the payment will be completed in the background",
            ),
            ConfirmError::Failed(_) => {
                AppError::upstream("COMPLETION_FAILED", "the payment could not be completed")
            }
            ConfirmError::Store(e) => e.into(),
        }
    }
}

/// A refused webhook delivery: 401 for a bad signature, 429 beyond a rate limit, 400 for
/// a body the PSP would not send.
impl From<WebhookError> for AppError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Signature(e) => {
                AppError::unauthorized("INVALID_SIGNATURE", format!("webhook not verified: {e}"))
            }
            WebhookError::RateLimited(m) => {
                AppError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", m)
            }
            WebhookError::Malformed(m) => AppError::bad_request("MALFORMED_PAYLOAD", m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn errors_render_in_the_storefront_sdk_shape() {
        let resp = AppError::conflict("CART_NOT_OPEN", "the cart is completed").into_response();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["errors"][0]["code"], "CART_NOT_OPEN");
        assert_eq!(v["errors"][0]["message"], "the cart is completed");
        assert!(v["errors"][0]["details"].is_object());
    }

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_carry_the_request_id_of_the_request_they_answer() {
        let resp = REQUEST_ID
            .scope(Arc::from("req-42"), async {
                AppError::upstream("PSP_UNAVAILABLE", "try again").into_response()
            })
            .await;
        let v = body_json(resp).await;
        assert_eq!(v["errors"][0]["details"]["requestId"], "req-42");
    }

    #[tokio::test]
    async fn framework_errors_are_rewritten_into_the_error_shape() {
        use axum::routing::post;
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route("/x", post(|| async { "ok" }))
            .route(
                "/boom",
                post(|| async { (StatusCode::BAD_GATEWAY, "upstream said: secret detail") }),
            )
            .layer(axum::middleware::from_fn(uniform_errors));
        let call = |method: &str, uri: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("x-request-id", "abc")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let resp = app.clone().oneshot(call("GET", "/x")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(resp.headers().contains_key(header::ALLOW));
        let v = body_json(resp).await;
        assert_eq!(v["errors"][0]["code"], "METHOD_NOT_ALLOWED");
        assert_eq!(v["errors"][0]["details"]["requestId"], "abc");
        let resp = app.clone().oneshot(call("POST", "/boom")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        let v = body_json(resp).await;
        assert_eq!(v["errors"][0]["code"], "UPSTREAM_FAILED");
        assert!(!v.to_string().contains("secret detail"), "{v}");
        let resp = app.oneshot(call("POST", "/x")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let resp = AppError::internal("password=hunter2 at db").into_response();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"));
    }
}
