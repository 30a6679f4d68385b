#!/usr/bin/env bash
# Installs what is missing, then runs every test: Rust (nextest), lints, the
# generated TypeScript bindings, the UI (svelte-check, vitest), the real-window e2e and
# the .deb installer (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
export PATH="$HOME/.cargo/bin:$PATH"
export SWITCHYARD_PYTHON="${SWITCHYARD_PYTHON:-$HOME/.cache/switchyard/venv/bin/python}"
export SWITCHYARD_LLAMA_SERVER="${SWITCHYARD_LLAMA_SERVER:-$(bash scripts/build-tool.sh llama-server)}"
export SWITCHYARD_SD_CLI="${SWITCHYARD_SD_CLI:-$(bash scripts/build-tool.sh sd-cli)}"
# Built with sd-cli, beside it, where the image service looks for it.
export SWITCHYARD_SD_SERVER="${SWITCHYARD_SD_SERVER:-$(bash scripts/build-tool.sh sd-server)}"
export SWITCHYARD_SKULK_LLAMA_SERVER="${SWITCHYARD_SKULK_LLAMA_SERVER:-$(bash scripts/build-tool.sh skulk-llama-server)}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "The engine and the CLI have no Tauri (nor GTK) in their dependency trees"
for crate in switchyard-engine switchyard-cli; do
  if cargo tree -p "$crate" -e normal,build --prefix none | grep -iE '^(tauri|wry|tao|webkit2gtk|gtk)'; then
    echo "$crate depends on Tauri or GTK: it must stay free of them (headless machines have neither)" >&2
    exit 1
  fi
done

step "Rust tests (engine, test kit, CLI, shell)"
cargo nextest run --workspace --no-fail-fast

step "TypeScript bindings are current"
if [ -n "$(git status --porcelain -- ui/src/bindings)" ]; then
  git status --porcelain -- ui/src/bindings
  echo "ui/src/bindings differs from the Rust types: run the Rust tests and commit the result" >&2
  exit 1
fi

step "Lints"
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo fmt --all --check

step "UI type check and unit tests"
npm run ui:check
npm run ui:test

step "End-to-end: the real app under Xvfb"
npm run e2e

step "Installer: the .deb installs, runs and uninstalls (release build)"
bash tests/install/deb.sh
