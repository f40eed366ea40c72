//! The adapter: how the gateway talks to Kustom.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use psp_core::{
    Capabilities, CaptureDone, CaptureRequest, CheckoutRequest, CheckoutSession, Currency, Money,
    Provider, ProviderContext, ProviderError, ProviderRoute, ProviderServices, PspPayment,
    PspStatus, RenderedCart, SyncRequest, VerifiedEvent, WebhookDelivery, WebhookError,
};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{check_order_id, protocol_error, Api, Bounded};
use crate::config::{absolute_http_url, market_for, KustomConfig};
use crate::limit::{PerKeyWindow, SlidingWindow};
use crate::order::OrderAmounts;

/// The provider id: the `{provider}` URL segment and Hantera's `providerKey`.
pub const ID: &str = "kustom";
/// Where the gateway mounts the fake Kustom.
pub const FAKE_PATH: &str = "/fakes/kustom";
/// The validation callback Kustom calls before it completes a purchase.
pub const VALIDATE_PATH: &str = "/providers/kustom/validate";
/// Kustom's placeholder for the order id in merchant URLs.
pub const ORDER_ID_PLACEHOLDER: &str = "{checkout.order.id}";

/// Captures, cancels and refunds carry a UUID idempotency key, as Kustom recommends; the
/// gateway's keys are turned into one deterministically (UUID v5 in this namespace), so
/// that a retry with the same key sends the same UUID.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x1f0c_9a3e_5b7d_4e21_8c6f_2a9b_3d4e_5f60);
/// How long a push for an order Kustom does not know is answered without asking again.
const UNKNOWN_ORDER_TTL: Duration = Duration::from_secs(600);
/// How many order ids the per-order push limit remembers at once.
const PUSH_LIMIT_ORDERS: usize = 10_000;

fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(KustomProvider::from_context(ctx)?))
}

psp_core::inventory::submit! {
    psp_core::ProviderRegistration { id: ID, build, test_only: false }
}

/// The Kustom adapter. See the crate documentation for the flows.
pub struct KustomProvider {
    config: Arc<KustomConfig>,
    public_url: String,
    api: Api,
    /// Sessions created by idempotency key. Kustom's checkout API takes no idempotency
    /// key, so a retried create (the gateway's answer lost) is recognised here instead of
    /// making a second order. After a restart a retry makes a new order; the first one is
    /// never shown to the customer and expires at Kustom after 48 h.
    created: Mutex<Bounded<String, CheckoutSession>>,
    /// The ceiling on push-triggered reads, all orders together.
    push_limit: SlidingWindow,
    /// The limit per order id, below the ceiling: pushes repeated for one order (a caller
    /// pushing its own order id) spend that order's reads, not everyone's.
    push_limit_per_order: PerKeyWindow,
    unknown_orders: Mutex<Bounded<String, Instant>>,
    /// The gateway's ports, handed over when the adapter is built; used by the validation
    /// callback and to recognise pushes for orders we never made.
    services: ProviderServices,
}

impl std::fmt::Debug for KustomProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KustomProvider")
            .field("api_base", &self.api.base())
            .finish_non_exhaustive()
    }
}

/// A checkout order as the checkout API returns it.
#[derive(Debug, Deserialize)]
struct CheckoutOrderWire {
    order_id: String,
    status: String,
    #[serde(default)]
    html_snippet: Option<String>,
    purchase_currency: String,
    order_amount: i64,
    #[serde(default)]
    merchant_reference1: Option<String>,
    /// Only used to remember the checkout URL, so an odd shape is as if absent.
    #[serde(default, deserialize_with = "merchant_urls")]
    merchant_urls: Option<MerchantUrlsWire>,
}

/// The merchant URLs a checkout order holds (only the one the gateway uses is read).
#[derive(Debug, Deserialize)]
struct MerchantUrlsWire {
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    checkout: Option<String>,
}

fn merchant_urls<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<MerchantUrlsWire>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(deserializer)?).ok())
}

/// The key of the session's client data that holds the storefront's checkout URL (with
/// Kustom's order id placeholder), the only page a denied validation redirects to.
pub(crate) const CHECKOUT_URL_KEY: &str = "checkoutUrl";

/// An order as Order Management returns it.
#[derive(Debug, Deserialize)]
pub(crate) struct OmOrderWire {
    pub(crate) order_id: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) fraud_status: Option<String>,
    pub(crate) order_amount: i64,
    #[serde(default)]
    pub(crate) captured_amount: i64,
    pub(crate) purchase_currency: String,
    #[serde(default)]
    pub(crate) merchant_reference1: Option<String>,
}

fn money(minor: i64, currency: &str) -> Result<Money, ProviderError> {
    Ok(Money::from_minor(
        minor,
        Currency::from_code(currency).map_err(protocol_error)?,
    ))
}

/// The status of an Order Management order in the core's terms. A fraud check still
/// pending is not yet an authorization: Kustom keeps pushing until we acknowledge, and
/// the push after the decision completes the cart. A fraud status this adapter does not
/// know is not taken for an acceptance either: the order waits, with a warning, rather
/// than completing a cart on a decision nobody read.
fn om_status(o: &OmOrderWire) -> Result<PspStatus, ProviderError> {
    let fraud = o.fraud_status.as_deref().unwrap_or("ACCEPTED");
    let amount = || money(o.order_amount, &o.purchase_currency);
    let status = o.status.to_ascii_uppercase();
    Ok(match status.as_str() {
        _ if fraud.eq_ignore_ascii_case("REJECTED") => PspStatus::Failed {
            reason: "rejected by Kustom's fraud check".into(),
        },
        "AUTHORIZED" if fraud.eq_ignore_ascii_case("ACCEPTED") => {
            PspStatus::Authorized { amount: amount()? }
        }
        "AUTHORIZED" => {
            if !fraud.eq_ignore_ascii_case("PENDING") {
                tracing::warn!(
                    order_id = %o.order_id,
                    fraud_status = fraud,
                    "unknown Kustom fraud status; the order is treated as pending"
                );
            }
            PspStatus::Pending
        }
        "PART_CAPTURED" | "CAPTURED" => PspStatus::Captured { amount: amount()? },
        "CLOSED" if o.captured_amount > 0 => PspStatus::Captured { amount: amount()? },
        "CANCELLED" | "EXPIRED" | "CLOSED" => PspStatus::Canceled,
        other => return Err(protocol_error(format!("unknown order status {other:?}"))),
    })
}

fn cart_of(reference: Option<&str>) -> Option<Uuid> {
    reference.and_then(|r| Uuid::parse_str(r.trim()).ok())
}

/// A storefront URL from the body, else the configured default.
fn storefront_url(
    body: &Value,
    field: &str,
    default: Option<&String>,
) -> Result<String, ProviderError> {
    match body.get(field) {
        None | Some(Value::Null) => default.cloned().ok_or_else(|| {
            ProviderError::BadRequest(format!(
                "{field} is required (or configure a default in [providers.kustom])"
            ))
        }),
        Some(Value::String(u)) if absolute_http_url(u) => Ok(u.clone()),
        Some(_) => Err(ProviderError::BadRequest(format!(
            "{field} must be an absolute http(s) URL"
        ))),
    }
}

fn optional_text(body: &Value, field: &str) -> Result<Option<String>, ProviderError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 16 => {
            Ok(Some(s.trim().to_string()))
        }
        Some(_) => Err(ProviderError::BadRequest(format!(
            "{field} must be a short string"
        ))),
    }
}

/// Adds `?kustom_order_id={checkout.order.id}` to a gateway URL. The braces stay raw:
/// Kustom replaces the placeholder literally.
fn with_order_id(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}kustom_order_id={ORDER_ID_PLACEHOLDER}")
}

impl KustomProvider {
    /// Builds the adapter from the registry's context.
    pub fn from_context(ctx: &ProviderContext<'_>) -> Result<Self, ProviderError> {
        Self::from_config(ctx.config, ctx.public_url, ctx.services)
    }

    /// Builds the adapter from its config table, the gateway's public URL and the
    /// gateway's ports.
    pub fn from_config(
        config: &Value,
        public_url: &str,
        services: &ProviderServices,
    ) -> Result<Self, ProviderError> {
        let config = KustomConfig::from_value(config)?;
        let api = Api::new(&config)?;
        Ok(Self {
            push_limit: SlidingWindow::new(config.push_reads_per_window, config.push_window),
            push_limit_per_order: PerKeyWindow::new(
                config.push_reads_per_order,
                config.push_window,
                PUSH_LIMIT_ORDERS,
            ),
            config: Arc::new(config),
            public_url: public_url.trim_end_matches('/').to_string(),
            api,
            created: Mutex::new(Bounded::new(10_000)),
            unknown_orders: Mutex::new(Bounded::new(10_000)),
            services: services.clone(),
        })
    }

    /// Kustom's API base, without a trailing slash.
    pub fn api_base(&self) -> &str {
        self.api.base()
    }

    /// The configuration.
    pub fn config(&self) -> &KustomConfig {
        &self.config
    }

    /// The order amounts for a cart, or why Kustom cannot be offered it.
    pub fn order_amounts(&self, cart: &RenderedCart) -> Result<OrderAmounts, ProviderError> {
        OrderAmounts::from_cart(cart, &self.config.tax_rates).map_err(|e| {
            ProviderError::BadRequest(format!("the cart cannot be paid with Kustom: {e}"))
        })
    }

    fn om_url(&self, order_id: &str, rest: &str) -> String {
        format!(
            "{}/ordermanagement/v1/orders/{order_id}{rest}",
            self.api.base()
        )
    }

    async fn checkout_order(&self, order_id: &str) -> Result<CheckoutOrderWire, ProviderError> {
        check_order_id(order_id)?;
        let url = self.api.checkout_order_url(order_id);
        self.api.call(Method::GET, &url, None, None).await?.json()
    }

    pub(crate) async fn om_order(&self, order_id: &str) -> Result<OmOrderWire, ProviderError> {
        check_order_id(order_id)?;
        let url = self.om_url(order_id, "");
        self.api.call(Method::GET, &url, None, None).await?.json()
    }

    /// The session handed to the storefront and stored with the cart. It keeps the
    /// storefront's checkout URL: the validation callback is unauthenticated, so its
    /// denial may send the customer only to a URL stored here, never to one from the body.
    fn session(
        order_id: String,
        amount: Money,
        snippet: Option<String>,
        checkout_url: Option<String>,
    ) -> Result<CheckoutSession, ProviderError> {
        let snippet = snippet.ok_or_else(|| protocol_error("the order has no html_snippet"))?;
        let mut client = json!({ "htmlSnippet": snippet, "orderId": order_id });
        if let Some(url) = checkout_url.filter(|u| absolute_http_url(u)) {
            client[CHECKOUT_URL_KEY] = Value::String(url);
        }
        Ok(CheckoutSession {
            client,
            psp_ref: order_id,
            amount,
        })
    }

    async fn create(
        &self,
        req: &CheckoutRequest<'_>,
        amounts: &OrderAmounts,
    ) -> Result<CheckoutSession, ProviderError> {
        let body = req.body;
        let currency = req.amount.currency.code();
        let market = market_for(currency);
        let country = optional_text(body, "purchaseCountry")?
            .or_else(|| self.config.purchase_country.clone())
            .or_else(|| market.map(|m| m.0.to_string()))
            .ok_or_else(|| {
                ProviderError::BadRequest(format!(
                    "no purchase country for {currency}: send purchaseCountry or configure purchase_country"
                ))
            })?;
        let locale = optional_text(body, "locale")?
            .or_else(|| self.config.locale.clone())
            .or_else(|| market.map(|m| m.1.to_string()))
            .unwrap_or_else(|| format!("en-{country}"));
        let checkout_url = storefront_url(body, "checkoutUrl", self.config.checkout_url.as_ref())?;
        let mut merchant_urls = json!({
            "terms": storefront_url(body, "termsUrl", self.config.terms_url.as_ref())?,
            "checkout": checkout_url,
            "confirmation": storefront_url(body, "confirmationUrl", self.config.confirmation_url.as_ref())?,
            "push": with_order_id(req.webhook_url),
        });
        if self.config.validation.enabled {
            merchant_urls["validation"] = Value::String(with_order_id(&format!(
                "{}{VALIDATE_PATH}",
                self.public_url
            )));
        }
        let mut order = json!({
            "purchase_country": country.to_ascii_uppercase(),
            "purchase_currency": amounts.purchase_currency,
            "locale": locale,
            "order_amount": amounts.order_amount,
            "order_tax_amount": amounts.order_tax_amount,
            "order_lines": amounts.order_lines,
            "merchant_reference1": req.cart.cart_id.to_string(),
            "merchant_urls": merchant_urls,
        });
        if self.config.validation.require_success {
            order["options"] = json!({ "require_validate_callback_success": true });
        }
        let url = format!("{}/checkout/v3/orders", self.api.base());
        let answer = self
            .api
            .call(Method::POST, &url, None, Some(&order))
            .await?;
        let created: CheckoutOrderWire = answer.json()?;
        check_order_id(&created.order_id).map_err(protocol_error)?;
        self.api
            .remember_location(&created.order_id, &answer.headers);
        let session = Self::session(
            created.order_id,
            req.amount,
            created.html_snippet,
            Some(checkout_url),
        )?;
        self.created
            .lock()
            .insert(req.idempotency_key.to_string(), session.clone());
        tracing::info!(order_id = %session.psp_ref, cart_id = %req.cart.cart_id, "Kustom checkout order created");
        Ok(session)
    }

    /// Brings an existing order to the cart's amounts while the customer has not
    /// finished, or starts a new one when Kustom has let it expire.
    async fn update_or_recreate(
        &self,
        order_id: &str,
        previous: &Value,
        req: &CheckoutRequest<'_>,
        amounts: &OrderAmounts,
    ) -> Result<CheckoutSession, ProviderError> {
        let current = match self.checkout_order(order_id).await {
            Ok(o) => o,
            // Kustom forgets an order 48 h after its last change and answers 404: a new
            // order is the documented way on.
            Err(ProviderError::NotFound(_)) => return self.create(req, amounts).await,
            Err(e) => return Err(e),
        };
        if !current.status.eq_ignore_ascii_case("checkout_incomplete") {
            return Err(ProviderError::Locked(format!(
                "Kustom order {order_id} is {}; its amount can no longer change",
                current.status
            )));
        }
        if !current
            .purchase_currency
            .eq_ignore_ascii_case(&amounts.purchase_currency)
        {
            return Err(ProviderError::Locked(format!(
                "Kustom order {order_id} is in {}, the cart is now in {}",
                current.purchase_currency, amounts.purchase_currency
            )));
        }
        let updated = self.update(order_id, amounts).await?;
        // The order keeps the checkout URL it was created with; Kustom's answer says which.
        let checkout_url = updated.merchant_urls.and_then(|u| u.checkout).or_else(|| {
            previous
                .get(CHECKOUT_URL_KEY)
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let session = Self::session(
            updated.order_id,
            req.amount,
            updated.html_snippet,
            checkout_url,
        )?;
        self.created
            .lock()
            .insert(req.idempotency_key.to_string(), session.clone());
        Ok(session)
    }

    async fn update(
        &self,
        order_id: &str,
        amounts: &OrderAmounts,
    ) -> Result<CheckoutOrderWire, ProviderError> {
        let url = self.api.checkout_order_url(order_id);
        let body = serde_json::to_value(amounts).map_err(protocol_error)?;
        let answer = self.api.call(Method::POST, &url, None, Some(&body)).await?;
        answer.json()
    }

    async fn verify_push(
        &self,
        delivery: &WebhookDelivery<'_>,
    ) -> Result<VerifiedEvent, WebhookError> {
        let query: Vec<(String, String)> =
            serde_urlencoded::from_str(delivery.query.unwrap_or("")).unwrap_or_default();
        let order_id = query
            .into_iter()
            .find(|(k, _)| k == "kustom_order_id")
            .map(|(_, v)| v)
            .ok_or_else(|| {
                WebhookError::Malformed("a Kustom push names its order in ?kustom_order_id=".into())
            })?;
        check_order_id(&order_id).map_err(|e| WebhookError::Malformed(e.to_string()))?;

        // Every order this gateway made has a checkout session; a push for any other id
        // is answered without asking Kustom at all.
        let mut ours = false;
        match self.services.store.session_by_ref(ID, &order_id).await {
            Ok(Some(_)) => ours = true,
            Ok(None) => {
                return Err(WebhookError::Malformed(format!(
                    "Kustom order {order_id} belongs to no checkout session of this gateway"
                )))
            }
            // A store hiccup must not lose a genuine push; the rate limit below still
            // bounds what it can cost.
            Err(e) => tracing::warn!(error = %e, "looking up the session of a push failed"),
        }
        // Ids Kustom denied knowing are remembered a while, so repeating one is free. Not
        // for our own orders: one of ours is unknown to Order Management until the
        // customer pays, and an early forged push must not delay the genuine one.
        if !ours {
            let mut unknown = self.unknown_orders.lock();
            if let Some(seen) = unknown.get(&order_id) {
                if seen.elapsed() < UNKNOWN_ORDER_TTL {
                    return Err(WebhookError::Malformed(format!(
                        "Kustom does not know order {order_id}"
                    )));
                }
                unknown.remove(&order_id);
            }
        }
        let now = Instant::now();
        if !self.push_limit_per_order.try_acquire_at(&order_id, now) {
            tracing::debug!(
                order_id,
                limit = self.config.push_reads_per_order,
                "push not checked: too many pushes for this order"
            );
            return Err(WebhookError::RateLimited(
                "too many pushes for this order; this one was not checked (Kustom pushes again until acknowledged)"
                    .into(),
            ));
        }
        if !self.push_limit.try_acquire_at(now) {
            // The read does not happen, so it does not count against the order either.
            self.push_limit_per_order.release(&order_id, now);
            if self.push_limit.first_refusal() {
                tracing::warn!(
                    limit = self.config.push_reads_per_window,
                    window_ms = self.config.push_window.as_millis() as u64,
                    "Kustom pushes beyond the read limit are refused until the window frees up"
                );
            }
            tracing::debug!(
                order_id,
                "push not checked: too many unauthenticated pushes"
            );
            return Err(WebhookError::RateLimited(
                "too many unauthenticated pushes; this one was not checked (Kustom pushes again until acknowledged)"
                    .into(),
            ));
        }
        let order = match self.om_order(&order_id).await {
            Ok(o) => o,
            Err(ProviderError::NotFound(_)) => {
                if ours {
                    return Err(WebhookError::Malformed(format!(
                        "Kustom order {order_id} is not paid: Order Management does not know it yet"
                    )));
                }
                self.unknown_orders
                    .lock()
                    .insert(order_id.clone(), Instant::now());
                return Err(WebhookError::Malformed(format!(
                    "Kustom does not know order {order_id}"
                )));
            }
            // Kustom's own error text is for our log, not for the unauthenticated caller
            // of the push URL.
            Err(e) => {
                tracing::warn!(order_id, error = %e, "reading a pushed Kustom order failed");
                return Err(WebhookError::Malformed(format!(
                    "Kustom order {order_id} could not be read now"
                )));
            }
        };
        if order.order_id != order_id {
            return Err(WebhookError::Malformed(
                "Kustom answered with another order".into(),
            ));
        }
        let status = om_status(&order).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        // Kustom repeats a push until it is acknowledged, minutes apart; each repeat must
        // reach the worker again (it acknowledges), while a burst of copies within one
        // minute is one event.
        let minute = delivery
            .now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            / 60;
        let status_name = order.status.to_ascii_lowercase();
        let read = PspPayment {
            psp_ref: order_id.clone(),
            cart_id: cart_of(order.merchant_reference1.as_deref()),
            status,
        };
        Ok(VerifiedEvent::from_authenticated_read(
            &read,
            format!("push:{order_id}:{status_name}:{minute}"),
            format!("push.{status_name}"),
        ))
    }
}

#[async_trait]
impl Provider for KustomProvider {
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
            signed_webhooks: false,
        }
    }

    fn payment_number_prefix(&self) -> &str {
        &self.config.payment_number_prefix
    }

    async fn checkout(&self, req: CheckoutRequest<'_>) -> Result<CheckoutSession, ProviderError> {
        let amounts = self.order_amounts(req.cart)?;
        amounts.check(req.amount).map_err(|e| {
            ProviderError::BadRequest(format!("the cart cannot be paid with Kustom: {e}"))
        })?;
        if let Some(existing) = req.existing {
            if existing.amount == req.amount {
                return Ok(CheckoutSession {
                    psp_ref: existing.psp_ref.clone(),
                    amount: existing.amount,
                    client: existing.client.clone(),
                });
            }
            return self
                .update_or_recreate(&existing.psp_ref, &existing.client, &req, &amounts)
                .await;
        }
        let earlier = self.created.lock().get(&req.idempotency_key.to_string());
        if let Some(earlier) = earlier {
            if earlier.amount == req.amount {
                return Ok(earlier);
            }
            return self
                .update_or_recreate(&earlier.psp_ref, &earlier.client, &req, &amounts)
                .await;
        }
        self.create(&req, &amounts).await
    }

    async fn verify_webhook(
        &self,
        delivery: &WebhookDelivery<'_>,
    ) -> Result<VerifiedEvent, WebhookError> {
        self.verify_push(delivery).await
    }

    async fn fetch(&self, psp_ref: &str) -> Result<PspPayment, ProviderError> {
        // Not an id Kustom could have made: not found, rather than "expired" below.
        check_order_id(psp_ref)?;
        match self.om_order(psp_ref).await {
            Ok(o) => Ok(PspPayment {
                status: om_status(&o)?,
                cart_id: cart_of(o.merchant_reference1.as_deref()),
                psp_ref: o.order_id,
            }),
            // Order Management knows an order only once the customer completed it.
            Err(ProviderError::NotFound(_)) => match self.checkout_order(psp_ref).await {
                Ok(o) => {
                    let status = if o.status.eq_ignore_ascii_case("checkout_incomplete") {
                        PspStatus::Pending
                    } else {
                        // Complete at checkout, not yet visible in Order Management.
                        PspStatus::Authorized {
                            amount: money(o.order_amount, &o.purchase_currency)?,
                        }
                    };
                    Ok(PspPayment {
                        status,
                        cart_id: cart_of(o.merchant_reference1.as_deref()),
                        psp_ref: o.order_id,
                    })
                }
                // An unfinished checkout order expires 48 h after its last change and is
                // then answered 404: for an order we made, that is its end.
                Err(ProviderError::NotFound(_)) => Ok(PspPayment {
                    psp_ref: psp_ref.to_string(),
                    cart_id: None,
                    status: PspStatus::Canceled,
                }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    async fn capture(&self, req: CaptureRequest<'_>) -> Result<CaptureDone, ProviderError> {
        check_order_id(req.psp_ref)?;
        if req.amount.minor < 1 {
            return Err(ProviderError::BadRequest(
                "Kustom captures at least one minor unit".into(),
            ));
        }
        let key = Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, req.idempotency_key.as_bytes());
        let url = self.om_url(req.psp_ref, "/captures");
        let answer = self
            .api
            .call(
                Method::POST,
                &url,
                Some(&key.to_string()),
                Some(&json!({ "captured_amount": req.amount.minor })),
            )
            .await?;
        // Kustom names the capture in a `Capture-Id` header and its `Location`; a body,
        // when there is one, may carry `capture_id` too.
        let from_header = answer
            .headers
            .get("capture-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let from_location = || {
            answer
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                .map(str::to_string)
        };
        let from_body = || {
            serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| {
                    v.get("capture_id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
        };
        let id = from_header
            .or_else(from_body)
            .or_else(from_location)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| protocol_error("the capture answer names no capture"))?;
        Ok(CaptureDone { psp_capture_id: id })
    }

    async fn void(&self, psp_ref: &str, idempotency_key: &str) -> Result<(), ProviderError> {
        check_order_id(psp_ref)?;
        let key = Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, idempotency_key.as_bytes());
        let url = self.om_url(psp_ref, "/cancel");
        match self
            .api
            .call(Method::POST, &url, Some(&key.to_string()), None)
            .await
        {
            Ok(_) => Ok(()),
            // An order cancelled already (an earlier attempt whose answer was lost) is the
            // outcome wanted.
            Err(ProviderError::Rejected { code, message }) => match self.om_order(psp_ref).await {
                Ok(o) if o.status.eq_ignore_ascii_case("CANCELLED") => Ok(()),
                _ => Err(ProviderError::Rejected { code, message }),
            },
            Err(e) => Err(e),
        }
    }

    fn sync_payload(&self, cart: &RenderedCart) -> Result<Value, ProviderError> {
        let amounts = self.order_amounts(cart)?;
        serde_json::to_value(amounts).map_err(|e| ProviderError::BadRequest(e.to_string()))
    }

    async fn sync(&self, req: SyncRequest<'_>) -> Result<(), ProviderError> {
        let amounts: OrderAmounts = serde_json::from_value(req.payload.clone())
            .map_err(|e| ProviderError::BadRequest(format!("not a Kustom sync payload: {e}")))?;
        amounts
            .check(req.amount)
            .map_err(|e| ProviderError::BadRequest(format!("the sync payload is wrong: {e}")))?;
        let current = self.checkout_order(req.psp_ref).await?;
        if !current.status.eq_ignore_ascii_case("checkout_incomplete") {
            return Err(ProviderError::Locked(format!(
                "Kustom order {} is {}; it can no longer change",
                req.psp_ref, current.status
            )));
        }
        self.update(req.psp_ref, &amounts).await?;
        tracing::info!(order_id = req.psp_ref, amount = %req.amount, "Kustom order synced with the cart");
        Ok(())
    }

    async fn after_completion(&self, psp_ref: &str) -> Result<(), ProviderError> {
        check_order_id(psp_ref)?;
        let url = self.om_url(psp_ref, "/acknowledge");
        self.api.call(Method::POST, &url, None, None).await?;
        tracing::info!(order_id = psp_ref, "Kustom order acknowledged");
        Ok(())
    }

    fn routes(&self) -> Vec<ProviderRoute> {
        vec![crate::validate::route(crate::validate::Validator::new(
            self.config.clone(),
            self.services.clone(),
            &self.public_url,
        ))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn om(status: &str, fraud: Option<&str>) -> OmOrderWire {
        OmOrderWire {
            order_id: "o1".into(),
            status: status.into(),
            fraud_status: fraud.map(str::to_string),
            order_amount: 1000,
            captured_amount: 0,
            purchase_currency: "SEK".into(),
            merchant_reference1: None,
        }
    }

    #[test]
    fn every_order_management_status_maps_to_a_core_state_case_insensitively() {
        let sek = Currency::from_code("SEK").unwrap();
        let m = Money::from_minor(1000, sek);
        assert_eq!(
            om_status(&om("AUTHORIZED", Some("ACCEPTED"))).unwrap(),
            PspStatus::Authorized { amount: m }
        );
        assert_eq!(
            om_status(&om("authorized", None)).unwrap(),
            PspStatus::Authorized { amount: m }
        );
        assert_eq!(
            om_status(&om("AUTHORIZED", Some("PENDING"))).unwrap(),
            PspStatus::Pending
        );
        // A fraud decision this adapter does not know is not an acceptance.
        assert_eq!(
            om_status(&om("AUTHORIZED", Some("UNDER_REVIEW"))).unwrap(),
            PspStatus::Pending
        );
        assert_eq!(
            om_status(&om("AUTHORIZED", Some("accepted"))).unwrap(),
            PspStatus::Authorized { amount: m }
        );
        assert!(matches!(
            om_status(&om("AUTHORIZED", Some("REJECTED"))).unwrap(),
            PspStatus::Failed { .. }
        ));
        assert_eq!(
            om_status(&om("PART_CAPTURED", None)).unwrap(),
            PspStatus::Captured { amount: m }
        );
        assert_eq!(
            om_status(&om("CAPTURED", None)).unwrap(),
            PspStatus::Captured { amount: m }
        );
        assert_eq!(
            om_status(&om("CANCELLED", None)).unwrap(),
            PspStatus::Canceled
        );
        assert_eq!(
            om_status(&om("EXPIRED", None)).unwrap(),
            PspStatus::Canceled
        );
        assert_eq!(om_status(&om("CLOSED", None)).unwrap(), PspStatus::Canceled);
        let mut closed = om("CLOSED", None);
        closed.captured_amount = 1000;
        assert_eq!(
            om_status(&closed).unwrap(),
            PspStatus::Captured { amount: m }
        );
        assert!(om_status(&om("EXPLODED", None)).unwrap_err().is_transient());
    }

    #[test]
    fn orders_with_fields_the_adapter_does_not_read_are_read() {
        let om: OmOrderWire = serde_json::from_value(json!({
            "order_id": "o1", "status": "AUTHORIZED", "fraud_status": "ACCEPTED",
            "order_amount": 1000, "captured_amount": 0, "purchase_currency": "SEK",
            "merchant_reference1": "0199a9b6-8608-7360-b98b-d2f9adeb2848",
            "order_lines": [{ "anything": [1, null] }], "billing_address": null,
            "initial_payment_method": { "type": 7 }, "brand_new": true,
        }))
        .unwrap();
        assert!(matches!(
            om_status(&om).unwrap(),
            PspStatus::Authorized { .. }
        ));
        let checkout: CheckoutOrderWire = serde_json::from_value(json!({
            "order_id": "o1", "status": "checkout_incomplete", "html_snippet": "<div/>",
            "purchase_currency": "SEK", "order_amount": 1000,
            "merchant_urls": { "checkout": "https://shop.example/c", "push": 5, "new": {} },
            "gui": { "options": null }, "options": [1],
        }))
        .unwrap();
        for odd in [json!("x"), json!({ "checkout": [5] }), json!(null)] {
            let o: CheckoutOrderWire = serde_json::from_value(json!({
                "order_id": "o1", "status": "checkout_incomplete", "purchase_currency": "SEK",
                "order_amount": 1000, "merchant_urls": odd,
            }))
            .unwrap();
            assert!(o.merchant_urls.and_then(|u| u.checkout).is_none());
        }
        assert_eq!(
            checkout.merchant_urls.and_then(|u| u.checkout).as_deref(),
            Some("https://shop.example/c")
        );
    }

    #[test]
    fn gateway_urls_get_the_order_id_placeholder_raw() {
        assert_eq!(
            with_order_id("https://gw.example/webhooks/kustom"),
            "https://gw.example/webhooks/kustom?kustom_order_id={checkout.order.id}"
        );
        assert_eq!(
            with_order_id("https://gw.example/x?a=1"),
            "https://gw.example/x?a=1&kustom_order_id={checkout.order.id}"
        );
    }

    #[test]
    fn storefront_urls_come_from_the_body_or_the_config() {
        let default = "https://shop.example/terms".to_string();
        let body = json!({ "termsUrl": "https://shop.example/t" });
        assert_eq!(
            storefront_url(&body, "termsUrl", Some(&default)).unwrap(),
            "https://shop.example/t"
        );
        assert_eq!(
            storefront_url(&json!({}), "termsUrl", Some(&default)).unwrap(),
            default
        );
        assert!(storefront_url(&json!({}), "termsUrl", None).is_err());
        assert!(storefront_url(&json!({ "termsUrl": "/t" }), "termsUrl", None).is_err());
        assert!(storefront_url(&json!({ "termsUrl": 1 }), "termsUrl", None).is_err());
    }

    #[test]
    fn the_debug_output_hides_the_key() {
        let p = KustomProvider::from_config(
            &json!({ "api_key": "kco_test_api_hidden" }),
            "http://gw",
            &testkit::mem::services(),
        )
        .unwrap();
        assert!(!format!("{p:?}").contains("hidden"));
    }
}
