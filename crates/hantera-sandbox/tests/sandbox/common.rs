//! A sandbox served on an ephemeral port and a client that speaks to it.

use hantera_sandbox::{Faults, Sandbox, SandboxConfig};
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
