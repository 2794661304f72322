#!/usr/bin/env bash
# The long chaos run: MARINA_CHAOS_FAULTS (default 200) random faults against
# a 3-node cluster under a continuous write load — the same test CI runs with
# 20 (crates/marina/tests/chaos.rs). Prints the seed first; MARINA_CHAOS_SEED
# replays a run, MARINA_CHAOS_KINDS (comma-separated) narrows the fault kinds.
# Its last result is in docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test
export MARINA_CHAOS_FAULTS="${MARINA_CHAOS_FAULTS:-200}"
cargo nextest run --profile chaos-long -p marina --test chaos --no-capture
