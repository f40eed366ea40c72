//! Webhook delivery: signed POSTs over real HTTP, retried with a growing delay.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use psp_core::signature::{sign_header, unix_now};

use super::{DeliveryState, Inner};

/// How many times one event is tried before the fake gives up.
const ATTEMPTS: u32 = 5;
/// The wait after the first failure; it doubles after each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// One event to deliver.
pub(super) struct Delivery {
    pub(super) event_id: String,
    pub(super) url: String,
    pub(super) body: Bytes,
}

/// Delivers in a background task, so the customer's redirect does not wait for the
/// merchant's webhook endpoint (a real PSP does not make the customer wait either).
/// Outside a Tokio runtime (a synchronous test calling `approve`) nothing can be sent, so
/// the event is recorded as given up instead of panicking.
pub(super) fn spawn(inner: Arc<Inner>, delivery: Delivery) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(deliver(inner, delivery));
        }
        Err(_) => {
            tracing::warn!(event = %delivery.event_id, "no Tokio runtime: webhook not sent");
            record(&inner, &delivery.event_id, 0, false, true);
        }
    }
}

async fn deliver(inner: Arc<Inner>, delivery: Delivery) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        // Each attempt is signed anew, as Stripe does, so that a delivery retried for a
        // while still carries a timestamp inside the receiver's tolerance.
        let header = sign_header(
            &inner.config.webhook_secret,
            unix_now(),
            delivery.body.as_ref(),
        );
        let result = inner
            .http
            .post(&delivery.url)
            .header("Mock-Signature", header)
            .header("Content-Type", "application/json")
            .body(delivery.body.clone())
            .send()
            .await;
        let delivered = match &result {
            Ok(resp) if resp.status().is_success() => true,
            Ok(resp) => {
                tracing::debug!(event = %delivery.event_id, attempt, status = %resp.status(), "webhook refused");
                false
            }
            Err(err) => {
                tracing::debug!(event = %delivery.event_id, attempt, error = %err, "webhook not delivered");
                false
            }
        };
        record(
            &inner,
            &delivery.event_id,
            attempt,
            delivered,
            attempt == ATTEMPTS,
        );
        if delivered {
            return;
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::warn!(
        event = %delivery.event_id,
        url = %delivery.url,
        attempts = ATTEMPTS,
        "mock PSP gave up delivering a webhook"
    );
}

fn record(inner: &Inner, event_id: &str, attempt: u32, delivered: bool, last: bool) {
    let mut st = inner.state.lock();
    if let Some(rec) = st.events.iter_mut().find(|e| e.id == event_id) {
        rec.attempts = attempt;
        rec.state = if delivered {
            DeliveryState::Delivered
        } else if last {
            DeliveryState::GaveUp
        } else {
            DeliveryState::Pending
        };
    }
}
