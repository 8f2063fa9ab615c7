#!/usr/bin/env bash
# Builds release archives in the layout the Terraform Registry (and OpenTofu's) expects:
#   dist/terraform-provider-coiled_<version>_<os>_<arch>.zip   (binary: terraform-provider-coiled_v<version>)
#   dist/terraform-provider-coiled_<version>_manifest.json     (copy of terraform-registry-manifest.json)
#   dist/terraform-provider-coiled_<version>_SHA256SUMS        (and _SHA256SUMS.sig when GPG_FINGERPRINT is set)
# for the host and every other Rust target installed with rustup (`rustup target add …`).
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
targets=$(rustup target list --installed 2>/dev/null || echo "$host")

platform() {
  case "$1" in
    x86_64-unknown-linux-gnu | x86_64-unknown-linux-musl) echo linux_amd64 ;;
    aarch64-unknown-linux-gnu | aarch64-unknown-linux-musl) echo linux_arm64 ;;
    i686-unknown-linux-gnu) echo linux_386 ;;
    armv7-unknown-linux-gnueabihf) echo linux_arm ;;
    x86_64-apple-darwin) echo darwin_amd64 ;;
    aarch64-apple-darwin) echo darwin_arm64 ;;
    x86_64-pc-windows-msvc | x86_64-pc-windows-gnu) echo windows_amd64 ;;
    aarch64-pc-windows-msvc) echo windows_arm64 ;;
    *) echo "" ;;
  esac
}

built=0
for target in $targets; do
  plat=$(platform "$target")
  [ -n "$plat" ] || { echo "skipping $target: no Terraform platform name" >&2; continue; }
  [ -e "$dist/${name}_${version}_${plat}.zip" ] && continue
  exe=""
  case "$plat" in windows_*) exe=".exe" ;; esac
  echo "==> building $target ($plat)" >&2
  if [ "$target" = "$host" ]; then
    cargo build --release --locked --bin "$name" >&2
    bin="$target_dir/release/$name$exe"
  else
    if ! cargo build --release --locked --bin "$name" --target "$target" >&2; then
      echo "skipping $target: it does not build on this machine (linker or C toolchain missing)" >&2
      continue
    fi
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
[ "$built" -gt 0 ] || { echo "no archive was built" >&2; exit 1; }

cp terraform-registry-manifest.json "$dist/${name}_${version}_manifest.json"
(cd "$dist" && sha256sum "${name}_${version}_"*.zip "${name}_${version}_manifest.json" > "${name}_${version}_SHA256SUMS")
if [ -n "${GPG_FINGERPRINT:-}" ]; then
  gpg --batch --yes --local-user "$GPG_FINGERPRINT" --detach-sign "$dist/${name}_${version}_SHA256SUMS"
else
  echo "note: GPG_FINGERPRINT not set: SHA256SUMS is not signed (the Registry requires a signature)" >&2
fi
ls -1 "$dist"/"${name}_${version}_"*
