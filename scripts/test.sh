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
# Built with llama-server, beside it: the tests quantize generated models with it.
export SWITCHYARD_LLAMA_QUANTIZE="${SWITCHYARD_LLAMA_QUANTIZE:-$(bash scripts/build-tool.sh llama-quantize)}"
export SWITCHYARD_SD_CLI="${SWITCHYARD_SD_CLI:-$(bash scripts/build-tool.sh sd-cli)}"
# Built with sd-cli, beside it, where the image service looks for it.
export SWITCHYARD_SD_SERVER="${SWITCHYARD_SD_SERVER:-$(bash scripts/build-tool.sh sd-server)}"
export SWITCHYARD_SKULK_LLAMA_SERVER="${SWITCHYARD_SKULK_LLAMA_SERVER:-$(bash scripts/build-tool.sh skulk-llama-server)}"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "The crates keep their layers; none below the shell has Tauri (nor GTK); the pure ones no async runtime"
python3 scripts/check-layers.py
python3 scripts/module-graph.py
for crate in switchyard-base switchyard-gguf switchyard-estimate switchyard-system switchyard-net \
  switchyard-process switchyard-models switchyard-binaries switchyard-llama switchyard-diffusion \
  switchyard-orchestrator switchyard-engine switchyard-cli; do
  if cargo tree -p "$crate" -e normal,build --prefix none | grep -iE '^(tauri|wry|tao|webkit2gtk|gtk)'; then
    echo "$crate depends on Tauri or GTK: it must stay free of them (headless machines have neither)" >&2
    exit 1
  fi
done
for crate in switchyard-base switchyard-estimate switchyard-system; do
  if cargo tree -p "$crate" -e normal --prefix none | grep -E '^(tokio|reqwest|hyper|axum) '; then
    echo "$crate depends on an async runtime or HTTP: it must stay pure (publishable on its own)" >&2
    exit 1
  fi
done
if cargo tree -p switchyard-gguf --no-default-features -e normal --prefix none | grep -E '^(tokio|reqwest|hyper|axum) '; then
  echo "switchyard-gguf without its sources feature must stay pure" >&2
  exit 1
fi

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
