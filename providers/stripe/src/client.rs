//! The HTTP client for Stripe's API: authentication, the pinned version, idempotency keys,
//! and the retry rule of Stripe's own libraries.
//!
//! The retry rule, in order (stripe-node `RequestSender._shouldRetry`):
//! 1. no answer (connect error, timeout, reset, a body cut off) is retried;
//! 2. `Stripe-Should-Retry: true` / `false` decides when present;
//! 3. otherwise 409 and 5xx are retried, and no other 4xx ever is.
//!
//! Every retry of a POST carries the same `Idempotency-Key`, so Stripe replays what the
//! first attempt did instead of doing it again. When the retries run out on a 5xx or 409
//! the error is returned as it is, and the caller re-reads the object to learn whether the
//! operation happened: Stripe saves even a 500 under the key, so more retries with that key
//! would only replay it.

use std::time::Duration;

use bytes::Bytes;
use psp_core::Secret;
use rand::Rng;
use reqwest::Method;

use crate::config::StripeConfig;
use crate::transformers::StripeError;

/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 3;
/// The first wait before a retry; it doubles per retry up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A call that did not end in a 2xx.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    /// Stripe never answered (after the retries): it may or may not have acted.
    NoAnswer(String),
    /// Stripe answered with an error.
    Api(StripeError),
}

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Bytes,
    /// `Idempotent-Replayed: true`: Stripe replayed the saved answer of an earlier request
    /// with the same key instead of acting.
    pub(crate) replayed: bool,
}

/// Stripe's API with one account's key.
pub(crate) struct StripeClient {
    http: reqwest::Client,
    api_base: String,
    secret_key: Secret,
    api_version: String,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

/// The wait before retry `n` (1-based): `min(initial·2^(n-1), max)` with 50–100 % jitter,
/// never below the initial delay, as Stripe's libraries do.
fn backoff(retry: u32) -> Duration {
    let exp = INITIAL_BACKOFF.saturating_mul(1 << (retry.saturating_sub(1)).min(16));
    let capped = exp.min(MAX_BACKOFF);
    let jitter = rand::thread_rng().gen_range(0.5..=1.0);
    capped.mul_f64(jitter).max(INITIAL_BACKOFF)
}

fn header_str<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

impl StripeClient {
    pub(crate) fn new(config: &StripeConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(config.timeout))
            .timeout(config.timeout)
            .user_agent(concat!("psp-gateway-stripe/", env!("CARGO_PKG_VERSION")))
            // Stripe never redirects; following one would turn a POST into a GET.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            api_base: config.api_base.clone(),
            secret_key: config.secret_key.clone(),
            api_version: config.api_version.clone(),
        })
    }

    /// `GET path?query`.
    pub(crate) async fn get(&self, path: &str, query: Option<String>) -> Result<Answer, CallError> {
        self.call(Method::GET, path, query, None, None).await
    }

    /// `POST path` with form parameters and an idempotency key. A POST without a key is not
    /// offered: a retried one could act twice.
    pub(crate) async fn post(
        &self,
        path: &str,
        form: String,
        idempotency_key: &str,
    ) -> Result<Answer, CallError> {
        self.call(Method::POST, path, None, Some(form), Some(idempotency_key))
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: Option<String>,
        form: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, CallError> {
        let url = match &query {
            Some(q) => format!("{}{path}?{q}", self.api_base),
            None => format!("{}{path}", self.api_base),
        };
        let mut attempt = 1;
        loop {
            let result = self
                .attempt(method.clone(), &url, form.clone(), idempotency_key)
                .await;
            let retry = match &result {
                Ok(_) => false,
                Err(CallError::NoAnswer(_)) => true,
                Err(CallError::Api(e)) => {
                    e.should_retry.unwrap_or(e.status == 409 || e.status >= 500)
                }
            };
            if !retry || attempt >= MAX_ATTEMPTS {
                return result;
            }
            if let Err(e) = &result {
                tracing::debug!(%method, path, attempt, error = ?e, "retrying a Stripe call with the same idempotency key");
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        method: Method,
        url: &str,
        form: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, CallError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.secret_key.expose())
            .header("Stripe-Version", &self.api_version);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(form) = form {
            request = request
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::NoAnswer(format!("Stripe: {e}")))?;
        let status = response.status();
        let replayed = header_str(&response, "Idempotent-Replayed")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let should_retry = match header_str(&response, "Stripe-Should-Retry") {
            Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        };
        let request_id = header_str(&response, "Request-Id").map(str::to_string);
        // An answer cut off halfway is no answer: the operation may have happened.
        let body = response
            .bytes()
            .await
            .map_err(|e| CallError::NoAnswer(format!("Stripe: reading the answer: {e}")))?;
        if status.is_success() {
            Ok(Answer { body, replayed })
        } else {
            Err(CallError::Api(StripeError::from_answer(
                status.as_u16(),
                should_retry,
                request_id,
                &body,
            )))
        }
    }
}

impl CallError {
    /// Whether Stripe may have acted and the object must be re-read before deciding.
    pub(crate) fn is_ambiguous_answer(&self) -> bool {
        matches!(self, CallError::Api(e) if e.is_ambiguous())
    }

    /// The core's error for a call that is not handled any further.
    pub(crate) fn into_provider_error(self) -> psp_core::ProviderError {
        match self {
            CallError::NoAnswer(m) => psp_core::ProviderError::Transient(m),
            CallError::Api(e) => e.into_provider_error(),
        }
    }

    /// Whether Stripe answered with this kind of error.
    pub(crate) fn is(&self, kind: crate::transformers::ErrorKind) -> bool {
        matches!(self, CallError::Api(e) if e.kind() == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_within_bounds() {
        for retry in 1..10 {
            let d = backoff(retry);
            assert!(d >= INITIAL_BACKOFF, "{retry}: {d:?}");
            assert!(d <= MAX_BACKOFF, "{retry}: {d:?}");
        }
        // The fourth retry waits at least half of 800 ms.
        assert!(backoff(4) >= Duration::from_millis(400));
    }
}
