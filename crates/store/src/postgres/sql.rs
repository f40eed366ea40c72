//! The SQL that PostgreSQL runs instead of the shared modules in `crate::sql`, all in one
//! place: its lease (`SKIP LOCKED`, under an advisory lock) and the webhook writer's
//! batched inserts. Everything else runs the shared text unchanged (with `FOR UPDATE`
//! appended where a decision reads its rows, `Dialect::LOCK_ROWS`).

/// Serialises `lease_jobs` across the connections and replicas that share one schema, for
/// the rest of the transaction. Job ids come from a sequence, and a job can commit after a
/// younger job of its cart (two replicas enqueueing at once); two leasing transactions
/// whose snapshots straddle that commit could then each lease a different job of the
/// cart. Taken in the lease transaction's first statement, this lock makes each lease
/// statement see every earlier lease. The second key keeps gateways in different schemas
/// of one database from waiting for each other.
pub(crate) const LEASE_LOCK: &str =
    "SELECT pg_advisory_xact_lock(1885434739, hashtext(current_schema()))";

/// The columns that `decode::job` reads (the same list as `crate::sql::jobs`).
macro_rules! job_columns {
    () => {
        "id, kind, dedupe_key, cart_id, payload, state, attempts, max_attempts, next_run_at, \
         last_error, created_at"
    };
}

/// `crate::sql::jobs::LEASE` for PostgreSQL: the same rule (pending, due, not under a
/// live lease, no older pending job of its cart; oldest first), plus
///
/// - `FOR UPDATE OF j SKIP LOCKED`: a job whose row another transaction is changing (a
///   finish, a replay, a `schedule_sync` looking at it) is left for the next round instead
///   of waiting for it, and a row this statement locked is re-checked against the lease
///   condition, so no job is leased twice;
/// - no pending job of the cart under a live lease: with SQLite that follows from "no
///   older pending job", but here a job may become visible after a younger job of its cart
///   was leased (see [`LEASE_LOCK`]), and it must wait for that one.
pub(crate) const LEASE: &str = concat!(
    "UPDATE jobs \
     SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
     WHERE id IN ( \
         SELECT j.id FROM jobs j \
         WHERE j.state = 'pending' \
           AND j.next_run_at <= $3 \
           AND (j.lease_until IS NULL OR j.lease_until < $3) \
           AND (j.cart_id IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM jobs other \
                 WHERE other.cart_id = j.cart_id AND other.state = 'pending' \
                   AND other.id <> j.id \
                   AND (other.id < j.id OR other.lease_until >= $3))) \
         ORDER BY j.id \
         LIMIT $4 \
         FOR UPDATE OF j SKIP LOCKED) \
     RETURNING ",
    job_columns!()
);

/// Records a batch of webhooks in one statement: the arrays hold provider, event id, event
/// type, PSP ref and body, in batch order; `$6` is the time. Returns the (provider, event
/// id) of every row inserted, so the rest are duplicates (of a stored webhook, or of one
/// earlier in the same batch: `DO NOTHING` skips a row that conflicts with one this
/// statement inserted).
pub(crate) const WEBHOOKS_INSERT: &str = "\
    INSERT INTO webhook_inbox (provider, event_id, event_type, psp_ref, body, received_at) \
    SELECT provider, event_id, event_type, psp_ref, body, $6 \
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[]) \
         WITH ORDINALITY AS w (provider, event_id, event_type, psp_ref, body, n) \
    ORDER BY n \
    ON CONFLICT (provider, event_id) DO NOTHING \
    RETURNING provider, event_id";

/// Adds the jobs of a batch's new webhooks in one statement, like `jobs::INSERT_QUIET`:
/// the arrays hold kind, dedupe key, cart, payload and attempt budget; `$6` is the time.
pub(crate) const JOBS_INSERT: &str = "\
    INSERT INTO jobs (kind, dedupe_key, cart_id, payload, state, attempts, max_attempts, \
                      next_run_at, created_at, updated_at) \
    SELECT kind, dedupe_key, cart_id, payload, 'pending', 0, max_attempts, $6, $6, $6 \
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
         WITH ORDINALITY AS j (kind, dedupe_key, cart_id, payload, max_attempts, n) \
    ORDER BY n \
    ON CONFLICT (dedupe_key) DO NOTHING";
