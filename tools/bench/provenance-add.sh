#!/usr/bin/env bash
# `evald-provenance add` (the fingerprint and the files' sha256) on a sharded Llama-shaped BF16
# safetensors model (2.2 GB, 4 shards) from the page cache, beside `openssl dgst -sha256` and
# `cat` of the same files, timed in one run: the median of --repeat runs of each, interleaved.
# Usage: tools/bench/provenance-add.sh [BUILD_DIR] [--dir DIR] [--repeat R] [--threads N] [--json]
#   --dir DIR     where the model is written once and reused ($TMPDIR or /tmp, evald-bench-provenance-add)
#   --repeat R    runs of each command, interleaved; the median is reported (default 3)
#   --threads N   passed to add (default: add's own default, 2)
#   --json        one JSON object on stdout instead of the table
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then sed -n '2,9p' "$0" | sed 's/^# //'; exit 0; fi
build=build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
dir=${TMPDIR:-/tmp}/evald-bench-provenance-add repeat=3 threads= json=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift ;; --repeat) repeat=$2; shift ;; --threads) threads=$2; shift ;; --json) json=1 ;;
    --help | -h) sed -n '2,9p' "$0" | sed 's/^# //'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
tool=$build/bin/evald-provenance
[ -x "$tool" ] || { echo "no $tool: build it first (ninja -C $build evald-provenance)" >&2; exit 2; }
note() { echo "provenance-add: $*" >&2; }

# The model: TinyLlama's shape (hidden 2048, MLP 5632, 22 layers, 4 key-value heads, vocab
# 32000), values normal(0, 0.02) truncated to BF16 from fixed seeds. The stamp is written last,
# so an interrupted write is done again.
model=$dir/model
stamp="evald-bench-provenance-add model format 1"
if [ "$(cat "$model/bench-stamp.txt" 2>/dev/null)" != "$stamp" ]; then
  note "writing the model in $model ..."
  rm -rf "$model" && mkdir -p "$model"
  /usr/bin/python3 tools/bench/write_llama_bf16.py "$model"
  echo "$stamp" > "$model/bench-stamp.txt"
fi
files=("$model"/model-*.safetensors)
bytes=$(stat -c %s "${files[@]}" | awk '{s += $1} END {printf "%.0f", s}')
gb() { awk -v b="$bytes" -v s="$1" 'BEGIN {printf "%.2f", b / 1e9 / s}'; }
note "model: ${#files[@]} shards, $bytes bytes; warming the page cache"
cat "${files[@]}" > /dev/null

lib=$(mktemp -d)
trap 'rm -rf "$lib"' EXIT
add_args=(-q --json)
[ -n "$threads" ] && add_args+=(--threads "$threads")
# Seconds taken by a command, its output to $lib/out.
timed() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" > "$lib/out"
  t1=$(date +%s%N)
  awk -v d=$((t1 - t0)) 'BEGIN {printf "%.3f", d / 1e9}'
}
add() { rm -rf "$lib/db"; "$tool" add --library "$lib/db" --name bench "${add_args[@]}" "$@" "$model"; }
declare -A runs=()
for r in $(seq "$repeat"); do
  runs[cat]+=" $(timed cat "${files[@]}")"
  runs[openssl]+=" $(timed openssl dgst -sha256 "${files[@]}")"
  # The oracle: add's source_hash is the sha256 of "sha256  file\n" lines, files in order.
  want=$(sed -E 's|^SHA2?-?256\((.*/)?(.*)\)= (.*)$|\3  \2|' "$lib/out" | sha256sum | cut -d' ' -f1)
  runs[add]+=" $(timed add)"
  got=$(sed -E 's/.*"source_hash": *"([0-9a-f]*)".*/\1/' "$lib/out")
  [ "$got" = "$want" ] || { echo "add's source_hash $got, but openssl's digests give $want" >&2; exit 1; }
  runs[add_no_hash]+=" $(timed add --no-hash)"
  note "run $r: cat ${runs[cat]##* } s, openssl ${runs[openssl]##* } s, add ${runs[add]##* } s, add --no-hash ${runs[add_no_hash]##* } s"
done
median() { echo $1 | tr ' ' '\n' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
declare -A med=()
for k in cat openssl add add_no_hash; do med[$k]=$(median "${runs[$k]}"); done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }  # throughput of a over b's
cpu=$(lscpu | sed -n 's/^Model name: *//p')
when=$(date -u +%Y-%m-%dT%H:%MZ)

if [ "$json" = 1 ]; then
  list() { echo $1 | sed 's/ /, /g'; }
  printf '{"date": "%s", "cpu": "%s", "cores": %d, "files": %d, "bytes": %d, "repeat": %d, "threads": "%s",\n' \
    "$when" "$cpu" "$(nproc)" "${#files[@]}" "$bytes" "$repeat" "${threads:-default}"
  for k in cat openssl add add_no_hash; do
    printf ' "%s": {"s": %s, "gb_per_s": %s, "runs_s": [%s]},\n' "$k" "${med[$k]}" "$(gb "${med[$k]}")" "$(list "${runs[$k]}")"
  done
  printf ' "add_over_openssl": %s, "add_over_cat": %s, "no_hash_over_openssl": %s}\n' \
    "$(ratio "${med[add]}" "${med[openssl]}")" "$(ratio "${med[add]}" "${med[cat]}")" "$(ratio "${med[add_no_hash]}" "${med[openssl]}")"
  exit 0
fi
echo "$when, $cpu, $(nproc) cores; ${#files[@]} shards, $(awk -v b="$bytes" 'BEGIN {printf "%.2f", b / 1e9}') GB, page-cached; median of $repeat"
printf '%-40s %8s %8s\n' "" s GB/s
for k in cat openssl add add_no_hash; do
  case $k in
    cat) label="cat FILES > /dev/null" ;; openssl) label="openssl dgst -sha256 FILES" ;;
    add) label="evald-provenance add" ;; add_no_hash) label="evald-provenance add --no-hash" ;;
  esac
  printf '%-40s %8s %8s\n' "$label" "${med[$k]}" "$(gb "${med[$k]}")"
done
echo "add / openssl: $(ratio "${med[add]}" "${med[openssl]}")x   add / cat: $(ratio "${med[add]}" "${med[cat]}")x   add --no-hash / openssl: $(ratio "${med[add_no_hash]}" "${med[openssl]}")x"
