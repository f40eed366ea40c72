//! The adapter: how the gateway talks to the mock PSP, over HTTP only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use psp_core::signature::DEFAULT_TOLERANCE;
use psp_core::{
    Capabilities, CaptureDone, CaptureRequest, CheckoutRequest, CheckoutSession, Currency,
    EventKind, ExistingSession, Money, ParsedEvent, Provider, ProviderContext, ProviderError,
    PspPayment, PspStatus, Secret, SignatureVerifier, SyncRequest, VerifiedEvent, WebhookDelivery,
    WebhookError,
};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

/// The provider id: the `{provider}` URL segment and Hantera's `providerKey`.
pub const ID: &str = "mock";
/// The header carrying the webhook signature, `t=<unix>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "Mock-Signature";
/// Where the gateway mounts this provider's fake (`psp-gateway sandbox`, and the embedded
/// default, which then points `api_base` there).
pub const FAKE_PATH: &str = "/fakes/mock";

/// The API key of the fake when the table names none (the sandbox's).
pub(crate) const DEFAULT_API_KEY: &str = "mock_sk_test";
const DEFAULT_PREFIX: &str = "MOCK-";
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const KNOWN_KEYS: &[&str] = &[
    "webhook_secret",
    "webhook_secrets",
    "api_key",
    "api_base",
    "payment_number_prefix",
    "timeout_ms",
];

fn build(ctx: &ProviderContext<'_>) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(MockProvider::from_context(ctx)?))
}

psp_core::inventory::submit! {
    // Anyone can approve a payment with the public test card, so the registry refuses the mock
    // next to a real Hantera unless its table allows it explicitly.
    psp_core::ProviderRegistration { id: ID, build, test_only: true }
}

/// The mock provider's adapter.
///
/// Config table (`[providers.mock]`):
///
/// | key | default | meaning |
/// |---|---|---|
/// | `webhook_secret` | required | the secret webhooks are signed with |
/// | `webhook_secrets` | `[]` | more secrets accepted during a rotation |
/// | `api_key` | `mock_sk_test` | the PSP API key |
/// | `api_base` | `<public_url>/fakes/mock` | where the PSP's API is (the fake the gateway mounts) |
/// | `payment_number_prefix` | `MOCK-` | the prefix of Hantera payment numbers |
/// | `timeout_ms` | `10000` | total time allowed for one PSP call |
#[derive(Debug)]
pub struct MockProvider {
    api_key: Secret,
    api_base: String,
    prefix: String,
    verifier: SignatureVerifier,
    http: reqwest::Client,
}

/// A successful answer from the PSP.
struct Answer {
    body: Bytes,
    /// The PSP replayed a saved answer for the idempotency key instead of acting.
    replayed: bool,
}

#[derive(Debug, Deserialize)]
struct PaymentWire {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    cart_id: Option<String>,
    #[serde(default)]
    hosted_url: Option<String>,
    #[serde(default)]
    authorized_amount: i64,
    /// Only describes a failure, so read leniently.
    #[serde(default, deserialize_with = "psp_core::lenient::text")]
    failure_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CaptureWire {
    id: String,
}

/// Read leniently: an odd message must not lose the code that classifies the error.
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

/// An answer that is not what the PSP sends. It is treated as ambiguous, not as a refusal:
/// a garbled answer to a capture may hide a capture that happened, and a retry with the
/// same idempotency key finds out safely.
fn protocol_error(message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transient(format!("unexpected answer from the mock PSP: {message}"))
}

/// Reads a string value without ever echoing it, because it may be a secret.
fn string_value(
    table: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ProviderError> {
    match table.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(config_error(format!("{key} must be a string"))),
    }
}

fn absolute_http_url(value: &str) -> bool {
    reqwest::Url::parse(value)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// A PSP id is put into URL paths; anything but the characters of `mpay_…` ids is refused
/// before a request is made, so a forged reference cannot reach another path.
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
            "{psp_ref:?} is not a mock payment id"
        )))
    }
}

impl MockProvider {
    /// Builds the adapter from the registry's context.
    pub fn from_context(ctx: &ProviderContext<'_>) -> Result<Self, ProviderError> {
        Self::from_config(ctx.config, ctx.public_url)
    }

    /// Builds the adapter from its config table and the gateway's public URL. A missing or
    /// empty `webhook_secret` is refused, so that the gateway does not start with a
    /// provider that would accept unsigned webhooks or reject every signed one.
    pub fn from_config(config: &Value, public_url: &str) -> Result<Self, ProviderError> {
        let empty = serde_json::Map::new();
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

        let primary = string_value(table, "webhook_secret")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| config_error("webhook_secret is missing or empty"))?;
        let mut secrets = vec![Secret::new(primary)];
        match table.get("webhook_secrets") {
            None | Some(Value::Null) => {}
            // A single string is accepted too, because an environment override of a list
            // is easiest written as one value.
            Some(Value::String(s)) => secrets.push(Secret::new(s.clone())),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => secrets.push(Secret::new(s.clone())),
                        _ => return Err(config_error("webhook_secrets must be a list of strings")),
                    }
                }
            }
            Some(_) => return Err(config_error("webhook_secrets must be a list of strings")),
        }
        if secrets.iter().any(Secret::is_empty) {
            return Err(config_error("webhook_secrets contains an empty secret"));
        }

        let api_key = Secret::new(
            string_value(table, "api_key")?.unwrap_or_else(|| DEFAULT_API_KEY.to_string()),
        );
        if api_key.is_empty() {
            return Err(config_error("api_key is empty"));
        }

        let public_url = public_url.trim_end_matches('/');
        let api_base = string_value(table, "api_base")?
            .unwrap_or_else(|| format!("{public_url}{FAKE_PATH}"))
            .trim_end_matches('/')
            .to_string();
        if !absolute_http_url(&api_base) {
            // The value is not repeated: a URL may carry credentials.
            return Err(config_error("api_base is not an absolute http(s) URL"));
        }

        let prefix = string_value(table, "payment_number_prefix")?
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        if prefix.trim().is_empty() {
            return Err(config_error("payment_number_prefix is empty"));
        }

        let timeout_ms = match table.get("timeout_ms") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT_MS,
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| config_error("timeout_ms must be a positive integer"))?,
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| config_error("timeout_ms must be a positive integer"))?,
            Some(_) => return Err(config_error("timeout_ms must be a positive integer")),
        };
        if timeout_ms == 0 {
            return Err(config_error("timeout_ms must be a positive integer"));
        }

        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(Duration::from_millis(timeout_ms))
            .user_agent(concat!("psp-gateway-mock/", env!("CARGO_PKG_VERSION")))
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

    /// Where the PSP's API is, without a trailing slash.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer, ProviderError> {
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
        // No answer, a timeout, a reset, or an answer cut off halfway: the call may have
        // acted, so the caller retries with the same key.
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::Transient(format!("mock PSP: {e}")))?;
        let status = response.status();
        let replayed = response
            .headers()
            .get("Idempotent-Replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Transient(format!("mock PSP: reading the answer: {e}")))?;
        if status.is_success() {
            Ok(Answer { body, replayed })
        } else {
            Err(map_error(status, &body))
        }
    }

    async fn get_payment(&self, psp_ref: &str) -> Result<PaymentWire, ProviderError> {
        check_ref(psp_ref)?;
        let answer = self
            .call(Method::GET, &format!("/v1/payments/{psp_ref}"), None, None)
            .await?;
        parse_payment(&answer.body)
    }

    /// Changes the amount of an open session.
    async fn update_amount(
        &self,
        existing: &ExistingSession,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, ProviderError> {
        let key = format!("{idempotency_key}:amount:{}", amount.minor);
        session(self.set_amount(&existing.psp_ref, amount, &key).await?)
    }

    /// Sets the amount of a pending payment under `key` and returns the payment as the PSP
    /// holds it afterwards.
    async fn set_amount(
        &self,
        psp_ref: &str,
        amount: Money,
        key: &str,
    ) -> Result<PaymentWire, ProviderError> {
        check_ref(psp_ref)?;
        let path = format!("/v1/payments/{psp_ref}");
        let body = json!({ "amount": amount.minor });
        let answer = self
            .call(Method::POST, &path, Some(key), Some(body.clone()))
            .await?;
        if !answer.replayed {
            return parse_payment(&answer.body);
        }
        // A replay is either our own earlier attempt (fine) or an older change to this same
        // amount under the same key, made before the cart moved away and back (A→B→A→B
        // reuses "…:amount:B"). The replayed answer then says B while the PSP holds
        // something else, so the payment is read back to tell the two apart.
        let current = self.get_payment(psp_ref).await?;
        if current.amount == amount.minor {
            return Ok(current);
        }
        if current.status != "pending" {
            return Err(ProviderError::Locked(format!(
                "payment is {}; its amount can no longer change",
                current.status
            )));
        }
        // Setting an amount is idempotent by nature, so a fresh key cannot do harm here.
        let fresh = format!("{key}:{}", uuid::Uuid::new_v4().simple());
        let answer = self
            .call(Method::POST, &path, Some(&fresh), Some(body))
            .await?;
        parse_payment(&answer.body)
    }
}

/// Maps a PSP error answer: a 5xx (or 408/429) may have acted and is retried; 404 is
/// `NotFound`; a locked session is `Locked`; any other 4xx is a definite refusal.
fn map_error(status: StatusCode, body: &[u8]) -> ProviderError {
    let wire = serde_json::from_slice::<ErrorEnvelope>(body)
        .map(|e| e.error)
        .unwrap_or_default();
    let code = if wire.code.is_empty() {
        format!("http_{}", status.as_u16())
    } else {
        wire.code
    };
    let message = if wire.message.is_empty() {
        String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
    } else {
        wire.message
    };
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || !status.is_client_error()
    {
        ProviderError::Transient(format!("mock PSP answered {status}: {code}: {message}"))
    } else if status == StatusCode::NOT_FOUND {
        ProviderError::NotFound(format!("{code}: {message}"))
    } else if status == StatusCode::CONFLICT && code == "payment_locked" {
        ProviderError::Locked(message)
    } else {
        ProviderError::Rejected { code, message }
    }
}

fn parse_payment(body: &[u8]) -> Result<PaymentWire, ProviderError> {
    serde_json::from_slice(body).map_err(protocol_error)
}

fn money(minor: i64, currency: &str) -> Result<Money, ProviderError> {
    let currency = Currency::from_code(currency).map_err(protocol_error)?;
    Ok(Money::from_minor(minor, currency))
}

fn session(p: PaymentWire) -> Result<CheckoutSession, ProviderError> {
    let hosted_url = p
        .hosted_url
        .ok_or_else(|| protocol_error("the payment has no hosted_url"))?;
    Ok(CheckoutSession {
        amount: money(p.amount, &p.currency)?,
        client: json!({ "redirectUrl": hosted_url, "paymentId": p.id }),
        psp_ref: p.id,
    })
}

fn status_of(p: &PaymentWire) -> Result<PspStatus, ProviderError> {
    Ok(match p.status.as_str() {
        "pending" => PspStatus::Pending,
        "authorized" => PspStatus::Authorized {
            amount: money(p.authorized_amount, &p.currency)?,
        },
        "captured" => PspStatus::Captured {
            amount: money(p.authorized_amount, &p.currency)?,
        },
        "failed" => PspStatus::Failed {
            reason: p
                .failure_reason
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
        },
        "voided" => PspStatus::Canceled,
        other => return Err(protocol_error(format!("unknown payment status {other:?}"))),
    })
}

/// The storefront's optional `returnUrl`, which must be absolute http(s) because the PSP
/// redirects the customer's browser to it.
fn return_url(body: &Value) -> Result<Option<String>, ProviderError> {
    match body.get("returnUrl") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) if absolute_http_url(url) => Ok(Some(url.clone())),
        Some(_) => Err(ProviderError::BadRequest(
            "returnUrl must be an absolute http(s) URL".to_string(),
        )),
    }
}

/// Parses a verified event body. Types the gateway does not act on become
/// [`EventKind::Other`], never an error, so the PSP is not told to resend them.
fn parse_event(bytes: &[u8]) -> Result<ParsedEvent, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let event_id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or("the event has no id")?
        .to_string();
    let event_type = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the event has no type")?
        .to_string();
    let psp_ref = || {
        v.pointer("/data/object/id")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("{event_type} event has no data.object.id"))
    };
    let kind = match event_type.as_str() {
        "payment.authorized" => EventKind::Authorized {
            psp_ref: psp_ref()?,
        },
        "payment.failed" => EventKind::Failed {
            psp_ref: psp_ref()?,
        },
        "payment.voided" => EventKind::Canceled {
            psp_ref: psp_ref()?,
        },
        _ => EventKind::Other,
    };
    Ok(ParsedEvent {
        event_id,
        event_type,
        kind,
    })
}

#[async_trait]
impl Provider for MockProvider {
    fn id(&self) -> &'static str {
        ID
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
            if existing.amount.currency != req.amount.currency {
                // The API can change an amount but not a currency.
                return Err(ProviderError::Locked(format!(
                    "the session is in {}, the cart is now in {}",
                    existing.amount.currency, req.amount.currency
                )));
            }
            return self
                .update_amount(existing, req.amount, req.idempotency_key)
                .await;
        }
        let mut body = json!({
            "amount": req.amount.minor,
            "currency": req.amount.currency.code(),
            "cart_id": req.cart.cart_id.to_string(),
            "webhook_url": req.webhook_url,
        });
        if let Some(url) = return_url(req.body)? {
            body["return_url"] = Value::String(url);
        }
        let answer = self
            .call(
                Method::POST,
                "/v1/payments",
                Some(req.idempotency_key),
                Some(body),
            )
            .await?;
        session(parse_payment(&answer.body)?)
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
        VerifiedEvent::parse(body, parse_event)
    }

    async fn fetch(&self, psp_ref: &str) -> Result<PspPayment, ProviderError> {
        let p = self.get_payment(psp_ref).await?;
        Ok(PspPayment {
            status: status_of(&p)?,
            cart_id: p
                .cart_id
                .as_deref()
                .and_then(|c| uuid::Uuid::parse_str(c).ok()),
            psp_ref: p.id,
        })
    }

    async fn capture(&self, req: CaptureRequest<'_>) -> Result<CaptureDone, ProviderError> {
        check_ref(req.psp_ref)?;
        let answer = self
            .call(
                Method::POST,
                &format!("/v1/payments/{}/captures", req.psp_ref),
                Some(req.idempotency_key),
                Some(json!({ "amount": req.amount.minor })),
            )
            .await?;
        let capture: CaptureWire = serde_json::from_slice(&answer.body).map_err(protocol_error)?;
        Ok(CaptureDone {
            psp_capture_id: capture.id,
        })
    }

    /// Brings a pending payment's amount in step with the cart. The mock PSP holds only an
    /// amount and a currency, which cannot change; an authorized payment answers
    /// `payment_locked`, which becomes [`ProviderError::Locked`].
    async fn sync(&self, req: SyncRequest<'_>) -> Result<(), ProviderError> {
        let current = self.get_payment(req.psp_ref).await?;
        if current.currency != req.amount.currency.code() {
            return Err(ProviderError::Locked(format!(
                "the payment is in {}, the cart is now in {}",
                current.currency,
                req.amount.currency.code()
            )));
        }
        if current.amount == req.amount.minor {
            return Ok(());
        }
        self.set_amount(req.psp_ref, req.amount, req.idempotency_key)
            .await
            .map(drop)
    }

    async fn void(&self, psp_ref: &str, idempotency_key: &str) -> Result<(), ProviderError> {
        check_ref(psp_ref)?;
        let result = self
            .call(
                Method::POST,
                &format!("/v1/payments/{psp_ref}/void"),
                Some(idempotency_key),
                Some(json!({})),
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            // A payment that is already voided (by an earlier attempt under another key)
            // is the outcome wanted, so it is not reported as a refusal.
            Err(ProviderError::Rejected { code, message }) if code == "invalid_state" => {
                match self.get_payment(psp_ref).await {
                    Ok(p) if p.status == "voided" => Ok(()),
                    _ => Err(ProviderError::Rejected { code, message }),
                }
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(config: Value) -> Result<MockProvider, ProviderError> {
        MockProvider::from_config(&config, "http://127.0.0.1:8080/")
    }

    #[test]
    fn defaults_fill_everything_but_the_webhook_secret() {
        let p = provider(json!({ "webhook_secret": "whsec_x" })).unwrap();
        assert_eq!(p.api_base(), "http://127.0.0.1:8080/fakes/mock");
        assert_eq!(p.payment_number_prefix(), "MOCK-");
        assert_eq!(p.api_key.expose(), "mock_sk_test");
    }

    #[test]
    fn an_explicit_api_base_is_used_as_given() {
        let p = provider(json!({
            "webhook_secret": "whsec_x",
            "api_base": "http://psp.example/",
            "payment_number_prefix": "M-",
            "timeout_ms": "500",
        }))
        .unwrap();
        assert_eq!(p.api_base(), "http://psp.example");
        assert_eq!(p.payment_number_prefix(), "M-");
    }

    #[test]
    fn a_missing_or_empty_webhook_secret_is_a_config_error() {
        for config in [json!({}), json!({ "webhook_secret": "  " }), Value::Null] {
            let err = provider(config).unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{err}");
            assert!(err.to_string().contains("webhook_secret"), "{err}");
        }
    }

    #[test]
    fn bad_values_are_config_errors_that_never_echo_secrets() {
        let cases = [
            json!({ "webhook_secret": "whsec_x", "webhook_secrets": [1] }),
            json!({ "webhook_secret": "whsec_x", "webhook_secrets": [""] }),
            json!({ "webhook_secret": "whsec_x", "api_base": "/relative" }),
            json!({ "webhook_secret": "whsec_x", "timeout_ms": 0 }),
            json!({ "webhook_secret": "whsec_x", "webhook_secert": "whsec_typo" }),
            json!({ "webhook_secret": "whsec_x", "api_key": "" }),
        ];
        for config in cases {
            let err = provider(config.clone()).unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{config}: {err}");
            assert!(!err.to_string().contains("whsec_x"), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let p =
            provider(json!({ "webhook_secret": "whsec_hidden", "api_key": "sk_hidden" })).unwrap();
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("whsec_hidden") && !debug.contains("sk_hidden"),
            "{debug}"
        );
    }

    #[test]
    fn error_answers_map_to_retry_or_refusal() {
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        assert!(map_error(
            StatusCode::SERVICE_UNAVAILABLE,
            body("unavailable").as_bytes()
        )
        .is_transient());
        assert!(map_error(StatusCode::TOO_MANY_REQUESTS, b"").is_transient());
        assert!(matches!(
            map_error(StatusCode::NOT_FOUND, body("not_found").as_bytes()),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            map_error(StatusCode::CONFLICT, body("payment_locked").as_bytes()),
            ProviderError::Locked(_)
        ));
        match map_error(StatusCode::BAD_REQUEST, body("amount_too_large").as_bytes()) {
            ProviderError::Rejected { code, .. } => assert_eq!(code, "amount_too_large"),
            other => panic!("{other:?}"),
        }
        match map_error(StatusCode::FORBIDDEN, b"<html>") {
            ProviderError::Rejected { code, message } => {
                assert_eq!(code, "http_403");
                assert_eq!(message, "<html>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn odd_descriptive_fields_in_psp_answers_lose_nothing_the_gateway_acts_on() {
        // An error whose message is not text keeps its code (here: the lock).
        assert!(matches!(
            map_error(
                StatusCode::CONFLICT,
                br#"{"error":{"code":"payment_locked","message":null,"details":[1]}}"#
            ),
            ProviderError::Locked(_)
        ));
        // A payment whose failure reason is not text is still read, and still failed.
        let p = parse_payment(
            br#"{"id":"mpay_1","status":"failed","amount":1000,"currency":"SEK",
                 "failure_reason":{"code":"card_declined"},"new_field":[{}]}"#,
        )
        .unwrap();
        assert!(matches!(status_of(&p).unwrap(), PspStatus::Failed { .. }));
        // What the gateway acts on is still checked.
        assert!(parse_payment(
            br#"{"id":"mpay_1","status":"failed","amount":"1000","currency":"SEK"}"#
        )
        .is_err());
    }

    #[test]
    fn statuses_map_to_the_core_states() {
        let wire = |status: &str| PaymentWire {
            id: "mpay_1".into(),
            status: status.into(),
            amount: 1000,
            currency: "SEK".into(),
            cart_id: None,
            hosted_url: None,
            authorized_amount: 900,
            failure_reason: Some("card_declined".into()),
        };
        let sek = Currency::from_code("SEK").unwrap();
        assert_eq!(status_of(&wire("pending")).unwrap(), PspStatus::Pending);
        assert_eq!(
            status_of(&wire("authorized")).unwrap(),
            PspStatus::Authorized {
                amount: Money::from_minor(900, sek)
            }
        );
        assert_eq!(
            status_of(&wire("captured")).unwrap(),
            PspStatus::Captured {
                amount: Money::from_minor(900, sek)
            }
        );
        assert_eq!(
            status_of(&wire("failed")).unwrap(),
            PspStatus::Failed {
                reason: "card_declined".into()
            }
        );
        assert_eq!(status_of(&wire("voided")).unwrap(), PspStatus::Canceled);
        assert!(status_of(&wire("exploded")).unwrap_err().is_transient());
    }

    #[test]
    fn events_map_by_type_and_unknown_types_are_other() {
        let event = |t: &str| {
            format!(
                r#"{{"id":"mevt_1","object":"event","type":"{t}","data":{{"object":{{"id":"mpay_1"}}}}}}"#
            )
        };
        let kind = |t: &str| parse_event(event(t).as_bytes()).unwrap().kind;
        assert_eq!(
            kind("payment.authorized"),
            EventKind::Authorized {
                psp_ref: "mpay_1".into()
            }
        );
        assert_eq!(
            kind("payment.failed"),
            EventKind::Failed {
                psp_ref: "mpay_1".into()
            }
        );
        assert_eq!(
            kind("payment.voided"),
            EventKind::Canceled {
                psp_ref: "mpay_1".into()
            }
        );
        assert_eq!(kind("payment.captured"), EventKind::Other);
        assert!(parse_event(br#"{"type":"payment.failed"}"#).is_err());
        assert!(parse_event(br#"{"id":"e","type":"payment.failed","data":{}}"#).is_err());
        assert!(parse_event(b"not json").is_err());
    }

    #[test]
    fn the_return_url_must_be_absolute_http() {
        assert_eq!(return_url(&json!({})).unwrap(), None);
        assert_eq!(
            return_url(&json!({ "returnUrl": "https://shop.example/x?y=1" })).unwrap(),
            Some("https://shop.example/x?y=1".into())
        );
        for bad in [
            json!({ "returnUrl": "/x" }),
            json!({ "returnUrl": 5 }),
            json!({ "returnUrl": "javascript:alert(1)" }),
        ] {
            assert!(matches!(
                return_url(&bad),
                Err(ProviderError::BadRequest(_))
            ));
        }
    }

    #[test]
    fn payment_references_with_path_characters_are_refused() {
        assert!(check_ref("mpay_0123abcd").is_ok());
        for bad in ["", "../x", "mpay_1/captures", "mpay?x=1"] {
            assert!(
                matches!(check_ref(bad), Err(ProviderError::NotFound(_))),
                "{bad}"
            );
        }
    }
}
