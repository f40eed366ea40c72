//! SQLite for the store's tests: a database file in a fresh directory per test.

use store::Sqlite;
use tempfile::TempDir;

/// A database file in a fresh directory; the directory goes away with the `TempDir`.
pub(crate) struct TempDb {
    pub(crate) dir: TempDir,
    pub(crate) url: String,
}

impl crate::TestDb for TempDb {
    type Dialect = Sqlite;

    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        Self { dir, url }
    }

    fn url(&self) -> &str {
        &self.url
    }
}

mod suite {
    testkit::store_suite!(crate::On<crate::sqlite::TempDb>, persistent);
}
