#!/usr/bin/env bash
# A release: the archives of every platform users run (linux_amd64 and linux_arm64, static; darwin_amd64,
# darwin_arm64; windows_amd64), SHA256SUMS, its detached GPG signature and the registry manifest, in
# dist/ (scripts/package.sh lays them out). The signing key comes from the environment, as a release
# pipeline provides it: GPG_FINGERPRINT names a key in the keyring, which GPG_PRIVATE_KEY (an ASCII-armored
# secret key, optional) is imported into first.
#
#   scripts/release.sh [VERSION]      VERSION defaults to the one in Cargo.toml; DIST overrides dist/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=${1:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)}
declared=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# The binary reports the version Cargo.toml declares: a release of another version would lie.
[ "$version" = "$declared" ] || { echo "release $version, but Cargo.toml declares $declared: change it there first" >&2; exit 1; }
if [ -n "${GPG_PRIVATE_KEY:-}" ]; then
  gpg --batch --import <<<"$GPG_PRIVATE_KEY" >&2
fi
[ -n "${GPG_FINGERPRINT:-}" ] || { echo "GPG_FINGERPRINT is not set: a release is signed (the Registry requires it)" >&2; exit 1; }
gpg --batch --list-secret-keys "$GPG_FINGERPRINT" >/dev/null || { echo "no secret key $GPG_FINGERPRINT in the keyring" >&2; exit 1; }
PATH="$(scripts/install-release-tools.sh):$PATH"
source <(grep '^RELEASE_TARGETS=' scripts/install-release-tools.sh)
TARGETS=$RELEASE_TARGETS scripts/package.sh "$version"
dist=${DIST:-$root/dist}
gpg --batch --verify "$dist/terraform-provider-coiled_${version}_SHA256SUMS.sig" "$dist/terraform-provider-coiled_${version}_SHA256SUMS" >&2
