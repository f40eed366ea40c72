//! Provider routes (`Provider::routes`) on an axum router, as the gateway mounts them, for
//! tests that serve a provider's callbacks without the gateway.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Uri};
use axum::routing::{on, MethodFilter};
use axum::Router;
use psp_core::ProviderRoute;

/// A router serving `routes` at their paths.
///
/// # Panics
/// On a route whose method axum cannot route (tests only).
pub fn router(routes: Vec<ProviderRoute>) -> Router {
    routes.into_iter().fold(Router::new(), |app, route| {
        let filter = MethodFilter::try_from(route.method.clone())
            .expect("a provider route has a method axum routes");
        let handler = route.handler;
        let serve = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
            let mut request = Request::new(body);
            *request.method_mut() = method;
            *request.uri_mut() = uri;
            *request.headers_mut() = headers;
            handler.handle(request).await.map(Body::from)
        };
        app.route(route.path, on(filter, serve))
    })
}
