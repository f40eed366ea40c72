//! The completion orchestrator: from "the PSP says authorized" to "one Hantera payment,
//! linked to the cart, and the cart completed", exactly once.
//!
//! Every step is safe to repeat after a crash at any point:
//! 1. re-read the PSP (events arrive out of order) and the cart; a completed cart ends the
//!    work;
//! 2. the authorized amount and currency must equal the cart total, exactly;
//! 3. the cart is claimed for this PSP payment (a unique row), so a second authorization
//!    for the same cart is recognised as a double payment instead of completing twice;
//! 4. the payment is found by external reference or created at an id derived from
//!    (provider, PSP id), so a retried create answers `ALREADY_EXISTS`;
//! 5. the cart is read again immediately before the batch and its total compared once
//!    more, so a cart that changed during the steps above is not completed;
//! 6. `createRelation` and `complete` go to the cart in one atomic batch; on an error the
//!    cart is re-read, and completed means done;
//! 7. the completed cart is read once more: a total above what was authorized (the cart
//!    changed between the last read and `complete`, which Hantera cannot refuse without
//!    the bridge app's rule) makes the completion `underpaid`, a final state that tags the
//!    Hantera payment and waits for a person. Nothing ends silently.
//!
//! Architecture invariant: the payment exists and is linked before `complete` is sent.
//! Architecture invariant: a cart completed by the gateway either costs exactly what was
//! authorized, or its completion is `underpaid` and flagged in Hantera.

use std::sync::Arc;

use uuid::Uuid;

use crate::cart::{CartState, RenderedCart};
use crate::money::Money;
use crate::ports::{
    CompletionState, CompletionUpdate, CreateOutcome, Hantera, HanteraError, NewPayment,
    SessionStatus, Store, StoreError, VoidScheduler,
};
use crate::provider::{Provider, ProviderError, PspStatus};

/// The namespace of deterministic payment ids: v5(namespace, "{provider}:{psp_ref}").
pub const PAYMENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1c_34a2_8f0e_4b4c_9a51_2f3b_7c11_d0e5);

/// The Hantera payment id for a PSP payment; the same on every attempt.
pub fn payment_id_for(provider: &str, psp_ref: &str) -> Uuid {
    Uuid::new_v5(
        &PAYMENT_ID_NAMESPACE,
        format!("{provider}:{psp_ref}").as_bytes(),
    )
}

/// The tag an underpaid payment gets in Hantera, where a person finds it.
pub const UNDERPAID_TAG: &str = "underpaid";

/// How a completion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionOutcome {
    /// The cart was completed now with this payment.
    Completed {
        /// The Hantera payment.
        payment_id: Uuid,
    },
    /// The cart had been completed with this payment before.
    AlreadyCompleted,
    /// The PSP does not (yet) say authorized.
    NotAuthorized {
        /// The PSP status name.
        status: &'static str,
    },
    /// The PSP payment failed or was cancelled; the session is closed.
    PaymentEnded {
        /// The PSP status name.
        status: &'static str,
    },
    /// Not completed; recorded with the reason for a person to look at.
    NeedsAttention {
        /// Why.
        reason: String,
    },
    /// The cart was paid by another payment; this one was recorded (and a void scheduled
    /// when the provider can void).
    DoublePayment {
        /// Whether a void was scheduled.
        void_scheduled: bool,
    },
    /// The cart was completed with this payment, but it costs more than was authorized;
    /// recorded as final, the payment tagged, for a person to settle.
    Underpaid {
        /// The Hantera payment.
        payment_id: Uuid,
        /// Both amounts, in words.
        reason: String,
    },
}

impl CompletionOutcome {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            CompletionOutcome::Completed { .. } => "completed",
            CompletionOutcome::AlreadyCompleted => "already_completed",
            CompletionOutcome::NotAuthorized { .. } => "not_authorized",
            CompletionOutcome::PaymentEnded { .. } => "payment_ended",
            CompletionOutcome::NeedsAttention { .. } => "needs_attention",
            CompletionOutcome::DoublePayment { .. } => "double_payment",
            CompletionOutcome::Underpaid { .. } => "underpaid",
        }
    }
}

/// Why a completion could not finish now: whether trying again may help, and the cause.
#[derive(Debug, thiserror::Error)]
pub enum CompletionError {
    /// Try again later (Hantera or the PSP did not answer, the store failed).
    #[error("temporarily failed: {0}")]
    Transient(#[source] CompletionCause),
    /// Trying again will not help.
    #[error("failed: {0}")]
    Permanent(#[source] CompletionCause),
}

/// What stopped a completion.
#[derive(Debug, thiserror::Error)]
pub enum CompletionCause {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hantera failed or refused.
    #[error(transparent)]
    Hantera(#[from] HanteraError),
    /// The PSP failed or refused.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The PSP payment names no cart, and no checkout session holds it.
    #[error("PSP payment {psp_ref} names no cart and no session holds it")]
    NoCart {
        /// The PSP payment.
        psp_ref: String,
    },
    /// The cart could not be read right after it was completed.
    #[error("cart {cart_id} vanished right after it was completed")]
    CartVanished {
        /// The cart.
        cart_id: Uuid,
    },
    /// Hantera refused a payment for a reference it then could not find.
    #[error("Hantera says external reference {psp_ref} is in use but cannot find it")]
    ReferenceNotFound {
        /// The PSP payment (the external reference).
        psp_ref: String,
    },
}

impl CompletionError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, CompletionError::Transient(_))
    }

    /// What stopped the completion.
    pub fn cause(&self) -> &CompletionCause {
        match self {
            CompletionError::Transient(cause) | CompletionError::Permanent(cause) => cause,
        }
    }
}

impl From<StoreError> for CompletionError {
    fn from(e: StoreError) -> Self {
        CompletionError::Transient(e.into())
    }
}

impl From<HanteraError> for CompletionError {
    fn from(e: HanteraError) -> Self {
        if e.is_transient() {
            CompletionError::Transient(e.into())
        } else {
            CompletionError::Permanent(e.into())
        }
    }
}

impl From<ProviderError> for CompletionError {
    fn from(e: ProviderError) -> Self {
        if e.is_transient() {
            CompletionError::Transient(e.into())
        } else {
            CompletionError::Permanent(e.into())
        }
    }
}

const LOCK_STRIPES: usize = 64;

/// Runs completions against Hantera and the store.
pub struct Completer {
    hantera: Arc<dyn Hantera>,
    store: Arc<dyn Store>,
    /// Where a double payment's void is asked for; without one, a double payment is
    /// recorded for a person to release by hand.
    voids: Option<Arc<dyn VoidScheduler>>,
    // Striped per-cart locks. They only spare Hantera needless racing calls inside one
    // process; correctness across processes comes from the cart claim and Hantera's
    // atomic batch.
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Completer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completer").finish_non_exhaustive()
    }
}

struct Ctx<'a> {
    provider: &'a dyn Provider,
    psp_ref: &'a str,
    cart_id: Uuid,
    /// What the PSP authorized.
    amount: Money,
}

impl Completer {
    /// A completer over the given ports that schedules no voids: a double payment is
    /// recorded, and releasing it is left to a person. The gateway adds its job queue with
    /// [`Completer::with_voids`].
    pub fn new(hantera: Arc<dyn Hantera>, store: Arc<dyn Store>) -> Self {
        Self {
            hantera,
            store,
            voids: None,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The same completer, asking `voids` to release double payments at the PSP.
    pub fn with_voids(mut self, voids: Arc<dyn VoidScheduler>) -> Self {
        self.voids = Some(voids);
        self
    }

    /// The port a double payment of `provider` is voided through, if it can be.
    fn voids_for(&self, provider: &dyn Provider) -> Option<&dyn VoidScheduler> {
        self.voids
            .as_deref()
            .filter(|_| provider.capabilities().void)
    }

    /// Completes the cart of PSP payment `psp_ref` if the PSP says it is authorized.
    pub async fn complete(
        &self,
        provider: &dyn Provider,
        psp_ref: &str,
    ) -> Result<CompletionOutcome, CompletionError> {
        let id = provider.id();
        // A final record answers repeats without calling anyone.
        if let Some(done) = self.store.completion(id, psp_ref).await? {
            match done.state {
                // An underpaid cart was completed with this payment too; the finding was
                // reported (and counted) when it was made, not on every repeat.
                CompletionState::Completed | CompletionState::Underpaid => {
                    return Ok(CompletionOutcome::AlreadyCompleted)
                }
                CompletionState::DoublePayment => {
                    return Ok(CompletionOutcome::DoublePayment {
                        void_scheduled: self.voids_for(provider).is_some(),
                    })
                }
                _ => {}
            }
        }

        let payment = provider.fetch(psp_ref).await?;
        let amount = match &payment.status {
            PspStatus::Pending => {
                return Ok(CompletionOutcome::NotAuthorized { status: "pending" })
            }
            ended @ (PspStatus::Failed { .. } | PspStatus::Canceled) => {
                let status = if matches!(ended, PspStatus::Canceled) {
                    SessionStatus::Canceled
                } else {
                    SessionStatus::Failed
                };
                self.store.set_session_status(id, psp_ref, status).await?;
                return Ok(CompletionOutcome::PaymentEnded {
                    status: ended.name(),
                });
            }
            PspStatus::Authorized { amount } | PspStatus::Captured { amount } => *amount,
        };
        let cart_id = match payment.cart_id {
            Some(c) => c,
            None => match self.store.session_by_ref(id, psp_ref).await? {
                Some(s) => s.cart_id,
                None => {
                    return Err(CompletionError::Permanent(CompletionCause::NoCart {
                        psp_ref: psp_ref.to_string(),
                    }))
                }
            },
        };

        let stripe = cart_id.as_u128() as usize % LOCK_STRIPES;
        let _guard = self.locks[stripe].lock().await;
        let ctx = Ctx {
            provider,
            psp_ref,
            cart_id,
            amount,
        };
        self.complete_locked(&ctx).await
    }

    async fn complete_locked(&self, ctx: &Ctx<'_>) -> Result<CompletionOutcome, CompletionError> {
        let amount = ctx.amount;
        let current = self
            .advance(ctx, CompletionState::Started, None, None)
            .await?;
        if current.state == CompletionState::Completed {
            return Ok(CompletionOutcome::AlreadyCompleted);
        }

        let Some(cart) = self.hantera.get_cart(ctx.cart_id).await? else {
            return self
                .attention(
                    ctx,
                    format!("cart {} does not exist in Hantera", ctx.cart_id),
                )
                .await;
        };
        if let Some(ended) = self.check_open_cart(ctx, &cart, "").await? {
            return Ok(ended);
        }

        let claim = self
            .store
            .claim_cart(ctx.cart_id, ctx.provider.id(), ctx.psp_ref)
            .await?;
        if claim.provider != ctx.provider.id() || claim.psp_ref != ctx.psp_ref {
            return self
                .double_payment(
                    ctx,
                    &format!(
                        "the cart is being completed by {} payment {}",
                        claim.provider, claim.psp_ref
                    ),
                )
                .await;
        }

        let payment_id = self.find_or_create_payment(ctx, amount).await?;
        self.advance(ctx, CompletionState::PaymentCreated, Some(payment_id), None)
            .await?;

        // The steps above took several round trips, in which the customer may have changed
        // the cart (another tab, any storefront call). The last read is made as close to
        // the batch as it can be; what still slips in between is caught after `complete`.
        let Some(cart) = self.hantera.get_cart(ctx.cart_id).await? else {
            return self
                .attention(
                    ctx,
                    format!("cart {} does not exist in Hantera", ctx.cart_id),
                )
                .await;
        };
        if let Some(ended) = self
            .check_open_cart(
                ctx,
                &cart,
                " (it changed while the payment was being created)",
            )
            .await?
        {
            return Ok(ended);
        }

        match self
            .hantera
            .link_and_complete(ctx.cart_id, payment_id)
            .await
        {
            Ok(()) => {}
            Err(err) => {
                // The batch may have been applied even though we saw an error (a lost
                // answer), or another worker may have completed it: re-read.
                let cart = self.hantera.get_cart(ctx.cart_id).await?;
                match cart {
                    // No answer: our batch may have been applied, and since we hold the
                    // claim, a completed cart is our completion.
                    Some(cart) if cart.cart_state == CartState::Completed && err.is_transient() => {
                        return self.settle_completed(ctx, &cart, payment_id, true).await;
                    }
                    // A definite refusal means our batch changed nothing (batches are
                    // atomic): someone else completed the cart, another process with the
                    // same payment or not, and that decides what this attempt was.
                    Some(cart) if cart.cart_state == CartState::Completed => {
                        return self.already_completed(ctx, &cart).await
                    }
                    _ if err.is_transient() => return Err(err.into()),
                    Some(cart) => {
                        // The bridge app's rule refuses `complete` when the linked
                        // authorizations do not cover the cart: say which amounts.
                        let why = match cart.total() {
                            Ok(total) if total != amount => {
                                format!("authorized {amount} but the cart total is now {total}")
                            }
                            _ => "the cart is still open".to_string(),
                        };
                        return self
                            .attention(
                                ctx,
                                format!("Hantera refused to complete the cart ({why}): {err}"),
                            )
                            .await;
                    }
                    None => {
                        return self
                            .attention(ctx, format!("Hantera refused to complete the cart: {err}"))
                            .await
                    }
                }
            }
        }
        // What was completed is what Hantera holds now, not what was read before: a change
        // that raced the batch shows here.
        let Some(cart) = self.hantera.get_cart(ctx.cart_id).await? else {
            return Err(CompletionError::Transient(CompletionCause::CartVanished {
                cart_id: ctx.cart_id,
            }));
        };
        self.settle_completed(ctx, &cart, payment_id, true).await
    }

    /// Checks an open cart against the authorization before anything is sent to complete
    /// it: a cart that is no longer open, or whose total is not exactly what was
    /// authorized, ends the attempt with the outcome returned.
    async fn check_open_cart(
        &self,
        ctx: &Ctx<'_>,
        cart: &RenderedCart,
        when: &str,
    ) -> Result<Option<CompletionOutcome>, CompletionError> {
        match cart.cart_state {
            CartState::Open => {}
            CartState::Completed => return self.already_completed(ctx, cart).await.map(Some),
            CartState::Rejected => {
                return self
                    .double_payment(ctx, "the cart was rejected")
                    .await
                    .map(Some);
            }
        }
        // Integrity: exactly the cart's total, in the cart's currency, or nothing.
        let reason = match cart.total() {
            Ok(total) if total == ctx.amount => return Ok(None),
            Ok(total) => format!(
                "authorized {} but the cart total is {total}{when}",
                ctx.amount
            ),
            Err(e) => format!("the cart total cannot be paid: {e}"),
        };
        self.attention(ctx, reason).await.map(Some)
    }

    /// Records a cart completed with our payment: `completed` when it costs what was
    /// authorized, `underpaid` (final, the payment flagged in Hantera) when it does not.
    async fn settle_completed(
        &self,
        ctx: &Ctx<'_>,
        cart: &RenderedCart,
        payment_id: Uuid,
        now: bool,
    ) -> Result<CompletionOutcome, CompletionError> {
        if let Some(reason) = underpayment(ctx.provider.id(), ctx.amount, cart) {
            return self.underpaid(ctx, payment_id, reason).await;
        }
        self.advance(ctx, CompletionState::Completed, Some(payment_id), None)
            .await?;
        self.store
            .set_session_status(ctx.provider.id(), ctx.psp_ref, SessionStatus::Completed)
            .await?;
        if !now {
            return Ok(CompletionOutcome::AlreadyCompleted);
        }
        tracing::info!(provider = ctx.provider.id(), psp_ref = ctx.psp_ref, cart_id = %ctx.cart_id, %payment_id, "cart completed");
        Ok(CompletionOutcome::Completed { payment_id })
    }

    /// Checks a cart that the gateway completed (its record says `completed`) against what
    /// the PSP authorized, for work that reads the cart later, such as a cart-sync job. A
    /// total other than the authorization turns the record `underpaid`, as a completion
    /// would. Answers the outcome when this call made it underpaid.
    pub async fn audit_completed(
        &self,
        provider: &dyn Provider,
        psp_ref: &str,
        cart: &RenderedCart,
    ) -> Result<Option<CompletionOutcome>, CompletionError> {
        let Some(record) = self.store.completion(provider.id(), psp_ref).await? else {
            return Ok(None);
        };
        let (CompletionState::Completed, Some(payment_id)) = (record.state, record.payment_id)
        else {
            // Not completed by us, or already settled one way or the other; an unfinished
            // completion checks the total itself when it resumes.
            return Ok(None);
        };
        // What was authorized is the PSP's word: a session's amount is what checkout asked
        // for, which a sync may have changed before the customer paid.
        let authorized = match provider.fetch(psp_ref).await?.status {
            PspStatus::Authorized { amount } | PspStatus::Captured { amount } => amount,
            _ => return Ok(None),
        };
        let Some(reason) = underpayment(provider.id(), authorized, cart) else {
            return Ok(None);
        };
        let ctx = Ctx {
            provider,
            psp_ref,
            cart_id: record.cart_id,
            amount: authorized,
        };
        self.underpaid(&ctx, payment_id, reason).await.map(Some)
    }

    /// Makes a completion `underpaid`: the Hantera payment is tagged and its activity log
    /// says why, then the record is final. Flagging first means a failure to reach Hantera
    /// leaves the record unfinished, so the next attempt flags again instead of never.
    async fn underpaid(
        &self,
        ctx: &Ctx<'_>,
        payment_id: Uuid,
        reason: String,
    ) -> Result<CompletionOutcome, CompletionError> {
        tracing::error!(provider = ctx.provider.id(), psp_ref = ctx.psp_ref, cart_id = %ctx.cart_id, %payment_id, %reason, "cart completed for more than was authorized");
        match self
            .hantera
            .flag_payment(payment_id, UNDERPAID_TAG, &reason)
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(e.into()),
            // A refusal must not hide the finding: the record and the metric still hold it.
            Err(e) => {
                tracing::error!(%payment_id, error = %e, "Hantera refused to tag an underpaid payment")
            }
        }
        self.advance(
            ctx,
            CompletionState::Underpaid,
            Some(payment_id),
            Some(reason.clone()),
        )
        .await?;
        self.store
            .set_session_status(ctx.provider.id(), ctx.psp_ref, SessionStatus::Completed)
            .await?;
        Ok(CompletionOutcome::Underpaid { payment_id, reason })
    }

    async fn find_or_create_payment(
        &self,
        ctx: &Ctx<'_>,
        amount: Money,
    ) -> Result<Uuid, CompletionError> {
        if let Some(found) = self.hantera.find_payment(ctx.psp_ref).await? {
            return Ok(found.payment_id);
        }
        let payment_id = payment_id_for(ctx.provider.id(), ctx.psp_ref);
        let new = NewPayment {
            provider_key: ctx.provider.id().to_string(),
            external_reference: ctx.psp_ref.to_string(),
            amount,
            authorization_number: ctx.psp_ref.to_string(),
            payment_number_prefix: ctx.provider.payment_number_prefix().to_string(),
        };
        match self.hantera.create_payment(payment_id, &new).await? {
            CreateOutcome::Created | CreateOutcome::AlreadyExists => Ok(payment_id),
            CreateOutcome::DuplicateExternalReference => {
                // Someone created it at another id; that one is the payment.
                match self.hantera.find_payment(ctx.psp_ref).await? {
                    Some(found) => Ok(found.payment_id),
                    None => Err(CompletionError::Transient(
                        CompletionCause::ReferenceNotFound {
                            psp_ref: ctx.psp_ref.to_string(),
                        },
                    )),
                }
            }
        }
    }

    async fn already_completed(
        &self,
        ctx: &Ctx<'_>,
        cart: &RenderedCart,
    ) -> Result<CompletionOutcome, CompletionError> {
        let claimed = self
            .store
            .cart_claim(ctx.cart_id)
            .await?
            .is_some_and(|c| c.provider == ctx.provider.id() && c.psp_ref == ctx.psp_ref);
        if claimed {
            // The claim says we were the one allowed to complete the cart; whether we did
            // (and then crashed or lost the answer before recording it) or someone completed
            // it outside the gateway meanwhile, only the cart's relations tell.
            let payment_id = self
                .hantera
                .find_payment(ctx.psp_ref)
                .await?
                .map(|p| p.payment_id);
            let related = match payment_id {
                Some(id) => self
                    .hantera
                    .cart_payment_ids(ctx.cart_id)
                    .await?
                    .is_some_and(|ids| ids.contains(&id)),
                None => false,
            };
            if let (true, Some(payment_id)) = (related, payment_id) {
                // Ours, perhaps completed by an attempt that crashed before it could check
                // the total: check it now.
                return self.settle_completed(ctx, cart, payment_id, false).await;
            }
            return self
                .double_payment(
                    ctx,
                    "the cart was completed outside the gateway with another payment",
                )
                .await;
        }
        self.double_payment(ctx, "the cart was already completed by another payment")
            .await
    }

    async fn double_payment(
        &self,
        ctx: &Ctx<'_>,
        why: &str,
    ) -> Result<CompletionOutcome, CompletionError> {
        let voids = self.voids_for(ctx.provider);
        if let Some(voids) = voids {
            // The void is durable work of its own, so a crash here cannot lose it.
            voids
                .schedule_void(ctx.provider.id(), ctx.psp_ref, ctx.cart_id)
                .await?;
        }
        let can_void = voids.is_some();
        let reason = format!(
            "double payment: {why}; {}",
            if can_void {
                "a void is scheduled at the PSP"
            } else if ctx.provider.capabilities().void {
                "no void is scheduled here: release it by hand"
            } else {
                "the provider cannot void: refund it by hand"
            }
        );
        tracing::warn!(provider = ctx.provider.id(), psp_ref = ctx.psp_ref, cart_id = %ctx.cart_id, %reason, "double payment");
        self.advance(ctx, CompletionState::DoublePayment, None, Some(reason))
            .await?;
        Ok(CompletionOutcome::DoublePayment {
            void_scheduled: can_void,
        })
    }

    async fn attention(
        &self,
        ctx: &Ctx<'_>,
        reason: String,
    ) -> Result<CompletionOutcome, CompletionError> {
        tracing::warn!(provider = ctx.provider.id(), psp_ref = ctx.psp_ref, cart_id = %ctx.cart_id, %reason, "completion needs attention");
        self.advance(
            ctx,
            CompletionState::NeedsAttention,
            None,
            Some(reason.clone()),
        )
        .await?;
        Ok(CompletionOutcome::NeedsAttention { reason })
    }

    async fn advance(
        &self,
        ctx: &Ctx<'_>,
        state: CompletionState,
        payment_id: Option<Uuid>,
        reason: Option<String>,
    ) -> Result<crate::ports::Completion, CompletionError> {
        Ok(self
            .store
            .advance_completion(CompletionUpdate {
                provider: ctx.provider.id().to_string(),
                psp_ref: ctx.psp_ref.to_string(),
                cart_id: ctx.cart_id,
                state,
                payment_id,
                reason,
            })
            .await?)
    }
}

/// Why a completed cart costs more (or other) than what was authorized, if it does.
fn underpayment(provider: &str, authorized: Money, cart: &RenderedCart) -> Option<String> {
    match cart.total() {
        Ok(total) if total == authorized => None,
        Ok(total) => Some(format!(
            "underpaid: the cart was completed with a total of {total}, but the {provider} payment authorized {authorized}"
        )),
        Err(e) => Some(format!(
            "underpaid: the completed cart's total cannot be compared with the {provider} authorization of {authorized}: {e}"
        )),
    }
}
