//! What the worker runs: the job kinds as one typed [`JobSpec`], the one place that turns a
//! spec into a store row and a row back into the [`Task`] a worker runs, and one module
//! per kind of work.
//!
//! Every job is written to be safe to run again from the start, because a lease can expire
//! under a slow attempt and a process can die anywhere. Progress that must survive an
//! attempt (an idempotency key, "the PSP captured", "Hantera was charged") is written into
//! the job's payload with [`JobCtx::save`] before the step that depends on it.
//!
//! Adding a kind of job: a variant of [`JobSpec`] and of [`Task`] with their rows here, a
//! module with its payload and its `run`, and the producer that asks for it.

pub mod capture;
pub mod payment;
pub mod sync;

use psp_core::ports::{Job, NewJob};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Services;
use capture::CapturePayload;
pub use capture::RequestedCapture;
pub use sync::payload_hash;
use sync::SyncPayload;

/// Completes the cart of a PSP payment (from a webhook, a deferred confirm or the sweep).
pub const COMPLETE_JOB: &str = "complete";
/// Captures at the PSP and charges the Hantera payment (from `OnPaymentCapture`).
pub const CAPTURE_JOB: &str = "capture";
/// Brings a PSP session in step with its cart (from `OnCartMutation`).
pub const SYNC_JOB: &str = "sync";
/// Releases a double payment at the PSP (asked for by the completion orchestrator).
pub const VOID_JOB: &str = "void";

/// The attempt budget of a void. A double payment holds a customer's money until the
/// void succeeds, so it keeps trying longer than the configured budget of other work.
pub const VOID_ATTEMPTS: u32 = 20;

/// A job, as its producer asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSpec {
    /// Complete the cart of PSP payment `psp_ref`.
    Complete {
        /// The provider id.
        provider: String,
        /// The PSP payment; a webhook that names none makes a job that fails visibly.
        psp_ref: Option<String>,
        /// The cart, when the producer knows it (jobs of one cart run in order).
        cart_id: Option<Uuid>,
        /// Who asked, which names the job's dedupe key.
        cause: CompleteCause,
    },
    /// Capture at the PSP what Hantera asked to capture, then charge the Hantera payment.
    Capture(RequestedCapture),
    /// Bring the PSP session of (`provider`, `cart_id`) in step with the cart.
    Sync {
        /// The provider id.
        provider: String,
        /// The cart.
        cart_id: Uuid,
    },
    /// Release double payment `psp_ref` of cart `cart_id` at the PSP.
    Void {
        /// The provider id.
        provider: String,
        /// The PSP payment to release.
        psp_ref: String,
        /// The cart it paid a second time.
        cart_id: Uuid,
    },
}

/// Why a completion is asked for: one job per webhook event, per confirm series, per sweep
/// bucket, per replay of a record's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteCause {
    /// A verified PSP webhook; a second delivery of the event adds nothing.
    Webhook {
        /// The PSP's event id.
        event_id: String,
        /// The PSP's event type, kept in the payload for people.
        event_type: String,
        /// Whether the event said authorized (a re-read that does not agree yet retries).
        authorized: bool,
    },
    /// The storefront's confirm could not finish; the worker takes it over. Confirms in a
    /// row make a series with one pending job (see `JobQueue::add_unless_pending`).
    Confirm,
    /// The sweep found the session quiet in time bucket `bucket`.
    Sweep {
        /// `now / sweep_interval`: replicas sweeping in one bucket add one job.
        bucket: i64,
    },
    /// A person replayed the completion whose record last changed at `record_at_ms`.
    AdminReplay {
        /// The record's `updated_at_ms`: replaying twice before it moves adds one job.
        record_at_ms: i64,
    },
}

impl JobSpec {
    /// The stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Complete { .. } => COMPLETE_JOB,
            JobSpec::Capture(_) => CAPTURE_JOB,
            JobSpec::Sync { .. } => SYNC_JOB,
            JobSpec::Void { .. } => VOID_JOB,
        }
    }

    /// The dedupe key: a second job with the same key adds nothing. A confirm's is the
    /// base of its series; a sync's is numbered by the store.
    pub fn dedupe_key(&self) -> String {
        match self {
            JobSpec::Complete {
                provider,
                psp_ref,
                cause,
                ..
            } => {
                let psp_ref = psp_ref.as_deref().unwrap_or_default();
                match cause {
                    CompleteCause::Webhook { event_id, .. } => {
                        format!("webhook:{provider}:{event_id}")
                    }
                    CompleteCause::Confirm => format!("confirm:{provider}:{psp_ref}"),
                    CompleteCause::Sweep { bucket } => {
                        format!("sweep:{provider}:{psp_ref}:{bucket}")
                    }
                    CompleteCause::AdminReplay { record_at_ms } => {
                        format!("replay:{provider}:{psp_ref}:{record_at_ms}")
                    }
                }
            }
            JobSpec::Capture(c) => format!("capture:{}", c.payment_capture_id),
            JobSpec::Sync { provider, cart_id } => format!("sync:{provider}:{cart_id}"),
            JobSpec::Void {
                provider, psp_ref, ..
            } => Self::void_key(provider, psp_ref),
        }
    }

    /// The dedupe key of the void of `psp_ref`, by which the admin API finds it.
    pub fn void_key(provider: &str, psp_ref: &str) -> String {
        format!("void:{provider}:{psp_ref}")
    }

    /// The store row, with `max_attempts` as the attempt budget unless the kind has its
    /// own. A capture's progress starts here: its first idempotency key, nothing captured.
    pub fn row(&self, max_attempts: u32) -> NewJob {
        let (cart_id, payload, max_attempts) = match self {
            JobSpec::Complete {
                provider,
                psp_ref,
                cart_id,
                cause,
            } => {
                let (event, authorized) = match cause {
                    CompleteCause::Webhook {
                        event_type,
                        authorized,
                        ..
                    } => (event_type.as_str(), Some(*authorized)),
                    CompleteCause::Confirm => ("confirm", None),
                    CompleteCause::Sweep { .. } => ("sweep", None),
                    CompleteCause::AdminReplay { .. } => ("admin_replay", None),
                };
                let payload = PaymentPayload {
                    provider: provider.clone(),
                    psp_ref: psp_ref.clone(),
                    event: Some(event.to_string()),
                    authorized,
                };
                (*cart_id, to_json(&payload), max_attempts)
            }
            JobSpec::Capture(c) => {
                let payload = CapturePayload {
                    provider: c.provider.clone(),
                    psp_ref: c.psp_ref.clone(),
                    payment_id: c.payment_id,
                    payment_capture_id: c.payment_capture_id.clone(),
                    order_id: c.order_id,
                    currency: c.currency.clone(),
                    amount_minor: c.amount_minor,
                    authorized_minor: c.authorized_minor,
                    capture_minor: None,
                    idempotency_key: capture::idempotency_key(&c.payment_capture_id),
                    psp_capture_id: None,
                    charged: false,
                    refused: None,
                    refusals: 0,
                };
                (None, to_json(&payload), max_attempts)
            }
            JobSpec::Sync { provider, cart_id } => {
                let payload = SyncPayload {
                    provider: provider.clone(),
                    cart_id: *cart_id,
                    key: None,
                    key_hash: None,
                    keys: 0,
                };
                (Some(*cart_id), to_json(&payload), max_attempts)
            }
            JobSpec::Void {
                provider,
                psp_ref,
                cart_id,
            } => {
                let payload = PaymentPayload {
                    provider: provider.clone(),
                    psp_ref: Some(psp_ref.clone()),
                    event: None,
                    authorized: None,
                };
                (Some(*cart_id), to_json(&payload), VOID_ATTEMPTS)
            }
        };
        NewJob {
            kind: self.kind().into(),
            dedupe_key: self.dedupe_key(),
            cart_id,
            payload,
            max_attempts,
        }
    }
}

/// The payloads are plain structs of strings and numbers, which always serialise.
fn to_json(payload: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(payload).expect("a job payload serialises")
}

/// A stored job read back: its payload, with whatever progress its attempts saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// See [`JobSpec::Complete`].
    Complete(PaymentPayload),
    /// See [`JobSpec::Capture`].
    Capture(CapturePayload),
    /// See [`JobSpec::Sync`].
    Sync(SyncPayload),
    /// See [`JobSpec::Void`].
    Void(PaymentPayload),
}

impl Task {
    /// Reads a stored row; an error is why the job cannot run (it fails at once).
    pub fn from_row(job: &Job) -> Result<Self, UnreadableJob> {
        fn read<T: serde::de::DeserializeOwned>(
            job: &Job,
            what: &'static str,
        ) -> Result<T, UnreadableJob> {
            serde_json::from_value(job.payload.clone())
                .map_err(|source| UnreadableJob::Payload { what, source })
        }
        match job.kind.as_str() {
            COMPLETE_JOB => read(job, "").map(Task::Complete),
            VOID_JOB => read(job, "").map(Task::Void),
            CAPTURE_JOB => read(job, "capture ").map(Task::Capture),
            SYNC_JOB => read(job, "sync ").map(Task::Sync),
            other => Err(UnreadableJob::UnknownKind(other.to_string())),
        }
    }
}

/// Why a stored job cannot run.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableJob {
    /// The payload is not its kind's.
    #[error("unreadable {what}payload: {source}")]
    Payload {
        /// Which payload (`capture `, `sync `, or empty for a payment's).
        what: &'static str,
        /// What serde found.
        source: serde_json::Error,
    },
    /// No job kind of that name exists.
    #[error("unknown job kind {0:?}")]
    UnknownKind(String),
}

/// The PSP payment a job is about, for the admin API: every payment job's payload (a
/// completion, a void, a capture) names its `provider` and `psp_ref`.
pub fn payment_of(job: &Job) -> Option<(&str, &str)> {
    let provider = job.payload.get("provider")?.as_str()?;
    let psp_ref = job.payload.get("psp_ref")?.as_str()?;
    Some((provider, psp_ref))
}

/// The payload of a `complete` or `void` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPayload {
    /// The provider id.
    pub provider: String,
    /// The PSP payment.
    pub psp_ref: Option<String>,
    /// What asked for a completion: a webhook's event type, `confirm`, `sweep`,
    /// `admin_replay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Whether the webhook said authorized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized: Option<bool>,
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

/// What a running job may use: the services, and its own lease.
pub(crate) struct JobCtx<'a> {
    pub(crate) services: &'a Services,
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
            .services
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

/// Runs one attempt of the job.
pub(crate) async fn run(ctx: &JobCtx<'_>) -> Attempt {
    match Task::from_row(ctx.job) {
        Ok(Task::Complete(p)) => payment::complete(ctx, p).await,
        Ok(Task::Void(p)) => payment::void(ctx, p).await,
        Ok(Task::Capture(p)) => capture::run(ctx, p).await,
        Ok(Task::Sync(p)) => sync::run(ctx, p).await,
        Err(unreadable) => Attempt::Fail(unreadable.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(row: NewJob) -> Job {
        Job {
            id: 1,
            kind: row.kind,
            dedupe_key: row.dedupe_key,
            cart_id: row.cart_id,
            payload: row.payload,
            state: psp_core::ports::JobState::Pending,
            attempts: 0,
            max_attempts: row.max_attempts,
            next_run_at_ms: 0,
            last_error: None,
            created_at_ms: 0,
        }
    }

    #[test]
    fn each_kind_of_job_is_stored_as_before_and_read_back() {
        let cart = Uuid::from_u128(7);
        let webhook = JobSpec::Complete {
            provider: "mock".into(),
            psp_ref: Some("mpay_1".into()),
            cart_id: None,
            cause: CompleteCause::Webhook {
                event_id: "evt_1".into(),
                event_type: "payment.authorized".into(),
                authorized: true,
            },
        };
        let row = webhook.row(5);
        assert_eq!(
            (row.kind.as_str(), row.dedupe_key.as_str(), row.cart_id),
            ("complete", "webhook:mock:evt_1", None)
        );
        assert_eq!(
            row.payload,
            json!({ "provider": "mock", "psp_ref": "mpay_1", "event": "payment.authorized", "authorized": true })
        );
        assert_eq!(row.max_attempts, 5);
        assert_eq!(
            Task::from_row(&stored(row)).unwrap(),
            Task::Complete(PaymentPayload {
                provider: "mock".into(),
                psp_ref: Some("mpay_1".into()),
                event: Some("payment.authorized".into()),
                authorized: Some(true),
            })
        );

        for (cause, key, event) in [
            (CompleteCause::Confirm, "confirm:mock:mpay_1", "confirm"),
            (
                CompleteCause::Sweep { bucket: 42 },
                "sweep:mock:mpay_1:42",
                "sweep",
            ),
            (
                CompleteCause::AdminReplay { record_at_ms: 9 },
                "replay:mock:mpay_1:9",
                "admin_replay",
            ),
        ] {
            let row = JobSpec::Complete {
                provider: "mock".into(),
                psp_ref: Some("mpay_1".into()),
                cart_id: Some(cart),
                cause,
            }
            .row(5);
            assert_eq!(row.dedupe_key, key);
            assert_eq!(row.cart_id, Some(cart));
            assert_eq!(
                row.payload,
                json!({ "provider": "mock", "psp_ref": "mpay_1", "event": event })
            );
        }

        let void = JobSpec::Void {
            provider: "mock".into(),
            psp_ref: "mpay_2".into(),
            cart_id: cart,
        }
        .row(5);
        assert_eq!(
            (void.kind.as_str(), void.dedupe_key.as_str(), void.cart_id),
            ("void", "void:mock:mpay_2", Some(cart))
        );
        assert_eq!(
            void.payload,
            json!({ "provider": "mock", "psp_ref": "mpay_2" })
        );
        assert_eq!(void.max_attempts, VOID_ATTEMPTS);
        assert!(matches!(Task::from_row(&stored(void)), Ok(Task::Void(_))));

        let sync = JobSpec::Sync {
            provider: "kustom".into(),
            cart_id: cart,
        }
        .row(5);
        assert_eq!(sync.dedupe_key, format!("sync:kustom:{cart}"));
        assert_eq!(
            sync.payload,
            json!({ "provider": "kustom", "cart_id": cart, "key": null, "key_hash": null, "keys": 0 })
        );
        assert!(matches!(Task::from_row(&stored(sync)), Ok(Task::Sync(_))));
    }

    #[test]
    fn a_capture_job_starts_with_its_first_idempotency_key_and_no_progress() {
        let payment_id = Uuid::from_u128(1);
        let row = JobSpec::Capture(RequestedCapture {
            provider: "mock".into(),
            psp_ref: "mpay_1".into(),
            payment_id,
            payment_capture_id: "cap-1".into(),
            order_id: None,
            currency: "SEK".into(),
            amount_minor: 1000,
            authorized_minor: Some(1000),
        })
        .row(5);
        assert_eq!(
            (row.kind.as_str(), row.dedupe_key.as_str(), row.cart_id),
            ("capture", "capture:cap-1", None)
        );
        let Ok(Task::Capture(p)) = Task::from_row(&stored(row)) else {
            panic!("a capture row reads back as a capture");
        };
        assert_eq!(p.idempotency_key, "hantera-capture-cap-1");
        assert_eq!(
            (
                p.capture_minor,
                p.psp_capture_id,
                p.charged,
                p.refused,
                p.refusals
            ),
            (None, None, false, None, 0)
        );
    }

    #[test]
    fn an_unknown_kind_or_an_unreadable_payload_cannot_run() {
        let mut job = stored(
            JobSpec::Sync {
                provider: "mock".into(),
                cart_id: Uuid::from_u128(1),
            }
            .row(5),
        );
        job.payload = json!({ "provider": 1 });
        let err = Task::from_row(&job).unwrap_err().to_string();
        assert!(err.starts_with("unreadable sync payload: "), "{err}");
        job.kind = "teleport".into();
        assert_eq!(
            Task::from_row(&job).unwrap_err().to_string(),
            "unknown job kind \"teleport\""
        );
    }
}
