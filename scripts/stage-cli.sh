#!/usr/bin/env bash
# Builds the `switchyard` command (release) and puts it where tauri.conf.json's
# Linux packages take it from (target/bundle/switchyard, whatever CARGO_TARGET_DIR
# is): the .deb and .rpm install it as /usr/bin/switchyard beside the app.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p switchyard-cli
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p target/bundle
install -m 0755 "$target_dir/release/switchyard" target/bundle/switchyard
