//! `completions` and `completion_history`: the forward-only record of each PSP payment's
//! completion, and every state it went through.

/// The columns that `decode::completion` reads.
macro_rules! columns {
    () => {
        "provider, psp_ref, cart_id, state, payment_id, reason, updated_at"
    };
}

/// The record of a PSP payment. Run inside the write transaction of `advance_completion`
/// with the dialect's row lock appended, which makes the read and the write that follows
/// one atomic step.
pub(crate) const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM completions WHERE provider = $1 AND psp_ref = $2"
);

/// Creates a record unless a concurrent transaction just did: with PostgreSQL `INSERT … ON
/// CONFLICT` waits for that transaction, so 0 rows means "read it again, locked". (SQLite
/// holds its write lock from the start of the transaction, so no one else can have.)
pub(crate) const INSERT: &str = "\
    INSERT INTO completions \
        (provider, psp_ref, cart_id, state, payment_id, reason, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
    ON CONFLICT (provider, psp_ref) DO NOTHING";

/// Overwrites the mutable fields of a record.
pub(crate) const UPDATE: &str = "\
    UPDATE completions SET state = $3, payment_id = $4, reason = $5, updated_at = $6 \
    WHERE provider = $1 AND psp_ref = $2";

/// Appends a state change to the history.
pub(crate) const HISTORY_APPEND: &str = "\
    INSERT INTO completion_history (provider, psp_ref, state, reason, at) \
    VALUES ($1, $2, $3, $4, $5)";

/// The history of a record, oldest first.
pub(crate) const HISTORY: &str = "\
    SELECT state, reason, at FROM completion_history \
    WHERE provider = $1 AND psp_ref = $2 ORDER BY id";

/// Records whose state is one of `states` (bound as `$1…$states`), newest first, limited by
/// the parameter after them.
pub(crate) fn in_states(states: usize) -> String {
    let mut sql = String::from(concat!(
        "SELECT ",
        columns!(),
        " FROM completions WHERE state IN ("
    ));
    super::push_placeholders(&mut sql, 1, states);
    sql.push_str(") ORDER BY updated_at DESC, provider, psp_ref LIMIT $");
    sql.push_str(&(states + 1).to_string());
    sql
}
