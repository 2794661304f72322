#!/usr/bin/env bash
# One command to run Marina: installs MariaDB/nftables if missing, builds the
# release binary, checks the host (`marina doctor`) and serves on
# 127.0.0.1:7300 with state in ./marina-data (of the directory you run it
# from). Extra arguments go to `marina doctor` and `marina serve` (e.g.
# --listen, --data-dir, --config, --endpoints).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
"$root/scripts/install-deps.sh"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --manifest-path "$root/Cargo.toml" -p marina
marina="$root/target/release/marina"
echo "checking this host (marina doctor):"
if ! "$marina" doctor "$@"; then
  echo "marina doctor found a problem above: fix it (each failed check says how), then run $0 again" >&2
  exit 1
fi
exec "$marina" serve "$@"
