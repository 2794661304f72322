#!/usr/bin/env bash
# One command to run the whole test suite (unit tests and integration tests
# against real mariadbd processes). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --no-fail-fast "$@"
