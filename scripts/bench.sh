#!/usr/bin/env bash
# Every benchmark (crates/marina-bench): installs sysbench and HAProxy when
# missing, builds in release mode and runs `marina-bench all` with the given
# options (`--quick`: under 15 minutes on a 2-core machine). Prints every
# figure as `name: value unit (ratio x baseline; target …)` and a summary
# table; exits non-zero when a target is missed. Latest figures:
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --bench
cargo run --release -q -p marina-bench -- all "$@"
