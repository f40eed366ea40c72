//! `POST /providers/kustom/validate`: Kustom asks, as the customer clicks buy, whether the
//! purchase may go ahead. Kustom posts the whole order and waits at most 3 s; without an
//! answer it approves (unless the order requires a successful validation).
//!
//! The answer: the cart named by `merchant_reference1` must exist, be open, and total
//! exactly Kustom's `order_amount` in its currency; then the merchant's own veto rule, an
//! HTTP callback given the input of Hantera's `OnKustomValidation` hook, may refuse with
//! `{error:{code,message}}`. Approve is `200`; a denial is `303 See Other` with a
//! `Location` (Kustom's documented way) or, configured, `400` with the error (Hantera's
//! app's way). The whole answer runs under a budget below 3 s, so a hanging Hantera or
//! callback yields the configured fallback in time instead of Kustom's own timeout.
//!
//! The call is not authenticated (Kustom does not sign it), so it changes nothing: it
//! only reads the cart and answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::{header, StatusCode};
use psp_core::route::{respond, respond_json};
use psp_core::{
    CartState, ProviderRoute, ProviderServices, RenderedCart, RouteHandler, RouteRequest,
    RouteResponse,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::check_order_id;
use crate::config::{absolute_http_url, DenyStyle, KustomConfig, OnError};
use crate::provider::{CHECKOUT_URL_KEY, ID, ORDER_ID_PLACEHOLDER, VALIDATE_PATH};

/// The callback's answer is read up to this size.
const MAX_CALLBACK_ANSWER: usize = 64 * 1024;
/// The least time the denial's redirect lookup gets, even when the decision used up the
/// budget (the budget stays under Kustom's 3 s by more than this).
const MIN_LOOKUP: Duration = Duration::from_millis(50);

/// What the validation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Approve,
    Deny {
        code: String,
        message: String,
    },
    /// Could not be decided (Hantera or the callback did not answer in time or sensibly).
    Undecided(String),
}

fn deny(code: &str, message: impl Into<String>) -> Decision {
    Decision::Deny {
        code: code.to_string(),
        message: message.into(),
    }
}

pub(crate) struct Validator {
    config: Arc<KustomConfig>,
    services: ProviderServices,
    http: reqwest::Client,
    public_url: String,
}

impl Validator {
    pub(crate) fn new(
        config: Arc<KustomConfig>,
        services: ProviderServices,
        public_url: &str,
    ) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.validation.budget)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // Only a broken TLS backend fails here, and the provider's own client was
            // built the same way a moment before.
            .unwrap_or_default();
        Arc::new(Self {
            config,
            services,
            http,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    async fn decide(&self, order: &Value) -> Decision {
        let Some(cart_id) = order
            .get("merchant_reference1")
            .and_then(Value::as_str)
            .and_then(|r| Uuid::parse_str(r.trim()).ok())
        else {
            return deny("unknown_cart", "the order names no cart of this shop");
        };
        let cart = match self.services.hantera.get_cart(cart_id).await {
            Ok(Some(cart)) => cart,
            Ok(None) => return deny("cart_not_found", format!("cart {cart_id} does not exist")),
            Err(e) => return Decision::Undecided(format!("Hantera: {e}")),
        };
        if cart.cart_state != CartState::Open {
            return deny(
                "cart_not_open",
                format!("cart {cart_id} is {}", cart.cart_state.as_str()),
            );
        }
        let total = match cart.total() {
            Ok(t) => t,
            Err(e) => {
                return deny(
                    "cart_not_payable",
                    format!("the cart total cannot be paid: {e}"),
                )
            }
        };
        let amount = order.get("order_amount").and_then(Value::as_i64);
        let currency = order.get("purchase_currency").and_then(Value::as_str);
        let matches = amount == Some(total.minor)
            && currency.is_some_and(|c| c.eq_ignore_ascii_case(total.currency.code()));
        if !matches {
            return deny(
                "amount_mismatch",
                format!(
                    "Kustom's order is {} {}, the cart total is {} (the cart changed; reload the checkout)",
                    amount.map_or_else(|| "?".to_string(), |a| a.to_string()),
                    currency.unwrap_or("?"),
                    total
                ),
            );
        }
        match &self.config.validation.callback_url {
            Some(url) => self.merchant_veto(url, &cart, order).await,
            None => Decision::Approve,
        }
    }

    /// Asks the merchant's rule. Its input is `OnKustomValidation`'s, plus the ids.
    async fn merchant_veto(&self, url: &str, cart: &RenderedCart, order: &Value) -> Decision {
        let lines: Vec<Value> = cart
            .items
            .iter()
            .map(|i| {
                json!({
                    "productNumber": i.product_number,
                    "description": i.description,
                    "quantity": i.quantity,
                    "reservedQuantity": Value::Null,
                    "unitPrice": number(i.unit_price),
                    "salesTotal": number(i.total),
                    "taxTotal": number(i.tax),
                })
            })
            .collect();
        let input = json!({
            "hook": "OnKustomValidation",
            "cartId": cart.cart_id,
            "kustomOrderId": order.get("order_id"),
            "channelKey": Value::Null,
            "currencyCode": cart.currency_code,
            "locale": order.get("locale"),
            "taxIncluded": true,
            "orderTotal": number(cart.order_total),
            "orderTaxTotal": number(cart.order_tax_total),
            "orderLines": lines,
        });
        let mut request = self.http.post(url).json(&input);
        if let Some(token) = &self.config.validation.callback_token {
            request = request.bearer_auth(token.expose());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Decision::Undecided(format!("the merchant callback: {e}")),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) if b.len() <= MAX_CALLBACK_ANSWER => b,
            Ok(_) => return Decision::Undecided("the merchant callback answered too much".into()),
            Err(e) => return Decision::Undecided(format!("the merchant callback: {e}")),
        };
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(error) = answer.get("error").filter(|e| e.is_object()) {
            let code = error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("approval_failed");
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("refused by the merchant");
            return deny(code, message);
        }
        if status.is_success() {
            Decision::Approve
        } else {
            Decision::Undecided(format!("the merchant callback answered {status}"))
        }
    }

    /// Where a denied customer is sent: the configured page, else the checkout URL the
    /// storefront gave when it created the session of the order, else the configured
    /// checkout URL, else the gateway's root; with the reason in `kustom_error`.
    ///
    /// The body is unauthenticated, so its `merchant_urls` are never followed: anyone
    /// could post an order naming their own page and use the gateway's domain as an open
    /// redirect. The body only names the order whose stored session is looked up.
    async fn deny_location(&self, order: &Value, code: &str, deadline: Instant) -> String {
        let base = match &self.config.validation.deny_url {
            Some(url) => Some(url.clone()),
            None => match tokio::time::timeout_at(deadline.into(), self.stored_checkout_url(order))
                .await
            {
                Ok(url) => url,
                Err(_) => {
                    tracing::warn!("the session's checkout URL was not found in time");
                    None
                }
            },
        }
        .or_else(|| self.config.checkout_url.clone())
        .unwrap_or_else(|| format!("{}/", self.public_url));
        match reqwest::Url::parse(&base) {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair("kustom_error", code);
                url.to_string()
            }
            Err(_) => format!("{}/", self.public_url),
        }
    }

    /// The checkout URL stored with the session of the order the body names, with
    /// Kustom's placeholder replaced by the order id.
    async fn stored_checkout_url(&self, order: &Value) -> Option<String> {
        let order_id = order.get("order_id").and_then(Value::as_str)?;
        check_order_id(order_id).ok()?;
        let session = match self.services.store.session_by_ref(ID, order_id).await {
            Ok(s) => s?,
            Err(e) => {
                tracing::warn!(error = %e, "looking up the session of a validation failed");
                return None;
            }
        };
        let url = session.client.as_ref()?.get(CHECKOUT_URL_KEY)?.as_str()?;
        let url = url.replace(ORDER_ID_PLACEHOLDER, order_id);
        absolute_http_url(&url).then_some(url)
    }

    async fn respond(&self, order: &Value, decision: Decision, deadline: Instant) -> RouteResponse {
        match decision {
            Decision::Approve => respond(StatusCode::OK, &[], ""),
            Decision::Deny { code, message } => {
                let body = json!({ "error": { "code": code, "message": message } });
                match self.config.validation.deny {
                    DenyStyle::Redirect => {
                        let location = self.deny_location(order, &code, deadline).await;
                        respond_json(
                            StatusCode::SEE_OTHER,
                            &[(header::LOCATION, &location)],
                            &body,
                        )
                    }
                    DenyStyle::Status400 => respond_json(StatusCode::BAD_REQUEST, &[], &body),
                }
            }
            // Resolved by the policy before answering; approving is Kustom's own default.
            Decision::Undecided(_) => respond(StatusCode::OK, &[], ""),
        }
    }
}

/// A decimal as a JSON number with exactly its digits (Hantera's hooks carry amounts as
/// numbers).
fn number(d: Decimal) -> Value {
    serde_json::from_str(&d.to_string()).unwrap_or(Value::Null)
}

/// The validation callback's route.
pub(crate) fn route(validator: Arc<Validator>) -> ProviderRoute {
    ProviderRoute::post(VALIDATE_PATH, validator)
}

#[async_trait]
impl RouteHandler for Validator {
    async fn handle(&self, request: RouteRequest) -> RouteResponse {
        handle(self, request.body()).await
    }
}

async fn handle(v: &Validator, body: &[u8]) -> RouteResponse {
    let started = Instant::now();
    let Ok(order) = serde_json::from_slice::<Value>(body) else {
        return respond_json(
            StatusCode::BAD_REQUEST,
            &[],
            &json!({ "error": { "code": "invalid_order", "message": "the body is not a Kustom order" } }),
        );
    };
    let budget = v.config.validation.budget;
    let decision = match tokio::time::timeout(budget, v.decide(&order)).await {
        Ok(d) => d,
        Err(_) => Decision::Undecided(format!("no decision within {budget:?}")),
    };
    let decision = match decision {
        Decision::Undecided(why) => {
            tracing::warn!(reason = %why, policy = ?v.config.validation.on_error, "Kustom validation undecided");
            match v.config.validation.on_error {
                OnError::Approve => Decision::Approve,
                OnError::Deny => deny(
                    "validation_unavailable",
                    "the order could not be checked now; try again",
                ),
            }
        }
        d => d,
    };
    let order_id = order.get("order_id").and_then(Value::as_str).unwrap_or("?");
    match &decision {
        Decision::Approve => tracing::info!(
            order_id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Kustom validation approved"
        ),
        Decision::Deny { code, message } => tracing::info!(
            order_id,
            code,
            message,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Kustom validation denied"
        ),
        Decision::Undecided(_) => {}
    }
    // The location's lookup gets what is left of the budget, and at least a moment: the
    // answer must still reach Kustom within its 3 s.
    let deadline = (started + budget).max(Instant::now() + MIN_LOOKUP);
    v.respond(&order, decision, deadline).await
}
