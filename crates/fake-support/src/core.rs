//! What every fake is made of.

use parking_lot::Mutex;

/// A fake's parts: its configuration, the client it calls the merchant with (webhooks,
/// pushes, validation), and everything it holds behind one lock. No handler awaits while
/// holding the lock, so every API call is atomic: two calls with one idempotency key never
/// both act.
#[derive(Debug)]
pub struct FakeCore<C, S> {
    /// How the fake is set up.
    pub config: C,
    /// The client for calls to the merchant.
    pub http: reqwest::Client,
    /// Everything the fake holds.
    pub state: Mutex<S>,
}

impl<C, S> FakeCore<C, S> {
    /// A fake that sends webhooks with [`crate::delivery::webhook_client`].
    pub fn new(config: C, state: S) -> Self {
        Self::with_client(config, crate::delivery::webhook_client(), state)
    }

    /// A fake calling the merchant with `http`.
    pub fn with_client(config: C, http: reqwest::Client, state: S) -> Self {
        Self {
            config,
            http,
            state: Mutex::new(state),
        }
    }
}

/// A public base URL without its trailing slash, as fakes build their links from it.
pub fn base_url(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}
