//! `record_webhook`: unique by (provider, event id), its job in the same transaction,
//! durable once answered, batched under concurrency.

use std::collections::HashSet;
use std::sync::Arc;

use super::{job, webhook, Backend, Persistent};
use psp_core::ports::{Inbox, JobState, Jobs, Recorded, Store};

pub async fn a_new_webhook_is_stored_as_received_together_with_its_job<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let hook = webhook("evt_1", Some(job("complete", "complete:mock:pay_1", None)));
    let body = hook.body.clone();

    assert_eq!(store.record_webhook(hook).await.unwrap(), Recorded::New);

    let stored = B::webhook(&store, "mock", "evt_1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.body, body);
    assert_eq!(stored.event_type, "payment.authorized");
    assert_eq!(stored.psp_ref.as_deref(), Some("pay_evt_1"));
    assert!(stored.received_at_ms > 0);
    let jobs = store.jobs_in(JobState::Pending, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].dedupe_key, "complete:mock:pay_1");
}

pub async fn a_duplicate_webhook_adds_nothing_not_even_its_job<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let first = webhook("evt_1", Some(job("complete", "first", None)));
    // The resend carries a job with another key: if the duplicate were not recognised, a
    // second job would appear.
    let mut again = webhook("evt_1", Some(job("complete", "second", None)));
    again.body = b"a different body".to_vec();

    assert_eq!(store.record_webhook(first).await.unwrap(), Recorded::New);
    assert_eq!(
        store.record_webhook(again).await.unwrap(),
        Recorded::Duplicate
    );

    let jobs = store.jobs_in(JobState::Pending, 10).await.unwrap();
    assert_eq!(
        jobs.iter()
            .map(|j| j.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        ["first"]
    );
    let stored = B::webhook(&store, "mock", "evt_1").await.unwrap().unwrap();
    assert_ne!(
        stored.body, b"a different body",
        "the first delivery is kept"
    );
}

pub async fn a_webhook_without_a_job_enqueues_nothing<B: Backend>() {
    let (_db, store) = B::fresh().await;
    assert_eq!(
        store.record_webhook(webhook("evt_1", None)).await.unwrap(),
        Recorded::New
    );
    assert!(store
        .jobs_in(JobState::Pending, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn the_same_event_id_at_another_provider_is_another_webhook<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let mut other = webhook("evt_1", None);
    other.provider = "stripe".into();
    assert_eq!(
        store.record_webhook(webhook("evt_1", None)).await.unwrap(),
        Recorded::New
    );
    assert_eq!(store.record_webhook(other).await.unwrap(), Recorded::New);
}

pub async fn a_new_webhook_whose_job_key_exists_is_new_and_keeps_the_existing_job<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let a = webhook("evt_a", Some(job("complete", "complete:mock:pay", None)));
    let b = webhook("evt_b", Some(job("complete", "complete:mock:pay", None)));
    assert_eq!(store.record_webhook(a).await.unwrap(), Recorded::New);
    assert_eq!(store.record_webhook(b).await.unwrap(), Recorded::New);
    assert_eq!(store.jobs_in(JobState::Pending, 10).await.unwrap().len(), 1);
}

/// Records 200 deliveries of 100 events, all at once, and checks that each event was
/// recorded once. Every delivery carries a job with its own key, so a duplicate that
/// slipped through would show up as an extra job.
async fn deliver_concurrently(store: &Arc<impl Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for call in 0..200 {
        let store = store.clone();
        tasks.spawn(async move {
            let event = format!("evt_{}", call % 100);
            let hook = webhook(&event, Some(job("complete", &format!("job_{call}"), None)));
            (event, store.record_webhook(hook).await.unwrap())
        });
    }
    let mut new = HashSet::new();
    let mut duplicates = 0;
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            (event, Recorded::New) => assert!(new.insert(event), "recorded as new twice"),
            (_, Recorded::Duplicate) => duplicates += 1,
        }
    }
    assert_eq!(new.len(), 100);
    assert_eq!(duplicates, 100);
    assert_eq!(
        store.jobs_in(JobState::Pending, 1000).await.unwrap().len(),
        100
    );
}

pub async fn concurrent_deliveries_record_each_event_once<B: Backend>() {
    let (_db, store) = B::fresh().await;
    deliver_concurrently(&Arc::new(store)).await;
}

pub async fn concurrent_deliveries_record_each_event_once_and_survive_reopening<B: Persistent>() {
    let db = B::new_db();
    let store = Arc::new(B::open(&db).await);
    deliver_concurrently(&store).await;

    B::close(&store).await;
    drop(store);
    let reopened = B::open(&db).await;
    for event in 0..100 {
        let id = format!("evt_{event}");
        assert!(
            B::webhook(&reopened, "mock", &id).await.unwrap().is_some(),
            "{id} lost"
        );
    }
    assert_eq!(
        reopened
            .jobs_in(JobState::Pending, 1000)
            .await
            .unwrap()
            .len(),
        100
    );
}

pub async fn an_answered_webhook_is_on_disk_even_if_the_store_is_dropped_without_closing<
    B: Persistent,
>() {
    let db = B::new_db();
    let store = B::open(&db).await;
    store.record_webhook(webhook("evt_1", None)).await.unwrap();
    drop(store);

    let reopened = B::open(&db).await;
    assert!(B::webhook(&reopened, "mock", "evt_1")
        .await
        .unwrap()
        .is_some());
}

pub async fn recording_after_close_fails_and_records_nothing<B: Persistent>() {
    let db = B::new_db();
    let store = B::open(&db).await;
    B::close(&store).await;
    assert!(store.record_webhook(webhook("evt_1", None)).await.is_err());
    // Closing twice is harmless.
    B::close(&store).await;

    let reopened = B::open(&db).await;
    assert!(B::webhook(&reopened, "mock", "evt_1")
        .await
        .unwrap()
        .is_none());
}
