//! One world for the Kustom tests: the fake Kustom and the adapter's own routes on one
//! ephemeral port, in-memory Hantera and store, and a stand-in for the gateway's webhook
//! route that handles a push as the gateway does (verify, complete, acknowledge).

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use kustom::{FakeConfig, FakeKustom, KustomProvider, PushSchedule};
use psp_core::ports::Sessions;
use psp_core::{
    CartItem, CartState, CheckoutRequest, CheckoutSession, Completer, CompletionOutcome, EventKind,
    Provider, ProviderServices, RenderedCart, WebhookDelivery,
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};
use testkit::mem::{MemHantera, MemStore};
use tokio::net::TcpListener;
use uuid::Uuid;

pub const API_KEY: &str = "kco_test_api_world";

/// What the stand-in webhook route does with a push.
#[derive(Clone, Default)]
pub struct PushReceiver {
    /// Pushes received.
    pub received: Arc<AtomicUsize>,
    /// The first this many pushes are answered 503 and nothing is done (an outage).
    pub ignore_first: Arc<AtomicUsize>,
}

pub struct World {
    pub fake: FakeKustom,
    pub fake_base: String,
    pub gateway_url: String,
    pub provider: Arc<KustomProvider>,
    pub hantera: Arc<MemHantera>,
    pub store: Arc<MemStore>,
    pub completer: Arc<Completer>,
    pub services: ProviderServices,
    pub pushes: PushReceiver,
}

#[derive(Clone)]
struct Gw {
    provider: Arc<KustomProvider>,
    completer: Arc<Completer>,
    pushes: PushReceiver,
}

/// The gateway's webhook route, reduced to what matters for Kustom: verify (re-read),
/// complete, acknowledge after a completion.
async fn webhook(
    State(gw): State<Gw>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let n = gw.pushes.received.fetch_add(1, Ordering::SeqCst) + 1;
    if n <= gw.pushes.ignore_first.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down".into());
    }
    let delivery = WebhookDelivery {
        headers: &headers,
        body: &body,
        query: query.as_deref(),
        now: SystemTime::now(),
    };
    let event = match gw.provider.verify_webhook(&delivery).await {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
    };
    let EventKind::Authorized { psp_ref } = event.kind().clone() else {
        return (StatusCode::OK, "ignored".into());
    };
    match gw.completer.complete(gw.provider.as_ref(), &psp_ref).await {
        Ok(CompletionOutcome::Completed { .. } | CompletionOutcome::AlreadyCompleted) => {
            match gw.provider.after_completion(&psp_ref).await {
                Ok(()) => (StatusCode::OK, "completed".into()),
                Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
            }
        }
        Ok(other) => (StatusCode::OK, other.label().into()),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// Starts a world. `config` is merged into the adapter's table; `schedule` is the fake's
/// push schedule.
pub async fn world_with(config: Value, schedule: PushSchedule) -> World {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    let gateway_url = format!("http://{addr}");
    let fake_base = format!("{gateway_url}/kustom");
    let fake = FakeKustom::new(FakeConfig {
        push_schedule: schedule,
        api_key: API_KEY.into(),
        ..FakeConfig::sandbox(&fake_base)
    });
    let mut table = json!({
        "api_key": API_KEY,
        "api_base": fake_base,
        "terms_url": "https://shop.example/terms",
        "checkout_url": "https://shop.example/checkout",
        "confirmation_url": "https://shop.example/confirmation?order={checkout.order.id}",
        "payment_number_prefix": "KT-",
    });
    if let (Some(t), Some(extra)) = (table.as_object_mut(), config.as_object()) {
        t.extend(extra.clone());
    }
    let hantera = Arc::new(MemHantera::new());
    let store = Arc::new(MemStore::new());
    let services = testkit::mem::services_of(hantera.clone(), store.clone());
    let completer = services.completer.clone();
    let provider = Arc::new(
        KustomProvider::from_config(&table, &gateway_url, &services)
            .expect("the adapter takes its config"),
    );
    let pushes = PushReceiver::default();
    let own_routes = provider.routes();
    assert!(!own_routes.is_empty(), "Kustom serves its validation route");
    let own_routes = testkit::routes::router(own_routes);
    let gw = Gw {
        provider: provider.clone(),
        completer: completer.clone(),
        pushes: pushes.clone(),
    };
    let app = Router::new()
        .nest("/kustom", fake.router())
        .merge(own_routes)
        .route("/webhooks/kustom", post(webhook).with_state(gw));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serving the world");
    });
    World {
        fake,
        fake_base,
        gateway_url,
        provider,
        hantera,
        store,
        completer,
        services,
        pushes,
    }
}

pub async fn world(config: Value) -> World {
    world_with(config, PushSchedule::compressed(60_000)).await
}

impl World {
    /// Starts a checkout as the gateway does: the key reserved before the call, the
    /// answer saved after it.
    pub async fn checkout(&self, cart: &RenderedCart) -> CheckoutSession {
        self.checkout_with(cart, &json!({})).await
    }

    /// [`World::checkout`] with the storefront's body.
    pub async fn checkout_with(&self, cart: &RenderedCart, body: &Value) -> CheckoutSession {
        let key = format!("checkout-{}", cart.cart_id);
        self.store
            .reserve_session(cart.cart_id, "kustom", &key)
            .await
            .expect("reserve");
        let session = self
            .provider
            .checkout(CheckoutRequest {
                cart,
                amount: cart.total().expect("a payable cart"),
                body,
                existing: None,
                idempotency_key: &key,
                webhook_url: &format!("{}/webhooks/kustom", self.gateway_url),
            })
            .await
            .unwrap_or_else(|e| panic!("checkout: {e}"));
        self.store
            .save_session(
                cart.cart_id,
                "kustom",
                &session.psp_ref,
                session.amount,
                &session.client,
            )
            .await
            .expect("save");
        session
    }

    /// A cart in Hantera, and its checkout.
    pub async fn cart_and_checkout(&self, cart: RenderedCart) -> (RenderedCart, CheckoutSession) {
        self.hantera.insert_cart(cart.clone());
        let session = self.checkout(&cart).await;
        (cart, session)
    }
}

/// Polls `check` until it gives `Some`, or panics naming `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).expect("a decimal")
}

/// Tax included in `total` at `rate_percent`, rounded per line to the currency's
/// decimals, half away from zero: how Hantera's sandbox (and most shops) price.
pub fn tax_of(total: Decimal, rate_percent: &str, decimals: u32) -> Decimal {
    let r = dec(rate_percent);
    (total * r / (Decimal::from(100) + r))
        .round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero)
}

/// A cart line as Hantera renders it: `total = quantity × unit − discount`, tax included.
pub fn item(
    product: &str,
    quantity: i64,
    unit: &str,
    discount: &str,
    rate_percent: &str,
) -> CartItem {
    let unit_price = dec(unit);
    let discount = dec(discount);
    let total = unit_price * Decimal::from(quantity) - discount;
    CartItem {
        product_number: product.into(),
        quantity,
        description: Some(format!("{product} (sandbox)")),
        unit_price,
        total,
        tax: tax_of(total, rate_percent, 2),
        discount,
    }
}

/// A rendered cart of `items`, plus `extra` (shipping when positive, an order discount
/// when negative) taxed at its rate.
pub fn cart(currency: &str, items: Vec<CartItem>, extra: Option<(&str, &str)>) -> RenderedCart {
    let mut total: Decimal = items.iter().map(|i| i.total).sum();
    let mut tax: Decimal = items.iter().map(|i| i.tax).sum();
    if let Some((amount, rate)) = extra {
        let amount = dec(amount);
        total += amount;
        tax += tax_of(amount, rate, 2);
    }
    RenderedCart {
        cart_id: Uuid::new_v4(),
        cart_number: Some("C-KUSTOM".into()),
        cart_state: CartState::Open,
        currency_code: currency.into(),
        order_total: total,
        order_tax_total: tax,
        items,
        order_number: None,
    }
}
