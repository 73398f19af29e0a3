#!/usr/bin/env python3
"""Writes the seeds of fuzz_json and fuzz_safetensors (run from this folder)."""
import json, os, struct

def put(target, name, data):
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def st(tensors, metadata=None):
    """A safetensors file from [(name, dtype, shape, bytes)], header padded to 8 like the reference."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

J = "fuzz_json"
put(J, "nested.json", '{"a":[1,-2.5e-3,true,false,null,{"b":"c"}],"big":18446744073709551615,"e":{}}')
put(J, "config.json", '{"architectures":["LlamaForCausalLM"],"hidden_size":4096,"rms_norm_eps":1e-05,\n "rope_scaling":null,"_name_or_path":"org/base"}\n')
put(J, "tokenizer.json", '{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"added_tokens":[{"id":3,"content":"<s>"}]}')
put(J, "unigram.json", '{"model":{"type":"Unigram","vocab":[["<unk>",0.0],["\\u2581a",-1.5]]}}')
put(J, "escapes.json", '"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9\\uFFFF\\ud83d\\ude00"')
put(J, "numbers.json", "[0,-0,1e400,-1e-400,18446744073709551616,0.5,1E+2,123456789012345678901234567890]")
put(J, "utf8.json", '["\u00e9\u20ac\U0001F600\x7f"]')
put(J, "deep.json", "[" * 10 + "1" + "]" * 10)
put(J, "duplicate.json", '{"a":1,"a":2}')
put(J, "index.json", '{"metadata":{"total_size":24},"weight_map":{"a":"a.safetensors","b":"b.safetensors"}}')

S = "fuzz_safetensors"
f32 = struct.pack("<4f", 1.0, -0.0, float("inf"), 1e-45)
put(S, "dtypes", b"\0" + st([
    ("f32", "F32", [2, 2], f32), ("f16", "F16", [3], struct.pack("<3H", 0x3c00, 0x0001, 0x7e00)),
    ("bf16", "BF16", [2], struct.pack("<2H", 0x3f80, 0xff80)), ("i8", "I8", [2], b"\x80\x7f"), ("u8", "U8", [1], b"\xff"),
    ("e4m3", "F8_E4M3", [3], b"\x38\x7e\x7f"), ("e5m2", "F8_E5M2", [2], b"\x3c\x7c"), ("e8m0", "F8_E8M0", [2], b"\x7f\xff"),
    ("i64", "I64", [1], struct.pack("<q", -2**40)), ("f64", "F64", [1], struct.pack("<d", 0.1)), ("b", "BOOL", [1], b"\x01"),
    ("f4", "F4", [2], b"\x12"), ("f6", "F6_E2M3", [4], b"abc"), ("c64", "C64", [1], bytes(8)),
], {"format": "pt"}))
put(S, "empty", b"\0" + st([]))
put(S, "scalar_and_empty", b"\0" + st([("e", "F32", [0, 4], b""), ("s", "F32", [], struct.pack("<f", 2.5))]))
bad = bytearray(st([("a", "F32", [2], bytes(8)), ("b", "F32", [2], bytes(8))]))
put(S, "overlap", b"\0" + bytes(bad).replace(b"[8,16]", b"[4,12]"))
sep = b"\n--shard--\n"
a = st([("a", "F32", [2], f32[:8]), ("b", "F16", [2], bytes(4))])
b = st([("c", "I8", [3], b"\x01\xfe\x03")], {"format": "pt"})
index = {"metadata": {"total_size": 15}, "weight_map": {"a": "a.safetensors", "b": "a.safetensors", "c": "b.safetensors"}}
put(S, "sharded", b"\x01" + json.dumps(index).encode() + sep + a + sep + b)
index["weight_map"]["c"] = "a.safetensors"
put(S, "sharded_wrong_shard", b"\x01" + json.dumps(index).encode() + sep + a + sep + b)
# Reproducers: a total_size no uint64_t can hold; a NUL that cut the shard's path short.
index["weight_map"]["c"] = "b.safetensors"
index["metadata"]["total_size"] = -1
put(S, "crash-index-total-size-negative", b"\x01" + json.dumps(index).encode() + sep + a + sep + b)
index["metadata"]["total_size"] = 15
index["weight_map"]["c"] = "b.safetensors\0x"
put(S, "crash-index-shard-name-nul", b"\x01" + json.dumps(index).encode() + sep + a + sep + b)
