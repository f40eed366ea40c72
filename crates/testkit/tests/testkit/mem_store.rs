//! What only `MemStore` has: its clock, which tests move forward instead of sleeping,
//! and scripted failures. The `Store` behaviour itself is held to the real stores'
//! assertions by the shared suite (`tests/store_suite.rs`).

use std::time::Duration;

use psp_core::ports::{JobResult, JobState, Jobs, NewJob, Readiness, SessionStatus, Sessions};
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

fn sek(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("SEK").unwrap())
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
