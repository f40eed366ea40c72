//! The store's behaviour suite (`testkit::store_suite`) against `MemStore`, so that the
//! in-process tests of the orchestrator and the gateway cannot rely on semantics the real
//! stores do not have. A `MemStore` is gone with its value, so it is not a `Persistent`
//! backend: the suite's tests of reopening, sharing and closing a database are not
//! generated for it.

use psp_core::ports::{StoreError, StoredWebhook};
use testkit::mem::MemStore;
use testkit::store_suite::Backend;

/// The behaviour suite's `MemStore`: a fresh, empty one per test.
pub(crate) struct InMemory;

impl Backend for InMemory {
    type Store = MemStore;
    /// No database stands behind a `MemStore`.
    type Db = ();

    async fn fresh() -> ((), MemStore) {
        ((), MemStore::new())
    }

    async fn webhook(
        store: &MemStore,
        provider: &str,
        event_id: &str,
    ) -> Result<Option<StoredWebhook>, StoreError> {
        store.webhook(provider, event_id).await
    }
}

mod suite {
    testkit::store_suite!(crate::store_suite::InMemory);
}

/// Every public test of the suite is instantiated by `store_suite!`: a test added to the
/// suite but not to the macro would otherwise never run.
#[test]
fn every_suite_test_is_listed() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store_suite");
    let listing = std::fs::read_to_string(format!("{root}/mod.rs")).expect("the suite's mod.rs");
    let mut found = 0;
    for part in [
        "claims",
        "completions",
        "jobs",
        "sessions",
        "sync",
        "webhooks",
    ] {
        let source = std::fs::read_to_string(format!("{root}/{part}.rs")).expect("a suite part");
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let name = rest.split('<').next().expect("a name");
            found += 1;
            assert!(
                listing.contains(&format!(" {name},")),
                "{part}::{name} is not listed in store_suite!"
            );
        }
    }
    assert_eq!(found, 49, "the suite's tests were not all found");
}
