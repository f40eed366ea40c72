//! What the gateway does, knowing nothing of HTTP: starting and completing payments,
//! the job queue and its jobs, the worker and the reconciliation sweep. The HTTP edge
//! (`crate::edge`) calls these; the assembly (`crate::server`) builds them over the
//! configured adapters.
//!
//! Architecture invariant: nothing under `services` imports axum, hyper, the edge or the
//! assembly. Services depend on the core's ports, the configuration and the metrics only,
//! so a job can be run, and tested, without a router (`architecture::the_gateway_imports_in_one_direction`).

pub mod checkout;
pub mod jobs;
pub mod payments;
pub mod queue;
pub mod sweep;
pub mod worker;

use std::sync::Arc;

use psp_core::ports::{Hantera, Store};
use psp_core::{Completer, Provider, ProviderServices, Registry};

use crate::config::WorkerConfig;
use crate::metrics::Metrics;
use queue::JobQueue;

/// Everything a service or a job uses.
pub struct Services {
    /// The enabled providers.
    pub registry: Registry,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Hantera.
    pub hantera: Arc<dyn Hantera>,
    /// The completion orchestrator; its double payments are voided through `jobs`.
    pub completer: Arc<Completer>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The only way jobs are added: every producer, the completer's voids included.
    pub jobs: JobQueue,
    /// The worker's settings (attempt budgets, delays, the sweep).
    pub worker: WorkerConfig,
    /// The gateway's public base URL, without a trailing slash.
    pub public_url: Arc<str>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("public_url", &self.public_url)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// The services over the given ports, with providers built already. The completer
    /// asks the job queue for voids, so that a void is counted and woken like any other
    /// job.
    pub fn new(
        worker: WorkerConfig,
        public_url: &str,
        registry: Registry,
        store: Arc<dyn Store>,
        hantera: Arc<dyn Hantera>,
    ) -> Self {
        match Self::with_providers(worker, public_url, store, hantera, |_| {
            Ok::<_, std::convert::Infallible>(registry)
        }) {
            Ok(services) => services,
            Err(never) => match never {},
        }
    }

    /// The services over the given ports, with the providers built by `providers`, which
    /// is handed the ports every provider gets when it is built: the same store, Hantera
    /// and orchestrator as the services'.
    pub fn with_providers<E>(
        worker: WorkerConfig,
        public_url: &str,
        store: Arc<dyn Store>,
        hantera: Arc<dyn Hantera>,
        providers: impl FnOnce(&ProviderServices) -> Result<Registry, E>,
    ) -> Result<Self, E> {
        let metrics = Arc::new(Metrics::new());
        let jobs = JobQueue::new(store.clone(), metrics.clone(), worker.max_attempts);
        let completer = Arc::new(
            Completer::new(hantera.clone(), store.clone()).with_voids(Arc::new(jobs.clone())),
        );
        let registry = providers(&ProviderServices {
            hantera: hantera.clone(),
            store: store.clone(),
            completer: completer.clone(),
        })?;
        Ok(Self {
            registry,
            store,
            hantera,
            completer,
            metrics,
            jobs,
            worker,
            public_url: public_url.trim_end_matches('/').into(),
        })
    }

    /// The enabled provider `id`.
    pub fn provider(&self, id: &str) -> Option<Arc<dyn Provider>> {
        self.registry.get(id).cloned()
    }

    /// The webhook URL handed to a provider's PSP.
    pub fn webhook_url(&self, provider: &str) -> String {
        format!("{}/webhooks/{provider}", self.public_url)
    }
}

/// Now, unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
