//! PostgreSQL as a backend of the behaviour suite: a fresh schema on the real server per
//! test, which several stores (replicas) can open at once.
//!
//! Every `TempDb` is a schema `t_<uuid>` of the test database, chosen per connection with
//! `options[search_path]` in the URL, so tests run in parallel without seeing each other
//! and the schema (tables, migrations record and all) is dropped when the `TempDb` goes
//! away, even when the test panics.

mod replicas;

use store::Postgres;
use uuid::Uuid;

/// The server and database the tests use: `PSP_TEST_POSTGRES_URL`, or the local server's
/// `test` database as the current OS user (trust authentication), which is how both
/// developer machines and CI run it.
pub(crate) fn server_url() -> String {
    std::env::var("PSP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".to_string())
}

/// A fresh schema on the test server; dropped with everything in it on drop.
pub(crate) struct TempDb {
    pub(crate) schema: String,
    pub(crate) url: String,
}

/// Several stores on one schema are several replicas.
impl crate::TestDb for TempDb {
    type Dialect = Postgres;

    fn new() -> Self {
        let schema = format!("t_{}", Uuid::new_v4().simple());
        run_blocking(format!("CREATE SCHEMA {schema}"));
        let base = server_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        Self { schema, url }
    }

    fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        // A connection left inside a transaction would make the drop wait for ever; the
        // lock timeout turns that into a failure that names the problem.
        let sql = format!(
            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE",
            self.schema
        );
        if std::thread::panicking() {
            // Already failing: clean up if possible, without a second panic.
            let _ = std::thread::spawn(move || block_on(run(&sql))).join();
        } else {
            run_blocking(sql);
        }
    }
}

/// Runs one statement from synchronous code (`new`, `drop`). They cannot await, and the
/// test's runtime may be the current-thread one that is calling them, so a short-lived
/// runtime on a thread of its own does the work.
fn run_blocking(sql: String) {
    std::thread::spawn(move || block_on(run(&sql)))
        .join()
        .expect("the statement ran");
}

fn block_on(work: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work);
}

/// Runs one statement on a connection of its own.
async fn run(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&server_url())
        .await
        .expect("the PostgreSQL test server answers (see PSP_TEST_POSTGRES_URL)");
    sqlx::raw_sql(sql).execute(&mut conn).await.expect(sql);
    let _ = conn.close().await;
}

mod suite {
    testkit::store_suite!(crate::On<crate::postgres::TempDb>, persistent);
}
