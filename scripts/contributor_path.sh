#!/usr/bin/env bash
# The contributor path as a tested fact. In a temporary copy of the workspace (the files
# git knows, as a fresh repository), a provider `acme` is added by exactly the steps of
# docs/providers.md, "Add a provider", and then:
# - `psp-gateway providers` lists `acme`;
# - `cargo test -p acme` passes (its conformance suite against its fake);
# - `git status` shows changes under providers/ only, besides Cargo.lock, which cargo
#   extends with the new crate's entry and nothing else.
# The copy builds into this workspace's target directory (CARGO_TARGET_DIR, or target/),
# so only the new crate and what links it are compiled; the psp-gateway binary there is
# put back as it was afterwards, so the end-to-end tests never run the copy's.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
target=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")
export CARGO_TARGET_DIR=$target
binary=$target/debug/psp-gateway

# The binary and cargo's record of its sources (which the end-to-end tests read to refuse
# a binary built from other sources) are put back as they were.
work=$(mktemp -d)
saved=$(mktemp -d)
restore() {
  for file in psp-gateway psp-gateway.d; do
    if [ -e "$saved/$file" ]; then
      cp -p "$saved/$file" "$target/debug/$file"
    else
      rm -f "$target/debug/$file"
    fi
  done
  rm -rf "$work" "$saved"
}
trap restore EXIT
for file in psp-gateway psp-gateway.d; do
  if [ -e "$target/debug/$file" ]; then cp -p "$target/debug/$file" "$saved/$file"; fi
done

fail() { echo "contributor path: $*" >&2; exit 1; }

# The workspace as git sees it (committed or not, ignored files left out), with the files'
# times kept so that cargo finds the shared target directory up to date.
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null \
  | tar -xf - -C "$work"
cd "$work"
git init -q
git add -A
git -c user.name=test -c user.email=test@example.invalid commit -qm "the workspace"

# The steps of docs/providers.md, as a contributor types them.
# 1. Copy the template.
cp -r providers/template providers/acme
# 2. Replace the word `template` with the id in the files under providers/acme.
grep -rl template providers/acme | xargs sed -i 's/template/acme/g'
# 3. Add it to providers/all: its dependency and its fake in Cargo.toml, one line in
#    src/lib.rs.
sed -i '/^\[dependencies\]$/a acme = { path = "../acme", default-features = false }' providers/all/Cargo.toml
sed -i 's/^fakes = \[/fakes = ["acme\/fakes", /' providers/all/Cargo.toml
echo 'pub use acme;' >> providers/all/src/lib.rs
# 4. Build.
cargo build --offline --quiet

# Then: the binary lists it,
"$binary" providers | grep -qx acme || fail "psp-gateway providers does not list acme: $("$binary" providers | tr '\n' ' ')"
# its conformance suite passes,
cargo test --offline --quiet -p acme >/dev/null || fail "cargo test -p acme failed"
# and nothing outside providers/ changed but the lock file's new entry.
outside=$(git status --porcelain | awk '{print $2}' | grep -v '^providers/' | grep -vx Cargo.lock || true)
[ -z "$outside" ] || fail "files outside providers/ changed: $outside"
removed=$(git diff --numstat Cargo.lock | awk '{print $2}')
[ "${removed:-0}" = 0 ] || fail "Cargo.lock lost lines"
git diff Cargo.lock | grep -q '^+name = "acme"$' || fail "Cargo.lock has no entry for acme"
git diff Cargo.lock | grep '^+' | grep -v '^+++' | grep -qv -e acme -e '^+\[\[package\]\]$' -e '^+version = ' -e '^+dependencies = \[$' -e '^+ "' -e '^+\]$' -e '^+$' \
  && fail "Cargo.lock changed beyond the acme entry: $(git diff Cargo.lock)"
echo "contributor path: acme added with changes under providers/ only; listed, and its conformance suite passes"
