//! Pushes: `POST merchant_urls.push` on the schedule until the order is acknowledged.
//! The answer does not matter to Kustom (only an acknowledgement stops the pushes), and
//! the body carries nothing the merchant may trust, so none is sent.

use std::time::{Duration, Instant};

use super::{FakeKustom, PushAttempt, PushSchedule};

pub(super) fn spawn(fake: FakeKustom, order_id: String, url: String, schedule: PushSchedule) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(run(fake, order_id, url, schedule));
        }
        Err(_) => tracing::warn!(order_id, "no Tokio runtime: no pushes will be sent"),
    }
}

fn acknowledged(fake: &FakeKustom, order_id: &str) -> bool {
    fake.inner
        .state
        .lock()
        .order(order_id)
        .and_then(|o| o.om.as_ref())
        .is_none_or(|om| om.acknowledged)
}

fn finish(fake: &FakeKustom, order_id: &str, gave_up: bool) {
    if let Some(o) = fake.inner.state.lock().order_mut(order_id) {
        o.pushes_gave_up = gave_up;
        o.pushes_finished = true;
    }
}

async fn run(fake: FakeKustom, order_id: String, url: String, schedule: PushSchedule) {
    let purchased = Instant::now();
    for due in schedule.offsets() {
        tokio::time::sleep_until((purchased + due).into()).await;
        if acknowledged(&fake, &order_id) {
            finish(&fake, &order_id, false);
            return;
        }
        let at_ms = purchased.elapsed().as_millis() as u64;
        let sent = fake
            .inner
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let status = match sent {
            Ok(resp) => Some(resp.status().as_u16()),
            Err(e) => {
                tracing::debug!(order_id, error = %e, "push not delivered");
                None
            }
        };
        if let Some(o) = fake.inner.state.lock().order_mut(&order_id) {
            o.pushes.push(PushAttempt { at_ms, status });
        }
    }
    let gave_up = !acknowledged(&fake, &order_id);
    if gave_up {
        tracing::warn!(
            order_id,
            "Kustom stopped pushing an order that was never acknowledged"
        );
    }
    finish(&fake, &order_id, gave_up);
}
