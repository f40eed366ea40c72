//! Shared set-up for the Stripe tests: a fake Stripe on an ephemeral loopback port, the
//! adapter configured against it, and a small webhook receiver.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use psp_core::{Currency, Money, Secret};
use serde_json::{json, Value};
use stripe::{FakeStripe, FakeStripeConfig, StripeProvider};
use tokio::net::TcpListener;

pub(crate) const SECRET_KEY: &str = "sk_test_suite";
pub(crate) const PUBLISHABLE_KEY: &str = "pk_test_suite";
/// The secret the fake signs with, first in the adapter's list.
pub(crate) const PRIMARY: &str = "whsec_suite_primary";
/// A second accepted secret, as during a rotation.
pub(crate) const ROTATED: &str = "whsec_suite_rotated";
/// A secret the adapter must not accept.
pub(crate) const UNKNOWN: &str = "whsec_suite_unknown";

/// A fake Stripe served at `/fakes/stripe` on an ephemeral port, as the gateway nests it.
pub(crate) struct Fake {
    pub(crate) fake: FakeStripe,
    /// `http://127.0.0.1:<port>/fakes/stripe`.
    pub(crate) base: String,
}

pub(crate) async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("an ephemeral loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the server serves");
    });
    format!("http://{addr}")
}

pub(crate) async fn start_fake(webhook_url: Option<String>) -> Fake {
    // The port is needed for the fake's public base before the router is built, so the
    // listener is bound first.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("an ephemeral loopback port");
    let base = format!(
        "http://{}/fakes/stripe",
        listener.local_addr().expect("a bound address")
    );
    let fake = FakeStripe::new(FakeStripeConfig {
        secret_key: SECRET_KEY.into(),
        publishable_key: PUBLISHABLE_KEY.into(),
        webhook_secret: Secret::new(PRIMARY),
        public_base: base.clone(),
        webhook_url,
        api_version: stripe::DEFAULT_API_VERSION.into(),
    });
    let router = Router::new().nest("/fakes/stripe", fake.router());
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the fake Stripe serves");
    });
    Fake { fake, base }
}

/// The adapter against `base`, with `extra` keys merged into its table.
pub(crate) fn provider(base: &str, extra: Value) -> StripeProvider {
    let mut table = json!({
        "secret_key": SECRET_KEY,
        "publishable_key": PUBLISHABLE_KEY,
        "webhook_secrets": [PRIMARY, ROTATED],
        "api_base": base,
        "timeout_ms": 2000,
    });
    if let (Some(t), Some(e)) = (table.as_object_mut(), extra.as_object()) {
        t.extend(e.clone());
    }
    StripeProvider::from_config(&table).expect("the adapter accepts its configuration")
}

pub(crate) async fn world(extra: Value) -> (Fake, Arc<StripeProvider>) {
    let fake = start_fake(None).await;
    let provider = Arc::new(provider(&fake.base, extra));
    (fake, provider)
}

pub(crate) fn money(major: &str, code: &str) -> Money {
    Money::parse_major(major, Currency::from_code(code).expect("a currency")).expect("an amount")
}

pub(crate) fn sek(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("SEK").expect("SEK"))
}

/// What a webhook receiver got: headers and exact body of each delivery.
#[derive(Clone, Default)]
pub(crate) struct Inbox {
    pub(crate) received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

/// A receiver answering 200 to every POST at `/hook`; returns its URL.
pub(crate) async fn receiver() -> (String, Inbox) {
    let inbox = Inbox::default();
    let sink = inbox.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.received.lock().push((headers, body));
                "ok"
            }
        }),
    );
    let base = serve(router).await;
    (format!("{base}/hook"), inbox)
}

/// Polls `check` until it returns `Some`, or panics with `what` after ten seconds.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP client that follows no redirects.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}
