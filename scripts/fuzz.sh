#!/usr/bin/env bash
# The long API fuzz pass: Schemathesis against a fresh Marina for
# MARINA_FUZZ_SECONDS (default 1800 s), every route of the OpenAPI document,
# as the operator. Fails on any 5xx (but replication-manager's documented
# "No Cluster"), a dropped connection or a panic. MARINA_FUZZ_SEED repeats a
# run. CI runs the same test for 120 s.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test
export MARINA_FUZZ_SECONDS="${MARINA_FUZZ_SECONDS:-1800}"
cargo test -p marina --test fuzz_api -- --nocapture
