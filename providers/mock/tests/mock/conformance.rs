//! The provider conformance suite (`testkit::conformance`) run against the mock adapter,
//! talking over real HTTP to its fake PSP on an ephemeral port. Each check is its own test
//! with a fresh fake, so a failure names the promise that broke.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use mock::{ApproveOptions, FakeConfig, FakeMockPsp, MockProvider, SIGNATURE_HEADER};
use psp_core::{Provider, Secret};
use serde_json::json;
use testkit::conformance::{self, Harness};
use tokio::net::TcpListener;

const API_KEY: &str = "mock_sk_conformance";
/// The secret the fake signs with, first in the adapter's list.
const PRIMARY: &str = "whsec_conformance_primary";
/// A second accepted secret, as during a rotation.
const ROTATED: &str = "whsec_conformance_rotated";
/// A secret the adapter must not accept.
const UNKNOWN: &str = "whsec_conformance_unknown";

struct MockHarness {
    fake: FakeMockPsp,
    provider: Arc<MockProvider>,
}

impl MockHarness {
    /// Serves a fresh fake at `/mock-psp` on an ephemeral loopback port, as the gateway
    /// nests it, and configures the adapter against it with two webhook secrets.
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("an ephemeral loopback port");
        let base = format!(
            "http://{}/mock-psp",
            listener.local_addr().expect("a bound address")
        );
        let fake = FakeMockPsp::new(FakeConfig {
            api_key: API_KEY.into(),
            webhook_secret: Secret::new(PRIMARY),
            public_base: base.clone(),
        });
        let router = Router::new().nest("/mock-psp", fake.router());
        tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the fake PSP serves");
        });
        let provider = MockProvider::from_config(
            &json!({
                "webhook_secret": PRIMARY,
                "webhook_secrets": [ROTATED],
                "api_key": API_KEY,
                "api_base": base,
            }),
            "http://127.0.0.1:1",
        )
        .expect("the mock adapter accepts its configuration");
        Self {
            fake,
            provider: Arc::new(provider),
        }
    }
}

#[async_trait]
impl Harness for MockHarness {
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
        // The shape the fake sends: an event envelope around the payment object.
        json!({
            "id": event_id,
            "object": "event",
            "type": "payment.authorized",
            "created": psp_core::signature::unix_now(),
            "data": { "object": {
                "object": "payment",
                "id": psp_ref,
                "status": "authorized",
                "amount": 12345,
                "currency": "SEK",
                "authorized_amount": 12345,
                "captured_amount": 0,
            }},
        })
        .to_string()
        .into_bytes()
    }

    async fn authorize(&self, psp_ref: &str) {
        // The webhook is skipped: the checks complete by re-reading the PSP, and the
        // webhook URL they hand out has no listener.
        self.fake
            .approve(
                psp_ref,
                ApproveOptions {
                    skip_webhook: true,
                    ..ApproveOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("the fake PSP could not approve {psp_ref}: {e}"));
    }

    async fn captures_at_psp(&self, psp_ref: &str) -> usize {
        self.fake.captures_of(psp_ref).len()
    }

    async fn sessions_at_psp(&self) -> usize {
        self.fake.payments().len()
    }
}

#[tokio::test]
async fn checkout_with_the_same_key_returns_the_same_session() {
    conformance::checkout_with_the_same_key_returns_the_same_session(&MockHarness::start().await)
        .await;
}

#[tokio::test]
async fn a_valid_signature_verifies_and_names_the_payment() {
    conformance::a_valid_signature_verifies_and_names_the_payment(&MockHarness::start().await)
        .await;
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    conformance::a_forged_signature_is_refused(&MockHarness::start().await).await;
}

#[tokio::test]
async fn a_stale_timestamp_is_refused() {
    conformance::a_stale_timestamp_is_refused(&MockHarness::start().await).await;
}

#[tokio::test]
async fn a_replayed_delivery_yields_the_same_event_id() {
    conformance::a_replayed_delivery_yields_the_same_event_id(&MockHarness::start().await).await;
}

#[tokio::test]
async fn every_configured_secret_verifies_during_rotation() {
    conformance::every_configured_secret_verifies_during_rotation(&MockHarness::start().await)
        .await;
}

#[tokio::test]
async fn an_unknown_secret_is_refused() {
    conformance::an_unknown_secret_is_refused(&MockHarness::start().await).await;
}

#[tokio::test]
async fn an_authorized_payment_completes_the_cart_once() {
    conformance::an_authorized_payment_completes_the_cart_once(&MockHarness::start().await).await;
}

#[tokio::test]
async fn capture_with_the_same_key_captures_once() {
    conformance::capture_with_the_same_key_captures_once(&MockHarness::start().await).await;
}

#[tokio::test]
async fn every_check_passes_in_turn_on_one_fake() {
    // The checks count at the PSP by difference, so they may share one fake in sequence.
    conformance::run_all(&MockHarness::start().await).await;
}
