#!/usr/bin/env bash
# Installs what Marina needs on Debian/Ubuntu when it is missing: MariaDB
# (server, client, backup), nftables, a C compiler and curl/jq (the README's
# tour uses them), and the Rust toolchain (rustup) when cargo is missing.
# Safe to run again; does nothing when everything is there. Needs root (or sudo).
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mariadb-backup >/dev/null 2>&1 || need+=(mariadb-backup)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v git >/dev/null 2>&1 || need+=(git)
# Tests (`--test`): python3-venv for the S3-compatible test server (moto), and
# HAProxy for the replication-manager health-check test, curl for the seeds'
# documented curl examples, prometheus for `promtool check metrics`, chromium
# and Node.js for the console's browser tests, iproute2 for the fleet tests'
# network namespaces.
if [ "${1:-}" = "--test" ]; then
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v node >/dev/null 2>&1 || need+=(nodejs npm)
  # The fleet tests build hosts as network namespaces (`ip netns`).
  command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2)
fi
# Benchmarks only (`scripts/install-deps.sh --bench`): sysbench and HAProxy baselines.
if [ "${1:-}" = "--bench" ]; then
  command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Do not let the package start a system-wide MariaDB: Marina runs its own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}"
fi

# Rust (edition 2024 needs 1.85 or newer; Debian's cargo is older): rustup's
# stable toolchain, for root in ~/.cargo.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "installing the Rust toolchain with rustup (https://rustup.rs)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
    || { echo "cannot install Rust: install rustup from https://rustup.rs, then run this again" >&2; exit 1; }
fi

# Python test tools, each in its own virtualenv under /opt/marina-test/<name>
# (installed when <name>/bin/<tool> is missing; the tests take MARINA_TEST_*
# variables to point elsewhere):
# - moto, the S3-compatible server the backup store tests run against;
# - the OpenStack client with its Trove plugin, which drives Marina's
#   Trove-compatible API;
# - Schemathesis, the property-based HTTP fuzzer of the API fuzz pass
#   (crates/marina/tests/fuzz_api.rs, scripts/fuzz.sh).
venv_tool() {
  local name="$1" tool="$2"
  shift 2
  [ -x "/opt/marina-test/$name/bin/$tool" ] && return 0
  echo "installing $* into /opt/marina-test/$name"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo python3 -m venv "/opt/marina-test/$name"
  $sudo "/opt/marina-test/$name/bin/pip" install -q "$@"
}
if [ "${1:-}" = "--test" ]; then
  venv_tool moto moto_server 'moto[server]==5.2.5'
  venv_tool osc openstack 'python-openstackclient==10.5.0' 'python-troveclient==8.11.0'
  venv_tool schemathesis schemathesis 'schemathesis==4.32.5'
fi

# playwright-core (from npm, pinned by tests/ui/package-lock.json) drives
# Debian's chromium in the console's browser tests; never a downloaded browser.
if [ "${1:-}" = "--test" ] && [ ! -d "$(dirname "$0")/../tests/ui/node_modules/playwright-core" ]; then
  echo "installing playwright-core into tests/ui/node_modules"
  (cd "$(dirname "$0")/../tests/ui" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
