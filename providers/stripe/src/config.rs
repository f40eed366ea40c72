//! The `[providers.stripe]` table.

use std::time::Duration;

use psp_core::{ProviderError, Secret};
use serde_json::{Map, Value};

/// The API version every request pins with `Stripe-Version`. Create the webhook endpoint
/// with the same version, or events arrive in the account's default version.
pub const DEFAULT_API_VERSION: &str = "2025-01-27.acacia";
/// Stripe's API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// The prefix of Hantera payment numbers.
pub const DEFAULT_PREFIX: &str = "STRIPE-";
/// The time one attempt of one Stripe call may take.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

const KNOWN_KEYS: &[&str] = &[
    "secret_key",
    "publishable_key",
    "webhook_secrets",
    "api_base",
    "capture_method",
    "payment_number_prefix",
    "api_version",
    "timeout_ms",
];

/// When Stripe takes the money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMethod {
    /// Authorize at checkout; capture when Hantera asks (`OnPaymentCapture`).
    Manual,
    /// Capture at once when the customer pays.
    Automatic,
}

impl CaptureMethod {
    /// Stripe's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Manual => "manual",
            CaptureMethod::Automatic => "automatic",
        }
    }
}

/// The validated `[providers.stripe]` table.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `sk_…` or a restricted `rk_…` key.
    pub secret_key: Secret,
    /// `pk_…`, served at `GET /ingress/stripe/publicKey`.
    pub publishable_key: Option<String>,
    /// Every secret a webhook may be signed with (several while one is rotated).
    pub webhook_secrets: Vec<Secret>,
    /// Stripe's API, without a trailing slash.
    pub api_base: String,
    /// When Stripe takes the money.
    pub capture_method: CaptureMethod,
    /// The prefix of Hantera payment numbers.
    pub payment_number_prefix: String,
    /// The pinned `Stripe-Version`.
    pub api_version: String,
    /// The time one attempt of one call may take.
    pub timeout: Duration,
}

fn config_error(message: impl Into<String>) -> ProviderError {
    ProviderError::Config(format!("[providers.stripe]: {}", message.into()))
}

/// A string value, never echoed in an error because it may be a secret.
fn string(table: &Map<String, Value>, key: &str) -> Result<Option<String>, ProviderError> {
    match table.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(config_error(format!("{key} must be a string"))),
    }
}

/// Whether `value` looks like `2025-01-27` or `2025-01-27.acacia`.
pub(crate) fn is_api_version(value: &str) -> bool {
    let (date, name) = value.split_once('.').unwrap_or((value, "x"));
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = date.split('-');
    let date_ok = matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(y), Some(m), Some(d), None) if digits(y, 4) && digits(m, 2) && digits(d, 2)
    );
    date_ok && !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase())
}

impl StripeConfig {
    /// The key holding a live credential, if any: a live secret key (`sk_live_…`) or a
    /// live restricted key (`rk_live_…`) moves real money. Test keys (`sk_test_…`) never do.
    pub fn live_credential(&self) -> Option<&'static str> {
        let key = self.secret_key.expose();
        (key.starts_with("sk_live_") || key.starts_with("rk_live_")).then_some("secret_key")
    }

    /// Validates the table. Unknown keys are refused, so a misspelt key is not silently
    /// replaced by its default.
    pub fn from_value(config: &Value) -> Result<Self, ProviderError> {
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

        let secret_key = string(table, "secret_key")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| config_error("secret_key is missing or empty"))?;
        // A publishable key in the secret's place is the classic mix-up; Stripe would answer
        // every call with 401, so it is refused at start-up instead.
        if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
            return Err(config_error(
                "secret_key must be a secret key (sk_…) or a restricted key (rk_…)",
            ));
        }

        let publishable_key = string(table, "publishable_key")?.filter(|s| !s.is_empty());
        if let Some(pk) = &publishable_key {
            if !pk.starts_with("pk_") {
                return Err(config_error("publishable_key must start with pk_"));
            }
        }

        let webhook_secrets = match table.get("webhook_secrets") {
            None | Some(Value::Null) => Vec::new(),
            // A single string is accepted, because an environment override of a list is
            // easiest written as one value.
            Some(Value::String(s)) => vec![s.trim().to_string()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.trim().to_string()),
                    _ => Err(config_error("webhook_secrets must be a list of strings")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(config_error("webhook_secrets must be a list of strings")),
        };
        // Without a secret every webhook would be refused, or worse, a lenient verifier
        // would accept forged ones: the provider does not start.
        if webhook_secrets.is_empty() {
            return Err(config_error(
                "webhook_secrets is missing: give the signing secret (whsec_…) of the Stripe webhook endpoint",
            ));
        }
        if webhook_secrets.iter().any(String::is_empty) {
            return Err(config_error("webhook_secrets contains an empty secret"));
        }

        let api_base = string(table, "api_base")?
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string())
            .trim_end_matches('/')
            .to_string();
        let url_ok = reqwest::Url::parse(&api_base)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !url_ok {
            // The value is not repeated: a URL may carry credentials.
            return Err(config_error("api_base is not an absolute http(s) URL"));
        }

        let capture_method = match string(table, "capture_method")?.as_deref() {
            None | Some("manual") => CaptureMethod::Manual,
            Some("automatic") => CaptureMethod::Automatic,
            Some(_) => {
                return Err(config_error(
                    "capture_method must be \"manual\" or \"automatic\"",
                ))
            }
        };

        let payment_number_prefix =
            string(table, "payment_number_prefix")?.unwrap_or_else(|| DEFAULT_PREFIX.into());
        if payment_number_prefix.is_empty() {
            return Err(config_error("payment_number_prefix is empty"));
        }

        let api_version =
            string(table, "api_version")?.unwrap_or_else(|| DEFAULT_API_VERSION.into());
        if !is_api_version(&api_version) {
            return Err(config_error(format!(
                "api_version is not a Stripe API version such as {DEFAULT_API_VERSION:?}"
            )));
        }

        let timeout_ms = match table.get("timeout_ms") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT_MS,
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
            Some(_) => 0,
        };
        if timeout_ms == 0 {
            return Err(config_error("timeout_ms must be a positive integer"));
        }

        Ok(Self {
            secret_key: Secret::new(secret_key),
            publishable_key,
            webhook_secrets: webhook_secrets.into_iter().map(Secret::new).collect(),
            api_base,
            capture_method,
            payment_number_prefix,
            api_version,
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({ "secret_key": "sk_test_x", "webhook_secrets": ["whsec_a"] })
    }

    #[test]
    fn defaults_fill_everything_but_the_keys() {
        let c = StripeConfig::from_value(&minimal()).unwrap();
        assert_eq!(c.api_base, "https://api.stripe.com");
        assert_eq!(c.capture_method, CaptureMethod::Manual);
        assert_eq!(c.payment_number_prefix, "STRIPE-");
        assert_eq!(c.api_version, DEFAULT_API_VERSION);
        assert_eq!(c.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert_eq!(c.publishable_key, None);
    }

    #[test]
    fn every_key_can_be_set() {
        let c = StripeConfig::from_value(&json!({
            "secret_key": "rk_live_x",
            "publishable_key": "pk_live_x",
            "webhook_secrets": "whsec_single",
            "api_base": "http://127.0.0.1:9/fakes/stripe/",
            "capture_method": "automatic",
            "payment_number_prefix": "S-",
            "api_version": "2024-06-20",
            "timeout_ms": "2500",
        }))
        .unwrap();
        assert_eq!(c.api_base, "http://127.0.0.1:9/fakes/stripe");
        assert_eq!(c.capture_method, CaptureMethod::Automatic);
        assert_eq!(c.webhook_secrets.len(), 1);
        assert_eq!(c.webhook_secrets[0].expose(), "whsec_single");
        assert_eq!(c.publishable_key.as_deref(), Some("pk_live_x"));
        assert_eq!(c.api_version, "2024-06-20");
        assert_eq!(c.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn wrong_tables_are_refused_without_echoing_secrets() {
        let with = |key: &str, value: Value| {
            let mut v = minimal();
            v[key] = value;
            v
        };
        let cases = [
            json!({ "webhook_secrets": ["whsec_a"] }),
            json!({ "secret_key": "sk_test_x" }),
            json!({ "secret_key": "sk_test_x", "webhook_secrets": [] }),
            with("webhook_secrets", json!(["whsec_a", ""])),
            with("webhook_secrets", json!([1])),
            with("secret_key", json!("pk_test_oops_secret")),
            with("publishable_key", json!("sk_test_oops_secret")),
            with("api_base", json!("api.stripe.com")),
            with("capture_method", json!("automatic_async")),
            with("api_version", json!("latest")),
            with("timeout_ms", json!(0)),
            with("webhook_secret", json!("whsec_typo_secret")),
            with("payment_number_prefix", json!(" ")),
        ];
        for case in cases {
            let err = StripeConfig::from_value(&case).unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{case}: {err}");
            let text = err.to_string();
            assert!(
                !text.contains("oops_secret") && !text.contains("typo_secret"),
                "{text}"
            );
        }
    }

    #[test]
    fn live_secret_and_restricted_keys_are_live_credentials_and_test_keys_are_not() {
        let with_key = |key: &str| {
            let mut v = minimal();
            v["secret_key"] = json!(key);
            StripeConfig::from_value(&v).unwrap().live_credential()
        };
        assert_eq!(with_key("sk_live_abc"), Some("secret_key"));
        assert_eq!(with_key("rk_live_abc"), Some("secret_key"));
        assert_eq!(with_key("sk_test_abc"), None);
        assert_eq!(with_key("rk_test_abc"), None);
    }

    #[test]
    fn api_versions_are_dates_with_an_optional_codename() {
        assert!(is_api_version("2025-01-27.acacia"));
        assert!(is_api_version("2020-08-27"));
        for bad in ["2025-1-27", "2025-01-27.", "2025-01-27.Acacia", "v1", ""] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }
}
