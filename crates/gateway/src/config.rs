//! Configuration: one TOML file, every key overridable from the environment as
//! `PSP_<SECTION>__<KEY>` (for example `PSP_SERVER__LISTEN`, or
//! `PSP_PROVIDERS__MOCK__WEBHOOK_SECRET`). A provider is enabled when its table is present.
//!
//! With no file at all the gateway runs on its embedded default: an in-process Hantera
//! sandbox, the mock provider with its fake PSP, and an SQLite file in the working folder.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use psp_core::Secret;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Durable store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Hantera; absent means the embedded sandbox.
    #[serde(default)]
    pub hantera: Option<HanteraConfig>,
    /// Enabled providers: id → the provider's own table.
    #[serde(default)]
    pub providers: BTreeMap<String, serde_json::Value>,
    /// Background work.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// The embedded sandbox (used only when `[hantera]` is absent).
    #[serde(default)]
    pub sandbox: SandboxSection,
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

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or parsed.
    #[error("{0}")]
    Parse(String),
    /// A value is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Loads the file (if any) and the `PSP_` environment overrides, then validates.
    /// Without a file and without a `[providers]` override, the mock provider is enabled.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Parse(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        } else {
            // The embedded default enables every compiled-in provider that ships a fake,
            // with the sandbox settings that match its fake.
            let providers: serde_json::Map<String, serde_json::Value> = psp_core::fakes()
                .into_iter()
                .map(|(id, fake)| (id.to_string(), (fake.sandbox_config)()))
                .collect();
            figment = figment.merge(Serialized::default("providers", providers));
        }
        figment = figment.merge(Env::prefixed("PSP_").split("__"));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.listen.parse::<SocketAddr>().map_err(|e| {
            ConfigError::Invalid(format!("server.listen {:?}: {e}", self.server.listen))
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
        Err(ConfigError::Invalid(format!(
            "{name} must be an http(s) URL, got {url:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(toml: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        f
    }

    #[test]
    fn no_file_means_the_embedded_default_with_the_mock_provider() {
        let c = Config::load(None).unwrap();
        assert!(c.hantera.is_none());
        assert!(c.providers.contains_key("mock"));
        assert_eq!(c.server.listen, "127.0.0.1:8080");
    }

    #[test]
    fn a_file_enables_exactly_the_providers_it_has_tables_for() {
        let f = write(
            "[server]\nlisten = \"127.0.0.1:9999\"\n[providers.mock]\nwebhook_secret = \"x\"\n",
        );
        let c = Config::load(Some(f.path())).unwrap();
        assert_eq!(c.providers.keys().collect::<Vec<_>>(), vec!["mock"]);
        assert_eq!(c.server.listen, "127.0.0.1:9999");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_by_name() {
        let f = write("[server]\nlisten = \"nowhere\"\n");
        let err = Config::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        let f = write("[server]\nlisten_on = \"127.0.0.1:1\"\n");
        let err = Config::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("listen_on"), "{err}");
        let f =
            write("[hantera]\nbase_url = \"ftp://x\"\nclient_id = \"a\"\nclient_secret = \"b\"\n");
        let err = Config::load(Some(f.path())).unwrap_err().to_string();
        assert!(err.contains("hantera.base_url"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/psp.toml"))).is_err());
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let f = write(
            "[server]\nadmin_token = \"admin-token-very-secret\"\n[hantera]\nbase_url = \"http://h\"\nclient_id = \"a\"\nclient_secret = \"hantera-very-secret\"\n",
        );
        let c = Config::load(Some(f.path())).unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("very-secret"), "{dump}");
    }
}
