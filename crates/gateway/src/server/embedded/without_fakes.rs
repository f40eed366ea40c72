//! A build without the `fakes` feature: no sandbox, no fakes, no demo page. Sandbox mode
//! is refused by the configuration before anything here is reached; these refuse again.

use std::collections::BTreeMap;

use axum::Router;
use psp_core::Secret;
use serde_json::Value;

use super::SandboxHooks;
use crate::config::{Config, NOT_IN_THIS_BUILD};
use crate::edge::AppState;

/// No fakes to mount.
pub struct Fakes;

impl Fakes {
    /// No fakes.
    pub fn none() -> Self {
        Self
    }

    /// Points nothing anywhere: there are no fakes in this build.
    pub fn point_at(tables: &mut BTreeMap<String, Value>, loopback: &str) -> Self {
        let _ = (tables, loopback);
        Self
    }
}

/// There is no embedded sandbox in this build: a value of this type cannot exist.
pub enum Embedded {}

impl Embedded {
    /// Refuses: there is no sandbox in this build.
    pub fn start(
        config: &Config,
        loopback: &str,
        hook_token: &str,
        secret: &Secret,
    ) -> anyhow::Result<Self> {
        let _ = (config, loopback, hook_token, secret);
        anyhow::bail!(NOT_IN_THIS_BUILD)
    }

    /// Never called: no value of this type exists.
    pub fn mount(&self, app: Router, state: &AppState, public_url: &str, fakes: Fakes) -> Router {
        let _ = (app, state, public_url, fakes);
        match *self {}
    }

    /// Never called: no value of this type exists.
    pub fn close(&self) {
        match *self {}
    }
}

/// Refuses: there is no sandbox in this build.
pub async fn run_sandbox(listen: &str, hooks: Option<SandboxHooks>) -> anyhow::Result<()> {
    let _ = (listen, hooks);
    anyhow::bail!(NOT_IN_THIS_BUILD)
}
