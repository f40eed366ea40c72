//! Cross-origin access to the public ingresses.
//!
//! A storefront in development is usually served from another origin (a dev server on
//! another port) than the Hantera it calls, and the storefront SDK calls the Commerce
//! ingress straight from the browser. Hantera's public ingresses are meant for exactly
//! that, so the sandbox lets any origin call them: they take no credentials, so allowing
//! every origin exposes nothing a plain HTTP client could not already reach.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Axum middleware (`axum::middleware::from_fn(allow_cross_origin)`) that answers CORS
/// preflights and marks responses as readable from any origin, for paths under
/// `/ingress/` only; every other path passes through untouched.
pub async fn allow_cross_origin(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/ingress/") {
        return next.run(request).await;
    }
    if request.method() == Method::OPTIONS {
        let requested = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("content-type"));
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return response;
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
