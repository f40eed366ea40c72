//! The embedded default's sandbox, fakes and demo page, and the stand-alone sandbox.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use fake_support::{FakeContext, FakeRegistration};
use psp_core::Secret;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::SandboxHooks;
use crate::config::Config;
use crate::edge::http::{serve, ConnLimits};
use crate::edge::AppState;
use crate::server::{loopback_url, shutdown_signal};

/// The fakes the embedded default mounts, each with the provider table it shares its
/// secrets with.
pub struct Fakes(Vec<(&'static str, &'static FakeRegistration, Value)>);

impl Fakes {
    /// No fakes (a real Hantera: the providers talk to their PSPs).
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Points every enabled provider that ships a fake PSP and has no `api_base` of its
    /// own at its fake, served by this process at `{loopback}/fakes/{id}`, and lists those
    /// fakes.
    pub fn point_at(tables: &mut BTreeMap<String, Value>, loopback: &str) -> Self {
        let mut fakes = Vec::new();
        for (id, fake) in fake_support::fakes() {
            let Some(Value::Object(table)) = tables.get_mut(id) else {
                continue;
            };
            if table.contains_key("api_base") {
                continue;
            }
            table.insert("api_base".into(), format!("{loopback}/fakes/{id}").into());
            fakes.push((id, fake, Value::Object(table.clone())));
        }
        Self(fakes)
    }
}

/// The embedded Hantera sandbox, served by the gateway's own process.
pub struct Embedded {
    sandbox: hantera_sandbox::Sandbox,
}

impl Embedded {
    /// A sandbox whose OAuth client is the gateway (`secret`), forwarding its hooks to the
    /// gateway at `loopback` with `hook_token`, with the faults the config asks for.
    pub fn start(
        config: &Config,
        loopback: &str,
        hook_token: &str,
        secret: &Secret,
    ) -> anyhow::Result<Self> {
        let hooks = hantera_sandbox::HookTarget::new(loopback.to_string(), hook_token.to_string());
        let sandbox = hantera_sandbox::Sandbox::new(hantera_sandbox::SandboxConfig {
            client_id: "psp-gateway".into(),
            client_secret: secret.expose().to_string(),
            faults: hantera_sandbox::Faults {
                latency_ms: config.sandbox.latency_ms,
                error_rate: config.sandbox.error_rate,
                drop_rate: config.sandbox.drop_rate,
                drop_after_rate: config.sandbox.drop_after_rate,
            },
            hooks: Some(hooks),
            // The embedded Hantera is one with the bridge app installed, rules included.
            rules: hantera_sandbox::Rules::bridge_app(),
            ..Default::default()
        });
        Ok(Self { sandbox })
    }

    /// Adds the sandbox, the demo page and the fakes to the gateway's routes.
    pub fn mount(&self, app: Router, state: &AppState, public_url: &str, fakes: Fakes) -> Router {
        // The demo page loads each provider's part of it from that provider's fake.
        let modules = fakes
            .0
            .iter()
            .filter(|(_, fake, _)| fake.demo.is_some())
            .map(|(id, _, _)| (*id, format!("/fakes/{id}{}", fake_support::DEMO_PATH)))
            .collect();
        let mut app = app
            .merge(self.sandbox.router())
            .merge(demo_router(state, public_url, modules))
            // Storefronts in development run on another origin (a dev server's port) and
            // call the Commerce ingress and the checkout ingress from the browser.
            .layer(axum::middleware::from_fn(
                hantera_sandbox::allow_cross_origin,
            ));
        for (id, fake, table) in fakes.0 {
            let webhook_url = format!("{public_url}/webhooks/{id}");
            app = mount_fake(app, id, fake, public_url, &table, Some(&webhook_url));
        }
        app
    }

    /// Ends the cart event streams, which would otherwise hold a graceful shutdown until
    /// its deadline.
    pub fn close(&self) {
        self.sandbox.close_event_streams();
    }
}

/// Mounts a fake at `/fakes/{id}` below `base`.
fn mount_fake(
    app: Router,
    id: &str,
    fake: &FakeRegistration,
    base: &str,
    config: &Value,
    webhook_url: Option<&str>,
) -> Router {
    let public_base = format!("{base}/fakes/{id}");
    let ctx = FakeContext {
        public_base: &public_base,
        config,
        webhook_url,
    };
    app.nest(&format!("/fakes/{id}"), fake.router(&ctx))
}

/// The providers the demo page offers (`GET /sandbox/providers`).
#[derive(Debug, Serialize)]
struct DemoProviders {
    /// The enabled providers, in the registry's order.
    providers: Vec<DemoProvider>,
    /// The one chosen at first: a test-only provider (one made for trying things, the
    /// mock), else the first.
    preferred: Option<&'static str>,
}

/// One provider the demo page offers.
#[derive(Debug, Serialize)]
struct DemoProvider {
    id: &'static str,
    /// Its part of the page (an ES module served by its fake), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    demo: Option<String>,
}

/// The demo checkout page of the embedded default, what it loads, and the list of
/// enabled providers it offers (`GET /sandbox/providers`, from the registry, with the
/// address of each provider's demo module in `modules`).
fn demo_router(
    state: &AppState,
    public_url: &str,
    mut modules: BTreeMap<&'static str, String>,
) -> Router {
    use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
    use axum::response::{Html, IntoResponse};
    use axum::routing::get;

    let index = include_str!("../../demo/index.html").replace("$ORIGIN", public_url);
    let providers = DemoProviders {
        providers: state
            .services
            .registry
            .ids()
            .map(|id| DemoProvider {
                id,
                demo: modules.remove(id),
            })
            .collect(),
        preferred: state
            .services
            .registry
            .test_only()
            .next()
            .or_else(|| state.services.registry.ids().next()),
    };
    // Rendered once: the registry does not change while the process runs.
    let providers = serde_json::to_value(providers).unwrap_or_default();
    // Served uncached, so a developer who rebuilds sees the new page on reload.
    let asset = |content_type: &'static str, body: &'static str| {
        move || async move {
            (
                [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
                body,
            )
                .into_response()
        }
    };
    axum::Router::new()
        .route("/", get(move || async move { Html(index) }))
        .route(
            "/demo/app.js",
            get(asset(
                "text/javascript; charset=utf-8",
                include_str!("../../demo/app.js"),
            )),
        )
        .route(
            "/demo/app.css",
            get(asset(
                "text/css; charset=utf-8",
                include_str!("../../demo/app.css"),
            )),
        )
        .route(
            "/sandbox/providers",
            get(move || async move { axum::Json(providers) }),
        )
}

/// Runs the Hantera sandbox alone on `listen`, forwarding hooks to a gateway if told
/// where.
pub async fn run_sandbox(listen: &str, hooks: Option<SandboxHooks>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let base = loopback_url(addr);
    let forwarding = hooks.as_ref().map(|h| h.gateway_url.clone());
    let sandbox = hantera_sandbox::Sandbox::new(hantera_sandbox::SandboxConfig {
        hooks: hooks.map(|h| {
            hantera_sandbox::HookTarget::new(h.gateway_url, h.hook_token.expose().to_string())
        }),
        rules: hantera_sandbox::Rules::bridge_app(),
        ..Default::default()
    });
    // The sandbox's router lets any origin call its ingress already.
    let mut app = sandbox.router();
    // Every compiled-in fake PSP runs beside it with its sandbox defaults, so a gateway in
    // another process (tests, a storefront developer) can point `api_base` at it.
    let empty = serde_json::json!({});
    for (id, fake) in fake_support::fakes() {
        app = mount_fake(app, id, fake, &base, &empty, None);
    }
    let shutdown = shutdown_signal();
    println!("psp-gateway sandbox listening on {base}");
    match forwarding {
        Some(url) => {
            println!("forwarding OnCartMutation and OnPaymentCapture to {url}/hantera/hooks/")
        }
        None => println!("not forwarding hooks (no --gateway-url)"),
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let (stop_tx, stop_rx) = watch::channel(None::<Instant>);
    let server = tokio::spawn(serve(
        listener,
        app,
        ConnLimits::from_config(&crate::config::ServerConfig::default()),
        stop_rx,
        None,
    ));
    shutdown.await;
    sandbox.close_event_streams();
    let grace = Duration::from_millis(crate::config::ServerConfig::default().shutdown_deadline_ms);
    let _ = stop_tx.send(Some(Instant::now() + grace));
    server.await.context("serving the sandbox")
}
