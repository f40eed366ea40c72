//! Prometheus metrics: every webhook verdict, every completion outcome, every upstream
//! error and every job result is counted, so a failure is visible without reading logs.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    webhooks: Family<Labels, Counter>,
    completions: Family<Labels, Counter>,
    upstream_errors: Family<Labels, Counter>,
    jobs: Family<Labels, Counter>,
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
        registry.register("jobs", "Job attempts by kind and result", jobs.clone());
        Self {
            registry,
            webhooks,
            completions,
            upstream_errors,
            jobs,
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
}
