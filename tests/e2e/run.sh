#!/usr/bin/env bash
# Builds the app with its UI embedded, then drives the real window under Xvfb through
# tauri-driver + WebKitWebDriver. Screenshots land in target/e2e/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../.."

npm run build:app-debug
cargo build --quiet -p switchyard-testkit --bin fixture-hub --bin gen-model
cargo build --quiet -p switchyard-cli
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
app="$target_dir/debug/switchyard-desktop"
[ -x "$app" ] || { echo "e2e: the app was not built at $app" >&2; exit 1; }
export SWITCHYARD_E2E_FIXTURE_HUB="$target_dir/debug/fixture-hub"
# Writes the random SDXS-512 model for the Diffusion test (cached after the first run).
export SWITCHYARD_E2E_GEN_MODEL="$target_dir/debug/gen-model"
# The command line with its daemon, for the daemon test: the one place its file
# name is written.
export SWITCHYARD_E2E_CLI="$target_dir/debug/switchyard"

rm -rf target/e2e/screenshots
mkdir -p target/e2e/screenshots
export SWITCHYARD_E2E_APP="$app"
export SWITCHYARD_E2E_SCREENSHOTS="$PWD/target/e2e/screenshots"
# A session bus for the tray and the single-instance lock, and a virtual display.
exec dbus-run-session -- xvfb-run --auto-servernum --server-args="-screen 0 1280x900x24" \
  node --test --test-concurrency=1 --test-timeout=300000 tests/e2e/
