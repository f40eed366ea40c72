//! SQLite as a backend of the behaviour suite: a database file in a fresh directory per
//! test, which several stores can open at once, as several gateway processes would.

use std::future::Future;

use psp_core::ports::{StoreError, StoredWebhook};
use store::SqliteStore;
use tempfile::TempDir;
use testkit::store_suite::{Backend, Persistent};

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

/// The behaviour suite's SQLite.
pub(crate) struct OnSqlite;

impl Backend for OnSqlite {
    type Store = SqliteStore;
    type Db = TempDb;

    async fn fresh() -> (TempDb, SqliteStore) {
        let db = TempDb::new();
        let store = db.open().await;
        (db, store)
    }

    fn webhook(
        store: &SqliteStore,
        provider: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<StoredWebhook>, StoreError>> + Send {
        store.webhook(provider, event_id)
    }
}

impl Persistent for OnSqlite {
    fn new_db() -> TempDb {
        TempDb::new()
    }

    async fn open(db: &TempDb) -> SqliteStore {
        db.open().await
    }

    async fn close(store: &SqliteStore) {
        store.close().await;
    }
}

mod suite {
    testkit::store_suite!(crate::sqlite::OnSqlite, persistent);
}
