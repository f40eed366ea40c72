//! The one error type of the HTTP edge. Every failure leaves as
//! `{"errors":[{"code":"UPPER_SNAKE","message":"…","details":{…}}]}`, the shape Hantera's
//! storefront SDK recognises, with a status that says who must act: 4xx the caller,
//! 5xx/502 an upstream.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{ "code": self.code, "message": self.message, "details": self.details }]
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<psp_core::ports::StoreError> for AppError {
    fn from(e: psp_core::ports::StoreError) -> Self {
        AppError::internal(e)
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

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let resp = AppError::internal("password=hunter2 at db").into_response();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"));
    }
}
