//! `jobs`: durable work with dedupe keys, per-cart ordering, leases and retries.

/// The columns that `decode::job` reads.
macro_rules! columns {
    () => {
        "id, kind, dedupe_key, cart_id, payload, state, attempts, max_attempts, next_run_at, \
         last_error, created_at"
    };
}

/// Adds a pending job, due now, unless its dedupe key exists; returns the new id if added.
pub(crate) const INSERT: &str = "\
    INSERT INTO jobs (kind, dedupe_key, cart_id, payload, state, attempts, max_attempts, \
                      next_run_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $6, $6) \
    ON CONFLICT (dedupe_key) DO NOTHING \
    RETURNING id";

/// Inserts a job without returning its id (the webhook writer's form); an existing dedupe
/// key adds nothing.
pub(crate) const INSERT_QUIET: &str = "\
    INSERT INTO jobs (kind, dedupe_key, cart_id, payload, state, attempts, max_attempts, \
                      next_run_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $6, $6) \
    ON CONFLICT (dedupe_key) DO NOTHING";

/// The id of the job holding a dedupe key.
pub(crate) const ID_BY_KEY: &str = "SELECT id FROM jobs WHERE dedupe_key = $1";

/// One job.
pub(crate) const GET: &str = concat!("SELECT ", columns!(), " FROM jobs WHERE id = $1");

/// The job holding a dedupe key.
pub(crate) const BY_KEY: &str = concat!("SELECT ", columns!(), " FROM jobs WHERE dedupe_key = $1");

/// Jobs in a state, newest first.
pub(crate) const IN_STATE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM jobs WHERE state = $1 ORDER BY id DESC LIMIT $2"
);

/// Fails, at time `$1`, every pending job whose last allowed attempt was leased and whose
/// lease ran out without an answer (its worker crashed or hung), with the error
/// `rules::EXPIRED_LAST_ATTEMPT`: the rule `rules::job_attempts_spent` in SQL.
pub(crate) const EXHAUST: &str = "\
    UPDATE jobs \
    SET state = 'failed', \
        last_error = 'attempt budget spent: the last attempt''s lease expired without an answer', \
        lease_owner = NULL, lease_until = NULL, updated_at = $1 \
    WHERE state = 'pending' AND lease_until IS NOT NULL AND lease_until < $1 \
      AND attempts >= max_attempts \
    RETURNING id, attempts, last_error";

/// Whether a job exists.
pub(crate) const EXISTS: &str = "SELECT COUNT(*) AS count FROM jobs WHERE id = $1";

/// Leases up to `$4` jobs to `$1` until `$2`, at time `$3`, in one statement, so that two
/// gateway processes sharing the database cannot lease the same job.
///
/// A job is leasable when it is pending, due, not under a live lease, and no older pending
/// job of its cart exists. The last condition gives both "at most one job per cart at a
/// time" (the oldest one is the only candidate, and while it is leased it still blocks the
/// rest) and "in order" (a later job waits until every earlier one has ended, even one
/// that is backing off before a retry). Across carts the oldest jobs go first, which also
/// lets SQLite walk `jobs_state` in order and stop at the limit.
pub(crate) const LEASE: &str = concat!(
    "UPDATE jobs \
     SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
     WHERE id IN ( \
         SELECT j.id FROM jobs j \
         WHERE j.state = 'pending' \
           AND j.next_run_at <= $3 \
           AND (j.lease_until IS NULL OR j.lease_until < $3) \
           AND (j.cart_id IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM jobs older \
                 WHERE older.cart_id = j.cart_id AND older.state = 'pending' \
                   AND older.id < j.id)) \
         ORDER BY j.id \
         LIMIT $4) \
     RETURNING ",
    columns!()
);

/// Ends an attempt successfully, if `$2` still holds the lease of job `$1`.
pub(crate) const SUCCEED: &str = "\
    UPDATE jobs \
    SET state = 'succeeded', lease_owner = NULL, lease_until = NULL, updated_at = $3 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'pending'";

/// Schedules the next attempt at `$3` with error `$4`, or fails the job when its attempt
/// budget is spent (`rules::job_state_after`); only if `$2` still holds the lease of job
/// `$1`.
pub(crate) const RETRY: &str = "\
    UPDATE jobs \
    SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END, \
        next_run_at = $3, last_error = $4, lease_owner = NULL, lease_until = NULL, \
        updated_at = $5 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'pending'";

/// Fails the job with error `$3`, if `$2` still holds the lease of job `$1`.
pub(crate) const FAIL: &str = "\
    UPDATE jobs \
    SET state = 'failed', last_error = $3, lease_owner = NULL, lease_until = NULL, \
        updated_at = $4 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'pending'";

/// Makes a failed job pending again, due now, with a fresh attempt budget. The last error
/// is kept until the next attempt replaces it, so the admin can still see why it failed.
pub(crate) const REPLAY: &str = "\
    UPDATE jobs \
    SET state = 'pending', attempts = 0, next_run_at = $2, lease_owner = NULL, \
        lease_until = NULL, updated_at = $2 \
    WHERE id = $1 AND state = 'failed'";

/// Replaces the payload of job `$1`, if `$2` still holds its live lease at time `$4`.
pub(crate) const SAVE_PROGRESS: &str = "\
    UPDATE jobs SET payload = $3, updated_at = $4 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'pending' AND lease_until >= $4";

/// Pending jobs per kind: how many, and when the oldest was created.
pub(crate) const PENDING_BY_KIND: &str = "\
    SELECT kind, COUNT(*) AS count, MIN(created_at) AS oldest FROM jobs \
    WHERE state = 'pending' GROUP BY kind ORDER BY kind";

/// Whether job `$1` is pending and under a live lease at time `$2`, i.e. running.
pub(crate) const STATE_AND_LEASE: &str = "\
    SELECT state, \
           CAST(CASE WHEN lease_until IS NOT NULL AND lease_until >= $2 THEN 1 ELSE 0 END \
                AS BIGINT) AS running \
    FROM jobs WHERE id = $1";

/// Adds a pending job due at `$6`, unless its dedupe key exists; returns the new id.
pub(crate) const INSERT_DUE: &str = "\
    INSERT INTO jobs (kind, dedupe_key, cart_id, payload, state, attempts, max_attempts, \
                      next_run_at, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7, $7) \
    ON CONFLICT (dedupe_key) DO NOTHING \
    RETURNING id";

#[cfg(test)]
mod tests {
    use psp_core::ports::rules::EXPIRED_LAST_ATTEMPT;

    #[test]
    fn a_job_whose_last_lease_expired_fails_with_the_rules_error() {
        let quoted = EXPIRED_LAST_ATTEMPT.replace('\'', "''");
        assert!(super::EXHAUST.contains(&format!("'{quoted}'")));
    }
}
