//! Prometheus metrics: every webhook verdict, every hook, every completion outcome, every
//! upstream error and every job (scheduled, succeeded, retried, failed) is counted, and the
//! pending jobs are gauged, so a failure or a stuck queue is visible without reading logs.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use psp_core::ports::PendingJobs;

type Labels = Vec<(&'static str, String)>;

/// The job kinds whose gauges are always exposed, at zero when nothing is pending, so that
/// a dashboard sees a queue drain instead of a series that stops.
pub const JOB_KINDS: [&str; 4] = ["capture", "complete", "sync", "void"];

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    webhooks: Family<Labels, Counter>,
    hooks: Family<Labels, Counter>,
    completions: Family<Labels, Counter>,
    upstream_errors: Family<Labels, Counter>,
    jobs: Family<Labels, Counter>,
    pending: Family<Labels, Gauge>,
    oldest: Family<Labels, Gauge<f64, AtomicU64>>,
    connections: Gauge,
    connections_closed: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("psp_gateway");
        let webhooks = Family::<Labels, Counter>::default();
        registry.register(
            "webhooks",
            "Webhook deliveries by provider and verdict",
            webhooks.clone(),
        );
        let completions = Family::<Labels, Counter>::default();
        registry.register(
            "completions",
            "Completion attempts by provider and outcome",
            completions.clone(),
        );
        let upstream_errors = Family::<Labels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Failed calls to Hantera or a PSP",
            upstream_errors.clone(),
        );
        let jobs = Family::<Labels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs by kind and result: scheduled (added), succeeded, retried, failed",
            jobs.clone(),
        );
        let hooks = Family::<Labels, Counter>::default();
        registry.register(
            "hooks",
            "Hantera hooks received, by hook and verdict",
            hooks.clone(),
        );
        let pending = Family::<Labels, Gauge>::default();
        registry.register(
            "jobs_pending",
            "Jobs waiting, backing off or running, by kind",
            pending.clone(),
        );
        let oldest = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "oldest_pending_job_age_seconds",
            "Age of the oldest pending job of each kind",
            oldest.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "http_connections",
            "HTTP connections open now",
            connections.clone(),
        );
        let connections_closed = Family::<Labels, Counter>::default();
        registry.register(
            "http_connections_closed_by_server",
            "HTTP connections the gateway closed, by reason: header_timeout, idle_timeout, idle_at_capacity, shutdown",
            connections_closed.clone(),
        );
        let rate_limited = Family::<Labels, Counter>::default();
        registry.register(
            "rate_limited",
            "Storefront calls refused with 429, by route and by the limit that refused (client, cart)",
            rate_limited.clone(),
        );
        Self {
            registry,
            webhooks,
            hooks,
            completions,
            upstream_errors,
            jobs,
            pending,
            oldest,
            connections,
            connections_closed,
            rate_limited,
        }
    }

    /// Adds `delta` to the open HTTP connections.
    pub fn connections_open(&self, delta: i64) {
        self.connections.inc_by(delta);
    }

    /// Counts a connection the gateway closed (`header_timeout`, `idle_timeout`,
    /// `idle_at_capacity`, `shutdown`).
    pub fn connection_closed_by_server(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Counts a storefront call refused by a rate limit (`client` or `cart`).
    pub fn rate_limited(&self, route: &'static str, scope: &'static str) {
        self.rate_limited
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("scope", scope.to_string()),
            ])
            .inc();
    }

    /// Counts a hook verdict (`accepted`, `duplicate`, `ignored`, `bad_token`, `malformed`).
    pub fn hook(&self, hook: &'static str, verdict: &'static str) {
        self.hooks
            .get_or_create(&vec![
                ("hook", hook.to_string()),
                ("verdict", verdict.to_string()),
            ])
            .inc();
    }

    /// Sets the pending-job gauges from a store query made at `now_ms`. Kinds with nothing
    /// pending go to zero.
    pub fn set_pending(&self, pending: &[PendingJobs], now_ms: i64) {
        let mut kinds: Vec<&str> = JOB_KINDS.to_vec();
        for p in pending {
            if !kinds.contains(&p.kind.as_str()) {
                kinds.push(&p.kind);
            }
        }
        for kind in kinds {
            let labels = vec![("kind", kind.to_string())];
            let found = pending.iter().find(|p| p.kind == kind);
            let count = found.map_or(0, |p| i64::try_from(p.count).unwrap_or(i64::MAX));
            let age_ms = found.map_or(0, |p| now_ms.saturating_sub(p.oldest_created_at_ms).max(0));
            self.pending.get_or_create(&labels).set(count);
            self.oldest
                .get_or_create(&labels)
                .set(age_ms as f64 / 1000.0);
        }
    }

    /// Counts a webhook verdict (`accepted`, `duplicate`, `bad_signature`, …).
    pub fn webhook(&self, provider: &str, verdict: &'static str) {
        self.webhooks
            .get_or_create(&vec![
                ("provider", provider.to_string()),
                ("verdict", verdict.to_string()),
            ])
            .inc();
    }

    /// Counts a completion outcome.
    pub fn completion(&self, provider: &str, outcome: &'static str) {
        self.completions
            .get_or_create(&vec![
                ("provider", provider.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    /// Counts a failed upstream call (`hantera`, or a provider id).
    pub fn upstream_error(&self, upstream: &str) {
        self.upstream_errors
            .get_or_create(&vec![("upstream", upstream.to_string())])
            .inc();
    }

    /// Counts a job result (`scheduled`, `succeeded`, `retried`, `failed`).
    pub fn job(&self, kind: &str, result: &'static str) {
        self.jobs
            .get_or_create(&vec![
                ("kind", kind.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_verdicts_appear_in_the_exposition() {
        let m = Metrics::new();
        m.webhook("mock", "bad_signature");
        m.webhook("mock", "bad_signature");
        m.completion("mock", "completed");
        let text = m.render();
        assert!(
            text.contains(
                r#"psp_gateway_webhooks_total{provider="mock",verdict="bad_signature"} 2"#
            ),
            "{text}"
        );
        assert!(text
            .contains(r#"psp_gateway_completions_total{provider="mock",outcome="completed"} 1"#));
    }

    #[test]
    fn pending_gauges_show_the_oldest_age_and_drop_to_zero_when_drained() {
        let m = Metrics::new();
        m.set_pending(
            &[PendingJobs {
                kind: "capture".into(),
                count: 3,
                oldest_created_at_ms: 10_000,
            }],
            12_500,
        );
        let text = m.render();
        assert!(
            text.contains(r#"psp_gateway_jobs_pending{kind="capture"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"psp_gateway_oldest_pending_job_age_seconds{kind="capture"} 2.5"#),
            "{text}"
        );
        assert!(text.contains(r#"psp_gateway_jobs_pending{kind="sync"} 0"#));
        m.set_pending(&[], 20_000);
        let text = m.render();
        assert!(text.contains(r#"psp_gateway_jobs_pending{kind="capture"} 0"#));
        assert!(text.contains(r#"psp_gateway_oldest_pending_job_age_seconds{kind="capture"} 0"#));
    }
}
