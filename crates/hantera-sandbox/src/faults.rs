//! Fault injection for the emulated Hantera routes (`/oauth`, `/resources`, `/ingress`).
//!
//! The faults are the failures a remote Hantera shows a client: slowness, a 5xx before
//! anything happened, a connection lost before anything happened, and the hard one, a
//! connection lost after the change took effect, so that the caller cannot know whether
//! its request was applied. The gateway's retries and idempotency are tested against
//! the last one.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::Shared;

/// Which failures the sandbox injects, and how often.
///
/// Rates are probabilities between 0 and 1, drawn independently per request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Delay added before each request is handled, in milliseconds.
    pub latency_ms: u64,
    /// Share of requests answered `503 SERVICE_UNAVAILABLE` without being handled.
    pub error_rate: f64,
    /// Share of requests whose connection is dropped without the request being handled.
    pub drop_rate: f64,
    /// Share of requests that are handled (their changes commit) and whose connection is
    /// then dropped, so that the caller never sees the answer.
    pub drop_after_rate: f64,
}

impl Faults {
    /// Checks that every rate is a probability, so that a typo such as `"errorRate": 50`
    /// is refused rather than read as "always".
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("errorRate", self.error_rate),
            ("dropRate", self.drop_rate),
            ("dropAfterRate", self.drop_after_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        Ok(())
    }
}

/// Counts of injected faults, served at `GET /sandbox/faults/injected`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Injected {
    pub(crate) errors: u64,
    pub(crate) drops: u64,
    pub(crate) drops_after: u64,
}

/// Whether a fault with this rate strikes this request.
fn strikes(rate: f64) -> bool {
    // `random` draws from [0, 1), so a rate of 1 always strikes and 0 never does.
    rate > 0.0 && rand::random::<f64>() < rate
}

/// A response whose body fails on its first poll. Hyper then aborts the connection
/// instead of completing the response, so the client sees a transport error, exactly as
/// if the network had failed.
fn dropped_connection() -> Response {
    let failure = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault injection dropped the connection",
        ))
    });
    Response::new(Body::from_stream(failure))
}

/// The middleware that applies the configured faults around a handler.
pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    // Read the settings once so that a concurrent `PUT /sandbox/faults` cannot change
    // them half-way through a request.
    let faults = shared.state.lock().faults.clone();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if strikes(faults.error_rate) {
        shared.state.lock().injected.errors += 1;
        tracing::debug!(uri = %request.uri(), "sandbox fault: answering 503");
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "the sandbox injected a service-unavailable fault",
        )
        .into_response();
    }
    if strikes(faults.drop_rate) {
        shared.state.lock().injected.drops += 1;
        tracing::debug!(uri = %request.uri(), "sandbox fault: dropping before handling");
        return dropped_connection();
    }
    let uri = request.uri().clone();
    let response = next.run(request).await;
    if strikes(faults.drop_after_rate) {
        shared.state.lock().injected.drops_after += 1;
        tracing::debug!(%uri, "sandbox fault: dropping after handling");
        return dropped_connection();
    }
    response
}
