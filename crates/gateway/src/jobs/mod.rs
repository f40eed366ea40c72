//! What the worker runs: one module per job kind, plus what they share.
//!
//! Every job is written to be safe to run again from the start, because a lease can expire
//! under a slow attempt and a process can die anywhere. Progress that must survive an
//! attempt (an idempotency key, "the PSP captured", "Hantera was charged") is written into
//! the job's payload with [`JobCtx::save`] before the step that depends on it.

pub(crate) mod capture;
pub(crate) mod counted;
pub(crate) mod sweep;
pub(crate) mod sync;

use psp_core::ports::Job;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::app::AppState;

/// Completes the cart of a PSP payment (from a webhook, a deferred confirm or the sweep).
pub const COMPLETE_JOB: &str = "complete";
/// Captures at the PSP and charges the Hantera payment (from `OnPaymentCapture`).
pub const CAPTURE_JOB: &str = "capture";
/// Brings a PSP session in step with its cart (from `OnCartMutation`).
pub const SYNC_JOB: &str = "sync";
/// Releases a double payment at the PSP (scheduled by the completion orchestrator).
pub const VOID_JOB: &str = "void";

/// The completion orchestrator's void port: a `void` job in the store.
pub(crate) struct StoreVoids(pub(crate) std::sync::Arc<dyn psp_core::ports::Store>);

#[async_trait::async_trait]
impl psp_core::ports::VoidScheduler for StoreVoids {
    async fn schedule_void(
        &self,
        provider: &str,
        psp_ref: &str,
        cart_id: uuid::Uuid,
    ) -> Result<(), psp_core::ports::StoreError> {
        self.0
            .enqueue(psp_core::ports::NewJob {
                kind: VOID_JOB.into(),
                dedupe_key: format!("void:{provider}:{psp_ref}"),
                cart_id: Some(cart_id),
                payload: serde_json::json!({ "provider": provider, "psp_ref": psp_ref }),
                max_attempts: 20,
            })
            .await
            .map(|_| ())
    }
}

/// How one attempt of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Done; never run again.
    Done,
    /// Try again after a backoff (nothing definite was learned).
    Retry(String),
    /// Stop until a person replays it.
    Fail(String),
}

/// What a running job may use: the application, and its own lease.
pub(crate) struct JobCtx<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) owner: &'a str,
    pub(crate) job: &'a Job,
}

impl JobCtx<'_> {
    /// Writes the job's progress into its payload. `Err(Attempt)` ends the attempt when the
    /// write failed or the lease was lost: going on without durable progress could repeat a
    /// step that must not be repeated.
    pub(crate) async fn save(&self, payload: &impl Serialize) -> Result<(), Attempt> {
        let value = serde_json::to_value(payload)
            .map_err(|e| Attempt::Fail(format!("the job's progress does not serialise: {e}")))?;
        match self
            .state
            .store
            .save_job_progress(self.job.id, self.owner, &value)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Attempt::Retry(
                "the job's lease was lost; another attempt takes over".into(),
            )),
            Err(e) => Err(Attempt::Retry(format!("saving the job's progress: {e}"))),
        }
    }
}

/// The hash a sync compares: SHA-256, in hex, of the payload's canonical JSON (object keys
/// sorted at every level, no whitespace, numbers as their exact text). Two payloads that
/// mean the same bytes-for-bytes hash the same whatever order their maps were built in.
pub fn payload_hash(payload: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical(payload, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_payload_hash_does_not_depend_on_key_order() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"amount":1000,"currency":"SEK","lines":[{"b":1,"a":2}]}"#)
                .unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"lines":[{"a":2,"b":1}],"currency":"SEK","amount":1000}"#)
                .unwrap();
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_eq!(payload_hash(&a).len(), 64);
    }

    #[test]
    fn the_payload_hash_is_stable_across_releases() {
        // A stored hash is compared with one computed by a later release: the canonical
        // form must not drift. This value is sha256 of {"amount":1000,"currency":"SEK"}.
        assert_eq!(
            payload_hash(&json!({ "currency": "SEK", "amount": 1000 })),
            "7f0573d72c2b34722d4dd99f8323f01a1135252235be79bec2ee6ac7d7ed484f"
        );
    }

    #[test]
    fn the_payload_hash_changes_with_any_value_and_keeps_exact_numbers() {
        let base = payload_hash(&json!({ "amount": 1000, "currency": "SEK" }));
        assert_ne!(
            base,
            payload_hash(&json!({ "amount": 1001, "currency": "SEK" }))
        );
        assert_ne!(
            base,
            payload_hash(&json!({ "amount": 1000, "currency": "EUR" }))
        );
        let exact: serde_json::Value = serde_json::from_str(r#"{"total":10.10}"#).unwrap();
        let other: serde_json::Value = serde_json::from_str(r#"{"total":10.1}"#).unwrap();
        // With serde_json's arbitrary_precision the number text is kept as written, so a
        // provider must build its payload from exact values (minor units), never floats.
        assert_ne!(payload_hash(&exact), payload_hash(&other));
    }
}
