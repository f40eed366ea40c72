//! Webhook delivery: signed POSTs over real HTTP, retried with a growing delay
//! (`fake_support::delivery`), each attempt recorded on the event.

use std::sync::Arc;

use axum::body::Bytes;
use fake_support::delivery::Attempt;
use psp_core::signature::{sign_header, unix_now};

use super::Inner;

/// One event to deliver.
pub(super) struct Delivery {
    pub(super) event_id: String,
    pub(super) url: String,
    pub(super) body: Bytes,
}

/// Delivers in a background task, signed in `Mock-Signature` with the core scheme.
pub(super) fn spawn(inner: Arc<Inner>, delivery: Delivery) {
    let secret = inner.config.webhook_secret.clone();
    let recorder = inner.clone();
    let event_id = delivery.event_id.clone();
    fake_support::delivery::Delivery {
        sender: "mock PSP",
        label: delivery.event_id,
        url: delivery.url,
        body: delivery.body,
        headers: move |body: &[u8]| {
            vec![
                ("Mock-Signature", sign_header(&secret, unix_now(), body)),
                ("Content-Type", "application/json".to_string()),
            ]
        },
        record: move |attempt| record(&recorder, &event_id, attempt),
    }
    .spawn(&inner.http);
}

fn record(inner: &Inner, event_id: &str, attempt: Attempt) {
    let mut st = inner.state.lock();
    if let Some(rec) = st.events.iter_mut().find(|e| e.id == event_id) {
        rec.attempts = attempt.number;
        rec.state = attempt.state;
    }
}
