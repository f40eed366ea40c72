//! The adapter: how the gateway talks to Stripe (or to the fake, which speaks the same wire
//! format), over HTTP only.

use std::sync::Arc;

use async_trait::async_trait;
use http::{header, HeaderMap, StatusCode};
use psp_core::route::{respond, respond_json};
use psp_core::signature::DEFAULT_TOLERANCE;
use psp_core::{
    Capabilities, CaptureDone, CaptureRequest, CheckoutRequest, CheckoutSession, Money, Provider,
    ProviderContext, ProviderError, ProviderRoute, PspPayment, RenderedCart, RouteHandler,
    RouteRequest, RouteResponse, SignatureVerifier, SyncRequest, VerifiedEvent, WebhookDelivery,
    WebhookError,
};
use serde_json::{json, Value};

use crate::client::{CallError, StripeClient};
use crate::config::StripeConfig;
use crate::currency;
use crate::transformers::{
    self, checkout_key_query, form, parse_intent, psp_payment, session, AutomaticPaymentMethods,
    Cancel, Capture, CreateIntent, ErrorKind, IntentMetadata, PaymentIntent, Search, SearchResult,
    UpdateAmount, GATEWAY_TAG,
};

/// The provider id: the `{provider}` URL segment and Hantera's `providerKey`.
pub const ID: &str = "stripe";
/// The header carrying the webhook signature, `t=<unix>,v1=<hex>[,v1=…][,v0=…]`.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// Where the gateway mounts the fake Stripe (`psp-gateway sandbox`, and the embedded
/// default, which then points `api_base` there).
pub const FAKE_PATH: &str = "/fakes/stripe";
/// Where the storefront reads the publishable key, as Hantera's Stripe app serves it.
pub const PUBLIC_KEY_PATH: &str = "/ingress/stripe/publicKey";

/// How many fresh keys a create or an operation may use after Stripe saved a 5xx under the
/// previous one and a re-read showed that nothing happened.
const REKEYS: u32 = 2;

fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(StripeProvider::from_config(ctx.config)?))
}

psp_core::inventory::submit! {
    psp_core::ProviderRegistration { id: ID, build, test_only: false }
}

/// The Stripe adapter. Configuration: see [`StripeConfig`] and `docs/stripe.md`.
#[derive(Debug)]
pub struct StripeProvider {
    config: StripeConfig,
    client: StripeClient,
    verifier: SignatureVerifier,
}

/// A Stripe id is put into URL paths; anything but the characters of `pi_…` ids is
/// refused before a request is made, so a forged reference cannot reach another path.
fn check_ref(psp_ref: &str) -> Result<(), ProviderError> {
    let ok = psp_ref.starts_with("pi_")
        && (4..=255).contains(&psp_ref.len())
        && psp_ref
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ProviderError::NotFound(format!(
            "{psp_ref:?} is not a PaymentIntent id"
        )))
    }
}

fn stripe_amount(money: Money) -> Result<i64, ProviderError> {
    currency::to_stripe_amount(money).map_err(|e| ProviderError::BadRequest(e.to_string()))
}

fn lower_currency(money: Money) -> String {
    money.currency.code().to_ascii_lowercase()
}

/// Whether the PaymentIntent holds exactly `money` (amount and currency).
fn holds(pi: &PaymentIntent, money: Money) -> bool {
    pi.money(pi.amount).is_ok_and(|m| m == money)
}

impl StripeProvider {
    /// Builds the adapter from its `[providers.stripe]` table.
    pub fn from_config(config: &Value) -> Result<Self, ProviderError> {
        let config = StripeConfig::from_value(config)?;
        let client = StripeClient::new(&config)
            .map_err(|e| ProviderError::Config(format!("[providers.stripe]: HTTP client: {e}")))?;
        let verifier = SignatureVerifier::new(&config.webhook_secrets, DEFAULT_TOLERANCE);
        Ok(Self {
            config,
            client,
            verifier,
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    async fn retrieve(&self, psp_ref: &str) -> Result<PaymentIntent, ProviderError> {
        check_ref(psp_ref)?;
        let answer = self
            .client
            .get(&format!("/v1/payment_intents/{psp_ref}"), None)
            .await
            .map_err(CallError::into_provider_error)?;
        parse_intent(&answer.body)
    }

    /// The PaymentIntent created under a checkout key, found through its metadata.
    ///
    /// Stripe's search is eventually consistent (usually within a minute), so "none" can be
    /// a PaymentIntent not indexed yet; the caller then creates one under a fresh key, and
    /// at worst an unconfirmed PaymentIntent is left behind, which never takes money.
    async fn find_by_checkout_key(
        &self,
        key: &str,
    ) -> Result<Option<PaymentIntent>, ProviderError> {
        let query = form(&Search {
            query: checkout_key_query(key),
            limit: 10,
        })?;
        let answer = self
            .client
            .get("/v1/payment_intents/search", Some(query))
            .await
            .map_err(CallError::into_provider_error)?;
        let result: SearchResult =
            serde_json::from_slice(&answer.body).map_err(transformers::protocol_error)?;
        // The oldest is the one a replay of the key would have returned.
        Ok(result.data.into_iter().rfind(PaymentIntent::is_ours))
    }

    /// Creates the cart's PaymentIntent under the persisted checkout key.
    async fn create(&self, req: &CheckoutRequest<'_>) -> Result<CheckoutSession, ProviderError> {
        let key = req.idempotency_key;
        let params = CreateIntent {
            amount: stripe_amount(req.amount)?,
            currency: lower_currency(req.amount),
            capture_method: self.config.capture_method.as_str(),
            automatic_payment_methods: AutomaticPaymentMethods { enabled: true },
            metadata: IntentMetadata {
                cart_id: req.cart.cart_id.hyphenated().to_string(),
                gateway: GATEWAY_TAG,
                checkout_key: key,
            },
            description: req
                .cart
                .cart_number
                .as_ref()
                .map(|n| format!("Hantera cart {n}")),
        };
        let body = form(&params)?;
        let mut attempt_key = key.to_string();
        for rekey in 1..=REKEYS + 1 {
            match self
                .client
                .post("/v1/payment_intents", body.clone(), &attempt_key)
                .await
            {
                Ok(answer) => {
                    let pi = parse_intent(&answer.body)?;
                    return self.current_session(pi, req.amount, key).await;
                }
                // The key was first used for another amount: an earlier checkout of this
                // cart lost its answer, and the cart changed since. Its PaymentIntent is
                // found by the key and brought to the new amount.
                Err(e) if e.is(ErrorKind::Idempotency) => {
                    return match self.find_by_checkout_key(key).await? {
                        Some(pi) => self.current_session(pi, req.amount, key).await,
                        None => Err(e.into_provider_error()),
                    };
                }
                // Stripe saved a 5xx (or a conflict) under the key and replays it for as
                // long as it keeps the key, so look for the PaymentIntent instead.
                Err(e) if e.is_ambiguous_answer() => {
                    tracing::warn!(error = ?e, "creating a PaymentIntent failed ambiguously; searching for it");
                    if let Some(pi) = self.find_by_checkout_key(key).await? {
                        return self.current_session(pi, req.amount, key).await;
                    }
                    // Nothing was created. A fresh key derived from the persisted one is
                    // the same for every process retrying this checkout, so they converge.
                    attempt_key = format!("{key}:rekey-{rekey}");
                }
                Err(e) => return Err(e.into_provider_error()),
            }
        }
        Err(ProviderError::Transient(
            "Stripe kept failing to create the PaymentIntent; try again".into(),
        ))
    }

    /// A session for `pi`, after bringing its amount to `wanted` if it differs.
    async fn current_session(
        &self,
        pi: PaymentIntent,
        wanted: Money,
        key: &str,
    ) -> Result<CheckoutSession, ProviderError> {
        if holds(&pi, wanted) {
            return session(&pi);
        }
        let pi = self.set_amount(&pi.id, wanted, key).await?;
        session(&pi)
    }

    /// Sets the amount of an unconfirmed PaymentIntent. `Locked` once it is confirmed.
    async fn set_amount(
        &self,
        psp_ref: &str,
        wanted: Money,
        base_key: &str,
    ) -> Result<PaymentIntent, ProviderError> {
        check_ref(psp_ref)?;
        let amount = stripe_amount(wanted)?;
        let currency = lower_currency(wanted);
        let path = format!("/v1/payment_intents/{psp_ref}");
        // One key per target amount: a retry of this change replays, another change does not.
        let key = format!("{base_key}:amount:{currency}:{amount}");
        let body = form(&UpdateAmount { amount, currency })?;
        let first = self.client.post(&path, body.clone(), &key).await;
        let retry_key = match first {
            Ok(answer) if !answer.replayed => return parse_intent(&answer.body),
            Ok(answer) => {
                // A replay is our own earlier attempt, or an older change to this same amount
                // made before the cart moved away and back (A→B→A→B reuses B's key); then the
                // PaymentIntent may hold something else now, so it is read back.
                let replayed = parse_intent(&answer.body)?;
                let current = self.retrieve(psp_ref).await?;
                if holds(&current, wanted) {
                    return Ok(current);
                }
                tracing::debug!(payment_intent = %replayed.id, "a replayed amount change is stale; sending it again");
                // Setting an amount is idempotent by nature, so a fresh key does no harm.
                format!("{key}:{}", uuid::Uuid::new_v4().simple())
            }
            Err(e) if e.is_ambiguous_answer() => format!("{key}:rekey-1"),
            Err(e) => return Err(e.into_provider_error()),
        };
        let current = self.retrieve(psp_ref).await?;
        if holds(&current, wanted) {
            return Ok(current);
        }
        if !current.is_unconfirmed() {
            return Err(ProviderError::Locked(format!(
                "PaymentIntent {psp_ref} is {}; its amount can no longer change",
                current.status
            )));
        }
        let answer = self
            .client
            .post(&path, body, &retry_key)
            .await
            .map_err(CallError::into_provider_error)?;
        parse_intent(&answer.body)
    }

    /// The capture result for a PaymentIntent that Stripe says is captured.
    fn captured(pi: &PaymentIntent, wanted: Money) -> Result<CaptureDone, ProviderError> {
        if pi.status != "succeeded" {
            return Err(transformers::protocol_error(format!(
                "a capture answered with a PaymentIntent in status {}",
                pi.status
            )));
        }
        let received = pi.money(pi.amount_received)?;
        if received != wanted {
            return Err(ProviderError::Rejected {
                code: "capture_amount_mismatch".into(),
                message: format!(
                    "PaymentIntent {} was captured for {received}, not for {wanted}",
                    pi.id
                ),
            });
        }
        Ok(CaptureDone {
            psp_capture_id: pi.capture_id(),
        })
    }
}

/// Serves `GET /ingress/stripe/publicKey`. Hantera's storefront SDK reads the answer with
/// `response.text()`, while Hantera's documentation shows `{publicKey}`: plain text is
/// the default, and JSON is sent to a client that asks for it in `Accept`.
fn public_key(key: Option<&str>, headers: &HeaderMap) -> RouteResponse {
    let Some(key) = key else {
        return respond_json(
            StatusCode::NOT_FOUND,
            &[],
            &json!({ "errors": [{
                "code": "STRIPE_PUBLIC_KEY_NOT_CONFIGURED",
                "message": "[providers.stripe] has no publishable_key",
                "details": {}
            }]}),
        );
    };
    let wants_json = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| {
            range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .any(|media| media == "application/json");
    if wants_json {
        respond_json(StatusCode::OK, &[], &json!({ "publicKey": key }))
    } else {
        respond(
            StatusCode::OK,
            &[(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            key.to_string(),
        )
    }
}

/// `GET /ingress/stripe/publicKey`, with the configured publishable key.
struct PublicKey(Option<String>);

#[async_trait]
impl RouteHandler for PublicKey {
    async fn handle(&self, request: RouteRequest) -> RouteResponse {
        public_key(self.0.as_deref(), request.headers())
    }
}

#[async_trait]
impl Provider for StripeProvider {
    fn id(&self) -> &'static str {
        ID
    }

    fn live_credential(&self) -> Option<&'static str> {
        self.config.live_credential()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            capture: true,
            partial_capture: true,
            void: true,
            update_amount: true,
            signed_webhooks: true,
        }
    }

    fn payment_number_prefix(&self) -> &str {
        &self.config.payment_number_prefix
    }

    async fn checkout(&self, req: CheckoutRequest<'_>) -> Result<CheckoutSession, ProviderError> {
        // Refused before anything is sent: an amount Stripe cannot represent exactly.
        stripe_amount(req.amount)?;
        match req.existing {
            Some(existing) if existing.amount == req.amount => Ok(CheckoutSession {
                psp_ref: existing.psp_ref.clone(),
                amount: existing.amount,
                client: existing.client.clone(),
            }),
            Some(existing) => {
                let pi = self
                    .set_amount(&existing.psp_ref, req.amount, req.idempotency_key)
                    .await?;
                session(&pi)
            }
            None => self.create(&req).await,
        }
    }

    async fn verify_webhook(
        &self,
        delivery: &WebhookDelivery<'_>,
    ) -> Result<VerifiedEvent, WebhookError> {
        // A header that is present but not text is malformed, not missing.
        let header = delivery
            .headers
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap_or(""));
        let body = self.verifier.verify(header, delivery.body, delivery.now)?;
        VerifiedEvent::parse(body, transformers::parse_event)
    }

    async fn fetch(&self, psp_ref: &str) -> Result<PspPayment, ProviderError> {
        psp_payment(&self.retrieve(psp_ref).await?)
    }

    async fn capture(&self, req: CaptureRequest<'_>) -> Result<CaptureDone, ProviderError> {
        check_ref(req.psp_ref)?;
        let amount_to_capture =
            currency::to_stripe_amount(req.amount).map_err(|e| ProviderError::Rejected {
                code: "amount_not_representable".into(),
                message: e.to_string(),
            })?;
        let path = format!("/v1/payment_intents/{}/capture", req.psp_ref);
        let body = form(&Capture { amount_to_capture })?;
        let err = match self
            .client
            .post(&path, body.clone(), req.idempotency_key)
            .await
        {
            Ok(answer) => return Self::captured(&parse_intent(&answer.body)?, req.amount),
            Err(e) => e,
        };
        let ambiguous = err.is_ambiguous_answer();
        if !ambiguous && !err.is(ErrorKind::UnexpectedState) {
            return Err(err.into_provider_error());
        }
        // Either Stripe saved a 5xx under the key, or the PaymentIntent is past
        // requires_capture: re-read it to learn whether a capture happened (this attempt's,
        // or an earlier one's under another key).
        let pi = self.retrieve(req.psp_ref).await?;
        match pi.status.as_str() {
            "succeeded" => Self::captured(&pi, req.amount),
            "requires_capture" if ambiguous => {
                // Nothing was captured. Stripe captures a PaymentIntent at most once, so a
                // fresh key cannot capture twice.
                let answer = self
                    .client
                    .post(&path, body, &format!("{}:rekey-1", req.idempotency_key))
                    .await
                    .map_err(CallError::into_provider_error)?;
                Self::captured(&parse_intent(&answer.body)?, req.amount)
            }
            "processing" => Err(ProviderError::Transient(format!(
                "PaymentIntent {} is processing",
                pi.id
            ))),
            _ if ambiguous => Err(err.into_provider_error()),
            other => Err(ProviderError::Rejected {
                code: "payment_intent_unexpected_state".into(),
                message: format!("PaymentIntent {} is {other} and cannot be captured", pi.id),
            }),
        }
    }

    async fn void(&self, psp_ref: &str, idempotency_key: &str) -> Result<(), ProviderError> {
        check_ref(psp_ref)?;
        let path = format!("/v1/payment_intents/{psp_ref}/cancel");
        let body = form(&Cancel {
            cancellation_reason: "duplicate",
        })?;
        let mut key = idempotency_key.to_string();
        for rekey in 1..=REKEYS + 1 {
            let err = match self.client.post(&path, body.clone(), &key).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let ambiguous = err.is_ambiguous_answer();
            if !ambiguous && !err.is(ErrorKind::UnexpectedState) {
                return Err(err.into_provider_error());
            }
            let pi = self.retrieve(psp_ref).await?;
            match pi.status.as_str() {
                // Cancelled by this attempt, an earlier one, or Stripe's own expiry: the
                // authorization is released either way.
                "canceled" => return Ok(()),
                "succeeded" => {
                    return Err(ProviderError::Rejected {
                        code: "payment_intent_unexpected_state".into(),
                        message: format!(
                            "PaymentIntent {psp_ref} was captured; it needs a refund, not a void"
                        ),
                    })
                }
                _ if ambiguous => key = format!("{idempotency_key}:rekey-{rekey}"),
                _ => return Err(err.into_provider_error()),
            }
        }
        Err(ProviderError::Transient(format!(
            "Stripe kept failing to cancel PaymentIntent {psp_ref}"
        )))
    }

    fn sync_payload(&self, cart: &RenderedCart) -> Result<Value, ProviderError> {
        // What Stripe holds: its own amount and lower-case currency. A total Stripe cannot
        // represent is refused here rather than by the sync job.
        let total = cart.total().map_err(|e| {
            ProviderError::BadRequest(format!("the cart total cannot be paid: {e}"))
        })?;
        Ok(json!({ "amount": stripe_amount(total)?, "currency": lower_currency(total) }))
    }

    async fn sync(&self, req: SyncRequest<'_>) -> Result<(), ProviderError> {
        self.set_amount(req.psp_ref, req.amount, req.idempotency_key)
            .await
            .map(|_| ())
    }

    fn routes(&self) -> Vec<ProviderRoute> {
        let key = PublicKey(self.config.publishable_key.clone());
        vec![ProviderRoute::get(PUBLIC_KEY_PATH, Arc::new(key))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_intent_ids_with_path_characters_are_refused() {
        assert!(check_ref("pi_3MtwBwLkdIwHu7ix28a3tqPa").is_ok());
        for bad in [
            "",
            "pi_",
            "../x",
            "pi_1/capture",
            "pi_1?x=1",
            "ch_1",
            "pi_1%2F",
        ] {
            assert!(check_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_public_key_is_text_unless_json_is_asked_for() {
        let headers = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, accept.parse().unwrap());
            h
        };
        let text = public_key(Some("pk_test_1"), &HeaderMap::new());
        assert_eq!(
            text.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let any = public_key(Some("pk_test_1"), &headers("*/*"));
        assert!(any.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let json = public_key(
            Some("pk_test_1"),
            &headers("text/html, application/json;q=0.9"),
        );
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let missing = public_key(None, &HeaderMap::new());
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
