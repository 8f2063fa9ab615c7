#!/usr/bin/env bash
# The whole test suite: installs the Terraform CLIs the end-to-end tests need (idempotent), then runs
# unit and end-to-end tests with cargo-nextest (or cargo test where nextest is not installed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-test-tools.sh
# coiled-local is a package of its own, with no tests that would make cargo build its binary: the
# end-to-end tests run it, so build every binary of the workspace first.
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --no-fail-fast "$@"
else
  exec cargo test --workspace --no-fail-fast "$@"
fi
