//! How a fake is found and mounted.

use std::collections::BTreeMap;

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
}

psp_core::inventory::collect!(FakeRegistration);

/// The compiled-in fakes, sorted by id.
pub fn fakes() -> BTreeMap<&'static str, &'static FakeRegistration> {
    psp_core::inventory::iter::<FakeRegistration>
        .into_iter()
        .map(|f| (f.id, f))
        .collect()
}
