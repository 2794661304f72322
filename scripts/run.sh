#!/usr/bin/env bash
# One command to run Marina: installs MariaDB/nftables if missing, builds the
# release binary and serves on 127.0.0.1:7300 with state in ./marina-data.
# Extra arguments go to `marina serve` (e.g. --listen, --config, --endpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release -p marina
exec ./target/release/marina serve "$@"
