//! The harness shared by the integration tests: the fake on an ephemeral port, a webhook
//! receiver, and helpers that wait for a condition by polling with a deadline.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use mock::fake::Faults;
use mock::{FakeConfig, FakeMockPsp, MockProvider};
use parking_lot::Mutex;
use psp_core::{CartState, Currency, Money, RenderedCart, Secret, WebhookDelivery};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub(crate) const API_KEY: &str = "mock_sk_integration";
pub(crate) const SECRET: &str = "whsec_integration";

/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// Serves a router on an ephemeral port of the loopback interface.
pub(crate) async fn serve_on(listener: TcpListener, router: Router) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

pub(crate) async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// One webhook as the receiver got it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The delivery as the gateway would hand it to the adapter.
    pub(crate) fn delivery(&self) -> WebhookDelivery<'_> {
        WebhookDelivery {
            headers: &self.headers,
            body: &self.body,
            query: None,
            now: SystemTime::now(),
        }
    }
}

/// A tiny webhook endpoint that records what arrives and can refuse the first attempts.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    log: Arc<Mutex<Vec<Received>>>,
    refuse: Arc<AtomicUsize>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let refuse = Arc::new(AtomicUsize::new(0));
        let (l, r) = (log.clone(), refuse.clone());
        let router = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let (l, r) = (l.clone(), r.clone());
                async move {
                    l.lock().push(Received { headers, body });
                    let refused = r
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if refused {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let addr = serve_on(bind().await, router).await;
        Self {
            url: format!("http://{addr}/hook"),
            log,
            refuse,
        }
    }

    /// Answers 500 to the next `n` deliveries.
    pub(crate) fn refuse_next(&self, n: usize) {
        self.refuse.store(n, Ordering::SeqCst);
    }

    pub(crate) fn all(&self) -> Vec<Received> {
        self.log.lock().clone()
    }

    /// Every delivery about one payment.
    pub(crate) fn for_payment(&self, payment_id: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.json()["data"]["object"]["id"] == payment_id)
            .collect()
    }

    /// Waits for a delivery of the given type about the payment.
    pub(crate) async fn wait_for(&self, payment_id: &str, event_type: &str) -> Received {
        wait_until(&format!("a {event_type} webhook for {payment_id}"), || {
            self.for_payment(payment_id)
                .into_iter()
                .find(|r| r.json()["type"] == event_type)
        })
        .await
    }
}

/// Polls `check` until it yields a value, failing the test at the deadline.
pub(crate) async fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The fake served at `/mock-psp` on an ephemeral port, and a webhook receiver.
pub(crate) struct Harness {
    pub(crate) fake: FakeMockPsp,
    /// `http://127.0.0.1:<port>/mock-psp`
    pub(crate) base: String,
    pub(crate) receiver: Receiver,
    /// A client that does not follow redirects, so tests see the 303.
    pub(crate) http: reqwest::Client,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        let listener = bind().await;
        let base = format!("http://{}/mock-psp", listener.local_addr().unwrap());
        let fake = FakeMockPsp::new(FakeConfig {
            api_key: API_KEY.into(),
            webhook_secret: Secret::new(SECRET),
            public_base: base.clone(),
        });
        // Nested as the gateway nests it, so that relative paths are exercised.
        serve_on(listener, Router::new().nest("/mock-psp", fake.router())).await;
        Self {
            fake,
            base,
            receiver: Receiver::start().await,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to the API with the right key.
    pub(crate) fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(API_KEY)
    }

    pub(crate) fn post(&self, path: &str, key: &str, body: Value) -> reqwest::RequestBuilder {
        self.api(reqwest::Method::POST, path)
            .header("Idempotency-Key", key)
            .json(&body)
    }

    /// The body of a valid create request.
    pub(crate) fn create_body(&self, amount: i64) -> Value {
        json!({
            "amount": amount,
            "currency": "SEK",
            "cart_id": uuid::Uuid::new_v4().to_string(),
            "return_url": "https://shop.example/return?order=42",
            "webhook_url": self.receiver.url,
        })
    }

    /// Creates a payment through the API and returns its JSON.
    pub(crate) async fn create(&self, amount: i64) -> Value {
        let key = uuid::Uuid::new_v4().to_string();
        let resp = self
            .post("/v1/payments", &key, self.create_body(amount))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        self.fake.set_faults(faults);
    }

    /// An adapter configured against this fake, with extra config keys merged in.
    pub(crate) fn provider(&self, extra: Value) -> MockProvider {
        let mut config = json!({
            "webhook_secret": SECRET,
            "api_key": API_KEY,
            "api_base": self.base,
        });
        if let (Value::Object(c), Value::Object(e)) = (&mut config, extra) {
            c.extend(e);
        }
        MockProvider::from_config(&config, "http://127.0.0.1:1").unwrap()
    }
}

/// An error body's code.
pub(crate) async fn error_code(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.unwrap();
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

pub(crate) fn sek(minor: i64) -> Money {
    Money::from_minor(minor, Currency::from_code("SEK").unwrap())
}

/// A rendered open cart in SEK.
pub(crate) fn cart(total: &str) -> RenderedCart {
    let cart: RenderedCart = serde_json::from_value(json!({
        "cartId": uuid::Uuid::new_v4(),
        "cartState": "open",
        "currencyCode": "SEK",
        "orderTotal": serde_json::from_str::<Value>(total).unwrap(),
    }))
    .unwrap();
    assert_eq!(cart.cart_state, CartState::Open);
    cart
}
