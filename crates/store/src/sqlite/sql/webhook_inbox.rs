//! `webhook_inbox`: every verified webhook, unique by (provider, event id).
//!
//! The body is bound as a byte slice; SQLite stores it as BLOB and PostgreSQL will store it
//! as bytea. The column type lives only in the migration.

/// The head of a multi-row insert; the writer appends `VALUES (…), (…)` and the tail.
pub(crate) const INSERT_MANY_HEAD: &str =
    "INSERT INTO webhook_inbox (provider, event_id, event_type, psp_ref, body, received_at) ";

/// The tail of a multi-row insert: duplicates are skipped and the inserted keys returned.
pub(crate) const INSERT_MANY_TAIL: &str =
    " ON CONFLICT (provider, event_id) DO NOTHING RETURNING provider, event_id";

/// One webhook by (provider, event_id).
pub(crate) const GET: &str = "\
    SELECT id, provider, event_id, event_type, psp_ref, body, received_at \
    FROM webhook_inbox WHERE provider = $1 AND event_id = $2";
