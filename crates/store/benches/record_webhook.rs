//! Throughput of `record_webhook` with durability on: 32 clients, each recording webhooks
//! one after another (a closed loop, like 32 concurrent PSP requests), against a database
//! file. Group commit is what makes this scale past the disk's fsync rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use psp_core::ports::{Inbox, NewJob, NewWebhook};
use store::SqliteStore;

const CLIENTS: u64 = 32;

fn webhook(n: u64) -> NewWebhook {
    NewWebhook {
        provider: "mock".into(),
        event_id: format!("evt_{n}"),
        event_type: "payment.authorized".into(),
        psp_ref: Some(format!("pay_{n}")),
        body: format!(r#"{{"id":"evt_{n}","type":"payment.authorized","amount":12345}}"#)
            .into_bytes(),
        job: Some(NewJob {
            kind: "complete".into(),
            dedupe_key: format!("complete:mock:pay_{n}"),
            cart_id: None,
            payload: serde_json::json!({ "provider": "mock", "psp_ref": format!("pay_{n}") }),
            max_attempts: 20,
        }),
    }
}

fn record_webhook(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Arc::new(
        rt.block_on(SqliteStore::open(&url))
            .expect("the store opens"),
    );
    let next = Arc::new(AtomicU64::new(0));

    let mut group = c.benchmark_group("record_webhook");
    group.throughput(Throughput::Elements(CLIENTS));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("32_clients_fsync", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let mut clients = tokio::task::JoinSet::new();
                for _ in 0..CLIENTS {
                    let store = store.clone();
                    let next = next.clone();
                    clients.spawn(async move {
                        for _ in 0..iters {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            store.record_webhook(webhook(n)).await.expect("recorded");
                        }
                    });
                }
                while let Some(done) = clients.join_next().await {
                    done.expect("a client finished");
                }
                start.elapsed()
            })
        });
    });
    group.finish();
    rt.block_on(store.close());
}

criterion_group!(benches, record_webhook);
criterion_main!(benches);
