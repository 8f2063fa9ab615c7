#!/usr/bin/env bash
# Builds release archives in the layout the Terraform Registry (and OpenTofu's) expects:
#   dist/terraform-provider-coiled_<version>_<os>_<arch>.zip   (binary: terraform-provider-coiled_v<version>[.exe])
#   dist/terraform-provider-coiled_<version>_manifest.json     (copy of terraform-registry-manifest.json)
#   dist/terraform-provider-coiled_<version>_SHA256SUMS        (and _SHA256SUMS.sig when GPG_FINGERPRINT is set)
# for the Rust targets TARGETS names (space-separated; the host's when unset). Targets other than the
# host's build with cargo-zigbuild (scripts/install-release-tools.sh installs it); scripts/release.sh
# builds every platform.
#
#   scripts/package.sh [VERSION]      VERSION defaults to the one in Cargo.toml; DIST overrides dist/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=${1:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)}
dist=${DIST:-$root/dist}
name=terraform-provider-coiled
python=${PYTHON:-python3}
mkdir -p "$dist"
rm -f "$dist/${name}_${version}_"*

host=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${CARGO_TARGET_DIR:-$root/target}
targets=${TARGETS:-$host}
source <(grep '^MACOSX_DEPLOYMENT_TARGET=' scripts/install-release-tools.sh)
export MACOSX_DEPLOYMENT_TARGET

platform() {
  case "$1" in
    x86_64-unknown-linux-gnu | x86_64-unknown-linux-musl) echo linux_amd64 ;;
    aarch64-unknown-linux-gnu | aarch64-unknown-linux-musl) echo linux_arm64 ;;
    armv7-unknown-linux-musleabihf) echo linux_arm ;;
    x86_64-apple-darwin) echo darwin_amd64 ;;
    aarch64-apple-darwin) echo darwin_arm64 ;;
    x86_64-pc-windows-gnu) echo windows_amd64 ;;
    *) echo "" ;;
  esac
}

built=0
for target in $targets; do
  plat=$(platform "$target")
  [ -n "$plat" ] || { echo "$target: no Terraform platform name for it" >&2; exit 1; }
  exe=""
  case "$plat" in windows_*) exe=".exe" ;; esac
  echo "==> building $target ($plat)" >&2
  if [ "$target" = "$host" ]; then
    cargo build --release --locked --bin "$name" >&2
    bin="$target_dir/release/$name$exe"
  else
    cargo zigbuild --release --locked --bin "$name" --target "$target" >&2
    bin="$target_dir/$target/release/$name$exe"
  fi
  "$python" - "$bin" "$dist/${name}_${version}_${plat}.zip" "${name}_v${version}${exe}" <<'PY'
import sys, zipfile
src, dest, arcname = sys.argv[1:4]
info = zipfile.ZipInfo(arcname, date_time=(2026, 1, 1, 0, 0, 0))
info.external_attr = 0o755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dest, "w") as z:
    z.writestr(info, f.read())
PY
  built=$((built + 1))
done
[ "$built" -gt 0 ] || { echo "no target to build" >&2; exit 1; }

cp terraform-registry-manifest.json "$dist/${name}_${version}_manifest.json"
(cd "$dist" && sha256sum "${name}_${version}_"*.zip "${name}_${version}_manifest.json" > "${name}_${version}_SHA256SUMS")
if [ -n "${GPG_FINGERPRINT:-}" ]; then
  gpg --batch --yes --local-user "$GPG_FINGERPRINT" --detach-sign "$dist/${name}_${version}_SHA256SUMS"
else
  echo "note: GPG_FINGERPRINT not set: SHA256SUMS is not signed (the Registry requires a signature)" >&2
fi
ls -1 "$dist"/"${name}_${version}_"*
