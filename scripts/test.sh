#!/usr/bin/env bash
# The whole test suite, from a fresh machine: checks formatting and lints, builds the
# binaries the end-to-end tests run, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL-backed tests and browser tests arrive with later issues; their set-up goes
# here so that this one command stays the only thing a new machine needs.

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests in tests/ start the real psp-gateway binary.
cargo build --workspace --bins --locked
cargo test --workspace --locked
