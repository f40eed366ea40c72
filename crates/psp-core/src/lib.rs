//! The core of psp-gateway: money, the provider contract and registry, webhook signature
//! verification, the completion orchestrator, and the ports (traits) through which it
//! reaches Hantera and the store.
//!
//! Architecture invariant: this crate depends on no adapter. It knows no HTTP client, no
//! database and no particular PSP.

pub mod cart;
pub mod completion;
pub mod lenient;
pub mod limit;
pub mod money;
pub mod ports;
pub mod provider;
pub mod route;
mod secret;
pub mod signature;

pub use cart::{CartItem, CartState, RenderedCart};
pub use completion::{
    payment_id_for, Completer, CompletionCause, CompletionError, CompletionOutcome,
};
pub use money::{Currency, Money, MoneyError};
pub use provider::{
    Capabilities, CaptureDone, CaptureRequest, CheckoutRequest, CheckoutSession, EventKind,
    ExistingSession, HanteraMode, ParsedEvent, Provider, ProviderContext, ProviderError,
    ProviderRegistration, ProviderServices, PspPayment, PspStatus, Registry, RegistryError,
    SyncRequest, VerifiedEvent, WebhookDelivery, WebhookError, ALLOW_WITH_REAL_HANTERA,
};
pub use route::{ProviderRoute, RouteHandler, RouteRequest, RouteResponse};
pub use secret::Secret;
pub use signature::{SignatureVerifier, VerifiedBody, VerifyError};

/// Re-exported for providers' signatures.
pub use async_trait::async_trait;
/// Re-exported so that every provider registers with the same `inventory` version.
pub use inventory;
