//! How a fake is found and mounted.

use std::collections::BTreeMap;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::routing::get;

/// What a fake PSP's constructor receives.
#[derive(Debug)]
pub struct FakeContext<'a> {
    /// The absolute URL the fake will be reachable at (its hosted pages link there).
    pub public_base: &'a str,
    /// The provider's config table, so the fake shares its secrets; `{}` when the fake
    /// runs in the stand-alone sandbox, where it uses its documented sandbox defaults.
    pub config: &'a serde_json::Value,
    /// Where the fake sends webhooks when its PSP has account-level webhook endpoints
    /// (Stripe): the gateway's `/webhooks/{id}` in the embedded default. `None` in the
    /// stand-alone sandbox, where a test registers its gateway with the fake's API.
    pub webhook_url: Option<&'a str>,
}

/// A provider's fake PSP, for the embedded default and the stand-alone sandbox. Each
/// provider crate that ships a fake submits one. The gateway mounts it at `/fakes/{id}`
/// and, in the embedded default, points the provider's `api_base` there unless the
/// config sets one.
pub struct FakeRegistration {
    /// The provider id the fake stands in for.
    pub id: &'static str,
    /// Builds the fake's router (paths relative to its mount point).
    pub build: fn(&FakeContext<'_>) -> axum::Router,
    /// The provider's config table in the embedded default (sandbox keys and secrets that
    /// match the fake's defaults). Every provider with a fake is enabled there.
    pub sandbox_config: fn() -> serde_json::Value,
    /// The provider's part of the demo checkout page: an ES module (its source), served
    /// at `{mount}/demo.js`, which exports `hint` (what the provider's option says), and
    /// `pay(payment, ui)` and optionally `returned(params)` (see
    /// `crates/gateway/src/demo/app.js`). `None`: the page pays by redirect to the
    /// `redirectUrl` the checkout answers.
    pub demo: Option<&'static str>,
}

/// Where a fake serves its demo module, below its mount point.
pub const DEMO_PATH: &str = "/demo.js";

impl FakeRegistration {
    /// The fake's routes, relative to its mount point: the fake itself and its demo module.
    pub fn router(&self, ctx: &FakeContext<'_>) -> axum::Router {
        let fake = (self.build)(ctx);
        let Some(demo) = self.demo else {
            return fake;
        };
        // Served uncached, so a developer who rebuilds sees the new module on reload.
        let module = move || async move {
            (
                [
                    (CONTENT_TYPE, "text/javascript; charset=utf-8"),
                    (CACHE_CONTROL, "no-cache"),
                ],
                demo,
            )
        };
        fake.route(DEMO_PATH, get(module))
    }
}

psp_core::inventory::collect!(FakeRegistration);

/// The compiled-in fakes, sorted by id.
pub fn fakes() -> BTreeMap<&'static str, &'static FakeRegistration> {
    psp_core::inventory::iter::<FakeRegistration>
        .into_iter()
        .map(|f| (f.id, f))
        .collect()
}
