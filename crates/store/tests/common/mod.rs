//! Helpers shared by the store's integration tests. Each test binary uses a different
//! subset, so unused ones are allowed here rather than warned about in every binary.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use psp_core::money::{Currency, Money};
use psp_core::ports::{NewJob, NewWebhook};
use store::SqliteStore;
use tempfile::TempDir;
use uuid::Uuid;

/// The store type the behaviour suite runs against in this binary.
pub(crate) type Backend = SqliteStore;

/// Wraps the suite's tests of persistence (reopening a database, several stores on one
/// database, closing). The real stores compile them; the `MemStore` binary of the suite
/// (`crates/testkit/tests/store_suite.rs`) defines this macro to leave them out. Binaries
/// without the suite (`open.rs`) do not use it.
#[allow(unused_macros)]
macro_rules! persistent {
    ($($test:item)*) => {
        $($test)*
    };
}
#[allow(unused_imports)]
pub(crate) use persistent;

/// A database file in a fresh directory; the directory goes away with the `TempDir`.
pub(crate) struct TempDb {
    pub(crate) dir: TempDir,
    pub(crate) url: String,
}

impl TempDb {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        Self { dir, url }
    }

    pub(crate) async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.url).await.expect("the store opens")
    }
}

/// A store on a fresh database file.
pub(crate) async fn store() -> (TempDb, SqliteStore) {
    let db = TempDb::new();
    let store = db.open().await;
    (db, store)
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

/// Waits until the system clock (which the store reads, in milliseconds) has moved past
/// the current millisecond, so that what is written next is strictly later than what was
/// written before. It polls instead of sleeping a fixed time.
pub(crate) async fn next_millisecond() {
    let start = system_ms();
    while system_ms() <= start {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Polls `probe` until it returns `Some`, failing the test after a generous deadline so
/// that a broken store shows up as a failure instead of a hang.
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
