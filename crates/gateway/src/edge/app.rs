//! The application state and the router: the HTTP edge of the gateway.
//!
//! Architecture invariant: handlers look providers up by the `{provider}` path segment in
//! the registry and never name one.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderName, Method, Request, Uri};
use axum::middleware;
use axum::routing::{get, on, post, MethodFilter};
use axum::Router;
use psp_core::{ProviderRoute, Secret};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::error::{uniform_errors, AppError};
use super::ratelimit::StorefrontLimits;
use super::routes;
use crate::config::Config;
use crate::services::Services;

/// What a handler needs: the services, and what only the edge uses.
#[derive(Clone)]
pub struct AppState {
    /// What the gateway does.
    pub services: Arc<Services>,
    /// The loaded configuration (the edge reads `server` and the hook token).
    pub config: Arc<Config>,
    /// The bearer token Hantera's forwarded hooks must carry: `hantera.hook_token`, or,
    /// when none is configured, a random one made at start-up (the embedded sandbox is
    /// handed this one; a real Hantera without a configured token cannot call the hooks).
    pub hook_token: Secret,
    /// The rate limits of the storefront's payment routes.
    pub limits: Arc<StorefrontLimits>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The edge over `services`.
    pub fn new(config: Arc<Config>, services: Arc<Services>) -> Self {
        let configured = config
            .hantera
            .as_ref()
            .and_then(|h| h.hook_token.clone())
            .filter(|t| !t.is_empty());
        let hook_token = match configured {
            Some(token) => token,
            None => {
                if config.hantera.is_some() {
                    tracing::warn!("hantera.hook_token is not set: the hook endpoints refuse every call until it is");
                }
                Secret::new(format!(
                    "hook_{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                ))
            }
        };
        let limits = Arc::new(StorefrontLimits::new(&config.server.rate_limit));
        Self {
            services,
            config,
            hook_token,
            limits,
        }
    }
}

/// The header that carries a request's id, taken from the caller when it is a short id of
/// safe characters, otherwise made here.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id accepted from a caller.
const MAX_REQUEST_ID: usize = 64;

/// The gateway's routes with their layers. Provider routes (hosted pages, callbacks) are
/// merged in from the registry.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    let timeout = Duration::from_millis(state.config.server.request_timeout_ms);
    let storefront_limits =
        middleware::from_fn_with_state(state.clone(), super::ratelimit::storefront);
    let mut app = Router::new()
        .route(
            "/ingress/commerce/carts/{cart_id}/payment/{provider}",
            post(routes::checkout::start).route_layer(storefront_limits.clone()),
        )
        .route(
            "/ingress/commerce/carts/{cart_id}/payment/{provider}/confirm",
            post(routes::checkout::confirm).route_layer(storefront_limits),
        )
        .route("/webhooks/{provider}", post(routes::webhooks::receive))
        .nest("/hantera/hooks", routes::hooks::router(state.clone()))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .nest("/admin", routes::admin::router(state.clone()))
        .fallback(|| async { AppError::not_found("NOT_FOUND", "no such route") })
        .with_state(state.clone());
    // With a listener of its own, /metrics is not served here at all.
    if state.config.server.metrics_listen.is_none() {
        app = app.merge(metrics_route(state.clone()));
    }
    for provider in state.services.registry.iter() {
        for route in provider.routes() {
            app = mount_provider_route(app, provider.id(), route);
        }
    }
    edge_layers(
        app.layer(DefaultBodyLimit::max(body_limit))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                timeout,
            )),
    )
}

/// Mounts a provider's route: the request's method, URI, headers and body (read within the
/// body limit) are handed to the provider's handler, and its answer is sent as it is. A
/// method axum cannot route is not mounted, and said so in the log.
fn mount_provider_route(app: Router, provider: &str, route: ProviderRoute) -> Router {
    let Ok(filter) = MethodFilter::try_from(route.method.clone()) else {
        tracing::error!(
            provider,
            path = route.path,
            method = %route.method,
            "a provider route's method cannot be served; the route is not mounted"
        );
        return app;
    };
    let handler = route.handler;
    app.route(
        route.path,
        on(
            filter,
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
                let mut request = Request::new(body);
                *request.method_mut() = method;
                *request.uri_mut() = uri;
                *request.headers_mut() = headers;
                handler.handle(request).await.map(Body::from)
            },
        ),
    )
}

/// `/metrics` alone, for `server.metrics_listen`.
pub fn metrics_router(state: AppState) -> Router {
    edge_layers(
        metrics_route(state)
            .fallback(|| async { AppError::not_found("NOT_FOUND", "no such route") }),
    )
}

fn metrics_route(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(routes::ops::metrics).route_layer(middleware::from_fn_with_state(
                state.clone(),
                routes::ops::require_metrics_token,
            )),
        )
        .with_state(state)
}

/// Request ids, the request span, and the error shape of every answer.
fn edge_layers(app: Router) -> Router {
    app.layer(middleware::from_fn(uniform_errors))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let path = req.uri().path();
                // A long path is not worth a long log line.
                let path = path.get(..path.len().min(200)).unwrap_or(path);
                tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(middleware::map_request(accept_request_id))
}

/// Drops a caller's `X-Request-Id` unless it is one short id of safe characters (so that
/// it cannot forge log fields or fill the log); `SetRequestIdLayer` then makes one.
async fn accept_request_id<B>(mut req: Request<B>) -> Request<B> {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    let acceptable = match (ids.next(), ids.next()) {
        (Some(id), None) => is_safe_request_id(id.as_bytes()),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !acceptable {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

fn is_safe_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_ids_of_safe_characters_are_taken_from_callers() {
        assert!(is_safe_request_id(b"0b1c-2d.3e_4F"));
        assert!(is_safe_request_id(&[b'a'; 64]));
        assert!(!is_safe_request_id(&[b'a'; 65]));
        assert!(!is_safe_request_id(b""));
        assert!(!is_safe_request_id(b"x level=ERROR msg=forged"));
        assert!(!is_safe_request_id(b"a\x1b[31m"));
    }
}
