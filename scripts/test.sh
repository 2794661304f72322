#!/usr/bin/env bash
# One command to run the whole test suite (unit tests and integration tests
# against real mariadbd processes). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --test
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
# The README's tour (crates/marina/tests/readme.rs) runs scripts/run.sh, which
# serves the release binary: build it here rather than inside a test.
cargo build --release -p marina
cargo nextest run --workspace --no-fail-fast "$@"
