//! The provider conformance suite (`testkit::conformance`) run against the Stripe adapter,
//! talking over real HTTP to the fake Stripe on an ephemeral port. Each check is its own
//! test with a fresh fake, so a failure names the promise that broke.

use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{Fake, PRIMARY, ROTATED, UNKNOWN};
use psp_core::{Provider, Secret};
use serde_json::json;
use stripe::fake::PM_VISA;
use stripe::{StripeProvider, SIGNATURE_HEADER};
use testkit::conformance::{self, Harness};

struct StripeHarness {
    fake: Fake,
    provider: Arc<StripeProvider>,
}

impl StripeHarness {
    async fn start() -> Self {
        let (fake, provider) = common::world(json!({})).await;
        Self { fake, provider }
    }
}

#[async_trait]
impl Harness for StripeHarness {
    fn provider(&self) -> Arc<dyn Provider> {
        self.provider.clone()
    }

    fn secrets(&self) -> (Vec<Secret>, Secret) {
        (
            vec![Secret::new(PRIMARY), Secret::new(ROTATED)],
            Secret::new(UNKNOWN),
        )
    }

    fn signature_header(&self) -> &'static str {
        SIGNATURE_HEADER
    }

    fn authorized_event(&self, event_id: &str, psp_ref: &str) -> Vec<u8> {
        // Stripe's event envelope around a PaymentIntent this gateway created (tagged in
        // its metadata), as the fake and Stripe send it.
        json!({
            "id": event_id,
            "object": "event",
            "api_version": stripe::DEFAULT_API_VERSION,
            "created": psp_core::signature::unix_now(),
            "data": { "object": {
                "id": psp_ref,
                "object": "payment_intent",
                "amount": 12345,
                "amount_capturable": 12345,
                "amount_received": 0,
                "capture_method": "manual",
                "currency": "sek",
                "metadata": { "gateway": "psp-gateway" },
                "status": "requires_capture",
            }},
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": "payment_intent.amount_capturable_updated",
        })
        .to_string()
        .into_bytes()
    }

    async fn authorize(&self, psp_ref: &str) {
        // The customer confirms with a test card. No webhook is sent: the checks complete
        // by re-reading Stripe, and no endpoint is registered at this fake.
        self.fake
            .fake
            .confirm(psp_ref, PM_VISA, false)
            .unwrap_or_else(|e| panic!("the fake Stripe could not confirm {psp_ref}: {e}"));
    }

    async fn captures_at_psp(&self, psp_ref: &str) -> usize {
        self.fake.fake.captures_of(psp_ref).len()
    }

    async fn sessions_at_psp(&self) -> usize {
        self.fake.fake.intents().len()
    }
}

#[tokio::test]
async fn checkout_with_the_same_key_returns_the_same_session() {
    conformance::checkout_with_the_same_key_returns_the_same_session(&StripeHarness::start().await)
        .await;
}

#[tokio::test]
async fn a_valid_signature_verifies_and_names_the_payment() {
    conformance::a_valid_signature_verifies_and_names_the_payment(&StripeHarness::start().await)
        .await;
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    conformance::a_forged_signature_is_refused(&StripeHarness::start().await).await;
}

#[tokio::test]
async fn a_stale_timestamp_is_refused() {
    conformance::a_stale_timestamp_is_refused(&StripeHarness::start().await).await;
}

#[tokio::test]
async fn a_replayed_delivery_yields_the_same_event_id() {
    conformance::a_replayed_delivery_yields_the_same_event_id(&StripeHarness::start().await).await;
}

#[tokio::test]
async fn every_configured_secret_verifies_during_rotation() {
    conformance::every_configured_secret_verifies_during_rotation(&StripeHarness::start().await)
        .await;
}

#[tokio::test]
async fn an_unknown_secret_is_refused() {
    conformance::an_unknown_secret_is_refused(&StripeHarness::start().await).await;
}

#[tokio::test]
async fn an_authorized_payment_completes_the_cart_once() {
    conformance::an_authorized_payment_completes_the_cart_once(&StripeHarness::start().await).await;
}

#[tokio::test]
async fn capture_with_the_same_key_captures_once() {
    conformance::capture_with_the_same_key_captures_once(&StripeHarness::start().await).await;
}

#[tokio::test]
async fn every_check_passes_in_turn_on_one_fake() {
    // The checks count at the PSP by difference, so they may share one fake in sequence.
    conformance::run_all(&StripeHarness::start().await).await;
}
