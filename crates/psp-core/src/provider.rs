//! The `Provider` trait every PSP adapter implements, and the registry that finds the
//! compiled-in adapters through `inventory`.
//!
//! Architecture invariant: nothing outside a provider crate names a provider. The gateway
//! looks adapters up by the `{provider}` path segment in a [`Registry`]; a new PSP is a new
//! crate with one `inventory::submit!`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use crate::cart::RenderedCart;
use crate::money::Money;
use crate::signature::{VerifiedBody, VerifyError};

/// What a provider can do beyond checkout and completion. The job machinery asks before
/// it schedules work, instead of calling and failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Captures an authorization on request (`OnPaymentCapture`).
    pub capture: bool,
    /// Captures less than the authorized amount.
    pub partial_capture: bool,
    /// Releases an authorization (used for double payments).
    pub void: bool,
    /// Changes the amount of an open session when the cart changes.
    pub update_amount: bool,
    /// Signs its webhooks (otherwise a webhook is only a hint to re-read the PSP).
    pub signed_webhooks: bool,
}

/// Errors of a provider adapter. The split between `Rejected` and `Transient` decides
/// whether work is retried: a definite answer is never retried, an ambiguous one is,
/// with the same idempotency key.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The PSP answered with a definite refusal (4xx, a decline).
    #[error("rejected by the PSP: {code}: {message}")]
    Rejected {
        /// The PSP's error code.
        code: String,
        /// The PSP's message.
        message: String,
    },
    /// No answer, a timeout, a reset or a 5xx: the operation may or may not have happened.
    #[error("PSP unavailable: {0}")]
    Transient(String),
    /// The PSP does not know the object.
    #[error("not found at the PSP: {0}")]
    NotFound(String),
    /// The session can no longer be changed (for example it is already authorized).
    #[error("the PSP session can no longer change: {0}")]
    Locked(String),
    /// The request from the storefront is not what this provider needs.
    #[error("bad checkout request: {0}")]
    BadRequest(String),
    /// The provider's configuration is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The provider does not support the operation.
    #[error("not supported by this provider: {0}")]
    Unsupported(&'static str),
}

impl ProviderError {
    /// Whether retrying (with the same idempotency key) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient(_))
    }
}

/// A session the gateway already holds for the cart.
#[derive(Debug, Clone)]
pub struct ExistingSession {
    /// The PSP's id of the payment.
    pub psp_ref: String,
    /// The amount the session was made or last updated for.
    pub amount: Money,
    /// What was handed to the storefront.
    pub client: serde_json::Value,
}

/// A request to start or reuse a PSP session.
#[derive(Debug)]
pub struct CheckoutRequest<'a> {
    /// The cart as Hantera renders it now.
    pub cart: &'a RenderedCart,
    /// The cart total, exactly.
    pub amount: Money,
    /// The storefront's JSON body (return URLs and the like).
    pub body: &'a serde_json::Value,
    /// The session already held for this cart, when there is one.
    pub existing: Option<&'a ExistingSession>,
    /// The idempotency key for creating the session, persisted before this call.
    pub idempotency_key: &'a str,
    /// Where the PSP should send webhooks for this provider.
    pub webhook_url: &'a str,
}

/// A started (or reused) session.
#[derive(Debug, Clone)]
pub struct CheckoutSession {
    /// The PSP's id of the payment.
    pub psp_ref: String,
    /// The amount the PSP holds.
    pub amount: Money,
    /// What the storefront needs, e.g. `{redirectUrl}` or `{clientSecret}`.
    pub client: serde_json::Value,
}

/// What a PSP says about one of its payments, read with our own credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PspStatus {
    /// The customer has not finished.
    Pending,
    /// Money is reserved and can be captured.
    Authorized {
        /// The amount authorized (capturable).
        amount: Money,
    },
    /// Money was taken already (automatic capture).
    Captured {
        /// The amount received.
        amount: Money,
    },
    /// The payment failed or was declined.
    Failed {
        /// The PSP's reason.
        reason: String,
    },
    /// The payment was cancelled or expired.
    Canceled,
}

impl PspStatus {
    /// The amount the customer has authorized, when the payment is authorized or captured.
    pub fn authorized_amount(&self) -> Option<Money> {
        match self {
            PspStatus::Authorized { amount } | PspStatus::Captured { amount } => Some(*amount),
            _ => None,
        }
    }

    /// A short name for records and logs.
    pub fn name(&self) -> &'static str {
        match self {
            PspStatus::Pending => "pending",
            PspStatus::Authorized { .. } => "authorized",
            PspStatus::Captured { .. } => "captured",
            PspStatus::Failed { .. } => "failed",
            PspStatus::Canceled => "canceled",
        }
    }
}

/// A PSP payment as re-read from the PSP.
#[derive(Debug, Clone)]
pub struct PspPayment {
    /// The PSP's id.
    pub psp_ref: String,
    /// The cart the payment was made for, as recorded at the PSP.
    pub cart_id: Option<Uuid>,
    /// Its status.
    pub status: PspStatus,
}

/// A capture to perform at the PSP.
#[derive(Debug, Clone)]
pub struct CaptureRequest<'a> {
    /// The PSP's payment id.
    pub psp_ref: &'a str,
    /// Exactly what Hantera asked to capture.
    pub amount: Money,
    /// Persisted before the first attempt and reused on every retry.
    pub idempotency_key: &'a str,
}

/// A capture done at the PSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureDone {
    /// The PSP's id of the capture (the transaction reference for Hantera).
    pub psp_capture_id: String,
}

/// One incoming webhook delivery, as received.
#[derive(Debug)]
pub struct WebhookDelivery<'a> {
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// The raw body bytes, never re-serialised.
    pub body: &'a [u8],
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The time to check the signature's age against.
    pub now: SystemTime,
}

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The signature did not verify (HTTP 401).
    #[error("signature verification failed: {0}")]
    Signature(#[from] VerifyError),
    /// Verified, but the body is not what the PSP sends (HTTP 400).
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// An unsigned call that would need a re-read at the PSP arrived beyond the provider's
    /// rate limit, so it was not checked (HTTP 429; the PSP sends it again).
    #[error("rate limited: {0}")]
    RateLimited(String),
}

/// What a verified event asks the gateway to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The PSP says a payment is authorized: complete its cart (after re-reading the PSP).
    Authorized {
        /// The PSP's payment id.
        psp_ref: String,
    },
    /// The payment failed.
    Failed {
        /// The PSP's payment id.
        psp_ref: String,
    },
    /// The payment was cancelled.
    Canceled {
        /// The PSP's payment id.
        psp_ref: String,
    },
    /// Verified but not used by the gateway; answered 200 and not acted on.
    Other,
}

impl EventKind {
    /// The PSP payment the event concerns, if any.
    pub fn psp_ref(&self) -> Option<&str> {
        match self {
            EventKind::Authorized { psp_ref }
            | EventKind::Failed { psp_ref }
            | EventKind::Canceled { psp_ref } => Some(psp_ref),
            EventKind::Other => None,
        }
    }
}

/// An event parsed from a verified body. A provider fills this in; it becomes a
/// [`VerifiedEvent`] only together with the [`VerifiedBody`] it came from.
#[derive(Debug, Clone)]
pub struct ParsedEvent {
    /// The PSP's unique event id (deduplication key).
    pub event_id: String,
    /// The PSP's event type, for logs and records.
    pub event_type: String,
    /// What to do.
    pub kind: EventKind,
}

/// An event whose origin was proven. It can only be built from a [`VerifiedBody`], which
/// only the signature verifier builds, so holding one means verification happened.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    event_id: String,
    event_type: String,
    kind: EventKind,
}

impl VerifiedEvent {
    /// Parses a verified body into an event.
    pub fn parse(
        body: VerifiedBody<'_>,
        parse: impl FnOnce(&[u8]) -> Result<ParsedEvent, String>,
    ) -> Result<Self, WebhookError> {
        let parsed = parse(body.bytes()).map_err(WebhookError::Malformed)?;
        if parsed.event_id.trim().is_empty() {
            return Err(WebhookError::Malformed("event id is empty".into()));
        }
        Ok(Self {
            event_id: parsed.event_id,
            event_type: parsed.event_type,
            kind: parsed.kind,
        })
    }

    /// Builds an event from the PSP's own answer to an authenticated re-read, for a PSP
    /// that does not sign its calls (the call was only a hint). The event says exactly
    /// what the read payment says and nothing else: what it asks the gateway to do is
    /// derived from `read` (its status, and whether it names one of our carts), so a
    /// provider cannot turn an unsigned call's own claims into a verified event. Only a
    /// provider that has just read the payment from its PSP with our credentials may
    /// call it.
    pub fn from_authenticated_read(
        read: &PspPayment,
        event_id: String,
        event_type: String,
    ) -> Self {
        let psp_ref = read.psp_ref.clone();
        let kind = match (&read.status, read.cart_id) {
            // Not ours (another integration on the same PSP account): nothing to do.
            (_, None) => EventKind::Other,
            (PspStatus::Authorized { .. } | PspStatus::Captured { .. }, Some(_)) => {
                EventKind::Authorized { psp_ref }
            }
            (PspStatus::Canceled, Some(_)) => EventKind::Canceled { psp_ref },
            (PspStatus::Failed { .. }, Some(_)) => EventKind::Failed { psp_ref },
            (PspStatus::Pending, Some(_)) => EventKind::Other,
        };
        Self {
            event_id,
            event_type,
            kind,
        }
    }

    /// The PSP's event id.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// The PSP's event type.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// What the event asks for.
    pub fn kind(&self) -> &EventKind {
        &self.kind
    }
}

/// A PSP adapter.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The id used in URLs and as Hantera's `providerKey`.
    fn id(&self) -> &'static str;

    /// What this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// The prefix of Hantera payment numbers (`generatePaymentNumberByPrefix`).
    fn payment_number_prefix(&self) -> &str;

    /// Starts a session for the cart, or brings `existing` up to date.
    async fn checkout(&self, req: CheckoutRequest<'_>) -> Result<CheckoutSession, ProviderError>;

    /// Verifies a webhook on its raw bytes and says what it asks for. A PSP that does not
    /// sign its calls treats the delivery as a hint: it re-reads the PSP with our own
    /// credentials (rate-limited) and builds the event from that answer.
    async fn verify_webhook(
        &self,
        delivery: &WebhookDelivery<'_>,
    ) -> Result<VerifiedEvent, WebhookError>;

    /// Re-reads a payment from the PSP with our own credentials.
    async fn fetch(&self, psp_ref: &str) -> Result<PspPayment, ProviderError>;

    /// Captures at the PSP. Reusing `idempotency_key` must never capture twice.
    async fn capture(&self, req: CaptureRequest<'_>) -> Result<CaptureDone, ProviderError>;

    /// Releases an authorization (a double payment).
    async fn void(&self, psp_ref: &str, idempotency_key: &str) -> Result<(), ProviderError>;

    /// What the PSP needs to know of the cart while the customer pays. The gateway hashes
    /// it on every `OnCartMutation` and schedules a sync when the hash changes. The default
    /// is the total; a PSP showing order lines returns those too.
    fn sync_payload(&self, cart: &RenderedCart) -> Result<serde_json::Value, ProviderError> {
        let total = cart.total().map_err(|e| {
            ProviderError::BadRequest(format!("the cart total cannot be paid: {e}"))
        })?;
        Ok(serde_json::json!({ "amount": total.minor, "currency": total.currency.code() }))
    }

    /// Brings an open PSP session in step with the cart. `ProviderError::Locked` when the
    /// session can no longer change (authorized), which the gateway records for a person.
    async fn sync(&self, req: SyncRequest<'_>) -> Result<(), ProviderError> {
        let _ = req;
        Err(ProviderError::Unsupported("sync"))
    }

    /// Runs after the cart was completed with this payment (Kustom acknowledges the order
    /// here). Failing it does not undo the completion; the PSP's own retries bring it back.
    async fn after_completion(&self, psp_ref: &str) -> Result<(), ProviderError> {
        let _ = psp_ref;
        Ok(())
    }

    /// Extra routes the provider serves inside the gateway (callbacks such as Kustom's
    /// validation), mounted at the root. None by default.
    fn routes(&self) -> Vec<crate::route::ProviderRoute> {
        Vec::new()
    }

    /// The config key of this provider's table that holds a credential or endpoint for
    /// real money (a live API key, the PSP's production API), if any. The registry refuses
    /// such a provider while Hantera is the sandbox, naming the key; the value itself is
    /// never returned, so it cannot reach an error message. The default is none.
    fn live_credential(&self) -> Option<&'static str> {
        None
    }
}

/// A request to bring an open PSP session in step with the cart.
#[derive(Debug)]
pub struct SyncRequest<'a> {
    /// The PSP's payment id.
    pub psp_ref: &'a str,
    /// The cart as Hantera rendered it in the mutation.
    pub cart: &'a RenderedCart,
    /// The cart total.
    pub amount: Money,
    /// What [`Provider::sync_payload`] returned for this cart.
    pub payload: &'a serde_json::Value,
    /// Persisted with the sync job and reused on every retry of it.
    pub idempotency_key: &'a str,
}

/// The gateway's ports, handed to every provider when it is built (in its
/// [`ProviderContext`]): what its own routes and its webhook verification may use, the same
/// ports and orchestrator as the gateway's.
#[derive(Clone)]
pub struct ProviderServices {
    /// Hantera.
    pub hantera: Arc<dyn crate::ports::Hantera>,
    /// The durable store.
    pub store: Arc<dyn crate::ports::Store>,
    /// The completion orchestrator.
    pub completer: Arc<crate::completion::Completer>,
}

impl std::fmt::Debug for ProviderServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderServices").finish_non_exhaustive()
    }
}

/// What a provider's constructor receives.
#[derive(Debug)]
pub struct ProviderContext<'a> {
    /// The provider's id.
    pub id: &'static str,
    /// The provider's table from the config file, as JSON.
    pub config: &'a serde_json::Value,
    /// The gateway's public base URL (no trailing slash), for URLs handed to PSPs.
    pub public_url: &'a str,
    /// The gateway's ports, for a provider that needs them (Kustom recognises its own
    /// orders in the store and reads carts for its validation callback).
    pub services: &'a ProviderServices,
}

/// Whether the gateway talks to a real Hantera instance or to the in-process sandbox. The
/// registry applies its safety rules by mode: live credentials are refused next to the
/// sandbox, test-only providers next to a real Hantera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HanteraMode {
    /// The in-process sandbox (test data, fake PSPs).
    Sandbox,
    /// A Hantera instance over HTTP, where carts are paid with real money.
    Real,
}

/// The key of a test-only provider's table that allows it next to a real Hantera.
pub const ALLOW_WITH_REAL_HANTERA: &str = "allow_with_real_hantera";

/// The constructor type of a provider.
pub type BuildFn = fn(&ProviderContext<'_>) -> Result<Arc<dyn Provider>, ProviderError>;

/// A compiled-in provider. Each provider crate submits one at item level:
///
/// ```text
/// psp_core::inventory::submit! {
///     psp_core::ProviderRegistration { id: "mock", build: build_mock, test_only: true }
/// }
/// ```
pub struct ProviderRegistration {
    /// The id, unique among compiled-in providers.
    pub id: &'static str,
    /// Builds the adapter from its config table.
    pub build: BuildFn,
    /// Whether the provider exists only for development and tests, so that anyone can pay
    /// with it (the mock PSP approves its public test card). Next to a real Hantera it is
    /// refused unless its table says `allow_with_real_hantera = true`.
    pub test_only: bool,
}

inventory::collect!(ProviderRegistration);

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two crates registered the same id.
    #[error("provider id {0:?} is registered twice")]
    Duplicate(&'static str),
    /// The config enables a provider that is not compiled in.
    #[error("provider {0:?} is configured but not compiled in (compiled in: {1})")]
    NotCompiledIn(String, String),
    /// A provider refused its configuration.
    #[error("provider {id:?}: {source}")]
    Build {
        /// The provider.
        id: String,
        /// Its error.
        source: ProviderError,
    },
    /// A provider holds live credentials while Hantera is the sandbox.
    #[error(
        "provider {id:?}: {key} is a live credential (real money), which is refused while Hantera is the in-process sandbox; use test credentials, or configure [hantera] to run against a real instance"
    )]
    LiveInSandbox {
        /// The provider.
        id: String,
        /// The config key holding the live value (the value is never shown).
        key: &'static str,
    },
    /// A test-only provider is configured next to a real Hantera without the explicit flag.
    #[error(
        "provider {id:?} is for tests only (anyone can pay with its test card) and is refused next to a real Hantera: remove [providers.{id}], or add allow_with_real_hantera = true to it for a test installation"
    )]
    TestOnlyWithRealHantera {
        /// The provider.
        id: String,
    },
}

fn compiled_in_map(
    registrations: impl IntoIterator<Item = &'static ProviderRegistration>,
) -> Result<BTreeMap<&'static str, &'static ProviderRegistration>, RegistryError> {
    let mut map = BTreeMap::new();
    for reg in registrations {
        if map.insert(reg.id, reg).is_some() {
            return Err(RegistryError::Duplicate(reg.id));
        }
    }
    Ok(map)
}

/// Removes `allow_with_real_hantera` from a test-only provider's table and says whether it
/// was set. A boolean, or its text (an environment override), is accepted; anything else
/// is refused rather than read as "no", so a typo cannot flip the decision silently.
fn take_allow_flag(table: &mut serde_json::Value) -> Result<bool, String> {
    let Some(map) = table.as_object_mut() else {
        return Ok(false);
    };
    match map.remove(ALLOW_WITH_REAL_HANTERA) {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(b),
        Some(serde_json::Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(serde_json::Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(format!("{ALLOW_WITH_REAL_HANTERA} must be true or false")),
    }
}

/// The enabled providers, sorted by id.
#[derive(Clone, Default)]
pub struct Registry {
    providers: BTreeMap<&'static str, Arc<dyn Provider>>,
    /// The enabled providers whose registration says `test_only`.
    test_only: Vec<&'static str>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.keys()).finish()
    }
}

impl Registry {
    /// The ids of every compiled-in provider, sorted.
    pub fn compiled_in() -> Result<Vec<&'static str>, RegistryError> {
        Ok(compiled_in_map(inventory::iter::<ProviderRegistration>)?
            .into_keys()
            .collect())
    }

    /// Builds the providers that have a table in the config. Fails fast on a duplicate
    /// registration, on a configured id that is not compiled in, on a provider that
    /// refuses its config, and on the rules of `mode`: a provider holding a live
    /// credential next to the sandbox, and a test-only provider next to a real Hantera
    /// whose table does not say `allow_with_real_hantera = true`.
    ///
    /// Every provider is handed `services` when it is built, so none depends on a later
    /// call to be complete.
    pub fn build(
        configured: &BTreeMap<String, serde_json::Value>,
        public_url: &str,
        mode: HanteraMode,
        services: &ProviderServices,
    ) -> Result<Self, RegistryError> {
        Self::build_from(
            inventory::iter::<ProviderRegistration>,
            configured,
            public_url,
            mode,
            services,
        )
    }

    /// [`Registry::build`] among the given registrations instead of the compiled-in ones
    /// (tests of the registry's rules).
    pub fn build_from(
        registrations: impl IntoIterator<Item = &'static ProviderRegistration>,
        configured: &BTreeMap<String, serde_json::Value>,
        public_url: &str,
        mode: HanteraMode,
        services: &ProviderServices,
    ) -> Result<Self, RegistryError> {
        let available = compiled_in_map(registrations)?;
        let mut providers = BTreeMap::new();
        let mut test_only = Vec::new();
        for (id, table) in configured {
            let reg = available.get(id.as_str()).ok_or_else(|| {
                RegistryError::NotCompiledIn(
                    id.clone(),
                    available.keys().copied().collect::<Vec<_>>().join(", "),
                )
            })?;
            let mut table = table.clone();
            if reg.test_only {
                // The flag belongs to the registry, not to the provider's own keys.
                let allowed =
                    take_allow_flag(&mut table).map_err(|message| RegistryError::Build {
                        id: id.clone(),
                        source: ProviderError::Config(message),
                    })?;
                if mode == HanteraMode::Real && !allowed {
                    return Err(RegistryError::TestOnlyWithRealHantera { id: id.clone() });
                }
                test_only.push(reg.id);
            }
            let ctx = ProviderContext {
                id: reg.id,
                config: &table,
                public_url: public_url.trim_end_matches('/'),
                services,
            };
            let provider = (reg.build)(&ctx).map_err(|source| RegistryError::Build {
                id: id.clone(),
                source,
            })?;
            if mode == HanteraMode::Sandbox {
                if let Some(key) = provider.live_credential() {
                    return Err(RegistryError::LiveInSandbox {
                        id: id.clone(),
                        key,
                    });
                }
            }
            providers.insert(reg.id, provider);
        }
        Ok(Self {
            providers,
            test_only,
        })
    }

    /// The enabled providers that are for tests only (sorted). Next to a real Hantera each
    /// was allowed explicitly, which deserves a warning at start-up.
    pub fn test_only(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.test_only.iter().copied()
    }

    /// A registry of the given adapters (tests, embedding).
    pub fn from_providers(list: impl IntoIterator<Item = Arc<dyn Provider>>) -> Self {
        Self {
            providers: list.into_iter().map(|p| (p.id(), p)).collect(),
            test_only: Vec::new(),
        }
    }

    /// The adapter for `id`, if enabled.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(id)
    }

    /// The enabled ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.providers.keys().copied()
    }

    /// The enabled adapters, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.providers.values()
    }
}
