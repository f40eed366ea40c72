//! Configuration: one TOML file, every key overridable from the environment as
//! `PSP_<SECTION>__<KEY>` (for example `PSP_SERVER__LISTEN`, or
//! `PSP_PROVIDERS__MOCK__WEBHOOK_SECRET`). A provider is enabled when its table is present.
//!
//! Which Hantera the gateway talks to is always explicit:
//! - with no file and no `PSP_<SECTION>__<KEY>` variable at all, the gateway runs on its
//!   embedded default: an in-process Hantera sandbox, every provider that ships a fake PSP
//!   (pointed at its fake), and an SQLite file in the working folder;
//! - a file, or a configuration made of environment variables alone, must say either
//!   `[hantera]` (a real instance) or `[sandbox] enabled = true`
//!   (`PSP_SANDBOX__ENABLED=true`; without a file that is the embedded default with the
//!   variables applied over it). Forgetting `[hantera]` is an error, never a silent sandbox.
//!
//! Environment values are kept as the exact text they are (an all-digit secret such as
//! `000123456789` stays that string); a key that wants a number or a boolean reads it
//! from that text. A value starting with `[` or `{` is read as a list or a table
//! (`PSP_PROVIDERS__KUSTOM__TAX_RATES=[25,12]`). Variables of the `PSP_` prefix without a
//! `__` (`PSP_GATEWAY_BIN`, `PSP_FUZZ_CASES`, ...) are not configuration.
//!
//! Architecture invariant: a configuration error names the key and the problem and never
//! a value (a secret may be the value, or sit on the line of a TOML syntax error).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::error::{Actual, Kind};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile};
use psp_core::{HanteraMode, ProviderServices, Registry, RegistryError, Secret};
use serde::{Deserialize, Serialize};

/// The prefix of environment variables that configure the gateway.
const ENV_PREFIX: &str = "PSP_";
/// The separator of sections and keys in those variables.
const ENV_SEPARATOR: &str = "__";
/// The name of the environment layer in figment's metadata, to tell where a value came from.
const ENV_SOURCE: &str = "PSP_ environment variables";

/// What a configuration without `[hantera]` and without `[sandbox] enabled = true` is told.
const MISSING_HANTERA: &str = "no Hantera is configured: add a [hantera] table with base_url, client_id, client_secret and hook_token (PSP_HANTERA__BASE_URL, ... in the environment) to use a Hantera instance, or set [sandbox] enabled = true (PSP_SANDBOX__ENABLED=true) to run the in-process sandbox, whose test data, fake PSPs and /sandbox routes are open to anyone";

/// The whole configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Durable store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Hantera; absent only in sandbox mode (`sandbox.enabled`).
    #[serde(default)]
    pub hantera: Option<HanteraConfig>,
    /// Enabled providers: id → the provider's own table.
    #[serde(default)]
    pub providers: BTreeMap<String, serde_json::Value>,
    /// Background work.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// The embedded sandbox: `enabled` instead of `[hantera]`, and its fault injection.
    #[serde(default)]
    pub sandbox: SandboxSection,
}

impl std::fmt::Debug for Config {
    // Provider tables hold secrets in plain JSON, so only their ids are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("store", &self.store)
            .field("hantera", &self.hantera)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("worker", &self.worker)
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Base for URLs handed to PSPs; defaults to `http://<listen address>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Bearer token for `/admin`; the admin API is off when unset.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Longest time one request may take, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// `json` for one JSON object per log line, `text` for people.
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// Longest wait for a request's headers, in milliseconds: from the connection's start
    /// for its first request, from the first byte for later ones.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection may wait for its next request, in milliseconds.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connections served at once; more wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// After SIGTERM, how long requests and jobs in flight may take before the process
    /// exits anyway, in milliseconds.
    #[serde(default = "default_shutdown_deadline_ms")]
    pub shutdown_deadline_ms: u64,
    /// A separate address for `/metrics`; unset, it is served on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Bearer token `/metrics` wants; unset, it is open.
    #[serde(default)]
    pub metrics_token: Option<Secret>,
    /// Rate limits of the storefront's payment routes.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
}

/// `[server.rate_limit]`: token buckets per client address and per cart in front of
/// checkout and confirm, each of which costs PSP calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether the limits apply.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Calls one client address may make at once.
    #[serde(default = "default_client_burst")]
    pub client_burst: u32,
    /// Calls a minute one client address may make, sustained.
    #[serde(default = "default_client_per_minute")]
    pub client_per_minute: u32,
    /// Calls for one cart at once.
    #[serde(default = "default_cart_burst")]
    pub cart_burst: u32,
    /// Calls a minute for one cart, sustained.
    #[serde(default = "default_cart_per_minute")]
    pub cart_per_minute: u32,
    /// Clients and carts tracked at most (each map), which bounds the memory.
    #[serde(default = "default_max_tracked")]
    pub max_tracked: usize,
    /// A header set by the reverse proxy in front (e.g. `x-forwarded-for`) whose last
    /// address is the client's; unset, the connection's peer address is.
    #[serde(default)]
    pub client_ip_header: Option<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            client_burst: default_client_burst(),
            client_per_minute: default_client_per_minute(),
            cart_burst: default_cart_burst(),
            cart_per_minute: default_cart_per_minute(),
            max_tracked: default_max_tracked(),
            client_ip_header: None,
        }
    }
}

impl ServerConfig {
    /// Checks the connection limits, the metrics endpoint and the rate limits.
    fn validate_edge(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.into()));
        if self.header_read_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            return invalid(
                "server.header_read_timeout_ms and server.idle_timeout_ms must be at least 1",
            );
        }
        if self.max_connections == 0 {
            return invalid("server.max_connections must be at least 1");
        }
        if let Some(addr) = &self.metrics_listen {
            addr.parse::<SocketAddr>().map_err(|_| {
                ConfigError::Invalid(
                    "server.metrics_listen must be an address and port such as 127.0.0.1:9100"
                        .into(),
                )
            })?;
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return invalid("server.metrics_token must be at least 16 characters");
        }
        let r = &self.rate_limit;
        if r.client_burst == 0
            || r.client_per_minute == 0
            || r.cart_burst == 0
            || r.cart_per_minute == 0
            || r.max_tracked == 0
        {
            return invalid("server.rate_limit: bursts, rates and max_tracked must be at least 1");
        }
        if let Some(h) = &r.client_ip_header {
            axum::http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                ConfigError::Invalid(
                    "server.rate_limit.client_ip_header must be a header name such as x-forwarded-for"
                        .into(),
                )
            })?;
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
            admin_token: None,
            body_limit_bytes: default_body_limit(),
            request_timeout_ms: default_request_timeout_ms(),
            log_format: default_log_format(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            max_connections: default_max_connections(),
            shutdown_deadline_ms: default_shutdown_deadline_ms(),
            metrics_listen: None,
            metrics_token: None,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_body_limit() -> usize {
    256 * 1024
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_log_format() -> String {
    "text".into()
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    75_000
}
fn default_max_connections() -> usize {
    512
}
fn default_shutdown_deadline_ms() -> u64 {
    25_000
}
fn default_client_burst() -> u32 {
    300
}
fn default_client_per_minute() -> u32 {
    600
}
fn default_cart_burst() -> u32 {
    30
}
fn default_cart_per_minute() -> u32 {
    30
}
fn default_max_tracked() -> usize {
    100_000
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://file.db` (created if missing) or, later, `postgres://…`.
    #[serde(default = "default_store_url")]
    pub url: Secret,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
        }
    }
}

fn default_store_url() -> Secret {
    // The URL may carry a database password, hence a Secret.
    Secret::new("sqlite://psp-gateway.db")
}

/// `[hantera]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HanteraConfig {
    /// Base URL of the Hantera instance.
    pub base_url: String,
    /// IAM client id.
    pub client_id: String,
    /// IAM client secret.
    pub client_secret: Secret,
    /// Token Hantera's forwarding rules send as `Authorization: Bearer`.
    #[serde(default)]
    pub hook_token: Option<Secret>,
    /// Per-request timeout in milliseconds.
    #[serde(default = "default_hantera_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_hantera_timeout_ms() -> u64 {
    10_000
}

/// `[worker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Whether this process runs background jobs (several replicas may share a store and
    /// only some of them work; tests also use it to hold work back).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Jobs run at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// How long a leased job is reserved for one worker, in seconds.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// How often the store is polled when nothing wakes the worker, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// First retry delay, in milliseconds; it doubles up to `max_backoff_ms`.
    #[serde(default = "default_base_backoff_ms")]
    pub base_backoff_ms: u64,
    /// Largest retry delay, in milliseconds.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Attempts before a job is `failed`.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How often the reconciliation sweep looks for quiet sessions, in milliseconds.
    #[serde(default = "default_sweep_interval_ms")]
    pub sweep_interval_ms: u64,
    /// How long a session must have been unchanged (no webhook, no checkout) before the
    /// sweep asks its PSP about it, in milliseconds.
    #[serde(default = "default_quiet_after_ms")]
    pub quiet_after_ms: u64,
    /// The most sessions one sweep looks at.
    #[serde(default = "default_sweep_batch")]
    pub sweep_batch: u32,
    /// How long a cart sync waits before it runs, in milliseconds, so that a burst of cart
    /// mutations reaches the PSP as one update.
    #[serde(default = "default_sync_delay_ms")]
    pub sync_delay_ms: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            concurrency: default_concurrency(),
            lease_secs: default_lease_secs(),
            poll_interval_ms: default_poll_ms(),
            base_backoff_ms: default_base_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            max_attempts: default_max_attempts(),
            sweep_interval_ms: default_sweep_interval_ms(),
            quiet_after_ms: default_quiet_after_ms(),
            sweep_batch: default_sweep_batch(),
            sync_delay_ms: default_sync_delay_ms(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_concurrency() -> u32 {
    16
}
fn default_lease_secs() -> u64 {
    60
}
fn default_poll_ms() -> u64 {
    500
}
fn default_base_backoff_ms() -> u64 {
    200
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_max_attempts() -> u32 {
    25
}
fn default_sweep_interval_ms() -> u64 {
    60_000
}
fn default_quiet_after_ms() -> u64 {
    300_000
}
fn default_sweep_batch() -> u32 {
    100
}
fn default_sync_delay_ms() -> u64 {
    250
}

/// `[sandbox]`: the embedded Hantera sandbox.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// Run the in-process sandbox instead of a real Hantera. A file (or an environment-only
    /// configuration) must say this or `[hantera]`; the embedded default says it implicitly.
    #[serde(default)]
    pub enabled: bool,
    /// Added latency in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of calls answered 503 without acting.
    #[serde(default)]
    pub error_rate: f64,
    /// Share of calls whose connection is dropped without acting.
    #[serde(default)]
    pub drop_rate: f64,
    /// Share of calls applied and then dropped (the caller never learns the result).
    #[serde(default)]
    pub drop_after_rate: f64,
}

/// Why a configuration was refused. The messages name keys, never values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or parsed.
    #[error("{0}")]
    Parse(String),
    /// A value is wrong.
    #[error("{0}")]
    Invalid(String),
}

/// One `PSP_<SECTION>__<KEY>` variable.
struct EnvVar {
    /// The variable's name.
    name: String,
    /// The key path, lower case (`["providers", "mock", "webhook_secret"]`).
    path: Vec<String>,
    /// The raw value.
    value: String,
}

/// The configuration variables among `vars`. Values are kept as text: figment's own
/// environment provider would read `000123456789` as the number 123456789.
fn config_vars(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<EnvVar>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains(ENV_SEPARATOR) {
            continue;
        }
        let path: Vec<String> = rest
            .split(ENV_SEPARATOR)
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Parse(format!(
                "environment variable {name}: an empty section or key between `__`"
            )));
        }
        out.push(EnvVar { name, path, value });
    }
    // The environment's order is arbitrary; a sorted order makes a conflict (a key set as
    // a value and as a table) fail the same way every time.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// An environment value as figment should see it: the exact text, or a list or table
/// when it is written as one.
fn env_value(raw: &str) -> Value {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        // Figment's parser falls back to the text itself when it is not a list or table.
        raw.parse()
            .unwrap_or_else(|never: std::convert::Infallible| match never {})
    } else {
        Value::from(raw.to_string())
    }
}

/// The environment variables as one figment layer.
struct EnvLayer(Dict);

impl EnvLayer {
    fn new(vars: &[EnvVar]) -> Result<Self, ConfigError> {
        let mut root = Dict::new();
        for var in vars {
            insert(&mut root, &var.path, env_value(&var.value)).map_err(|()| {
                ConfigError::Parse(format!(
                    "environment variable {}: its key is also set as a value by another variable",
                    var.name
                ))
            })?;
        }
        Ok(Self(root))
    }
}

fn insert(dict: &mut Dict, path: &[String], value: Value) -> Result<(), ()> {
    match path {
        [] => Err(()),
        [last] => {
            dict.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            match entry {
                Value::Dict(_, inner) => insert(inner, rest, value),
                _ => Err(()),
            }
        }
    }
}

impl figment::Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// Whether an environment value says yes, as figment reads booleans.
fn truthy(value: &str) -> bool {
    ["true", "yes", "1", "on"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(value.trim()))
}

/// Line and column (1-based, in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// What kind of value serde found, without the value.
fn kind_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "an empty value",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "a value of another kind",
    }
}

/// One figment error as a sentence that names the key and the problem, never the value:
/// figment's own messages quote values (`found string "sk_live_…"`).
fn describe(error: &figment::Error, file: Option<&str>) -> String {
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name == ENV_SOURCE);
    let mut path = error.path.clone();
    let problem = match &error.kind {
        Kind::Message(_) => "has a value that cannot be read".to_string(),
        Kind::InvalidType(actual, expected) => {
            format!("must be {expected}, not {}", kind_of(actual))
        }
        Kind::InvalidValue(_, expected) => format!("has an invalid value (expected {expected})"),
        Kind::InvalidLength(len, expected) => {
            format!("has {len} items (expected {expected})")
        }
        Kind::UnknownVariant(_, expected) => format!("must be one of: {}", expected.join(", ")),
        Kind::UnknownField(name, expected) => {
            // Figment's path ends with the unknown key already.
            if path.last() != Some(name) {
                path.push(name.clone());
            }
            if expected.is_empty() {
                "is not a known key".to_string()
            } else {
                format!("is not a known key (known here: {})", expected.join(", "))
            }
        }
        Kind::MissingField(name) => {
            path.push(name.to_string());
            "is missing".to_string()
        }
        Kind::DuplicateField(name) => {
            path.push((*name).to_string());
            "is set twice".to_string()
        }
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "is out of range".to_string(),
        Kind::Unsupported(actual) => format!("cannot be {}", kind_of(actual)),
        Kind::UnsupportedKey(actual, _) => format!("has a key that is {}", kind_of(actual)),
    };
    let key = if path.is_empty() {
        "the configuration".to_string()
    } else {
        format!("`{}`", path.join("."))
    };
    let origin = if from_env {
        format!(
            " (environment variable {ENV_PREFIX}{})",
            path.join(ENV_SEPARATOR).to_ascii_uppercase()
        )
    } else if let Some(file) = file {
        format!(" (in {file})")
    } else {
        String::new()
    };
    format!("{key}{origin} {problem}")
}

/// Whether this build has the in-process sandbox and the fake PSPs (the gateway's `fakes`
/// feature, on by default and off in a production build).
pub const SANDBOX_COMPILED: bool = cfg!(feature = "fakes");

/// Why a build without the `fakes` feature refuses what needs them.
pub const NOT_IN_THIS_BUILD: &str = "the in-process sandbox, the fake PSPs and the demo page are not in this build: it was built without the `fakes` feature (as a production build is); configure [hantera] to run against a Hantera instance, or build with the default features to try the gateway offline";

/// Refuses sandbox mode (`[sandbox] enabled = true`, or the embedded default) in a build
/// that has no sandbox, naming the feature and the fix.
fn sandbox_in_build(enabled: bool, compiled: bool) -> Result<(), ConfigError> {
    if enabled && !compiled {
        return Err(ConfigError::Invalid(format!(
            "sandbox mode ([sandbox] enabled = true, or no configuration at all) is refused: {NOT_IN_THIS_BUILD}"
        )));
    }
    Ok(())
}

/// The provider tables of the embedded default: every compiled-in provider that ships a
/// fake, with the sandbox settings that match its fake (none in a build without fakes).
fn sandbox_provider_tables() -> serde_json::Map<String, serde_json::Value> {
    #[cfg(feature = "fakes")]
    let tables = fake_support::fakes()
        .into_iter()
        .map(|(id, fake)| (id.to_string(), (fake.sandbox_config)()))
        .collect();
    #[cfg(not(feature = "fakes"))]
    let tables = serde_json::Map::new();
    tables
}

impl Config {
    /// Loads the file (if any) and the `PSP_` environment overrides, then validates. See
    /// the module documentation for when the embedded default applies.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().map(str::to_string) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => vars.push((name, value)),
                Err(_) if name.starts_with(ENV_PREFIX) && name.contains(ENV_SEPARATOR) => {
                    return Err(ConfigError::Parse(format!(
                        "environment variable {name} is not UTF-8 text"
                    )))
                }
                Err(_) => {}
            }
        }
        match file {
            Some(path) => {
                let name = path.display().to_string();
                let bytes = std::fs::read(path).map_err(|e| {
                    ConfigError::Parse(format!("config file {name} cannot be read: {}", e.kind()))
                })?;
                Self::from_sources(Some((&name, &bytes)), vars)
            }
            None => Self::from_sources(None, vars),
        }
    }

    /// Loads a configuration from a file's name and bytes (if any) and environment
    /// variables (all of them; only `PSP_<SECTION>__<KEY>` ones are read), then validates.
    pub fn from_sources(
        file: Option<(&str, &[u8])>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let vars = config_vars(env)?;
        let mut figment = Figment::new();
        let file_name = file.map(|(name, _)| name);
        match file {
            Some((name, bytes)) => {
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    let (line, column) = line_column(
                        std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
                        e.valid_up_to(),
                    );
                    ConfigError::Parse(format!(
                        "config file {name} is not UTF-8 text (line {line}, column {column})"
                    ))
                })?;
                // The TOML parser's message quotes the offending line, which may hold a
                // secret; only the position is reported.
                if let Err(e) = text.parse::<toml::Table>() {
                    let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
                    return Err(ConfigError::Parse(format!(
                        "config file {name} is not valid TOML: syntax error at line {line}, column {column} (the line is not shown, as it may hold a secret)"
                    )));
                }
                figment = figment.merge(Toml::string(text));
            }
            None => {
                let switch = vars
                    .iter()
                    .any(|v| v.path == ["sandbox", "enabled"] && truthy(&v.value));
                if vars.is_empty() || switch {
                    // The embedded default enables every compiled-in provider that ships a
                    // fake, with the sandbox settings that match its fake.
                    let providers = sandbox_provider_tables();
                    figment = figment
                        .merge(Serialized::default("providers", providers))
                        .merge(Serialized::default("sandbox.enabled", true));
                }
            }
        }
        figment = figment.merge(EnvLayer::new(&vars)?);
        // Lossy: a number or a boolean may arrive as text (every environment value does).
        let config: Config = figment.extract_lossy().map_err(|e| {
            let all: Vec<String> = e.into_iter().map(|e| describe(&e, file_name)).collect();
            ConfigError::Parse(all.join("; "))
        })?;
        if config.hantera.is_none() && !config.sandbox.enabled {
            let origin = match file_name {
                Some(name) => format!("config file {name}: "),
                None => format!(
                    "without --config, the environment configures the gateway ({}), so it must say which Hantera: ",
                    vars.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            };
            return Err(ConfigError::Invalid(format!("{origin}{MISSING_HANTERA}")));
        }
        config.validate()?;
        Ok(config)
    }

    /// Whether Hantera is a real instance or the in-process sandbox.
    pub fn hantera_mode(&self) -> HanteraMode {
        if self.hantera.is_some() {
            HanteraMode::Real
        } else {
            HanteraMode::Sandbox
        }
    }

    /// Builds the enabled providers from `tables` (the provider tables, possibly pointed at
    /// fakes) with the rules of this configuration's Hantera mode: live credentials are
    /// refused next to the sandbox, test-only providers next to a real Hantera unless
    /// allowed. Each allowed test-only provider next to a real Hantera is logged as a
    /// warning.
    pub fn build_registry(
        &self,
        tables: &BTreeMap<String, serde_json::Value>,
        public_url: &str,
        services: &ProviderServices,
    ) -> Result<Registry, RegistryError> {
        let mode = self.hantera_mode();
        let registry = Registry::build(tables, public_url, mode, services)?;
        if mode == HanteraMode::Real {
            for id in registry.test_only() {
                tracing::warn!(
                    provider = id,
                    "provider {id} is for tests only and runs next to a real Hantera (allow_with_real_hantera = true): anyone can pay with its test card"
                );
            }
        }
        Ok(registry)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.hantera, self.sandbox.enabled) {
            (None, false) => return Err(ConfigError::Invalid(MISSING_HANTERA.into())),
            (Some(_), true) => {
                return Err(ConfigError::Invalid(
                    "[hantera] and [sandbox] enabled = true are both set: keep [hantera] to use that instance, or remove it to run the in-process sandbox".into(),
                ))
            }
            (Some(_), false) => {
                let s = &self.sandbox;
                if s.latency_ms != 0 || s.error_rate != 0.0 || s.drop_rate != 0.0 || s.drop_after_rate != 0.0 {
                    return Err(ConfigError::Invalid(
                        "sandbox.latency_ms, error_rate, drop_rate and drop_after_rate apply only to the in-process sandbox ([sandbox] enabled = true), not next to [hantera]".into(),
                    ));
                }
            }
            (None, true) => {}
        }
        sandbox_in_build(self.sandbox.enabled, SANDBOX_COMPILED)?;
        self.server.listen.parse::<SocketAddr>().map_err(|_| {
            ConfigError::Invalid(
                "server.listen must be an address and port such as 127.0.0.1:8080".into(),
            )
        })?;
        if let Some(url) = &self.server.public_url {
            check_url("server.public_url", url)?;
        }
        if let Some(token) = &self.server.admin_token {
            if token.expose().len() < 16 {
                return Err(ConfigError::Invalid(
                    "server.admin_token must be at least 16 characters".into(),
                ));
            }
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "server.body_limit_bytes must be at least 1024".into(),
            ));
        }
        self.server.validate_edge()?;
        let store = self.store.url.expose();
        if !(store.starts_with("sqlite:")
            || store.starts_with("postgres://")
            || store.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "store.url must start with sqlite: or postgres://".into(),
            ));
        }
        if let Some(h) = &self.hantera {
            check_url("hantera.base_url", &h.base_url)?;
            if h.client_secret.is_empty() {
                return Err(ConfigError::Invalid(
                    "hantera.client_secret is empty".into(),
                ));
            }
        }
        for (name, rate) in [
            ("sandbox.error_rate", self.sandbox.error_rate),
            ("sandbox.drop_rate", self.sandbox.drop_rate),
            ("sandbox.drop_after_rate", self.sandbox.drop_after_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::Invalid(format!("{name} must be within 0..1")));
            }
        }
        if self.worker.concurrency == 0 || self.worker.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "worker.concurrency and worker.max_attempts must be at least 1".into(),
            ));
        }
        if self.worker.lease_secs == 0 {
            return Err(ConfigError::Invalid(
                "worker.lease_secs must be at least 1".into(),
            ));
        }
        if self.worker.sweep_interval_ms == 0 || self.worker.sweep_batch == 0 {
            return Err(ConfigError::Invalid(
                "worker.sweep_interval_ms and worker.sweep_batch must be at least 1".into(),
            ));
        }
        if self.worker.max_backoff_ms < self.worker.base_backoff_ms {
            return Err(ConfigError::Invalid(
                "worker.max_backoff_ms must not be below worker.base_backoff_ms".into(),
            ));
        }
        if let Some(token) = self.hantera.as_ref().and_then(|h| h.hook_token.as_ref()) {
            if token.expose().len() < 16 {
                return Err(ConfigError::Invalid(
                    "hantera.hook_token must be at least 16 characters".into(),
                ));
            }
        }
        Ok(())
    }

    /// Timeout of one HTTP request.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.server.request_timeout_ms)
    }
}

fn check_url(name: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        // The value is not repeated: a URL may carry credentials.
        Err(ConfigError::Invalid(format!(
            "{name} must be an http(s) URL"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sandbox_mode_is_refused_by_a_build_without_the_sandbox_naming_the_feature_and_the_fix() {
        let err = sandbox_in_build(true, false).unwrap_err().to_string();
        for named in ["`fakes` feature", "[hantera]"] {
            assert!(err.contains(named), "{named} is not named: {err}");
        }
        sandbox_in_build(true, true).unwrap();
        sandbox_in_build(false, false).unwrap();
    }

    /// A real Hantera's table, for configurations that need one.
    const HANTERA: &str =
        "[hantera]\nbase_url = \"http://h\"\nclient_id = \"a\"\nclient_secret = \"b\"\n";

    /// Loads from a TOML text (if any) and exactly these environment variables, so that
    /// tests neither read nor change the process environment.
    fn load(toml: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_sources(toml.map(|t| ("test.toml", t.as_bytes())), env)
    }

    fn error(toml: Option<&str>, env: &[(&str, &str)]) -> String {
        load(toml, env).unwrap_err().to_string()
    }

    #[test]
    fn no_file_and_no_variables_is_the_embedded_default_with_every_fake_provider() {
        let c = load(None, &[]).unwrap();
        assert!(c.hantera.is_none());
        assert!(c.sandbox.enabled);
        assert_eq!(c.hantera_mode(), HanteraMode::Sandbox);
        assert!(c.providers.contains_key("mock"));
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        // Variables of the prefix that are not `SECTION__KEY` are not configuration.
        let c = load(None, &[("PSP_FUZZ_CASES", "10"), ("PSP_GATEWAY_BIN", "/x")]).unwrap();
        assert!(c.sandbox.enabled && c.providers.contains_key("mock"));
    }

    #[test]
    fn a_file_without_hantera_is_refused_with_the_fix_unless_it_enables_the_sandbox() {
        let toml = "[providers.mock]\nwebhook_secret = \"x\"\n";
        let err = error(Some(toml), &[]);
        for fix in [
            "[hantera]",
            "base_url",
            "client_id",
            "client_secret",
            "hook_token",
            "[sandbox] enabled = true",
        ] {
            assert!(err.contains(fix), "{fix}: {err}");
        }
        let c = load(Some(&format!("[sandbox]\nenabled = true\n{toml}")), &[]).unwrap();
        assert_eq!(c.hantera_mode(), HanteraMode::Sandbox);
        assert_eq!(
            c.providers.keys().collect::<Vec<_>>(),
            ["mock"],
            "only the file's providers"
        );
        let c = load(Some(&format!("{HANTERA}{toml}")), &[]).unwrap();
        assert_eq!(c.hantera_mode(), HanteraMode::Real);
        assert!(!c.sandbox.enabled);
    }

    #[test]
    fn hantera_and_the_sandbox_together_or_sandbox_faults_next_to_hantera_are_refused() {
        let err = error(Some(&format!("{HANTERA}[sandbox]\nenabled = true\n")), &[]);
        assert!(err.contains("both"), "{err}");
        let err = error(Some(HANTERA), &[("PSP_SANDBOX__ENABLED", "true")]);
        assert!(err.contains("both"), "{err}");
        let err = error(
            Some(&format!("{HANTERA}[sandbox]\nlatency_ms = 150\n")),
            &[],
        );
        assert!(err.contains("sandbox.latency_ms"), "{err}");
        load(Some("[sandbox]\nenabled = true\nlatency_ms = 150\n"), &[]).unwrap();
    }

    #[test]
    fn environment_only_configuration_behaves_like_a_file() {
        let err = error(None, &[("PSP_SERVER__LISTEN", "127.0.0.1:0")]);
        assert!(
            err.contains("[hantera]") && err.contains("PSP_SANDBOX__ENABLED=true"),
            "{err}"
        );
        let err = error(None, &[("PSP_PROVIDERS__STRIPE__SECRET_KEY", "sk_test_x")]);
        assert!(err.contains("[hantera]"), "{err}");

        // The explicit switch: the embedded default with the variables applied over it.
        let c = load(
            None,
            &[
                ("PSP_SANDBOX__ENABLED", "true"),
                ("PSP_SERVER__LISTEN", "127.0.0.1:0"),
            ],
        )
        .unwrap();
        assert!(c.sandbox.enabled && c.providers.contains_key("mock"));
        assert_eq!(c.server.listen, "127.0.0.1:0");

        // A real Hantera from the environment: only the providers it names.
        let c = load(
            None,
            &[
                ("PSP_HANTERA__BASE_URL", "https://x.hantera.cloud"),
                ("PSP_HANTERA__CLIENT_ID", "psp-gateway"),
                ("PSP_HANTERA__CLIENT_SECRET", "s"),
                ("PSP_PROVIDERS__STRIPE__SECRET_KEY", "sk_test_x"),
            ],
        )
        .unwrap();
        assert_eq!(c.hantera_mode(), HanteraMode::Real);
        assert_eq!(c.providers.keys().collect::<Vec<_>>(), ["stripe"]);
    }

    #[test]
    fn environment_secrets_keep_their_exact_text_and_numbers_still_parse() {
        let c = load(
            Some(&format!(
                "{HANTERA}[providers.mock]\nwebhook_secret = \"x\"\n"
            )),
            &[
                ("PSP_HANTERA__CLIENT_SECRET", "000123456789"),
                ("PSP_HANTERA__HOOK_TOKEN", "0000111122223333"),
                ("PSP_SERVER__ADMIN_TOKEN", "1234567890123456789012"),
                ("PSP_PROVIDERS__MOCK__WEBHOOK_SECRET", "000123456789"),
                ("PSP_PROVIDERS__MOCK__ALLOW_WITH_REAL_HANTERA", "true"),
                ("PSP_STORE__URL", "sqlite://0123.db"),
                ("PSP_WORKER__CONCURRENCY", "32"),
                ("PSP_WORKER__ENABLED", "false"),
                ("PSP_SERVER__BODY_LIMIT_BYTES", "65536"),
                ("PSP_HANTERA__TIMEOUT_MS", "2500"),
                ("PSP_SANDBOX__ENABLED", "false"),
            ],
        )
        .unwrap();
        let h = c.hantera.as_ref().unwrap();
        assert_eq!(h.client_secret.expose(), "000123456789");
        assert_eq!(h.hook_token.as_ref().unwrap().expose(), "0000111122223333");
        assert_eq!(
            c.server.admin_token.as_ref().unwrap().expose(),
            "1234567890123456789012"
        );
        assert_eq!(c.providers["mock"]["webhook_secret"], "000123456789");
        assert_eq!(c.store.url.expose(), "sqlite://0123.db");
        assert_eq!(c.worker.concurrency, 32);
        assert!(!c.worker.enabled);
        assert_eq!(c.server.body_limit_bytes, 65536);
        assert_eq!(h.timeout_ms, 2500);
        // The provider takes the secret as the string it is.
        c.build_registry(
            &c.providers,
            "http://127.0.0.1:1",
            &testkit::mem::services(),
        )
        .unwrap();
    }

    #[test]
    fn environment_lists_and_tables_are_read_as_such() {
        let c = load(
            None,
            &[
                ("PSP_SANDBOX__ENABLED", "1"),
                ("PSP_PROVIDERS__KUSTOM__TAX_RATES", "[25, 12]"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.providers["kustom"]["tax_rates"],
            serde_json::json!([25, 12])
        );
    }

    #[test]
    fn a_bad_environment_value_is_named_by_its_variable_without_the_value() {
        let err = error(Some(HANTERA), &[("PSP_WORKER__CONCURRENCY", "notanumber")]);
        assert!(err.contains("PSP_WORKER__CONCURRENCY"), "{err}");
        assert!(!err.contains("notanumber"), "{err}");
        let err = error(
            Some(HANTERA),
            &[("PSP_SERVER__ADMIN_TOKEN", "[\"listed-secret-value\"]")],
        );
        assert!(err.contains("server.admin_token"), "{err}");
        assert!(!err.contains("listed-secret-value"), "{err}");
        let err = error(Some(HANTERA), &[("PSP_SERVER____X", "1")]);
        assert!(err.contains("PSP_SERVER____X"), "{err}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_named_without_its_value() {
        let toml =
            "[hantera]\nbase_url = \"http://h\"\nclient_id = \"a\"\nclient_secret = 987654321\n";
        let err = error(Some(toml), &[]);
        assert!(
            err.contains("hantera.client_secret") && err.contains("string"),
            "{err}"
        );
        assert!(!err.contains("987654321"), "{err}");
        let toml = format!("{HANTERA}[server]\nadmin_token = [\"in-a-list-secret\"]\n");
        let err = error(Some(&toml), &[]);
        assert!(err.contains("server.admin_token"), "{err}");
        assert!(!err.contains("in-a-list-secret"), "{err}");
        let toml = format!("{HANTERA}[store]\nurl = {{ password = \"table-secret\" }}\n");
        let err = error(Some(&toml), &[]);
        assert!(
            err.contains("store.url") && !err.contains("table-secret"),
            "{err}"
        );
    }

    #[test]
    fn a_toml_syntax_error_gives_the_position_and_never_the_line() {
        let toml = format!("{HANTERA}[server]\nadmin_token = \"unterminated-secret-value\n");
        let err = error(Some(&toml), &[]);
        assert!(err.contains("line 6"), "{err}");
        assert!(!err.contains("unterminated-secret-value"), "{err}");
        let toml = "[server]\nadmin_token = \"a-long-enough-secret\" trailing-secret\n";
        let err = error(Some(toml), &[]);
        assert!(err.contains("line 2"), "{err}");
        assert!(
            !err.contains("secret\" trailing") && !err.contains("trailing-secret"),
            "{err}"
        );
        let err = Config::from_sources(Some(("bin.toml", b"a = \"\xff\xfe\"")), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_by_name_without_the_value() {
        let err = error(
            Some(&format!(
                "{HANTERA}[server]\nlisten = \"nowhere-to-listen\"\n"
            )),
            &[],
        );
        assert!(err.contains("server.listen"), "{err}");
        assert!(!err.contains("nowhere-to-listen"), "{err}");
        let err = error(Some("[server]\nlisten_on = \"127.0.0.1:1\"\n"), &[]);
        assert!(err.contains("server.listen_on"), "{err}");
        let err = error(
            Some("[hantera]\nbase_url = \"ftp://user:pw-secret@x\"\nclient_id = \"a\"\nclient_secret = \"b\"\n"),
            &[],
        );
        assert!(
            err.contains("hantera.base_url") && !err.contains("pw-secret"),
            "{err}"
        );
        let err = error(
            Some("[hantera]\nbase_url = \"http://h\"\nclient_id = \"a\"\n"),
            &[],
        );
        assert!(
            err.contains("hantera.client_secret") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/psp.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/psp.toml"), "{err}");
    }

    #[test]
    fn a_file_enables_exactly_the_providers_it_has_tables_for() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(
            b"[sandbox]\nenabled = true\n[server]\nlisten = \"127.0.0.1:9999\"\n[providers.mock]\n",
        )
        .unwrap();
        let c = Config::load(Some(f.path())).unwrap();
        assert_eq!(c.providers.keys().collect::<Vec<_>>(), vec!["mock"]);
        assert_eq!(c.server.listen, "127.0.0.1:9999");
    }

    #[test]
    fn a_file_is_read_from_disk() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"[sandbox]\nenabled = true\n[server]\nlisten = \"127.0.0.1:9999\"\n")
            .unwrap();
        let c = Config::load(Some(f.path())).unwrap();
        assert_eq!(c.hantera_mode(), HanteraMode::Sandbox);
        assert!(c.providers.is_empty());
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let toml = "[server]\nadmin_token = \"admin-token-very-secret\"\n[hantera]\nbase_url = \"http://h\"\nclient_id = \"a\"\nclient_secret = \"hantera-very-secret\"\n[providers.mock]\nwebhook_secret = \"mock-very-secret\"\n";
        let c = load(Some(toml), &[]).unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("very-secret"), "{dump}");
        assert!(dump.contains("mock"), "{dump}");
    }

    #[test]
    fn a_live_key_next_to_the_sandbox_is_refused_by_name_and_accepted_next_to_hantera() {
        let stripe = "[providers.stripe]\nsecret_key = \"sk_live_do-not-print\"\nwebhook_secrets = [\"whsec_x\"]\n";
        let c = load(Some(&format!("[sandbox]\nenabled = true\n{stripe}")), &[]).unwrap();
        let err = c
            .build_registry(
                &c.providers,
                "http://127.0.0.1:1",
                &testkit::mem::services(),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret_key") && err.contains("live"), "{err}");
        assert!(!err.contains("do-not-print"), "{err}");
        let c = load(Some(&format!("{HANTERA}{stripe}")), &[]).unwrap();
        c.build_registry(
            &c.providers,
            "http://127.0.0.1:1",
            &testkit::mem::services(),
        )
        .unwrap();
        // The embedded default's tables are overridden from the environment too.
        let c = load(
            None,
            &[
                ("PSP_SANDBOX__ENABLED", "true"),
                ("PSP_PROVIDERS__STRIPE__SECRET_KEY", "rk_live_env-secret"),
            ],
        )
        .unwrap();
        let err = c
            .build_registry(
                &c.providers,
                "http://127.0.0.1:1",
                &testkit::mem::services(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("secret_key") && !err.contains("env-secret"),
            "{err}"
        );
    }

    #[test]
    fn the_mock_next_to_a_real_hantera_needs_its_explicit_flag() {
        let mock = "[providers.mock]\nwebhook_secret = \"whsec_x\"\n";
        let c = load(Some(&format!("{HANTERA}{mock}")), &[]).unwrap();
        let err = c
            .build_registry(
                &c.providers,
                "http://127.0.0.1:1",
                &testkit::mem::services(),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("allow_with_real_hantera = true"), "{err}");
        let c = load(
            Some(&format!("{HANTERA}{mock}allow_with_real_hantera = true\n")),
            &[],
        )
        .unwrap();
        let registry = c
            .build_registry(
                &c.providers,
                "http://127.0.0.1:1",
                &testkit::mem::services(),
            )
            .unwrap();
        assert_eq!(registry.test_only().collect::<Vec<_>>(), ["mock"]);
    }

    #[test]
    fn the_edge_limits_have_safe_defaults_and_bad_values_are_named() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.server.header_read_timeout_ms, 10_000);
        assert_eq!(c.server.idle_timeout_ms, 75_000);
        assert_eq!(c.server.max_connections, 512);
        assert_eq!(c.server.shutdown_deadline_ms, 25_000);
        assert!(c.server.metrics_listen.is_none() && c.server.metrics_token.is_none());
        assert!(c.server.rate_limit.enabled);
        for (toml, named) in [
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            (
                "[server]\nheader_read_timeout_ms = 0\n",
                "server.header_read_timeout_ms",
            ),
            (
                "[server]\nmetrics_listen = \"nowhere\"\n",
                "server.metrics_listen",
            ),
            (
                "[server]\nmetrics_token = \"short-tok\"\n",
                "server.metrics_token",
            ),
            ("[server.rate_limit]\ncart_burst = 0\n", "server.rate_limit"),
            (
                "[server.rate_limit]\nclient_ip_header = \"x forwarded\"\n",
                "client_ip_header",
            ),
        ] {
            let err = error(Some(&format!("{toml}{HANTERA}")), &[]);
            assert!(err.contains(named), "{toml}: {err}");
            assert!(
                !err.contains("short-tok") && !err.contains("nowhere"),
                "{err}"
            );
        }
        // The same keys from the environment.
        let c = load(
            Some(HANTERA),
            &[
                ("PSP_SERVER__RATE_LIMIT__CART_BURST", "7"),
                ("PSP_SERVER__METRICS_LISTEN", "127.0.0.1:9100"),
            ],
        )
        .unwrap();
        assert_eq!(c.server.rate_limit.cart_burst, 7);
        assert_eq!(c.server.metrics_listen.as_deref(), Some("127.0.0.1:9100"));
    }
}
