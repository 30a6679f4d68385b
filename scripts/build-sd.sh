#!/usr/bin/env bash
# Builds stable-diffusion.cpp's sd-cli from the sources in the PyPI sdist
# `stable-diffusion-cpp-python`, once, into a cache outside the clone (static), and
# prints its path. Tests use it as the real image generator (SWITCHYARD_SD_CLI overrides).
set -euo pipefail
version=0.4.7
tools="${SWITCHYARD_TOOLS_DIR:-$HOME/.cache/switchyard/tools}"
dest="$tools/stable-diffusion.cpp-$version"
bin="$dest/bin/sd-cli"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

if ! command -v cmake >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >&2
fi
work="$tools/.build-sd-$version"
rm -rf "$work" && mkdir -p "$work"
echo "building sd-cli $version (about 4 minutes on 2 cores)" >&2
python3 -m pip download --quiet --no-deps "stable-diffusion-cpp-python==$version" -d "$work" >&2
tar -xzf "$work/stable_diffusion_cpp_python-$version.tar.gz" -C "$work"
# The server's web frontend would need pnpm and the network: off.
cmake -S "$work/stable_diffusion_cpp_python-$version/vendor/stable-diffusion.cpp" -B "$work/build" \
  -DCMAKE_BUILD_TYPE=Release -DSD_BUILD_EXAMPLES=ON -DSD_SERVER_BUILD_FRONTEND=OFF \
  -DGGML_NATIVE=OFF -DGGML_AVX2=ON >&2
cmake --build "$work/build" -j"$(nproc)" --target sd-cli >&2
mkdir -p "$dest/bin"
cp "$work/build/bin/sd-cli" "$bin.partial" && mv "$bin.partial" "$bin"
rm -rf "$work"
echo "$bin"
