//! The provider conformance suite (`testkit::conformance`) run against the Kustom adapter
//! and the fake Kustom over real HTTP. Kustom does not sign its pushes, so the signature
//! checks skip themselves (saying so on stderr); checkout idempotency, completion and
//! capture run in full. Each check gets a fresh fake.

use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use kustom::fake::CompleteOptions;
use psp_core::{Provider, Secret};
use serde_json::json;
use testkit::conformance::{self, Harness};

struct KustomHarness {
    world: common::World,
}

impl KustomHarness {
    async fn start() -> Self {
        Self {
            world: common::world(json!({})).await,
        }
    }
}

#[async_trait]
impl Harness for KustomHarness {
    fn provider(&self) -> Arc<dyn Provider> {
        self.world.provider.clone()
    }

    // Kustom's push carries no signature; the suite does not ask for these when the
    // capabilities say so, and they are here only because the trait requires them.
    fn secrets(&self) -> (Vec<Secret>, Secret) {
        (
            vec![Secret::new("unused-1"), Secret::new("unused-2")],
            Secret::new("unused-3"),
        )
    }

    fn signature_header(&self) -> &'static str {
        "Kustom-Unsigned"
    }

    fn authorized_event(&self, _event_id: &str, _psp_ref: &str) -> Vec<u8> {
        Vec::new()
    }

    fn checkout_body(&self) -> serde_json::Value {
        json!({
            "termsUrl": "https://shop.example/terms",
            "checkoutUrl": "https://shop.example/checkout",
            "confirmationUrl": "https://shop.example/confirmation",
        })
    }

    async fn authorize(&self, psp_ref: &str) {
        // The push is skipped (the suite completes by re-reading Kustom) and so is the
        // validation call: the suite's carts live in its own in-memory Hantera.
        self.world
            .fake
            .complete(
                psp_ref,
                CompleteOptions {
                    skip_validation: true,
                    skip_push: true,
                    fraud_status: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("the fake Kustom could not complete {psp_ref}: {e}"));
    }

    async fn captures_at_psp(&self, psp_ref: &str) -> usize {
        self.world
            .fake
            .order(psp_ref)
            .and_then(|o| o.om)
            .map_or(0, |om| om.captures.len())
    }

    async fn sessions_at_psp(&self) -> usize {
        self.world.fake.orders().len()
    }
}

#[tokio::test]
async fn checkout_with_the_same_key_returns_the_same_session() {
    conformance::checkout_with_the_same_key_returns_the_same_session(&KustomHarness::start().await)
        .await;
}

#[tokio::test]
async fn the_signature_checks_do_not_apply_to_an_unsigned_push() {
    let h = KustomHarness::start().await;
    assert!(!h.world.provider.capabilities().signed_webhooks);
    // Each returns at once for a provider that does not sign.
    conformance::a_valid_signature_verifies_and_names_the_payment(&h).await;
    conformance::a_forged_signature_is_refused(&h).await;
    conformance::a_stale_timestamp_is_refused(&h).await;
    conformance::a_replayed_delivery_yields_the_same_event_id(&h).await;
    conformance::every_configured_secret_verifies_during_rotation(&h).await;
    conformance::an_unknown_secret_is_refused(&h).await;
}

#[tokio::test]
async fn an_authorized_payment_completes_the_cart_once() {
    conformance::an_authorized_payment_completes_the_cart_once(&KustomHarness::start().await).await;
}

#[tokio::test]
async fn capture_with_the_same_key_captures_once() {
    conformance::capture_with_the_same_key_captures_once(&KustomHarness::start().await).await;
}

#[tokio::test]
async fn every_check_passes_in_turn_on_one_fake() {
    conformance::run_all(&KustomHarness::start().await).await;
}
