//! The gateway's modules import in one direction: the assembly (`server`) on top, then the
//! HTTP edge (`edge`), then the services (`services`), then the core's ports with the
//! configuration and the metrics beside them. Read from the sources, so a new `use`
//! against the direction fails here rather than in a review.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gateway::metrics::Metrics;
use gateway::services::queue::JobQueue;
use psp_core::ports::VoidScheduler;
use testkit::mem::MemStore;
use testkit::VoidJobs;
use uuid::Uuid;

fn sources(under: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(under);
    let mut out = Vec::new();
    if root.is_dir() {
        walk(&root, &mut out);
    } else {
        let text = std::fs::read_to_string(root.with_extension("rs")).unwrap();
        out.push((root.with_extension("rs"), text));
    }
    assert!(!out.is_empty(), "no sources under {under}");
    out
}

/// The lines of `files` that name one of `forbidden` as a path (comments aside).
fn offending(files: &[(PathBuf, String)], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in forbidden {
                let hit = code.match_indices(word).any(|(at, _)| {
                    // A whole path segment: `store::` but not `psp_core::ports::Store`'s
                    // neighbours such as `self.store.`.
                    code[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
                });
                if hit {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

const ADAPTERS: &[&str] = &["store::", "hantera_client::", "hantera_sandbox::"];

#[test]
fn the_gateway_imports_in_one_direction() {
    // Services know nothing of HTTP, the edge or the assembly, and reach no adapter.
    let services = sources("services");
    let mut forbidden = vec![
        "axum::",
        "hyper::",
        "tower::",
        "tower_http::",
        "crate::edge",
        "crate::server",
    ];
    forbidden.extend(ADAPTERS);
    let found = offending(&services, &forbidden);
    assert!(found.is_empty(), "services import upwards: {found:#?}");

    // The edge uses the services, never the assembly or an adapter.
    let edge = sources("edge");
    let mut forbidden = vec!["crate::server"];
    forbidden.extend(ADAPTERS);
    let found = offending(&edge, &forbidden);
    assert!(found.is_empty(), "the edge imports upwards: {found:#?}");

    // The configuration and the metrics sit beside the ports: they use no layer.
    for leaf in ["config", "metrics"] {
        let found = offending(
            &sources(leaf),
            &["crate::services", "crate::edge", "crate::server"],
        );
        assert!(found.is_empty(), "{leaf} imports a layer: {found:#?}");
    }
}

#[tokio::test]
async fn void_jobs_are_the_rows_testkit_expects() {
    // The core's tests assert the void job through `testkit::VoidJobs`; this holds it to
    // what the gateway's queue really writes, and counts.
    let cart = Uuid::new_v4();
    let ours = Arc::new(MemStore::new());
    let metrics = Arc::new(Metrics::new());
    let queue = JobQueue::new(ours.clone(), metrics.clone(), 5);
    queue.schedule_void("mock", "mpay_1", cart).await.unwrap();
    queue.schedule_void("mock", "mpay_1", cart).await.unwrap();
    let theirs = Arc::new(MemStore::new());
    VoidJobs::new(theirs.clone())
        .schedule_void("mock", "mpay_1", cart)
        .await
        .unwrap();

    let row = |store: &MemStore| {
        let jobs = store.jobs();
        assert_eq!(jobs.len(), 1, "one void per payment: {jobs:?}");
        let j = &jobs[0];
        (
            j.kind.clone(),
            j.dedupe_key.clone(),
            j.cart_id,
            j.payload.clone(),
            j.max_attempts,
        )
    };
    assert_eq!(row(&ours), row(&theirs));
    let text = metrics.render();
    assert!(
        text.contains(r#"psp_gateway_jobs_total{kind="void",result="scheduled"} 1"#),
        "{text}"
    );
}
