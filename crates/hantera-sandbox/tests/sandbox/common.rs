//! A sandbox served on an ephemeral port and a client that speaks to it.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hantera_sandbox::{Faults, HookTarget, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) struct Harness {
    pub(crate) sandbox: Sandbox,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Harness {
    pub(crate) async fn start() -> Self {
        Self::start_with(SandboxConfig::default()).await
    }

    pub(crate) async fn start_with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(sandbox.clone().serve(listener));
        Self {
            sandbox,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn token(&self) -> String {
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "psp-gateway"),
                ("client_secret", "sandbox-secret"),
                ("scope", "actors/payment:* actors/ticket:* graph:*"),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token is a string")
            .to_owned()
    }

    /// Sends an actor batch and returns the status and the JSON answer.
    pub(crate) async fn actor(&self, token: &str, path: &str, batch: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(&format!("/resources/actors/{path}")))
            .bearer_auth(token)
            .json(&batch)
            .send()
            .await
            .expect("actor request");
        let status = response.status();
        (status, response.json().await.expect("actor answer is JSON"))
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("GET request");
        let status = response.status();
        (status, response.json().await.expect("answer is JSON"))
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("POST request");
        let status = response.status();
        (status, response.json().await.expect("answer is JSON"))
    }

    /// Opens a cart under a profile and returns its id.
    pub(crate) async fn new_cart(&self, profile: &str) -> String {
        let (status, body) = self
            .post(
                "/ingress/commerce/carts",
                json!({"profileKey": profile, "locale": "sv-SE"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["cartId"].as_str().expect("cartId").to_owned()
    }

    pub(crate) async fn add_item(
        &self,
        cart: &str,
        product: &str,
        quantity: i64,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/ingress/commerce/carts/{cart}/add-item"),
            json!({"productNumber": product, "quantity": quantity}),
        )
        .await
    }

    /// Creates a payment at `id` with one successful authorization.
    pub(crate) async fn create_payment(
        &self,
        token: &str,
        id: &str,
        reference: &str,
        amount: Value,
    ) -> (StatusCode, Value) {
        self.actor(
            token,
            &format!("payment/{id}"),
            json!([{"type": "create", "body": {
            "currencyCode": "SEK", "providerKey": "mock", "externalReference": reference,
            "commands": [
                {"type": "generatePaymentNumberByPrefix", "prefix": "MOCK-"},
                {"type": "createAuthorization", "authorizationNumber": reference,
                 "amount": amount, "authorizationState": "successful"}
            ]}}]),
        )
        .await
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        self.sandbox.set_faults(faults);
    }
}

/// The first error code of a `{"errors":[…]}` answer.
pub(crate) fn error_code(body: &Value) -> &str {
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or("<no error code>")
}

/// A JSON number written as text, to compare amounts digit for digit.
pub(crate) fn number(value: &Value) -> String {
    assert!(value.is_number(), "{value} is not a number");
    value.to_string()
}

/// A JSON number with exactly these digits (`json!(40.10)` would go through `f64` and
/// lose the trailing zero).
pub(crate) fn exact(digits: &str) -> Value {
    serde_json::from_str(digits).expect("a JSON number")
}

/// The hook token the test receivers expect.
pub(crate) const HOOK_TOKEN: &str = "sandbox-tests-hook-token-0123456789";

impl Harness {
    /// A sandbox that forwards hooks to `url`, retrying fast so that tests of a gateway
    /// that is down stay short.
    pub(crate) async fn forwarding_to(url: &str) -> Self {
        let mut target = HookTarget::new(url, HOOK_TOKEN);
        target.initial_backoff = Duration::from_millis(20);
        target.max_backoff = Duration::from_millis(200);
        Self::start_with(SandboxConfig {
            hooks: Some(target),
            ..SandboxConfig::default()
        })
        .await
    }

    /// Opens a cart's event stream.
    pub(crate) async fn events(&self, cart: &str) -> Events {
        let response = self
            .http
            .get(self.url(&format!("/ingress/commerce/carts/{cart}/events")))
            .send()
            .await
            .expect("events request");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// A token, then the actor batch, for tests that only need the answer.
    pub(crate) async fn actor_once(&self, path: &str, batch: Value) -> (StatusCode, Value) {
        let token = self.token().await;
        self.actor(&token, path, batch).await
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or fails the test after 10 s.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server-sent event stream read as a client would.
pub(crate) struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event's name and JSON data; keep-alive comments are skipped. Fails the
    /// test if none comes within 10 s.
    pub(crate) async fn next(&mut self) -> (String, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if !data.is_empty() {
                    let value = serde_json::from_str(&data).expect("event data is JSON");
                    return (name, value);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("the stream stays readable")
                .expect("the stream has not ended");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Whether the server ends the stream within 10 s (events still buffered count as
    /// not ended).
    pub(crate) async fn ends(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Err(_) => return false,
                Ok(Err(_)) | Ok(Ok(None)) => return true,
                // Keep-alive comments may arrive before the end.
                Ok(Ok(Some(chunk))) => {
                    if String::from_utf8_lossy(&chunk).contains("data:") {
                        return false;
                    }
                }
            }
        }
    }
}

/// One hook the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) hook: String,
    pub(crate) authorization: Option<String>,
    pub(crate) body: Value,
}

/// A stand-in for the gateway's hook endpoints: records every hook and answers with a
/// status the test chooses (200 by default).
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    received: Arc<parking_lot::Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        Self::serve(listener)
    }

    /// A receiver on a given listener, for a gateway that comes back on its old address.
    pub(crate) fn serve(listener: tokio::net::TcpListener) -> Self {
        let addr = listener.local_addr().expect("receiver address");
        let receiver = Self {
            url: format!("http://{addr}"),
            received: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hantera/hooks/{hook}",
            axum::routing::post(
                |axum::extract::Path(hook): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let status = state.status.load(Ordering::SeqCst);
                    if status == 200 {
                        state.received.lock().push(Received {
                            hook,
                            authorization: headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                            body: serde_json::from_slice(&body).expect("a hook body is JSON"),
                        });
                    }
                    axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    /// Makes every later hook answer `status` (and not be recorded unless it is 200).
    pub(crate) fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }

    /// Waits until exactly `count` hooks have arrived, and returns them.
    pub(crate) async fn wait_for(&self, count: usize) -> Vec<Received> {
        let seen = eventually(&format!("{count} hooks"), || async {
            let received = self.received();
            (received.len() >= count).then_some(received)
        })
        .await;
        assert_eq!(seen.len(), count, "more hooks than expected: {seen:#?}");
        seen
    }
}
