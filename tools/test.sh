#!/usr/bin/env bash
# Installs what is missing, builds everything with warnings as errors and runs every test.
# Usage: tools/test.sh [ctest arguments...]   (e.g. -R Engine, -L integration)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ]; then
  sed -n '2,3p' "$0" | sed 's/^# //'
  exit 0
fi
./tools/install-deps.sh
cmake -S . -B build -G Ninja -DEVALD_WERROR=ON > build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
rm -f build-configure.log
cmake --build build
ctest --test-dir build --output-on-failure -j2 --timeout 300 "$@"
