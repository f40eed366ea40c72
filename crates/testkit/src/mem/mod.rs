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
