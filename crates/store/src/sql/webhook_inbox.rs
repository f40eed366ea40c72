//! `webhook_inbox`: every verified webhook, unique by (provider, event id).
//!
//! The body is bound as a byte slice; SQLite stores it as BLOB and PostgreSQL will store it
//! as bytea. The column type lives only in the migration.

/// Inserts a webhook; affects no row when (provider, event_id) exists already.
pub(crate) const INSERT: &str = "\
    INSERT INTO webhook_inbox (provider, event_id, event_type, psp_ref, body, received_at) \
    VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (provider, event_id) DO NOTHING";

/// One webhook by (provider, event_id).
pub(crate) const GET: &str = "\
    SELECT id, provider, event_id, event_type, psp_ref, body, received_at \
    FROM webhook_inbox WHERE provider = $1 AND event_id = $2";
