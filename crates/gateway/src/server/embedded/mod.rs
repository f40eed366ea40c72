//! The test doubles in the product: the Hantera sandbox, each provider's fake PSP (at
//! `/fakes/{id}`) and the demo checkout page, for the embedded default and `psp-gateway
//! sandbox`.
//!
//! They are compiled with the gateway's `fakes` feature, on by default (so `cargo run -p
//! gateway` is the embedded default). A build without it, as a production build is
//! (`cargo build --release -p gateway --no-default-features`), has none of them: the
//! configuration refuses sandbox mode, the embedded default included, naming the feature
//! (`config::SANDBOX_COMPILED`, `config::NOT_IN_THIS_BUILD`), and `psp-gateway sandbox` says the same. Both builds
//! offer the same functions here, so the assembly in [`crate::server`] reads the same.

use psp_core::Secret;

#[cfg(feature = "fakes")]
mod with_fakes;
#[cfg(feature = "fakes")]
pub use with_fakes::{run_sandbox, Embedded, Fakes};

#[cfg(not(feature = "fakes"))]
mod without_fakes;
#[cfg(not(feature = "fakes"))]
pub use without_fakes::{run_sandbox, Embedded, Fakes};

/// Where a stand-alone sandbox forwards its hooks: a gateway's base URL and the token it
/// expects (its `hantera.hook_token`).
#[derive(Clone, Debug)]
pub struct SandboxHooks {
    /// The gateway's base URL.
    pub gateway_url: String,
    /// The gateway's `hantera.hook_token` (`Debug` prints `***`).
    pub hook_token: Secret,
}
