//! The client against the Hantera sandbox, served on a real local port.
//!
//! A recording middleware wraps the sandbox's router. It logs every request the client
//! makes, so that tests can count token requests and retries, and it can script faults
//! for the next matching requests (a 503, a refused token, an answer lost after the
//! request took effect), which makes the retry tests deterministic.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hantera_client::{ClientConfig, HanteraClient, RetryPolicy};
use hantera_sandbox::{Faults, Sandbox, SandboxConfig};
use psp_core::ports::{Charge, CreateOutcome, Hantera, HanteraError, NewPayment};
use psp_core::{CartState, Currency, Money, Secret};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

const CLIENT_ID: &str = "psp-gateway";
const CLIENT_SECRET: &str = "sandbox-secret";

// ---------------------------------------------------------------------------------------
// The recording middleware
// ---------------------------------------------------------------------------------------

/// A scripted failure for the next requests that match a method and a path prefix.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scripted {
    /// Answer 503 without passing the request on.
    Unavailable,
    /// Answer 401 `UNAUTHORIZED`, as if the token had been revoked.
    RefuseToken,
    /// Pass the request on, so that it takes effect, then drop the connection.
    LoseAnswer,
}

struct Script {
    method: Method,
    path_prefix: String,
    fault: Scripted,
    remaining: u32,
}

/// One request as the middleware saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    /// The answer's status; 0 while there is none yet.
    status: u16,
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    scripts: Mutex<Vec<Script>>,
    bearer_tokens: Mutex<Vec<String>>,
}

impl Recorder {
    fn script(&self, method: Method, path_prefix: &str, fault: Scripted, times: u32) {
        self.scripts.lock().unwrap().push(Script {
            method,
            path_prefix: path_prefix.to_string(),
            fault,
            remaining: times,
        });
    }

    fn take_fault(&self, method: &Method, path: &str) -> Option<Scripted> {
        let mut scripts = self.scripts.lock().unwrap();
        let script = scripts.iter_mut().find(|s| {
            s.remaining > 0 && s.method == method && path.starts_with(s.path_prefix.as_str())
        })?;
        script.remaining -= 1;
        Some(script.fault)
    }

    /// How many requests matched a method and a path prefix.
    fn count(&self, method: Method, path_prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && s.path.starts_with(path_prefix))
            .count()
    }

    fn token_requests(&self) -> usize {
        self.count(Method::POST, "/oauth/token")
    }

    /// How many `/resources` requests were answered 401.
    fn refused_tokens(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.starts_with("/resources") && s.status == 401)
            .count()
    }
}

/// A response whose body fails at once, so that the server aborts the connection after
/// the request was handled: the client learns nothing of the outcome.
fn lost_answer() -> Response {
    let failure = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "test dropped the answer",
        ))
    });
    Response::new(Body::from_stream(failure))
}

async fn record(State(recorder): State<Arc<Recorder>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if let Some(token) = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        recorder
            .bearer_tokens
            .lock()
            .unwrap()
            .push(token.to_string());
    }
    // The request is logged on arrival, so that one whose caller gave up (a timeout) is
    // still counted; its status is filled in once there is an answer.
    let index = {
        let mut seen = recorder.seen.lock().unwrap();
        seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            status: 0,
        });
        seen.len() - 1
    };
    let response = match recorder.take_fault(&method, &path) {
        Some(Scripted::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"errors":[{"code":"SERVICE_UNAVAILABLE","message":"scripted"}]})),
        )
            .into_response(),
        Some(Scripted::RefuseToken) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors":[{"code":"UNAUTHORIZED","message":"scripted"}]})),
        )
            .into_response(),
        Some(Scripted::LoseAnswer) => {
            let _applied = next.run(request).await;
            lost_answer()
        }
        None => next.run(request).await,
    };
    recorder.seen.lock().unwrap()[index].status = response.status().as_u16();
    response
}

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

struct Harness {
    base_url: String,
    sandbox: Sandbox,
    recorder: Arc<Recorder>,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(SandboxConfig::default()).await
    }

    async fn start_with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::new(config);
        let recorder = Arc::new(Recorder::default());
        let router = sandbox.router().layer(axum::middleware::from_fn_with_state(
            recorder.clone(),
            record,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            base_url,
            sandbox,
            recorder,
            http: reqwest::Client::new(),
        }
    }

    fn config(&self) -> ClientConfig {
        let mut config =
            ClientConfig::new(self.base_url.clone(), CLIENT_ID, Secret::new(CLIENT_SECRET));
        // Retries in tests wait a millisecond, not a tenth of a second.
        config.retry = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        };
        config
    }

    fn client(&self) -> HanteraClient {
        HanteraClient::new(self.config()).unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn post_json(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {value}");
        value
    }

    /// The sandbox's payments that carry an external reference.
    async fn payments_with_reference(&self, external_reference: &str) -> Vec<Value> {
        let payments = self.get_json("/sandbox/payments").await;
        payments
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["externalReference"] == external_reference)
            .cloned()
            .collect()
    }

    /// Opens a cart under the first profile with the given currency and puts one product
    /// in it, through the public ingress as a storefront would.
    async fn open_cart(&self, currency: &str) -> Uuid {
        let profiles = self.get_json("/ingress/commerce/cart-profiles").await;
        let profile = profiles
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["currencyCode"] == currency)
            .unwrap_or_else(|| panic!("no profile in {currency}: {profiles}"));
        let created = self
            .post_json(
                "/ingress/commerce/carts",
                json!({"profileKey": profile["profileKey"], "locale": "sv-SE"}),
            )
            .await;
        let cart_id = Uuid::from_str(created["cartId"].as_str().unwrap()).unwrap();
        let products = self.get_json("/sandbox/products").await;
        let products = products.as_array().unwrap();
        let product_number = products[0]["productNumber"].as_str().unwrap().to_string();
        self.post_json(
            &format!("/ingress/commerce/carts/{cart_id}/add-item"),
            json!({"productNumber": product_number, "quantity": 2}),
        )
        .await;
        cart_id
    }
}

fn new_payment(external_reference: &str, minor: i64) -> NewPayment {
    NewPayment {
        provider_key: "mock".into(),
        external_reference: external_reference.into(),
        amount: Money::from_minor(minor, Currency::from_code("SEK").unwrap()),
        authorization_number: external_reference.into(),
        payment_number_prefix: "MOCK-".into(),
    }
}

/// Creates a payment for the cart's total, as the gateway would.
async fn pay_for(client: &HanteraClient, cart_id: Uuid, external_reference: &str) -> Uuid {
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    let payment_id = Uuid::new_v4();
    let payment = NewPayment {
        amount: cart.total().unwrap(),
        ..new_payment(external_reference, 0)
    };
    assert_eq!(
        client.create_payment(payment_id, &payment).await.unwrap(),
        CreateOutcome::Created
    );
    payment_id
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn many_calls_share_one_token_request() {
    let h = Harness::start().await;
    let client = Arc::new(h.client());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.find_payment(&format!("ref_{i}")).await.unwrap();
            client.ping().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(h.recorder.token_requests(), 1);
    assert_eq!(h.recorder.count(Method::POST, "/resources/graph"), 12);
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires_without_a_refused_call() {
    let h = Harness::start_with(SandboxConfig {
        token_ttl: Duration::from_secs(2),
        ..SandboxConfig::default()
    })
    .await;
    let client = h.client();
    // The token lives two seconds and is refreshed 0.2 s before it expires; calls keep
    // coming until the second token request shows up, within a generous deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while h.recorder.token_requests() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refresh happened"
        );
        client.find_payment("nobody").await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(h.recorder.refused_tokens(), 0);
}

#[tokio::test]
async fn a_wrong_secret_is_unauthorized_and_asked_only_once() {
    let h = Harness::start().await;
    let mut config = h.config();
    config.client_secret = Secret::new("not-the-secret");
    let client = HanteraClient::new(config).unwrap();
    let err = client.find_payment("x").await.unwrap_err();
    assert!(matches!(err, HanteraError::Unauthorized(_)), "{err:?}");
    assert!(!format!("{err}").contains("not-the-secret"));
    assert_eq!(h.recorder.token_requests(), 1);
    assert!(matches!(
        client.ping().await,
        Err(HanteraError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn a_refused_token_is_replaced_and_the_call_sent_once_more() {
    let h = Harness::start().await;
    let client = h.client();
    client.find_payment("warm-up").await.unwrap();
    h.recorder
        .script(Method::POST, "/resources/graph", Scripted::RefuseToken, 1);
    assert_eq!(client.find_payment("x").await.unwrap(), None);
    assert_eq!(h.recorder.token_requests(), 2);
    assert_eq!(h.recorder.count(Method::POST, "/resources/graph"), 3);
}

#[tokio::test]
async fn a_token_refused_twice_is_unauthorized() {
    let h = Harness::start().await;
    let client = h.client();
    h.recorder
        .script(Method::POST, "/resources/graph", Scripted::RefuseToken, 2);
    let err = client.find_payment("x").await.unwrap_err();
    assert!(matches!(err, HanteraError::Unauthorized(_)), "{err:?}");
    assert_eq!(h.recorder.count(Method::POST, "/resources/graph"), 2);
}

// ---------------------------------------------------------------------------------------
// Carts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn get_cart_reads_an_open_cart_with_its_exact_total() {
    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let cart = client.get_cart(cart_id).await.unwrap().expect("the cart");
    assert_eq!(cart.cart_id, cart_id);
    assert_eq!(cart.cart_state, CartState::Open);
    assert_eq!(cart.items.len(), 1);
    assert!(cart.order_total > Decimal::ZERO);
    assert_eq!(cart.total().unwrap().currency.code(), "SEK");
    // The cart ingress is public: reading a cart asks for no token.
    assert_eq!(h.recorder.token_requests(), 0);
}

#[tokio::test]
async fn a_404_that_is_not_hantera_s_is_an_error_not_an_unknown_cart() {
    let h = Harness::start().await;
    let mut config = h.config();
    // A wrong base URL: the server answers 404 without Hantera's error body.
    config.base_url = format!("{}/not-hantera", h.base_url);
    let client = HanteraClient::new(config).unwrap();
    let err = client.get_cart(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, HanteraError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn get_cart_of_an_unknown_cart_is_none() {
    let h = Harness::start().await;
    assert_eq!(h.client().get_cart(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(h.recorder.count(Method::GET, "/ingress/commerce/carts/"), 1);
}

// ---------------------------------------------------------------------------------------
// Payments
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn create_payment_is_created_then_already_exists_then_a_duplicate_reference() {
    let h = Harness::start().await;
    let client = h.client();
    let id = Uuid::new_v4();
    let payment = new_payment("mock_pay_1", 12345);
    assert_eq!(
        client.create_payment(id, &payment).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        client.create_payment(id, &payment).await.unwrap(),
        CreateOutcome::AlreadyExists
    );
    assert_eq!(
        client
            .create_payment(Uuid::new_v4(), &payment)
            .await
            .unwrap(),
        CreateOutcome::DuplicateExternalReference
    );
    // Definite answers are not retried: three calls, three requests.
    assert_eq!(
        h.recorder.count(Method::POST, "/resources/actors/payment/"),
        3
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_retried_and_reports_already_exists() {
    let h = Harness::start().await;
    let client = h.client();
    let id = Uuid::new_v4();
    h.recorder.script(
        Method::POST,
        "/resources/actors/payment/",
        Scripted::LoseAnswer,
        1,
    );
    assert_eq!(
        client
            .create_payment(id, &new_payment("mock_pay_lost", 500))
            .await
            .unwrap(),
        CreateOutcome::AlreadyExists
    );
    assert_eq!(
        h.recorder.count(Method::POST, "/resources/actors/payment/"),
        2
    );
    assert_eq!(h.payments_with_reference("mock_pay_lost").await.len(), 1);
    assert_eq!(
        client
            .find_payment("mock_pay_lost")
            .await
            .unwrap()
            .unwrap()
            .payment_id,
        id
    );
}

#[tokio::test]
async fn the_created_amount_is_recorded_exactly() {
    let h = Harness::start().await;
    let client = h.client();
    let id = Uuid::new_v4();
    client
        .create_payment(id, &new_payment("mock_pay_exact", 12345))
        .await
        .unwrap();
    let payments = h.payments_with_reference("mock_pay_exact").await;
    let authorization = &payments[0]["authorizations"][0];
    // The number's text is compared, not its float value: 123.45 must arrive as written.
    assert_eq!(
        authorization["amount"].to_string(),
        "123.45",
        "{authorization}"
    );
    assert_eq!(payments[0]["currencyCode"], "SEK");
}

#[tokio::test]
async fn find_payment_finds_its_reference_and_misses_another() {
    let h = Harness::start().await;
    let client = h.client();
    let id = Uuid::new_v4();
    client
        .create_payment(id, &new_payment("it's_mine", 100))
        .await
        .unwrap();
    let found = client
        .find_payment("it's_mine")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.payment_id, id);
    assert!(found
        .payment_number
        .as_deref()
        .is_some_and(|n| n.starts_with("MOCK-")));
    assert_eq!(client.find_payment("it's_yours").await.unwrap(), None);
    assert_eq!(
        client
            .find_payment("x' or externalReference != '")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_charge_is_recorded_on_the_payment() {
    let h = Harness::start().await;
    let client = h.client();
    let id = Uuid::new_v4();
    client
        .create_payment(id, &new_payment("mock_pay_charge", 12345))
        .await
        .unwrap();
    client
        .charge(
            id,
            &Charge {
                amount: Decimal::from_str("123.45").unwrap(),
                authorization_number: Some("mock_pay_charge".into()),
                transaction_reference: Some("cap_1".into()),
            },
        )
        .await
        .unwrap();
    let payments = h.payments_with_reference("mock_pay_charge").await;
    let entries = payments[0]["journalEntries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["amount"].to_string(), "123.45");
    assert_eq!(entries[0]["transactionReference"], "cap_1");
}

#[tokio::test]
async fn the_payment_journal_shows_a_charge_with_its_transaction_reference() {
    let h = Harness::start().await;
    let client = h.client();
    let id = Uuid::new_v4();
    client
        .create_payment(id, &new_payment("mock_pay_journal", 10000))
        .await
        .unwrap();
    assert_eq!(client.payment_journal(id).await.unwrap(), Some(vec![]));
    client
        .charge(
            id,
            &Charge {
                amount: Decimal::from_str("40.10").unwrap(),
                authorization_number: Some("mock_pay_journal".into()),
                transaction_reference: Some("cap_journal".into()),
            },
        )
        .await
        .unwrap();
    let journal = client.payment_journal(id).await.unwrap().unwrap();
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(journal[0].entry_type, "charge");
    assert_eq!(journal[0].amount.to_string(), "40.10");
    assert_eq!(
        journal[0].transaction_reference.as_deref(),
        Some("cap_journal")
    );
    assert_eq!(client.payment_journal(Uuid::new_v4()).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------
// Completion
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn link_and_complete_completes_the_cart_and_a_second_call_is_invalid_command() {
    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let payment_id = pay_for(&client, cart_id, "mock_pay_complete").await;
    client.link_and_complete(cart_id, payment_id).await.unwrap();
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Completed);

    let err = client
        .link_and_complete(cart_id, payment_id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("INVALID_COMMAND"), "{err:?}");
    assert!(hantera_client::unverified::is_ticket_not_open(&err));
    assert!(!err.is_transient());
}

#[tokio::test]
async fn the_bridge_apps_guard_refuses_to_complete_a_cart_the_payment_does_not_cover_definitely() {
    let h = Harness::start_with(SandboxConfig {
        rules: hantera_sandbox::Rules::bridge_app(),
        ..SandboxConfig::default()
    })
    .await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    let short = Money::from_minor(
        cart.total().unwrap().minor - 1,
        cart.total().unwrap().currency,
    );
    let payment_id = Uuid::new_v4();
    let payment = NewPayment {
        amount: short,
        ..new_payment("mock_pay_short", 0)
    };
    client.create_payment(payment_id, &payment).await.unwrap();

    let err = client
        .link_and_complete(cart_id, payment_id)
        .await
        .unwrap_err();
    assert!(
        hantera_client::unverified::is_completion_guard(&err),
        "{err:?}"
    );
    assert!(!err.is_transient(), "a refusal is final: {err:?}");
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Open);
    assert_eq!(
        client.cart_payment_ids(cart_id).await.unwrap(),
        Some(vec![])
    );
}

#[tokio::test]
async fn link_and_complete_with_an_unknown_payment_is_refused_and_the_cart_stays_open() {
    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let err = client
        .link_and_complete(cart_id, Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("INVALID_COMMAND"), "{err:?}");
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Open);
}

#[tokio::test]
async fn a_refused_token_on_completion_is_replaced_and_the_batch_sent_once_more() {
    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let payment_id = pay_for(&client, cart_id, "mock_pay_401").await;
    h.recorder.script(
        Method::POST,
        "/resources/actors/ticket/",
        Scripted::RefuseToken,
        1,
    );
    client.link_and_complete(cart_id, payment_id).await.unwrap();
    assert_eq!(
        h.recorder.count(Method::POST, "/resources/actors/ticket/"),
        2
    );
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Completed);
}

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn get_cart_is_retried_through_transient_failures() {
    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    h.recorder.script(
        Method::GET,
        "/ingress/commerce/carts/",
        Scripted::Unavailable,
        3,
    );
    assert!(client.get_cart(cart_id).await.unwrap().is_some());
    assert_eq!(h.recorder.count(Method::GET, "/ingress/commerce/carts/"), 4);
}

#[tokio::test]
async fn get_cart_gives_up_after_the_policy_attempts() {
    let h = Harness::start().await;
    let client = h.client();
    h.recorder.script(
        Method::GET,
        "/ingress/commerce/carts/",
        Scripted::Unavailable,
        10,
    );
    let err = client.get_cart(Uuid::new_v4()).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(h.recorder.count(Method::GET, "/ingress/commerce/carts/"), 4);
}

#[tokio::test]
async fn get_cart_succeeds_when_half_the_requests_fail() {
    let h = Harness::start().await;
    let cart_id = h.open_cart("SEK").await;
    let mut config = h.config();
    // With 30 attempts at a 50% failure rate, one call fails for good with probability
    // 2^-30: the assertion below is as good as deterministic.
    config.retry.max_attempts = 30;
    let client = HanteraClient::new(config).unwrap();
    h.sandbox.set_faults(Faults {
        error_rate: 0.5,
        ..Faults::default()
    });
    for _ in 0..20 {
        let cart = client.get_cart(cart_id).await.unwrap().expect("the cart");
        assert_eq!(cart.cart_id, cart_id);
    }
    assert!(h.recorder.count(Method::GET, "/ingress/commerce/carts/") >= 20);
}

#[tokio::test]
async fn a_hantera_slower_than_the_timeout_is_unavailable() {
    let h = Harness::start().await;
    let mut config = h.config();
    config.timeout = Duration::from_millis(50);
    config.retry.max_attempts = 2;
    let client = HanteraClient::new(config).unwrap();
    h.sandbox.set_faults(Faults {
        latency_ms: 1_000,
        ..Faults::default()
    });
    let err = client.get_cart(Uuid::new_v4()).await.unwrap_err();
    assert!(
        matches!(&err, HanteraError::Unavailable(m) if m.contains("timed out")),
        "{err:?}"
    );
    assert_eq!(h.recorder.count(Method::GET, "/ingress/commerce/carts/"), 2);
}

#[tokio::test]
async fn link_and_complete_is_sent_once_even_when_it_fails_transiently() {
    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let payment_id = pay_for(&client, cart_id, "mock_pay_once").await;
    h.recorder.script(
        Method::POST,
        "/resources/actors/ticket/",
        Scripted::Unavailable,
        1,
    );
    let err = client
        .link_and_complete(cart_id, payment_id)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        h.recorder.count(Method::POST, "/resources/actors/ticket/"),
        1
    );
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Open);
}

#[tokio::test]
async fn a_completion_whose_answer_was_lost_is_unavailable_though_the_cart_is_completed() {
    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let payment_id = pay_for(&client, cart_id, "mock_pay_lost_answer").await;
    h.recorder.script(
        Method::POST,
        "/resources/actors/ticket/",
        Scripted::LoseAnswer,
        1,
    );
    let err = client
        .link_and_complete(cart_id, payment_id)
        .await
        .unwrap_err();
    assert!(matches!(err, HanteraError::Unavailable(_)), "{err:?}");
    assert_eq!(
        h.recorder.count(Method::POST, "/resources/actors/ticket/"),
        1
    );
    // The caller's way to learn the outcome: re-read the cart.
    let cart = client.get_cart(cart_id).await.unwrap().unwrap();
    assert_eq!(cart.cart_state, CartState::Completed);
}

#[tokio::test]
async fn a_charge_is_sent_once_even_when_it_fails_transiently() {
    let h = Harness::start().await;
    let client = h.client();
    let id = Uuid::new_v4();
    client
        .create_payment(id, &new_payment("mock_pay_charge_once", 100))
        .await
        .unwrap();
    h.recorder.script(
        Method::POST,
        "/resources/actors/payment/",
        Scripted::Unavailable,
        1,
    );
    let err = client
        .charge(
            id,
            &Charge {
                amount: Decimal::ONE,
                authorization_number: None,
                transaction_reference: None,
            },
        )
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(
        h.recorder.count(Method::POST, "/resources/actors/payment/"),
        2
    );
}

#[tokio::test]
async fn the_token_request_is_retried_through_transient_failures() {
    let h = Harness::start().await;
    let client = h.client();
    h.recorder
        .script(Method::POST, "/oauth/token", Scripted::Unavailable, 2);
    client.ping().await.unwrap();
    assert_eq!(h.recorder.token_requests(), 3);
}

#[tokio::test]
async fn ping_answers_ok_when_hantera_is_up() {
    let h = Harness::start().await;
    h.client().ping().await.unwrap();
    assert_eq!(
        h.recorder
            .count(Method::GET, "/ingress/commerce/cart-profiles"),
        1
    );
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

/// A log sink that tests can read back.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn neither_logs_nor_debug_output_show_the_secret_or_the_token() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // A global subscriber, not a thread-local one: tracing caches per call site whether
    // anyone listens, and tests running meanwhile on other threads with no subscriber
    // would otherwise switch this test's call sites off. Registering it rebuilds that
    // cache. Only this test installs one, and the other tests' logs then land in the
    // buffer too, which the check below covers as well.
    tracing::subscriber::set_global_default(subscriber)
        .expect("only this test installs a global subscriber");

    let h = Harness::start().await;
    let client = h.client();
    let cart_id = h.open_cart("SEK").await;
    let payment_id = pay_for(&client, cart_id, "mock_pay_logs").await;
    h.recorder.script(
        Method::POST,
        "/resources/actors/ticket/",
        Scripted::RefuseToken,
        1,
    );
    client.link_and_complete(cart_id, payment_id).await.unwrap();
    client.find_payment("mock_pay_logs").await.unwrap();

    let tokens = h.recorder.bearer_tokens.lock().unwrap().clone();
    assert!(!tokens.is_empty());
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("hantera call"),
        "the calls were not logged: {logs}"
    );
    let debug = format!("{client:?}");
    for text in [&logs, &debug] {
        assert!(!text.contains(CLIENT_SECRET));
        for token in &tokens {
            assert!(!text.contains(token.as_str()));
        }
    }
}
