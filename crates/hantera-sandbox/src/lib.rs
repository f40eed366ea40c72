//! An in-memory emulator of the parts of Hantera the gateway touches.
//!
//! It speaks the wire contract of `docs/hantera-wire.md`: OAuth client credentials,
//! payment and ticket actor batches, the graph lookup of a payment by external reference,
//! and the public Commerce cart ingress, plus sandbox-only endpoints under `/sandbox` to
//! inspect what happened and to inject faults. The gateway embeds it by default (so a
//! new user needs no Hantera account) and `psp-gateway sandbox --listen ADDR` serves it
//! alone.
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
mod error;
mod faults;
mod graph;
mod inspect;
mod state;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use parking_lot::Mutex;

pub use faults::Faults;

use catalog::Catalog;
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
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            client_id: "psp-gateway".into(),
            client_secret: "sandbox-secret".into(),
            token_ttl: Duration::from_secs(3600),
            faults: Faults::default(),
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
        let inner = Inner {
            faults: config.faults,
            ..Inner::default()
        };
        Self {
            shared: Arc::new(Shared {
                client_id: config.client_id,
                client_secret: config.client_secret,
                token_ttl: config.token_ttl,
                catalog: Catalog::seed(),
                state: Mutex::new(inner),
            }),
        }
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
        let emulated = Router::new()
            .route("/oauth/token", post(auth::token))
            .route(
                "/ingress/commerce/cart-profiles",
                get(commerce::cart_profiles),
            )
            .route("/ingress/commerce/carts", post(commerce::create_cart))
            .route("/ingress/commerce/carts/{cart_id}", get(commerce::get_cart))
            .route(
                "/ingress/commerce/carts/{cart_id}/add-item",
                post(commerce::add_item),
            )
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
            .route(
                "/sandbox/faults",
                get(inspect::get_faults).put(inspect::put_faults),
            )
            .route("/sandbox/faults/injected", get(inspect::injected));
        emulated.merge(inspection).with_state(shared)
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
