//! The error envelope Hantera uses on `/resources` and the Commerce ingresses:
//! `{"errors":[{"code":"…","message":"…","details":{…}}]}`.
//!
//! One type serves every route so that a status code and its error code are decided in
//! one place: the actor codes and their statuses come from Hantera's error table
//! (`NOT_FOUND` 404, `INVALID_MESSAGE_BODY` 400, `ALREADY_EXISTS`, `INVALID_COMMAND` and
//! `DUPLICATE_ID` 500), and ingress errors follow the ingress rule that an error record
//! answers 400 unless its code is `NOT_FOUND`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// An error answered as Hantera's `{"errors":[…]}` envelope.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: Map<String, Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Map::new(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub(crate) fn invalid_message_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_MESSAGE_BODY", message)
    }

    pub(crate) fn already_exists(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ALREADY_EXISTS", message)
    }

    pub(crate) fn invalid_command(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INVALID_COMMAND",
            message,
        )
    }

    pub(crate) fn duplicate_id(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "DUPLICATE_ID", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// A Commerce ingress refusal: ingresses answer 400 for every error code except
    /// `NOT_FOUND`, which [`ApiError::not_found`] covers.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{
                "code": self.code,
                "message": self.message,
                "details": Value::Object(self.details),
            }]
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 asks a resource server to name the scheme it expects.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
