#!/usr/bin/python3
"""Straightforward numpy baseline for evald-bench-provenance.

Computes, per tensor of one .safetensors file, the statistics evald's fingerprint_tensor keeps:
  * a hash of the tensor's bytes (hashlib: sha256 or blake2b),
  * mean and standard deviation of the values (float64 sums),
  * count sketches of the rows (Y = W @ S, S a C x 64 projection with one +-1 per row) and/or of
    the columns (Z = S_r^T @ W), with their 64 x 64 Gram matrices (Y^T Y, Z Z^T),
using the same bucket and sign hash as evald, so its Gram matrices can be checked against
evald's. The file is read through np.memmap, a block of rows at a time, so memory stays bounded.

Debian's numpy links the reference BLAS, so a dense W @ S costs 128 flops per value and is
far slower than the sparse form (a signed gather and np.add.reduceat); --projection picks.

Usage: provenance_numpy.py MODEL.safetensors [--plan PLAN.json] [--out STATS.json]
                           [--grams GRAMS.f32] [--projection sparse|dense]
                           [--hash sha256|blake2b] [--chunk-mb N] [--quiet]
PLAN.json maps tensor names to "rows", "cols", "both" or "none" (which sketches to compute);
without it: 1-D tensors none, o_proj/down_proj cols, other 2-D tensors rows.
STATS.json: {"seconds", "bytes", "tensors": [{name, dtype, shape, mean, std, hash, row, col}]};
GRAMS.f32: for each tensor in that order, its row Gram then its column Gram where computed,
each the upper triangle (with diagonal) of the 64 x 64 matrix, row-major, float32.
"""
import argparse
import hashlib
import json
import struct
import sys
import time

import numpy as np

K = 64
SEED = 0x5EED0FE7A1D001  # evald's kSeed in fingerprint.cpp
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(x):
    # splitmix64 finaliser; numpy uint64 arithmetic wraps like C's.
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def projection(n):
    with np.errstate(over="ignore"):
        h = mix64(np.arange(n, dtype=np.uint64) + np.uint64(SEED))
    bucket = (h % np.uint64(K)).astype(np.intp)
    sign = np.where((h >> np.uint64(40)) & np.uint64(1), 1.0, -1.0).astype(np.float32)
    return bucket, sign


class Bucketing:
    """Sums signed coordinates per bucket: the count sketch as a gather plus np.add.reduceat."""

    def __init__(self, bucket, sign):
        self.bucket, self.sign = bucket, sign
        self.order = np.argsort(bucket, kind="stable")
        counts = np.bincount(bucket, minlength=K)
        self.present = np.nonzero(counts)[0]          # reduceat cannot express empty buckets
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.starts = starts[self.present]


def to_f32(block, dtype):
    if dtype == "BF16":
        return (block.astype(np.uint32) << np.uint32(16)).view(np.float32)
    if dtype == "F16":
        return block.astype(np.float32)
    return np.asarray(block, dtype=np.float32)


NP_DTYPES = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}


def upper(g):
    return g[np.triu_indices(K)].astype(np.float32)


def default_units(name, shape):
    if len(shape) < 2:
        return "none"
    return "cols" if ("o_proj" in name or "down_proj" in name) else "rows"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--plan")
    ap.add_argument("--out")
    ap.add_argument("--grams")
    ap.add_argument("--projection", choices=["sparse", "dense"], default="sparse")
    ap.add_argument("--hash", choices=["sha256", "blake2b"], default="sha256")
    ap.add_argument("--chunk-mb", type=int, default=64)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    t0 = time.perf_counter()
    plan = json.load(open(a.plan)) if a.plan else {}
    with open(a.model, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    data_start = 8 + n
    raw = np.memmap(a.model, dtype=np.uint8, mode="r")
    projections = {}

    def proj(length):
        if length not in projections:
            projections[length] = Bucketing(*projection(length))
        return projections[length]

    out, grams, total = [], [], 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dtype, shape = info["dtype"], info["shape"]
        b, e = info["data_offsets"]
        total += e - b
        tb = raw[data_start + b:data_start + e]
        digest = getattr(hashlib, a.hash)(tb).hexdigest()
        if dtype not in NP_DTYPES:
            out.append({"name": name, "dtype": dtype, "shape": shape, "hash": digest, "skipped": True})
            continue
        rows = shape[0] if len(shape) >= 2 else 1
        cols = int(np.prod(shape[1:])) if len(shape) >= 2 else int(np.prod(shape))
        w = tb.view(NP_DTYPES[dtype]).reshape(rows, cols)
        units = plan.get(name, default_units(name, shape))
        two_d = len(shape) >= 2 and rows > 1 and cols > 1
        want_rows = two_d and units in ("rows", "both")
        want_cols = two_d and units in ("cols", "both")
        cp = proj(cols) if want_rows else None
        rp = proj(rows) if want_cols else None
        if a.projection == "dense":
            s_cols = np.zeros((cols, K), np.float32) if want_rows else None
            if want_rows:
                s_cols[np.arange(cols), cp.bucket] = cp.sign
        g_rows = np.zeros((K, K), np.float64)
        z = np.zeros((K, cols), np.float32) if want_cols else None
        s = ss = 0.0
        step = max(1, (a.chunk_mb << 20) // (4 * cols))
        for i0 in range(0, rows, step):
            x = to_f32(w[i0:i0 + step], dtype)
            s += float(x.sum(dtype=np.float64))
            ss += float(np.square(x, dtype=np.float64).sum())
            if want_rows:
                if a.projection == "dense":
                    y = x @ s_cols
                else:
                    y = np.zeros((x.shape[0], K), np.float32)
                    y[:, cp.present] = np.add.reduceat((x * cp.sign)[:, cp.order], cp.starts, axis=1)
                g_rows += (y.T @ y).astype(np.float64)
            if want_cols:
                rb = rp.bucket[i0:i0 + x.shape[0]]
                xs = x * rp.sign[i0:i0 + x.shape[0], None]
                if a.projection == "dense":
                    sr = np.zeros((x.shape[0], K), np.float32)
                    sr[np.arange(x.shape[0]), rb] = 1.0
                    z += sr.T @ xs
                else:
                    part = Bucketing(rb, rp.sign[i0:i0 + x.shape[0]])
                    z[part.present] += np.add.reduceat(xs[part.order], part.starts, axis=0)
        cnt = rows * cols
        mean = s / cnt if cnt else 0.0
        std = max(0.0, ss / cnt - mean * mean) ** 0.5 if cnt else 0.0
        out.append({"name": name, "dtype": dtype, "shape": shape, "mean": mean, "std": std, "hash": digest,
                    "row": bool(want_rows), "col": bool(want_cols)})
        if want_rows:
            grams.append(upper(g_rows))
        if want_cols:
            grams.append(upper(z.astype(np.float64) @ z.T.astype(np.float64)))
    seconds = time.perf_counter() - t0
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"seconds": seconds, "bytes": total, "projection": a.projection, "hash": a.hash,
                       "numpy": np.__version__, "tensors": out}, f)
    if a.grams:
        with open(a.grams, "wb") as f:
            for g in grams:
                g.tofile(f)
    if not a.quiet:
        print(f"{len(out)} tensors, {total} bytes in {seconds:.3f} s ({total / seconds / 1e9:.3f} GB/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
