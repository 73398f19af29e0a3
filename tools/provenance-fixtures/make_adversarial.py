#!/usr/bin/python3
"""Generate adversarial provenance fixtures for evald's provenance gate.

Builds renamed / rotated / sign-permuted / partially-copied / MoE-upcycled /
GGUF-quantised derivatives of the shipped reference model open_P, plus a set
of genuinely independent models trained from scratch, and writes them (with
labels.json and README.md) into an output directory.

Needs only python3 + torch + numpy (Debian: apt-get install python3-torch).
Deterministic: every random choice uses a fixed seed (single-threaded CPU).
"""
import argparse
import glob
import gzip
import hashlib
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..', '..'))
FIXTURES = os.path.join(REPO, 'tests', 'provenance', 'fixtures')
DEFAULT_OUT = os.path.join(REPO, 'tests', 'provenance', 'adversarial')

# ---------------------------------------------------------------- architecture
ARCH = dict(V=97, d=128, L=3, nh=4, nkv=4, hd=32, m=192, eps=1e-6,
            rope_theta=10000.0, max_pos=256)
# the G family: grouped-query attention (8 query heads share 2 KV heads, 4 per group) and widths
# that ggml's K-quants accept (every row length a multiple of 256), same char vocab
ARCH_G = dict(V=97, d=256, L=2, nh=8, nkv=2, hd=32, m=512, eps=1e-6,
              rope_theta=10000.0, max_pos=256)
N_EXPERTS, TOP_K = 4, 2

# training hyper-parameters shared by every run
BATCH, SEQ = 16, 128
EVAL_SEQ = 128
WD, BETAS, CLIP = 0.1, (0.9, 0.95), 1.0


# ---------------------------------------------------------------------- vocab
# id 0 = <unk>, id 1 = "\n", ids 2..96 = printable ASCII 0x20..0x7e in order.
def vocab_tokens():
    return ['<unk>', '\n'] + [chr(c) for c in range(0x20, 0x7f)]


def encode(text):
    cp = np.frombuffer(text.encode('utf-32-le'), dtype=np.uint32)
    ids = np.zeros(cp.shape, dtype=np.int64)
    ids[cp == 10] = 1
    pr = (cp >= 0x20) & (cp < 0x7f)
    ids[pr] = cp[pr].astype(np.int64) - 0x20 + 2
    return torch.from_numpy(ids)


# -------------------------------------------------------------------- corpora
CORPUS_CHARS = 3_000_000


def _read_text(path):
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError:
        return None
    if path.endswith('.gz'):
        try:
            raw = gzip.decompress(raw)
        except Exception:
            return None
    if b'\x00' in raw:
        return None
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        return None


def _paragraphs(text):
    text = text.replace('\r\n', '\n').replace('\r', '\n').expandtabs(8)
    for p in re.split(r'\n[ \t]*\n', text):
        p = p.strip('\n')
        if p.strip():
            yield p


def corpus_a_files():
    files = sorted(glob.glob('/usr/share/common-licenses/*'))
    for pat in ('README*', 'NEWS*', 'copyright'):
        files += sorted(glob.glob('/usr/share/doc/*/' + pat))
    return [f for f in files if os.path.isfile(f) and not f.endswith(('.html', '.htm', '.pdf'))]


def corpus_b_files():
    out = []
    for f in sorted(glob.glob('/usr/lib/python3.11/**/*.py', recursive=True)):
        parts = f.split('/')
        if any(p in ('test', 'tests', 'idle_test') for p in parts):
            continue
        if os.path.isfile(f):
            out.append(f)
    return out


def _assemble(files, exclude=frozenset(), dedup=True):
    seen, out, total, used, dropped = set(), [], 0, 0, 0
    for f in files:
        t = _read_text(f)
        if t is None:
            continue
        took = False
        for p in _paragraphs(t):
            if p in exclude:
                dropped += 1
                continue
            if dedup and p in seen:
                continue
            seen.add(p)
            out.append(p)
            total += len(p) + 2
            took = True
        used += took
        if total >= CORPUS_CHARS:
            break
    text = '\n\n'.join(out)[:CORPUS_CHARS]
    return text, used, seen, dropped


def build_corpora():
    a_text, a_files, a_paras, _ = _assemble(corpus_a_files())
    b_text, b_files, _, b_drop = _assemble(corpus_b_files(), exclude=a_paras, dedup=False)
    info, out = {}, {}
    for name, text, nf, what in (
            ('A', a_text, a_files, "English prose: /usr/share/common-licenses/* then "
             "/usr/share/doc/*/README*, NEWS*, copyright (gz decompressed, html skipped), "
             "paragraph-deduplicated"),
            ('B', b_text, b_files, "Python 3.11 standard-library source /usr/lib/python3.11/**/*.py "
             "(test/tests/idle_test dirs excluded); paragraphs also found in A removed")):
        ids = encode(text)
        cut = int(len(ids) * 0.95)
        out[name] = {'train': ids[:cut], 'eval': ids[cut:]}
        info[name] = {'what': what, 'files': nf, 'chars': len(text),
                      'unk_chars': int((ids == 0).sum()),
                      'sha256': hashlib.sha256(text.encode('utf-8')).hexdigest()}
    info['B']['paragraphs_dropped_as_in_A'] = b_drop
    info['eval_split'] = 'last 5% of each corpus (by characters)'
    info['vocab'] = ('char-level, 97 symbols: id 0 <unk>, id 1 newline, ids 2..96 printable '
                     'ASCII 0x20..0x7e in order (tabs expanded to 8 columns, other chars -> <unk>)')
    return out['A'], out['B'], info


def get_batch(data, bs, T, gen):
    ix = torch.randint(0, len(data) - T - 1, (bs,), generator=gen)
    x = torch.stack([data[i:i + T] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + T + 1] for i in ix.tolist()])
    return x, y


# --------------------------------------------------------------- safetensors
_DT = {'F32': (torch.float32, 4), 'F16': (torch.float16, 2), 'BF16': (torch.bfloat16, 2)}


def load_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        blob = f.read()
    out = {}
    for k, v in hdr.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        dt = v['dtype']
        if dt == 'BF16':
            a = np.frombuffer(blob[s:e], dtype=np.uint16).astype(np.uint32) << 16
            t = torch.from_numpy(a.view(np.float32).copy())
        else:
            npdt = {'F32': np.float32, 'F16': np.float16}[dt]
            t = torch.from_numpy(np.frombuffer(blob[s:e], dtype=npdt).astype(np.float32))
        out[k] = t.reshape(v['shape'])
    return out


def save_safetensors(path, tensors, dtype='F16'):
    tdt = _DT[dtype][0]
    hdr, chunks, off = {'__metadata__': {'format': 'pt'}}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().to(torch.float32).to(tdt).contiguous()
        if dtype == 'BF16':
            b = t.view(torch.int16).numpy().tobytes()
        else:
            b = t.numpy().tobytes()
        hdr[k] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def storage_round(W, dtype):
    """What a reader gets back after storing W as dtype."""
    return {k: v.detach().to(_DT[dtype][0]).to(torch.float32) for k, v in W.items()}


# --------------------------------------------------------------------- model
def hf_names(a=ARCH):
    names = ['model.embed_tokens.weight', 'lm_head.weight', 'model.norm.weight']
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        names += [p + 'input_layernorm.weight', p + 'post_attention_layernorm.weight',
                  p + 'self_attn.q_proj.weight', p + 'self_attn.k_proj.weight',
                  p + 'self_attn.v_proj.weight', p + 'self_attn.o_proj.weight',
                  p + 'mlp.gate_proj.weight', p + 'mlp.up_proj.weight', p + 'mlp.down_proj.weight']
    return names


def init_weights(seed, a=ARCH, std=0.02):
    """HF Llama init: normal(0, 0.02) for every matrix, ones for RMSNorm gains."""
    g = torch.Generator().manual_seed(seed)
    d, m, V = a['d'], a['m'], a['V']
    qd, kvd = a['nh'] * a['hd'], a['nkv'] * a['hd']
    shapes = {'model.embed_tokens.weight': (V, d), 'lm_head.weight': (V, d)}
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        shapes[p + 'self_attn.q_proj.weight'] = (qd, d)
        shapes[p + 'self_attn.k_proj.weight'] = (kvd, d)
        shapes[p + 'self_attn.v_proj.weight'] = (kvd, d)
        shapes[p + 'self_attn.o_proj.weight'] = (d, qd)
        shapes[p + 'mlp.gate_proj.weight'] = (m, d)
        shapes[p + 'mlp.up_proj.weight'] = (m, d)
        shapes[p + 'mlp.down_proj.weight'] = (d, m)
    W = {}
    for k in hf_names(a):
        if k in shapes:
            W[k] = torch.randn(shapes[k], generator=g) * std
        else:
            W[k] = torch.ones(d)
    return W


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


_ROPE = {}


def rope(T, a=ARCH):
    key = (T, a['hd'], a['rope_theta'])
    if key not in _ROPE:
        hd = a['hd']
        inv = 1.0 / (a['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        fr = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat([fr, fr], -1)
        _ROPE[key] = (emb.cos(), emb.sin(), torch.triu(torch.full((T, T), float('-inf')), 1))
    return _ROPE[key]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def forward(W, ids, a=ARCH, moe=False, aux=None):
    B, T = ids.shape
    nh, nkv, hd, eps = a['nh'], a['nkv'], a['hd'], a['eps']
    cos, sin, mask = rope(T, a)
    x = W['model.embed_tokens.weight'][ids]
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        h = rmsnorm(x, W[p + 'input_layernorm.weight'], eps)
        q = (h @ W[p + 'self_attn.q_proj.weight'].T).view(B, T, nh, hd).transpose(1, 2)
        k = (h @ W[p + 'self_attn.k_proj.weight'].T).view(B, T, nkv, hd).transpose(1, 2)
        v = (h @ W[p + 'self_attn.v_proj.weight'].T).view(B, T, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if nkv != nh:
            k = k.repeat_interleave(nh // nkv, 1)
            v = v.repeat_interleave(nh // nkv, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, nh * hd)
        x = x + o @ W[p + 'self_attn.o_proj.weight'].T
        h = rmsnorm(x, W[p + 'post_attention_layernorm.weight'], eps)
        if moe:
            e = p + 'block_sparse_moe.'
            logits = h @ W[e + 'gate.weight'].T                       # [B,T,E]
            probs = logits.softmax(-1)
            topv, topi = probs.topk(TOP_K, -1)
            topv = topv / topv.sum(-1, keepdim=True)                  # softmax over the selected
            comb = torch.zeros_like(probs).scatter(-1, topi, topv)    # [B,T,E]
            y = 0
            for j in range(N_EXPERTS):
                ej = e + f'experts.{j}.'
                yj = (F.silu(h @ W[ej + 'w1.weight'].T) * (h @ W[ej + 'w3.weight'].T)) @ W[ej + 'w2.weight'].T
                y = y + comb[..., j:j + 1] * yj
            x = x + y
            if aux is not None:   # Switch/Mixtral load-balancing loss
                frac = F.one_hot(topi, N_EXPERTS).float().sum(-2).mean((0, 1)) / TOP_K
                aux.append(N_EXPERTS * (frac * probs.mean((0, 1))).sum())
        else:
            g = h @ W[p + 'mlp.gate_proj.weight'].T
            u = h @ W[p + 'mlp.up_proj.weight'].T
            x = x + (F.silu(g) * u) @ W[p + 'mlp.down_proj.weight'].T
    x = rmsnorm(x, W['model.norm.weight'], eps)
    return x @ W['lm_head.weight'].T


@torch.no_grad()
def eval_loss(W, data, moe=False, T=EVAL_SEQ, bs=32, a=ARCH, max_windows=None):
    """Mean next-char cross-entropy over non-overlapping windows of the eval split."""
    n = (len(data) - 1) // T
    if max_windows is not None:
        n = min(n, max_windows)
    x_all = data[:n * T].view(n, T)
    y_all = data[1:n * T + 1].view(n, T)
    tot, cnt = 0.0, 0
    for s in range(0, n, bs):
        logits = forward(W, x_all[s:s + bs], a=a, moe=moe)
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y_all[s:s + bs].reshape(-1),
                               reduction='sum').item()
        cnt += y_all[s:s + bs].numel()
    return tot / cnt


def train(W0, data, steps, lr, seed, frozen=(), moe=False, aux_coef=0.01, warmup=None, log=None, a=ARCH):
    """AdamW (wd 0.1 on matrices), linear warmup + cosine to 10% of lr, grad clip 1."""
    W = {k: v.detach().clone().float() for k, v in W0.items()}
    train_keys = [k for k in sorted(W) if k not in frozen]
    for k in train_keys:
        W[k].requires_grad_(True)
    groups = [{'params': [W[k] for k in train_keys if W[k].dim() >= 2], 'weight_decay': WD},
              {'params': [W[k] for k in train_keys if W[k].dim() < 2], 'weight_decay': 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=BETAS)
    if warmup is None:
        warmup = max(1, min(50, steps // 10))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    losses, t0 = [], time.time()
    for step in range(steps):
        if step < warmup:
            f = (step + 1) / warmup
        else:
            pr = (step - warmup) / max(1, steps - warmup)
            f = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * pr))
        for gr in opt.param_groups:
            gr['lr'] = lr * f
        x, y = get_batch(data, BATCH, SEQ, gen)
        auxl = [] if moe else None
        logits = forward(W, x, a=a, moe=moe, aux=auxl)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        tot = loss + (aux_coef * sum(auxl) if moe else 0)
        opt.zero_grad(set_to_none=True)
        tot.backward()
        torch.nn.utils.clip_grad_norm_([W[k] for k in train_keys], CLIP)
        opt.step()
        losses.append(loss.item())
        if log and (step % 100 == 0 or step == steps - 1):
            log(f'    step {step:5d} loss {loss.item():.4f} ({time.time() - t0:.1f}s)')
    W = {k: v.detach() for k, v in W.items()}
    return W, float(np.mean(losses[-50:])), losses


# ------------------------------------------------------------ correlations
def pearson(a, b):
    a = a.double().flatten()
    b = b.double().flatten()
    a = a - a.mean()
    b = b - b.mean()
    den = a.norm() * b.norm()
    return float((a @ b) / den) if den > 0 else 0.0


def corr_vs(W, R):
    """Mean Pearson correlation over 2-D tensors with the same (HF) name and shape as in R."""
    out = {'all': [], 'llm': [], 'embeddings': []}
    for k in sorted(W):
        if k in R and W[k].dim() == 2 and tuple(W[k].shape) == tuple(R[k].shape):
            c = pearson(W[k], R[k])
            out['all'].append(c)
            out['embeddings' if k in ('model.embed_tokens.weight', 'lm_head.weight') else 'llm'].append(c)
    r = lambda v: round(float(np.mean(v)), 4) if v else None
    return {'mean_2d': r(out['all']), 'n_2d': len(out['all']), 'llm': r(out['llm']),
            'embeddings': r(out['embeddings'])}


# ------------------------------------------------------ function-preserving maps
def fold_norms(W, a=ARCH):
    """Fold every RMSNorm gain into the matrices reading its output; gains -> 1."""
    W = {k: v.double().clone() for k, v in W.items()}
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        g = W[p + 'input_layernorm.weight']
        for n in ('q', 'k', 'v'):
            W[p + f'self_attn.{n}_proj.weight'] *= g[None, :]
        W[p + 'input_layernorm.weight'] = torch.ones_like(g)
        g = W[p + 'post_attention_layernorm.weight']
        for n in ('gate', 'up'):
            W[p + f'mlp.{n}_proj.weight'] *= g[None, :]
        W[p + 'post_attention_layernorm.weight'] = torch.ones_like(g)
    W['lm_head.weight'] *= W['model.norm.weight'][None, :]
    W['model.norm.weight'] = torch.ones_like(W['model.norm.weight'])
    return W


IN_PROJ = ('self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'mlp.gate_proj', 'mlp.up_proj')
OUT_PROJ = ('self_attn.o_proj', 'mlp.down_proj')


def residual_map(W, Q, a=ARCH):
    """x -> x @ Q on the residual stream (Q orthogonal; gains must be folded to 1)."""
    W = {k: v.double().clone() for k, v in W.items()}
    Q = Q.double()
    W['model.embed_tokens.weight'] = W['model.embed_tokens.weight'] @ Q
    W['lm_head.weight'] = W['lm_head.weight'] @ Q
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        for n in IN_PROJ:
            W[p + n + '.weight'] = W[p + n + '.weight'] @ Q
        for n in OUT_PROJ:
            W[p + n + '.weight'] = Q.T @ W[p + n + '.weight']
    return W


def random_orthogonal(n, gen):
    G = torch.randn(n, n, generator=gen, dtype=torch.float64)
    Q, R = torch.linalg.qr(G)
    return Q * torch.sign(torch.diagonal(R))[None, :]


def head_mlp_perm(W, hperm, mperms, vscale, a=ARCH):
    """Permute attention heads (q,k,v row blocks; o column blocks), MLP hidden units,
    and scale each head's v rows by vscale[i][h] with the inverse on o_proj columns."""
    W = {k: v.double().clone() for k, v in W.items()}
    nh, hd, d = a['nh'], a['hd'], a['d']
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        hp = hperm[i]
        for n in ('q', 'k', 'v'):
            w = W[p + f'self_attn.{n}_proj.weight'].view(nh, hd, d)[hp]
            if n == 'v':
                w = w * vscale[i][:, None, None]
            W[p + f'self_attn.{n}_proj.weight'] = w.reshape(nh * hd, d)
        o = W[p + 'self_attn.o_proj.weight'].view(d, nh, hd)[:, hp] / vscale[i][None, :, None]
        W[p + 'self_attn.o_proj.weight'] = o.reshape(d, nh * hd)
        mp = mperms[i]
        W[p + 'mlp.gate_proj.weight'] = W[p + 'mlp.gate_proj.weight'][mp]
        W[p + 'mlp.up_proj.weight'] = W[p + 'mlp.up_proj.weight'][mp]
        W[p + 'mlp.down_proj.weight'] = W[p + 'mlp.down_proj.weight'][:, mp]
    return W


def undo_head_mlp_perm(W, hperm, mperms, vscale, a=ARCH):
    inv = lambda pm: torch.argsort(pm)
    # undo scaling first (scales are indexed by the new head position)
    W = {k: v.double().clone() for k, v in W.items()}
    nh, hd, d = a['nh'], a['hd'], a['d']
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        v = W[p + 'self_attn.v_proj.weight'].view(nh, hd, d) / vscale[i][:, None, None]
        W[p + 'self_attn.v_proj.weight'] = v.reshape(nh * hd, d)
        o = W[p + 'self_attn.o_proj.weight'].view(d, nh, hd) * vscale[i][None, :, None]
        W[p + 'self_attn.o_proj.weight'] = o.reshape(d, nh * hd)
    ones = [torch.ones(nh, dtype=torch.float64) for _ in range(a['L'])]
    return head_mlp_perm(W, [inv(h) for h in hperm], [inv(m) for m in mperms], ones, a)


def gqa_head_order(gperm, qperms, a):
    """Old query-head index of every new query head: new KV head j is old KV head gperm[j], and
    new query head j*gs + r (gs = nh/nkv query heads per KV group) is old query head
    gperm[j]*gs + qperms[j][r] -- so every query head stays with the K/V head it attends with."""
    gs = a['nh'] // a['nkv']
    return torch.cat([gperm[j] * gs + qperms[j] for j in range(a['nkv'])])


def gqa_head_mlp_perm(W, gperms, qperms, mperms, a):
    """GQA head permutation per layer: KV groups permuted (k/v row blocks together with their
    query heads), query heads permuted within their group (q row blocks, o_proj column blocks),
    MLP hidden units permuted (gate/up rows, down columns). Function preserving."""
    W = {k: v.double().clone() for k, v in W.items()}
    nh, nkv, hd, d = a['nh'], a['nkv'], a['hd'], a['d']
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        qh = gqa_head_order(gperms[i], qperms[i], a)
        W[p + 'self_attn.q_proj.weight'] = W[p + 'self_attn.q_proj.weight'].view(nh, hd, d)[qh].reshape(nh * hd, d)
        for n in ('k', 'v'):
            w = W[p + f'self_attn.{n}_proj.weight'].view(nkv, hd, d)[gperms[i]]
            W[p + f'self_attn.{n}_proj.weight'] = w.reshape(nkv * hd, d)
        W[p + 'self_attn.o_proj.weight'] = W[p + 'self_attn.o_proj.weight'].view(d, nh, hd)[:, qh].reshape(d, nh * hd)
        mp = mperms[i]
        W[p + 'mlp.gate_proj.weight'] = W[p + 'mlp.gate_proj.weight'][mp]
        W[p + 'mlp.up_proj.weight'] = W[p + 'mlp.up_proj.weight'][mp]
        W[p + 'mlp.down_proj.weight'] = W[p + 'mlp.down_proj.weight'][:, mp]
    return W


def undo_gqa_head_mlp_perm(W, gperms, qperms, mperms, a):
    """Inverse of gqa_head_mlp_perm (for the oracle-aligned correlation)."""
    W = {k: v.double().clone() for k, v in W.items()}
    nh, nkv, hd, d = a['nh'], a['nkv'], a['hd'], a['d']
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        qi = torch.argsort(gqa_head_order(gperms[i], qperms[i], a))
        gi = torch.argsort(gperms[i])
        mi = torch.argsort(mperms[i])
        W[p + 'self_attn.q_proj.weight'] = W[p + 'self_attn.q_proj.weight'].view(nh, hd, d)[qi].reshape(nh * hd, d)
        for n in ('k', 'v'):
            W[p + f'self_attn.{n}_proj.weight'] = W[p + f'self_attn.{n}_proj.weight'].view(nkv, hd, d)[gi].reshape(nkv * hd, d)
        W[p + 'self_attn.o_proj.weight'] = W[p + 'self_attn.o_proj.weight'].view(d, nh, hd)[:, qi].reshape(d, nh * hd)
        W[p + 'mlp.gate_proj.weight'] = W[p + 'mlp.gate_proj.weight'][mi]
        W[p + 'mlp.up_proj.weight'] = W[p + 'mlp.up_proj.weight'][mi]
        W[p + 'mlp.down_proj.weight'] = W[p + 'mlp.down_proj.weight'][:, mi]
    return W


def random_gqa_perms(gen, a):
    """Per layer: a KV-group permutation and a within-group query permutation per group, none of
    them the identity (redrawn until so), and an MLP unit permutation."""
    gs = a['nh'] // a['nkv']

    def non_identity(n):
        while True:
            pm = torch.randperm(n, generator=gen)
            if not torch.equal(pm, torch.arange(n)):
                return pm
    gperms = [non_identity(a['nkv']) for _ in range(a['L'])]
    qperms = [[non_identity(gs) for _ in range(a['nkv'])] for _ in range(a['L'])]
    mperms = [torch.randperm(a['m'], generator=gen) for _ in range(a['L'])]
    return gperms, qperms, mperms


def f32(W):
    return {k: v.detach().to(torch.float32) for k, v in W.items()}


# ---------------------------------------------------------------- renaming
def renamed_names(a=ARCH):
    m = {'model.embed_tokens.weight': 'tok_emb.weight', 'lm_head.weight': 'unembed.weight',
         'model.norm.weight': 'final_ln.weight'}
    for i in range(a['L']):
        p, q = f'model.layers.{i}.', f'stack.{i}.'
        for n in ('q', 'k', 'v', 'o'):
            m[p + f'self_attn.{n}_proj.weight'] = q + f'attn.w{n}.weight'
        for n, t in (('gate', 'w_gate'), ('up', 'w_up'), ('down', 'w_down')):
            m[p + f'mlp.{n}_proj.weight'] = q + f'ff.{t}.weight'
        m[p + 'input_layernorm.weight'] = q + 'ln_a.weight'
        m[p + 'post_attention_layernorm.weight'] = q + 'ln_b.weight'
    return m


# -------------------------------------------------------------------- MoE
def moe_names_from_dense(W, gen, a=ARCH, noise_rel=1e-3, router_std=0.02):
    """Dense -> MoE upcycling: N_EXPERTS noisy copies of every MLP + fresh router."""
    out = {}
    for k, v in W.items():
        if '.mlp.' not in k:
            out[k] = v.clone().float()
    for i in range(a['L']):
        p = f'model.layers.{i}.'
        e = p + 'block_sparse_moe.'
        out[e + 'gate.weight'] = torch.randn(N_EXPERTS, a['d'], generator=gen) * router_std
        for j in range(N_EXPERTS):
            for dense, w in (('gate_proj', 'w1'), ('up_proj', 'w3'), ('down_proj', 'w2')):
                src = W[p + 'mlp.' + dense + '.weight'].float()
                noise = torch.randn(src.shape, generator=gen) * (noise_rel * float(src.std()))
                out[e + f'experts.{j}.{w}.weight'] = src + noise
    return out


# ------------------------------------------------------------------- GGUF
GGUF_T = dict(UINT8=0, INT8=1, UINT16=2, INT16=3, UINT32=4, INT32=5, FLOAT32=6, BOOL=7,
              STRING=8, ARRAY=9, UINT64=10, INT64=11, FLOAT64=12)
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
GGUF_ALIGN = 32


def llama_cpp_permute(w, n_head, n_head_kv=None):
    """convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def llama_cpp_unpermute(w, n_head):
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def quantize_q8_0(x):
    """ggml quantize_row_q8_0_ref: per 32 values, d = amax/127 (stored f16), q = roundf(x/d)."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127.0)).astype(np.float32)
    with np.errstate(divide='ignore'):
        idv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    v = (x * idv[:, None]).astype(np.float32)
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)   # roundf
    blocks = np.zeros(x.shape[0], dtype=[('d', '<f2'), ('qs', 'i1', 32)])
    blocks['d'] = d.astype(np.float16)
    blocks['qs'] = q
    return blocks.tobytes()


def dequantize_q8_0(b, n):
    blocks = np.frombuffer(b, dtype=[('d', '<f2'), ('qs', 'i1', 32)], count=n // 32)
    return (blocks['d'].astype(np.float32)[:, None] * blocks['qs'].astype(np.float32)).reshape(-1)


# ---- ggml K-quants (QK_K = 256), written from ggml-quants.c's reference quantisers
# (quantize_row_q4_K_ref with make_qkx2_quants, quantize_row_q6_K_ref with make_qx_quants): the
# path llama-quantize takes when no importance matrix is given. Float32 arithmetic throughout,
# every per-block accumulation in ggml's element order (vectorised across blocks only), ggml's
# nearest_int (the 1.5*2^23 trick: round half to even), FP32->FP16 round-to-nearest-even.
QK_K = 256
GGML_Q4_K, GGML_Q6_K = 12, 14
Q4_K_BLOCK = np.dtype([('d', '<f2'), ('dmin', '<f2'), ('scales', 'u1', 12), ('qs', 'u1', 128)])   # 144 bytes
Q6_K_BLOCK = np.dtype([('ql', 'u1', 128), ('qh', 'u1', 64), ('scales', 'i1', 16), ('d', '<f2')])  # 210 bytes
_F = np.float32


def nearest_int(v):
    """ggml nearest_int: int bits of (fval + 12582912.f), low 23 bits minus 2^22."""
    t = (np.asarray(v, dtype=_F) + _F(12582912.0)).astype(_F)
    return (t.view(np.int32) & 0x007fffff) - 0x00400000


def _seqsum(terms):
    """Sum over the last axis in index order, in float32 (as a C loop accumulates)."""
    acc = np.zeros(terms.shape[:-1], dtype=_F)
    for i in range(terms.shape[-1]):
        acc = (acc + terms[..., i]).astype(_F)
    return acc


def make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep):
    """ggml make_qkx2_quants with use_mad = false, for rows x[B, n] with weights w[B, n].
    Returns (scale[B], the_min[B], L[B, n])."""
    x = x.astype(_F)
    w = w.astype(_F)
    B, n = x.shape
    mn = x[:, 0].copy()
    mx = x[:, 0].copy()
    sum_w = w[:, 0].copy()
    sum_x = (sum_w * x[:, 0]).astype(_F)
    for i in range(1, n):
        mn = np.where(x[:, i] < mn, x[:, i], mn)
        mx = np.where(x[:, i] > mx, x[:, i], mx)
        sum_w = (sum_w + w[:, i]).astype(_F)
        sum_x = (sum_x + (w[:, i] * x[:, i]).astype(_F)).astype(_F)
    mn = np.where(mn > 0, _F(0), mn).astype(_F)
    flat = mx == mn
    mn0 = mn.copy()
    rng = np.where(flat, _F(1), (mx - mn).astype(_F)).astype(_F)
    iscale = (_F(nmax) / rng).astype(_F)
    scale = (_F(1) / iscale).astype(_F)
    L = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None]).astype(_F)), 0, nmax)

    def err(sc, m, Lq):
        diff = ((sc[:, None] * Lq.astype(_F)).astype(_F) + m[:, None]).astype(_F) - x
        return _seqsum((w * (diff * diff).astype(_F)).astype(_F))
    best = err(scale, mn, L)
    for step in range(nstep + 1):
        # ggml updates min (and so max - min and x - min) as soon as a step does better
        rng = np.where(flat, _F(1), (mx - mn).astype(_F)).astype(_F)
        iscale = ((_F(rmin) + (_F(rdelta) * _F(step)).astype(_F)).astype(_F) + _F(nmax)).astype(_F) / rng
        iscale = iscale.astype(_F)
        La = np.clip(nearest_int(iscale[:, None] * (x - mn[:, None]).astype(_F)), 0, nmax)
        lf = La.astype(_F)
        wl = (w * lf).astype(_F)
        sum_l = _seqsum(wl)
        sum_l2 = _seqsum((wl * lf).astype(_F))
        sum_xl = _seqsum((wl * x).astype(_F))
        D = ((sum_w * sum_l2).astype(_F) - (sum_l * sum_l).astype(_F)).astype(_F)
        ok = D > 0
        Dd = np.where(ok, D, _F(1)).astype(_F)
        this_scale = (((sum_w * sum_xl).astype(_F) - (sum_x * sum_l).astype(_F)).astype(_F) / Dd).astype(_F)
        this_min = (((sum_l2 * sum_x).astype(_F) - (sum_l * sum_xl).astype(_F)).astype(_F) / Dd).astype(_F)
        pos = this_min > 0
        with np.errstate(divide='ignore', invalid='ignore'):
            this_scale = np.where(pos, (sum_xl / sum_l2).astype(_F), this_scale).astype(_F)
        this_min = np.where(pos, _F(0), this_min).astype(_F)
        cur = err(this_scale, this_min, La)
        better = ok & (cur < best) & ~flat
        L = np.where(better[:, None], La, L)
        best = np.where(better, cur, best)
        scale = np.where(better, this_scale, scale)
        mn = np.where(better, this_min, mn)
    L = np.where(flat[:, None], 0, L)
    scale = np.where(flat, _F(0), scale).astype(_F)
    mn = np.where(flat, mn0, mn)
    return scale, (-mn).astype(_F), L


def make_qx_quants_rmse1(x, nmax):
    """ggml make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL) for rows x[B, n].
    Returns (scale[B], L[B, n] offset by nmax)."""
    x = x.astype(_F)
    B, n = x.shape
    ax = np.abs(x)
    imax = np.argmax(ax, axis=1)                      # first index of the largest |x| (strict >)
    amax = ax[np.arange(B), imax]
    mxv = x[np.arange(B), imax]
    zero = amax < _F(1e-15)                            # GROUP_MAX_EPS
    mxv = np.where(zero, _F(1), mxv).astype(_F)
    w = (x * x).astype(_F)

    def sums(iscale):
        l = np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1)
        lf = l.astype(_F)
        sumlx = _seqsum((((w * x).astype(_F)) * lf).astype(_F))
        suml2 = _seqsum((((w * lf).astype(_F)) * lf).astype(_F))
        return l, sumlx, suml2
    iscale = (_F(-nmax) / mxv).astype(_F)
    l, sumlx, suml2 = sums(iscale)
    L = l + nmax
    with np.errstate(divide='ignore', invalid='ignore'):
        scale = np.where(suml2 != 0, (sumlx / suml2).astype(_F), _F(0)).astype(_F)
    best = (scale * sumlx).astype(_F)
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = (-(_F(nmax) + (_F(0.1) * _F(step)).astype(_F)).astype(_F) / mxv).astype(_F)
        l, sumlx, suml2 = sums(iscale)
        better = (suml2 > 0) & ((sumlx * sumlx).astype(_F) > (best * suml2).astype(_F))
        L = np.where(better[:, None], l + nmax, L)
        with np.errstate(divide='ignore', invalid='ignore'):
            ns = (sumlx / suml2).astype(_F)
        scale = np.where(better, ns, scale).astype(_F)
        best = np.where(better, (scale * sumlx).astype(_F), best).astype(_F)
    L = np.where(zero[:, None], 0, L)
    scale = np.where(zero, _F(0), scale).astype(_F)
    return scale, L


def _f16r(v):
    """GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(v))"""
    return np.asarray(v, dtype=_F).astype(np.float16).astype(_F)


def quantize_q4_K(x):
    """quantize_row_q4_K_ref over a whole tensor (row length a multiple of 256) -> bytes."""
    x = np.ascontiguousarray(x, dtype=_F).reshape(-1, 8, 32)          # super-blocks of 8 x 32
    nb = x.shape[0]
    sub = x.reshape(-1, 32)
    sum_x2 = _seqsum((sub * sub).astype(_F))
    av_x = np.sqrt((sum_x2 / _F(32)).astype(_F)).astype(_F)
    w = (av_x[:, None] + np.abs(sub)).astype(_F)
    scales, mins, L = make_qkx2_quants(sub, w, 15, -1.0, 0.1, 20)
    scales, mins, L = scales.reshape(nb, 8), mins.reshape(nb, 8), L.reshape(nb, 8, 32)
    max_scale = np.zeros(nb, dtype=_F)
    max_min = np.zeros(nb, dtype=_F)
    for j in range(8):
        max_scale = np.where(scales[:, j] > max_scale, scales[:, j], max_scale)
        max_min = np.where(mins[:, j] > max_min, mins[:, j], max_min)
    with np.errstate(divide='ignore'):
        inv_scale = np.where(max_scale > 0, (_F(63) / max_scale).astype(_F), _F(0)).astype(_F)
        inv_min = np.where(max_min > 0, (_F(63) / max_min).astype(_F), _F(0)).astype(_F)
    ls = np.minimum(63, nearest_int(inv_scale[:, None] * scales) & 0xFF)   # uint8_t then MIN(63, .)
    lm = np.minimum(63, nearest_int(inv_min[:, None] * mins) & 0xFF)
    sc = np.zeros((nb, 12), dtype=np.int64)
    for j in range(8):
        if j < 4:
            sc[:, j] = ls[:, j]
            sc[:, j + 4] = lm[:, j]
        else:
            sc[:, j + 4] = (ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)
            sc[:, j - 4] |= (ls[:, j] >> 4) << 6
            sc[:, j] |= (lm[:, j] >> 4) << 6
    d16 = (max_scale / _F(63)).astype(_F).astype(np.float16)
    dmin16 = (max_min / _F(63)).astype(_F).astype(np.float16)
    for j in range(8):                                 # get_scale_min_k4(j) gives back ls, lm
        dj = (d16.astype(_F) * ls[:, j].astype(_F)).astype(_F)
        dm = (dmin16.astype(_F) * lm[:, j].astype(_F)).astype(_F)
        nz = dj != 0
        djs = np.where(nz, dj, _F(1)).astype(_F)
        lq = np.clip(nearest_int(((x[:, j, :] + dm[:, None]).astype(_F) / djs[:, None]).astype(_F)), 0, 15)
        L[:, j, :] = np.where(nz[:, None], lq, L[:, j, :])
    Lf = L.reshape(nb, 4, 2, 32)                       # per 64 values: low nibbles first 32, high next 32
    qs = (Lf[:, :, 0, :] | (Lf[:, :, 1, :] << 4)).reshape(nb, 128)
    blocks = np.zeros(nb, dtype=Q4_K_BLOCK)
    blocks['d'] = d16
    blocks['dmin'] = dmin16
    blocks['scales'] = sc.astype(np.uint8)
    blocks['qs'] = qs.astype(np.uint8)
    return blocks.tobytes()


def dequantize_q4_K(b, n):
    bl = np.frombuffer(b, dtype=Q4_K_BLOCK, count=n // QK_K)
    d = bl['d'].astype(_F)[:, None]
    dmin = bl['dmin'].astype(_F)[:, None]
    q = bl['scales'].astype(np.int64)
    sc = np.zeros((len(bl), 8), dtype=np.int64)
    m = np.zeros((len(bl), 8), dtype=np.int64)
    for j in range(8):
        if j < 4:
            sc[:, j], m[:, j] = q[:, j] & 63, q[:, j + 4] & 63
        else:
            sc[:, j] = (q[:, j + 4] & 0xF) | ((q[:, j - 4] >> 6) << 4)
            m[:, j] = (q[:, j + 4] >> 4) | ((q[:, j] >> 6) << 4)
    qs = bl['qs'].reshape(-1, 4, 32).astype(np.int64)
    L = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(-1, 8, 32)
    out = (d * sc.astype(_F))[:, :, None] * L.astype(_F) - (dmin * m.astype(_F))[:, :, None]
    return out.astype(_F).reshape(-1)


def quantize_q6_K(x):
    """quantize_row_q6_K_ref over a whole tensor (row length a multiple of 256) -> bytes."""
    x = np.ascontiguousarray(x, dtype=_F).reshape(-1, 16, 16)          # super-blocks of 16 x 16
    nb = x.shape[0]
    scales, L = make_qx_quants_rmse1(x.reshape(-1, 16), 32)
    scales, L = scales.reshape(nb, 16), L.reshape(nb, 16, 16)
    ia = np.argmax(np.abs(scales), axis=1)             # first largest |scale|
    max_scale = scales[np.arange(nb), ia]
    zero = np.abs(max_scale) < _F(1e-15)
    iscale = (_F(-128) / np.where(zero, _F(1), max_scale)).astype(_F)
    d16 = (_F(1) / iscale).astype(_F).astype(np.float16)
    isc = np.minimum(127, nearest_int(iscale[:, None] * scales))
    for j in range(16):
        dj = (d16.astype(_F) * isc[:, j].astype(_F)).astype(_F)
        nz = dj != 0
        djs = np.where(nz, dj, _F(1)).astype(_F)
        lq = np.clip(nearest_int((x[:, j, :] / djs[:, None]).astype(_F)), -32, 31) + 32
        L[:, j, :] = np.where(nz[:, None], lq, L[:, j, :])
    L = L.reshape(nb, 2, 4, 32)                        # per 128 values: 4 runs of 32
    ql = np.concatenate([(L[:, :, 0] & 0xF) | ((L[:, :, 2] & 0xF) << 4),
                         (L[:, :, 1] & 0xF) | ((L[:, :, 3] & 0xF) << 4)], axis=2).reshape(nb, 128)
    qh = ((L[:, :, 0] >> 4) | ((L[:, :, 1] >> 4) << 2) | ((L[:, :, 2] >> 4) << 4)
          | ((L[:, :, 3] >> 4) << 6)).reshape(nb, 64)
    blocks = np.zeros(nb, dtype=Q6_K_BLOCK)
    blocks['ql'] = ql.astype(np.uint8)
    blocks['qh'] = qh.astype(np.uint8)
    blocks['scales'] = np.where(zero[:, None], 0, isc).astype(np.int8)
    blocks['d'] = np.where(zero, np.float16(0), d16)
    return blocks.tobytes()


def dequantize_q6_K(b, n):
    bl = np.frombuffer(b, dtype=Q6_K_BLOCK, count=n // QK_K)
    d = bl['d'].astype(_F)
    ql = bl['ql'].reshape(-1, 2, 64).astype(np.int64)
    qh = bl['qh'].reshape(-1, 2, 32).astype(np.int64)
    sc = bl['scales'].astype(_F).reshape(-1, 16)
    q = np.stack([(ql[:, :, :32] & 0xF) | (((qh >> 0) & 3) << 4),
                  (ql[:, :, 32:] & 0xF) | (((qh >> 2) & 3) << 4),
                  (ql[:, :, :32] >> 4) | (((qh >> 4) & 3) << 4),
                  (ql[:, :, 32:] >> 4) | (((qh >> 6) & 3) << 4)], axis=2) - 32   # [nb, 2, 4, 32]
    q = q.reshape(-1, 16, 16).astype(_F)               # 16-value groups in order
    return (d[:, None, None] * sc[:, :, None] * q).astype(_F).reshape(-1)


GGML_BLOCK_BYTES = {GGML_Q8_0: (32, 34), GGML_Q4_K: (256, 144), GGML_Q6_K: (256, 210)}


def q4_k_m_type(name, t, n_layer):
    """llama.cpp llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M, no imatrix, dense llama:
    output.weight -> Q6_K; attn_v / ffn_down -> Q6_K where use_more_bits(i_layer, n_layer)
    (i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2), else Q4_K; every other matrix (token_embd
    included) Q4_K; 1-D tensors F32. (With n_layer = 2: layer 0 Q4_K, layer 1 Q6_K.)"""
    if t.ndim == 1:
        return GGML_F32
    if t.shape[-1] % QK_K:
        raise ValueError(f'{name}: row length {t.shape[-1]} is not a multiple of {QK_K}')
    if name == 'output.weight':
        return GGML_Q6_K
    if name.endswith('attn_v.weight') or name.endswith('ffn_down.weight'):
        i = int(name.split('.')[1])
        more = i < n_layer // 8 or i >= 7 * n_layer // 8 or (i - n_layer // 8) % 3 == 2
        return GGML_Q6_K if more else GGML_Q4_K
    return GGML_Q4_K


def _gguf_str(s):
    b = s.encode('utf-8')
    return struct.pack('<Q', len(b)) + b


def _gguf_kv(key, vtype, value):
    out = _gguf_str(key) + struct.pack('<I', GGUF_T[vtype])
    if vtype == 'STRING':
        return out + _gguf_str(value)
    if vtype == 'ARRAY':
        et, items = value
        out += struct.pack('<IQ', GGUF_T[et], len(items))
        for it in items:
            out += _gguf_str(it) if et == 'STRING' else struct.pack(
                {'INT32': '<i', 'UINT32': '<I', 'FLOAT32': '<f'}[et], it)
        return out
    fmt = {'UINT32': '<I', 'INT32': '<i', 'FLOAT32': '<f', 'UINT64': '<Q', 'BOOL': '<?'}[vtype]
    return out + struct.pack(fmt, value)


def hf_to_gguf_tensors(W, a=ARCH):
    """HF Llama names/layout -> llama.cpp names/layout (q/k rows permuted), in convert order."""
    out = [('token_embd.weight', W['model.embed_tokens.weight'])]
    for i in range(a['L']):
        p, b = f'model.layers.{i}.', f'blk.{i}.'
        out += [
            (b + 'attn_norm.weight', W[p + 'input_layernorm.weight']),
            (b + 'ffn_down.weight', W[p + 'mlp.down_proj.weight']),
            (b + 'ffn_gate.weight', W[p + 'mlp.gate_proj.weight']),
            (b + 'ffn_up.weight', W[p + 'mlp.up_proj.weight']),
            (b + 'ffn_norm.weight', W[p + 'post_attention_layernorm.weight']),
            (b + 'attn_k.weight', llama_cpp_permute(W[p + 'self_attn.k_proj.weight'].numpy(), a['nh'], a['nkv'])),
            (b + 'attn_output.weight', W[p + 'self_attn.o_proj.weight']),
            (b + 'attn_q.weight', llama_cpp_permute(W[p + 'self_attn.q_proj.weight'].numpy(), a['nh'], a['nh'])),
            (b + 'attn_v.weight', W[p + 'self_attn.v_proj.weight']),
        ]
    out += [('output_norm.weight', W['model.norm.weight']), ('output.weight', W['lm_head.weight'])]
    return [(n, np.ascontiguousarray(np.asarray(t, dtype=np.float32))) for n, t in out]


LLAMA_FTYPE = {'Q8_0': 7, 'Q4_K_M': 15, 'F16': 1}


def write_gguf(path, W, name, a=ARCH, ftype='Q8_0', runnable_tokenizer=False):
    """ftype Q8_0: every matrix Q8_0; Q4_K_M: llama.cpp's Q4_K_M mix (q4_k_m_type); F16: every
    matrix F16. 1-D tensors F32. runnable_tokenizer: tokenizer.ggml.model 'rwkv' (llama.cpp's
    greedy longest-match trie over the raw token strings, which for a char vocab is exactly char
    tokenisation) instead of 'none', which llama.cpp loads but cannot evaluate (no tokenizer);
    SentencePiece ('llama') would need byte-fallback tokens for the '\u2581' it turns spaces into.
    Token strings and ids unchanged.
    Returns {tensor name: ggml type name}."""
    tensors = hf_to_gguf_tensors(W, a)
    tok_kv = [('tokenizer.ggml.model', 'STRING', 'none')]
    if runnable_tokenizer:
        tok_kv = [('tokenizer.ggml.model', 'STRING', 'rwkv')]
    kvs = [
        ('general.architecture', 'STRING', 'llama'),
        ('general.name', 'STRING', name),
        ('general.alignment', 'UINT32', GGUF_ALIGN),
        ('general.file_type', 'UINT32', LLAMA_FTYPE[ftype]),
        ('general.quantization_version', 'UINT32', 2),
        ('llama.vocab_size', 'UINT32', a['V']),
        ('llama.context_length', 'UINT32', a['max_pos']),
        ('llama.embedding_length', 'UINT32', a['d']),
        ('llama.block_count', 'UINT32', a['L']),
        ('llama.feed_forward_length', 'UINT32', a['m']),
        ('llama.rope.dimension_count', 'UINT32', a['hd']),
        ('llama.attention.head_count', 'UINT32', a['nh']),
        ('llama.attention.head_count_kv', 'UINT32', a['nkv']),
        ('llama.attention.layer_norm_rms_epsilon', 'FLOAT32', a['eps']),
        ('llama.rope.freq_base', 'FLOAT32', a['rope_theta']),
    ] + tok_kv + [
        ('tokenizer.ggml.tokens', 'ARRAY', ('STRING', vocab_tokens())),
    ] + ([('tokenizer.ggml.token_type', 'ARRAY', ('INT32', [2] + [1] * (a['V'] - 1)))]   # UNKNOWN, NORMAL
         if runnable_tokenizer else []) + [
        ('tokenizer.ggml.unknown_token_id', 'UINT32', 0),
        ('tokenizer.ggml.eos_token_id', 'UINT32', 1),
    ]
    infos, datas, off = b'', [], 0
    types = {}
    for n, t in tensors:
        if t.ndim != 2:
            gt = GGML_F32
        elif ftype == 'Q8_0':
            gt = GGML_Q8_0
        elif ftype == 'F16':
            gt = GGML_F16
        else:
            gt = q4_k_m_type(n, t, a['L'])
        data = {GGML_F32: lambda v: v.astype('<f4').tobytes(), GGML_F16: lambda v: v.astype('<f2').tobytes(),
                GGML_Q8_0: quantize_q8_0, GGML_Q4_K: quantize_q4_K, GGML_Q6_K: quantize_q6_K}[gt](t)
        types[n] = {GGML_F32: 'F32', GGML_F16: 'F16', GGML_Q8_0: 'Q8_0', GGML_Q4_K: 'Q4_K', GGML_Q6_K: 'Q6_K'}[gt]
        ne = list(reversed(t.shape))                      # ggml order: ne[0] = row length
        infos += _gguf_str(n) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', x) for x in ne)
        infos += struct.pack('<IQ', gt, off)
        datas.append(data)
        off += len(data)
        off += (-off) % GGUF_ALIGN
    head = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs))
    head += b''.join(_gguf_kv(*kv) for kv in kvs) + infos
    head += b'\x00' * ((-len(head)) % GGUF_ALIGN)
    with open(path, 'wb') as f:
        f.write(head)
        for d in datas:
            f.write(d)
            f.write(b'\x00' * ((-len(d)) % GGUF_ALIGN))
    return types


def read_gguf(path):
    """Minimal GGUF v3 reader (for the round-trip check). Returns (kv, {name: np.array in torch shape})."""
    buf = open(path, 'rb').read()
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def rs():
        n = rd('<Q')
        nonlocal pos
        s = buf[pos:pos + n].decode('utf-8')
        pos += n
        return s

    scal = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}

    def rv(t):
        if t == 8:
            return rs()
        if t == 9:
            et, n = rd('<I'), rd('<Q')
            return [rv(et) for _ in range(n)]
        return rd(scal[t])

    assert buf[:4] == b'GGUF'
    pos = 4
    ver, nt, nkv = rd('<I'), rd('<Q'), rd('<Q')
    assert ver == 3
    kv = {}
    for _ in range(nkv):
        k = rs()
        kv[k] = rv(rd('<I'))
    infos = []
    for _ in range(nt):
        n = rs()
        nd = rd('<I')
        ne = [rd('<Q') for _ in range(nd)]
        gt, off = rd('<I'), rd('<Q')
        infos.append((n, ne, gt, off))
    align = kv.get('general.alignment', 32)
    base = pos + ((-pos) % align)
    out = {}
    for n, ne, gt, off in infos:
        cnt = int(np.prod(ne))
        if gt == GGML_F32:
            arr = np.frombuffer(buf, dtype='<f4', count=cnt, offset=base + off)
        elif gt == GGML_F16:
            arr = np.frombuffer(buf, dtype='<f2', count=cnt, offset=base + off).astype(np.float32)
        elif gt in GGML_BLOCK_BYTES:
            bs, bb = GGML_BLOCK_BYTES[gt]
            deq = {GGML_Q8_0: dequantize_q8_0, GGML_Q4_K: dequantize_q4_K, GGML_Q6_K: dequantize_q6_K}[gt]
            arr = deq(buf[base + off: base + off + cnt // bs * bb], cnt)
        else:
            raise ValueError(gt)
        out[n] = arr.reshape(list(reversed(ne))).copy()
    return kv, out


def gguf_to_hf(T, a=ARCH):
    W = {'model.embed_tokens.weight': T['token_embd.weight'], 'lm_head.weight': T['output.weight'],
         'model.norm.weight': T['output_norm.weight']}
    for i in range(a['L']):
        p, b = f'model.layers.{i}.', f'blk.{i}.'
        W[p + 'input_layernorm.weight'] = T[b + 'attn_norm.weight']
        W[p + 'post_attention_layernorm.weight'] = T[b + 'ffn_norm.weight']
        W[p + 'self_attn.q_proj.weight'] = llama_cpp_unpermute(T[b + 'attn_q.weight'], a['nh'])
        W[p + 'self_attn.k_proj.weight'] = llama_cpp_unpermute(T[b + 'attn_k.weight'], a['nkv'])
        W[p + 'self_attn.v_proj.weight'] = T[b + 'attn_v.weight']
        W[p + 'self_attn.o_proj.weight'] = T[b + 'attn_output.weight']
        W[p + 'mlp.gate_proj.weight'] = T[b + 'ffn_gate.weight']
        W[p + 'mlp.up_proj.weight'] = T[b + 'ffn_up.weight']
        W[p + 'mlp.down_proj.weight'] = T[b + 'ffn_down.weight']
    return {k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in W.items()}


# ------------------------------------------------------------------ configs
def llama_config(dtype, a=ARCH):
    return {
        "vocab_size": a['V'], "hidden_size": a['d'], "intermediate_size": a['m'],
        "num_hidden_layers": a['L'], "num_attention_heads": a['nh'],
        "num_key_value_heads": a['nkv'], "hidden_act": "silu", "rms_norm_eps": a['eps'],
        "rope_theta": a['rope_theta'], "max_position_embeddings": a['max_pos'],
        "initializer_range": 0.02, "tie_word_embeddings": False,
        "torch_dtype": {'F32': 'float32', 'F16': 'float16', 'BF16': 'bfloat16'}[dtype],
        "bos_token_id": None, "eos_token_id": 1, "use_cache": True,
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "attention_bias": False, "mlp_bias": False, "pretraining_tp": 1,
    }


def renamed_config(dtype):
    c = llama_config(dtype)
    c["architectures"] = ["CharDecoderForCausalLM"]
    c["model_type"] = "char_decoder"
    c.pop("pretraining_tp")
    return c


def mixtral_config(dtype, aux_coef):
    c = llama_config(dtype)
    c.pop("mlp_bias")
    c.pop("pretraining_tp")
    c.update({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
              "num_local_experts": N_EXPERTS, "num_experts_per_tok": TOP_K,
              "router_aux_loss_coef": aux_coef, "output_router_logits": False,
              "sliding_window": None, "attention_dropout": 0.0})
    return c


def write_case(out_dir, case, tensors, dtype, config):
    d = os.path.join(out_dir, case)
    os.makedirs(d, exist_ok=True)
    save_safetensors(os.path.join(d, 'model.safetensors'), tensors, dtype)
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')


# ------------------------------------------------------------------- cases
EXP_DD = {'llm': 'derived', 'vision': None, 'embeddings': 'derived'}
EXP_II = {'llm': 'independent', 'vision': None, 'embeddings': 'independent'}

SEEDS = dict(rotated_P=2001, rotated_ft_P=2002, signperm_P=2003, one_layer_P=2004,
             one_layer_ft_P=2005, moe_P_init=2006, moe_P_ft=2007, indep_base=1000,
             open_G=3000, headperm_G=3001, rotated_G=3002, headperm_ft_G=3003, ft_G=3004,
             one_layer_G=3005, indep_g_base=3100)
FT_LR = 2e-4
SCRATCH_LR = 2e-3
MOE_AUX = 0.01


def indep_plan(n):
    """indep_NN: corpus alternates A/B, lr cycles 2e-3 / 1e-3 / 3e-3 per pair."""
    plan = []
    for i in range(n):
        plan.append(dict(name=f'indep_{i:02d}', seed=SEEDS['indep_base'] + i,
                         corpus='A' if i % 2 == 0 else 'B',
                         lr=[2e-3, 1e-3, 3e-3][(i // 2) % 3]))
    return plan


def indep_g_plan(n):
    """indep_g_NN: G's architecture; corpus alternates A/B, lr cycles 2e-3 / 1e-3 / 3e-3 per pair."""
    return [dict(name=f'indep_g_{i:02d}', seed=SEEDS['indep_g_base'] + i, corpus='A' if i % 2 == 0 else 'B',
                 lr=[2e-3, 1e-3, 3e-3][(i // 2) % 3]) for i in range(n)]


ENGINE_DIR = '/opt/evald/test-engine'


class Gen:
    def __init__(self, args, log):
        self.args, self.log = args, log
        self.out = args.out
        self.fixtures = args.fixtures
        self.A, self.B, self.corpus_info = build_corpora()
        self.data = {'A': self.A, 'B': self.B}
        self.P = load_safetensors(os.path.join(FIXTURES, 'open_P', 'model.safetensors'))
        self.cache = {}
        self.records, self.timings = {}, {}

    def ev(self, W, moe=False, a=ARCH):
        return {'A': round(eval_loss(W, self.A['eval'], moe=moe, a=a), 4),
                'B': round(eval_loss(W, self.B['eval'], moe=moe, a=a), 4)}

    def sanity(self):
        t = time.time()
        a = eval_loss(self.P, self.A['eval'])
        b = eval_loss(self.P, self.B['eval'])
        self.log(f'sanity: open_P eval loss A {a:.4f} (labels.json 1.6826), B {b:.4f} (2.023) '
                 f'[{time.time() - t:.1f}s]')
        self.sanity_rec = {'open_P_eval_loss': {'A': round(a, 4), 'B': round(b, 4)},
                           'shipped_labels_eval_loss': {'A': 1.6826, 'B': 2.023},
                           'eval_protocol': f'non-overlapping windows of {EVAL_SEQ} chars over the eval split'}
        self.pA = a
        return a

    # -- transforms -------------------------------------------------------
    def rotated(self):
        if 'rotated_P' not in self.cache:
            Q = random_orthogonal(ARCH['d'], torch.Generator().manual_seed(SEEDS['rotated_P']))
            Wf = fold_norms(self.P)
            W = f32(residual_map(Wf, Q))
            self.cache['rotated_P'] = (W, Q, Wf)
        return self.cache['rotated_P']

    def case_renamed_P(self):
        m = renamed_names()
        T = {m[k]: v for k, v in self.P.items()}
        write_case(self.out, 'renamed_P', T, 'F32', renamed_config('F32'))
        back = {k: load_safetensors(os.path.join(self.out, 'renamed_P', 'model.safetensors'))[v] for k, v in m.items()}
        exact = all(torch.equal(back[k], self.P[k]) for k in m)
        ev = self.ev(back)
        return dict(expected=EXP_DD, source='open_P', storage_dtype='F32',
                    description='open_P with values unchanged (F32, bit-identical) but every tensor renamed '
                                '(stack.{i}.attn.wq/wk/wv/wo, stack.{i}.ff.w_gate/w_up/w_down, stack.{i}.ln_a/ln_b, '
                                'tok_emb, unembed, final_ln) and a non-Llama config (model_type char_decoder).',
                    rename_map=m, steps_own=0, seed=None, corpus=None, lr=None, final_train_loss=None,
                    eval_loss=ev, function_check={'eval_A_before': round(self.pA, 6), 'eval_A_after': ev['A'],
                                                  'bit_identical_values': exact},
                    sanity_corr={'vs_P': corr_vs(back, self.P)})

    def case_renamed_emb_f16(self):
        src = load_safetensors(os.path.join(FIXTURES, 'embed_reuse_P', 'model.safetensors'))
        m = {'model.embed_tokens.weight': 'tok_emb.weight', 'lm_head.weight': 'unembed.weight'}
        T = {m.get(k, k): v for k, v in src.items()}
        with open(os.path.join(FIXTURES, 'embed_reuse_P', 'config.json')) as f:
            cfg = json.load(f)
        write_case(self.out, 'renamed_emb_f16', T, 'F16', cfg)
        before = eval_loss(src, self.A['eval'])
        back = load_safetensors(os.path.join(self.out, 'renamed_emb_f16', 'model.safetensors'))
        back = {k: back[m.get(k, k)] for k in src}
        exact = all(torch.equal(back[k], src[k]) for k in src)
        ev = self.ev(back)
        return dict(expected={'llm': 'independent', 'vision': None, 'embeddings': 'derived'},
                    source='open_P', storage_dtype='F16',
                    description='fixtures/embed_reuse_P (embeddings = F16 cast of open_P\'s, frozen; blocks '
                                'trained from scratch on B) with ONLY model.embed_tokens.weight -> tok_emb.weight '
                                'and lm_head.weight -> unembed.weight renamed; everything else keeps HF Llama names. '
                                'Embeddings derived, blocks independent.',
                    rename_map=m, derived_from_fixture='embed_reuse_P', steps_own=0, seed=None,
                    corpus=None, lr=None, final_train_loss=None, eval_loss=ev,
                    function_check={'eval_A_embed_reuse_P': round(before, 6), 'eval_A_after': ev['A'],
                                    'bit_identical_values': exact},
                    sanity_corr={'vs_P': corr_vs(back, self.P)})

    def case_rotated_P(self):
        W, Q, Wf = self.rotated()
        after = eval_loss(W, self.A['eval'])
        write_case(self.out, 'rotated_P', W, 'F16', llama_config('F16'))
        Ws = storage_round(W, 'F16')
        ev = self.ev(Ws)
        undo = f32(residual_map(Ws, Q.T))
        return dict(expected=EXP_DD, source='open_P', storage_dtype='F16',
                    description='open_P with RMSNorm gains folded into the reading matrices (gains = 1) and the '
                                'residual stream rotated by a random 128x128 orthogonal Q (QR of a Gaussian, sign '
                                'fixed): embed, q/k/v/gate/up/lm_head <- W @ Q; o_proj/down_proj <- Q.T @ W. '
                                'Function preserved (checked). No training.',
                    steps_own=0, seed=SEEDS['rotated_P'], corpus=None, lr=None, final_train_loss=None,
                    eval_loss=ev,
                    function_check={'eval_A_before': round(self.pA, 6), 'eval_A_after_f32': round(after, 6),
                                    'eval_A_after_stored_f16': ev['A']},
                    oracle_aligned_corr=corr_vs(undo, self.P)['mean_2d'],
                    oracle_aligned_corr_vs_folded_P=corr_vs(undo, f32(Wf))['mean_2d'],
                    sanity_corr={'vs_P': corr_vs(Ws, self.P)})

    def rotated_ft(self):
        if 'rotated_ft_P' not in self.cache:
            W, Q, _ = self.rotated()
            Wt, fl, _ = train(W, self.B['train'], self.args.ft_steps, FT_LR, SEEDS['rotated_ft_P'], log=self.log)
            self.cache['rotated_ft_P'] = (Wt, fl)
        return self.cache['rotated_ft_P']

    def case_rotated_ft_P(self):
        W, Q, Wf = self.rotated()
        Wt, fl = self.rotated_ft()
        write_case(self.out, 'rotated_ft_P', Wt, 'F16', llama_config('F16'))
        Ws = storage_round(Wt, 'F16')
        ev = self.ev(Ws)
        undo = f32(residual_map(Ws, Q.T))
        return dict(expected=EXP_DD, source='open_P', storage_dtype='F16',
                    description=f'rotated_P (folded gains + random orthogonal residual rotation) then fine-tuned '
                                f'{self.args.ft_steps} steps on corpus B (AdamW, lr {FT_LR}, all weights incl. the '
                                f'unit RMSNorm gains trainable).',
                    steps_own=self.args.ft_steps, seed={'rotation': SEEDS['rotated_P'], 'ft': SEEDS['rotated_ft_P']},
                    corpus='B', lr=FT_LR, final_train_loss=fl, eval_loss=ev,
                    function_check={'eval_A_before_rotation': round(self.pA, 6),
                                    'eval_A_after_rotation_f32': round(eval_loss(W, self.A['eval']), 6)},
                    oracle_aligned_corr=corr_vs(undo, self.P)['mean_2d'],
                    oracle_aligned_corr_vs_folded_P=corr_vs(undo, f32(Wf))['mean_2d'],
                    sanity_corr={'vs_P': corr_vs(Ws, self.P)})

    def case_signperm_P(self):
        g = torch.Generator().manual_seed(SEEDS['signperm_P'])
        d, nh, m, L = ARCH['d'], ARCH['nh'], ARCH['m'], ARCH['L']
        rperm = torch.randperm(d, generator=g)
        signs = torch.randint(0, 2, (d,), generator=g).double() * 2 - 1
        Qs = torch.zeros(d, d, dtype=torch.float64)
        Qs[rperm, torch.arange(d)] = signs          # x @ Qs: new dim j = signs[j] * old dim rperm[j]
        hperm = [torch.randperm(nh, generator=g) for _ in range(L)]
        mperms = [torch.randperm(m, generator=g) for _ in range(L)]
        vscale = [torch.exp(torch.empty(nh, dtype=torch.float64).uniform_(math.log(0.5), math.log(2.0), generator=g))
                  for _ in range(L)]
        Wf = fold_norms(self.P)
        W = f32(head_mlp_perm(residual_map(Wf, Qs), hperm, mperms, vscale))
        after = eval_loss(W, self.A['eval'])
        write_case(self.out, 'signperm_P', W, 'F16', llama_config('F16'))
        Ws = storage_round(W, 'F16')
        ev = self.ev(Ws)
        undo = f32(residual_map(undo_head_mlp_perm(Ws, hperm, mperms, vscale), Qs.T))
        return dict(expected=EXP_DD, source='open_P', storage_dtype='F16',
                    description='open_P with gains folded, a signed permutation of the 128 residual dims (random '
                                'permutation + random sign flips), attention heads permuted per layer (q/k/v row '
                                'blocks, o_proj column blocks), MLP hidden units permuted per layer (gate/up rows, '
                                'down columns), and each head\'s v rows scaled by a random factor in [0.5, 2] with '
                                'the inverse on its o_proj columns. Function preserved (checked). No training.',
                    steps_own=0, seed=SEEDS['signperm_P'], corpus=None, lr=None, final_train_loss=None,
                    eval_loss=ev,
                    function_check={'eval_A_before': round(self.pA, 6), 'eval_A_after_f32': round(after, 6),
                                    'eval_A_after_stored_f16': ev['A']},
                    transform={'residual_perm': rperm.tolist(), 'residual_signs': signs.int().tolist(),
                               'head_perm': [h.tolist() for h in hperm],
                               'v_scale': [[round(float(s), 6) for s in v] for v in vscale]},
                    oracle_aligned_corr=corr_vs(undo, self.P)['mean_2d'],
                    oracle_aligned_corr_vs_folded_P=corr_vs(undo, f32(Wf))['mean_2d'],
                    sanity_corr={'vs_P': corr_vs(Ws, self.P)})

    def _one_layer(self, name, frozen):
        seed = SEEDS[name]
        W0 = init_weights(seed)
        layer = [k for k in self.P if k.startswith('model.layers.1.')]
        for k in layer:
            W0[k] = self.P[k].clone()
        steps = self.args.one_layer_steps
        Wt, fl, _ = train(W0, self.B['train'], steps, SCRATCH_LR, seed,
                          frozen=set(layer) if frozen else (), log=self.log)
        same = all(torch.equal(Wt[k], self.P[k]) for k in layer)
        write_case(self.out, name, Wt, 'F16', llama_config('F16'))
        Ws = storage_round(Wt, 'F16')
        ev = self.ev(Ws)
        per_layer = {f'layer_{i}': corr_vs({k: v for k, v in Ws.items() if k.startswith(f'model.layers.{i}.')},
                                           self.P)['llm'] for i in range(ARCH['L'])}
        how = ('kept FROZEN (bit-identical to open_P before the F16 cast)' if frozen
               else f'trainable at the same lr as the rest')
        return dict(expected={'llm': 'derived', 'vision': None, 'embeddings': 'independent'},
                    source='open_P', storage_dtype='F16', copied_layers=[1],
                    description=f'P\'s architecture trained from scratch on corpus B (seed {seed}, {steps} steps, '
                                f'lr {SCRATCH_LR}), except decoder layer 1 (model.layers.1.*: q/k/v/o, gate/up/down '
                                f'and both RMSNorms) which was copied from open_P and {how}. LLM derived '
                                f'(layer 1 comes from open_P); embeddings independent.',
                    steps_own=steps, seed=seed, corpus='B', lr=SCRATCH_LR, final_train_loss=fl,
                    eval_loss=ev, layer1_frozen=frozen,
                    layer1_unchanged_after_training=same,
                    sanity_corr={'vs_P': corr_vs(Ws, self.P), 'vs_P_per_layer_llm': per_layer})

    def case_one_layer_P(self):
        return self._one_layer('one_layer_P', True)

    def case_one_layer_ft_P(self):
        return self._one_layer('one_layer_ft_P', False)

    def case_moe_P(self):
        g = torch.Generator().manual_seed(SEEDS['moe_P_init'])
        W0 = moe_names_from_dense(self.P, g)
        before = eval_loss(W0, self.A['eval'], moe=True)
        steps = self.args.ft_steps
        Wt, fl, _ = train(W0, self.B['train'], steps, FT_LR, SEEDS['moe_P_ft'], moe=True,
                          aux_coef=MOE_AUX, log=self.log)
        write_case(self.out, 'moe_P', Wt, 'F16', mixtral_config('F16', MOE_AUX))
        Ws = storage_round(Wt, 'F16')
        ev = self.ev(Ws, moe=True)
        exp_corr = {}
        for dense, w in (('gate_proj', 'w1'), ('up_proj', 'w3'), ('down_proj', 'w2')):
            cs = [pearson(Ws[f'model.layers.{i}.block_sparse_moe.experts.{j}.{w}.weight'],
                          self.P[f'model.layers.{i}.mlp.{dense}.weight'])
                  for i in range(ARCH['L']) for j in range(N_EXPERTS)]
            exp_corr[f'{w}_vs_{dense}'] = round(float(np.mean(cs)), 4)
        return dict(expected=EXP_DD, source='open_P', storage_dtype='F16',
                    description=f'Dense-to-MoE upcycling of open_P (Mixtral names/config): every layer\'s MLP '
                                f'becomes {N_EXPERTS} experts, each a copy of P\'s MLP plus Gaussian noise of std '
                                f'1e-3 x the weight\'s std (w1=gate, w3=up, w2=down), a fresh router '
                                f'(N(0,0.02), top-{TOP_K}, softmax over the selected), then fine-tuned {steps} '
                                f'steps on corpus B (lr {FT_LR}, load-balancing aux loss x{MOE_AUX}).',
                    steps_own=steps, seed={'upcycle': SEEDS['moe_P_init'], 'ft': SEEDS['moe_P_ft']},
                    corpus='B', lr=FT_LR, final_train_loss=fl, eval_loss=ev,
                    function_check={'eval_A_before': round(self.pA, 6),
                                    'eval_A_after_upcycling_f32': round(before, 6)},
                    sanity_corr={'vs_P': corr_vs(Ws, self.P), 'experts_vs_P_mlp': exp_corr})

    def case_rotated_ft_P_q8(self):
        W, Q, Wf = self.rotated()
        Wt, fl = self.rotated_ft()
        Ws = storage_round(Wt, 'F16')            # convert what rotated_ft_P ships
        d = os.path.join(self.out, 'rotated_ft_P_q8')
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, 'model.gguf')
        write_gguf(path, Ws, 'rotated_ft_P_q8')
        kv, T = read_gguf(path)
        Wg = gguf_to_hf(T)
        ev = self.ev(Wg)
        err = max(float((Wg[k] - Ws[k]).abs().max()) for k in Ws)
        undo = f32(residual_map(Wg, Q.T))
        return dict(path='rotated_ft_P_q8/model.gguf', expected=EXP_DD, source='open_P',
                    storage_dtype='Q8_0',
                    description='rotated_ft_P (its F16 weights) converted to GGUF v3 the way llama.cpp\'s '
                                'convert_hf_to_gguf does for Llama: llama.cpp tensor names, q/k rows permuted '
                                '(LlamaModel.permute), 2-D tensors Q8_0, 1-D tensors F32, alignment 32.',
                    steps_own=self.args.ft_steps, seed={'rotation': SEEDS['rotated_P'], 'ft': SEEDS['rotated_ft_P']},
                    corpus='B', lr=FT_LR, final_train_loss=fl, eval_loss=ev,
                    function_check={'eval_A_rotated_ft_P_f16': round(eval_loss(Ws, self.A['eval']), 6),
                                    'eval_A_gguf_dequantized': ev['A'],
                                    'max_abs_dequant_error': round(err, 6)},
                    gguf={'version': 3, 'tensor_count': len(T), 'kv_count': len(kv),
                          'q_k_permuted': 'llama.cpp LlamaModel.permute'},
                    oracle_aligned_corr=corr_vs(undo, self.P)['mean_2d'],
                    sanity_corr={'vs_P': corr_vs(Wg, self.P)})

    def case_indep(self, spec):
        W0 = init_weights(spec['seed'])
        steps = self.args.indep_steps
        Wt, fl, _ = train(W0, self.data[spec['corpus']]['train'], steps, spec['lr'], spec['seed'], log=self.log)
        write_case(self.out, spec['name'], Wt, 'F16', llama_config('F16'))
        Ws = storage_round(Wt, 'F16')
        lib = spec['name'] in self.null_library
        return dict(role='null_library' if lib else 'candidate', expected=EXP_II, source=None,
                    storage_dtype='F16',
                    description=f'P\'s exact architecture/shapes, HF Llama init (N(0,0.02), seed {spec["seed"]}), '
                                f'trained from scratch {steps} steps on corpus {spec["corpus"]} at peak lr '
                                f'{spec["lr"]}. Independent.' + (' Meant for the reference library as a '
                                                                 'known-independent model (empirical null).' if lib else ''),
                    steps_own=steps, seed=spec['seed'], corpus=spec['corpus'], lr=spec['lr'],
                    final_train_loss=fl, eval_loss=self.ev(Ws),
                    sanity_corr={'vs_P': corr_vs(Ws, self.P)})


    # -- the G family (GQA, K-quant-friendly widths) -----------------------------------
    def Gref(self):
        """open_G as stored (F16 values), the reference every G case derives from."""
        if 'open_G' not in self.cache:
            path = os.path.join(self.fixtures, 'open_G', 'model.safetensors')
            if not os.path.exists(path):
                sys.exit(f'{path} missing: build the reference first (--only open_G)')
            self.cache['open_G'] = load_safetensors(path)
        return self.cache['open_G']

    def ref_open_G(self):
        a, seed, steps = ARCH_G, SEEDS['open_G'], self.args.ref_g_steps
        Wt, fl, _ = train(init_weights(seed, a), self.A['train'], steps, SCRATCH_LR, seed, log=self.log, a=a)
        write_case(self.fixtures, 'open_G', Wt, 'F16', llama_config('F16', a))
        self.cache.pop('open_G', None)
        Ws = self.Gref()
        return dict(path=os.path.relpath(os.path.join(self.fixtures, 'open_G'), self.out), role='reference',
                    source=None, storage_dtype='F16',
                    description=f'REFERENCE open model G (GQA): vocab 97, d_model 256, 2 layers, 8 query heads '
                                f'sharing 2 KV heads (head_dim 32, 4 query heads per KV group), SwiGLU MLP 512, '
                                f'HF Llama init (N(0,0.02), seed {seed}), trained from scratch {steps} steps on '
                                f'corpus A at peak lr {SCRATCH_LR}.',
                    steps_own=steps, seed=seed, corpus='A', lr=SCRATCH_LR, final_train_loss=fl,
                    eval_loss=self.ev(Ws, a=a))

    def case_headperm_G(self):
        a, G = ARCH_G, self.Gref()
        gperms, qperms, mperms = random_gqa_perms(torch.Generator().manual_seed(SEEDS['headperm_G']), a)
        before = eval_loss(G, self.A['eval'], a=a)
        W = f32(gqa_head_mlp_perm(G, gperms, qperms, mperms, a))
        after = eval_loss(W, self.A['eval'], a=a)
        write_case(self.out, 'headperm_G', W, 'F16', llama_config('F16', a))
        Ws = storage_round(W, 'F16')
        ev = self.ev(Ws, a=a)
        undo = f32(undo_gqa_head_mlp_perm(Ws, gperms, qperms, mperms, a))
        return dict(expected=EXP_DD, source='open_G', storage_dtype='F16',
                    description='open_G with, in every layer, its 2 KV groups permuted (k/v row blocks moved '
                                'together with their 4 query heads), the 4 query heads of every group permuted '
                                'within the group (q row blocks, o_proj column blocks), and the 512 MLP hidden '
                                'units permuted (gate/up rows, down_proj columns); no permutation the identity. '
                                'Function preserved (checked). No training.',
                    steps_own=0, seed=SEEDS['headperm_G'], corpus=None, lr=None, final_train_loss=None,
                    eval_loss=ev,
                    function_check={'eval_A_before': round(before, 6), 'eval_A_after_f32': round(after, 6),
                                    'eval_A_after_stored_f16': ev['A']},
                    transform={'kv_group_perm': [g.tolist() for g in gperms],
                               'q_perm_within_group': [[q.tolist() for q in l] for l in qperms],
                               'query_head_order': [gqa_head_order(gperms[i], qperms[i], a).tolist()
                                                    for i in range(a['L'])]},
                    oracle_aligned_corr=corr_vs(undo, G)['mean_2d'],
                    sanity_corr={'vs_G': corr_vs(Ws, G)})

    def engine_check(self, gguf_path, W_f16, W_deq, a):
        """Loss on the first N held-out windows of corpora A and B: torch on the unquantised (F16)
        weights and on our dequantisation of the GGUF; llama.cpp (node-llama-cpp, the test engine)
        on the GGUF and on an F16 GGUF of the same weights (written to a temp dir, not shipped)."""
        import subprocess
        import tempfile
        N, T = self.args.engine_windows, EVAL_SEQ
        rec = {'windows_per_corpus': N, 'tokens_per_corpus': N * T,
               'torch_f16': {}, 'torch_gguf_dequantized': {}}
        for k, dd in (('A', self.A['eval']), ('B', self.B['eval'])):
            rec['torch_f16'][k] = round(eval_loss(W_f16, dd, a=a, max_windows=N), 4)
            rec['torch_gguf_dequantized'][k] = round(eval_loss(W_deq, dd, a=a, max_windows=N), 4)
        node = os.path.join(self.args.engine_dir, 'bin', 'node')
        mods = os.path.join(self.args.engine_dir, 'node_modules')
        if not (os.path.exists(node) and os.path.isdir(os.path.join(mods, 'node-llama-cpp'))):
            self.log(f'  engine check skipped: no node-llama-cpp under {self.args.engine_dir}')
            rec['llama_cpp'] = None
            return rec
        with open(os.path.join(mods, 'node-llama-cpp', 'package.json')) as f:
            rec['engine'] = f'node-llama-cpp {json.load(f)["version"]} (its prebuilt llama.cpp, CPU, 1 thread)'
        with tempfile.TemporaryDirectory() as td:
            win = {k: dd[:N * T + 1].unfold(0, T + 1, T).tolist() for k, dd in
                   (('A', self.A['eval']), ('B', self.B['eval']))}
            with open(os.path.join(td, 'windows.json'), 'w') as f:
                json.dump(win, f)
            f16 = os.path.join(td, 'f16.gguf')
            write_gguf(f16, W_f16, 'f16', a, ftype='F16', runnable_tokenizer=True)
            for key, path in (('llama_cpp_f16_gguf', f16), ('llama_cpp_gguf', gguf_path)):
                r = subprocess.run([node, os.path.join(HERE, 'gguf_engine_loss.mjs'), '--modules', mods,
                                    '--model', path, '--windows', os.path.join(td, 'windows.json')],
                                   capture_output=True, text=True, timeout=900)
                if r.returncode != 0:
                    sys.exit(f'engine check failed on {path}: {r.stderr[-2000:]}')
                rec[key] = {k: round(v, 4) for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}
        return rec

    def case_rotated_headperm_ft_G_q4km(self):
        a, G, name = ARCH_G, self.Gref(), 'rotated_headperm_ft_G_q4km'
        Q = random_orthogonal(a['d'], torch.Generator().manual_seed(SEEDS['rotated_G']))
        gperms, qperms, mperms = random_gqa_perms(torch.Generator().manual_seed(SEEDS['headperm_ft_G']), a)
        Wf = fold_norms(G, a)
        W = f32(gqa_head_mlp_perm(residual_map(Wf, Q, a), gperms, qperms, mperms, a))
        before = eval_loss(G, self.A['eval'], a=a)
        after = eval_loss(W, self.A['eval'], a=a)
        steps = self.args.ft_steps
        Wt, fl, _ = train(W, self.B['train'], steps, FT_LR, SEEDS['ft_G'], log=self.log, a=a)
        Ws = storage_round(Wt, 'F16')            # what an F16 checkpoint of the fine-tune holds
        d = os.path.join(self.out, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, 'model.gguf')
        types = write_gguf(path, Ws, name, a, ftype='Q4_K_M', runnable_tokenizer=True)
        kv, T = read_gguf(path)
        Wg = gguf_to_hf(T, a)
        ev_f16, ev = self.ev(Ws, a=a), self.ev(Wg, a=a)
        rel = {}
        for k in Ws:
            if Ws[k].dim() == 2:
                e = float((Wg[k] - Ws[k]).pow(2).mean().sqrt() / Ws[k].pow(2).mean().sqrt())
                rel.setdefault('all_matrices', []).append(e)
        undo = f32(residual_map(undo_gqa_head_mlp_perm(Wg, gperms, qperms, mperms, a), Q.T, a))
        eng = self.engine_check(path, Ws, Wg, a)
        return dict(path=f'{name}/model.gguf', expected=EXP_DD, source='open_G', storage_dtype='Q4_K_M',
                    description=f'open_G with RMSNorm gains folded, the residual stream rotated by a random 256x256 '
                                f'orthogonal Q, KV groups / query heads within groups / MLP units permuted as in '
                                f'headperm_G (other seed), then fine-tuned {steps} steps on corpus B (lr {FT_LR}); '
                                f'its F16 weights converted to a llama.cpp GGUF (llama.cpp names, q/k rows permuted '
                                f'like convert_hf_to_gguf) and quantised with llama.cpp\'s Q4_K_M mix (no imatrix: '
                                f'ggml\'s reference quantisers): Q4_K for token_embd and most matrices, Q6_K for '
                                f'output and for attn_v / ffn_down where use_more_bits(layer) holds (layer 1 of 2), '
                                f'F32 norms.',
                    steps_own=steps, seed={'rotation': SEEDS['rotated_G'], 'perm': SEEDS['headperm_ft_G'],
                                           'ft': SEEDS['ft_G']},
                    corpus='B', lr=FT_LR, final_train_loss=fl, eval_loss=ev,
                    function_check={'eval_A_before': round(before, 6), 'eval_A_after_transform_f32': round(after, 6),
                                    'eval_A_ft_f16': ev_f16['A'], 'eval_B_ft_f16': ev_f16['B'],
                                    'eval_A_gguf_dequantized': ev['A'],
                                    'rel_rmse_dequant_vs_f16_mean': round(float(np.mean(rel['all_matrices'])), 5)},
                    engine_check=eng,
                    gguf={'version': 3, 'file_type': 'LLAMA_FTYPE_MOSTLY_Q4_K_M (15)', 'tensor_count': len(T),
                          'kv_count': len(kv), 'tensor_types': types,
                          # what a reader must get back: sha256 of every tensor dequantised to float32
                          # (little-endian, file order), by this script's ggml-layout dequantisers
                          'dequant_sha256': {n: hashlib.sha256(np.ascontiguousarray(t, dtype='<f4').tobytes())
                                             .hexdigest() for n, t in T.items()},
                          'tokenizer': 'tokenizer.ggml.model rwkv (greedy trie over the same 97 token strings)',
                          'q_k_permuted': 'llama.cpp LlamaModel.permute (k with n_head_kv)'},
                    oracle_aligned_corr=corr_vs(undo, G)['mean_2d'],
                    oracle_aligned_corr_vs_folded_G=corr_vs(undo, f32(Wf))['mean_2d'],
                    sanity_corr={'vs_G': corr_vs(Wg, G)})

    def case_one_layer_G(self):
        a, G, seed, steps = ARCH_G, self.Gref(), SEEDS['one_layer_G'], self.args.one_layer_g_steps
        W0 = init_weights(seed, a)
        layer = [k for k in G if k.startswith('model.layers.1.')]
        for k in layer:
            W0[k] = G[k].clone()
        Wt, fl, _ = train(W0, self.B['train'], steps, SCRATCH_LR, seed, frozen=set(layer), log=self.log, a=a)
        same = all(torch.equal(Wt[k], G[k]) for k in layer)
        write_case(self.out, 'one_layer_G', Wt, 'F16', llama_config('F16', a))
        Ws = storage_round(Wt, 'F16')
        per_layer = {f'layer_{i}': corr_vs({k: v for k, v in Ws.items() if k.startswith(f'model.layers.{i}.')},
                                           G)['llm'] for i in range(a['L'])}
        return dict(expected={'llm': 'derived', 'vision': None, 'embeddings': 'independent'},
                    source='open_G', storage_dtype='F16', copied_layers=[1],
                    description=f'G\'s architecture trained from scratch on corpus B (seed {seed}, {steps} steps, '
                                f'lr {SCRATCH_LR}), except decoder layer 1 of 2 (model.layers.1.*) which was copied '
                                f'from open_G and kept FROZEN. LLM derived (layer 1 comes from open_G); embeddings '
                                f'independent.',
                    steps_own=steps, seed=seed, corpus='B', lr=SCRATCH_LR, final_train_loss=fl,
                    eval_loss=self.ev(Ws, a=a), layer1_frozen=True, layer1_unchanged_after_training=same,
                    sanity_corr={'vs_G': corr_vs(Ws, G), 'vs_G_per_layer_llm': per_layer})

    def case_indep_g(self, spec):
        a, steps = ARCH_G, self.args.indep_steps
        Wt, fl, _ = train(init_weights(spec['seed'], a), self.data[spec['corpus']]['train'], steps, spec['lr'],
                          spec['seed'], log=self.log, a=a)
        write_case(self.out, spec['name'], Wt, 'F16', llama_config('F16', a))
        Ws = storage_round(Wt, 'F16')
        lib = spec['name'] in self.null_library
        return dict(role='null_library' if lib else 'candidate', expected=EXP_II, source=None,
                    storage_dtype='F16',
                    description=f'G\'s exact architecture/shapes (GQA 8/2), HF Llama init (N(0,0.02), seed '
                                f'{spec["seed"]}), trained from scratch {steps} steps on corpus {spec["corpus"]} at '
                                f'peak lr {spec["lr"]}. Independent.' + (' Meant for the reference library as a '
                                                                         'known-independent model (empirical null '
                                                                         'of the G family).' if lib else ''),
                    steps_own=steps, seed=spec['seed'], corpus=spec['corpus'], lr=spec['lr'],
                    final_train_loss=fl, eval_loss=self.ev(Ws, a=a),
                    sanity_corr={'vs_G': corr_vs(Ws, self.Gref())})


CASE_ORDER = ['renamed_P', 'renamed_emb_f16', 'rotated_P', 'rotated_ft_P', 'signperm_P',
              'one_layer_P', 'one_layer_ft_P', 'moe_P', 'rotated_ft_P_q8']
REFERENCE_ORDER = ['open_G']                 # written into --fixtures, recorded under reference_models
CASE_ORDER_G = ['headperm_G', 'rotated_headperm_ft_G_q4km', 'one_layer_G']


# --------------------------------------------------------------- outputs
KEY_ORDER = ['path', 'role', 'expected', 'source', 'description', 'storage_dtype', 'steps_own', 'seed',
             'corpus', 'lr', 'final_train_loss', 'eval_loss', 'function_check', 'copied_layers']


def ordered(rec):
    out = {k: rec[k] for k in KEY_ORDER if k in rec}
    out.update({k: v for k, v in rec.items() if k not in out})
    return out


def fmt(x, nd=3):
    return '-' if x is None else f'{x:.{nd}f}'


def write_readme(out_dir, labels):
    L = []
    w = L.append
    w('# Adversarial provenance fixtures (tiny char-level Llama models)\n')
    w('Generated by `tools/provenance-fixtures/make_adversarial.py` (see the README there). Every case asks, '
      'per component, whether the weights derive from an open reference model: `open_P` '
      '(`../fixtures/open_P`) for the P cases. These cases target a gate that matches tensors by name, by dtype, or by raw '
      'same-position correlation: renamed tensors, function-preserving rotations / signed permutations of the '
      'residual stream, a single copied layer, dense-to-MoE upcycling, and a quantised GGUF conversion. '
      f'{sum(1 for n in labels["cases"] if re.match(r"indep_[0-9]", n))} genuinely independent models trained from '
      f'scratch with P\'s exact shapes (`indep_NN`) give an empirical null. '
      'A second family derives from the GQA reference `open_G` (`../fixtures/open_G`, made by the same script; '
      'see below): GQA head permutations within and across KV groups, a rotated + head-permuted fine-tune '
      'quantised to a llama.cpp Q4_K_M GGUF, a copied layer, and '
      f'{sum(1 for n in labels["cases"] if n.startswith("indep_g_"))} independent models with G\'s shapes '
      '(`indep_g_NN`). The models listed under `null_library` go into the reference library as known-independent '
      'models. Ground truth is in `labels.json`.\n')
    w('## Files\n')
    w('- one folder per case with `model.safetensors` + HF-like `config.json`; `rotated_ft_P_q8/model.gguf` and '
      '`rotated_headperm_ft_G_q4km/model.gguf` (GGUF v3, no config).')
    w('- safetensors: 8-byte LE header length, JSON header (dtype, shape, data_offsets, '
      '`__metadata__ = {"format": "pt"}`, padded with spaces to a multiple of 8), raw LE data, tensors in '
      'sorted-name order. F32 for `renamed_P`, F16 for everything else.')
    w('- architecture (P cases): P\'s exact shapes -- vocab 97, d_model 128, 3 layers, 4 heads / 4 KV heads '
      '(head_dim 32), SwiGLU MLP 192 (moe_P: 4 experts of 192, top-2), RMSNorm eps 1e-6, RoPE theta 10000 '
      '(HF rotate_half), untied lm_head, no biases.')
    w('- architecture (G cases, `*_G*`, `indep_g_NN`): G\'s shapes -- vocab 97 (same chars), d_model 256, 2 '
      'layers, 8 query heads sharing 2 KV heads (GQA, head_dim 32, 4 query heads per group), SwiGLU MLP 512, '
      'otherwise as P. Every row length is a multiple of 256, so ggml\'s K-quants apply to every matrix.')
    w('- `rotated_headperm_ft_G_q4km/model.gguf`: GGUF v3, llama.cpp names, Q4_K_M (Q4_K / Q6_K blocks as '
      'ggml lays them out, F32 norms); `tokenizer.ggml.model` is `rwkv` (a greedy trie over the same 97 token '
      'strings, i.e. char tokenisation) so that llama.cpp can run it (`none` loads but cannot be evaluated).')
    w('- components: `llm` = decoder blocks + final norm; `embeddings` = embed_tokens + lm_head; '
      '`vision` = null (no case has a vision tower).')
    w('- `null_library` in labels.json lists the independent models meant to go INTO the reference library as '
      'known-independent models: ' + ', '.join(f'`{n}`' for n in labels['null_library']) +
      '. All other `indep_NN` are candidates.\n')
    w('## Cases\n')
    w('corr = mean Pearson correlation over 2-D tensors whose canonical HF name and shape match the same tensor '
      'of `open_P` (G cases: of `open_G`), computed on the canonical names BEFORE any renaming (for the GGUF case: after dequantising '
      'and undoing llama.cpp\'s q/k permutation), split into llm and embeddings tensors; moe_P only matches '
      'attention + embeddings by name. Independent pairs sit at about 0. \'aligned\' = the mean_2d figure after '
      'undoing the known rotation / signed permutation / head+MLP permutation / v scaling (an oracle; folded '
      'norm gains are left folded). eval loss = mean next-char cross-entropy over non-overlapping '
      f'{EVAL_SEQ}-char windows of the eval split (stored weights, as read back). fn check = eval loss A of '
      'open_P before -> after the function-preserving transform, in F32 before storage.\n')
    w('| case | role | llm | emb | source | dtype | steps | corpus | lr | final train loss | corr all | corr llm | '
      'corr emb | aligned | eval loss A / B | fn check (A) |')
    w('| --- ' * 16 + '|')
    for name, c in labels['cases'].items():
        fc = c.get('function_check') or {}
        fcs = '-'
        if 'eval_A_after_transform_f32' in fc:
            fcs = (f'{fc["eval_A_before"]:.4f} -> {fc["eval_A_after_transform_f32"]:.4f} (pre-ft); F16 '
                   f'{fc["eval_A_ft_f16"]:.4f} -> Q4_K_M {fc["eval_A_gguf_dequantized"]:.4f}')
        elif 'eval_A_after_f32' in fc:
            fcs = f'{fc["eval_A_before"]:.4f} -> {fc["eval_A_after_f32"]:.4f}'
        elif 'eval_A_before_rotation' in fc:
            fcs = f'{fc["eval_A_before_rotation"]:.4f} -> {fc["eval_A_after_rotation_f32"]:.4f} (pre-ft)'
        elif 'eval_A_after_upcycling_f32' in fc:
            fcs = f'{fc["eval_A_before"]:.4f} -> {fc["eval_A_after_upcycling_f32"]:.4f} (pre-ft)'
        elif 'eval_A_gguf_dequantized' in fc:
            fcs = f'{fc["eval_A_rotated_ft_P_f16"]:.4f} -> {fc["eval_A_gguf_dequantized"]:.4f} (F16 -> Q8_0)'
        elif 'bit_identical_values' in fc:
            fcs = 'bit-identical values' if fc['bit_identical_values'] else 'VALUES DIFFER'
        sc = c['sanity_corr'].get('vs_P') or c['sanity_corr'].get('vs_G')
        e = c['expected']
        role = {'null_library': 'library (null)'}.get(c['role'], c['role'])
        w(f'| {name} | {role} | {e["llm"]} | {e["embeddings"]} | {c["source"] or "-"} | {c["storage_dtype"]} | '
          f'{c["steps_own"]} | {c["corpus"] or "-"} | {c["lr"] if c["lr"] is not None else "-"} | '
          f'{fmt(c["final_train_loss"])} | {fmt(sc["mean_2d"])} | {fmt(sc["llm"])} | {fmt(sc["embeddings"])} | '
          f'{fmt(c.get("oracle_aligned_corr"))} | {c["eval_loss"]["A"]:.2f} / {c["eval_loss"]["B"]:.2f} | {fcs} |')
    w('')
    for name, c in labels['cases'].items():
        if name.startswith('indep_'):
            continue
        w(f'- **{name}** -- {c["description"]}')
    w('- **indep_NN** -- P\'s exact architecture, fresh HF Llama init with its own seed, trained from scratch '
      '(AdamW, warmup + cosine) on corpus A or B at peak lr 1e-3 / 2e-3 / 3e-3 (see the table). Independent. '
      '`indep_00`..`indep_09` form the null library; the rest are candidates.')
    w('- **indep_g_NN** -- the same for G\'s architecture (seeds 3100+NN); the first ones (see `null_library`) '
      'are G\'s null library, the rest candidates.\n')
    for r, c in labels.get('reference_models', {}).items():
        w(f'## Reference {r}\n')
        w(f'`{c["path"]}` ({c["storage_dtype"]} safetensors + config.json). {c["description"]} Final train loss '
          f'{fmt(c["final_train_loss"])}; eval loss A {c["eval_loss"]["A"]:.4f}, B {c["eval_loss"]["B"]:.4f}. '
          'For the G cases the corr columns above are against open_G, not open_P.\n')
    for name, c in labels['cases'].items():
        e = c.get('engine_check')
        if not e:
            continue
        w(f'## {name}: the GGUF in a real engine\n')
        if e.get('llama_cpp_gguf'):
            w(f'Mean next-char loss (nats) on the first {e["windows_per_corpus"]} held-out 128-char windows of each '
              f'corpus ({e["tokens_per_corpus"]} predictions each), A / B:\n')
            w('| weights | evaluated by | loss A | loss B |')
            w('| --- | --- | --- | --- |')
            for lab, who, k in (('F16 (the fine-tune before conversion)', 'torch (this script)', 'torch_f16'),
                                ('F16 GGUF of the same weights (not shipped)', e['engine'], 'llama_cpp_f16_gguf'),
                                ('Q4_K_M GGUF (shipped)', e['engine'], 'llama_cpp_gguf'),
                                ('Q4_K_M GGUF, dequantised by this script', 'torch (this script)',
                                 'torch_gguf_dequantized')):
                w(f'| {lab} | {who} | {e[k]["A"]:.4f} | {e[k]["B"]:.4f} |')
            w('')
        tt = c.get('gguf', {}).get('tensor_types', {})
        if tt:
            w('Tensor types: ' + ', '.join(f'`{n}` {t}' for n, t in tt.items() if t != 'F32') + '; norms F32.\n')
    s = labels['sanity_check']
    w('## Sanity check of the torch re-implementation\n')
    w(f'open_P evaluated with the generator\'s forward pass on the rebuilt corpora: eval loss A '
      f'{s["open_P_eval_loss"]["A"]:.4f} (shipped labels.json: 1.6826), B {s["open_P_eval_loss"]["B"]:.4f} '
      f'(2.023). The rebuilt corpora are not byte-identical to the shipped ones (different sha256), so a small '
      f'gap is expected.\n')
    w('## Data\n')
    for k in ('A', 'B'):
        ci = labels['corpus'][k]
        w(f'- corpus {k} ({ci["chars"]} chars, {ci["files"]} files, sha256 `{ci["sha256"]}`): {ci["what"]}')
    w('- the last 5% of each corpus is the eval split used for the eval losses.')
    w(f'- training: batch {BATCH} x {SEQ} chars, AdamW betas {BETAS}, weight decay {WD} on matrices, '
      f'grad clip {CLIP}, linear warmup (min(50, steps/10)) then cosine to 10% of the peak lr.\n')
    with open(os.path.join(out_dir, 'README.md'), 'w') as f:
        f.write('\n'.join(L))


def main():
    ap = argparse.ArgumentParser(
        description='Write adversarial provenance fixtures (derived-from-open_P and independent tiny models).')
    ap.add_argument('--out', default=DEFAULT_OUT, help='output dir (default: tests/provenance/adversarial)')
    ap.add_argument('--only', default='', help='comma-separated case names to (re)build; merged into an '
                                                'existing labels.json')
    ap.add_argument('--n-indep', type=int, default=30, help='number of indep_NN models (default 30)')
    ap.add_argument('--n-library', type=int, default=10, help='indep_00.. that form the null library (default 10)')
    ap.add_argument('--indep-steps', type=int, default=400, help='training steps per indep model (default 400)')
    ap.add_argument('--one-layer-steps', type=int, default=800, help='steps for one_layer_* (default 800)')
    ap.add_argument('--ft-steps', type=int, default=300, help='fine-tune steps for rotated_ft_P / moe_P (default 300)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    ap.add_argument('--fixtures', default=FIXTURES, help='where the references live; open_G is written there '
                                                        '(default: tests/provenance/fixtures)')
    ap.add_argument('--ref-g-steps', type=int, default=1000, help='training steps for open_G (default 1000)')
    ap.add_argument('--n-indep-g', type=int, default=6, help='number of indep_g_NN models (default 6)')
    ap.add_argument('--n-library-g', type=int, default=3, help='indep_g_00.. in the null library (default 3)')
    ap.add_argument('--one-layer-g-steps', type=int, default=400, help='steps for one_layer_G (default 400)')
    ap.add_argument('--engine-dir', default=ENGINE_DIR, help='node-llama-cpp install (bin/node, node_modules) '
                                                             'for the GGUF engine check (default %(default)s)')
    ap.add_argument('--engine-windows', type=int, default=200, help='held-out 128-char windows per corpus for '
                                                                    'the engine check (default 200)')
    ap.add_argument('--readme-only', action='store_true', help='only rewrite README.md from the existing labels.json')
    args = ap.parse_args()
    if args.readme_only:
        with open(os.path.join(args.out, 'labels.json')) as f:
            write_readme(args.out, json.load(f))
        return
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()

    def log(msg):
        print(f'[{time.time() - t_start:7.1f}s] {msg}', flush=True)

    G = Gen(args, log)
    for k in ('A', 'B'):
        log(f'corpus {k}: {G.corpus_info[k]["files"]} files, sha256 {G.corpus_info[k]["sha256"]}')
    a = G.sanity()
    if abs(a - 1.6826) > 0.1:
        sys.exit(f'sanity check failed: open_P eval loss A {a:.4f} vs 1.6826')

    plan = indep_plan(args.n_indep)
    gplan = indep_g_plan(args.n_indep_g)
    G.null_library = [p['name'] for p in plan[:args.n_library]] + [p['name'] for p in gplan[:args.n_library_g]]
    names = CASE_ORDER + [p['name'] for p in plan] + CASE_ORDER_G + [p['name'] for p in gplan]
    buildable = REFERENCE_ORDER + names
    only = [x for x in args.only.split(',') if x]
    for x in only:
        if x not in buildable:
            sys.exit(f'unknown case {x}; known: {", ".join(buildable)}')
    todo = [n for n in buildable if n in only] if only else buildable

    lab_path = os.path.join(args.out, 'labels.json')
    old = {}
    if only and os.path.exists(lab_path):
        with open(lab_path) as f:
            old = json.load(f)
    cases = dict(old.get('cases', {}))
    refs = dict(old.get('reference_models', {}))
    timings = dict(old.get('timings_s', {}))
    specs = {p['name']: p for p in plan}
    gspecs = {p['name']: p for p in gplan}
    for name in todo:
        log(f'case {name}')
        t = time.time()
        if name in specs:
            rec = G.case_indep(specs[name])
        elif name in gspecs:
            rec = G.case_indep_g(gspecs[name])
        elif name in REFERENCE_ORDER:
            rec = G.ref_open_G()
        else:
            rec = getattr(G, 'case_' + name)()
        rec.setdefault('path', name)
        rec.setdefault('role', 'candidate')
        (refs if name in REFERENCE_ORDER else cases)[name] = ordered(rec)
        timings[name] = round(time.time() - t, 1)
        log(f'  -> {name}: eval A/B {rec["eval_loss"]["A"]}/{rec["eval_loss"]["B"]}, '
            f'final train loss {rec["final_train_loss"]}, corr {rec.get("sanity_corr")}, '
            f'fn {rec.get("function_check")}, engine {rec.get("engine_check")} [{timings[name]}s]')
        # write labels after every case so a partial run is still usable
        cases_sorted = {n: cases[n] for n in names if n in cases}
        labels = {
            'naming': 'mixed: HF Llama (most), renamed (renamed_P, renamed_emb_f16), Mixtral (moe_P), '
                      'llama.cpp GGUF (rotated_ft_P_q8, rotated_headperm_ft_G_q4km)',
            'size': 'small',
            'generator': 'tools/provenance-fixtures/make_adversarial.py',
            'components': {
                'llm': 'decoder blocks + final norm (model.layers.*, model.norm, or their renamed / GGUF equivalents)',
                'embeddings': 'embed_tokens + lm_head (or renamed / GGUF equivalents)',
                'vision': 'null: no case has a vision tower'},
            'verdict_semantics': 'derived = weights come from the named source (copied, fine-tuned, transformed, '
                                 'renamed, upcycled, quantised); independent = initialised afresh and trained.',
            'references': ['open_P'] + REFERENCE_ORDER,
            'reference_paths': {'open_P': os.path.relpath(os.path.join(FIXTURES, 'open_P'), args.out),
                                **{r: os.path.relpath(os.path.join(args.fixtures, r), args.out)
                                   for r in REFERENCE_ORDER}},
            'reference_models': {r: refs[r] for r in REFERENCE_ORDER if r in refs},
            'null_library': [n for n in G.null_library if n in cases],
            'architecture': {'llm': ARCH, 'llm_G': ARCH_G,
                             'moe': {'num_local_experts': N_EXPERTS, 'num_experts_per_tok': TOP_K}},
            'corpus': G.corpus_info,
            'training': {'batch': BATCH, 'seq': SEQ, 'optimizer': 'AdamW', 'betas': list(BETAS),
                         'weight_decay_matrices': WD, 'grad_clip': CLIP,
                         'schedule': 'linear warmup min(50, steps/10) then cosine to 10% of peak lr',
                         'final_train_loss': 'mean of the last 50 steps', 'threads': args.threads},
            'sanity_check': G.sanity_rec,
            'cases': cases_sorted,
            'timings_s': {n: timings[n] for n in buildable if n in timings},
            'total_time_s_this_run': round(time.time() - t_start, 1),
        }
        with open(lab_path, 'w') as f:
            json.dump(labels, f, indent=1)
            f.write('\n')
        write_readme(args.out, labels)
    log('done')


if __name__ == '__main__':
    main()
