#!/usr/bin/env bash
# Runs batches of random operation sequences (tests/it/soak.rs) against coiled-local --vary with
# faults, each batch from a fresh seed, for as long as asked; stops at the first broken invariant,
# which is printed shrunk, with the command that replays it.
#   scripts/soak.sh --minutes 30            fresh seeds for 30 minutes
#   scripts/soak.sh --minutes 5 --seed 42   start from seed 42 (then 43, 44, …)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
minutes=10
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "usage: scripts/soak.sh [--minutes N] [--seed S]" >&2; exit 2 ;;
  esac
done
[ -n "$seed" ] || seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
scripts/install-test-tools.sh
cargo build --workspace --bins
end=$(( $(date +%s) + minutes * 60 ))
batches=0
while [ "$(date +%s)" -lt "$end" ]; do
  echo "== soak batch $((batches + 1)), seed $seed"
  SOAK_SEED=$seed SOAK_CASES=${SOAK_CASES:-5} cargo nextest run --test it --no-fail-fast --success-output never \
    -E 'test(=soak::random_sequences_keep_every_invariant)'
  batches=$((batches + 1))
  seed=$((seed + 1))
done
echo "== soak: $batches batches of ${SOAK_CASES:-5} sequences, seeds up to $((seed - 1)), no invariant broken"
