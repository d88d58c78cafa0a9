#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the source node-llama-cpp ships (a git
# bundle inside its npm package), once per llama.cpp commit, into a cache
# outside the repository. Prints the binary's path. A second run finds the
# cache and returns at once. The HTTP engine's tests start this binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$bundle" ] || { echo "llama-server.sh: $bundle not found (run npm ci first)" >&2; exit 1; }
commit=$(git bundle list-heads "$bundle" | awk 'NR==1 {print $1}')
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pg-steadytext/llama-server/$commit"
if [ -x "$cache/bin/llama-server" ]; then
  echo "$cache/bin/llama-server"
  exit 0
fi

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
command -v g++ >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q "${need[@]}" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$bundle" "$work/src" >&2
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$work/src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$work/build" --target llama-server -j"$jobs" >&2

# The binary loads libggml*/libllama* from beside itself.
tmp="$cache.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
cp -a "$work/build/bin/llama-server" "$tmp/bin/"
find "$work/build/bin" -maxdepth 1 -name '*.so*' -exec cp -a {} "$tmp/bin/" \;
"$tmp/bin/llama-server" --version >&2
rm -rf "$cache"
mv "$tmp" "$cache"
echo "$cache/bin/llama-server"
