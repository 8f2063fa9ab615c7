#!/usr/bin/env bash
# The whole test suite: installs the Terraform CLIs the end-to-end tests need (idempotent), then runs
# unit and end-to-end tests with cargo-nextest (or cargo test where nextest is not installed); with no
# arguments, the resources' end-to-end suites run a second time against a terse server, and a third
# against a server whose answers vary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-test-tools.sh
# coiled-local is a package of its own, with no tests that would make cargo build its binary: the
# end-to-end tests run it, so build every binary of the workspace first.
cargo build --workspace --bins
# The plugin for the other platforms the release tests try (static Linux, arm64, Windows, macOS).
scripts/cross-build.sh
if ! cargo nextest --version >/dev/null 2>&1; then
  exec cargo test --workspace --no-fail-fast "$@"
fi
status=0
cargo nextest run --workspace --no-fail-fast "$@" || status=$?
if [ $# -eq 0 ]; then
  # nextest runs no doctests: the examples in the docs comments run here.
  cargo test --workspace --doc || status=$?
  # The resources' end-to-end suites again, against a server that answers only the fields Coiled's
  # client reads (coiled-local --minimal-echo): nothing may rely on what the real service need not send.
  echo "== end-to-end suites against a terse server (coiled-local --minimal-echo)"
  suites='test(/^cluster::/) | test(/^backend_options::/) | test(/^software::/) | test(/^cluster_options::/) | test(/^scaling::/)'
  COILED_LOCAL_MINIMAL_ECHO=1 cargo nextest run --workspace --no-fail-fast -E "$suites" || status=$?
  # And against a server whose answers and timings vary within what the client tolerates
  # (coiled-local --vary SEED): each test takes one of three fixed seeds, by its name.
  echo "== end-to-end suites against a varying server (coiled-local --vary 11, 22 or 33)"
  COILED_LOCAL_VARY=11,22,33 cargo nextest run --workspace --no-fail-fast -E "$suites" || status=$?
fi
exit $status
