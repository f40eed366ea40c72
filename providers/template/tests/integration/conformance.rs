//! The provider conformance suite (`testkit::conformance`) run against the adapter, over
//! real HTTP to its fake on an ephemeral port. Each check is its own test with a fresh
//! fake, so a failure names the promise that broke.

use std::sync::Arc;

use async_trait::async_trait;
use psp_core::{Provider, Secret};
use serde_json::json;
use template::fake::{FakeConfig, FakePsp};
use template::{Adapter, SIGNATURE_HEADER};
use testkit::conformance::{self, Harness};
use tokio::net::TcpListener;

const API_KEY: &str = "sk_conformance";
const PRIMARY: &str = "whsec_conformance_primary";
const ROTATED: &str = "whsec_conformance_rotated";
const UNKNOWN: &str = "whsec_conformance_unknown";

struct Fixture {
    fake: FakePsp,
    provider: Arc<Adapter>,
}

impl Fixture {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let fake = FakePsp::new(FakeConfig {
            api_key: API_KEY.into(),
            webhook_secret: Secret::new(PRIMARY),
            public_base: base.clone(),
        });
        let router = fake.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let provider = Adapter::from_config(
            &json!({ "webhook_secrets": [PRIMARY, ROTATED], "api_key": API_KEY, "api_base": base }),
            "http://127.0.0.1:1",
        )
        .expect("the adapter takes its configuration");
        Self {
            fake,
            provider: Arc::new(provider),
        }
    }
}

#[async_trait]
impl Harness for Fixture {
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
        json!({ "id": event_id, "type": "payment.authorized", "payment": { "id": psp_ref } })
            .to_string()
            .into_bytes()
    }

    async fn authorize(&self, psp_ref: &str) {
        // No webhook: the checks complete by re-reading the PSP.
        self.fake
            .choose(psp_ref, true, false)
            .unwrap_or_else(|| panic!("the fake could not authorize {psp_ref}"));
    }

    async fn captures_at_psp(&self, psp_ref: &str) -> usize {
        self.fake.captures_of(psp_ref)
    }

    async fn sessions_at_psp(&self) -> usize {
        self.fake.payments().len()
    }
}

#[tokio::test]
async fn checkout_with_the_same_key_returns_the_same_session() {
    conformance::checkout_with_the_same_key_returns_the_same_session(&Fixture::start().await).await;
}

#[tokio::test]
async fn a_valid_signature_verifies_and_names_the_payment() {
    conformance::a_valid_signature_verifies_and_names_the_payment(&Fixture::start().await).await;
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    conformance::a_forged_signature_is_refused(&Fixture::start().await).await;
}

#[tokio::test]
async fn a_stale_timestamp_is_refused() {
    conformance::a_stale_timestamp_is_refused(&Fixture::start().await).await;
}

#[tokio::test]
async fn a_replayed_delivery_yields_the_same_event_id() {
    conformance::a_replayed_delivery_yields_the_same_event_id(&Fixture::start().await).await;
}

#[tokio::test]
async fn every_configured_secret_verifies_during_rotation() {
    conformance::every_configured_secret_verifies_during_rotation(&Fixture::start().await).await;
}

#[tokio::test]
async fn an_unknown_secret_is_refused() {
    conformance::an_unknown_secret_is_refused(&Fixture::start().await).await;
}

#[tokio::test]
async fn an_authorized_payment_completes_the_cart_once() {
    conformance::an_authorized_payment_completes_the_cart_once(&Fixture::start().await).await;
}

#[tokio::test]
async fn capture_with_the_same_key_captures_once() {
    conformance::capture_with_the_same_key_captures_once(&Fixture::start().await).await;
}
