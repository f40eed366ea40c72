//! Routes a provider serves inside the gateway (a PSP's callbacks), in plain HTTP types:
//! the core knows no web framework, and the gateway mounts them on its own router, behind
//! its body limit, timeout and error shape.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

/// A request to a provider's route: method, URI, headers and the whole body (within the
/// gateway's body limit).
pub type RouteRequest = http::Request<Bytes>;

/// A provider route's answer.
pub type RouteResponse = http::Response<Bytes>;

/// What answers a provider's route.
#[async_trait]
pub trait RouteHandler: Send + Sync + 'static {
    /// Answers one request.
    async fn handle(&self, request: RouteRequest) -> RouteResponse;
}

/// One route a provider serves, mounted at `path` from the gateway's root.
#[derive(Clone)]
pub struct ProviderRoute {
    /// The method it answers; another method on the path is answered 405.
    pub method: http::Method,
    /// The absolute path, e.g. `/providers/kustom/validate`.
    pub path: &'static str,
    /// What answers.
    pub handler: Arc<dyn RouteHandler>,
}

impl ProviderRoute {
    /// A `GET` route (the gateway answers `HEAD` with it too).
    pub fn get(path: &'static str, handler: Arc<dyn RouteHandler>) -> Self {
        Self {
            method: http::Method::GET,
            path,
            handler,
        }
    }

    /// A `POST` route.
    pub fn post(path: &'static str, handler: Arc<dyn RouteHandler>) -> Self {
        Self {
            method: http::Method::POST,
            path,
            handler,
        }
    }
}

impl std::fmt::Debug for ProviderRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRoute")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// An answer with `status`, `headers` and `body` (a response that fails to build from
/// them, an invalid header, is a bare 500 instead of a panic).
pub fn respond(
    status: http::StatusCode,
    headers: &[(http::header::HeaderName, &str)],
    body: impl Into<Bytes>,
) -> RouteResponse {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(name, *value);
    }
    builder.body(body.into()).unwrap_or_else(|_| {
        let mut failed = http::Response::new(Bytes::new());
        *failed.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        failed
    })
}

/// A JSON answer with `status`, `headers` and `value` (`content-type: application/json`).
pub fn respond_json(
    status: http::StatusCode,
    headers: &[(http::header::HeaderName, &str)],
    value: &serde_json::Value,
) -> RouteResponse {
    let mut all = vec![(http::header::CONTENT_TYPE, "application/json")];
    all.extend(headers.iter().cloned());
    respond(status, &all, value.to_string())
}
