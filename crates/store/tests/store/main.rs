//! The store's integration tests, in one binary: the behaviour suite
//! (`testkit::store_suite`) against SQLite (a fresh database file per test) and PostgreSQL
//! (a fresh schema per test on the real server, `PSP_TEST_POSTGRES_URL`), plus what only
//! each has: opening SQLite by URL, its pragmas and its writer's failures (`open`), and
//! several PostgreSQL replicas on one database (`postgres::replicas`).

mod open;
mod postgres;
mod sqlite;

use std::future::Future;
use std::marker::PhantomData;

use psp_core::ports::{StoreError, StoredWebhook};
use store::{Dialect, SqlStore};
use testkit::store_suite::{Backend, Persistent};

/// A fresh database for one test, removed when dropped, which several stores can open at
/// once (as several gateway processes or replicas would).
pub(crate) trait TestDb: Send + Sync + Sized + 'static {
    /// Its database.
    type Dialect: Dialect;

    /// A fresh, empty database.
    fn new() -> Self;

    /// The URL stores open it with.
    fn url(&self) -> &str;

    /// A store on it.
    fn open(&self) -> impl Future<Output = SqlStore<Self::Dialect>> + Send {
        async { SqlStore::open(self.url()).await.expect("the store opens") }
    }
}

/// The behaviour suite on the databases of `Db`.
pub(crate) struct On<Db>(PhantomData<Db>);

impl<Db: TestDb> Backend for On<Db> {
    type Store = SqlStore<Db::Dialect>;
    type Db = Db;

    async fn fresh() -> (Db, Self::Store) {
        let db = Db::new();
        let store = db.open().await;
        (db, store)
    }

    fn webhook(
        store: &Self::Store,
        provider: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<StoredWebhook>, StoreError>> + Send {
        store.webhook(provider, event_id)
    }
}

impl<Db: TestDb> Persistent for On<Db> {
    fn new_db() -> Db {
        Db::new()
    }

    async fn open(db: &Db) -> Self::Store {
        db.open().await
    }

    async fn close(store: &Self::Store) {
        store.close().await;
    }
}
