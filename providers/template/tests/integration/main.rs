//! Every integration test of the template provider, in one binary.

mod conformance;
