//! The durable state of the gateway: the webhook inbox, checkout sessions, completion
//! records, cart claims and jobs, behind the roles of `psp_core::ports::Store`.
//!
//! SQLite is the embedded default ([`SqliteStore`]); PostgreSQL ([`PgStore`]) is the store
//! that several gateway replicas share. [`open_store`] picks the backend from the URL
//! scheme, so the gateway never names one.
//!
//! Architecture invariant: both are one implementation, [`SqlStore`] (`engine`), generic
//! over a [`Dialect`] that holds what really differs: how the database is opened and its
//! webhooks written (`sqlite::writer`, `postgres::writer`), how a write transaction begins,
//! how the rows a decision reads are locked, and how jobs are leased. The SQL text lives in
//! one module per table (`sql::*`) and is portable SQL that both run (PostgreSQL's own
//! statements are in `postgres::sql`); the rules that decide what to write (a completion
//! only moves forward, a session never leaves a terminal status) are the core's
//! (`psp_core::ports::rules`), which every implementation of the store applies.
//!
//! Architecture invariant: a successful `record_webhook` means the webhook (and its job)
//! has been committed with `synchronous=FULL` (SQLite) or `synchronous_commit=on`
//! (PostgreSQL), i.e. flushed to disk. The PSP is answered 2xx only after that, so an
//! answered webhook survives a crash or power loss.

mod clock;
mod db;
mod decode;
mod dialect;
mod engine;
mod group_commit;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use psp_core::ports::{Store, StoreError};

pub use dialect::{Dialect, Opened};
pub use engine::SqlStore;
pub use postgres::{PgStore, Postgres};
pub use sqlite::{Sqlite, SqliteStore};

/// A recorded webhook as it was received (part of the store's port).
pub use psp_core::ports::StoredWebhook;

/// One state change of a completion record (now part of the `Store` port).
pub use psp_core::ports::CompletionTransition;

/// Opens the store that `url` names: `sqlite://path.db` (created if missing),
/// `sqlite::memory:`, or `postgres://…` / `postgresql://…` (the database must exist; its
/// schema is migrated).
///
/// Errors never repeat the URL, because a database URL may carry a password.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match scheme(url).as_deref() {
        Some("sqlite") => Ok(Arc::new(SqliteStore::open(url).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(PgStore::open(url).await?)),
        Some(other) => Err(StoreError::Backend(format!(
            "unsupported store URL scheme {other:?}; expected sqlite:// or postgres://"
        ))),
        None => Err(StoreError::Backend(
            "the store URL has no scheme; expected sqlite://path.db or postgres://host/db".into(),
        )),
    }
}

/// The lower-cased scheme of a URL, if it starts with one (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`, then a colon).
fn scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| scheme.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::scheme;

    #[test]
    fn schemes_are_read_case_insensitively_and_only_when_well_formed() {
        assert_eq!(scheme("sqlite://x.db").as_deref(), Some("sqlite"));
        assert_eq!(scheme("sqlite::memory:").as_deref(), Some("sqlite"));
        assert_eq!(scheme("Postgres://u:p@h/db").as_deref(), Some("postgres"));
        assert_eq!(scheme("x.db"), None);
        assert_eq!(scheme("/tmp/a b:c"), None);
    }
}
