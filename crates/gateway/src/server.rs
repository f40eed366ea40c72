//! Assembly: from a configuration to a running gateway (HTTP server + worker), and the
//! stand-alone sandbox.
//!
//! Architecture invariant: this is the one module that sees all three layers: the
//! adapters (the store, the Hantera client, the sandbox and the fakes), the services, and
//! the HTTP edge. It builds the services over the adapters and puts the edge on top
//! (`architecture::the_gateway_imports_in_one_direction`). What only the embedded default
//! and the stand-alone sandbox need (the sandbox, the fakes, the demo page: the `fakes`
//! feature) is in [`embedded`].

pub mod embedded;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use psp_core::ports::{Hantera, Store};
use psp_core::{Registry, Secret};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::edge::http::{serve, ConnLimits};
use crate::edge::{metrics_router, router, AppState};
use crate::services::Services;
pub use embedded::{run_sandbox, SandboxHooks};
use embedded::{Embedded, Fakes};

/// A gateway bound to its address, ready to run.
pub struct Gateway {
    listener: TcpListener,
    app: axum::Router,
    /// `/metrics` on an address of its own (`server.metrics_listen`).
    metrics_listener: Option<TcpListener>,
    state: AppState,
    /// The embedded sandbox, whose event streams must be ended for a graceful shutdown.
    sandbox: Option<Embedded>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The address `/metrics` is served on, when it has its own.
    pub metrics_addr: Option<SocketAddr>,
    /// The public base URL.
    pub public_url: String,
    /// Whether Hantera is the embedded sandbox.
    pub embedded: bool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("addr", &self.addr)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Binds the listener and builds every part. Fails fast on a bad provider configuration.
pub async fn build(config: Config) -> anyhow::Result<Gateway> {
    let listener = TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match &config.server.metrics_listen {
        Some(listen) => Some(
            TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding server.metrics_listen {listen}"))?,
        ),
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let loopback = loopback_url(addr);
    let public_url = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| loopback.clone())
        .trim_end_matches('/')
        .to_string();
    let embedded = config.hantera.is_none();

    // In the embedded default every enabled provider that ships a fake PSP and has no
    // `api_base` of its own talks to its fake, served by this process at /fakes/{id}.
    let mut tables = config.providers.clone();
    let fakes = if embedded {
        Fakes::point_at(&mut tables, &loopback)
    } else {
        Fakes::none()
    };
    let store = store::open_store(config.store.url.expose())
        .await
        .context("opening the store")?;

    // The embedded sandbox's OAuth secret, drawn per process: the gateway in this same
    // process is its only client.
    let sandbox_secret = embedded.then(|| Secret::new(uuid::Uuid::new_v4().simple().to_string()));
    let hantera = hantera_port(&config, &loopback, sandbox_secret.as_ref())?;

    let config = Arc::new(config);
    // The providers are built with the gateway's ports (its store, Hantera and
    // orchestrator), so each has what it needs from the start.
    let state = assemble_with(config.clone(), &public_url, store, hantera, |services| {
        config.build_registry(&tables, &public_url, services)
    })?;
    let mut app = router(state.clone());
    let sandbox = sandbox_secret
        .map(|secret| {
            // The sandbox forwards its hooks to this very process, as the bridge app of a
            // real instance forwards them to the gateway (docs/hantera-bridge.md).
            Embedded::start(&config, &loopback, state.hook_token.expose(), &secret)
        })
        .transpose()?;
    if let Some(sandbox) = &sandbox {
        app = sandbox.mount(app, &state, &public_url, fakes);
    }
    Ok(Gateway {
        listener,
        app,
        metrics_listener,
        state,
        sandbox,
        addr,
        metrics_addr,
        public_url,
        embedded,
    })
}

/// The services over the given ports, and the HTTP edge over them: what [`build`] does
/// with the configured adapters, and what in-process tests do with in-memory ones.
pub fn assemble(
    config: Arc<Config>,
    public_url: &str,
    registry: Registry,
    store: Arc<dyn Store>,
    hantera: Arc<dyn Hantera>,
) -> AppState {
    let services = Services::new(config.worker.clone(), public_url, registry, store, hantera);
    AppState::new(config, Arc::new(services))
}

/// [`assemble`], with the providers built by `providers` over the services' own ports
/// (every provider gets the store, Hantera and orchestrator the gateway uses).
pub fn assemble_with<E>(
    config: Arc<Config>,
    public_url: &str,
    store: Arc<dyn Store>,
    hantera: Arc<dyn Hantera>,
    providers: impl FnOnce(&psp_core::ProviderServices) -> Result<Registry, E>,
) -> Result<AppState, E> {
    let services =
        Services::with_providers(config.worker.clone(), public_url, store, hantera, providers)?;
    Ok(AppState::new(config, Arc::new(services)))
}

/// The Hantera port: a client of the configured instance, or of the embedded sandbox this
/// very process serves on the loopback (with `sandbox_secret`, its OAuth secret).
pub fn hantera_port(
    config: &Config,
    loopback: &str,
    sandbox_secret: Option<&Secret>,
) -> anyhow::Result<Arc<dyn Hantera>> {
    let hantera_cfg = match (&config.hantera, sandbox_secret) {
        (Some(h), _) => hantera_client::ClientConfig {
            timeout: Duration::from_millis(h.timeout_ms),
            ..hantera_client::ClientConfig::new(
                h.base_url.clone(),
                h.client_id.clone(),
                h.client_secret.clone(),
            )
        },
        (None, Some(secret)) => {
            hantera_client::ClientConfig::new(loopback, "psp-gateway", secret.clone())
        }
        (None, None) => {
            anyhow::bail!("the sandbox needs its OAuth secret when [hantera] is absent")
        }
    };
    Ok(Arc::new(hantera_client::HanteraClient::new(hantera_cfg)?))
}

/// Ports that are never called, for building the providers only to check their tables
/// (`check-config`): an in-memory store and a client of no Hantera instance. Nothing is
/// created on disk and nothing is contacted.
pub async fn unused_ports() -> anyhow::Result<psp_core::ProviderServices> {
    let store = store::open_store("sqlite::memory:")
        .await
        .context("opening an in-memory store")?;
    let hantera: Arc<dyn Hantera> = Arc::new(hantera_client::HanteraClient::new(
        hantera_client::ClientConfig::new(
            "http://127.0.0.1:9",
            "check-config",
            Secret::new("never-sent"),
        ),
    )?);
    Ok(psp_core::ProviderServices {
        completer: Arc::new(psp_core::Completer::new(hantera.clone(), store.clone())),
        hantera,
        store,
    })
}

pub(crate) fn loopback_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

impl Gateway {
    /// The shared state (tests inspect it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains requests and the worker, for
    /// `server.shutdown_deadline_ms` at most: what still runs then is cut off (a job's
    /// lease expires and it runs again; a cut request is the caller's to retry).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let server = &self.state.config.server;
        let limits = ConnLimits::from_config(server);
        let grace = Duration::from_millis(server.shutdown_deadline_ms);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (http_stop_tx, http_stop_rx) = watch::channel(None::<Instant>);
        let worker = self.state.config.worker.enabled.then(|| {
            tokio::spawn(crate::services::worker::run(
                self.state.services.clone(),
                stop_rx.clone(),
            ))
        });
        let metrics = Some(self.state.services.metrics.clone());
        let mut servers = vec![tokio::spawn(serve(
            self.listener,
            self.app,
            limits,
            http_stop_rx.clone(),
            metrics.clone(),
        ))];
        if let Some(listener) = self.metrics_listener {
            servers.push(tokio::spawn(serve(
                listener,
                metrics_router(self.state.clone()),
                limits,
                http_stop_rx,
                None,
            )));
        }
        shutdown.await;
        let deadline = Instant::now() + grace;
        tracing::info!(
            deadline_ms = grace.as_millis() as u64,
            "shutting down: finishing requests and jobs in flight"
        );
        // Open cart event streams would hold the graceful shutdown until the deadline.
        if let Some(sandbox) = &self.sandbox {
            sandbox.close();
        }
        let _ = stop_tx.send(true);
        let _ = http_stop_tx.send(Some(deadline));
        for server in servers {
            let _ = server.await;
        }
        if let Some(mut worker) = worker {
            if tokio::time::timeout_at(deadline.into(), &mut worker)
                .await
                .is_err()
            {
                tracing::warn!("shutdown deadline reached: jobs still running are cut off; their leases expire and they run again");
                worker.abort();
            }
        }
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled: call it before announcing the address, so that a
/// SIGTERM right after start-up stops the process cleanly instead of killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
