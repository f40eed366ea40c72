//! psp-core's integration tests, one binary (each module links once on a two-core machine):
//! the completion orchestrator against in-memory ports, the provider registry's rules, and
//! the signature verifier under fuzzing.

mod completion;
mod fuzz_signature;
mod registry;
