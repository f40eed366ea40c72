//! The completion orchestrator's void port for tests, enqueuing exactly the job the
//! gateway's job queue enqueues (the gateway's `void_jobs_are_the_rows_testkit_expects`
//! holds the two together), so the core's tests can assert the void job the product adds.

use std::sync::Arc;

use async_trait::async_trait;
use psp_core::ports::{Jobs, NewJob, StoreError, VoidScheduler};
use uuid::Uuid;

/// The kind of the job that voids a double payment, as the gateway stores it.
pub const VOID_JOB: &str = "void";

/// How many attempts the gateway gives a void.
pub const VOID_ATTEMPTS: u32 = 20;

/// Schedules voids as `void` jobs in a store.
#[derive(Clone)]
pub struct VoidJobs {
    store: Arc<dyn Jobs>,
}

impl std::fmt::Debug for VoidJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoidJobs").finish_non_exhaustive()
    }
}

impl VoidJobs {
    /// Voids scheduled into `store`; it needs only the store's jobs.
    pub fn new(store: Arc<dyn Jobs>) -> Self {
        Self { store }
    }

    /// The row the gateway writes for the void of `psp_ref`.
    pub fn row(provider: &str, psp_ref: &str, cart_id: Uuid) -> NewJob {
        NewJob {
            kind: VOID_JOB.into(),
            dedupe_key: format!("void:{provider}:{psp_ref}"),
            cart_id: Some(cart_id),
            payload: serde_json::json!({ "provider": provider, "psp_ref": psp_ref }),
            max_attempts: VOID_ATTEMPTS,
        }
    }
}

#[async_trait]
impl VoidScheduler for VoidJobs {
    async fn schedule_void(
        &self,
        provider: &str,
        psp_ref: &str,
        cart_id: Uuid,
    ) -> Result<(), StoreError> {
        self.store
            .enqueue(Self::row(provider, psp_ref, cart_id))
            .await
            .map(|_| ())
    }
}
