#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) with libFuzzer, via cargo-fuzz.
# Crash inputs are copied to fuzz/regressions/<target>/, which the test suite replays.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cd "$root/fuzz"
# cargo-fuzz passes unstable flags to rustc; this lets the installed stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
status=0
for target in value_msgpack value_json ingress rpc; do
  mkdir -p "corpus/$target"
  cp -n regressions/"$target"/* "corpus/$target/" 2>/dev/null || true
  echo "==> fuzzing $target for ${seconds}s"
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10; then
    status=1
    for crash in artifacts/"$target"/crash-* artifacts/"$target"/timeout-* artifacts/"$target"/oom-*; do
      [ -e "$crash" ] && cp "$crash" "regressions/$target/" && echo "kept $crash in regressions/$target/"
    done
  fi
done
exit $status
