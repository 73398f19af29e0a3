#!/usr/bin/env bash
# Installs every Debian package evald needs to build, test and run. Idempotent: it asks apt
# only for what is missing, so a second run is quick and changes nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost-dev libboost-filesystem-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev
  librocksdb-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsodium-dev
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

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
