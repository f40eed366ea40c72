//! `MemStore` follows the doc comment of every `Store` method.

use std::time::Duration;

use psp_core::ports::{
    CompletionState, CompletionUpdate, Enqueued, JobResult, JobState, NewJob, NewWebhook, Recorded,
    SessionStatus, Store,
};
use psp_core::{Currency, Money};
use testkit::mem::MemStore;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);

fn job(key: &str, cart_id: Option<Uuid>) -> NewJob {
    NewJob {
        kind: "complete".into(),
        dedupe_key: key.into(),
        cart_id,
        payload: serde_json::json!({ "key": key }),
        max_attempts: 3,
    }
}

fn update(psp_ref: &str, state: CompletionState) -> CompletionUpdate {
    CompletionUpdate {
        provider: "mock".into(),
        psp_ref: psp_ref.into(),
        cart_id: Uuid::nil(),
        state,
        payment_id: None,
        reason: None,
    }
}

fn sek(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("SEK").unwrap())
}

#[tokio::test]
async fn a_webhook_is_recorded_once_with_its_job() {
    let store = MemStore::new();
    let webhook = NewWebhook {
        provider: "mock".into(),
        event_id: "evt_1".into(),
        event_type: "payment.authorized".into(),
        psp_ref: Some("pay_1".into()),
        body: b"{}".to_vec(),
        job: Some(job("complete:mock:pay_1", None)),
    };
    assert_eq!(
        store.record_webhook(webhook.clone()).await.unwrap(),
        Recorded::New
    );
    assert_eq!(
        store.record_webhook(webhook).await.unwrap(),
        Recorded::Duplicate
    );
    assert_eq!(store.webhooks().len(), 1);
    assert_eq!(store.jobs().len(), 1);
}

#[tokio::test]
async fn a_job_with_a_known_dedupe_key_is_not_added_again() {
    let store = MemStore::new();
    let first = store.enqueue(job("k", None)).await.unwrap();
    let Enqueued::New(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        store.enqueue(job("k", None)).await.unwrap(),
        Enqueued::Duplicate(id)
    );
    assert_eq!(store.jobs().len(), 1);
}

#[tokio::test]
async fn completions_only_move_forward_and_the_first_final_state_wins() {
    let store = MemStore::new();
    let pay = Uuid::new_v4();
    store
        .advance_completion(update("p", CompletionState::Started))
        .await
        .unwrap();
    let created = store
        .advance_completion(CompletionUpdate {
            payment_id: Some(pay),
            ..update("p", CompletionState::PaymentCreated)
        })
        .await
        .unwrap();
    assert_eq!(created.state, CompletionState::PaymentCreated);

    let back = store
        .advance_completion(update("p", CompletionState::Started))
        .await
        .unwrap();
    assert_eq!(
        back.state,
        CompletionState::PaymentCreated,
        "a lower state changes nothing"
    );

    let done = store
        .advance_completion(update("p", CompletionState::Completed))
        .await
        .unwrap();
    assert_eq!(done.state, CompletionState::Completed);
    assert_eq!(
        done.payment_id,
        Some(pay),
        "a payment id the update does not carry is kept"
    );

    let late = store
        .advance_completion(CompletionUpdate {
            reason: Some("late".into()),
            ..update("p", CompletionState::DoublePayment)
        })
        .await
        .unwrap();
    assert_eq!(
        late.state,
        CompletionState::Completed,
        "the first final state wins"
    );
    assert_eq!(late.reason, None);
}

#[tokio::test]
async fn the_same_state_may_fill_in_a_reason_and_listing_is_newest_first() {
    let store = MemStore::new();
    for (psp_ref, reason) in [("a", "first"), ("b", "second")] {
        store
            .advance_completion(CompletionUpdate {
                reason: Some(reason.into()),
                ..update(psp_ref, CompletionState::NeedsAttention)
            })
            .await
            .unwrap();
    }
    let again = store
        .advance_completion(CompletionUpdate {
            reason: Some("again".into()),
            ..update("a", CompletionState::NeedsAttention)
        })
        .await
        .unwrap();
    assert_eq!(again.reason.as_deref(), Some("again"));
    let listed = store
        .completions_in(&[CompletionState::NeedsAttention], 10)
        .await
        .unwrap();
    let refs: Vec<&str> = listed.iter().map(|c| c.psp_ref.as_str()).collect();
    assert_eq!(refs, ["a", "b"]);
    assert!(store
        .completions_in(&[CompletionState::Completed], 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_cart_claim_is_held_by_the_first_payment_only() {
    let store = MemStore::new();
    let cart = Uuid::new_v4();
    assert!(store.cart_claim(cart).await.unwrap().is_none());
    let first = store.claim_cart(cart, "mock", "a").await.unwrap();
    let second = store.claim_cart(cart, "mock", "b").await.unwrap();
    assert_eq!(first, second);
    assert_eq!(second.psp_ref, "a");
    assert_eq!(store.cart_claim(cart).await.unwrap(), Some(first));
}

#[tokio::test]
async fn the_jobs_of_one_cart_are_leased_one_at_a_time_in_order() {
    let store = MemStore::new();
    let cart = Uuid::new_v4();
    store.enqueue(job("c1", Some(cart))).await.unwrap();
    store.enqueue(job("c2", Some(cart))).await.unwrap();
    store.enqueue(job("free", None)).await.unwrap();

    let leased = store.lease_jobs("w1", LEASE, 10).await.unwrap();
    let keys: Vec<&str> = leased.iter().map(|j| j.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["c1", "free"]);
    assert!(leased.iter().all(|j| j.attempts == 1));
    assert!(
        store.lease_jobs("w2", LEASE, 10).await.unwrap().is_empty(),
        "a leased job blocks the younger jobs of its cart"
    );

    store
        .finish_job(leased[0].id, "w1", JobResult::Succeeded)
        .await
        .unwrap();
    let next = store.lease_jobs("w2", LEASE, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].dedupe_key, "c2");
}

#[tokio::test]
async fn a_job_backing_off_still_blocks_the_younger_jobs_of_its_cart() {
    let store = MemStore::new();
    let cart = Uuid::new_v4();
    store.enqueue(job("c1", Some(cart))).await.unwrap();
    store.enqueue(job("c2", Some(cart))).await.unwrap();
    let leased = store.lease_jobs("w", LEASE, 10).await.unwrap();
    store
        .finish_job(
            leased[0].id,
            "w",
            JobResult::Retry {
                after: Duration::from_secs(60),
                error: "Hantera unavailable".into(),
            },
        )
        .await
        .unwrap();
    assert!(store.lease_jobs("w", LEASE, 10).await.unwrap().is_empty());
    store.advance_clock(Duration::from_secs(61));
    let again = store.lease_jobs("w", LEASE, 10).await.unwrap();
    assert_eq!(again[0].dedupe_key, "c1");
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("Hantera unavailable"));
}

#[tokio::test]
async fn an_expired_lease_lets_another_worker_take_the_job_and_ignores_the_old_owner() {
    let store = MemStore::new();
    store.enqueue(job("k", None)).await.unwrap();
    let leased = store.lease_jobs("w1", LEASE, 10).await.unwrap();
    let id = leased[0].id;
    assert_eq!(store.lease_holder(id).as_deref(), Some("w1"));
    store.advance_clock(LEASE + Duration::from_secs(1));
    assert_eq!(store.lease_holder(id), None);
    let taken = store.lease_jobs("w2", LEASE, 10).await.unwrap();
    assert_eq!(taken[0].id, id);

    store
        .finish_job(id, "w1", JobResult::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        store.job(id).await.unwrap().unwrap().state,
        JobState::Pending,
        "the old owner's answer is ignored"
    );
    store
        .finish_job(id, "w2", JobResult::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        store.job(id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn a_retry_after_the_last_attempt_fails_the_job_and_a_replay_gives_a_fresh_budget() {
    let store = MemStore::new();
    store.enqueue(job("k", None)).await.unwrap();
    let retry = || JobResult::Retry {
        after: Duration::ZERO,
        error: "timeout".into(),
    };
    for attempt in 1..=3 {
        let leased = store.lease_jobs("w", LEASE, 10).await.unwrap();
        assert_eq!(leased[0].attempts, attempt);
        store.finish_job(leased[0].id, "w", retry()).await.unwrap();
    }
    let failed = store.jobs_in(JobState::Failed, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(store.lease_jobs("w", LEASE, 10).await.unwrap().is_empty());

    assert!(store.replay_job(failed[0].id).await.unwrap());
    assert!(
        !store.replay_job(failed[0].id).await.unwrap(),
        "only a failed job replays"
    );
    let again = store.lease_jobs("w", LEASE, 10).await.unwrap();
    assert_eq!(again[0].attempts, 1);
}

#[tokio::test]
async fn a_job_whose_last_lease_expired_fails_instead_of_running_again() {
    let store = MemStore::new();
    store
        .enqueue(NewJob {
            max_attempts: 1,
            ..job("k", None)
        })
        .await
        .unwrap();
    let leased = store.lease_jobs("w", LEASE, 10).await.unwrap();
    // The worker crashes: no answer, the lease runs out.
    store.advance_clock(LEASE + Duration::from_secs(1));
    assert!(store.lease_jobs("w", LEASE, 10).await.unwrap().is_empty());
    let job = store.job(leased[0].id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert!(job.last_error.is_some());
}

#[tokio::test]
async fn a_definite_failure_fails_the_job_at_once() {
    let store = MemStore::new();
    store.enqueue(job("k", None)).await.unwrap();
    let leased = store.lease_jobs("w", LEASE, 10).await.unwrap();
    store
        .finish_job(
            leased[0].id,
            "w",
            JobResult::Failed {
                error: "declined".into(),
            },
        )
        .await
        .unwrap();
    let job = store.job(leased[0].id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.last_error.as_deref(), Some("declined"));
}

#[tokio::test]
async fn a_session_is_reserved_once_saved_open_and_never_moves_back() {
    let store = MemStore::new();
    let cart = Uuid::new_v4();
    let first = store.reserve_session(cart, "mock", "key-1").await.unwrap();
    assert_eq!(first.status, SessionStatus::Creating);
    let again = store.reserve_session(cart, "mock", "key-2").await.unwrap();
    assert_eq!(again.idempotency_key, "key-1");

    store
        .save_session(
            cart,
            "mock",
            "pay_1",
            sek(100),
            &serde_json::json!({"x": 1}),
        )
        .await
        .unwrap();
    let open = store.session(cart, "mock").await.unwrap().unwrap();
    assert_eq!(open.status, SessionStatus::Open);
    assert_eq!(open.amount_minor, Some(100));
    assert_eq!(open.currency.as_deref(), Some("SEK"));
    assert_eq!(
        store
            .session_by_ref("mock", "pay_1")
            .await
            .unwrap()
            .unwrap()
            .cart_id,
        cart
    );

    store
        .set_session_status("mock", "pay_1", SessionStatus::Authorized)
        .await
        .unwrap();
    store
        .set_session_status("mock", "pay_1", SessionStatus::Open)
        .await
        .unwrap();
    assert_eq!(
        store.session(cart, "mock").await.unwrap().unwrap().status,
        SessionStatus::Authorized,
        "a status never moves backwards"
    );
    store
        .set_session_status("mock", "pay_1", SessionStatus::Completed)
        .await
        .unwrap();
    store
        .set_session_status("mock", "pay_1", SessionStatus::Failed)
        .await
        .unwrap();
    assert_eq!(
        store.session(cart, "mock").await.unwrap().unwrap().status,
        SessionStatus::Completed,
        "a terminal status is never left"
    );
    store
        .set_session_status("mock", "unknown", SessionStatus::Failed)
        .await
        .expect("a PSP payment without a session has nothing to move");
}

#[tokio::test]
async fn saving_a_session_that_was_not_reserved_is_not_found() {
    let store = MemStore::new();
    let err = store
        .save_session(
            Uuid::new_v4(),
            "mock",
            "pay_1",
            sek(1),
            &serde_json::json!({}),
        )
        .await;
    assert!(err.is_err());
}

#[tokio::test]
async fn only_an_ended_session_restarts() {
    let store = MemStore::new();
    let cart = Uuid::new_v4();
    store.reserve_session(cart, "mock", "key-1").await.unwrap();
    store
        .save_session(cart, "mock", "pay_1", sek(100), &serde_json::json!({}))
        .await
        .unwrap();
    let kept = store.restart_session(cart, "mock", "key-2").await.unwrap();
    assert_eq!(kept.idempotency_key, "key-1");
    assert_eq!(kept.psp_ref.as_deref(), Some("pay_1"));

    store
        .set_session_status("mock", "pay_1", SessionStatus::Failed)
        .await
        .unwrap();
    let restarted = store.restart_session(cart, "mock", "key-2").await.unwrap();
    assert_eq!(restarted.idempotency_key, "key-2");
    assert_eq!(restarted.status, SessionStatus::Creating);
    assert_eq!(restarted.psp_ref, None);
}

#[tokio::test]
async fn quiet_sessions_are_the_unfinished_ones_unchanged_for_long_enough() {
    let store = MemStore::new();
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for (cart, psp_ref) in [(a, "pay_a"), (b, "pay_b"), (c, "pay_c")] {
        store.reserve_session(cart, "mock", "k").await.unwrap();
        store
            .save_session(cart, "mock", psp_ref, sek(1), &serde_json::json!({}))
            .await
            .unwrap();
    }
    store
        .set_session_status("mock", "pay_c", SessionStatus::Completed)
        .await
        .unwrap();
    let quiet_for = Duration::from_secs(600);
    assert!(store
        .quiet_sessions(quiet_for, 10)
        .await
        .unwrap()
        .is_empty());
    store.advance_clock(quiet_for + Duration::from_secs(1));
    let quiet = store.quiet_sessions(quiet_for, 10).await.unwrap();
    let mut carts: Vec<Uuid> = quiet.iter().map(|s| s.cart_id).collect();
    carts.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(carts, expected);
    assert_eq!(store.quiet_sessions(quiet_for, 1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_injected_store_failure_changes_nothing() {
    let store = MemStore::new();
    store.fail_next(1);
    assert!(store.enqueue(job("k", None)).await.is_err());
    assert!(store.jobs().is_empty());
    assert!(store.ping().await.is_ok());
}

fn pending(cart_id: Uuid, hash: &str) -> psp_core::ports::PendingSync {
    psp_core::ports::PendingSync {
        cart_id,
        provider: "mock".into(),
        hash: hash.into(),
        payload: serde_json::json!({ "h": hash }),
        cart: serde_json::json!({ "cartId": cart_id }),
    }
}

fn sync_job(cart_id: Uuid) -> NewJob {
    NewJob {
        kind: "sync".into(),
        dedupe_key: format!("sync:mock:{cart_id}"),
        cart_id: Some(cart_id),
        payload: serde_json::json!({}),
        max_attempts: 3,
    }
}

#[tokio::test]
async fn cart_mutations_coalesce_into_one_waiting_sync_job_like_the_sqlite_store() {
    use psp_core::ports::SyncScheduled;
    let store = MemStore::new();
    let cart = Uuid::new_v4();
    store.reserve_session(cart, "mock", "k").await.unwrap();
    store
        .save_session(cart, "mock", "pay_1", sek(100), &serde_json::json!({}))
        .await
        .unwrap();
    store.mark_synced(cart, "mock", "h0").await.unwrap();
    assert_eq!(
        store
            .schedule_sync(pending(cart, "h0"), sync_job(cart), Duration::ZERO)
            .await
            .unwrap(),
        SyncScheduled::Unchanged
    );
    let SyncScheduled::Scheduled(first) = store
        .schedule_sync(pending(cart, "h1"), sync_job(cart), Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("scheduled")
    };
    assert_eq!(
        store
            .schedule_sync(pending(cart, "h2"), sync_job(cart), Duration::ZERO)
            .await
            .unwrap(),
        SyncScheduled::Coalesced(first)
    );
    store.lease_jobs("w", LEASE, 10).await.unwrap();
    assert!(matches!(
        store
            .schedule_sync(pending(cart, "h3"), sync_job(cart), Duration::ZERO)
            .await
            .unwrap(),
        SyncScheduled::Scheduled(id) if id != first
    ));
    let sync = store.session_sync(cart, "mock").await.unwrap().unwrap();
    assert_eq!(sync.pending_hash.as_deref(), Some("h3"));
    assert_eq!(sync.synced_hash.as_deref(), Some("h0"));
    store.flag_session(cart, "mock", "changed").await.unwrap();
    assert_eq!(
        store.flagged_sessions(5).await.unwrap()[0]
            .attention
            .as_deref(),
        Some("changed")
    );
}

#[tokio::test]
async fn job_history_progress_and_completion_history_are_kept() {
    let store = MemStore::new();
    let Enqueued::New(id) = store.enqueue(job("j1", None)).await.unwrap() else {
        panic!("new")
    };
    store.lease_jobs("w", LEASE, 10).await.unwrap();
    let progress = serde_json::json!({ "step": 2 });
    assert!(!store.save_job_progress(id, "x", &progress).await.unwrap());
    assert!(store.save_job_progress(id, "w", &progress).await.unwrap());
    store
        .finish_job(id, "w", JobResult::Failed { error: "no".into() })
        .await
        .unwrap();
    let events: Vec<String> = store
        .job_history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(events, ["leased", "failed"]);
    assert_eq!(
        store.job_by_key("j1").await.unwrap().unwrap().payload,
        progress
    );

    store
        .advance_completion(update("p1", CompletionState::Started))
        .await
        .unwrap();
    store
        .advance_completion(update("p1", CompletionState::Started))
        .await
        .unwrap();
    store
        .advance_completion(update("p1", CompletionState::Completed))
        .await
        .unwrap();
    let states: Vec<CompletionState> = store
        .completion_history("mock", "p1")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.state)
        .collect();
    assert_eq!(
        states,
        [CompletionState::Started, CompletionState::Completed]
    );
    assert!(store.pending_jobs().await.unwrap().is_empty());
}
