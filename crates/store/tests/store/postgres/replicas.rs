//! What only PostgreSQL has: several gateway replicas (stores with their own pools and
//! webhook writers) on one database at once, and opening by URL.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use psp_core::ports::{
    CompletionState, CompletionUpdate, Completions, Enqueued, Inbox, JobResult, JobState, Jobs,
    Recorded, StoreError,
};
use store::{open_store, PgStore};
use uuid::Uuid;

use testkit::store_suite::{cart, job, next_millisecond, webhook};

use super::TempDb;
use crate::TestDb as _;

const LONG: Duration = Duration::from_secs(60);

async fn two_replicas() -> (TempDb, Arc<PgStore>, Arc<PgStore>) {
    let db = TempDb::new();
    let first = Arc::new(db.open().await);
    let second = Arc::new(db.open().await);
    (db, first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_claims_on_two_replicas_exactly_one_holds_the_cart() {
    let (_db, first, second) = two_replicas().await;
    let cart_id = cart(7);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = if n % 2 == 0 { &first } else { &second }.clone();
        tasks.spawn(async move {
            store
                .claim_cart(cart_id, "mock", &format!("pay_{n}"))
                .await
                .unwrap()
        });
    }
    let mut holders = HashSet::new();
    while let Some(claim) = tasks.join_next().await {
        holders.insert(claim.unwrap().psp_ref);
    }
    assert_eq!(
        holders.len(),
        1,
        "every claimant must be told the same holder"
    );
    let holder = first.cart_claim(cart_id).await.unwrap().unwrap();
    assert!(holders.contains(&holder.psp_ref));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_final_states_on_two_replicas_keep_the_first_and_never_move_back() {
    let (_db, first, second) = two_replicas().await;
    let update = |state, n: usize| CompletionUpdate {
        provider: "mock".into(),
        psp_ref: "pay_1".into(),
        cart_id: cart(1),
        state,
        payment_id: Some(Uuid::from_u128(n as u128 + 1)),
        reason: Some(format!("attempt {n}")),
    };
    let states = [
        CompletionState::Started,
        CompletionState::PaymentCreated,
        CompletionState::Completed,
        CompletionState::DoublePayment,
        CompletionState::NeedsAttention,
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let store = if n % 2 == 0 { &first } else { &second }.clone();
        let update = update(states[n % states.len()], n);
        tasks.spawn(async move { store.advance_completion(update).await.unwrap() });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let stored = first.completion("mock", "pay_1").await.unwrap().unwrap();
    assert!(stored.state.is_final(), "{:?}", stored.state);
    let history = second.completion_history("mock", "pay_1").await.unwrap();
    let ranks: Vec<u8> = history.iter().map(|t| t.state.rank()).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1]),
        "the history must only move forward: {history:?}"
    );
    let finals: Vec<_> = history.iter().filter(|t| t.state.is_final()).collect();
    assert_eq!(finals.len(), 1, "{history:?}");
    assert_eq!(finals[0].state, stored.state);

    // A late final state from either replica changes nothing.
    let other = match stored.state {
        CompletionState::Completed => CompletionState::DoublePayment,
        _ => CompletionState::Completed,
    };
    let after = second.advance_completion(update(other, 99)).await.unwrap();
    assert_eq!(after.state, stored.state);
    assert_eq!(after.payment_id, stored.payment_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_two_replicas_run_one_job_per_cart_at_a_time_oldest_first() {
    let (_db, first, second) = two_replicas().await;
    let mut all = Vec::new();
    for n in 0..60u128 {
        // Six carts of eight jobs each, interleaved, and twelve jobs without a cart.
        let cart_id = (n < 48).then(|| cart(n % 6));
        let store = if n % 2 == 0 { &first } else { &second };
        match store
            .enqueue(job("void", &format!("j{n}"), cart_id))
            .await
            .unwrap()
        {
            Enqueued::New(id) => all.push((id, cart_id)),
            Enqueued::Duplicate(id) => panic!("job {id} exists already"),
        }
    }

    // Which job of each cart is running now, and the order each cart's jobs ran in.
    let running: Arc<Mutex<HashMap<Uuid, i64>>> = Arc::default();
    let ran: Arc<Mutex<HashMap<Uuid, Vec<i64>>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let store = if w % 2 == 0 { &first } else { &second }.clone();
        let (running, ran) = (running.clone(), ran.clone());
        tasks.spawn(async move {
            let owner = format!("replica-{}-worker-{w}", w % 2);
            let mut done = Vec::new();
            loop {
                let leased = store.lease_jobs(&owner, LONG, 3).await.unwrap();
                if leased.is_empty() {
                    return done;
                }
                for job in &leased {
                    assert_eq!(job.attempts, 1, "job {} was leased twice", job.id);
                    if let Some(c) = job.cart_id {
                        let other = running.lock().unwrap().insert(c, job.id);
                        assert_eq!(other, None, "two jobs of cart {c} ran at once");
                        ran.lock().unwrap().entry(c).or_default().push(job.id);
                    }
                }
                // Let the other workers try to lease while these run.
                tokio::task::yield_now().await;
                for job in leased {
                    if let Some(c) = job.cart_id {
                        running.lock().unwrap().remove(&c);
                    }
                    store
                        .finish_job(job.id, &owner, JobResult::Succeeded)
                        .await
                        .unwrap();
                    done.push(job.id);
                }
            }
        });
    }
    let mut seen = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        for id in done.unwrap() {
            assert!(seen.insert(id), "job {id} was leased twice");
        }
    }
    assert_eq!(seen, all.iter().map(|(id, _)| *id).collect());
    for (cart_id, ids) in ran.lock().unwrap().iter() {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, &sorted, "cart {cart_id} ran out of order");
        assert_eq!(ids.len(), 8);
    }
}

#[tokio::test]
async fn a_lease_that_expired_on_one_replica_is_taken_over_by_another() {
    let (_db, first, second) = two_replicas().await;
    let Enqueued::New(id) = first.enqueue(job("capture", "c1", None)).await.unwrap() else {
        panic!("the job exists already");
    };
    let leased = first.lease_jobs("a", Duration::ZERO, 1).await.unwrap();
    assert_eq!(leased.len(), 1);
    next_millisecond().await;
    let taken = second.lease_jobs("b", LONG, 1).await.unwrap();
    assert_eq!(taken.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    assert_eq!(taken[0].attempts, 2);

    // The first owner's late answers are ignored; the second owner's count.
    let progress = serde_json::json!({"captured": true});
    assert!(!first.save_job_progress(id, "a", &progress).await.unwrap());
    first
        .finish_job(id, "a", JobResult::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        second.job(id).await.unwrap().unwrap().state,
        JobState::Pending
    );
    assert!(second.save_job_progress(id, "b", &progress).await.unwrap());
    second
        .finish_job(id, "b", JobResult::Succeeded)
        .await
        .unwrap();
    let done = first.job(id).await.unwrap().unwrap();
    assert_eq!((done.state, done.payload), (JobState::Succeeded, progress));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhooks_delivered_to_two_replicas_are_recorded_once() {
    let (_db, first, second) = two_replicas().await;
    let mut tasks = tokio::task::JoinSet::new();
    for call in 0..200 {
        let store = if call % 2 == 0 { &first } else { &second }.clone();
        tasks.spawn(async move {
            let event = format!("evt_{}", call % 100);
            let hook = webhook(&event, Some(job("complete", &format!("job_{call}"), None)));
            store.record_webhook(hook).await.unwrap()
        });
    }
    let mut new = 0;
    while let Some(done) = tasks.join_next().await {
        if done.unwrap() == Recorded::New {
            new += 1;
        }
    }
    assert_eq!(new, 100);
    assert_eq!(
        first.jobs_in(JobState::Pending, 1000).await.unwrap().len(),
        100
    );
}

#[tokio::test]
async fn open_store_picks_postgres_by_either_url_scheme_and_migrates_once() {
    let db = TempDb::new();
    let postgresql = db.url.replacen("postgres://", "postgresql://", 1);
    for url in [&db.url, &postgresql] {
        let store = open_store(url).await.unwrap();
        store.ping().await.unwrap();
        // The second open finds the schema migrated and the first one's webhook there.
        let recorded = store.record_webhook(webhook("evt_1", None)).await.unwrap();
        let expected = if url == &db.url {
            Recorded::New
        } else {
            Recorded::Duplicate
        };
        assert_eq!(recorded, expected);
    }
}

#[tokio::test]
async fn debug_and_errors_never_show_the_password() {
    let db = TempDb::new();
    let store = db.open().await;
    let debug = format!("{store:?}");
    assert!(debug.starts_with("PgStore"), "{debug}");
    assert!(!debug.contains("postgres://"), "{debug}");

    // Nothing listens on port 1: the connection is refused at once.
    let Err(err) = open_store("postgres://gateway:hunter2@127.0.0.1:1/psp").await else {
        panic!("a store opened on a closed port");
    };
    assert!(matches!(err, StoreError::Backend(_)));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let Err(err) = open_store("postgres://gateway:hunter2@127.0.0.1:notaport/psp").await else {
        panic!("a store opened on a malformed URL");
    };
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
