#!/usr/bin/env bash
# Installs what is missing, then starts Switchyard (development build, embedded defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh run
export PATH="$HOME/.cargo/bin:$PATH"
exec npm run start
