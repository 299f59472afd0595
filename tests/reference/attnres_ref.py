#!/usr/bin/env python3
"""Independent PyTorch reference for attnres: logits and AttnRes mix weights in float64.

Owns: a dependency-free safetensors reader/writer (numpy), a Llama-family decoder (GQA, RoPE incl.
llama3 scaling, optional Qwen3 q/k norms and q/k/v biases, tied or untied head) with the three residual
modes of docs ATTNRES.md (standard, Block AttnRes written exactly as ATTNRES.md §3, Full AttnRes).
Does not own: tokenization, sampling beyond greedy, any speed. Runs on PyTorch 1.13 and 2.x.

    python3 tests/reference/attnres_ref.py --selftest
    python3 tests/reference/attnres_ref.py --model DIR --ids 1,2,3
"""
import argparse
import glob
import json
import math
import os
import struct
import sys

import numpy as np
import torch

# ----------------------------------------------------------------------------- safetensors (numpy)

_ST_NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    """Returns {name: np.ndarray}; BF16 is widened exactly to float32."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        shape = tuple(info["shape"])
        dt = info["dtype"]
        if dt == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
            arr = (u16 << 16).view(np.float32)
        elif dt in _ST_NP:
            arr = np.frombuffer(raw, dtype=np.dtype(_ST_NP[dt]).newbyteorder("<"))
        else:
            raise ValueError("unsupported safetensors dtype %s for %s" % (dt, name))
        out[name] = arr.reshape(shape).copy()
    return out


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: np.ndarray (f64/f32/f16) or ('BF16', np.uint16 array)}."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if isinstance(t, tuple):
            dt, arr = t
        else:
            arr = np.ascontiguousarray(t)
            dt = {np.dtype(v): k for k, v in _ST_NP.items()}[arr.dtype]
        b = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_model_dir(model_dir, dtype=torch.float64):
    """Returns (config dict, {name: tensor}) with any 'language_model.' prefix stripped."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if "text_config" in cfg and "hidden_size" not in cfg:
        merged = dict(cfg["text_config"])
        for k, v in cfg.items():
            if k.startswith("attn_res") and k not in merged:
                merged[k] = v
        cfg = merged
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        files = [os.path.join(model_dir, p) for p in files]
    else:
        files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not files:
        raise FileNotFoundError("no *.safetensors in %s" % model_dir)
    w = {}
    for p in files:
        for name, arr in read_safetensors(p).items():
            for pre in ("language_model.",):
                if name.startswith(pre):
                    name = name[len(pre):]
            if name.startswith("model.language_model."):
                name = "model." + name[len("model.language_model."):]
            w[name] = torch.from_numpy(arr.astype(np.float64)).to(dtype)
    return cfg, w


# ----------------------------------------------------------------------------- building blocks

def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope_inv_freq(cfg, head_dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind in (None, "default"):
        return inv
    if kind == "linear":
        return inv / float(rs["factor"])
    if kind == "llama3":  # transformers _compute_llama3_parameters, written out
        factor = float(rs["factor"])
        low = float(rs["low_freq_factor"])
        high = float(rs["high_freq_factor"])
        old = float(rs["original_max_position_embeddings"])
        low_wl, high_wl = old / low, old / high
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = (~(wavelen < high_wl)) & (~(wavelen > low_wl))
        return torch.where(medium, smoothed, inv_l)
    raise ValueError("unsupported rope_scaling type %r" % kind)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class RefModel:
    """Llama-family decoder over a flat weight dict; forward returns logits [T, vocab]."""

    def __init__(self, cfg, w, dtype=torch.float64):
        self.cfg, self.w, self.dtype = cfg, w, dtype
        self.d = cfg["hidden_size"]
        self.n_layers = cfg["num_hidden_layers"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.head_dim = cfg.get("head_dim") or self.d // self.n_heads
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.bs = int(cfg.get("attn_res_block_size") or 0)
        mode = cfg.get("attn_res_mode")
        if mode == "full":
            self.mode = "full"
        elif self.bs > 0 and mode in (None, "block"):
            self.mode = "block"
        elif self.bs <= 0 and mode in (None, "block", "none"):
            self.mode = "standard"
        else:
            raise ValueError("unsupported attn_res_mode %r" % mode)
        if "lm_head.weight" in w and not cfg.get("tie_word_embeddings", False):
            self.head = w["lm_head.weight"]
        else:
            self.head = w["model.embed_tokens.weight"]
        self.inv_freq = rope_inv_freq(cfg, self.head_dim).to(dtype)

    def _p(self, name):
        return self.w[name]

    # --- sublayers (input: the already-mixed h, before the sublayer's PreNorm) -----------------
    def attn(self, l, h):
        pre = "model.layers.%d." % l
        x = rms_norm(h, self._p(pre + "input_layernorm.weight"), self.eps)
        T = x.shape[0]
        hd = self.head_dim

        def proj(n):
            y = x @ self._p(pre + "self_attn.%s_proj.weight" % n).t()
            b = self.w.get(pre + "self_attn.%s_proj.bias" % n)
            return y if b is None else y + b
        q = proj("q").view(T, self.n_heads, hd)
        k = proj("k").view(T, self.n_kv, hd)
        v = proj("v").view(T, self.n_kv, hd)
        if pre + "self_attn.q_norm.weight" in self.w:
            q = rms_norm(q, self._p(pre + "self_attn.q_norm.weight"), self.eps)
        if pre + "self_attn.k_norm.weight" in self.w:
            k = rms_norm(k, self._p(pre + "self_attn.k_norm.weight"), self.eps)
        pos = torch.arange(T, dtype=self.dtype)
        ang = torch.outer(pos, self.inv_freq)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.n_heads // self.n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        s = s.masked_fill(mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        o = torch.einsum("hqk,khd->qhd", p, v).reshape(T, self.n_heads * hd)
        y = o @ self._p(pre + "self_attn.o_proj.weight").t()
        b = self.w.get(pre + "self_attn.o_proj.bias")
        return y if b is None else y + b

    def mlp(self, l, h):
        pre = "model.layers.%d." % l
        x = rms_norm(h, self._p(pre + "post_attention_layernorm.weight"), self.eps)
        g = x @ self._p(pre + "mlp.gate_proj.weight").t()
        u = x @ self._p(pre + "mlp.up_proj.weight").t()
        return (torch.nn.functional.silu(g) * u) @ self._p(pre + "mlp.down_proj.weight").t()

    # --- one AttnRes mix (ATTNRES.md §2) ---------------------------------------------------------
    def mix(self, sources, prefix_name, record):
        gamma = self._p(prefix_name + "_norm.weight").reshape(-1)
        wq = self._p(prefix_name + "_proj.weight").reshape(-1)
        alpha, h = mix_sources(sources, gamma * wq, self.eps)
        if record is not None:
            record.append(alpha)
        return h

    # --- the forward pass ----------------------------------------------------------------------
    def forward(self, ids, record=None):
        """ids: list of ints. Returns logits [T, vocab]. record: list to receive alphas [T, n]."""
        hidden = self._p("model.embed_tokens.weight")[torch.tensor(ids, dtype=torch.long)]
        if self.mode == "standard":
            for l in range(self.n_layers):
                hidden = hidden + self.attn(l, hidden)
                hidden = hidden + self.mlp(l, hidden)
            h = hidden
        elif self.mode == "block":
            h = self._forward_block(hidden, record)
        else:
            h = self._forward_full(hidden, record)
        h = rms_norm(h, self._p("model.norm.weight"), self.eps)
        return h @ self.head.t()

    def _forward_block(self, hidden, record):
        # Written the way ATTNRES.md §3 writes it.
        Bs, bank = self.bs, []
        for l in range(self.n_layers):
            L = "model.layers.%d." % l
            prefix = hidden
            if bank:
                h = self.mix(bank + [prefix], L + "self_attention_res", record)
            else:
                h = hidden
                if record is not None:
                    record.append(torch.ones(hidden.shape[0], 1, dtype=hidden.dtype))
            if l % Bs == 0:
                bank.append(prefix)
                prefix = None
            a = self.attn(l, h)
            prefix = a if prefix is None else prefix + a
            h = self.mix(bank + [prefix], L + "mlp_res", record)
            hidden = prefix + self.mlp(l, h)
        return self.mix(bank + [hidden], "model.output_attn_res", record)

    def _forward_full(self, hidden, record):
        # Every sublayer output is its own source (bank before each sublayer).
        bank, prefix = [], hidden
        for s in range(2 * self.n_layers):
            l, is_mlp = s // 2, s % 2 == 1
            name = "model.layers.%d.%s" % (l, "mlp_res" if is_mlp else "self_attention_res")
            if bank:
                h = self.mix(bank + [prefix], name, record)
            else:
                h = prefix
                if record is not None:
                    record.append(torch.ones(prefix.shape[0], 1, dtype=prefix.dtype))
            bank.append(prefix)
            prefix = self.mlp(l, h) if is_mlp else self.attn(l, h)
        return self.mix(bank + [prefix], "model.output_attn_res", record)


def mix_sources(sources, u, eps):
    """sources: list of [T, d]; u = gamma*w [d]. Returns (alpha [T, n], h [T, d])."""
    v = torch.stack(sources, dim=0)                       # [n, T, d]
    r = torch.rsqrt(v.pow(2).mean(-1) + eps)              # [n, T]
    s = r * (v @ u)                                       # [n, T]   no 1/sqrt(d)
    alpha = torch.softmax(s, dim=0)                       # over sources
    h = (alpha.unsqueeze(-1) * v).sum(0)                  # raw values
    return alpha.t().contiguous(), h


# ----------------------------------------------------------------------------- public helpers

def load(model_dir, dtype=torch.float64):
    cfg, w = load_model_dir(model_dir, dtype)
    return RefModel(cfg, w, dtype)


def logits(model, ids):
    with torch.no_grad():
        return model.forward(list(ids))


def mix_weights(model, ids):
    """List of [T, n_i] tensors, forward order attn0, mlp0, attn1, ..., final. [] for standard."""
    rec = []
    with torch.no_grad():
        model.forward(list(ids), record=rec)
    return rec if model.mode != "standard" else []


def greedy(model, ids, n):
    ids = list(ids)
    out = []
    for _ in range(n):
        nxt = int(torch.argmax(logits(model, ids)[-1]).item())
        out.append(nxt)
        ids.append(nxt)
    return out


# ----------------------------------------------------------------------------- self test

def _random_model(seed, mode, bs=0, L=4, d=32, H=4, KV=2, hd=8, V=50, ff=48, qk_norm=False,
                  zero_queries=False, eps=1e-6):
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale
    cfg = {"hidden_size": d, "num_hidden_layers": L, "num_attention_heads": H,
           "num_key_value_heads": KV, "head_dim": hd, "vocab_size": V, "intermediate_size": ff,
           "rms_norm_eps": eps, "rope_theta": 10000.0, "tie_word_embeddings": False}
    if mode == "block":
        cfg["attn_res_block_size"] = bs
    if mode == "full":
        cfg["attn_res_mode"] = "full"
        cfg["attn_res_block_size"] = 1
    w = {"model.embed_tokens.weight": rnd(V, d, scale=1.0), "model.norm.weight": 1 + rnd(d),
         "lm_head.weight": rnd(V, d)}
    for l in range(L):
        p = "model.layers.%d." % l
        w[p + "self_attn.q_proj.weight"] = rnd(H * hd, d)
        w[p + "self_attn.k_proj.weight"] = rnd(KV * hd, d)
        w[p + "self_attn.v_proj.weight"] = rnd(KV * hd, d)
        w[p + "self_attn.o_proj.weight"] = rnd(d, H * hd)
        w[p + "mlp.gate_proj.weight"] = rnd(ff, d)
        w[p + "mlp.up_proj.weight"] = rnd(ff, d)
        w[p + "mlp.down_proj.weight"] = rnd(d, ff)
        w[p + "input_layernorm.weight"] = 1 + rnd(d)
        w[p + "post_attention_layernorm.weight"] = 1 + rnd(d)
        if qk_norm:
            w[p + "self_attn.q_norm.weight"] = 1 + rnd(hd)
            w[p + "self_attn.k_norm.weight"] = 1 + rnd(hd)
    names = ["model.output_attn_res"]
    for l in range(L):
        names += ["model.layers.%d.self_attention_res" % l, "model.layers.%d.mlp_res" % l]
    for n in names:
        w[n + "_norm.weight"] = 1 + rnd(d)
        w[n + "_proj.weight"] = torch.zeros(1, d, dtype=torch.float64) if zero_queries else rnd(1, d)
    return cfg, w


def selftest():
    ok = True

    def check(name, cond, detail=""):
        nonlocal ok
        ok &= bool(cond)
        print("%-60s %s %s" % (name, "PASS" if cond else "FAIL", detail))

    # Scale probe (ATTNRES.md §6).
    src = [torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64),
           torch.tensor([[0.0, 1, 0, 0]], dtype=torch.float64)]
    u = torch.tensor([2.0, 0, 0, 0], dtype=torch.float64)
    _, h = mix_sources(src, u, 1e-30)
    want = torch.tensor([0.9820138, 0.0179862, 0, 0], dtype=torch.float64)
    check("scale probe -> [0.9820138, 0.0179862, 0, 0]", torch.allclose(h[0], want, atol=1e-7),
          str([round(float(x), 7) for x in h[0]]))
    x = torch.randn(5, 16, dtype=torch.float64)
    a, h = mix_sources([x], torch.randn(16, dtype=torch.float64), 1e-6)
    check("single source is the identity", torch.equal(h, x) and torch.equal(a, torch.ones(5, 1,
          dtype=torch.float64)))

    # Zero-query equivalence: Block (several Bs) and Full vs standard, same other weights.
    ids = [3, 17, 5, 41, 0, 9, 22, 8, 13, 1, 44]
    for qk in (False, True):
        cfg, w = _random_model(7, "standard", qk_norm=qk, eps=1e-12)
        ref = RefModel(cfg, w).forward(ids)
        for mode, bs in (("block", 1), ("block", 2), ("block", 3), ("block", 4), ("block", 8),
                         ("full", 0)):
            cfg2, w2 = _random_model(7, mode, bs=bs, qk_norm=qk, zero_queries=True, eps=1e-12)
            out = RefModel(cfg2, w2).forward(ids)
            diff = float((out - ref).abs().max())
            check("zero queries == standard (%s Bs=%d qk_norm=%s)" % (mode, bs, qk), diff < 1e-9,
                  "max|diff|=%.2e" % diff)
    # With nonzero queries the models must differ (the mixes are live).
    cfg, w = _random_model(7, "standard")
    ref = RefModel(cfg, w).forward(ids)
    cfg2, w2 = _random_model(7, "block", bs=2)
    diff = float((RefModel(cfg2, w2).forward(ids) - ref).abs().max())
    check("nonzero queries change the logits", diff > 1e-3, "max|diff|=%.2e" % diff)

    # Source counts (ATTNRES.md §3) and the Full count rule.
    for L, Bs in ((4, 1), (4, 2), (5, 2), (7, 3)):
        cfg, w = _random_model(3, "block", bs=Bs, L=L)
        m = RefModel(cfg, w)
        rec = mix_weights(m, ids[:4])
        want = []
        for l in range(L):
            want.append(1 if l == 0 else (l - 1) // Bs + 2)
            want.append(l // Bs + 2)
        want.append(-(-L // Bs) + 1)
        got = [r.shape[1] for r in rec]
        sums = max(float((r.sum(1) - 1).abs().max()) for r in rec)
        check("block source counts L=%d Bs=%d" % (L, Bs), got == want and sums < 1e-12, str(got))
    cfg, w = _random_model(3, "full", L=3)
    got = [r.shape[1] for r in mix_weights(RefModel(cfg, w), ids[:4])]
    check("full source counts L=3", got == [1, 2, 3, 4, 5, 6, 7], str(got))

    # safetensors round trip incl. bf16, sharded index and language_model. prefix.
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cfg, w = _random_model(5, "block", bs=2)
        items = sorted(w.items())
        bf = {}
        for k, v in items:
            f32 = v.to(torch.float32).numpy()
            bits = f32.view(np.uint32)
            bf[k] = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        half = len(items) // 2
        shards = {"model-00001-of-00002.safetensors": items[:half],
                  "model-00002-of-00002.safetensors": items[half:]}
        wm = {}
        for fn, its in shards.items():
            write_safetensors(os.path.join(tmp, fn),
                              {"language_model." + k: ("BF16", bf[k]) for k, _ in its})
            wm.update({"language_model." + k: fn for k, _ in its})
        with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": wm}, f)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(cfg, f)
        cfg3, w3 = load_model_dir(tmp)
        same = set(w3) == set(w)
        err = max(float((w3[k] - w[k]).abs().max() / (w[k].abs().max() + 1e-30)) for k in w)
        check("safetensors bf16 sharded round trip", same and err < 1e-2, "rel err %.1e" % err)
    # llama3 rope scaling sanity: unchanged high freqs, divided low freqs.
    inv0 = rope_inv_freq({"rope_theta": 500000.0}, 128)
    inv3 = rope_inv_freq({"rope_theta": 500000.0, "rope_scaling": {
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}}, 128)
    check("llama3 rope scaling", torch.allclose(inv3[0], inv0[0]) and
          torch.allclose(inv3[-1], inv0[-1] / 8))
    print("SELFTEST", "OK" if ok else "FAILED")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--ids", default="1,2,3")
    ap.add_argument("--dtype", default="float64")
    args = ap.parse_args()
    if args.selftest:
        sys.exit(0 if selftest() else 1)
    if args.model:
        m = load(args.model, getattr(torch, args.dtype))
        ids = [int(x) for x in args.ids.split(",")]
        lg = logits(m, ids)
        print("mode", m.mode, "logits", tuple(lg.shape), "argmax", lg.argmax(-1).tolist())
        for i, a in enumerate(mix_weights(m, ids)):
            print("mix", i, [round(float(x), 4) for x in a[-1]])
        return
    ap.print_help()


if __name__ == "__main__":
    main()
