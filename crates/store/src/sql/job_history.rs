//! `job_history`: every lease, retry, failure, success and replay of a job.

/// Appends an event for job `$1`: `$2` the event, `$3` the attempt, `$4` the error.
pub(crate) const APPEND: &str = "\
    INSERT INTO job_history (job_id, event, attempt, error, at) VALUES ($1, $2, $3, $4, $5)";

/// Appends the event that ended an attempt of job `$1` at `$2`, read from the job row
/// after the update: `succeeded`, `failed`, or `retry` when it is pending again.
pub(crate) const APPEND_FINISH: &str = "\
    INSERT INTO job_history (job_id, event, attempt, error, at) \
    SELECT id, CASE state WHEN 'succeeded' THEN 'succeeded' WHEN 'failed' THEN 'failed' \
                          ELSE 'retry' END, \
           attempts, CASE state WHEN 'succeeded' THEN NULL ELSE last_error END, $2 \
    FROM jobs WHERE id = $1";

/// The events of job `$1`, oldest first.
pub(crate) const OF_JOB: &str = "\
    SELECT event, attempt, error, at FROM job_history WHERE job_id = $1 ORDER BY id";
