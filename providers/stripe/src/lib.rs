//! The Stripe provider: PaymentIntents checkout, verified webhooks, manual capture, amount
//! sync, and a fake Stripe speaking Stripe's wire format.
//!
//! - [`StripeProvider`] is the adapter, registered with `inventory` under the id
//!   `"stripe"`. It creates one PaymentIntent per cart (`capture_method=manual` by
//!   default), verifies `Stripe-Signature` with the core verifier against every configured
//!   secret, re-reads PaymentIntents before anything is completed, captures with
//!   `amount_to_capture`, and cancels double payments. Requests follow the retry rule of
//!   Stripe's own libraries with one idempotency key per operation (see `client.rs`).
//! - [`currency`] is Stripe's own currency table (zero-decimal, three-decimal with a last
//!   digit of 0, ISK), so amounts are converted exactly or refused.
//! - [`fake`] is a fake Stripe: PaymentIntents with Stripe's status machine, strict form
//!   parsing, idempotent replay, test payment methods, signed events to webhook endpoints,
//!   fault injection and a hosted test page. It is registered as a
//!   `fake_support::FakeRegistration`, so the gateway mounts it at `/fakes/stripe` in
//!   `psp-gateway sandbox` and in the embedded default without naming this crate.
//!
//! Architecture invariant: the adapter talks to Stripe (or the fake) over HTTP only; the
//! two agree through Stripe's wire format, never through shared types.

#![warn(missing_docs)]

mod client;
pub mod config;
pub mod currency;
pub mod fake;
mod provider;
mod transformers;

use fake_support::FakeContext;
use psp_core::Secret;
use serde_json::{json, Value};

pub use config::{CaptureMethod, StripeConfig, DEFAULT_API_VERSION};
pub use fake::{FakeStripe, FakeStripeConfig};
pub use provider::{StripeProvider, FAKE_PATH, ID, PUBLIC_KEY_PATH, SIGNATURE_HEADER};

/// The fake's secret key in the stand-alone sandbox and the embedded default. Public on
/// purpose: no real money goes through it.
pub const SANDBOX_SECRET_KEY: &str = "sk_test_sandbox";
/// The fake's publishable key in the sandbox.
pub const SANDBOX_PUBLISHABLE_KEY: &str = "pk_test_sandbox";
/// The secret the sandbox's fake signs webhooks with.
pub const SANDBOX_WEBHOOK_SECRET: &str = "whsec_stripe_sandbox";

/// The `[providers.stripe]` table of the embedded default: the sandbox keys, which match
/// the fake's defaults. The gateway adds `api_base` (its own `/fakes/stripe`).
fn sandbox_config() -> Value {
    json!({
        "secret_key": SANDBOX_SECRET_KEY,
        "publishable_key": SANDBOX_PUBLISHABLE_KEY,
        "webhook_secrets": [SANDBOX_WEBHOOK_SECRET],
        "capture_method": "manual",
    })
}

/// Builds the fake for the gateway to mount at [`FAKE_PATH`]. With a provider table it
/// shares the provider's keys and signs with its first webhook secret; with `{}` (the
/// stand-alone sandbox) it uses the sandbox keys. It sends every event to
/// `ctx.webhook_url` when given, and to the endpoints registered through its API.
fn build_fake(ctx: &FakeContext<'_>) -> axum::Router {
    let table = ctx.config;
    let text = |key: &str| table.get(key).and_then(Value::as_str).map(str::to_string);
    let first_secret = match table.get("webhook_secrets") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => items.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    FakeStripe::new(FakeStripeConfig {
        secret_key: text("secret_key").unwrap_or_else(|| SANDBOX_SECRET_KEY.into()),
        publishable_key: text("publishable_key").unwrap_or_else(|| SANDBOX_PUBLISHABLE_KEY.into()),
        webhook_secret: Secret::new(first_secret.unwrap_or_else(|| SANDBOX_WEBHOOK_SECRET.into())),
        public_base: ctx.public_base.trim_end_matches('/').to_string(),
        webhook_url: ctx.webhook_url.map(str::to_string),
        api_version: text("api_version").unwrap_or_else(|| DEFAULT_API_VERSION.into()),
    })
    .router()
}

psp_core::inventory::submit! {
    fake_support::FakeRegistration { id: ID, build: build_fake, sandbox_config }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_config_is_a_valid_provider_table() {
        let mut table = sandbox_config();
        table["api_base"] = json!("http://127.0.0.1:1/fakes/stripe");
        let provider = StripeProvider::from_config(&table).unwrap();
        assert_eq!(provider.config().capture_method, CaptureMethod::Manual);
        assert_eq!(
            provider.config().publishable_key.as_deref(),
            Some(SANDBOX_PUBLISHABLE_KEY)
        );
    }

    #[test]
    fn stripe_and_its_fake_are_registered() {
        assert!(psp_core::Registry::compiled_in().unwrap().contains(&ID));
        assert!(fake_support::fakes().contains_key(ID));
    }
}
