//! The rules that decide what a store writes, apart from any database, so that every
//! implementation of the store's roles applies the same ones: the SQL backends (`store`)
//! and the in-memory store of the tests (`testkit::mem::MemStore`).
//!
//! - A completion record only moves forward ([`advance_completion`], built on
//!   [`CompletionState::may_become`]).
//! - A session status never leaves a terminal status nor moves backwards
//!   ([`session_may_move`]); saving the PSP's answer opens only a session still being
//!   created ([`session_status_after_save`]); only an ended session restarts
//!   ([`session_may_restart`]).
//! - A job ends an attempt as its result says, but a retry without attempts left fails it
//!   ([`job_state_after`]), and so does a last attempt whose lease expired
//!   ([`job_attempts_spent`], [`EXPIRED_LAST_ATTEMPT`]).
//! - A cart mutation joins a sync job that has not started, or gets a job of its own
//!   ([`decide_sync`]).

use uuid::Uuid;

use super::{CompletionState, CompletionUpdate, JobResult, JobState, SessionStatus};

/// The mutable fields of a stored completion record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionFields {
    /// The state.
    pub state: CompletionState,
    /// The Hantera payment, once created.
    pub payment_id: Option<Uuid>,
    /// Why it needs attention, or what happened last.
    pub reason: Option<String>,
}

/// What `advance_completion` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionChange {
    /// Nothing: the update is older than the record, or says nothing new.
    Keep,
    /// Write these fields; `state_changed` says whether a history entry is due.
    Write {
        /// The record's fields after the update.
        fields: CompletionFields,
        /// Whether the state changed (or the record is new), so a history entry is due.
        state_changed: bool,
    },
}

/// The fields of a record that `update` creates (there was none).
pub fn completion_created(update: &CompletionUpdate) -> CompletionFields {
    CompletionFields {
        state: update.state,
        payment_id: update.payment_id,
        reason: update.reason.clone(),
    }
}

/// Applies `update` to the stored record, if any.
///
/// The state only moves as [`CompletionState::may_become`] allows. Of two final states the
/// first one wins: a payment recorded as `completed` must never be turned into a double
/// payment by a late or replayed event, nor the other way round; the one exception is a
/// completed cart found to cost more than was authorized, which becomes `underpaid`. A
/// payment id or reason that the update does not carry is kept, because losing the Hantera
/// payment id of a created payment would make it impossible to find again without asking
/// Hantera.
pub fn advance_completion(
    stored: Option<&CompletionFields>,
    update: &CompletionUpdate,
) -> CompletionChange {
    let Some(stored) = stored else {
        return CompletionChange::Write {
            fields: completion_created(update),
            state_changed: true,
        };
    };
    let merged = CompletionFields {
        state: update.state,
        payment_id: update.payment_id.or(stored.payment_id),
        reason: update.reason.clone().or_else(|| stored.reason.clone()),
    };
    if stored.state.may_become(update.state) {
        CompletionChange::Write {
            fields: merged,
            state_changed: true,
        }
    } else if update.state == stored.state && merged != *stored {
        CompletionChange::Write {
            fields: merged,
            state_changed: false,
        }
    } else {
        CompletionChange::Keep
    }
}

/// The position of a session status in its forward-only order.
fn session_rank(status: SessionStatus) -> u8 {
    match status {
        SessionStatus::Creating => 0,
        SessionStatus::Open => 1,
        SessionStatus::Authorized => 2,
        SessionStatus::Completed | SessionStatus::Failed | SessionStatus::Canceled => 3,
    }
}

/// Every session status.
pub const SESSION_STATUSES: [SessionStatus; 6] = [
    SessionStatus::Creating,
    SessionStatus::Open,
    SessionStatus::Authorized,
    SessionStatus::Completed,
    SessionStatus::Failed,
    SessionStatus::Canceled,
];

/// Whether `set_session_status(to)` applies to a session in status `from`.
///
/// A terminal status is never left, because a late "pending" or "authorized" event must
/// not reopen a session the gateway has finished with. Below that, a status never moves
/// backwards either (an authorized session does not become open again), but setting the
/// status a session already has is allowed: it records that the session was looked at,
/// which moves it to the back of the reconciliation sweep's queue.
pub fn session_may_move(from: SessionStatus, to: SessionStatus) -> bool {
    !from.is_terminal() && session_rank(to) >= session_rank(from)
}

/// The statuses a session may be in for `set_session_status(to)` to apply
/// ([`session_may_move`]), for a store that tests the status in its query.
pub fn session_may_move_from(to: SessionStatus) -> Vec<SessionStatus> {
    SESSION_STATUSES
        .into_iter()
        .filter(|from| session_may_move(*from, to))
        .collect()
}

/// The status of a session in `status` after `save_session` stored the PSP's answer: only a
/// session still being created becomes open; an authorized or ended session keeps its
/// status, because statuses never move backwards.
pub fn session_status_after_save(status: SessionStatus) -> SessionStatus {
    match status {
        SessionStatus::Creating => SessionStatus::Open,
        other => other,
    }
}

/// Whether `restart_session` starts a session in `status` over: only one that failed or
/// was canceled at the PSP, so that the customer can try again. A session that completed,
/// or one the PSP may still authorize, keeps its payment.
pub fn session_may_restart(status: SessionStatus) -> bool {
    matches!(status, SessionStatus::Failed | SessionStatus::Canceled)
}

/// The state of a job after an attempt that used `attempts` of its `max_attempts` ended with
/// `result`: a retry is pending again while attempts are left, and failed (waiting for a
/// person to replay it) when none are.
pub fn job_state_after(result: &JobResult, attempts: u32, max_attempts: u32) -> JobState {
    match result {
        JobResult::Succeeded => JobState::Succeeded,
        JobResult::Retry { .. } if job_attempts_spent(attempts, max_attempts) => JobState::Failed,
        JobResult::Retry { .. } => JobState::Pending,
        JobResult::Failed { .. } => JobState::Failed,
    }
}

/// Whether a job has no attempt left. A pending job in that state whose lease ran out
/// had its last attempt leased and never answered (its worker crashed or hung): running it
/// once more would exceed its budget, and a job that crashes its worker every time would
/// otherwise run for ever, so it fails with [`EXPIRED_LAST_ATTEMPT`] instead, and the next
/// job of its cart may run.
pub fn job_attempts_spent(attempts: u32, max_attempts: u32) -> bool {
    attempts >= max_attempts
}

/// The error of a job failed because its last attempt's lease expired.
pub const EXPIRED_LAST_ATTEMPT: &str =
    "attempt budget spent: the last attempt's lease expired without an answer";

/// Where a session's newest sync job is, as [`decide_sync`] needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncJobState {
    /// Pending and not under a live lease: it will read the latest payload when it runs.
    Waiting(i64),
    /// Pending under a live lease: it may have read an older payload already.
    Running(i64),
    /// Succeeded or failed.
    Ended,
}

impl SyncJobState {
    /// The state of job `id` from its stored state name and whether a live lease holds it.
    pub fn of(id: i64, state: JobState, leased: bool) -> Self {
        match (state, leased) {
            (JobState::Pending, false) => SyncJobState::Waiting(id),
            (JobState::Pending, true) => SyncJobState::Running(id),
            _ => SyncJobState::Ended,
        }
    }
}

/// What a cart mutation needs, by the rule every store backend applies in
/// [`Sessions::schedule_sync`](super::Sessions::schedule_sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDecision {
    /// Nothing to send.
    Unchanged,
    /// The waiting job will send it.
    Coalesced(i64),
    /// A new job must send it.
    Schedule,
}

/// Decides what a mutation with payload hash `hash` needs, given what the PSP holds
/// (`synced`), the payload stored before this one (`pending`) and the session's newest sync
/// job.
///
/// - A waiting job reads the latest payload when it runs: the mutation joins it.
/// - A running job read the stored payload when it started (no mutation since, or a newer
///   job would be the newest): if that is this payload, it is being sent already.
/// - Otherwise a payload the PSP already holds needs nothing, and any other needs a job.
pub fn decide_sync(
    hash: &str,
    synced: Option<&str>,
    pending: Option<&str>,
    newest: Option<SyncJobState>,
) -> SyncDecision {
    match newest {
        Some(SyncJobState::Waiting(id)) => SyncDecision::Coalesced(id),
        Some(SyncJobState::Running(_)) if pending == Some(hash) => SyncDecision::Unchanged,
        Some(SyncJobState::Running(_)) => SyncDecision::Schedule,
        _ if synced == Some(hash) => SyncDecision::Unchanged,
        _ => SyncDecision::Schedule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CompletionState::*;

    fn update(
        state: CompletionState,
        payment_id: Option<Uuid>,
        reason: Option<&str>,
    ) -> CompletionUpdate {
        CompletionUpdate {
            provider: "mock".into(),
            psp_ref: "pi_1".into(),
            cart_id: Uuid::nil(),
            state,
            payment_id,
            reason: reason.map(str::to_string),
        }
    }

    fn fields(
        state: CompletionState,
        payment_id: Option<Uuid>,
        reason: Option<&str>,
    ) -> CompletionFields {
        CompletionFields {
            state,
            payment_id,
            reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn an_absent_record_is_created_as_asked() {
        let change = advance_completion(None, &update(Started, None, None));
        assert_eq!(
            change,
            CompletionChange::Write {
                fields: fields(Started, None, None),
                state_changed: true
            }
        );
    }

    #[test]
    fn a_higher_state_keeps_the_payment_id_it_does_not_carry() {
        let pay = Some(Uuid::from_u128(7));
        let change = advance_completion(
            Some(&fields(PaymentCreated, pay, None)),
            &update(Completed, None, None),
        );
        assert_eq!(
            change,
            CompletionChange::Write {
                fields: fields(Completed, pay, None),
                state_changed: true
            }
        );
    }

    #[test]
    fn a_lower_state_changes_nothing() {
        for stored in [PaymentCreated, NeedsAttention, Completed, DoublePayment] {
            let change = advance_completion(
                Some(&fields(stored, None, None)),
                &update(Started, Some(Uuid::from_u128(1)), Some("late")),
            );
            assert_eq!(change, CompletionChange::Keep, "{stored:?}");
        }
    }

    #[test]
    fn the_first_final_state_wins() {
        let kept = advance_completion(
            Some(&fields(Completed, None, None)),
            &update(DoublePayment, None, Some("late")),
        );
        assert_eq!(kept, CompletionChange::Keep);
        let kept = advance_completion(
            Some(&fields(DoublePayment, None, None)),
            &update(Completed, None, None),
        );
        assert_eq!(kept, CompletionChange::Keep);
    }

    #[test]
    fn a_completed_record_can_only_become_underpaid_and_underpaid_is_never_left() {
        let change = advance_completion(
            Some(&fields(Completed, Some(Uuid::from_u128(3)), None)),
            &update(
                Underpaid,
                None,
                Some("authorized 100.00 SEK, cart 500.00 SEK"),
            ),
        );
        assert_eq!(
            change,
            CompletionChange::Write {
                fields: fields(
                    Underpaid,
                    Some(Uuid::from_u128(3)),
                    Some("authorized 100.00 SEK, cart 500.00 SEK")
                ),
                state_changed: true
            }
        );
        for late in [
            Started,
            PaymentCreated,
            NeedsAttention,
            Completed,
            DoublePayment,
        ] {
            let kept = advance_completion(
                Some(&fields(Underpaid, None, None)),
                &update(late, None, None),
            );
            assert_eq!(kept, CompletionChange::Keep, "{late:?}");
        }
        let kept = advance_completion(
            Some(&fields(DoublePayment, None, None)),
            &update(Underpaid, None, None),
        );
        assert_eq!(kept, CompletionChange::Keep);
    }

    #[test]
    fn the_same_state_updates_details_without_a_state_change() {
        let change = advance_completion(
            Some(&fields(NeedsAttention, None, Some("old"))),
            &update(NeedsAttention, None, Some("new")),
        );
        assert_eq!(
            change,
            CompletionChange::Write {
                fields: fields(NeedsAttention, None, Some("new")),
                state_changed: false
            }
        );
        let repeat = advance_completion(
            Some(&fields(NeedsAttention, None, Some("new"))),
            &update(NeedsAttention, None, None),
        );
        assert_eq!(repeat, CompletionChange::Keep);
    }

    #[test]
    fn terminal_session_statuses_are_never_left() {
        for to in SESSION_STATUSES {
            let from = session_may_move_from(to);
            assert!(from.iter().all(|s| !s.is_terminal()), "{to:?}: {from:?}");
        }
        assert_eq!(
            session_may_move_from(SessionStatus::Open),
            [SessionStatus::Creating, SessionStatus::Open]
        );
        assert_eq!(
            session_may_move_from(SessionStatus::Canceled),
            [
                SessionStatus::Creating,
                SessionStatus::Open,
                SessionStatus::Authorized
            ]
        );
    }

    #[test]
    fn a_mutation_joins_a_sync_job_that_has_not_started() {
        let waiting = Some(SyncJobState::Waiting(7));
        assert_eq!(
            decide_sync("b", Some("a"), Some("a"), waiting),
            SyncDecision::Coalesced(7)
        );
        // Even a mutation back to what the PSP holds joins it: the job then finds nothing
        // to send, which is right, because the PSP holds it.
        assert_eq!(
            decide_sync("a", Some("a"), Some("b"), waiting),
            SyncDecision::Coalesced(7)
        );
    }

    #[test]
    fn a_mutation_during_a_running_sync_gets_a_job_of_its_own_unless_it_is_being_sent() {
        let running = Some(SyncJobState::Running(7));
        assert_eq!(
            decide_sync("c", Some("a"), Some("b"), running),
            SyncDecision::Schedule
        );
        // Back to what the PSP held before the running sync: that sync will overwrite it,
        // so it must be sent again.
        assert_eq!(
            decide_sync("a", Some("a"), Some("b"), running),
            SyncDecision::Schedule
        );
        assert_eq!(
            decide_sync("b", Some("a"), Some("b"), running),
            SyncDecision::Unchanged
        );
    }

    #[test]
    fn without_a_live_job_only_a_payload_the_psp_does_not_hold_is_scheduled() {
        for newest in [None, Some(SyncJobState::Ended)] {
            assert_eq!(
                decide_sync("a", Some("a"), Some("a"), newest),
                SyncDecision::Unchanged
            );
            assert_eq!(
                decide_sync("b", Some("a"), Some("b"), newest),
                SyncDecision::Schedule,
                "a failed sync of the same payload is tried again by a new mutation"
            );
            assert_eq!(decide_sync("a", None, None, newest), SyncDecision::Schedule);
        }
    }

    #[test]
    fn a_retry_without_attempts_left_fails_the_job() {
        let retry = JobResult::Retry {
            after: std::time::Duration::from_secs(1),
            error: "later".into(),
        };
        assert_eq!(job_state_after(&retry, 1, 3), JobState::Pending);
        assert_eq!(job_state_after(&retry, 3, 3), JobState::Failed);
        assert_eq!(
            job_state_after(&JobResult::Succeeded, 3, 3),
            JobState::Succeeded
        );
        let failed = JobResult::Failed {
            error: "refused".into(),
        };
        assert_eq!(job_state_after(&failed, 1, 3), JobState::Failed);
    }
}
