//! Kustom over HTTP: authentication, the error shape, and the `Location` of orders.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use bytes::Bytes;
use parking_lot::Mutex;
use psp_core::{ProviderError, Secret};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::config::KustomConfig;

/// The header Kustom still reads idempotency keys from.
pub const IDEMPOTENCY_HEADER: &str = "Klarna-Idempotency-Key";

/// Kustom's error body on every API. Read leniently: an odd message list or correlation
/// id must not lose the code that classifies the error.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default, deserialize_with = "psp_core::lenient::string")]
    pub(crate) error_code: String,
    #[serde(default, deserialize_with = "psp_core::lenient::texts")]
    pub(crate) error_messages: Vec<String>,
    #[serde(default, deserialize_with = "psp_core::lenient::string")]
    pub(crate) correlation_id: String,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(protocol_error)
    }
}

/// An answer that is not what Kustom sends. It is treated as ambiguous, since a garbled
/// answer to a capture may hide a capture that happened; the same idempotency key finds
/// out safely.
pub(crate) fn protocol_error(message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transient(format!("unexpected answer from Kustom: {message}"))
}

/// Maps Kustom's `{error_code, error_messages, correlation_id}` and the status to the
/// core's error kinds.
pub(crate) fn map_error(status: StatusCode, body: &[u8]) -> ProviderError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = if parsed.error_code.is_empty() {
        format!("http_{}", status.as_u16())
    } else {
        parsed.error_code
    };
    let mut message = parsed.error_messages.join("; ");
    if message.is_empty() {
        message = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    }
    if !parsed.correlation_id.is_empty() {
        message = format!("{message} (correlation_id {})", parsed.correlation_id);
    }
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::CONFLICT
        || !status.is_client_error()
    {
        ProviderError::Transient(format!("Kustom answered {status}: {code}: {message}"))
    } else if code == "READ_ONLY_ORDER" {
        ProviderError::Locked(message)
    } else if status == StatusCode::NOT_FOUND {
        ProviderError::NotFound(format!("{code}: {message}"))
    } else {
        ProviderError::Rejected { code, message }
    }
}

/// A Kustom order id is put into URL paths: anything but the characters of a UUID is
/// refused before a request is made, so that a forged id cannot reach another path.
pub(crate) fn check_order_id(id: &str) -> Result<(), ProviderError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ProviderError::NotFound(format!(
            "{id:?} is not a Kustom order id"
        )))
    }
}

/// A map that forgets its oldest entries beyond a capacity, so that what it remembers
/// cannot grow without bound.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).cloned()
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if self.map.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }
}

/// Kustom's API, authenticated.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    authorization: Secret,
    /// The `Location` of each checkout order this process created, for later reads and
    /// updates, as Kustom asks.
    locations: Mutex<Bounded<String, String>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Standard base64 (RFC 4648, with padding), for classic Basic authentication.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `Authorization` value: the raw key (Kustom's own scheme), or classic Basic with
/// the merchant's username when one is configured.
pub(crate) fn authorization(api_key: &Secret, username: Option<&str>) -> Secret {
    match username {
        None => Secret::new(format!("Basic {}", api_key.expose())),
        Some(user) => Secret::new(format!(
            "Basic {}",
            base64(format!("{user}:{}", api_key.expose()).as_bytes())
        )),
    }
}

impl Api {
    pub(crate) fn new(config: &KustomConfig) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .timeout(config.timeout)
            .user_agent(concat!("psp-gateway-kustom/", env!("CARGO_PKG_VERSION")))
            // Kustom never redirects an API call; following one would send our
            // credentials wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProviderError::Config(format!("[providers.kustom]: HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: config.api_base.clone(),
            authorization: authorization(&config.api_key, config.username.as_deref()),
            locations: Mutex::new(Bounded::new(50_000)),
        })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The URL of a checkout order: the `Location` Kustom gave when it was created, or,
    /// for an order this process did not create (after a restart; the push names only
    /// the id), the documented path.
    pub(crate) fn checkout_order_url(&self, order_id: &str) -> String {
        self.locations
            .lock()
            .get(&order_id.to_string())
            .unwrap_or_else(|| format!("{}/checkout/v3/orders/{order_id}", self.base))
    }

    /// Remembers the `Location` of a created order, when it lies under our API base: a
    /// `Location` elsewhere would make us send our credentials to another host.
    pub(crate) fn remember_location(&self, order_id: &str, headers: &HeaderMap) {
        let Some(location) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
            tracing::warn!(
                order_id,
                "Kustom created an order without a Location header"
            );
            return;
        };
        let location = location.trim_end_matches('/');
        if location.starts_with(&format!("{}/", self.base)) && location.ends_with(order_id) {
            self.locations
                .lock()
                .insert(order_id.to_string(), location.to_string());
        } else {
            tracing::warn!(
                order_id,
                location,
                "ignoring a Location outside Kustom's API base"
            );
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        url: &str,
        idempotency_key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, ProviderError> {
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.expose());
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        request = match body {
            Some(body) => request.json(body),
            // Kustom's bodiless POSTs (acknowledge, cancel) still declare a length.
            None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
        };
        // No answer, a timeout, a reset or an answer cut off halfway: the call may have
        // acted, so the caller retries with the same key.
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::Transient(format!("Kustom: {e}")))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Transient(format!("Kustom: reading the answer: {e}")))?;
        if status.is_success() {
            Ok(Answer { headers, body })
        } else {
            Err(map_error(status, &body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_with_odd_descriptive_fields_keeps_its_code() {
        let e = map_error(
            StatusCode::FORBIDDEN,
            br#"{"error_code":"READ_ONLY_ORDER","error_messages":"one message","correlation_id":null}"#,
        );
        assert!(
            matches!(&e, ProviderError::Locked(m) if m == "one message"),
            "{e:?}"
        );
        let e = map_error(
            StatusCode::BAD_REQUEST,
            br#"{"error_code":"BAD_VALUE","error_messages":[{"x":1},"kept"],"correlation_id":42}"#,
        );
        match e {
            ProviderError::Rejected { code, message } => {
                assert_eq!(code, "BAD_VALUE");
                assert_eq!(message, "kept (correlation_id 42)");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, output) in vectors {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn the_raw_key_or_classic_basic_is_sent() {
        let key = Secret::new("kco_test_api_abc");
        assert_eq!(authorization(&key, None).expose(), "Basic kco_test_api_abc");
        assert_eq!(
            authorization(&key, Some("PK1-x")).expose(),
            format!("Basic {}", base64(b"PK1-x:kco_test_api_abc"))
        );
    }

    #[test]
    fn kustom_errors_map_to_retry_refusal_lock_or_not_found() {
        let body = |code: &str| {
            format!(r#"{{"error_code":"{code}","error_messages":["m"],"correlation_id":"c1"}}"#)
        };
        assert!(map_error(StatusCode::SERVICE_UNAVAILABLE, b"").is_transient());
        assert!(map_error(StatusCode::TOO_MANY_REQUESTS, b"").is_transient());
        assert!(matches!(
            map_error(StatusCode::NOT_FOUND, body("NO_SUCH_ORDER").as_bytes()),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            map_error(StatusCode::FORBIDDEN, body("READ_ONLY_ORDER").as_bytes()),
            ProviderError::Locked(_)
        ));
        match map_error(StatusCode::BAD_REQUEST, body("BAD_VALUE").as_bytes()) {
            ProviderError::Rejected { code, message } => {
                assert_eq!(code, "BAD_VALUE");
                assert!(message.contains("c1"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match map_error(StatusCode::UNAUTHORIZED, b"") {
            ProviderError::Rejected { code, .. } => assert_eq!(code, "http_401"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn order_ids_with_path_characters_are_refused() {
        assert!(check_order_id("8cf27b55-53e8-6aba-9fb4-7c692e56ddee").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b", &"a".repeat(65)] {
            assert!(check_order_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bounded_map_forgets_its_oldest_entries() {
        let mut m = Bounded::new(2);
        m.insert(1, "a");
        m.insert(2, "b");
        m.insert(3, "c");
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&3), Some("c"));
        m.remove(&3);
        assert_eq!(m.get(&3), None);
    }
}
