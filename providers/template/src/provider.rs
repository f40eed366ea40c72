//! The adapter: how the gateway talks to the PSP, over HTTP only.
//!
//! Config table (`[providers.template]`):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `webhook_secrets` | required | the secrets webhooks may be signed with (several during a rotation) |
//! | `api_key` | the sandbox key | the PSP API key |
//! | `api_base` | `<public_url>/fakes/template` | where the PSP's API is (the fake the gateway mounts) |
//! | `payment_number_prefix` | the id in capitals and `-` | the prefix of Hantera payment numbers |

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use psp_core::signature::DEFAULT_TOLERANCE;
use psp_core::{
    Capabilities, CaptureDone, CaptureRequest, CheckoutRequest, CheckoutSession, Currency,
    EventKind, Money, ParsedEvent, Provider, ProviderContext, ProviderError, PspPayment, PspStatus,
    Secret, SignatureVerifier, VerifiedEvent, WebhookDelivery, WebhookError,
};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The provider id: the `{provider}` URL segment and Hantera's `providerKey`.
pub const ID: &str = "template";
/// The header carrying the webhook signature, `t=<unix>,v1=<hex>` (the core scheme).
pub const SIGNATURE_HEADER: &str = "template-signature";
/// The API key of the fake in the sandbox. Public on purpose: no real money goes through it.
pub const SANDBOX_API_KEY: &str = "template_sk_sandbox";

const KNOWN_KEYS: &[&str] = &[
    "webhook_secrets",
    "api_key",
    "api_base",
    "payment_number_prefix",
];

fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(Adapter::from_config(ctx.config, ctx.public_url)?))
}

psp_core::inventory::submit! {
    // `test_only: true` only for a provider anyone can pay with (like the mock).
    psp_core::ProviderRegistration { id: ID, build, test_only: false }
}

/// The adapter.
#[derive(Debug)]
pub struct Adapter {
    api_key: Secret,
    api_base: String,
    prefix: String,
    verifier: SignatureVerifier,
    http: reqwest::Client,
}

/// A payment as the PSP's API returns it (only what the adapter reads).
#[derive(Debug, Deserialize)]
struct PaymentWire {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    cart_id: Option<String>,
    #[serde(default)]
    redirect_url: Option<String>,
}

/// The PSP's error answer, read leniently: an odd message must not lose the code.
#[derive(Debug, Default, Deserialize)]
struct ErrorWire {
    #[serde(default, deserialize_with = "psp_core::lenient::string")]
    code: String,
    #[serde(default, deserialize_with = "psp_core::lenient::string")]
    message: String,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorWire,
}

fn config_error(message: impl Into<String>) -> ProviderError {
    ProviderError::Config(format!("[providers.{ID}]: {}", message.into()))
}

/// An answer that is not what the PSP sends is ambiguous, not a refusal: a retry with the
/// same idempotency key finds out safely.
fn protocol_error(message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transient(format!("unexpected answer from {ID}: {message}"))
}

/// A text value of the table, never echoed in an error (it may be a secret).
fn text(table: &Map<String, Value>, key: &str) -> Result<Option<String>, ProviderError> {
    match table.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(config_error(format!("{key} must be a string"))),
    }
}

/// A PSP id goes into URL paths: anything but id characters is refused before a request.
fn check_ref(psp_ref: &str) -> Result<(), ProviderError> {
    let ok = !psp_ref.is_empty()
        && psp_ref.len() <= 128
        && psp_ref
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ProviderError::NotFound(format!(
            "{psp_ref:?} is not a payment id"
        )))
    }
}

impl Adapter {
    /// Builds the adapter from its config table and the gateway's public URL. Without a
    /// webhook secret it refuses to start: a missing secret is how forged webhooks get in.
    pub fn from_config(config: &Value, public_url: &str) -> Result<Self, ProviderError> {
        let empty = Map::new();
        let table = match config {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return Err(config_error("the provider's configuration must be a table")),
        };
        if let Some(unknown) = table.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(config_error(format!(
                "unknown key {unknown:?} (known keys: {})",
                KNOWN_KEYS.join(", ")
            )));
        }
        let secrets: Vec<Secret> = match table.get("webhook_secrets") {
            Some(Value::String(s)) => vec![Secret::new(s.clone())],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(Secret::new))
                .collect::<Option<_>>()
                .ok_or_else(|| config_error("webhook_secrets must be a list of strings"))?,
            _ => return Err(config_error("webhook_secrets is missing")),
        };
        if secrets.is_empty() || secrets.iter().any(Secret::is_empty) {
            return Err(config_error(
                "webhook_secrets is empty or has an empty secret",
            ));
        }
        let api_key =
            Secret::new(text(table, "api_key")?.unwrap_or_else(|| SANDBOX_API_KEY.into()));
        let api_base = text(table, "api_base")?
            .unwrap_or_else(|| format!("{}/fakes/{ID}", public_url.trim_end_matches('/')))
            .trim_end_matches('/')
            .to_string();
        let absolute = reqwest::Url::parse(&api_base)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !absolute {
            // The value is not repeated: a URL may carry credentials.
            return Err(config_error("api_base is not an absolute http(s) URL"));
        }
        let prefix = text(table, "payment_number_prefix")?
            .unwrap_or_else(|| format!("{}-", ID.to_uppercase()));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            // The API never redirects; following one would turn a POST into a GET.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config_error(format!("HTTP client: {e}")))?;
        Ok(Self {
            api_key,
            api_base,
            prefix,
            verifier: SignatureVerifier::new(&secrets, DEFAULT_TOLERANCE),
            http,
        })
    }

    /// Calls the PSP. No answer (a timeout, a reset, a cut answer) and a 5xx may have
    /// acted, so they are `Transient` and retried with the same key; a 4xx is definite.
    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> Result<PaymentWire, ProviderError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api_base))
            .bearer_auth(self.api_key.expose());
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::Transient(format!("{ID}: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Transient(format!("{ID}: reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(protocol_error);
        }
        let error = serde_json::from_slice::<ErrorEnvelope>(&bytes)
            .map(|e| e.error)
            .unwrap_or_default();
        Err(match status {
            _ if status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT =>
            {
                ProviderError::Transient(format!("{ID} answered {status}: {}", error.code))
            }
            StatusCode::NOT_FOUND => ProviderError::NotFound(error.message),
            _ => ProviderError::Rejected {
                code: error.code,
                message: error.message,
            },
        })
    }
}

fn money(minor: i64, currency: &str) -> Result<Money, ProviderError> {
    Ok(Money::from_minor(
        minor,
        Currency::from_code(currency).map_err(protocol_error)?,
    ))
}

/// Every status of the PSP, in the core's terms; a terminal one is `Failed` or `Canceled`.
fn status_of(p: &PaymentWire) -> Result<PspStatus, ProviderError> {
    Ok(match p.status.as_str() {
        "pending" => PspStatus::Pending,
        "authorized" => PspStatus::Authorized {
            amount: money(p.amount, &p.currency)?,
        },
        "captured" => PspStatus::Captured {
            amount: money(p.amount, &p.currency)?,
        },
        "failed" => PspStatus::Failed {
            reason: "declined".into(),
        },
        "voided" => PspStatus::Canceled,
        other => return Err(protocol_error(format!("unknown status {other:?}"))),
    })
}

/// A verified event body. A type the gateway does not act on is `Other`, never an error.
fn parse_event(bytes: &[u8]) -> Result<ParsedEvent, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let field = |pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("the event has no {pointer}"))
    };
    let event_type = field("/type")?;
    let kind = match event_type.as_str() {
        "payment.authorized" => EventKind::Authorized {
            psp_ref: field("/payment/id")?,
        },
        "payment.failed" => EventKind::Failed {
            psp_ref: field("/payment/id")?,
        },
        "payment.voided" => EventKind::Canceled {
            psp_ref: field("/payment/id")?,
        },
        _ => EventKind::Other,
    };
    Ok(ParsedEvent {
        event_id: field("/id")?,
        event_type,
        kind,
    })
}

#[async_trait]
impl Provider for Adapter {
    fn id(&self) -> &'static str {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            capture: true,
            partial_capture: false,
            void: true,
            update_amount: false,
            signed_webhooks: true,
        }
    }

    fn payment_number_prefix(&self) -> &str {
        &self.prefix
    }

    async fn checkout(&self, req: CheckoutRequest<'_>) -> Result<CheckoutSession, ProviderError> {
        if let Some(existing) = req.existing {
            if existing.amount == req.amount {
                return Ok(CheckoutSession {
                    psp_ref: existing.psp_ref.clone(),
                    amount: existing.amount,
                    client: existing.client.clone(),
                });
            }
            // This PSP cannot change an amount: the storefront starts over with a new cart.
            return Err(ProviderError::Locked(
                "the session's amount cannot change".into(),
            ));
        }
        let return_url = req.body.get("returnUrl").and_then(Value::as_str);
        let body = json!({
            "amount": req.amount.minor,
            "currency": req.amount.currency.code(),
            "cart_id": req.cart.cart_id.to_string(),
            "webhook_url": req.webhook_url,
            "return_url": return_url,
        });
        let p = self
            .call(
                Method::POST,
                "/v1/payments",
                Some(req.idempotency_key),
                Some(body),
            )
            .await?;
        let redirect = p
            .redirect_url
            .clone()
            .ok_or_else(|| protocol_error("the payment has no redirect_url"))?;
        Ok(CheckoutSession {
            amount: money(p.amount, &p.currency)?,
            client: json!({ "redirectUrl": redirect, "paymentId": p.id }),
            psp_ref: p.id,
        })
    }

    async fn verify_webhook(
        &self,
        delivery: &WebhookDelivery<'_>,
    ) -> Result<VerifiedEvent, WebhookError> {
        let header = delivery
            .headers
            .get(SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap_or(""));
        let body = self.verifier.verify(header, delivery.body, delivery.now)?;
        VerifiedEvent::parse(body, parse_event)
    }

    async fn fetch(&self, psp_ref: &str) -> Result<PspPayment, ProviderError> {
        check_ref(psp_ref)?;
        let p = self
            .call(Method::GET, &format!("/v1/payments/{psp_ref}"), None, None)
            .await?;
        Ok(PspPayment {
            status: status_of(&p)?,
            cart_id: p.cart_id.as_deref().and_then(|c| c.parse().ok()),
            psp_ref: p.id,
        })
    }

    async fn capture(&self, req: CaptureRequest<'_>) -> Result<CaptureDone, ProviderError> {
        check_ref(req.psp_ref)?;
        let p = self
            .call(
                Method::POST,
                &format!("/v1/payments/{}/capture", req.psp_ref),
                Some(req.idempotency_key),
                Some(json!({ "amount": req.amount.minor })),
            )
            .await?;
        // One capture per payment here, so the payment id names it.
        Ok(CaptureDone {
            psp_capture_id: p.id,
        })
    }

    async fn void(&self, psp_ref: &str, idempotency_key: &str) -> Result<(), ProviderError> {
        check_ref(psp_ref)?;
        self.call(
            Method::POST,
            &format!("/v1/payments/{psp_ref}/void"),
            Some(idempotency_key),
            Some(json!({})),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_without_webhook_secrets_is_refused_and_no_value_is_shown() {
        let err = Adapter::from_config(&json!({ "api_key": "k_secret" }), "http://gw").unwrap_err();
        assert!(err.to_string().contains("webhook_secrets"), "{err}");
        let err = Adapter::from_config(
            &json!({ "webhook_secrets": ["s"], "api_base": "ftp://user:pw@x" }),
            "http://gw",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn events_the_gateway_does_not_use_are_other() {
        let e =
            parse_event(br#"{"id":"e1","type":"payment.created","payment":{"id":"p1"}}"#).unwrap();
        assert_eq!(e.kind, EventKind::Other);
        let e = parse_event(br#"{"id":"e2","type":"payment.authorized","payment":{"id":"p1"}}"#)
            .unwrap();
        assert_eq!(
            e.kind,
            EventKind::Authorized {
                psp_ref: "p1".into()
            }
        );
    }
}
