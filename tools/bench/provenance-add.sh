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
  /usr/bin/python3 - "$model" <<'EOF'
import json, sys
import numpy as np
out = sys.argv[1]
H, I, L, V, KV, SHARDS = 2048, 5632, 22, 32000, 256, 4
specs = [("model.embed_tokens.weight", (V, H))]
for i in range(L):
    p = f"model.layers.{i}."
    specs += [(p + "input_layernorm.weight", (H,)), (p + "self_attn.q_proj.weight", (H, H)),
              (p + "self_attn.k_proj.weight", (KV, H)), (p + "self_attn.v_proj.weight", (KV, H)),
              (p + "self_attn.o_proj.weight", (H, H)), (p + "post_attention_layernorm.weight", (H,)),
              (p + "mlp.gate_proj.weight", (I, H)), (p + "mlp.up_proj.weight", (I, H)),
              (p + "mlp.down_proj.weight", (H, I))]
specs += [("model.norm.weight", (H,)), ("lm_head.weight", (V, H))]
nbytes = lambda shape: int(np.prod(shape)) * 2
total = sum(nbytes(s) for _, s in specs)
# Tensors in order, a new shard once the current one holds its share.
shards, cur, size = [], [], 0
for seed, (name, shape) in enumerate(specs):
    if cur and size >= total / SHARDS and len(shards) < SHARDS - 1:
        shards.append(cur); cur, size = [], 0
    cur.append((seed, name, shape)); size += nbytes(shape)
shards.append(cur)
weight_map = {}
for k, tensors in enumerate(shards):
    file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for _, name, shape in tensors:
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nbytes(shape)]}
        off += nbytes(shape); weight_map[name] = file
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(f"{out}/{file}", "wb") as f:
        f.write(len(h).to_bytes(8, "little")); f.write(h)
        for seed, name, shape in tensors:
            rng, n = np.random.default_rng(seed), int(np.prod(shape))
            for s in range(0, n, 1 << 24):
                x = rng.standard_normal(min(1 << 24, n - s), dtype=np.float32) * np.float32(0.02)
                if len(shape) == 1: x += np.float32(1)
                (x.view(np.uint32) >> 16).astype("<u2").tofile(f)
with open(f"{out}/model.safetensors.index.json", "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
with open(f"{out}/config.json", "w") as f:
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
               "num_hidden_layers": L, "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": V,
               "torch_dtype": "bfloat16"}, f, indent=1)
EOF
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
