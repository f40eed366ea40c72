//! How the client reaches Hantera: where, as whom, and how patiently.

use std::time::Duration;

use psp_core::Secret;

use crate::unverified;

/// Where and how to reach Hantera.
///
/// `Debug` is safe to log: the client secret is a [`Secret`], which prints a placeholder.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The instance's base URL, e.g. `https://acme.core.ams.hantera.cloud`. Every call goes
    /// through it, the token request included.
    pub base_url: String,
    /// The OAuth client id of the gateway's IAM client.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: Secret,
    /// The OAuth scope to ask for; see [`unverified::DEFAULT_SCOPE`].
    pub scope: String,
    /// The limit for one whole HTTP exchange, body included.
    pub timeout: Duration,
    /// The limit for opening a connection.
    pub connect_timeout: Duration,
    /// How calls that are safe to repeat are repeated.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A configuration with the default scope, timeouts and retry policy.
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            client_secret,
            scope: unverified::DEFAULT_SCOPE.to_string(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
        }
    }
}

/// Exponential backoff with jitter for calls that are safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; `1` means no retry.
    pub max_attempts: u32,
    /// The delay before the first retry, before jitter.
    pub base_delay: Duration,
    /// No delay between attempts is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy that sends every call exactly once.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}
