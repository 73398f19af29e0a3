#!/usr/bin/env bash
# Peak memory and time of `evald-provenance scan` and `list` against libraries of growing size:
# references of TinyLlama's shape (1.1B parameters, BF16, 32,000-token vocabulary) and a
# candidate of the same shape unrelated to them, page-cached. The first reference is added
# (fingerprinted); the others are its record imported under other names, which costs the scan
# what distinct references would (every reference is read and screened).
# Usage: tools/bench/provenance-library.sh [BUILD_DIR] [--refs "1 50 100"] [--dir DIR] [--json]
#   --refs LIST   library sizes to measure, ascending (default "1 50 100")
#   --dir DIR     where the models are written once and reused ($TMPDIR or /tmp, evald-bench-provenance-add)
#   --json        one JSON object on stdout instead of the table
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then sed -n '2,10p' "$0" | sed 's/^# //'; exit 0; fi
build=build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
dir=${TMPDIR:-/tmp}/evald-bench-provenance-add sizes="1 50 100" json=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift ;; --refs) sizes=$2; shift ;; --json) json=1 ;;
    --help | -h) sed -n '2,10p' "$0" | sed 's/^# //'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
tool=$build/bin/evald-provenance
[ -x "$tool" ] || { echo "no $tool: build it first (ninja -C $build evald-provenance)" >&2; exit 2; }
note() { echo "provenance-library: $*" >&2; }

# Models as tools/bench/provenance-add.sh writes them (the reference is the same files); the
# candidate draws its values from other seeds. A stamp written last marks a complete model.
model() {  # DIR SEED_OFFSET
  local stamp="evald-bench-provenance-add model format 1 seed $2"
  [ "$2" = 0 ] && stamp="evald-bench-provenance-add model format 1"
  if [ "$(cat "$1/bench-stamp.txt" 2>/dev/null)" != "$stamp" ]; then
    note "writing a model in $1 ..."
    rm -rf "$1" && mkdir -p "$1"
    /usr/bin/python3 tools/bench/write_llama_bf16.py "$1" --seed-offset "$2"
    echo "$stamp" > "$1/bench-stamp.txt"
  fi
}
model "$dir/model" 0
model "$dir/candidate" 1000
cat "$dir"/model/*.safetensors "$dir"/candidate/*.safetensors > /dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Peak resident memory (MiB) and wall seconds of a command, its output to $work/out.
measure() {
  /usr/bin/time -f "%M %e" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || [ $? -le 3 ] || { cat "$work/err" >&2; exit 1; }
  tail -1 "$work/time" | awk '{printf "%.1f %.2f", $1 / 1024, $2}'
}
note "fingerprinting the reference"
add=$(measure "$tool" add -q --no-hash --library "$work/lib" --name ref --revision 0 "$dir/model")
"$tool" export -q --library "$work/lib" ref@0 "$work/ref.msgpack" > /dev/null
record_mb=$(stat -c %s "$work/ref.msgpack" | awk '{printf "%.1f", $1 / 1048576}')
have=1 rows=()
for n in $sizes; do
  while [ "$have" -lt "$n" ]; do
    "$tool" import -q --library "$work/lib" --name ref --revision "$have" "$work/ref.msgpack" > /dev/null
    have=$((have + 1))
  done
  note "library of $n: list, scan"
  list=$(measure "$tool" list --library "$work/lib")
  scan=$(measure "$tool" scan -q --json --brief --library "$work/lib" "$dir/candidate")
  gate=$(sed -nE 's/.*"gate": *\{[^}]*"result": *"([a-z]*)".*/\1/p' "$work/out" | head -1)
  lib_mb=$(du -sm "$work/lib" | cut -f1)
  rows+=("$n $lib_mb $list $scan $gate")
done
cpu=$(lscpu | sed -n 's/^Model name: *//p')
when=$(date -u +%Y-%m-%dT%H:%MZ)
if [ "$json" = 1 ]; then
  printf '{"date": "%s", "cpu": "%s", "cores": %d, "record_mib": %s, "add_peak_mib": %s, "add_s": %s, "libraries": [' \
    "$when" "$cpu" "$(nproc)" "$record_mb" ${add% *} ${add#* }
  sep=
  for r in "${rows[@]}"; do
    set -- $r
    printf '%s\n {"references": %s, "library_mib": %s, "list_peak_mib": %s, "list_s": %s, "scan_peak_mib": %s, "scan_s": %s, "gate": "%s"}' \
      "$sep" "$1" "$2" "$3" "$4" "$5" "$6" "$7"
    sep=,
  done
  printf ']}\n'
  exit 0
fi
echo "$when, $cpu, $(nproc) cores; references and candidate of TinyLlama's shape (2.2 GB BF16), page-cached"
echo "add (--no-hash): peak ${add% *} MiB, ${add#* } s; one fingerprint record: $record_mb MiB"
printf '%10s %12s %14s %8s %14s %8s %6s\n' references "library MiB" "list peak MiB" "list s" "scan peak MiB" "scan s" gate
for r in "${rows[@]}"; do
  set -- $r
  printf '%10s %12s %14s %8s %14s %8s %6s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7"
done
