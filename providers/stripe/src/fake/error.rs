//! Stripe's error answers: `{"error":{"type","code","message","param",…}}` with Stripe's
//! status codes.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// An error answer, as Stripe renders it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    /// `invalid_request_error`, `card_error`, `idempotency_error` or `api_error`.
    pub(crate) kind: &'static str,
    pub(crate) code: Option<&'static str>,
    pub(crate) decline_code: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
    /// The PaymentIntent, on errors about one (declines, unexpected states).
    pub(crate) payment_intent: Option<Box<Value>>,
    /// `Stripe-Should-Retry`, when set.
    pub(crate) should_retry: Option<bool>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            decline_code: None,
            message: message.into(),
            param: None,
            payment_intent: None,
            should_retry: None,
        }
    }

    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub(crate) fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub(crate) fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub(crate) fn with_intent(mut self, intent: Value) -> Self {
        self.payment_intent = Some(Box::new(intent));
        self
    }

    pub(crate) fn unknown_parameter(name: &str) -> Self {
        Self::invalid(format!("Received unknown parameter: {name}"))
            .code("parameter_unknown")
            .param(name)
    }

    pub(crate) fn missing_parameter(name: &str) -> Self {
        Self::invalid(format!("Missing required param: {name}."))
            .code("parameter_missing")
            .param(name)
    }

    pub(crate) fn invalid_integer(name: &str, value: &str) -> Self {
        Self::invalid(format!("Invalid integer: {value}"))
            .code("parameter_invalid_integer")
            .param(name)
    }

    pub(crate) fn resource_missing(kind: &str, id: &str, param: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("No such {kind}: '{id}'"),
        )
        .code("resource_missing")
        .param(param)
    }

    /// A 500 `api_error`, as Stripe answers when something broke inside it.
    pub(crate) fn server_error(status: StatusCode) -> Self {
        Self::new(
            status,
            "api_error",
            "An unknown error occurred (injected by the fake Stripe).",
        )
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        if let Some(decline) = self.decline_code {
            error.insert("decline_code".into(), json!(decline));
        }
        error.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        if let Some(pi) = &self.payment_intent {
            error.insert("payment_intent".into(), (**pi).clone());
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body())).into_response();
        if let Some(retry) = self.should_retry {
            resp.headers_mut().insert(
                "Stripe-Should-Retry",
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        resp
    }
}
