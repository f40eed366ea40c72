//! Opening the store: URLs, pragmas, migrations, readiness, and what it prints.

use psp_core::ports::{Inbox, Readiness, Recorded};
use sqlx::Connection;
use store::{open_store, SqliteStore};
use testkit::store_suite::webhook;

use crate::sqlite::TempDb;
use crate::TestDb as _;

#[tokio::test]
async fn opening_creates_the_file_and_reopening_keeps_its_schema_and_data() {
    let db = TempDb::new();
    let store = db.open().await;
    assert!(db.dir.path().join("store.db").exists());
    store.record_webhook(webhook("evt_1", None)).await.unwrap();
    store.close().await;

    let reopened = db.open().await;
    assert!(reopened.webhook("mock", "evt_1").await.unwrap().is_some());
    reopened.ping().await.unwrap();
}

#[tokio::test]
async fn the_database_file_is_in_wal_mode() {
    let db = TempDb::new();
    let store = db.open().await;
    store.close().await;

    // The journal mode is a property of the file, so a plain connection can read it.
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn the_store_answers_ping_and_stops_answering_once_closed() {
    let db = TempDb::new();
    let store = db.open().await;
    store.ping().await.unwrap();
    store.close().await;
    assert!(store.ping().await.is_err());
}

#[tokio::test]
async fn open_store_picks_sqlite_by_the_url_scheme() {
    let db = TempDb::new();
    let store = open_store(&db.url).await.unwrap();
    assert_eq!(
        store.record_webhook(webhook("evt_1", None)).await.unwrap(),
        Recorded::New
    );
    store.ping().await.unwrap();
}

#[tokio::test]
async fn an_in_memory_store_works_for_tests() {
    let store = open_store("sqlite::memory:").await.unwrap();
    assert_eq!(
        store.record_webhook(webhook("evt_1", None)).await.unwrap(),
        Recorded::New
    );
    assert_eq!(
        store.record_webhook(webhook("evt_1", None)).await.unwrap(),
        Recorded::Duplicate
    );
    let claim = store
        .claim_cart(uuid::Uuid::nil(), "mock", "pay_1")
        .await
        .unwrap();
    assert_eq!(claim.psp_ref, "pay_1");
}

#[tokio::test]
async fn an_unknown_scheme_is_refused() {
    for url in ["mysql://root:hunter2@h/db", "just-a-file.db"] {
        let Err(err) = open_store(url).await else {
            panic!("{url} opened a store");
        };
        let message = err.to_string();
        assert!(message.contains("sqlite://"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}

#[tokio::test]
async fn debug_shows_the_database_file_and_nothing_from_the_url() {
    let db = TempDb::new();
    let url = format!("{}?mode=rwc", db.url);
    let store = SqliteStore::open(&url).await.unwrap();
    let debug = format!("{store:?}");
    assert!(debug.starts_with("SqliteStore"), "{debug}");
    assert!(debug.contains("store.db"), "{debug}");
    assert!(!debug.contains("sqlite://"), "{debug}");
    assert!(!debug.contains("mode=rwc"), "{debug}");
}

#[tokio::test]
async fn a_batch_the_database_refuses_records_nothing_of_it_and_the_writer_carries_on() {
    let db = TempDb::new();
    let store = db.open().await;
    // A trigger makes the database refuse one webhook, as a full disk or a broken file
    // would refuse a whole batch.
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON webhook_inbox \
         WHEN NEW.event_id = 'evt_poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // Sent together, the others may share the poisoned batch: whoever is answered with an
    // error must have nothing recorded, whoever is answered Ok must be recorded.
    let ids: Vec<String> = (0..20).map(|i| format!("evt_{i}")).collect();
    let mut calls = vec![store.record_webhook(webhook("evt_poison", None))];
    for id in &ids {
        calls.push(store.record_webhook(webhook(id, None)));
    }
    let results = futures::future::join_all(calls).await;
    assert!(
        results[0].is_err(),
        "the refused webhook is not answered Ok"
    );
    assert!(store.webhook("mock", "evt_poison").await.unwrap().is_none());
    for (id, result) in ids.iter().zip(&results[1..]) {
        let stored = store.webhook("mock", id).await.unwrap().is_some();
        assert_eq!(
            result.is_ok(),
            stored,
            "{id}: answered {result:?}, stored: {stored}"
        );
    }

    // The writer starts the next batch on a fresh connection and records as before.
    sqlx::query("DROP TRIGGER poison")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_webhook(webhook("evt_after", None))
            .await
            .unwrap(),
        Recorded::New
    );
    assert_eq!(
        store
            .record_webhook(webhook("evt_poison", None))
            .await
            .unwrap(),
        Recorded::New
    );
}
