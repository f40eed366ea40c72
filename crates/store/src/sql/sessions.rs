//! `sessions`: one checkout session per (cart, provider).

/// The columns that `decode::session` reads, in one place so every query selects the same.
macro_rules! columns {
    () => {
        "cart_id, provider, idempotency_key, psp_ref, amount_minor, currency, client_json, \
         status, updated_at"
    };
}

/// Creates the session in status `creating` unless one exists for (cart, provider).
pub(crate) const RESERVE: &str = "\
    INSERT INTO sessions (cart_id, provider, idempotency_key, status, created_at, updated_at) \
    VALUES ($1, $2, $3, 'creating', $4, $4) \
    ON CONFLICT (cart_id, provider) DO NOTHING";

/// The session of (cart, provider).
pub(crate) const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sessions WHERE cart_id = $1 AND provider = $2"
);

/// The session holding a PSP payment.
pub(crate) const BY_REF: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sessions WHERE provider = $1 AND psp_ref = $2"
);

/// Every session of a cart, by provider.
pub(crate) const OF_CART: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sessions WHERE cart_id = $1 ORDER BY provider"
);

/// The columns that `decode::session_sync` reads.
macro_rules! sync_columns {
    () => {
        "cart_id, provider, synced_hash, pending_hash, pending_payload, pending_cart, \
         attention, attention_at"
    };
}

/// The sync bookkeeping of (cart, provider).
pub(crate) const SYNC_GET: &str = concat!(
    "SELECT ",
    sync_columns!(),
    " FROM sessions WHERE cart_id = $1 AND provider = $2"
);

/// What `schedule_sync` decides on, read inside its write transaction.
pub(crate) const SYNC_DECIDE: &str = "\
    SELECT synced_hash, pending_hash, sync_job_id, sync_seq \
    FROM sessions WHERE cart_id = $1 AND provider = $2";

/// Stores the latest payload of a mutation.
pub(crate) const SYNC_SET_PENDING: &str = "\
    UPDATE sessions SET pending_hash = $3, pending_payload = $4, pending_cart = $5 \
    WHERE cart_id = $1 AND provider = $2";

/// Points the session at its newest sync job, numbered `$4`.
pub(crate) const SYNC_SET_JOB: &str = "\
    UPDATE sessions SET sync_job_id = $3, sync_seq = $4 \
    WHERE cart_id = $1 AND provider = $2";

/// Records the hash of what the PSP holds.
pub(crate) const SYNC_MARK: &str = "\
    UPDATE sessions SET synced_hash = $3 WHERE cart_id = $1 AND provider = $2";

/// Flags a session for a person.
pub(crate) const FLAG: &str = "\
    UPDATE sessions SET attention = $3, attention_at = $4 \
    WHERE cart_id = $1 AND provider = $2";

/// Flagged sessions, most recently flagged first.
pub(crate) const FLAGGED: &str = concat!(
    "SELECT ",
    sync_columns!(),
    " FROM sessions WHERE attention IS NOT NULL ORDER BY attention_at DESC LIMIT $1"
);

/// Starts over a session that ended in `failed` or `canceled`: a new idempotency key, no PSP
/// payment, status `creating`. A session in any other status is left as it is.
pub(crate) const RESTART: &str = "\
    UPDATE sessions \
    SET idempotency_key = $3, psp_ref = NULL, amount_minor = NULL, currency = NULL, \
        client_json = NULL, status = 'creating', updated_at = $4 \
    WHERE cart_id = $1 AND provider = $2 AND status IN ('failed', 'canceled')";

/// Stores what the PSP answered. Only a session still `creating` becomes `open`: an
/// authorized or ended session keeps its status, because statuses never move backwards.
pub(crate) const SAVE: &str = "\
    UPDATE sessions \
    SET psp_ref = $3, amount_minor = $4, currency = $5, client_json = $6, \
        status = CASE WHEN status = 'creating' THEN 'open' ELSE status END, \
        updated_at = $7 \
    WHERE cart_id = $1 AND provider = $2";

/// Records the amount a sync gave the session's PSP payment, only while the session still
/// holds that payment.
pub(crate) const SET_AMOUNT: &str = "\
    UPDATE sessions SET amount_minor = $4, currency = $5, updated_at = $6 \
    WHERE cart_id = $1 AND provider = $2 AND psp_ref = $3";

/// Sets the status of the session holding a PSP payment, but only when its current status
/// is one of those bound from `$5` on (the statuses it may move from).
pub(crate) fn set_status(allowed_from: usize) -> String {
    let mut sql = String::from(
        "UPDATE sessions SET status = $3, updated_at = $4 \
         WHERE provider = $1 AND psp_ref = $2 AND status IN (",
    );
    super::push_placeholders(&mut sql, 5, allowed_from);
    sql.push(')');
    sql
}

/// Sessions that have not ended, hold a PSP payment and have not changed since `$1`, oldest
/// first. The status list is written out (not bound) so that SQLite can use the partial
/// index `sessions_quiet`, whose condition is the same list.
pub(crate) const QUIET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM sessions \
      WHERE status IN ('creating', 'open', 'authorized') \
        AND psp_ref IS NOT NULL AND updated_at < $1 \
      ORDER BY updated_at, cart_id, provider \
      LIMIT $2"
);

#[cfg(test)]
mod tests {
    use psp_core::ports::rules::{
        session_may_restart, session_status_after_save, SESSION_STATUSES,
    };

    // The statements below write a rule of `psp_core::ports::rules` in SQL; these tests
    // hold the SQL to the rule, so that the SQL stores and `MemStore` cannot drift apart.

    #[test]
    fn the_quiet_query_lists_exactly_the_statuses_that_are_not_terminal() {
        for status in SESSION_STATUSES {
            let listed = super::QUIET.contains(&format!("'{}'", status.as_str()));
            assert_eq!(listed, !status.is_terminal(), "{status:?}");
        }
    }

    #[test]
    fn restarting_lists_exactly_the_statuses_the_rule_restarts() {
        let (_, list) = super::RESTART
            .split_once("status IN (")
            .expect("RESTART tests the status");
        let (list, _) = list.split_once(')').expect("a closed list");
        for status in SESSION_STATUSES {
            let listed = list.contains(&format!("'{}'", status.as_str()));
            assert_eq!(listed, session_may_restart(status), "{status:?}");
        }
    }

    #[test]
    fn saving_changes_exactly_the_statuses_the_rule_changes() {
        for status in SESSION_STATUSES {
            let after = session_status_after_save(status);
            let case = format!("status = '{}' THEN '{}'", status.as_str(), after.as_str());
            assert_eq!(super::SAVE.contains(&case), after != status, "{status:?}");
        }
    }
}
