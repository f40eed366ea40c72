//! Webhook delivery: signed POSTs over real HTTP, retried with a growing delay.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use psp_core::signature::{compute_signature, unix_now};

use super::{random, DeliveryState, Inner};

/// How many times one delivery is tried before the fake gives up. Stripe's test mode
/// retries three times over a few hours; the fake retries quickly.
const ATTEMPTS: u32 = 5;
/// The wait after the first failure; it doubles after each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// One event on its way to one URL.
pub(super) struct Delivery {
    /// Its index in the state's delivery records.
    pub(super) index: usize,
    pub(super) url: String,
    pub(super) body: Bytes,
}

/// Sends each delivery in a background task, so the API answer does not wait for the
/// merchant's endpoint (Stripe does not make the caller wait either). Outside a Tokio
/// runtime nothing can be sent, and the delivery is recorded as given up.
pub(super) fn spawn_all(inner: &Arc<Inner>, deliveries: Vec<Delivery>) {
    for delivery in deliveries {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(deliver(inner.clone(), delivery));
            }
            Err(_) => {
                tracing::warn!(url = %delivery.url, "no Tokio runtime: webhook not sent");
                record(inner, delivery.index, 0, None, DeliveryState::GaveUp);
            }
        }
    }
}

/// The `Stripe-Signature` header: `t`, the `v1` over `"{t}.{body}"` with the signing
/// secret, and a `v0` as Stripe's test mode adds (made with a secret nobody has, so a
/// receiver must ignore it).
fn signature_header(inner: &Inner, body: &[u8]) -> String {
    let t = unix_now();
    let v1 = compute_signature(&inner.config.webhook_secret, t, body);
    let v0 = compute_signature(&psp_core::Secret::new(random(32)), t, body);
    format!("t={t},v1={v1},v0={v0}")
}

async fn deliver(inner: Arc<Inner>, delivery: Delivery) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        // Each attempt is signed anew, as Stripe does, so a delivery retried for a while
        // still carries a timestamp inside the receiver's tolerance.
        let result = inner
            .http
            .post(&delivery.url)
            .header("Stripe-Signature", signature_header(&inner, &delivery.body))
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(delivery.body.clone())
            .send()
            .await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let state = if delivered {
            DeliveryState::Delivered
        } else if attempt == ATTEMPTS {
            DeliveryState::GaveUp
        } else {
            DeliveryState::Pending
        };
        record(&inner, delivery.index, attempt, status, state);
        if delivered {
            return;
        }
        tracing::debug!(url = %delivery.url, attempt, ?status, "webhook not accepted");
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::warn!(url = %delivery.url, attempts = ATTEMPTS, "fake Stripe gave up delivering a webhook");
}

fn record(inner: &Inner, index: usize, attempt: u32, status: Option<u16>, state: DeliveryState) {
    let mut st = inner.state.lock();
    if let Some(rec) = st.deliveries.get_mut(index) {
        rec.attempts = attempt;
        rec.last_status = status.or(rec.last_status);
        rec.state = state;
    }
}
