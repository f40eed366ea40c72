#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs and starts PostgreSQL, installs
# what the Node and browser tests need, checks formatting and lints, builds the binaries
# the end-to-end tests run, runs every Rust test in the workspace, then the storefront SDK
# test (Node), the demo page test (headless Chromium) and the contributor path (a provider
# added in a copy of the workspace by the documented steps).
set -euo pipefail
cd "$(dirname "$0")/.."

# The store's PostgreSQL tests and the replicas end-to-end test use a local server
# (PSP_TEST_POSTGRES_URL, by default 127.0.0.1:5432, database `test`). A fresh machine
# gets Debian's postgresql installed, a cluster started and a role and database for the
# tests; a server that is up and serves the tests already is left as it is.
# (Its logic is tested first, with stubs, so a broken set-up says so before it acts.)
scripts/postgres_test.sh >/dev/null
. scripts/postgres.sh
ensure_postgres

# The browser test drives Debian's Chromium; no browser is ever downloaded by npm.
if [ ! -x /usr/bin/chromium ]; then
  sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  sudo_if_needed apt-get update
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
# The Node and browser tests install exactly what their lockfiles name.
(cd tests/node && npm ci --no-audit --no-fund)
(cd tests/browser && npm ci --no-audit --no-fund)

# Interoperability with Stripe's official library: regenerate the webhook signature vectors
# with `stripe` from PyPI and require them to equal the committed ones, which the Rust tests
# in providers/stripe/tests/stripe/signatures.rs check the gateway against.
python3 -m venv target/stripe-venv
target/stripe-venv/bin/pip install --quiet --disable-pip-version-check stripe==16.1.0
target/stripe-venv/bin/python providers/stripe/tests/vectors/generate.py target/stripe-vectors.json
cmp target/stripe-vectors.json providers/stripe/tests/vectors/webhook_signatures.json

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The production build, without the test doubles (the fakes, the sandbox, the demo page):
# it must compile, lint-clean, on its own (docs/operations.md).
cargo clippy -p gateway --no-default-features --locked -- -D warnings
# The end-to-end tests in tests/ (Rust, Node and browser) start the real psp-gateway binary;
# the Rust ones refuse a binary older than the sources it was compiled from.
cargo build --workspace --bins --locked
cargo test --workspace --locked
# The real @hantera/storefront-sdk cart client against the embedded default.
(cd tests/node && node --test)
# The demo checkout page in headless Chromium, paying with each provider; screenshots land
# in artifacts/.
(cd tests/browser && node --test)
# The contributor path of docs/providers.md, performed in a temporary copy of the
# workspace: a new provider needs no edit outside providers/. Last, because it relinks the
# binary with one more provider (and then puts the real one back).
scripts/contributor_path.sh
