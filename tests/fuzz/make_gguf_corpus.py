#!/usr/bin/env python3
"""Writes the fuzz_gguf seed corpus under tests/fuzz/corpus/fuzz_gguf/: small valid GGUF files
(every metadata value type, the analysable tensor types and a K-quant, custom alignments, v2) and
invalid ones, each breaking one of the reader's rules. Needs only the Python standard library.

    python3 tests/fuzz/make_gguf_corpus.py      # (re)writes the seed files, leaves others alone
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# GGUF metadata value types and ggml tensor types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
FMT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
       BOOL: "<B", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}
F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, BF16 = 0, 1, 2, 3, 6, 7, 8, 12, 30
BLOCK = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q4_0: (32, 18), Q4_1: (32, 20), Q5_0: (32, 22),
         Q5_1: (32, 24), Q8_0: (32, 34), Q4_K: (256, 144)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    """A typed metadata value: uint32 type, then the value (arrays: (elem_type, [items]))."""
    if t == STRING:
        return struct.pack("<I", t) + gstr(v)
    if t == ARRAY:
        et, items = v
        body = b"".join(gstr(x) if et == STRING else struct.pack(FMT[et], x) for x in items)
        return struct.pack("<IIQ", ARRAY, et, len(items)) + body
    return struct.pack("<I", t) + struct.pack(FMT[t], v)


def pad(n, a):
    return (n + a - 1) // a * a


def gguf(kvs, tensors, version=3, alignment=32, magic=b"GGUF", offsets=None):
    """kvs: [(key, typed value bytes)]; tensors: [(name, ne, ggml type)] with patterned data."""
    out = magic + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, v in kvs:
        out += gstr(k) + v
    datas, off = [], 0
    for i, (name, ne, t) in enumerate(tensors):
        elems, size = BLOCK[t]
        n = 1
        for d in ne:
            n *= d
        nbytes = n // elems * size
        at = offsets[i] if offsets else off
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        out += struct.pack("<IQ", t, at)
        datas.append((at, bytes((i * 7 + j * 13) % 251 for j in range(nbytes))))
        off = pad(at + nbytes, alignment)
    out += b"\0" * (pad(len(out), alignment) - len(out))
    data = bytearray(off)
    for at, d in datas:
        data[at:at + len(d)] = d
    return out + bytes(data)


SMALL_KVS = [("general.architecture", value(STRING, "llama")), ("general.name", value(STRING, "seed"))]
SMALL_TENSORS = [("a", [8], F32), ("b", [4, 2], F32)]

SEEDS = {
    "valid-small": gguf(SMALL_KVS, SMALL_TENSORS),
    "valid-every-type": gguf(
        SMALL_KVS + [
            ("general.base_model.count", value(UINT32, 1)),
            ("general.base_model.0.name", value(STRING, "Base")),
            ("general.alignment", value(UINT32, 64)),
            ("t.u8", value(UINT8, 200)), ("t.i8", value(INT8, -3)), ("t.u16", value(UINT16, 9)),
            ("t.i16", value(INT16, -9)), ("t.i32", value(INT32, -70000)), ("t.f32", value(FLOAT32, 0.5)),
            ("t.bool", value(BOOL, 1)), ("t.u64", value(UINT64, 2**40)), ("t.i64", value(INT64, -2**40)),
            ("t.f64", value(FLOAT64, 0.1)),
            ("t.ints", value(ARRAY, (INT32, [1, -2, 3]))),
            ("t.bools", value(ARRAY, (BOOL, [1, 0] * 40))),
            ("tokenizer.ggml.tokens", value(ARRAY, (STRING, ["<s>", "</s>", "a", "b", "ab"]))),
            ("tokenizer.ggml.scores", value(ARRAY, (FLOAT32, [0.0] * 70))),
        ],
        [("f16", [8], F16), ("bf16", [2, 2, 2], BF16), ("q8_0", [32], Q8_0), ("q4_0", [32], Q4_0),
         ("q4_1", [32], Q4_1), ("q5_0", [32], Q5_0), ("q5_1", [32], Q5_1), ("q4_k", [256], Q4_K)],
        alignment=64),
    "valid-v2-align1": gguf(SMALL_KVS + [("general.alignment", value(UINT32, 1))],
                            [("a", [3], F32), ("b", [5], F16)], version=2, alignment=1),
    "valid-empty": gguf([], []),
    "bad-magic": gguf(SMALL_KVS, SMALL_TENSORS, magic=b"GGML"),
    "bad-version": gguf(SMALL_KVS, SMALL_TENSORS, version=1),
    "bad-nested-array": gguf([("t.nested", struct.pack("<IIQ", ARRAY, ARRAY, 0))], SMALL_TENSORS),
    "bad-bool": gguf([("t.bool", value(BOOL, 2))], SMALL_TENSORS),
    "bad-alignment": gguf([("general.alignment", value(UINT32, 48))], SMALL_TENSORS),
    "bad-duplicate-key": gguf(SMALL_KVS + SMALL_KVS[:1], SMALL_TENSORS),
    "bad-block-size": gguf(SMALL_KVS, [("q", [33], Q8_0)]),
    "bad-overlap": gguf(SMALL_KVS, SMALL_TENSORS, offsets=[0, 0]),
    "bad-truncated": gguf(SMALL_KVS, SMALL_TENSORS)[:-40],
}


def main():
    d = os.path.join(HERE, "corpus", "fuzz_gguf")
    os.makedirs(d, exist_ok=True)
    for name, data in SEEDS.items():
        assert len(data) <= 4096, name
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
