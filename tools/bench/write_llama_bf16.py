#!/usr/bin/env python3
"""Writes a Llama-shaped model as sharded BF16 safetensors for the provenance benchmarks: values
normal(0, 0.02) (norm gains 1 + that), truncated to BF16, each tensor from its own fixed seed
(seed_offset + its index), so equal arguments give equal bytes. With --tokenizer, a
tokenizer.json whose vocabulary has --vocab distinct byte-level tokens.

Usage: write_llama_bf16.py OUT [--hidden H] [--inter I] [--layers L] [--vocab V] [--kv KV]
                           [--shards N] [--seed-offset S] [--tokenizer]
Defaults: TinyLlama-1.1B's shape (2048, 5632, 22, 32000, 256, 4 shards)."""
import argparse, json
import numpy as np

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("out")
ap.add_argument("--hidden", type=int, default=2048)
ap.add_argument("--inter", type=int, default=5632)
ap.add_argument("--layers", type=int, default=22)
ap.add_argument("--vocab", type=int, default=32000)
ap.add_argument("--kv", type=int, default=256, help="rows of k_proj and v_proj (key-value heads x head size)")
ap.add_argument("--shards", type=int, default=4)
ap.add_argument("--seed-offset", type=int, default=0)
ap.add_argument("--tokenizer", action="store_true")
a = ap.parse_args()
out, H, I, L, V, KV, SHARDS = a.out, a.hidden, a.inter, a.layers, a.vocab, a.kv, a.shards
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
    cur.append((seed + a.seed_offset, name, shape)); size += nbytes(shape)
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
               "num_hidden_layers": L, "num_attention_heads": H // 64, "num_key_value_heads": KV // 64, "vocab_size": V,
               "torch_dtype": "bfloat16"}, f, indent=1)
if a.tokenizer:
    # Byte-level BPE spellings: the 256 byte tokens, then distinct multi-letter pieces.
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab, seen = {}, set()
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = b
    n = 0
    while len(vocab) < V:
        piece, x = "", n
        while True:
            piece = letters[x % 26] + piece
            x //= 26
            if x == 0: break
        vocab[("\u0120" if n % 3 == 0 else "") + piece] = len(vocab)
        n += 1
    with open(f"{out}/tokenizer.json", "w") as f:
        json.dump({"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": []}}, f)
