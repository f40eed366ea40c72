//! Starting a payment: a PSP session for the cart's current total, or the one already
//! started for it.

use psp_core::ports::{HanteraError, Session, SessionStatus, StoreError};
use psp_core::{
    CartState, CheckoutRequest, ExistingSession, Money, MoneyError, Provider, ProviderError,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::jobs::sync::record_checkout;
use super::Services;

/// Why no session was started. The texts of the storefront's own mistakes are what it is
/// told; what an upstream said stays in the source, for the log.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// Hantera has no such cart.
    #[error("cart {0} does not exist")]
    CartNotFound(Uuid),
    /// Reading the cart from Hantera failed.
    #[error("reading the cart failed: {0}")]
    Hantera(#[source] HanteraError),
    /// The cart is completed or rejected.
    #[error("cart {cart_id} is {}", state.as_str())]
    CartNotOpen {
        /// The cart.
        cart_id: Uuid,
        /// Its state.
        state: CartState,
    },
    /// The cart's total is no amount a PSP can take.
    #[error("the cart total cannot be paid: {0}")]
    NotPayable(#[source] MoneyError),
    /// The cart costs nothing.
    #[error("the cart total is zero")]
    ZeroTotal,
    /// The cart's payment is authorized already; it is being completed.
    #[error("this cart's payment is authorized; it is being completed")]
    AlreadyAuthorized,
    /// The PSP refused or failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a session with `provider` for cart `cart_id`, or returns the one started for
/// it at the same total: what the storefront hands its customer (`client`).
pub async fn start(
    services: &Services,
    provider: &dyn Provider,
    cart_id: Uuid,
    body: &Value,
) -> Result<Value, CheckoutError> {
    let cart = match services.hantera.get_cart(cart_id).await {
        Ok(Some(cart)) => cart,
        Ok(None) => return Err(CheckoutError::CartNotFound(cart_id)),
        Err(e) => {
            services.metrics.upstream_error("hantera");
            tracing::warn!(error = %e, %cart_id, "reading the cart failed");
            return Err(CheckoutError::Hantera(e));
        }
    };
    if cart.cart_state != CartState::Open {
        return Err(CheckoutError::CartNotOpen {
            cart_id,
            state: cart.cart_state,
        });
    }
    let amount = cart.total().map_err(CheckoutError::NotPayable)?;
    if amount.minor <= 0 {
        return Err(CheckoutError::ZeroTotal);
    }

    let id = provider.id();
    let store = &services.store;
    let mut session = match store.session(cart_id, id).await? {
        Some(s) => s,
        None => {
            // The key is stored before the PSP is called, so a retried or concurrent
            // request reuses it and the PSP answers with the same session.
            let key = Uuid::new_v4().to_string();
            store.reserve_session(cart_id, id, &key).await?
        }
    };
    match session.status {
        SessionStatus::Failed | SessionStatus::Canceled => {
            let key = Uuid::new_v4().to_string();
            session = store.restart_session(cart_id, id, &key).await?;
        }
        SessionStatus::Authorized | SessionStatus::Completed => {
            return Err(CheckoutError::AlreadyAuthorized);
        }
        SessionStatus::Creating | SessionStatus::Open => {}
    }
    let existing = existing_session(&session);
    if let Some(existing) = &existing {
        if existing.amount == amount {
            return Ok(existing.client.clone());
        }
    }

    let webhook_url = services.webhook_url(id);
    // The stored key is combined with the amount: a retry for the same cart total replays
    // at the PSP, while a cart that changed before the first answer was saved is a new
    // request rather than an idempotency conflict that would block the cart for good.
    let idempotency_key = format!("{}:{}", session.idempotency_key, amount.minor);
    let result = provider
        .checkout(CheckoutRequest {
            cart: &cart,
            amount,
            body,
            existing: existing.as_ref(),
            idempotency_key: &idempotency_key,
            webhook_url: &webhook_url,
        })
        .await;
    let started = result.map_err(|e| provider_failed(services, id, e))?;
    store
        .save_session(
            cart_id,
            id,
            &started.psp_ref,
            started.amount,
            &started.client,
        )
        .await?;
    // The PSP session now holds this cart: a later mutation syncs only what differs.
    record_checkout(services, provider, &cart).await?;
    tracing::info!(provider = id, %cart_id, psp_ref = %started.psp_ref, amount = %started.amount, "checkout session ready");
    Ok(started.client)
}

fn existing_session(session: &Session) -> Option<ExistingSession> {
    let psp_ref = session.psp_ref.clone()?;
    let currency = psp_core::Currency::from_code(session.currency.as_deref()?).ok()?;
    Some(ExistingSession {
        psp_ref,
        amount: Money::from_minor(session.amount_minor?, currency),
        client: session.client.clone().unwrap_or_else(|| json!({})),
    })
}

/// Logs and counts a failed PSP call. Whatever the PSP said goes to the log only: the
/// storefront is unauthenticated, and the PSP's words can name keys, accounts or internals.
fn provider_failed(services: &Services, provider: &str, e: ProviderError) -> CheckoutError {
    match &e {
        // A provider's own check of the request is the storefront's to read.
        ProviderError::BadRequest(_) => {}
        ProviderError::Locked(m) => {
            tracing::info!(provider, reason = %m, "PSP session can no longer change");
        }
        ProviderError::Rejected { code, message } => {
            services.metrics.upstream_error(provider);
            tracing::warn!(provider, psp_code = %code, psp_message = %message, "PSP refused the checkout");
        }
        other => {
            services.metrics.upstream_error(provider);
            tracing::warn!(provider, error = %other, "PSP call failed");
        }
    }
    CheckoutError::Provider(e)
}
