#!/usr/bin/env bash
# Installs what building for every platform needs, idempotently: the Rust standard libraries of the
# release targets (rustup), and zig with cargo-zigbuild (from PyPI, in .tools/zig) as the linker for
# them. Prints the directory to put on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
# The release's targets, one per platform (scripts/package.sh names each).
RELEASE_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu"
# The oldest macOS the darwin builds load on (Big Sur, as Terraform's own builds): the cross linker
# marks the binaries with it; unset, it marks them with its SDK's macOS.
MACOSX_DEPLOYMENT_TARGET=11.0
installed=$(rustup target list --installed)
for t in $RELEASE_TARGETS; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t" >&2
done
venv="$root/.tools/zig"
if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==0.17.1" "cargo-zigbuild==0.24.1" >&2
fi
echo "$venv/bin"
