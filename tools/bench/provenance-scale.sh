#!/usr/bin/env bash
# A 7B-class model end to end: Llama-2-7B's shape (hidden 4096, MLP 11008, 32 layers, 8
# key-value heads) with a 128,256-token vocabulary and tokenizer.json (Llama 3's size), sharded
# BF16 safetensors (about 15 GB). Fingerprints it (`add`, with the files' sha256) and scans it
# against the library holding it (a verbatim copy: every gated component must be derived),
# reporting each step's peak resident memory and time beside `openssl dgst -sha256` of the
# same files. Needs about 16 GB of disk for the model.
# Usage: tools/bench/provenance-scale.sh [BUILD_DIR] [--dir DIR] [--json]
#   --dir DIR   where the model is written once and reused ($TMPDIR or /tmp, evald-bench-provenance-7b)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then sed -n '2,9p' "$0" | sed 's/^# //'; exit 0; fi
build=build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then build=$1; shift; fi
dir=${TMPDIR:-/tmp}/evald-bench-provenance-7b json=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift ;; --json) json=1 ;;
    --help | -h) sed -n '2,9p' "$0" | sed 's/^# //'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
tool=$build/bin/evald-provenance
[ -x "$tool" ] || { echo "no $tool: build it first (ninja -C $build evald-provenance)" >&2; exit 2; }
note() { echo "provenance-scale: $*" >&2; }
model=$dir/model
stamp="evald-bench-provenance-7b model format 1"
if [ "$(cat "$model/bench-stamp.txt" 2>/dev/null)" != "$stamp" ]; then
  note "writing the model in $model (about 15 GB) ..."
  rm -rf "$model" && mkdir -p "$model"
  /usr/bin/python3 tools/bench/write_llama_bf16.py "$model" --hidden 4096 --inter 11008 --layers 32 --vocab 128256 --kv 1024 \
    --shards 7 --tokenizer
  echo "$stamp" > "$model/bench-stamp.txt"
fi
files=("$model"/model-*.safetensors)
bytes=$(stat -c %s "${files[@]}" | awk '{s += $1} END {printf "%.0f", s}')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Peak resident memory (MiB) and wall seconds of a command, its output to $work/out.
measure() {
  /usr/bin/time -f "%M %e" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || [ $? -le 3 ] || { cat "$work/err" >&2; exit 1; }
  tail -1 "$work/time" | awk '{printf "%.1f %.2f", $1 / 1024, $2}'
}
note "openssl dgst -sha256 (also warms the page cache where it fits)"
openssl=$(measure openssl dgst -sha256 "${files[@]}")
note "add"
add=$(measure "$tool" add -q --json --library "$work/lib" --name big --revision 0 "$model")
note "scan"
scan=$(measure "$tool" scan -q --json --brief --library "$work/lib" "$model")
read -r gate verdicts < <(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["gate"]["result"], " ".join(c["component"] + "=" + c["verdict"] for c in r["components"]))' "$work/out")
lib_mb=$(du -sm "$work/lib" | cut -f1)
mem=$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
cpu=$(lscpu | sed -n 's/^Model name: *//p')
when=$(date -u +%Y-%m-%dT%H:%MZ)
if [ "$json" = 1 ]; then
  printf '{"date": "%s", "cpu": "%s", "cores": %d, "memory_gib": %s, "files": %d, "bytes": %s, "library_mib": %s,\n' \
    "$when" "$cpu" "$(nproc)" "$mem" "${#files[@]}" "$bytes" "$lib_mb"
  printf ' "openssl": {"peak_mib": %s, "s": %s}, "add": {"peak_mib": %s, "s": %s}, "scan": {"peak_mib": %s, "s": %s},\n' \
    ${openssl% *} ${openssl#* } ${add% *} ${add#* } ${scan% *} ${scan#* }
  printf ' "gate": "%s", "verdicts": "%s"}\n' "$gate" "${verdicts% }"
  exit 0
fi
echo "$when, $cpu, $(nproc) cores, $mem GiB; ${#files[@]} shards, $(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1e9}') GB, 128,256-token vocabulary"
printf '%-36s %14s %8s\n' "" "peak MiB" s
printf '%-36s %14s %8s\n' "openssl dgst -sha256" ${openssl% *} ${openssl#* }
printf '%-36s %14s %8s\n' "evald-provenance add" ${add% *} ${add#* }
printf '%-36s %14s %8s\n' "evald-provenance scan (itself)" ${scan% *} ${scan#* }
echo "library: $lib_mb MiB; scan gate: $gate; $verdicts"
