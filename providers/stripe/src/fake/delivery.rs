//! Webhook delivery: signed POSTs over real HTTP, retried with a growing delay
//! (`fake_support::delivery`), each attempt recorded on its delivery.

use std::sync::Arc;

use axum::body::Bytes;
use fake_support::delivery::Attempt;
use psp_core::signature::{compute_signature, unix_now};
use psp_core::Secret;

use super::{random, Inner};

/// One event on its way to one URL.
pub(super) struct Delivery {
    /// Its index in the state's delivery records.
    pub(super) index: usize,
    pub(super) url: String,
    pub(super) body: Bytes,
}

/// Sends each delivery in a background task, as Stripe does not make the caller wait
/// either.
pub(super) fn spawn_all(inner: &Arc<Inner>, deliveries: Vec<Delivery>) {
    for delivery in deliveries {
        let secret = inner.config.webhook_secret.clone();
        let recorder = inner.clone();
        let index = delivery.index;
        fake_support::delivery::Delivery {
            sender: "fake Stripe",
            label: format!("delivery {index}"),
            url: delivery.url,
            body: delivery.body,
            headers: move |body: &[u8]| {
                vec![
                    ("Stripe-Signature", signature_header(&secret, body)),
                    (
                        "Content-Type",
                        "application/json; charset=utf-8".to_string(),
                    ),
                    (
                        "User-Agent",
                        "Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_string(),
                    ),
                ]
            },
            record: move |attempt| record(&recorder, index, attempt),
        }
        .spawn(&inner.http);
    }
}

/// The `Stripe-Signature` header: `t`, the `v1` over `"{t}.{body}"` with the signing
/// secret, and a `v0` as Stripe's test mode adds (made with a secret nobody has, so a
/// receiver must ignore it).
fn signature_header(secret: &Secret, body: &[u8]) -> String {
    let t = unix_now();
    let v1 = compute_signature(secret, t, body);
    let v0 = compute_signature(&Secret::new(random(32)), t, body);
    format!("t={t},v1={v1},v0={v0}")
}

fn record(inner: &Inner, index: usize, attempt: Attempt) {
    let mut st = inner.state.lock();
    if let Some(rec) = st.deliveries.get_mut(index) {
        rec.attempts = attempt.number;
        rec.last_status = attempt.status.or(rec.last_status);
        rec.state = attempt.state;
    }
}
