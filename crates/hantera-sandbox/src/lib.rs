//! An in-memory emulator of the parts of Hantera the gateway touches.
//!
//! It speaks the wire contract of `docs/hantera-wire.md`: OAuth client credentials,
//! payment, ticket and order actor batches, the graph lookup of a payment by external
//! reference, and the public Commerce cart ingress the storefront SDK's cart client
//! calls (with server-sent cart events), plus sandbox-only endpoints under `/sandbox` to
//! inspect what happened, reset, and inject faults. Like the bridge app of a real
//! instance (`docs/hantera-bridge.md`), it forwards `OnCartMutation` and
//! `OnPaymentCapture` to the gateway when given a [`HookTarget`]. The gateway embeds it
//! by default (so a new user needs no Hantera account) and
//! `psp-gateway sandbox --listen ADDR` serves it alone.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use hantera_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::new(SandboxConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
//! sandbox.serve(listener).await
//! # }
//! ```

mod actors;
mod auth;
mod catalog;
mod commerce;
mod cors;
mod error;
mod events;
mod faults;
mod graph;
mod hooks;
mod inspect;
mod rules;
mod state;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;

pub use cors::allow_cross_origin;
pub use faults::Faults;
pub use hooks::HookTarget;
pub use rules::Rules;

use catalog::Catalog;
use hooks::Hooks;
use state::{Inner, Shared};

/// How a sandbox is set up.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The OAuth client id the token endpoint accepts.
    pub client_id: String,
    /// The OAuth client secret the token endpoint accepts. Never printed by `Debug`.
    pub client_secret: String,
    /// How long an issued access token stays valid.
    pub token_ttl: Duration,
    /// The faults injected from the start; change them later with
    /// [`Sandbox::set_faults`] or `PUT /sandbox/faults`.
    pub faults: Faults,
    /// Where to forward `OnCartMutation` and `OnPaymentCapture`; `None` forwards
    /// nothing.
    pub hooks: Option<HookTarget>,
    /// The bridge app's rules installed from the start (none by default: a bare Hantera).
    pub rules: Rules,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            client_id: "psp-gateway".into(),
            client_secret: "sandbox-secret".into(),
            token_ttl: Duration::from_secs(3600),
            faults: Faults::default(),
            hooks: None,
            rules: Rules::default(),
        }
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("token_ttl", &self.token_ttl)
            .field("faults", &self.faults)
            .field("hooks", &self.hooks)
            .finish()
    }
}

/// A running emulated Hantera instance. Clones share the same state.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("client_id", &self.shared.client_id)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox with the seeded catalog and no payments, carts or tokens.
    pub fn new(config: SandboxConfig) -> Self {
        let mut inner = Inner {
            faults: config.faults.clone(),
            ..Inner::default()
        };
        inner.world.rules = config.rules;
        let (events, _) = tokio::sync::broadcast::channel(events::EVENT_BUFFER);
        let (closing, _) = tokio::sync::watch::channel(false);
        let sandbox = Self {
            shared: Arc::new(Shared {
                client_id: config.client_id,
                client_secret: config.client_secret,
                token_ttl: config.token_ttl,
                catalog: Catalog::seed(),
                initial_faults: config.faults,
                initial_rules: config.rules,
                events,
                closing,
                hooks: Hooks::new(config.hooks),
                state: Mutex::new(inner),
            }),
        };
        hooks::start(&sandbox.shared);
        sandbox
    }

    /// Every route, with the sandbox's state applied.
    ///
    /// Fault injection wraps the emulated Hantera routes only; the `/sandbox` routes stay
    /// reliable so that a test can always inspect the state and turn faults off.
    pub fn router(&self) -> Router {
        let shared = Arc::clone(&self.shared);
        let resources = Router::new()
            .route(
                "/resources/actors/{actor_type}/{id}",
                post(actors::post_actor),
            )
            .route("/resources/graph", post(graph::query))
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                auth::require_bearer,
            ));
        let cart = |action: &str| format!("/ingress/commerce/carts/{{cart_id}}/{action}");
        let ingress = Router::new()
            .route(
                "/ingress/commerce/cart-profiles",
                get(commerce::cart_profiles),
            )
            .route("/ingress/commerce/carts", post(commerce::create_cart))
            .route("/ingress/commerce/carts/{cart_id}", get(commerce::get_cart))
            .route(&cart("events"), get(events::stream_cart))
            .route(&cart("add-item"), post(commerce::add_item))
            .route(&cart("remove-item"), post(commerce::remove_item))
            .route(&cart("set-quantity"), post(commerce::set_quantity))
            .route(&cart("add-coupon"), post(commerce::add_coupon))
            .route(&cart("remove-coupon"), post(commerce::remove_coupon))
            .route(&cart("address"), post(commerce::set_address))
            .route(&cart("email"), post(commerce::set_email))
            .route(&cart("phone"), post(commerce::set_phone))
            .route(&cart("set-field/{key}"), post(commerce::set_field))
            .route(&cart("remove-field/{key}"), post(commerce::remove_field))
            .route(&cart("cancel-order"), post(commerce::cancel_order))
            .layer(axum::middleware::from_fn(cors::allow_cross_origin));
        let emulated = Router::new()
            .route("/oauth/token", post(auth::token))
            .merge(ingress)
            .merge(resources)
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                faults::inject,
            ));
        let inspection = Router::new()
            .route("/sandbox/products", get(inspect::products))
            .route("/sandbox/payments", get(inspect::payments))
            .route("/sandbox/carts/{cart_id}", get(inspect::cart))
            .route("/sandbox/journal", get(inspect::journal))
            .route("/sandbox/hooks", get(inspect::hooks))
            .route("/sandbox/reset", post(inspect::reset))
            .route(
                "/sandbox/orders/{order}/capture-payments",
                post(inspect::capture_payments),
            )
            .route(
                "/sandbox/faults",
                get(inspect::get_faults).put(inspect::put_faults),
            )
            .route("/sandbox/faults/injected", get(inspect::injected))
            .route(
                "/sandbox/rules",
                get(inspect::get_rules).put(inspect::put_rules),
            );
        // Hooks queued before a runtime existed start flowing once one serves the router.
        hooks::start(&self.shared);
        emulated.merge(inspection).with_state(shared)
    }

    /// Ends every open cart event stream (SSE). A server shutting down gracefully waits
    /// for its connections to close, and a browser never closes an event stream by
    /// itself; call this when shutdown begins. Streams opened later end at once.
    pub fn close_event_streams(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Forgets every cart, order, payment, journal record and hook, as
    /// `POST /sandbox/reset` does.
    pub fn reset(&self) {
        inspect::reset_state(&self.shared);
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.state.lock().faults = faults;
    }

    /// Serves [`Sandbox::router`] on a listener until the server fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}
