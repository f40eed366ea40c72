//! Cart sync bookkeeping, job history and progress, the pending-job gauges' query, and the
//! admin's flagged sessions.

use std::time::Duration;

use super::{cart, job, sek, Backend};
use psp_core::ports::{Enqueued, JobResult, Jobs, NewJob, PendingSync, Sessions, SyncScheduled};
use serde_json::json;

const LONG: Duration = Duration::from_secs(60);

async fn open_session(store: &impl Sessions, n: u128, provider: &str) {
    store
        .reserve_session(cart(n), provider, "key")
        .await
        .unwrap();
    store
        .save_session(
            cart(n),
            provider,
            &format!("pay_{n}_{provider}"),
            sek(1000),
            &json!({}),
        )
        .await
        .unwrap();
}

fn pending(n: u128, hash: &str) -> PendingSync {
    PendingSync {
        cart_id: cart(n),
        provider: "mock".into(),
        hash: hash.into(),
        payload: json!({ "amount": hash }),
        cart: json!({ "cartId": cart(n), "orderTotal": 10.5 }),
    }
}

fn sync_job(n: u128) -> NewJob {
    NewJob {
        kind: "sync".into(),
        dedupe_key: format!("sync:mock:{}", cart(n)),
        cart_id: Some(cart(n)),
        payload: json!({ "provider": "mock" }),
        max_attempts: 5,
    }
}

pub async fn mutations_while_a_sync_job_waits_join_it_and_the_job_reads_the_latest_payload<
    B: Backend,
>() {
    let (_db, store) = B::fresh().await;
    open_session(&store, 1, "mock").await;
    store.mark_synced(cart(1), "mock", "h0").await.unwrap();

    let first = store
        .schedule_sync(pending(1, "h1"), sync_job(1), Duration::ZERO)
        .await
        .unwrap();
    let SyncScheduled::Scheduled(id) = first else {
        panic!("{first:?}")
    };
    for hash in ["h2", "h3", "h4"] {
        assert_eq!(
            store
                .schedule_sync(pending(1, hash), sync_job(1), Duration::ZERO)
                .await
                .unwrap(),
            SyncScheduled::Coalesced(id)
        );
    }
    let sync = store.session_sync(cart(1), "mock").await.unwrap().unwrap();
    assert_eq!(sync.synced_hash.as_deref(), Some("h0"));
    assert_eq!(sync.pending_hash.as_deref(), Some("h4"));
    assert_eq!(sync.pending_payload, Some(json!({ "amount": "h4" })));
    assert_eq!(
        sync.pending_cart.unwrap()["orderTotal"].to_string(),
        "10.5",
        "the cart is kept with its exact numbers"
    );
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.dedupe_key, format!("sync:mock:{}:1", cart(1)));
}

pub async fn a_mutation_during_a_running_sync_gets_a_job_of_its_own<B: Backend>() {
    let (_db, store) = B::fresh().await;
    open_session(&store, 1, "mock").await;
    let SyncScheduled::Scheduled(first) = store
        .schedule_sync(pending(1, "h1"), sync_job(1), Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("scheduled")
    };
    let leased = store.lease_jobs("w", LONG, 10).await.unwrap();
    assert_eq!(leased.len(), 1);

    // The running job may have read h1 already; h1 again needs nothing, h2 needs a job.
    assert_eq!(
        store
            .schedule_sync(pending(1, "h1"), sync_job(1), Duration::ZERO)
            .await
            .unwrap(),
        SyncScheduled::Unchanged
    );
    let second = store
        .schedule_sync(pending(1, "h2"), sync_job(1), Duration::ZERO)
        .await
        .unwrap();
    let SyncScheduled::Scheduled(second) = second else {
        panic!("{second:?}")
    };
    assert_ne!(first, second);
    assert_eq!(
        store
            .schedule_sync(pending(1, "h3"), sync_job(1), Duration::ZERO)
            .await
            .unwrap(),
        SyncScheduled::Coalesced(second)
    );

    // The second waits for the first: jobs of one cart run in order.
    assert!(store.lease_jobs("w", LONG, 10).await.unwrap().is_empty());
    store
        .finish_job(first, "w", JobResult::Succeeded)
        .await
        .unwrap();
    let next = store.lease_jobs("w", LONG, 10).await.unwrap();
    assert_eq!(next[0].id, second);
}

pub async fn a_payload_the_psp_holds_schedules_nothing_and_a_delay_defers_the_job<B: Backend>() {
    let (_db, store) = B::fresh().await;
    open_session(&store, 1, "mock").await;
    store.mark_synced(cart(1), "mock", "h1").await.unwrap();
    assert_eq!(
        store
            .schedule_sync(pending(1, "h1"), sync_job(1), Duration::ZERO)
            .await
            .unwrap(),
        SyncScheduled::Unchanged
    );
    let scheduled = store
        .schedule_sync(pending(1, "h2"), sync_job(1), LONG)
        .await
        .unwrap();
    assert!(matches!(scheduled, SyncScheduled::Scheduled(_)));
    assert!(
        store.lease_jobs("w", LONG, 10).await.unwrap().is_empty(),
        "not due before its delay"
    );
    assert_eq!(
        store
            .schedule_sync(pending(9, "h1"), sync_job(9), Duration::ZERO)
            .await
            .unwrap(),
        SyncScheduled::NoSession
    );
}

pub async fn sessions_of_a_cart_are_listed_by_provider_and_can_be_flagged_for_a_person<
    B: Backend,
>() {
    let (_db, store) = B::fresh().await;
    open_session(&store, 1, "stripe").await;
    open_session(&store, 1, "mock").await;
    open_session(&store, 2, "mock").await;
    let providers: Vec<String> = store
        .sessions_of_cart(cart(1))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.provider)
        .collect();
    assert_eq!(providers, ["mock", "stripe"]);

    assert!(store.flagged_sessions(10).await.unwrap().is_empty());
    store
        .flag_session(cart(2), "mock", "the cart changed after authorization")
        .await
        .unwrap();
    let flagged = store.flagged_sessions(10).await.unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].cart_id, cart(2));
    assert_eq!(
        flagged[0].attention.as_deref(),
        Some("the cart changed after authorization")
    );
    assert!(flagged[0].attention_at_ms.is_some());
}

pub async fn a_job_keeps_its_history_and_its_progress_only_under_its_lease<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let Enqueued::New(id) = store
        .enqueue(job("capture", "capture:1", None))
        .await
        .unwrap()
    else {
        panic!("new")
    };
    store.lease_jobs("w", LONG, 10).await.unwrap();
    let progress = json!({ "key": "k", "psp_capture_id": "mcap_1" });
    assert!(!store
        .save_job_progress(id, "other", &progress)
        .await
        .unwrap());
    assert!(store.save_job_progress(id, "w", &progress).await.unwrap());
    assert_eq!(store.job(id).await.unwrap().unwrap().payload, progress);

    store
        .finish_job(
            id,
            "w",
            JobResult::Retry {
                after: Duration::ZERO,
                error: "timed out".into(),
            },
        )
        .await
        .unwrap();
    store.lease_jobs("w", LONG, 10).await.unwrap();
    store
        .finish_job(
            id,
            "w",
            JobResult::Failed {
                error: "refused".into(),
            },
        )
        .await
        .unwrap();
    assert!(store.replay_job(id).await.unwrap());
    assert!(
        !store.replay_job(id).await.unwrap(),
        "a replay is idempotent"
    );

    let events: Vec<(String, u32, Option<String>)> = store
        .job_history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.attempt, e.error))
        .collect();
    assert_eq!(
        events,
        [
            ("leased".into(), 1, None),
            ("retry".into(), 1, Some("timed out".into())),
            ("leased".into(), 2, None),
            ("failed".into(), 2, Some("refused".into())),
            ("replayed".into(), 0, None),
        ]
    );
    assert_eq!(
        store.job_by_key("capture:1").await.unwrap().map(|j| j.id),
        Some(id)
    );
    assert!(store.job_by_key("capture:2").await.unwrap().is_none());
}

pub async fn pending_jobs_are_counted_per_kind_with_their_oldest<B: Backend>() {
    let (_db, store) = B::fresh().await;
    store.enqueue(job("capture", "c1", None)).await.unwrap();
    store.enqueue(job("capture", "c2", None)).await.unwrap();
    let Enqueued::New(done) = store.enqueue(job("sync", "s1", None)).await.unwrap() else {
        panic!("new")
    };
    store.lease_jobs("w", LONG, 10).await.unwrap();
    store
        .finish_job(done, "w", JobResult::Succeeded)
        .await
        .unwrap();

    let pending = store.pending_jobs().await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].kind, "capture");
    assert_eq!(pending[0].count, 2);
    let first = store.job_by_key("c1").await.unwrap().unwrap();
    assert_eq!(pending[0].oldest_created_at_ms, first.created_at_ms);
}
