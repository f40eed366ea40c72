//! What the provider fakes share. Each provider crate may ship a fake of its PSP (behind
//! its `fakes` feature) for tests, the stand-alone sandbox and the embedded default; this
//! crate holds what they have in common:
//!
//! - [`FakeRegistration`]: how a fake is found (`inventory`) and mounted at `/fakes/{id}`;
//!
//! Architecture invariant: nothing here is needed to run the gateway against real PSPs. A
//! build without the `fakes` feature does not link this crate.

#![warn(missing_docs)]

mod registration;

pub use registration::{fakes, FakeContext, FakeRegistration};
