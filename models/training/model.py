"""The demo model: a Llama-family decoder with Block Attention Residuals (docs ATTNRES.md) or a
standard residual stream, with Hugging Face / Kimi K3 tensor names so state_dict() exports as-is.

Owns the training-time forward pass and the config <-> HF config.json mapping. Does not own data,
optimisation or file formats. Works on PyTorch 1.13 (CPU smoke test) and 2.x.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


class ResMix(nn.Module):
    """One AttnRes mix: key RMSNorm gain (γ) and pseudo-query w ([1, d] Linear weight), zero-init."""

    def __init__(self, d, eps):
        super().__init__()
        self.norm = RMSNorm(d, eps)      # only its weight (γ) is used: u = γ ⊙ w
        self.proj = nn.Linear(d, 1, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.eps = eps

    def forward(self, sources, return_alpha=False):
        v = torch.stack([s.float() for s in sources], dim=0)          # [n, ..., d] fp32
        u = self.norm.weight.float() * self.proj.weight.float()[0]    # [d]
        r = torch.rsqrt(v.pow(2).mean(-1) + self.eps)                 # [n, ...]
        s = r * (v * u).sum(-1)     # no 1/sqrt(d); elementwise so autocast keeps it in fp32
        alpha = torch.softmax(s, dim=0)
        h = (alpha.unsqueeze(-1) * v).sum(0).to(sources[-1].dtype)   # raw values
        return (h, alpha) if return_alpha else h


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        d = c["hidden_size"]
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv, self.hd).transpose(1, 2)
        q = (q * cos + rotate_half(q) * sin).to(v.dtype)
        k = (k * cos + rotate_half(k) * sin).to(v.dtype)
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1)
            o = torch.softmax(s.float().masked_fill(mask, float("-inf")), -1).to(v.dtype) @ v
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.h * self.hd))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c, attnres):
        super().__init__()
        eps = c["rms_norm_eps"]
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], eps)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], eps)
        if attnres:
            # Registered as self_attention_res_{norm,proj} / mlp_res_{norm,proj} (see _rename).
            self.self_attention_res = ResMix(c["hidden_size"], eps)
            self.mlp_res = ResMix(c["hidden_size"], eps)


class Inner(nn.Module):
    def __init__(self, c, attnres):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c, attnres) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        if attnres:
            self.output_attn_res = ResMix(c["hidden_size"], c["rms_norm_eps"])


class AttnResLM(nn.Module):
    """c: HF-style config dict (see hf_config). Block AttnRes iff attn_res_block_size > 0."""

    def __init__(self, c, dropout=0.0):
        super().__init__()
        self.c = c
        self.bs = int(c.get("attn_res_block_size") or 0)
        self.model = Inner(c, self.bs > 0)
        self.tied = bool(c.get("tie_word_embeddings", True))
        if not self.tied:
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.drop = nn.Dropout(dropout)
        hd = c["head_dim"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        self.register_buffer("inv_freq", inv.float(), persistent=False)
        self._init_weights()

    def _init_weights(self):
        std = 0.02
        L = self.c["num_hidden_layers"]
        for name, p in self.named_parameters():
            if name.endswith("_res.proj.weight"):
                nn.init.zeros_(p)                 # zero pseudo-queries: uniform mixes at init
            elif p.dim() == 2:
                s = std / math.sqrt(2 * L) if name.endswith(("o_proj.weight", "down_proj.weight")) \
                    else std
                nn.init.normal_(p, 0.0, s)
            else:
                nn.init.ones_(p)                  # RMSNorm gains (incl. the mixes' γ)

    def rope(self, T, device, dtype):
        pos = torch.arange(T, device=device, dtype=torch.float32)
        ang = torch.outer(pos, self.inv_freq.to(device))
        emb = torch.cat((ang, ang), -1)
        return emb.cos()[None, None].to(dtype), emb.sin()[None, None].to(dtype)

    def hidden_states(self, ids, record=None):
        """ids [B, T] -> final hidden before model.norm. record: list receiving alphas."""
        m = self.model
        x = m.embed_tokens(ids)
        cos, sin = self.rope(ids.shape[1], ids.device, torch.float32)

        def attn(l, h):
            return self.drop(m.layers[l].self_attn(m.layers[l].input_layernorm(h), cos, sin))

        def mlp(l, h):
            return self.drop(m.layers[l].mlp(m.layers[l].post_attention_layernorm(h)))

        def mix(mod, srcs):
            if record is None:
                return mod(srcs)
            h, a = mod(srcs, return_alpha=True)
            record.append(a)
            return h

        if self.bs <= 0:
            hidden = x
            for l in range(len(m.layers)):
                hidden = hidden + attn(l, hidden)
                hidden = hidden + mlp(l, hidden)
            return hidden
        # Block AttnRes, ATTNRES.md §3.
        hidden, bank = x, []
        for l in range(len(m.layers)):
            layer = m.layers[l]
            prefix = hidden
            if bank:
                h = mix(layer.self_attention_res, bank + [prefix])
            else:
                h = hidden
                if record is not None:
                    record.append(torch.ones((1,) + hidden.shape[:-1], device=hidden.device))
            if l % self.bs == 0:
                bank.append(prefix)
                prefix = None
            a = attn(l, h)
            prefix = a if prefix is None else prefix + a
            h = mix(layer.mlp_res, bank + [prefix])
            hidden = prefix + mlp(l, h)
        return mix(m.output_attn_res, bank + [hidden])

    def forward(self, ids, targets=None, record=None):
        h = self.model.norm(self.hidden_states(ids, record))
        w = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        logits = F.linear(h, w)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    # --- HF names -------------------------------------------------------------------------------
    def hf_state_dict(self):
        out = {}
        for k, v in self.state_dict().items():
            if self.tied and k == "lm_head.weight":
                continue
            out[_rename(k)] = v
        return out

    def load_hf_state_dict(self, sd):
        inv = {_rename(k): k for k in self.state_dict()}
        self.load_state_dict({inv[k]: v for k, v in sd.items()}, strict=True)


def _rename(k):
    for mod in ("self_attention_res", "mlp_res", "output_attn_res"):
        k = k.replace(mod + ".norm.", mod + "_norm.").replace(mod + ".proj.", mod + "_proj.")
    return k


def hf_config(d=384, layers=8, heads=6, kv_heads=2, head_dim=64, ff=1024, vocab=8192, ctx=512,
              block_size=2, rope_theta=10000.0, eps=1e-5, bos=0, eos=0):
    c = {
        "architectures": ["AttnResLlamaForCausalLM" if block_size > 0 else "LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
        "rope_theta": rope_theta, "rms_norm_eps": eps, "vocab_size": vocab,
        "max_position_embeddings": ctx, "tie_word_embeddings": True,
        "bos_token_id": bos, "eos_token_id": eos, "hidden_act": "silu",
        "torch_dtype": "bfloat16", "attention_bias": False, "mlp_bias": False,
    }
    if block_size > 0:
        c["attn_res_block_size"] = block_size
        c["attn_res_mode"] = "block"
    return c


def count_params(model):
    return sum(p.numel() for p in model.parameters())
