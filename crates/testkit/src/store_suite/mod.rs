//! The store's behaviour suite: what every implementation of `psp_core::ports::Store`
//! must do, held to the same assertions whatever it runs on.
//!
//! Each test is a function generic over a [`Backend`], a factory of fresh stores, and
//! [`store_suite!`](macro@crate::store_suite) turns them into `#[tokio::test]`s for one backend.
//! The SQL stores run it (`crates/store/tests/store/`, SQLite and PostgreSQL) and so does
//! `MemStore` (`crates/testkit/tests/testkit/`), so that the in-process tests of the
//! orchestrator and the gateway cannot rely on semantics the real stores do not have. The
//! tests of what only a database has (reopening it, several stores on one database,
//! closing) need a [`Persistent`] backend and run with `store_suite!(Backend, persistent)`.

pub mod claims;
pub mod completions;
pub mod jobs;
pub mod sessions;
pub mod sync;
pub mod webhooks;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use psp_core::money::{Currency, Money};
use psp_core::ports::{NewJob, NewWebhook, Store, StoreError, StoredWebhook};
use uuid::Uuid;

/// A store to test, and how to make a fresh one.
pub trait Backend: Send + Sync + 'static {
    /// The store under test.
    type Store: Store;

    /// What keeps a store's database alive for a test (a temporary file, a schema on the
    /// test server), and removes it when dropped.
    type Db: Send + Sync;

    /// A store on a fresh, empty database.
    fn fresh() -> impl Future<Output = (Self::Db, Self::Store)> + Send;

    /// A recorded webhook, as received: what the store's `webhook` answers.
    fn webhook(
        store: &Self::Store,
        provider: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<StoredWebhook>, StoreError>> + Send;
}

/// A backend whose database outlives a store: it can be reopened, shared by several
/// stores (as several gateway processes or replicas share it), and closed.
pub trait Persistent: Backend {
    /// A fresh, empty database.
    fn new_db() -> Self::Db;

    /// A store on `db`; several stores on one `db` are several processes.
    fn open(db: &Self::Db) -> impl Future<Output = Self::Store> + Send;

    /// Closes a store: what it has queued is written, later operations fail.
    fn close(store: &Self::Store) -> impl Future<Output = ()> + Send;
}

/// A job of `kind` under `dedupe_key`, with five attempts.
pub fn job(kind: &str, dedupe_key: &str, cart_id: Option<Uuid>) -> NewJob {
    NewJob {
        kind: kind.into(),
        dedupe_key: dedupe_key.into(),
        cart_id,
        payload: serde_json::json!({ "key": dedupe_key, "amount": 12.50 }),
        max_attempts: 5,
    }
}

/// A mock webhook `event_id`, with an optional job.
pub fn webhook(event_id: &str, job: Option<NewJob>) -> NewWebhook {
    NewWebhook {
        provider: "mock".into(),
        event_id: event_id.into(),
        event_type: "payment.authorized".into(),
        psp_ref: Some(format!("pay_{event_id}")),
        body: format!(r#"{{"id":"{event_id}","type":"payment.authorized"}}"#).into_bytes(),
        job,
    }
}

/// An amount in SEK.
pub fn sek(minor: i64) -> Money {
    Money::from_minor(
        minor,
        Currency::from_code("SEK").expect("SEK is a currency"),
    )
}

/// Cart number `n`.
pub fn cart(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn system_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit in i64")
}

/// Waits until the system clock (which the stores read, in milliseconds; `MemStore` adds
/// an offset the suite never moves) has moved past the current millisecond, so that what
/// is written next is strictly later than what was written before. It polls instead of
/// sleeping a fixed time.
pub async fn next_millisecond() {
    let start = system_ms();
    while system_ms() <= start {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Polls `probe` until it returns `Some`, failing the test after a generous deadline so
/// that a broken store shows up as a failure instead of a hang.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The suite's tests as `#[tokio::test]`s for one [`Backend`], one module per part of the
/// store (`webhooks`, `sessions`, …), in the module that invokes it:
///
/// ```text
/// // `crate::Sqlite` implements testkit::store_suite::{Backend, Persistent}.
/// mod suite {
///     testkit::store_suite!(crate::Sqlite, persistent);
/// }
/// ```
///
/// The backend is named by a path from the crate root (or a name the invoking module
/// imports), because the tests are generated in modules below it. Without `persistent`,
/// the tests that need a [`Persistent`] backend are left out at compile time (rather than
/// compiled and passing without asserting anything); with it, they are generated in a
/// module `persistent`. Every public test function of the suite is listed here once
/// (`every_suite_test_is_listed` in testkit's tests holds that).
#[macro_export]
macro_rules! store_suite {
    ($backend:ty) => {
        $crate::store_suite!(@tests $backend;
            claims {
                the_first_claim_wins_and_later_claims_are_told_the_holder,
                #[multi] twenty_concurrent_claims_leave_one_holder_that_everyone_sees,
            }
            completions {
                a_new_record_is_created_in_the_state_asked,
                the_state_never_moves_backwards_and_the_payment_id_is_kept,
                the_first_final_state_wins,
                history_is_appended_only_when_the_state_changes,
                the_same_state_fills_in_details_without_a_history_entry,
                completions_in_lists_the_asked_states_newest_first,
                #[multi] concurrent_advances_end_in_the_highest_state_with_an_increasing_history,
            }
            jobs {
                an_enqueued_job_is_pending_and_due_and_its_key_is_unique,
                a_leased_job_counts_the_attempt_and_goes_to_one_owner_only,
                jobs_of_one_cart_run_one_at_a_time_in_order_while_other_carts_run_alongside,
                a_later_job_of_a_cart_waits_while_an_earlier_one_backs_off,
                a_cart_moves_on_to_its_next_job_once_the_earlier_one_has_failed,
                leasing_respects_the_limit_and_hands_out_the_oldest_jobs_first,
                an_expired_lease_goes_to_another_owner_and_the_old_owners_finish_is_ignored,
                a_job_whose_last_attempt_expired_fails_instead_of_running_again,
                a_retry_runs_again_after_its_delay_with_the_error_kept,
                a_retry_after_the_last_attempt_fails_the_job,
                a_definite_failure_fails_the_job_at_once,
                finishing_a_job_that_does_not_exist_is_not_found,
                a_replayed_job_is_pending_again_with_a_fresh_budget,
                jobs_in_lists_a_state_newest_first,
            }
            sessions {
                reserving_twice_returns_the_first_reservation,
                a_saved_session_is_open_and_holds_what_the_psp_answered,
                a_synced_amount_is_recorded_only_while_the_session_holds_that_payment,
                saving_a_session_that_was_never_reserved_is_not_found,
                a_terminal_session_status_is_never_left,
                a_session_status_moves_forward_but_not_back,
                setting_the_status_of_a_payment_without_a_session_is_not_an_error,
                a_failed_session_restarts_with_a_new_key_and_no_payment,
                restarting_a_session_that_has_not_ended_changes_nothing,
                quiet_sessions_are_the_unfinished_ones_with_a_payment_oldest_first,
            }
            sync {
                mutations_while_a_sync_job_waits_join_it_and_the_job_reads_the_latest_payload,
                a_mutation_during_a_running_sync_gets_a_job_of_its_own,
                a_payload_the_psp_holds_schedules_nothing_and_a_delay_defers_the_job,
                sessions_of_a_cart_are_listed_by_provider_and_can_be_flagged_for_a_person,
                a_job_keeps_its_history_and_its_progress_only_under_its_lease,
                pending_jobs_are_counted_per_kind_with_their_oldest,
            }
            webhooks {
                a_new_webhook_is_stored_as_received_together_with_its_job,
                a_duplicate_webhook_adds_nothing_not_even_its_job,
                a_webhook_without_a_job_enqueues_nothing,
                the_same_event_id_at_another_provider_is_another_webhook,
                a_new_webhook_whose_job_key_exists_is_new_and_keeps_the_existing_job,
                #[multi] concurrent_deliveries_record_each_event_once,
            }
        );
    };
    ($backend:ty, persistent) => {
        $crate::store_suite!($backend);
        mod persistent {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_suite!(@tests $backend;
                jobs {
                    #[multi] two_processes_sharing_the_file_never_lease_the_same_job,
                }
                webhooks {
                    #[multi] concurrent_deliveries_record_each_event_once_and_survive_reopening,
                    an_answered_webhook_is_on_disk_even_if_the_store_is_dropped_without_closing,
                    recording_after_close_fails_and_records_nothing,
                }
            );
        }
    };
    (@tests $backend:ty; $($part:ident { $($(#[$flavor:ident])? $test:ident,)* })*) => {
        $(
            mod $part {
                #[allow(unused_imports)]
                use super::*;
                $(
                    $crate::store_suite!(@test $backend, $part, $test $(, $flavor)?);
                )*
            }
        )*
    };
    (@test $backend:ty, $part:ident, $test:ident) => {
        #[::tokio::test]
        async fn $test() {
            $crate::store_suite::$part::$test::<$backend>().await
        }
    };
    (@test $backend:ty, $part:ident, $test:ident, multi) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            $crate::store_suite::$part::$test::<$backend>().await
        }
    };
}
