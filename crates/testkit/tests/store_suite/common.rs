//! `crate::common` of the `MemStore` binary of the store's behaviour suite: the same
//! helpers as the real stores' binaries (`crates/store/tests/common/`), on a fresh
//! `MemStore` per test.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use psp_core::money::{Currency, Money};
use psp_core::ports::{NewJob, NewWebhook};
use testkit::mem::MemStore;
use uuid::Uuid;

/// The store type the behaviour suite runs against in this binary.
pub(crate) type Backend = MemStore;

/// The suite's tests of persistence (reopening a database, several stores on one
/// database, closing) need a database; a `MemStore` is gone with its value, so here they
/// are not compiled at all, rather than compiled and passing without asserting anything.
macro_rules! persistent {
    ($($test:item)*) => {};
}
pub(crate) use persistent;

/// A fresh, empty store. The first element stands for the database the real stores'
/// binaries keep alive for the test's duration; a `MemStore` needs none.
pub(crate) async fn store() -> ((), MemStore) {
    ((), MemStore::new())
}

pub(crate) fn job(kind: &str, dedupe_key: &str, cart_id: Option<Uuid>) -> NewJob {
    NewJob {
        kind: kind.into(),
        dedupe_key: dedupe_key.into(),
        cart_id,
        payload: serde_json::json!({ "key": dedupe_key, "amount": 12.50 }),
        max_attempts: 5,
    }
}

pub(crate) fn webhook(event_id: &str, job: Option<NewJob>) -> NewWebhook {
    NewWebhook {
        provider: "mock".into(),
        event_id: event_id.into(),
        event_type: "payment.authorized".into(),
        psp_ref: Some(format!("pay_{event_id}")),
        body: format!(r#"{{"id":"{event_id}","type":"payment.authorized"}}"#).into_bytes(),
        job,
    }
}

pub(crate) fn sek(minor: i64) -> Money {
    Money::from_minor(
        minor,
        Currency::from_code("SEK").expect("SEK is a currency"),
    )
}

pub(crate) fn cart(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn system_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit in i64")
}

/// Waits until the system clock (which `MemStore` reads, plus an offset the suite never
/// moves) has moved past the current millisecond.
pub(crate) async fn next_millisecond() {
    let start = system_ms();
    while system_ms() <= start {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Polls `probe` until it returns `Some`, failing the test after a generous deadline.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
