#!/usr/bin/env bash
# Builds the plugin (dev profile) for the platforms the tests try beside the host's: static Linux on
# amd64 and arm64, Windows, and macOS on arm64 (linked only: nothing here runs it). The release builds
# every platform in release mode (scripts/release.sh); these are the same targets and linker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PATH="$(scripts/install-release-tools.sh):$PATH"
source <(grep '^MACOSX_DEPLOYMENT_TARGET=' scripts/install-release-tools.sh)
export MACOSX_DEPLOYMENT_TARGET
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-pc-windows-gnu aarch64-apple-darwin; do
  echo "==> $target" >&2
  cargo zigbuild --locked --bin terraform-provider-coiled --target "$target"
done
