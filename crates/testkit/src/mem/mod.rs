//! In-memory implementations of the core's ports.
//!
//! Each keeps its whole state behind one `parking_lot::Mutex`, so every call is atomic
//! and the implementations stay simple enough to be obviously correct. They are the
//! reference the real adapters (`hantera-client` against the sandbox, the SQLite store)
//! are compared with.

mod hantera;
mod store;

pub use hantera::{Call, CallRecord, Hold, MemAuthorization, MemHantera, MemPayment, Op};
pub use psp_core::ports::StoredWebhook;
pub use store::MemStore;

use std::sync::Arc;

use psp_core::{Completer, ProviderServices};

/// The ports a provider is built with, on a fresh [`MemHantera`] and [`MemStore`]: for
/// tests that build providers without looking at what they do with them.
pub fn services() -> ProviderServices {
    services_of(Arc::new(MemHantera::new()), Arc::new(MemStore::new()))
}

/// The ports a provider is built with, on the given in-memory Hantera and store (the
/// orchestrator is made over them).
pub fn services_of(hantera: Arc<MemHantera>, store: Arc<MemStore>) -> ProviderServices {
    ProviderServices {
        completer: Arc::new(Completer::new(hantera.clone(), store.clone())),
        hantera,
        store,
    }
}
