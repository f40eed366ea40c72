//! [`HanteraClient`]: the [`Hantera`] port over HTTP.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use psp_core::ports::{
    Charge, CreateOutcome, Hantera, HanteraError, JournalEntry, NewPayment, PaymentRef,
};
use psp_core::{RenderedCart, Secret};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde::Serialize;
use uuid::Uuid;

use crate::config::{ClientConfig, RetryPolicy};
use crate::retry::with_retries;
use crate::token::{CachedToken, TokenCache};
use crate::{unverified, wire};

/// A Hantera client: OAuth client credentials, actor messages, graph lookups and the
/// Commerce cart read.
///
/// Calls that are safe to repeat (`get_cart`, `find_payment`, `create_payment`, `ping`, and
/// the token request) are retried on transient failures with exponential backoff;
/// `link_and_complete` and `charge` are sent once. `Debug` never shows the client secret or
/// the access token.
pub struct HanteraClient {
    http: reqwest::Client,
    base_url: String,
    client_id: String,
    client_secret: Secret,
    scope: String,
    retry: RetryPolicy,
    tokens: TokenCache,
}

impl fmt::Debug for HanteraClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HanteraClient")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .field("retry", &self.retry)
            .field("token_cached", &self.tokens.is_cached())
            .finish_non_exhaustive()
    }
}

/// A request body, built once and sent again on each attempt.
enum Body {
    None,
    Json(Vec<u8>),
    // The token request's form carries the client secret, hence the wrapper: this type
    // has no `Debug`, and the secret stays out of reach of any accidental formatting.
    Form(Secret),
}

impl Body {
    fn json(value: &impl Serialize) -> Result<Self, HanteraError> {
        // Serializing our own wire structs cannot fail in practice; should it, nothing was
        // sent, and the error says so.
        serde_json::to_vec(value)
            .map(Body::Json)
            .map_err(|e| HanteraError::Unavailable(format!("could not encode the request: {e}")))
    }
}

/// A status and body from Hantera.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Hantera's error code, if the answer is an error that carries one.
    fn error_code(&self) -> Option<String> {
        if self.is_success() {
            return None;
        }
        wire::parse_error_body(&self.body).map(|(code, _)| code)
    }

    /// The body of a success, or the error the answer describes.
    fn into_success(self) -> Result<Vec<u8>, HanteraError> {
        if self.is_success() {
            Ok(self.body)
        } else {
            Err(wire::error_from_answer(self.status, &self.body))
        }
    }
}

impl HanteraClient {
    /// Builds a client. Nothing is sent until the first call; the configuration is
    /// checked here so that a wrong base URL or missing credentials stop the gateway at
    /// start-up rather than at its first payment.
    pub fn new(config: ClientConfig) -> Result<Self, HanteraError> {
        let base_url = config.base_url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base_url).map_err(|e| {
            HanteraError::Unavailable(format!("invalid Hantera base URL {base_url:?}: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HanteraError::Unavailable(format!(
                "invalid Hantera base URL {base_url:?}: the scheme must be http or https"
            )));
        }
        if config.client_id.trim().is_empty() || config.client_secret.is_empty() {
            return Err(HanteraError::Unauthorized(
                "the Hantera client id or client secret is not configured".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!(
                "psp-gateway-hantera-client/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| {
                HanteraError::Unavailable(format!("could not build the HTTP client: {e}"))
            })?;
        Ok(Self {
            http,
            base_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            scope: config.scope,
            retry: config.retry,
            tokens: TokenCache::default(),
        })
    }

    /// Sends one request and reads the whole answer. Any failure to get an answer
    /// (connection refused or reset, timeout, a body cut short) is `Unavailable`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: &Body,
        token: Option<&CachedToken>,
        attempt: u32,
    ) -> Result<Answer, HanteraError> {
        let url = format!("{}{}", self.base_url, path);
        let mut request = self
            .http
            .request(method.clone(), url)
            .header(ACCEPT, "application/json");
        if let Some(token) = token {
            // reqwest marks the header as sensitive, which keeps it out of its own logs.
            request = request.bearer_auth(token.value.expose());
        }
        request = match body {
            Body::None => request,
            Body::Json(bytes) => request
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Form(form) => request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.expose().to_string()),
        };
        let started = std::time::Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                body: body.to_vec(),
            })
        }
        .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(answer) => {
                tracing::debug!(
                    method = %method,
                    path,
                    status = answer.status,
                    attempt,
                    elapsed_ms,
                    "hantera call"
                );
                Ok(answer)
            }
            Err(err) => {
                let reason = describe_transport_error(&err);
                tracing::debug!(
                    method = %method,
                    path,
                    attempt,
                    elapsed_ms,
                    error = %reason,
                    "hantera call got no answer"
                );
                Err(HanteraError::Unavailable(format!(
                    "{method} {path}: {reason}"
                )))
            }
        }
    }

    /// A token to send: the cached one, or a new one.
    async fn token(&self) -> Result<CachedToken, HanteraError> {
        self.tokens
            .get(|| with_retries(&self.retry, "token", |attempt| self.request_token(attempt)))
            .await
    }

    /// One client-credentials token request.
    async fn request_token(&self, attempt: u32) -> Result<(Secret, Duration), HanteraError> {
        let form = serde_urlencoded::to_string(wire::TokenRequest {
            grant_type: "client_credentials",
            client_id: &self.client_id,
            client_secret: self.client_secret.expose(),
            scope: &self.scope,
        })
        .map_err(|e| {
            HanteraError::Unavailable(format!("could not encode the token request: {e}"))
        })?;
        let answer = self
            .send(
                Method::POST,
                wire::TOKEN_PATH,
                &Body::Form(Secret::new(form)),
                None,
                attempt,
            )
            .await?;
        if unverified::token_refused(answer.status) {
            let detail = match wire::parse_error_body(&answer.body) {
                Some((code, message)) if code == unverified::TOKEN_REFUSED_CODE => {
                    format!("the client id or secret was refused ({code}) {message}")
                }
                Some((code, message)) => format!("{code} {message}"),
                None => String::new(),
            };
            return Err(HanteraError::Unauthorized(
                format!("token endpoint answered {}: {detail}", answer.status)
                    .trim_end()
                    .to_string(),
            ));
        }
        let body = answer.into_success()?;
        let token: unverified::TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| HanteraError::Unavailable(format!("unreadable token answer: {e}")))?;
        if token.access_token.is_empty() {
            return Err(HanteraError::Unavailable(
                "the token answer carries an empty access token".into(),
            ));
        }
        let lifetime = token
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(unverified::FALLBACK_TOKEN_LIFETIME);
        Ok((Secret::new(token.access_token), lifetime))
    }

    /// One authenticated call to `/resources`. If Hantera refuses the token (it expired
    /// early, or was revoked), the token is dropped and the call is sent once more with a
    /// new one. Sending again is safe even for calls that must not be repeated: a refused
    /// token means the request was turned away before anything was applied.
    async fn resource_call(
        &self,
        method: Method,
        path: &str,
        body: &Body,
        attempt: u32,
    ) -> Result<Answer, HanteraError> {
        let token = self.token().await?;
        let answer = self
            .send(method.clone(), path, body, Some(&token), attempt)
            .await?;
        if !unverified::token_rejected(answer.status, answer.error_code().as_deref()) {
            return Ok(answer);
        }
        tracing::debug!(path, "hantera refused the access token; fetching a new one");
        self.tokens.invalidate(token.generation);
        let token = self.token().await?;
        let answer = self.send(method, path, body, Some(&token), attempt).await?;
        if unverified::token_rejected(answer.status, answer.error_code().as_deref()) {
            let detail = wire::parse_error_body(&answer.body)
                .map(|(code, message)| format!("{code} {message}"))
                .unwrap_or_default();
            return Err(HanteraError::Unauthorized(
                format!("{path} refused a new access token: {detail}")
                    .trim_end()
                    .to_string(),
            ));
        }
        Ok(answer)
    }
}

/// A short description of a transport failure, with its causes, for logs and errors.
fn describe_transport_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the answer was cut short"
    } else {
        "the request failed"
    };
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl HanteraClient {
    /// Applies payment commands in one batch, sent once: what they write (an activity
    /// entry) is better left out after a lost answer than written twice.
    async fn payment_commands_once(
        &self,
        payment_id: Uuid,
        commands: serde_json::Value,
    ) -> Result<(), HanteraError> {
        let body = Body::json(&serde_json::json!([{
            "type": "applyCommands",
            "body": { "commands": commands }
        }]))?;
        self.resource_call(
            Method::POST,
            &wire::payment_actor_path(payment_id),
            &body,
            1,
        )
        .await?
        .into_success()
        .map(drop)
    }
}

#[async_trait]
impl Hantera for HanteraClient {
    /// Reads the cart from the public Commerce ingress, which needs no token. Only a 404
    /// that Hantera itself marks `NOT_FOUND` means an unknown cart: a 404 from something
    /// else in between (a wrong base URL, a proxy) is an error, not a missing cart.
    async fn get_cart(&self, cart_id: Uuid) -> Result<Option<RenderedCart>, HanteraError> {
        let path = wire::cart_path(cart_id);
        with_retries(&self.retry, "get_cart", |attempt| {
            let path = &path;
            async move {
                let answer = self
                    .send(Method::GET, path, &Body::None, None, attempt)
                    .await?;
                if answer.status == 404 && answer.error_code().as_deref() == Some(wire::NOT_FOUND) {
                    return Ok(None);
                }
                let body = answer.into_success()?;
                serde_json::from_slice::<RenderedCart>(&body)
                    .map(Some)
                    .map_err(|e| HanteraError::Unavailable(format!("unreadable cart: {e}")))
            }
        })
        .await
    }

    /// Looks the payment up through the graph; a read, so it is retried.
    async fn find_payment(
        &self,
        external_reference: &str,
    ) -> Result<Option<PaymentRef>, HanteraError> {
        let body = Body::json(&unverified::payment_lookup_query(external_reference))?;
        with_retries(&self.retry, "find_payment", |attempt| {
            let body = &body;
            async move {
                let answer = self
                    .resource_call(Method::POST, wire::GRAPH_PATH, body, attempt)
                    .await?
                    .into_success()?;
                unverified::parse_payment_lookup(&answer, external_reference)
                    .map_err(HanteraError::Unavailable)
            }
        })
        .await
    }

    /// Creates the payment at the caller's id. Repeating is safe because the id is fixed:
    /// if an attempt was applied but its answer was lost, the next one answers
    /// `ALREADY_EXISTS`, which is reported as [`CreateOutcome::AlreadyExists`].
    async fn create_payment(
        &self,
        payment_id: Uuid,
        payment: &NewPayment,
    ) -> Result<CreateOutcome, HanteraError> {
        let path = wire::payment_actor_path(payment_id);
        let body = Body::json(&wire::create_payment(payment))?;
        let result = with_retries(&self.retry, "create_payment", |attempt| {
            let (path, body) = (&path, &body);
            async move {
                self.resource_call(Method::POST, path, body, attempt)
                    .await?
                    .into_success()
            }
        })
        .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(err) if err.code() == Some(wire::ALREADY_EXISTS) => {
                Ok(CreateOutcome::AlreadyExists)
            }
            Err(err) if err.code() == Some(wire::DUPLICATE_ID) => {
                Ok(CreateOutcome::DuplicateExternalReference)
            }
            Err(err) => Err(err),
        }
    }

    /// Sends the relation and the completion as one atomic batch, exactly once.
    ///
    /// There is no internal retry because a repeat is not a safe way to learn the outcome:
    /// if the first batch was applied and its answer lost, a repeat is refused (the ticket
    /// is no longer open) and would report a failure for a cart that was completed. The
    /// caller instead re-reads the cart, which tells both cases apart, and decides.
    async fn link_and_complete(&self, cart_id: Uuid, payment_id: Uuid) -> Result<(), HanteraError> {
        let body = Body::json(&wire::link_and_complete(payment_id))?;
        self.resource_call(Method::POST, &wire::ticket_actor_path(cart_id), &body, 1)
            .await?
            .into_success()
            .map(drop)
    }

    /// Records a charge, exactly once.
    ///
    /// There is no internal retry because Hantera is not documented to recognise a repeated
    /// charge (a charge is not created at an id of ours, and nothing says that a repeated
    /// `transactionReference` is refused): if the first one was applied and its answer
    /// lost, a repeat could record the money twice. The caller re-reads the payment's
    /// journal and decides.
    async fn charge(&self, payment_id: Uuid, charge: &Charge) -> Result<(), HanteraError> {
        let body = Body::json(&wire::charge(charge))?;
        self.resource_call(
            Method::POST,
            &wire::payment_actor_path(payment_id),
            &body,
            1,
        )
        .await?
        .into_success()
        .map(drop)
    }

    /// Reads a payment's journal with a `query` message; a read, so it is retried. An
    /// unknown payment (`NOT_FOUND`) is `None`.
    async fn payment_journal(
        &self,
        payment_id: Uuid,
    ) -> Result<Option<Vec<JournalEntry>>, HanteraError> {
        let body = Body::json(&unverified::payment_query())?;
        let path = wire::payment_actor_path(payment_id);
        with_retries(&self.retry, "payment_journal", |attempt| {
            let (path, body) = (&path, &body);
            async move {
                let answer = self
                    .resource_call(Method::POST, path, body, attempt)
                    .await?;
                if answer.error_code().as_deref() == Some(wire::NOT_FOUND) {
                    return Ok(None);
                }
                let body = answer.into_success()?;
                unverified::parse_payment_journal(&body)
                    .map(Some)
                    .map_err(HanteraError::Unavailable)
            }
        })
        .await
    }

    /// Reads the payments related to a cart with the ticket's `query` message, retried like
    /// any read.
    async fn cart_payment_ids(&self, cart_id: Uuid) -> Result<Option<Vec<Uuid>>, HanteraError> {
        let body = Body::json(&unverified::ticket_query())?;
        let path = wire::ticket_actor_path(cart_id);
        with_retries(&self.retry, "cart_payment_ids", |attempt| {
            let (path, body) = (&path, &body);
            async move {
                let answer = self
                    .resource_call(Method::POST, path, body, attempt)
                    .await?;
                if answer.error_code().as_deref() == Some(wire::NOT_FOUND) {
                    return Ok(None);
                }
                let body = answer.into_success()?;
                unverified::parse_cart_payments(&body)
                    .map(Some)
                    .map_err(HanteraError::Unavailable)
            }
        })
        .await
    }

    /// Adds an activity log entry, once: a lost answer at worst leaves the entry out, which
    /// is better than writing it twice into what a person reads.
    async fn add_payment_activity(
        &self,
        payment_id: Uuid,
        message: &str,
    ) -> Result<(), HanteraError> {
        self.payment_commands_once(
            payment_id,
            serde_json::json!([{ "type": "addActivityLog", "messageTemplate": message }]),
        )
        .await
    }

    /// Tags a payment and logs why, in one batch. Tags are a set; a repeated activity entry
    /// is the worst a retry can do, so the call is sent once and the caller decides.
    async fn flag_payment(
        &self,
        payment_id: Uuid,
        tag: &str,
        message: &str,
    ) -> Result<(), HanteraError> {
        self.payment_commands_once(
            payment_id,
            serde_json::json!([
                { "type": "addTag", "key": tag },
                { "type": "addActivityLog", "messageTemplate": message },
            ]),
        )
        .await
    }

    /// Sets dynamic fields on a cart. Setting the same values again changes nothing, so the
    /// call is retried like a read.
    async fn set_cart_fields(
        &self,
        cart_id: Uuid,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), HanteraError> {
        let body = Body::json(&serde_json::json!([{
            "type": "applyCommands",
            "body": { "commands": [{ "type": "setDynamicFields", "fields": fields }] }
        }]))?;
        let path = wire::ticket_actor_path(cart_id);
        with_retries(&self.retry, "set_cart_fields", |attempt| {
            let (path, body) = (&path, &body);
            async move {
                self.resource_call(Method::POST, path, body, attempt)
                    .await?
                    .into_success()
                    .map(drop)
            }
        })
        .await
    }

    /// Hantera is up when it issues (or has issued) a token and its Commerce ingress
    /// answers without a server error.
    async fn ping(&self) -> Result<(), HanteraError> {
        self.token().await?;
        with_retries(&self.retry, "ping", |attempt| async move {
            let answer = self
                .send(
                    Method::GET,
                    wire::CART_PROFILES_PATH,
                    &Body::None,
                    None,
                    attempt,
                )
                .await?;
            if answer.status < 500 {
                Ok(())
            } else {
                Err(wire::error_from_answer(answer.status, &answer.body))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig::new(
            "http://127.0.0.1:1/",
            "psp-gateway",
            Secret::new("very-secret-value"),
        )
    }

    #[test]
    fn the_debug_output_shows_neither_secret_nor_token() {
        let client = HanteraClient::new(config()).unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("very-secret-value"), "{text}");
        assert!(text.contains("http://127.0.0.1:1"), "{text}");
        assert!(!format!("{:?}", config()).contains("very-secret-value"));
    }

    #[test]
    fn a_bad_base_url_or_missing_credentials_are_refused_at_construction() {
        let mut bad = config();
        bad.base_url = "not a url".into();
        assert!(HanteraClient::new(bad).is_err());
        let mut ftp = config();
        ftp.base_url = "ftp://example.com".into();
        assert!(HanteraClient::new(ftp).is_err());
        let mut empty = config();
        empty.client_secret = Secret::new(" ");
        assert!(matches!(
            HanteraClient::new(empty),
            Err(HanteraError::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_hantera_is_unavailable_after_the_retries() {
        let mut cfg = config();
        cfg.retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        };
        let client = HanteraClient::new(cfg).unwrap();
        let err = client.get_cart(Uuid::nil()).await.unwrap_err();
        assert!(matches!(err, HanteraError::Unavailable(_)), "{err:?}");
        let err = client.ping().await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
}
