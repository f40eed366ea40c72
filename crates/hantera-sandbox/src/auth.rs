//! OAuth 2.0 client credentials (`POST /oauth/token`) and the Bearer check in front of
//! every `/resources` route.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::Shared;

#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    // `scope` is accepted and ignored: the sandbox grants every scope.
}

/// An RFC 6749 §5.2 error answer (`{"error":"invalid_client"}`), the one place where
/// Hantera's `{"errors":[…]}` envelope does not apply.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(request)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected an application/x-www-form-urlencoded body",
        );
    };
    if request.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "the sandbox only grants client_credentials",
        );
    }
    let id_ok = request.client_id.as_deref() == Some(shared.client_id.as_str());
    let secret_ok = request.client_secret.as_deref() == Some(shared.client_secret.as_str());
    if !(id_ok && secret_ok) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    }

    let access_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 48);
    let now = Instant::now();
    {
        let mut state = shared.state.lock();
        // Forget expired tokens here, so that the table stays as small as the number of
        // tokens in use however long the sandbox runs.
        state.tokens.retain(|_, expires| *expires > now);
        state
            .tokens
            .insert(access_token.clone(), now + shared.token_ttl);
    }
    let mut response = Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": shared.token_ttl.as_secs(),
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The middleware that refuses a `/resources` request without a live Bearer token.
pub(crate) async fn require_bearer(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(token) = token else {
        return ApiError::unauthorized("missing Bearer token").into_response();
    };
    let expires = shared.state.lock().tokens.get(token).copied();
    match expires {
        None => ApiError::unauthorized("unknown access token").into_response(),
        Some(expires) if expires <= Instant::now() => {
            ApiError::unauthorized("the access token has expired").into_response()
        }
        Some(_) => next.run(request).await,
    }
}
