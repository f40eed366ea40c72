//! Jobs: dedupe, leases (one per cart, in order, expiring), retries, failure and replay.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{cart, eventually, job, Backend, Persistent};
use psp_core::ports::{Enqueued, Job, JobResult, JobState, Jobs, NewJob, StoreError};

const LONG: Duration = Duration::from_secs(60);

async fn enqueue(store: &impl Jobs, job: NewJob) -> i64 {
    match store.enqueue(job).await.unwrap() {
        Enqueued::New(id) => id,
        Enqueued::Duplicate(id) => panic!("job {id} exists already"),
    }
}

fn ids(jobs: &[Job]) -> Vec<i64> {
    let mut ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    ids.sort_unstable();
    ids
}

fn retry(after: Duration) -> JobResult {
    JobResult::Retry {
        after,
        error: "PSP timed out".into(),
    }
}

pub async fn an_enqueued_job_is_pending_and_due_and_its_key_is_unique<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let id = enqueue(&store, job("capture", "capture:1", Some(cart(1)))).await;
    assert_eq!(
        store
            .enqueue(job("capture", "capture:1", None))
            .await
            .unwrap(),
        Enqueued::Duplicate(id)
    );

    let stored = store.job(id).await.unwrap().unwrap();
    assert_eq!(stored.kind, "capture");
    assert_eq!(stored.cart_id, Some(cart(1)));
    assert_eq!(stored.payload, job("capture", "capture:1", None).payload);
    assert_eq!(stored.state, JobState::Pending);
    assert_eq!((stored.attempts, stored.max_attempts), (0, 5));
    assert_eq!(stored.next_run_at_ms, stored.created_at_ms);
    assert_eq!(stored.last_error, None);
    assert!(store.job(id + 1).await.unwrap().is_none());
}

pub async fn a_leased_job_counts_the_attempt_and_goes_to_one_owner_only<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let id = enqueue(&store, job("complete", "c:1", None)).await;

    let leased = store.lease_jobs("worker-a", LONG, 10).await.unwrap();
    assert_eq!(ids(&leased), [id]);
    assert_eq!(leased[0].attempts, 1);
    assert!(store
        .lease_jobs("worker-b", LONG, 10)
        .await
        .unwrap()
        .is_empty());

    store
        .finish_job(id, "worker-a", JobResult::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        store.job(id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    assert!(store
        .lease_jobs("worker-b", LONG, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn jobs_of_one_cart_run_one_at_a_time_in_order_while_other_carts_run_alongside<
    B: Backend,
>() {
    let (_db, store) = B::fresh().await;
    let a1 = enqueue(&store, job("complete", "a1", Some(cart(1)))).await;
    let a2 = enqueue(&store, job("capture", "a2", Some(cart(1)))).await;
    let b1 = enqueue(&store, job("complete", "b1", Some(cart(2)))).await;
    let free1 = enqueue(&store, job("void", "n1", None)).await;
    let free2 = enqueue(&store, job("void", "n2", None)).await;

    let first = store.lease_jobs("w", LONG, 10).await.unwrap();
    assert_eq!(ids(&first), [a1, b1, free1, free2]);
    assert!(
        store.lease_jobs("w", LONG, 10).await.unwrap().is_empty(),
        "a2 waits for a1"
    );

    store
        .finish_job(a1, "w", JobResult::Succeeded)
        .await
        .unwrap();
    assert_eq!(ids(&store.lease_jobs("w", LONG, 10).await.unwrap()), [a2]);
}

pub async fn a_later_job_of_a_cart_waits_while_an_earlier_one_backs_off<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let a1 = enqueue(&store, job("complete", "a1", Some(cart(1)))).await;
    enqueue(&store, job("capture", "a2", Some(cart(1)))).await;

    assert_eq!(ids(&store.lease_jobs("w", LONG, 10).await.unwrap()), [a1]);
    store.finish_job(a1, "w", retry(LONG)).await.unwrap();
    assert!(store.lease_jobs("w", LONG, 10).await.unwrap().is_empty());
}

pub async fn a_cart_moves_on_to_its_next_job_once_the_earlier_one_has_failed<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let a1 = enqueue(&store, job("complete", "a1", Some(cart(1)))).await;
    let a2 = enqueue(&store, job("capture", "a2", Some(cart(1)))).await;

    assert_eq!(ids(&store.lease_jobs("w", LONG, 10).await.unwrap()), [a1]);
    store
        .finish_job(a1, "w", retry(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        ids(&store.lease_jobs("w", LONG, 10).await.unwrap()),
        [a1],
        "a1 again, not a2"
    );
    let refused = JobResult::Failed {
        error: "refused".into(),
    };
    store.finish_job(a1, "w", refused).await.unwrap();
    assert_eq!(ids(&store.lease_jobs("w", LONG, 10).await.unwrap()), [a2]);
}

pub async fn leasing_respects_the_limit_and_hands_out_the_oldest_jobs_first<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let mut all = Vec::new();
    for n in 0..5 {
        all.push(enqueue(&store, job("void", &format!("n{n}"), None)).await);
    }
    let first = store.lease_jobs("w", LONG, 2).await.unwrap();
    assert_eq!(ids(&first), all[..2]);
    let rest = store.lease_jobs("w", LONG, 10).await.unwrap();
    assert_eq!(ids(&rest), all[2..]);
}

pub async fn an_expired_lease_goes_to_another_owner_and_the_old_owners_finish_is_ignored<
    B: Backend,
>() {
    let (_db, store) = B::fresh().await;
    let id = enqueue(&store, job("complete", "c:1", Some(cart(1)))).await;
    let leased = store
        .lease_jobs("crashed", Duration::from_millis(5), 10)
        .await
        .unwrap();
    assert_eq!(ids(&leased), [id]);

    let taken_over = eventually("the lease expires", || async {
        let jobs = store.lease_jobs("rescuer", LONG, 10).await.unwrap();
        (!jobs.is_empty()).then_some(jobs)
    })
    .await;
    assert_eq!(ids(&taken_over), [id]);
    assert_eq!(taken_over[0].attempts, 2);

    store
        .finish_job(id, "crashed", JobResult::Succeeded)
        .await
        .unwrap();
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        job.state,
        JobState::Pending,
        "the old owner no longer decides"
    );

    store
        .finish_job(id, "rescuer", JobResult::Succeeded)
        .await
        .unwrap();
    assert_eq!(
        store.job(id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

pub async fn a_job_whose_last_attempt_expired_fails_instead_of_running_again<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let mut last_chance = job("complete", "c:1", Some(cart(1)));
    last_chance.max_attempts = 1;
    let id = enqueue(&store, last_chance).await;
    let next = enqueue(&store, job("capture", "c:2", Some(cart(1)))).await;
    store
        .lease_jobs("crashed", Duration::from_millis(5), 10)
        .await
        .unwrap();

    let leased = eventually("the last lease expires", || async {
        let leased = store.lease_jobs("rescuer", LONG, 10).await.unwrap();
        (!leased.is_empty()).then_some(leased)
    })
    .await;
    assert_eq!(ids(&leased), [next], "the cart's next job runs");
    let failed = store.job(id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert!(failed.last_error.unwrap().contains("lease expired"));
}

pub async fn a_retry_runs_again_after_its_delay_with_the_error_kept<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let id = enqueue(&store, job("capture", "c:1", None)).await;
    store.lease_jobs("w", LONG, 10).await.unwrap();
    store.finish_job(id, "w", retry(LONG)).await.unwrap();

    let waiting = store.job(id).await.unwrap().unwrap();
    assert_eq!(waiting.state, JobState::Pending);
    assert_eq!(waiting.last_error.as_deref(), Some("PSP timed out"));
    assert!(waiting.next_run_at_ms >= waiting.created_at_ms + 60_000);
    assert!(store.lease_jobs("w", LONG, 10).await.unwrap().is_empty());

    // A retry without delay is due at once.
    let id2 = enqueue(&store, job("capture", "c:2", None)).await;
    store.lease_jobs("w", LONG, 10).await.unwrap();
    store
        .finish_job(id2, "w", retry(Duration::ZERO))
        .await
        .unwrap();
    let again = store.lease_jobs("w", LONG, 10).await.unwrap();
    assert_eq!(ids(&again), [id2]);
    assert_eq!(again[0].attempts, 2);
}

pub async fn a_retry_after_the_last_attempt_fails_the_job<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let mut new = job("capture", "c:1", None);
    new.max_attempts = 2;
    let id = enqueue(&store, new).await;

    for _ in 0..2 {
        assert_eq!(ids(&store.lease_jobs("w", LONG, 10).await.unwrap()), [id]);
        store
            .finish_job(id, "w", retry(Duration::ZERO))
            .await
            .unwrap();
    }
    let failed = store.job(id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.last_error.as_deref(), Some("PSP timed out"));
    assert!(store.lease_jobs("w", LONG, 10).await.unwrap().is_empty());
}

pub async fn a_definite_failure_fails_the_job_at_once<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let id = enqueue(&store, job("capture", "c:1", None)).await;
    store.lease_jobs("w", LONG, 10).await.unwrap();
    store
        .finish_job(
            id,
            "w",
            JobResult::Failed {
                error: "card declined".into(),
            },
        )
        .await
        .unwrap();
    let failed = store.job(id).await.unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("card declined"));
}

pub async fn finishing_a_job_that_does_not_exist_is_not_found<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let err = store
        .finish_job(404, "w", JobResult::Succeeded)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn a_replayed_job_is_pending_again_with_a_fresh_budget<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let id = enqueue(&store, job("capture", "c:1", None)).await;
    assert!(
        !store.replay_job(id).await.unwrap(),
        "a pending job is not replayed"
    );

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
        "replaying twice changes nothing"
    );
    assert!(!store.replay_job(id + 100).await.unwrap());

    let replayed = store.job(id).await.unwrap().unwrap();
    assert_eq!(replayed.state, JobState::Pending);
    assert_eq!(replayed.attempts, 0);
    let leased = store.lease_jobs("w", LONG, 10).await.unwrap();
    assert_eq!(ids(&leased), [id]);
    assert_eq!(leased[0].attempts, 1);
}

pub async fn jobs_in_lists_a_state_newest_first<B: Backend>() {
    let (_db, store) = B::fresh().await;
    let a = enqueue(&store, job("void", "a", None)).await;
    let b = enqueue(&store, job("void", "b", None)).await;
    let c = enqueue(&store, job("void", "c", None)).await;
    store.lease_jobs("w", LONG, 10).await.unwrap();
    store
        .finish_job(b, "w", JobResult::Succeeded)
        .await
        .unwrap();

    let pending: Vec<i64> = store
        .jobs_in(JobState::Pending, 10)
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(pending, [c, a]);
    assert_eq!(store.jobs_in(JobState::Pending, 1).await.unwrap()[0].id, c);
    assert_eq!(
        store.jobs_in(JobState::Succeeded, 10).await.unwrap()[0].id,
        b
    );
    assert!(store
        .jobs_in(JobState::Failed, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn two_processes_sharing_the_file_never_lease_the_same_job<B: Persistent>() {
    // Two stores on one file stand for two gateway processes: separate connections and
    // writer tasks, coordinated only by SQLite's locks.
    let db = B::new_db();
    let first = Arc::new(B::open(&db).await);
    let second = Arc::new(B::open(&db).await);
    let mut all = HashSet::new();
    for n in 0..60 {
        // Every third job shares a cart with its neighbours, to exercise the cart rule too.
        let cart_id = (n % 3 == 0).then(|| cart(n / 3));
        all.insert(enqueue(&*first, job("void", &format!("j{n}"), cart_id)).await);
    }

    let mut tasks = tokio::task::JoinSet::new();
    for (w, store) in [first.clone(), second.clone(), first, second]
        .into_iter()
        .enumerate()
    {
        tasks.spawn(async move {
            let owner = format!("worker-{w}");
            let mut done = Vec::new();
            loop {
                let leased = store.lease_jobs(&owner, LONG, 3).await.unwrap();
                if leased.is_empty() {
                    return done;
                }
                for job in leased {
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
    assert_eq!(seen, all);
}
