#!/usr/bin/env bash
# The whole test suite: installs the Terraform CLIs the end-to-end tests need (idempotent), then runs
# unit and end-to-end tests with cargo-nextest (or cargo test where nextest is not installed); with no
# arguments, the resources' end-to-end suites run a second time against a terse server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-test-tools.sh
# coiled-local is a package of its own, with no tests that would make cargo build its binary: the
# end-to-end tests run it, so build every binary of the workspace first.
cargo build --workspace --bins
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
  COILED_LOCAL_MINIMAL_ECHO=1 cargo nextest run --workspace --no-fail-fast -E 'test(/^cluster::/) | test(/^backend_options::/) | test(/^software::/) | test(/^cluster_options::/) | test(/^scaling::/)' || status=$?
fi
exit $status
