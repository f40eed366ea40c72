//! The ports the core drives: Hantera and the durable store. Adapters implement them
//! (`hantera-client`, `store`); the core and its tests depend only on these traits.

use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cart::RenderedCart;
use crate::money::Money;

// ---------------------------------------------------------------------------------------
// Hantera
// ---------------------------------------------------------------------------------------

/// An error from Hantera.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HanteraError {
    /// Hantera answered with `{errors:[{code,message}]}`.
    #[error("hantera {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Hantera's error code, e.g. `ALREADY_EXISTS`.
        code: String,
        /// Hantera's message.
        message: String,
    },
    /// No usable answer: timeout, reset, 5xx without a body, unreadable JSON.
    #[error("hantera unavailable: {0}")]
    Unavailable(String),
    /// The client's credentials were refused.
    #[error("hantera refused our credentials: {0}")]
    Unauthorized(String),
}

impl HanteraError {
    /// Hantera's error code, if it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            HanteraError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            HanteraError::Unavailable(_) => true,
            HanteraError::Api { status, code, .. } => {
                *status >= 500 && !is_definite_actor_error(code)
            }
            HanteraError::Unauthorized(_) => false,
        }
    }
}

/// Actor errors that Hantera returns with status 500 although they are definite answers.
fn is_definite_actor_error(code: &str) -> bool {
    matches!(
        code,
        "ALREADY_EXISTS" | "DUPLICATE_ID" | "INVALID_COMMAND" | "INVALID_MESSAGE_BODY"
    ) || code.starts_with("UNDEFINED_")
}

/// A payment actor as found by external reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRef {
    /// The actor id.
    pub payment_id: Uuid,
    /// The payment number, e.g. `MOCK-1001`.
    pub payment_number: Option<String>,
}

/// A payment to create in Hantera, with one successful authorization.
#[derive(Debug, Clone)]
pub struct NewPayment {
    /// Hantera's `providerKey`: the provider id.
    pub provider_key: String,
    /// The PSP's id: globally unique across payments.
    pub external_reference: String,
    /// The authorized amount.
    pub amount: Money,
    /// The authorization number, unique within the payment.
    pub authorization_number: String,
    /// The prefix for `generatePaymentNumberByPrefix`.
    pub payment_number_prefix: String,
}

/// The result of creating a payment at a chosen id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created now.
    Created,
    /// The id exists already (`ALREADY_EXISTS`): a retried create.
    AlreadyExists,
    /// Another payment holds the external reference (`DUPLICATE_ID`).
    DuplicateExternalReference,
}

/// A charge on a payment actor after a capture at the PSP.
#[derive(Debug, Clone)]
pub struct Charge {
    /// Amount in major units.
    pub amount: Decimal,
    /// The authorization it reduces.
    pub authorization_number: Option<String>,
    /// The PSP's capture id.
    pub transaction_reference: Option<String>,
}

/// What the gateway needs from Hantera.
#[async_trait]
pub trait Hantera: Send + Sync + 'static {
    /// The rendered cart; `None` when Hantera does not know it.
    async fn get_cart(&self, cart_id: Uuid) -> Result<Option<RenderedCart>, HanteraError>;

    /// Finds a payment by its external reference.
    async fn find_payment(
        &self,
        external_reference: &str,
    ) -> Result<Option<PaymentRef>, HanteraError>;

    /// Creates a payment at `payment_id`, with its authorization, in one message.
    async fn create_payment(
        &self,
        payment_id: Uuid,
        payment: &NewPayment,
    ) -> Result<CreateOutcome, HanteraError>;

    /// Relates the payment to the cart and completes the cart, in one atomic batch.
    async fn link_and_complete(&self, cart_id: Uuid, payment_id: Uuid) -> Result<(), HanteraError>;

    /// Adds an activity log entry to a payment (what a person reads in Hantera's portal).
    async fn add_payment_activity(
        &self,
        payment_id: Uuid,
        message: &str,
    ) -> Result<(), HanteraError>;

    /// Sets dynamic fields on a cart (for example a provider's sync hashes); `null`
    /// removes a field.
    async fn set_cart_fields(
        &self,
        cart_id: Uuid,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), HanteraError>;

    /// Records a charge on a payment.
    async fn charge(&self, payment_id: Uuid, charge: &Charge) -> Result<(), HanteraError>;

    /// Whether Hantera answers (readiness).
    async fn ping(&self) -> Result<(), HanteraError>;
}

// ---------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------

/// An error of the durable store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("store: {0}")]
    Backend(String),
    /// A row that must exist does not.
    #[error("store: not found: {0}")]
    NotFound(String),
}

/// A webhook to record, with the job that acts on it.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// The provider id.
    pub provider: String,
    /// The PSP's event id.
    pub event_id: String,
    /// The PSP's event type.
    pub event_type: String,
    /// The PSP payment it concerns.
    pub psp_ref: Option<String>,
    /// The raw body as received, kept for inspection and replay.
    pub body: Vec<u8>,
    /// The job to enqueue in the same transaction, if the event asks for work.
    pub job: Option<NewJob>,
}

/// Whether a webhook was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now.
    New,
    /// The same (provider, event id) was stored before; nothing was added.
    Duplicate,
}

/// The status of a checkout session, as far as the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// A key is reserved; the PSP call may not have happened.
    Creating,
    /// Waiting for the customer.
    Open,
    /// Authorized at the PSP.
    Authorized,
    /// The cart was completed with this session.
    Completed,
    /// Failed or declined at the PSP.
    Failed,
    /// Cancelled or expired at the PSP.
    Canceled,
}

impl SessionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Creating => "creating",
            SessionStatus::Open => "open",
            SessionStatus::Authorized => "authorized",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Canceled => "canceled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "creating" => SessionStatus::Creating,
            "open" => SessionStatus::Open,
            "authorized" => SessionStatus::Authorized,
            "completed" => SessionStatus::Completed,
            "failed" => SessionStatus::Failed,
            "canceled" => SessionStatus::Canceled,
            _ => return None,
        })
    }

    /// Whether the session has reached an end.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionStatus::Completed | SessionStatus::Failed | SessionStatus::Canceled
        )
    }
}

/// One checkout session per (cart, provider).
#[derive(Debug, Clone)]
pub struct Session {
    /// The cart.
    pub cart_id: Uuid,
    /// The provider id.
    pub provider: String,
    /// The key used to create the session at the PSP.
    pub idempotency_key: String,
    /// The PSP's payment id, once known.
    pub psp_ref: Option<String>,
    /// The amount in minor units, once known.
    pub amount_minor: Option<i64>,
    /// The currency code, once known.
    pub currency: Option<String>,
    /// What the storefront was handed.
    pub client: Option<serde_json::Value>,
    /// Where the session is.
    pub status: SessionStatus,
    /// Last change, unix milliseconds.
    pub updated_at_ms: i64,
}

/// The state of a completion attempt for one PSP payment. It only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletionState {
    /// Work began.
    Started,
    /// Not completed: a person must look (amount mismatch, cart gone, …).
    NeedsAttention,
    /// The Hantera payment exists.
    PaymentCreated,
    /// The cart was completed with this payment.
    Completed,
    /// The cart was already paid by another payment: this one is a double payment.
    DoublePayment,
}

impl CompletionState {
    /// Position in the forward-only order; a transition must not lower it.
    pub fn rank(self) -> u8 {
        match self {
            CompletionState::Started => 0,
            CompletionState::PaymentCreated => 1,
            CompletionState::NeedsAttention => 2,
            CompletionState::Completed | CompletionState::DoublePayment => 3,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CompletionState::Started => "started",
            CompletionState::NeedsAttention => "needs_attention",
            CompletionState::PaymentCreated => "payment_created",
            CompletionState::Completed => "completed",
            CompletionState::DoublePayment => "double_payment",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "started" => CompletionState::Started,
            "needs_attention" => CompletionState::NeedsAttention,
            "payment_created" => CompletionState::PaymentCreated,
            "completed" => CompletionState::Completed,
            "double_payment" => CompletionState::DoublePayment,
            _ => return None,
        })
    }

    /// Whether nothing more will happen without a person.
    pub fn is_final(self) -> bool {
        self.rank() == 3
    }
}

/// A completion record, keyed by (provider, psp_ref).
#[derive(Debug, Clone)]
pub struct Completion {
    /// The provider id.
    pub provider: String,
    /// The PSP's payment id.
    pub psp_ref: String,
    /// The cart.
    pub cart_id: Uuid,
    /// Where it is.
    pub state: CompletionState,
    /// The Hantera payment, once created.
    pub payment_id: Option<Uuid>,
    /// Why it needs attention, or what happened last.
    pub reason: Option<String>,
    /// Last change, unix milliseconds.
    pub updated_at_ms: i64,
}

/// A requested change of a completion record.
#[derive(Debug, Clone)]
pub struct CompletionUpdate {
    /// The provider id.
    pub provider: String,
    /// The PSP's payment id.
    pub psp_ref: String,
    /// The cart.
    pub cart_id: Uuid,
    /// The new state; ignored when lower than the stored one.
    pub state: CompletionState,
    /// The payment, when known.
    pub payment_id: Option<Uuid>,
    /// The reason, when there is one.
    pub reason: Option<String>,
}

/// Who holds the right to complete a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartClaim {
    /// The provider id of the holder.
    pub provider: String,
    /// The PSP payment of the holder.
    pub psp_ref: String,
}

/// A job to enqueue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewJob {
    /// What kind of work (`complete`, `capture`, …).
    pub kind: String,
    /// Unique: a second enqueue with the same key adds nothing.
    pub dedupe_key: String,
    /// Jobs of one cart run in order; `None` for work not tied to a cart.
    pub cart_id: Option<Uuid>,
    /// The job's input.
    pub payload: serde_json::Value,
    /// How many attempts before the job is `failed`.
    pub max_attempts: u32,
}

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting or running under a lease.
    Pending,
    /// Done.
    Succeeded,
    /// Out of attempts or definitely refused; waits for a person (replay).
    Failed,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => JobState::Pending,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

/// A stored job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Row id.
    pub id: i64,
    /// Kind of work.
    pub kind: String,
    /// Dedupe key.
    pub dedupe_key: String,
    /// The cart it belongs to.
    pub cart_id: Option<Uuid>,
    /// Input.
    pub payload: serde_json::Value,
    /// State.
    pub state: JobState,
    /// Attempts started so far (including the current one when leased).
    pub attempts: u32,
    /// Attempt budget.
    pub max_attempts: u32,
    /// When it may run next, unix milliseconds.
    pub next_run_at_ms: i64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum JobResult {
    /// Done; never run again.
    Succeeded,
    /// Try again after `after`.
    Retry {
        /// Delay before the next attempt.
        after: Duration,
        /// What went wrong.
        error: String,
    },
    /// Give up until a person replays it.
    Failed {
        /// Why.
        error: String,
    },
}

/// Whether an enqueue added a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job, with its id.
    New(i64),
    /// A job with that dedupe key exists already.
    Duplicate(i64),
}

/// The durable state of the gateway.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records a webhook under its unique (provider, event id) and enqueues its job in the
    /// same transaction. Returns only once the record is durable.
    async fn record_webhook(&self, webhook: NewWebhook) -> Result<Recorded, StoreError>;

    /// The session for (cart, provider).
    async fn session(&self, cart_id: Uuid, provider: &str) -> Result<Option<Session>, StoreError>;

    /// The session holding a PSP payment.
    async fn session_by_ref(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Session>, StoreError>;

    /// Creates the session row with `idempotency_key`, or returns the one that exists.
    async fn reserve_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError>;

    /// Starts over a session that ended in `failed` or `canceled` (the customer tries
    /// again after a decline): the row gets `idempotency_key`, status `creating`, and no
    /// PSP payment. A session in any other status is returned unchanged.
    async fn restart_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        idempotency_key: &str,
    ) -> Result<Session, StoreError>;

    /// Stores what the PSP answered for the session and marks it open.
    async fn save_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
        amount: Money,
        client: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// Moves a session's status (terminal statuses are never left).
    async fn set_session_status(
        &self,
        provider: &str,
        psp_ref: &str,
        status: SessionStatus,
    ) -> Result<(), StoreError>;

    /// Sessions not yet terminal whose last change is older than `quiet_for`.
    async fn quiet_sessions(
        &self,
        quiet_for: Duration,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError>;

    /// The completion record of a PSP payment.
    async fn completion(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Completion>, StoreError>;

    /// Moves a completion record forward (creating it if needed) and returns what is
    /// stored afterwards. A lower state than the stored one changes nothing.
    async fn advance_completion(&self, update: CompletionUpdate) -> Result<Completion, StoreError>;

    /// Completion records in the given states, newest first.
    async fn completions_in(
        &self,
        states: &[CompletionState],
        limit: u32,
    ) -> Result<Vec<Completion>, StoreError>;

    /// Who holds the right to complete a cart, if anyone.
    async fn cart_claim(&self, cart_id: Uuid) -> Result<Option<CartClaim>, StoreError>;

    /// Takes the right to complete a cart for a PSP payment, or returns who holds it.
    async fn claim_cart(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
    ) -> Result<CartClaim, StoreError>;

    /// Adds a job unless one with the same dedupe key exists.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError>;

    /// Leases up to `limit` due jobs for `lease` to `owner`, at most one per cart and the
    /// oldest of each cart first, and counts the attempt.
    async fn lease_jobs(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;

    /// Ends an attempt. Ignored when `owner` no longer holds the lease.
    async fn finish_job(&self, id: i64, owner: &str, result: JobResult) -> Result<(), StoreError>;

    /// One job.
    async fn job(&self, id: i64) -> Result<Option<Job>, StoreError>;

    /// Jobs in a state, newest first.
    async fn jobs_in(&self, state: JobState, limit: u32) -> Result<Vec<Job>, StoreError>;

    /// Makes a failed job pending again with a fresh attempt budget.
    async fn replay_job(&self, id: i64) -> Result<bool, StoreError>;

    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}
