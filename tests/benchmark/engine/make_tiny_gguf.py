#!/usr/bin/env python3
"""Writes a tiny llama-architecture GGUF model with random weights and a SentencePiece-style
vocabulary (byte fallback, "▁" for spaces, a BOS token), for the benchmark tests' real
llama.cpp engine. The log-probabilities it yields are llama.cpp's; the weights mean nothing.

Usage: make_tiny_gguf.py OUT.gguf [--seed N]
"""
import argparse
import random
import struct

GGUF_MAGIC = b"GGUF"
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32 = 0
ALIGN = 32

# SentencePiece token types as llama.cpp reads them.
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def vocabulary():
    toks = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)]
    toks += [("<0x%02X>" % b, BYTE) for b in range(256)]
    pieces = ["\u2581"] + [chr(c) for c in range(0x21, 0x7F)]
    pieces += ["\u2581" + chr(c) for c in range(ord("A"), ord("Z") + 1)]
    pieces += ["\u2581" + d for d in "0123456789"]
    pieces += ["th", "he", "in", "er", "an", "re", "on", "at", "en", "is", "\u2581t", "\u2581th",
               "\u2581the", "\u2581a", "\u2581o", "\u2581of", "\u2581i", "\u2581is", "\u2581w", "\u2581wh",
               "\u2581wha", "\u2581what", "\u2581b", "\u2581br", "\u2581bre", "\u2581brea", "\u2581bread",
               "\u2581Q", "\u2581Qu", "Qu", "es", "st", "ti", "io", "ion", "Answer", "\u2581Answer"]
    # A few Hangul syllables as pieces; every other one falls back to its three UTF-8 bytes.
    pieces += list("질문정답다음에알맞은고르시오") + ["질문", "정답", "\u2581질문"]
    seen = set()
    for p in pieces:
        if p not in seen:
            seen.add(p)
            toks.append((p, NORMAL))
    return toks


def kv_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = kv_string(key) + struct.pack("<I", vtype)
    if vtype == T_UINT32:
        out += struct.pack("<I", value)
    elif vtype == T_INT32:
        out += struct.pack("<i", value)
    elif vtype == T_FLOAT32:
        out += struct.pack("<f", value)
    elif vtype == T_BOOL:
        out += struct.pack("<B", 1 if value else 0)
    elif vtype == T_STRING:
        out += kv_string(value)
    else:
        raise ValueError(vtype)
    return out


def kv_array(key, etype, values):
    out = kv_string(key) + struct.pack("<I", T_ARRAY) + struct.pack("<IQ", etype, len(values))
    for v in values:
        if etype == T_STRING:
            out += kv_string(v)
        elif etype == T_FLOAT32:
            out += struct.pack("<f", v)
        elif etype == T_INT32:
            out += struct.pack("<i", v)
        else:
            raise ValueError(etype)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    toks = vocabulary()
    n_vocab, n_embd, n_head, n_ff, n_layer, n_ctx = len(toks), 64, 4, 128, 2, 4096

    meta = [
        kv("general.architecture", T_STRING, "llama"),
        kv("general.name", T_STRING, "evald-tiny-random"),
        kv("llama.context_length", T_UINT32, n_ctx),
        kv("llama.embedding_length", T_UINT32, n_embd),
        kv("llama.block_count", T_UINT32, n_layer),
        kv("llama.feed_forward_length", T_UINT32, n_ff),
        kv("llama.attention.head_count", T_UINT32, n_head),
        kv("llama.attention.head_count_kv", T_UINT32, n_head),
        kv("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, 1e-5),
        kv("llama.rope.dimension_count", T_UINT32, n_embd // n_head),
        kv("llama.vocab_size", T_UINT32, n_vocab),
        kv("tokenizer.ggml.model", T_STRING, "llama"),
        kv_array("tokenizer.ggml.tokens", T_STRING, [t for t, _ in toks]),
        # Longer pieces score higher, so the tokenizer prefers them when it merges.
        kv_array("tokenizer.ggml.scores", T_FLOAT32,
                 [0.0 if ty != NORMAL else float(len(t)) - i * 1e-4 for i, (t, ty) in enumerate(toks)]),
        kv_array("tokenizer.ggml.token_type", T_INT32, [ty for _, ty in toks]),
        kv("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
        kv("tokenizer.ggml.bos_token_id", T_UINT32, 1),
        kv("tokenizer.ggml.eos_token_id", T_UINT32, 2),
        kv("tokenizer.ggml.add_bos_token", T_BOOL, True),
        kv("tokenizer.ggml.add_eos_token", T_BOOL, False),
    ]

    # ggml dims: ne0 first (the row length).
    tensors = [("token_embd.weight", [n_embd, n_vocab], 1.0),
               ("output_norm.weight", [n_embd], None),
               ("output.weight", [n_embd, n_vocab], 0.5)]
    for i in range(n_layer):
        p = "blk.%d." % i
        tensors += [(p + "attn_norm.weight", [n_embd], None),
                    (p + "attn_q.weight", [n_embd, n_embd], 0.2),
                    (p + "attn_k.weight", [n_embd, n_embd], 0.2),
                    (p + "attn_v.weight", [n_embd, n_embd], 0.2),
                    (p + "attn_output.weight", [n_embd, n_embd], 0.2),
                    (p + "ffn_norm.weight", [n_embd], None),
                    (p + "ffn_gate.weight", [n_embd, n_ff], 0.2),
                    (p + "ffn_up.weight", [n_embd, n_ff], 0.2),
                    (p + "ffn_down.weight", [n_ff, n_embd], 0.2)]

    infos, blobs, offset = b"", [], 0
    for name, dims, std in tensors:
        n = 1
        for d in dims:
            n *= d
        vals = [1.0] * n if std is None else [rng.gauss(0.0, std) for _ in range(n)]
        blob = struct.pack("<%df" % n, *vals)
        infos += kv_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", GGML_F32, offset)
        pad = (-len(blob)) % ALIGN
        blobs.append(blob + b"\0" * pad)
        offset += len(blob) + pad

    head = GGUF_MAGIC + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + infos
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(args.out, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
