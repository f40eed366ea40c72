//! The `[providers.kustom]` table.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `api_key` | required | `kco_<live\|test>_api_…`, sent as `Authorization: Basic <key>` |
//! | `username` | none | `<MID>-<suffix>`; when set, classic Basic `base64(username:api_key)` is sent instead |
//! | `api_base` | from the key: `kco_live_…` → `https://api.kustom.co`, otherwise `https://api.playground.kustom.co` | Kustom's API |
//! | `payment_number_prefix` | `KUSTOM-` | prefix of Hantera payment numbers |
//! | `timeout_ms` | `10000` | total time for one Kustom call |
//! | `terms_url`, `checkout_url`, `confirmation_url` | none | defaults for the storefront's `termsUrl`, `checkoutUrl`, `confirmationUrl` |
//! | `purchase_country`, `locale` | by currency (SEK → SE/sv-SE, NOK → NO/nb-NO, DKK → DK/da-DK, EUR → FI/fi-FI) | Kustom's market and language |
//! | `tax_rates` | Europe's VAT rates | the rates (percent) a line's rate is chosen from |
//! | `validation` | `true` | hand Kustom our validation URL |
//! | `require_validation` | `false` | Kustom fails the purchase when validation does not answer (`options.require_validate_callback_success`) |
//! | `validation_callback_url` | none | the merchant's veto rule (HTTP), `OnKustomValidation`'s input in, `{error:{code,message}}` out |
//! | `validation_callback_token` | none | sent to the callback as `Authorization: Bearer …` |
//! | `validation_timeout_ms` | `2500` | the whole validation answer's budget, under Kustom's 3 s |
//! | `validation_deny` | `redirect` | `redirect` (303 + `Location`, Kustom's documented denial) or `status_400` (Hantera's app's variant) |
//! | `validation_deny_url` | the checkout URL stored with the order's session, else `checkout_url`, else the gateway's root | where a denied customer is sent (`?kustom_error=<code>` is added); never a URL from the validation's body |
//! | `validation_on_error` | `approve` | when the cart or the callback cannot be asked in time: `approve` (as Kustom does on a timeout; completion still checks the amount) or `deny` |
//! | `push_reads_per_window`, `push_window_ms` | `30`, `60000` | at most this many Kustom reads triggered by (unauthenticated) pushes per window, all orders together |
//! | `push_reads_per_order` | `3` | at most this many of those reads per window for one order id (at most `push_reads_per_window`) |

use std::time::Duration;

use psp_core::{ProviderError, Secret};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::tax::TaxRates;

/// Kustom's live API.
pub const LIVE_API: &str = "https://api.kustom.co";
/// Kustom's playground API.
pub const PLAYGROUND_API: &str = "https://api.playground.kustom.co";

const KNOWN_KEYS: &[&str] = &[
    "api_key",
    "username",
    "api_base",
    "payment_number_prefix",
    "timeout_ms",
    "terms_url",
    "checkout_url",
    "confirmation_url",
    "purchase_country",
    "locale",
    "tax_rates",
    "validation",
    "require_validation",
    "validation_callback_url",
    "validation_callback_token",
    "validation_timeout_ms",
    "validation_deny",
    "validation_deny_url",
    "validation_on_error",
    "push_reads_per_window",
    "push_window_ms",
    "push_reads_per_order",
];

/// How a denied validation is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyStyle {
    /// `303 See Other` with a `Location`, as Kustom documents.
    Redirect,
    /// `400` with `{error:{code,message}}`, as Hantera's Kustom app answers.
    Status400,
}

/// What to answer when the answer cannot be decided in time or at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Approve: what Kustom itself does when we do not answer.
    Approve,
    /// Deny.
    Deny,
}

/// The validation callback's settings.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// Whether the order carries our validation URL.
    pub enabled: bool,
    /// Whether Kustom must get a successful answer.
    pub require_success: bool,
    /// The merchant's veto callback.
    pub callback_url: Option<String>,
    /// Its bearer token.
    pub callback_token: Option<Secret>,
    /// The budget of the whole answer.
    pub budget: Duration,
    /// How a denial is answered.
    pub deny: DenyStyle,
    /// Where a denied customer is sent.
    pub deny_url: Option<String>,
    /// What to answer when undecidable.
    pub on_error: OnError,
}

/// The provider's configuration.
#[derive(Debug, Clone)]
pub struct KustomConfig {
    /// The API key.
    pub api_key: Secret,
    /// The optional `<MID>-<suffix>` username.
    pub username: Option<String>,
    /// Kustom's API base, without a trailing slash.
    pub api_base: String,
    /// Hantera payment number prefix.
    pub payment_number_prefix: String,
    /// Time for one call.
    pub timeout: Duration,
    /// Default terms URL.
    pub terms_url: Option<String>,
    /// Default checkout URL.
    pub checkout_url: Option<String>,
    /// Default confirmation URL.
    pub confirmation_url: Option<String>,
    /// Default purchase country.
    pub purchase_country: Option<String>,
    /// Default locale.
    pub locale: Option<String>,
    /// The rates a line's rate is chosen from.
    pub tax_rates: TaxRates,
    /// Validation.
    pub validation: ValidationConfig,
    /// Push-triggered reads allowed per window, all orders together.
    pub push_reads_per_window: u32,
    /// Push-triggered reads allowed per window for one order id.
    pub push_reads_per_order: u32,
    /// The window.
    pub push_window: Duration,
}

fn config_error(message: impl Into<String>) -> ProviderError {
    ProviderError::Config(format!("[providers.kustom]: {}", message.into()))
}

/// Whether `value` is an absolute http(s) URL with a host.
pub(crate) fn absolute_http_url(value: &str) -> bool {
    reqwest::Url::parse(value)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

struct Table<'a>(&'a Map<String, Value>);

impl Table<'_> {
    /// A string, never echoed in errors because it may be a secret.
    fn string(&self, key: &str) -> Result<Option<String>, ProviderError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(config_error(format!("{key} must be a string"))),
        }
    }

    fn url(&self, key: &str) -> Result<Option<String>, ProviderError> {
        match self.string(key)? {
            Some(u) if !absolute_http_url(&u) => Err(config_error(format!(
                "{key} is not an absolute http(s) URL"
            ))),
            other => Ok(other),
        }
    }

    // Environment overrides arrive as text, so numbers and booleans are read from text too.
    fn number(&self, key: &str, default: u64) -> Result<u64, ProviderError> {
        let bad = || config_error(format!("{key} must be a positive integer"));
        let n = match self.0.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => n.as_u64().ok_or_else(bad)?,
            Some(Value::String(s)) => s.trim().parse().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
        };
        if n == 0 {
            return Err(bad());
        }
        Ok(n)
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, ProviderError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(config_error(format!("{key} must be true or false"))),
            },
            Some(_) => Err(config_error(format!("{key} must be true or false"))),
        }
    }
}

/// Reads a rate in percent (`25`, `"25.5"`) as basis points, exactly.
fn percent_to_basis_points(value: &Value) -> Option<i64> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().trim_end_matches('%').trim().to_string(),
        _ => return None,
    };
    let d = Decimal::from_str_exact(&text).ok()?;
    let bp = d.checked_mul(Decimal::from(100))?.normalize();
    if bp.scale() != 0 {
        return None;
    }
    i64::try_from(bp).ok()
}

impl KustomConfig {
    /// The key holding a live credential, if any: a live API key (`kco_live_…`), or
    /// Kustom's production API as `api_base` (playground keys do not work there, and a
    /// live key is what would be sent).
    pub fn live_credential(&self) -> Option<&'static str> {
        if self.api_key.expose().starts_with("kco_live_") {
            return Some("api_key");
        }
        // Compared by host, so a trailing slash, a path or the letter case do not hide it.
        let host = |url: &str| {
            reqwest::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
        };
        let live = host(LIVE_API);
        (live.is_some() && host(&self.api_base) == live).then_some("api_base")
    }

    /// Parses and checks the table. Refuses unknown keys (a misspelt key is a setting
    /// silently not applied) and never echoes secret values.
    pub fn from_value(config: &Value) -> Result<Self, ProviderError> {
        let empty = Map::new();
        let map = match config {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => return Err(config_error("the provider's configuration must be a table")),
        };
        if let Some(unknown) = map.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(config_error(format!(
                "unknown key {unknown:?} (known keys: {})",
                KNOWN_KEYS.join(", ")
            )));
        }
        let t = Table(map);

        let api_key = t
            .string("api_key")?
            .ok_or_else(|| config_error("api_key is missing or empty"))?;
        let live = api_key.starts_with("kco_live_");
        let api_base = t
            .string("api_base")?
            .unwrap_or_else(|| if live { LIVE_API } else { PLAYGROUND_API }.to_string())
            .trim_end_matches('/')
            .to_string();
        if !absolute_http_url(&api_base) {
            // The value is not repeated: a URL may carry credentials.
            return Err(config_error("api_base is not an absolute http(s) URL"));
        }
        let username = t.string("username")?;
        if username.as_deref().is_some_and(|u| u.contains(':')) {
            return Err(config_error("username must not contain ':'"));
        }

        let tax_rates = match map.get("tax_rates") {
            None | Some(Value::Null) => TaxRates::default(),
            Some(Value::Array(items)) => {
                let bps: Option<Vec<i64>> = items.iter().map(percent_to_basis_points).collect();
                bps.and_then(TaxRates::new).ok_or_else(|| {
                    config_error("tax_rates must be a non-empty list of percentages between 0 and 100 with at most two decimals")
                })?
            }
            Some(_) => return Err(config_error("tax_rates must be a list of percentages")),
        };

        let deny = match t.string("validation_deny")?.as_deref() {
            None | Some("redirect") => DenyStyle::Redirect,
            Some("status_400") => DenyStyle::Status400,
            Some(_) => {
                return Err(config_error(
                    "validation_deny must be \"redirect\" or \"status_400\"",
                ))
            }
        };
        let on_error = match t.string("validation_on_error")?.as_deref() {
            None | Some("approve") => OnError::Approve,
            Some("deny") => OnError::Deny,
            Some(_) => {
                return Err(config_error(
                    "validation_on_error must be \"approve\" or \"deny\"",
                ))
            }
        };
        let budget_ms = t.number("validation_timeout_ms", 2_500)?;
        if budget_ms >= 3_000 {
            return Err(config_error(
                "validation_timeout_ms must stay under Kustom's 3000 ms",
            ));
        }
        let country = t.string("purchase_country")?;
        if country
            .as_deref()
            .is_some_and(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()))
        {
            return Err(config_error("purchase_country must be two letters"));
        }
        let prefix = map
            .get("payment_number_prefix")
            .map(|_| t.string("payment_number_prefix"))
            .transpose()?
            .map(|p| p.ok_or_else(|| config_error("payment_number_prefix is empty")))
            .transpose()?
            .unwrap_or_else(|| "KUSTOM-".to_string());

        let push_reads_per_window = u32::try_from(t.number("push_reads_per_window", 30)?)
            .map_err(|_| config_error("push_reads_per_window is too large"))?;
        // The per-order limit sits below the global ceiling: more would make it no limit.
        let push_reads_per_order = u32::try_from(t.number(
            "push_reads_per_order",
            3.min(u64::from(push_reads_per_window)),
        )?)
        .ok()
        .filter(|&n| n <= push_reads_per_window)
        .ok_or_else(|| {
            config_error("push_reads_per_order must not be above push_reads_per_window")
        })?;

        Ok(Self {
            api_key: Secret::new(api_key),
            username,
            api_base,
            payment_number_prefix: prefix,
            timeout: Duration::from_millis(t.number("timeout_ms", 10_000)?),
            terms_url: t.url("terms_url")?,
            checkout_url: t.url("checkout_url")?,
            confirmation_url: t.url("confirmation_url")?,
            purchase_country: country.map(|c| c.to_ascii_uppercase()),
            locale: t.string("locale")?,
            tax_rates,
            validation: ValidationConfig {
                enabled: t.flag("validation", true)?,
                require_success: t.flag("require_validation", false)?,
                callback_url: t.url("validation_callback_url")?,
                callback_token: t.string("validation_callback_token")?.map(Secret::new),
                budget: Duration::from_millis(budget_ms),
                deny,
                deny_url: t.url("validation_deny_url")?,
                on_error,
            },
            push_reads_per_window,
            push_reads_per_order,
            push_window: Duration::from_millis(t.number("push_window_ms", 60_000)?),
        })
    }
}

/// Kustom's market and language for a currency, when the merchant configured none.
pub(crate) fn market_for(currency: &str) -> Option<(&'static str, &'static str)> {
    Some(match currency {
        "SEK" => ("SE", "sv-SE"),
        "NOK" => ("NO", "nb-NO"),
        "DKK" => ("DK", "da-DK"),
        // Finland was Klarna Checkout's euro market; a shop selling elsewhere in the euro
        // area sets purchase_country and locale.
        "EUR" => ("FI", "fi-FI"),
        "GBP" => ("GB", "en-GB"),
        "CHF" => ("CH", "de-CH"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_api_base_follows_the_key_unless_set() {
        let c = KustomConfig::from_value(&json!({ "api_key": "kco_test_api_x" })).unwrap();
        assert_eq!(c.api_base, PLAYGROUND_API);
        assert_eq!(c.payment_number_prefix, "KUSTOM-");
        let c = KustomConfig::from_value(&json!({ "api_key": "kco_live_api_x" })).unwrap();
        assert_eq!(c.api_base, LIVE_API);
        let c = KustomConfig::from_value(
            &json!({ "api_key": "k", "api_base": "http://127.0.0.1:1/fakes/kustom/" }),
        )
        .unwrap();
        assert_eq!(c.api_base, "http://127.0.0.1:1/fakes/kustom");
    }

    #[test]
    fn a_live_key_or_the_production_api_is_a_live_credential() {
        let live = |table: Value| KustomConfig::from_value(&table).unwrap().live_credential();
        assert_eq!(
            live(json!({ "api_key": "kco_live_api_x" })),
            Some("api_key")
        );
        assert_eq!(
            live(
                json!({ "api_key": "kco_live_api_x", "api_base": "http://127.0.0.1:1/fakes/kustom" })
            ),
            Some("api_key"),
            "a live key is live wherever it is sent"
        );
        assert_eq!(
            live(json!({ "api_key": "kco_test_api_x", "api_base": "https://API.kustom.co/" })),
            Some("api_base")
        );
        assert_eq!(live(json!({ "api_key": "kco_test_api_x" })), None);
        assert_eq!(
            live(json!({ "api_key": "k", "api_base": "http://127.0.0.1:1/fakes/kustom" })),
            None
        );
    }

    #[test]
    fn values_from_the_environment_arrive_as_text_and_are_read() {
        let c = KustomConfig::from_value(&json!({
            "api_key": "k", "validation": "false", "validation_timeout_ms": "900",
            "push_reads_per_window": "5", "tax_rates": ["25", 12, "6%", 25.5],
        }))
        .unwrap();
        assert!(!c.validation.enabled);
        assert_eq!(c.validation.budget, Duration::from_millis(900));
        assert_eq!(c.push_reads_per_window, 5);
        assert_eq!(c.push_reads_per_order, 3);
        assert_eq!(c.tax_rates.as_slice(), &[600, 1200, 2500, 2550]);
    }

    #[test]
    fn the_per_order_push_limit_defaults_below_the_global_ceiling() {
        let c = KustomConfig::from_value(&json!({ "api_key": "k" })).unwrap();
        assert_eq!((c.push_reads_per_window, c.push_reads_per_order), (30, 3));
        let c = KustomConfig::from_value(&json!({ "api_key": "k", "push_reads_per_window": 2 }))
            .unwrap();
        assert_eq!((c.push_reads_per_window, c.push_reads_per_order), (2, 2));
        let c = KustomConfig::from_value(&json!({ "api_key": "k", "push_reads_per_order": "7" }))
            .unwrap();
        assert_eq!(c.push_reads_per_order, 7);
    }

    #[test]
    fn bad_tables_are_refused_without_echoing_the_key() {
        let cases = [
            json!({}),
            json!({ "api_key": "  " }),
            json!({ "api_key": "kco_secret", "api_base": "/relative" }),
            json!({ "api_key": "kco_secret", "api_kye": "typo" }),
            json!({ "api_key": "kco_secret", "tax_rates": [25.123] }),
            json!({ "api_key": "kco_secret", "tax_rates": [] }),
            json!({ "api_key": "kco_secret", "validation_timeout_ms": 3000 }),
            json!({ "api_key": "kco_secret", "validation_deny": "teapot" }),
            json!({ "api_key": "kco_secret", "purchase_country": "SWE" }),
            json!({ "api_key": "kco_secret", "terms_url": "terms" }),
            json!({ "api_key": "kco_secret", "payment_number_prefix": "" }),
            json!({ "api_key": "kco_secret", "username": "a:b" }),
            json!({ "api_key": "kco_secret", "push_reads_per_window": 5, "push_reads_per_order": 6 }),
            json!({ "api_key": "kco_secret", "push_reads_per_order": 0 }),
        ];
        for config in cases {
            let err = KustomConfig::from_value(&config).unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{config}: {err}");
            assert!(!err.to_string().contains("kco_secret"), "{err}");
        }
    }
}
