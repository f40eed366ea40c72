//! The transition rules of completion records and sessions, apart from any database so
//! that every backend applies the same ones.

use psp_core::ports::{CompletionState, CompletionUpdate, SessionStatus};
use uuid::Uuid;

/// The mutable fields of a stored completion record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompletionFields {
    pub(crate) state: CompletionState,
    pub(crate) payment_id: Option<Uuid>,
    pub(crate) reason: Option<String>,
}

/// What `advance_completion` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CompletionChange {
    /// Nothing: the update is older than the record, or says nothing new.
    Keep,
    /// Write these fields; `state_changed` says whether a history entry is due.
    Write {
        fields: CompletionFields,
        state_changed: bool,
    },
}

/// Applies `update` to the stored record, if any.
///
/// The state only moves as [`CompletionState::may_become`] allows. Of two final states the
/// first one wins: a payment recorded as `completed` must never be turned into a double
/// payment by a late or replayed event, nor the other way round; the one exception is a
/// completed cart found to cost more than was authorized, which becomes `underpaid`. A payment id or reason that the update
/// does not carry is kept, because losing the Hantera payment id of a created payment
/// would make it impossible to find again without asking Hantera.
pub(crate) fn advance_completion(
    stored: Option<&CompletionFields>,
    update: &CompletionUpdate,
) -> CompletionChange {
    let Some(stored) = stored else {
        return CompletionChange::Write {
            fields: CompletionFields {
                state: update.state,
                payment_id: update.payment_id,
                reason: update.reason.clone(),
            },
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
const ALL_STATUSES: [SessionStatus; 6] = [
    SessionStatus::Creating,
    SessionStatus::Open,
    SessionStatus::Authorized,
    SessionStatus::Completed,
    SessionStatus::Failed,
    SessionStatus::Canceled,
];

/// The statuses a session may be in for `set_session_status(to)` to apply.
///
/// A terminal status is never left, because a late "pending" or "authorized" event must
/// not reopen a session the gateway has finished with. Below that, a status never moves
/// backwards either (an authorized session does not become open again), but setting the
/// status a session already has is allowed: it records that the session was looked at,
/// which moves it to the back of the reconciliation sweep's queue.
pub(crate) fn session_may_move_from(to: SessionStatus) -> Vec<SessionStatus> {
    ALL_STATUSES
        .into_iter()
        .filter(|from| !from.is_terminal() && session_rank(to) >= session_rank(*from))
        .collect()
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
        for to in ALL_STATUSES {
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
}
