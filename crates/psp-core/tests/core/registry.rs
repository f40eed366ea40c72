//! The registry's rules: duplicates and unknown ids fail fast, a provider refusing its
//! table fails the build, and the Hantera mode decides about live credentials and
//! test-only providers (errors name keys, never values).

use std::collections::BTreeMap;
use std::sync::Arc;

use psp_core::{
    async_trait, Capabilities, CaptureDone, CaptureRequest, CheckoutRequest, CheckoutSession,
    HanteraMode, Provider, ProviderContext, ProviderError, ProviderRegistration, PspPayment,
    Registry, RegistryError, VerifiedEvent, WebhookDelivery, WebhookError, ALLOW_WITH_REAL_HANTERA,
};

fn refuse(_: &ProviderContext<'_>) -> Result<Arc<dyn Provider>, ProviderError> {
    Err(ProviderError::Config("webhook_secret is missing".into()))
}

/// A provider that is live when its table says `"live": true`, and refuses any key but
/// `live`, so a test sees exactly the table the registry handed over.
struct Dummy {
    live: bool,
}

#[async_trait]
impl Provider for Dummy {
    fn id(&self) -> &'static str {
        "dummy"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn payment_number_prefix(&self) -> &str {
        "D-"
    }
    async fn checkout(&self, _: CheckoutRequest<'_>) -> Result<CheckoutSession, ProviderError> {
        Err(ProviderError::Unsupported("checkout"))
    }
    async fn verify_webhook(&self, _: &WebhookDelivery<'_>) -> Result<VerifiedEvent, WebhookError> {
        Err(WebhookError::Malformed("unused".into()))
    }
    async fn fetch(&self, psp_ref: &str) -> Result<PspPayment, ProviderError> {
        Err(ProviderError::NotFound(psp_ref.into()))
    }
    async fn capture(&self, _: CaptureRequest<'_>) -> Result<CaptureDone, ProviderError> {
        Err(ProviderError::Unsupported("capture"))
    }
    async fn void(&self, _: &str, _: &str) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported("void"))
    }
    fn live_credential(&self) -> Option<&'static str> {
        self.live.then_some("secret_key")
    }
}

fn dummy(ctx: &ProviderContext<'_>) -> Result<Arc<dyn Provider>, ProviderError> {
    let table = ctx.config.as_object().cloned().unwrap_or_default();
    if let Some(key) = table.keys().find(|k| *k != "live") {
        return Err(ProviderError::Config(format!("unknown key {key:?}")));
    }
    let live = table.get("live") == Some(&serde_json::Value::Bool(true));
    Ok(Arc::new(Dummy { live }))
}

static A: ProviderRegistration = ProviderRegistration {
    id: "alpha",
    build: refuse,
    test_only: false,
};
static A2: ProviderRegistration = ProviderRegistration {
    id: "alpha",
    build: refuse,
    test_only: false,
};
static REAL: ProviderRegistration = ProviderRegistration {
    id: "real",
    build: dummy,
    test_only: false,
};
static TEST_ONLY: ProviderRegistration = ProviderRegistration {
    id: "testonly",
    build: dummy,
    test_only: true,
};

fn one(id: &str, table: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([(id.to_string(), table)])
}

const SANDBOX: HanteraMode = HanteraMode::Sandbox;
const REAL_HANTERA: HanteraMode = HanteraMode::Real;

#[test]
fn a_duplicate_registration_fails_fast() {
    let err = Registry::build_from(
        [&A, &A2],
        &BTreeMap::new(),
        "http://x",
        SANDBOX,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(matches!(err, RegistryError::Duplicate("alpha")));
}

#[test]
fn a_configured_provider_that_is_not_compiled_in_fails_fast() {
    let configured = one("paypal", serde_json::json!({}));
    let err = Registry::build_from(
        [&A],
        &configured,
        "http://x",
        SANDBOX,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("paypal"), "{err}");
}

#[test]
fn a_provider_refusing_its_config_fails_the_build() {
    let configured = one("alpha", serde_json::json!({}));
    let err = Registry::build_from(
        [&A],
        &configured,
        "http://x",
        SANDBOX,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("webhook_secret"), "{err}");
}

#[test]
fn unconfigured_providers_are_not_enabled() {
    let reg = Registry::build_from(
        [&A],
        &BTreeMap::new(),
        "http://x",
        SANDBOX,
        &testkit::mem::services(),
    )
    .unwrap();
    assert_eq!(reg.ids().count(), 0);
}

#[test]
fn a_live_credential_is_refused_next_to_the_sandbox_and_named_by_its_key() {
    let live = one("real", serde_json::json!({ "live": true }));
    let err = Registry::build_from(
        [&REAL],
        &live,
        "http://x",
        SANDBOX,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, RegistryError::LiveInSandbox { id, key: "secret_key" } if id == "real"),
        "{err}"
    );
    assert!(err.to_string().contains("secret_key"), "{err}");
    let reg = Registry::build_from(
        [&REAL],
        &live,
        "http://x",
        REAL_HANTERA,
        &testkit::mem::services(),
    )
    .unwrap();
    assert_eq!(reg.ids().collect::<Vec<_>>(), ["real"]);
    let test = one("real", serde_json::json!({ "live": false }));
    Registry::build_from(
        [&REAL],
        &test,
        "http://x",
        SANDBOX,
        &testkit::mem::services(),
    )
    .unwrap();
}

#[test]
fn a_test_only_provider_next_to_a_real_hantera_needs_the_explicit_flag() {
    let plain = one("testonly", serde_json::json!({}));
    let err = Registry::build_from(
        [&TEST_ONLY],
        &plain,
        "http://x",
        REAL_HANTERA,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, RegistryError::TestOnlyWithRealHantera { id } if id == "testonly"),
        "{err}"
    );
    assert!(err.to_string().contains(ALLOW_WITH_REAL_HANTERA), "{err}");

    // Allowed, the flag is taken out of the table (the provider refuses unknown keys)
    // and the registry lists the provider for the start-up warning.
    for flag in [serde_json::json!(true), serde_json::json!("true")] {
        let allowed = one(
            "testonly",
            serde_json::json!({ ALLOW_WITH_REAL_HANTERA: flag }),
        );
        let reg = Registry::build_from(
            [&TEST_ONLY],
            &allowed,
            "http://x",
            REAL_HANTERA,
            &testkit::mem::services(),
        )
        .unwrap();
        assert_eq!(reg.test_only().collect::<Vec<_>>(), ["testonly"]);
    }
    let off = one(
        "testonly",
        serde_json::json!({ ALLOW_WITH_REAL_HANTERA: false }),
    );
    assert!(Registry::build_from(
        [&TEST_ONLY],
        &off,
        "http://x",
        REAL_HANTERA,
        &testkit::mem::services()
    )
    .is_err());
    let typo = one(
        "testonly",
        serde_json::json!({ ALLOW_WITH_REAL_HANTERA: "yes please" }),
    );
    let err = Registry::build_from(
        [&TEST_ONLY],
        &typo,
        "http://x",
        REAL_HANTERA,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must be true or false"), "{err}");
}

#[test]
fn a_test_only_provider_needs_no_flag_next_to_the_sandbox_and_other_providers_never_take_it() {
    let plain = one("testonly", serde_json::json!({}));
    let reg = Registry::build_from(
        [&TEST_ONLY],
        &plain,
        "http://x",
        SANDBOX,
        &testkit::mem::services(),
    )
    .unwrap();
    assert_eq!(reg.test_only().collect::<Vec<_>>(), ["testonly"]);
    // On a provider that is not test-only the flag means nothing: the provider sees it
    // and refuses it as an unknown key.
    let flagged = one("real", serde_json::json!({ ALLOW_WITH_REAL_HANTERA: true }));
    let err = Registry::build_from(
        [&REAL],
        &flagged,
        "http://x",
        REAL_HANTERA,
        &testkit::mem::services(),
    )
    .unwrap_err();
    assert!(err.to_string().contains(ALLOW_WITH_REAL_HANTERA), "{err}");
}
