#!/usr/bin/env bash
# The benchmark plugin's items/s against real llama.cpp inference (the tests' engine: a tiny
# random GGUF model on node-llama-cpp's prebuilt CPU binary), beside wrk sending the same
# requests, for log-likelihood and generation scoring.
# Usage: tools/bench/engine-throughput.sh [BUILD_DIR] [--sequences N] [--concurrency C] [--seconds S] [--repeat R]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--help" ]; then sed -n '2,5p' "$0" | sed 's/^# //'; exit 0; fi
build=build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
sequences=1 concurrency=4 seconds=20 repeat=3
while [ $# -gt 0 ]; do
  case $1 in
    --sequences) sequences=$2 ;; --concurrency) concurrency=$2 ;; --seconds) seconds=$2 ;; --repeat) repeat=$2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
engine=${EVALD_TEST_ENGINE_DIR:-/opt/evald/test-engine}
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
python3 tests/benchmark/engine/make_tiny_gguf.py "$work/tiny.gguf"
"$engine/bin/node" tests/benchmark/engine/server.mjs --modules "$engine/node_modules" --model "$work/tiny.gguf" --port 0 \
  --sequences "$sequences" > "$work/port" &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(awk '{print $2}' "$work/port")
echo "engine: llama.cpp (node-llama-cpp), tiny random model, $sequences sequence(s), port $port; $(nproc) cores"
for scoring in logprobs generate; do
  "$build/bin/evald-bench-engine-throughput" --endpoint "http://127.0.0.1:$port/v1" --model tiny \
    --suite suites/sample-en-reasoning/suite.yaml --scoring "$scoring" --concurrency "$concurrency" --seconds "$seconds" --repeat "$repeat"
  echo
done
