#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (CPU only, no curl/network features) from the llama.cpp source that
# node-llama-cpp ships as a git bundle (node_modules/node-llama-cpp/llama/gitRelease.bundle).
#
#   bash scripts/build-llama-server.sh          # prints the binary's path on the last line of stdout
#   LLAMA_SERVER_JOBS=4 bash scripts/build-llama-server.sh
#
# Output: <cache>/<bundle commit>/bin/llama-server, where <cache> is $LLAMA_SERVER_CACHE or else
# ${XDG_CACHE_HOME:-~/.cache}/llamarec/llama-server (outside the checkout, so fresh clones on the same machine —
# CI's included — share it). An existing binary for the same bundle commit is reused, so a machine builds once. Needs git, cmake and a C++
# compiler. Build logs go to stderr; the last stdout line is the binary path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$root/node_modules/node-llama-cpp/llama/gitRelease.bundle"
if [[ ! -f "$bundle" ]]; then
  echo "build-llama-server: $bundle not found (run npm ci first)" >&2
  exit 2
fi
commit="$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" { print $1; exit }')"
if [[ -z "$commit" ]]; then commit="$(git bundle list-heads "$bundle" | awk 'NR == 1 { print $1 }')"; fi
cache="${LLAMA_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llamarec/llama-server}"
out="$cache/$commit"
binary="$out/bin/llama-server"
if [[ -x "$binary" ]]; then
  echo "build-llama-server: reusing $binary" >&2
  echo "$binary"
  exit 0
fi
# One build at a time per checkout: a second caller (another test run, CI step) waits for the first and
# then reuses its binary.
mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  echo "build-llama-server: another build is running; waiting for it" >&2
  flock 9
fi
for other in "$out".build.*; do
  pid="${other##*.build.}"
  while [[ -d "$other" ]] && kill -0 "$pid" 2>/dev/null; do sleep 10; done
done
if [[ -x "$binary" ]]; then
  echo "build-llama-server: reusing $binary" >&2
  echo "$binary"
  exit 0
fi
jobs="${LLAMA_SERVER_JOBS:-2}"
# The work folder survives an interrupted build (kill, timeout, session end), and the next call resumes it:
# compiled objects are kept, only what is missing is built.
work="$out.work"
for other in "$out".build.*; do
  if [[ -f "$other/.cloned" ]]; then work="$other"; fi
done
start=$(date +%s)
if [[ ! -f "$work/.cloned" ]]; then
  rm -rf "$work"
  mkdir -p "$work"
  echo "build-llama-server: cloning llama.cpp ${commit:0:12} from the node-llama-cpp bundle" >&2
  git clone --quiet "$bundle" "$work/src" >&2
  git -C "$work/src" -c advice.detachedHead=false checkout --quiet "$commit" >&2
  touch "$work/.cloned"
else
  echo "build-llama-server: resuming the interrupted build in $work" >&2
fi
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
echo "build-llama-server: configuring (CPU only, no curl)" >&2
cmake -S "$work/src" -B "$work/build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_HTTPLIB=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  >&2
echo "build-llama-server: building llama-server with -j$jobs" >&2
cmake --build "$work/build" --target llama-server -j "$jobs" >&2
mkdir -p "$out/bin"
cp "$work/build/bin/llama-server" "$binary.tmp"
mv "$binary.tmp" "$binary"
rm -rf "$work"
end=$(date +%s)
echo "build-llama-server: built $binary in $((end - start)) s" >&2
echo "$binary"
