//! The ports the core drives: Hantera and the durable store. Adapters implement them
//! (`hantera-client`, `store`); the core and its tests depend only on these traits.
//!
//! The store is five role traits ([`Inbox`], [`Sessions`], [`Completions`], [`Jobs`],
//! [`Readiness`]) and [`Store`], which is all of them. The rules that decide what a store
//! writes are in [`rules`], so that every implementation applies the same ones.

use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cart::RenderedCart;
use crate::money::Money;

pub mod rules;

pub use rules::{decide_sync, SyncDecision, SyncJobState};

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

/// One entry of a payment's journal (a charge or a capture), as far as the gateway reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// `charge`, `capture` or `refund`.
    pub entry_type: String,
    /// Amount in major units.
    pub amount: Decimal,
    /// The authorization a charge reduced, if it named one.
    pub authorization_number: Option<String>,
    /// The reference the charge was sent with (the PSP's capture id).
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

    /// The payments related to a cart (`relationKey` `payments`); `None` when Hantera does
    /// not know the cart. Tells a completion of ours from one by someone else.
    async fn cart_payment_ids(&self, cart_id: Uuid) -> Result<Option<Vec<Uuid>>, HanteraError>;

    /// Adds an activity log entry to a payment (what a person reads in Hantera's portal).
    async fn add_payment_activity(
        &self,
        payment_id: Uuid,
        message: &str,
    ) -> Result<(), HanteraError>;

    /// Tags a payment and adds an activity log entry, in one batch: how the gateway shows a
    /// person a payment that needs them (an underpaid order, a capture refused). Tags are a
    /// set, so a repeat adds no second tag.
    async fn flag_payment(
        &self,
        payment_id: Uuid,
        tag: &str,
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

    /// The journal of a payment (its charges), read so that a charge whose answer was lost
    /// is looked for before it is sent again; `None` when the payment does not exist.
    async fn payment_journal(
        &self,
        payment_id: Uuid,
    ) -> Result<Option<Vec<JournalEntry>>, HanteraError>;

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

/// A recorded webhook as it was received, for inspection and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    /// Row id, in order of recording.
    pub id: i64,
    /// The provider id.
    pub provider: String,
    /// The PSP's event id.
    pub event_id: String,
    /// The PSP's event type.
    pub event_type: String,
    /// The PSP payment it concerns.
    pub psp_ref: Option<String>,
    /// The raw body, byte for byte.
    pub body: Vec<u8>,
    /// When it was recorded, unix milliseconds.
    pub received_at_ms: i64,
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
    /// The cart was completed with this payment, but its total ended up above what was
    /// authorized (it changed while the completion ran). Final: a person must settle it.
    Underpaid,
}

impl CompletionState {
    /// Position in the forward-only order; a transition must not lower it.
    pub fn rank(self) -> u8 {
        match self {
            CompletionState::Started => 0,
            CompletionState::PaymentCreated => 1,
            CompletionState::NeedsAttention => 2,
            CompletionState::Completed | CompletionState::DoublePayment => 3,
            CompletionState::Underpaid => 4,
        }
    }

    /// Whether a record in this state may move to `to`. The state only moves up by
    /// [`CompletionState::rank`], and of the final states only `completed` is ever left:
    /// for `underpaid`, because a completed cart can be found to cost more than was
    /// authorized after it was recorded (a crash between `complete` and the check, or a
    /// cart-sync job that reads the completed cart). A double payment never becomes
    /// underpaid: it did not pay the cart.
    pub fn may_become(self, to: CompletionState) -> bool {
        match self {
            CompletionState::Completed => to == CompletionState::Underpaid,
            CompletionState::DoublePayment | CompletionState::Underpaid => false,
            _ => to.rank() > self.rank(),
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
            CompletionState::Underpaid => "underpaid",
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
            "underpaid" => CompletionState::Underpaid,
            _ => return None,
        })
    }

    /// Whether nothing more will happen without a person.
    pub fn is_final(self) -> bool {
        self.rank() >= 3
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

/// One state change of a completion record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionTransition {
    /// The state entered.
    pub state: CompletionState,
    /// The reason given with the change, if any.
    pub reason: Option<String>,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// One event in the life of a job, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobEvent {
    /// `leased`, `succeeded`, `retry`, `failed`, `replayed` or `expired`.
    pub event: String,
    /// The attempt it belongs to (attempts counted at that moment).
    pub attempt: u32,
    /// The error of a retry or a failure.
    pub error: Option<String>,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// Pending jobs of one kind, for the gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJobs {
    /// The kind.
    pub kind: String,
    /// How many are pending (waiting, backing off or running).
    pub count: u64,
    /// Creation time of the oldest, unix milliseconds.
    pub oldest_created_at_ms: i64,
}

/// The cart-sync bookkeeping of a session: what was last sent to the PSP, what waits to be
/// sent, and whether a person must look.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSync {
    /// The cart.
    pub cart_id: Uuid,
    /// The provider id.
    pub provider: String,
    /// Hash of the payload the PSP holds (sent by a sync, or at checkout).
    pub synced_hash: Option<String>,
    /// Hash of the latest payload seen in a cart mutation.
    pub pending_hash: Option<String>,
    /// The latest payload (what `Provider::sync_payload` returned).
    pub pending_payload: Option<serde_json::Value>,
    /// The cart that payload was computed from, as rendered in the mutation.
    pub pending_cart: Option<serde_json::Value>,
    /// Why the session needs a person, if it does.
    pub attention: Option<String>,
    /// When it was flagged, unix milliseconds.
    pub attention_at_ms: Option<i64>,
}

/// A cart mutation's payload for one session, to be synced to the PSP.
#[derive(Debug, Clone)]
pub struct PendingSync {
    /// The cart.
    pub cart_id: Uuid,
    /// The provider id.
    pub provider: String,
    /// Hash of `payload`.
    pub hash: String,
    /// What the PSP needs.
    pub payload: serde_json::Value,
    /// The rendered cart it was computed from.
    pub cart: serde_json::Value,
}

/// What [`Sessions::schedule_sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncScheduled {
    /// No session exists for (cart, provider).
    NoSession,
    /// Nothing to send: the PSP holds this payload, or the running sync is sending it.
    Unchanged,
    /// A sync job that has not started yet will send the latest payload.
    Coalesced(i64),
    /// A new sync job was added.
    Scheduled(i64),
}

/// What the completion orchestrator asks of the work queue: release a double payment at
/// the PSP, as durable work that outlives a crash. The queue decides the job's kind, key
/// and attempt budget; the core only names the payment.
#[async_trait]
pub trait VoidScheduler: Send + Sync + 'static {
    /// Schedules the void of PSP payment `psp_ref`, which paid cart `cart_id` a second
    /// time. Asking again for the same payment adds nothing.
    async fn schedule_void(
        &self,
        provider: &str,
        psp_ref: &str,
        cart_id: Uuid,
    ) -> Result<(), StoreError>;
}

// The store is five roles, one per kind of durable state, so that an implementation,
// a wrapper or a test double can be written and read one role at a time, and a caller can
// ask for only the role it uses. `Store` is all five: whatever implements the roles is a
// `Store`, and `Arc<dyn Store>` is what the gateway hands around.

/// The webhook inbox: every verified webhook, unique by (provider, event id).
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Records a webhook under its unique (provider, event id) and enqueues its job in the
    /// same transaction. Returns only once the record is durable.
    async fn record_webhook(&self, webhook: NewWebhook) -> Result<Recorded, StoreError>;
}

/// Checkout sessions, one per (cart, provider), and their cart-sync bookkeeping.
#[async_trait]
pub trait Sessions: Send + Sync + 'static {
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

    /// Every session of a cart (one per provider), ordered by provider.
    async fn sessions_of_cart(&self, cart_id: Uuid) -> Result<Vec<Session>, StoreError>;

    /// Records the latest payload of a cart mutation for a session and makes sure a sync
    /// job will send it, in one transaction. Rapid mutations coalesce: while a sync job of
    /// the session has not started, it reads the latest payload when it runs, so no job is
    /// added; a new one is added only when none is waiting (none exists, or the one there
    /// is running and may have read an older payload). A new job is `job` with `:{n}`
    /// appended to its dedupe key (n counts the session's sync jobs), due after `delay`.
    async fn schedule_sync(
        &self,
        sync: PendingSync,
        job: NewJob,
        delay: Duration,
    ) -> Result<SyncScheduled, StoreError>;

    /// The sync bookkeeping of a session.
    async fn session_sync(
        &self,
        cart_id: Uuid,
        provider: &str,
    ) -> Result<Option<SessionSync>, StoreError>;

    /// Records the amount the PSP session of `psp_ref` now holds, after a sync changed it,
    /// so that what the session says it is for stays what the PSP holds. Answers `false`
    /// (and changes nothing) when the session no longer holds that PSP payment: a newer
    /// checkout replaced it meanwhile.
    async fn set_session_amount(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
        amount: Money,
    ) -> Result<bool, StoreError>;

    /// Records that the PSP holds the payload with `hash` (after a sync, or at checkout).
    async fn mark_synced(
        &self,
        cart_id: Uuid,
        provider: &str,
        hash: &str,
    ) -> Result<(), StoreError>;

    /// Marks a session as needing a person, with the reason (the latest reason wins).
    async fn flag_session(
        &self,
        cart_id: Uuid,
        provider: &str,
        reason: &str,
    ) -> Result<(), StoreError>;

    /// Sessions marked as needing a person, most recently flagged first.
    async fn flagged_sessions(&self, limit: u32) -> Result<Vec<SessionSync>, StoreError>;
}

/// Completion records, their history, and the cart claims that decide which PSP payment
/// may complete a cart.
#[async_trait]
pub trait Completions: Send + Sync + 'static {
    /// The completion record of a PSP payment.
    async fn completion(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Option<Completion>, StoreError>;

    /// Moves a completion record forward (creating it if needed) and returns what is
    /// stored afterwards. A lower state than the stored one changes nothing. The rule is
    /// [`rules::advance_completion`].
    async fn advance_completion(&self, update: CompletionUpdate) -> Result<Completion, StoreError>;

    /// Completion records in the given states, newest first.
    async fn completions_in(
        &self,
        states: &[CompletionState],
        limit: u32,
    ) -> Result<Vec<Completion>, StoreError>;

    /// The state changes of a completion record, oldest first.
    async fn completion_history(
        &self,
        provider: &str,
        psp_ref: &str,
    ) -> Result<Vec<CompletionTransition>, StoreError>;

    /// Who holds the right to complete a cart, if anyone.
    async fn cart_claim(&self, cart_id: Uuid) -> Result<Option<CartClaim>, StoreError>;

    /// Takes the right to complete a cart for a PSP payment, or returns who holds it.
    async fn claim_cart(
        &self,
        cart_id: Uuid,
        provider: &str,
        psp_ref: &str,
    ) -> Result<CartClaim, StoreError>;
}

/// Durable jobs: enqueued under a dedupe key, leased, finished, replayed, with their
/// progress and history.
#[async_trait]
pub trait Jobs: Send + Sync + 'static {
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

    /// The job holding a dedupe key.
    async fn job_by_key(&self, dedupe_key: &str) -> Result<Option<Job>, StoreError>;

    /// Jobs in a state, newest first.
    async fn jobs_in(&self, state: JobState, limit: u32) -> Result<Vec<Job>, StoreError>;

    /// Makes a failed job pending again with a fresh attempt budget.
    async fn replay_job(&self, id: i64) -> Result<bool, StoreError>;

    /// Replaces the payload of a job while `owner` holds its lease: progress a job must
    /// keep across attempts (an idempotency key, "the PSP captured"). Returns whether it
    /// was written; `false` when the lease was lost.
    async fn save_job_progress(
        &self,
        id: i64,
        owner: &str,
        payload: &serde_json::Value,
    ) -> Result<bool, StoreError>;

    /// The events of a job, oldest first.
    async fn job_history(&self, id: i64) -> Result<Vec<JobEvent>, StoreError>;

    /// Pending jobs per kind, with the creation time of the oldest of each.
    async fn pending_jobs(&self) -> Result<Vec<PendingJobs>, StoreError>;
}

/// Whether the store answers, for the readiness probe.
#[async_trait]
pub trait Readiness: Send + Sync + 'static {
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The durable state of the gateway: every role. Implemented by whatever implements the
/// roles, so a backend or a wrapper writes the roles and never this.
pub trait Store: Inbox + Sessions + Completions + Jobs + Readiness {}

impl<T: Inbox + Sessions + Completions + Jobs + Readiness + ?Sized> Store for T {}
