#!/usr/bin/env python3
"""Writes golden logits for a model directory with the independent float64 reference.

Output JSON: {model, dtype, mode, prompts, logits (all positions), mix_weights (first prompt, forward
order attn0, mlp0, ..., final; [] for standard), greedy (8 tokens per prompt)}. If transformers is
importable and the model is a standard one, also cross-checks against LlamaForCausalLM.

    python3 tests/reference/make_golden.py --model tests/data/models/tiny_block \
        --out tests/data/golden/tiny_block.json
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attnres_ref as ref  # noqa: E402

PROMPT_LENGTHS = (1, 7, 19)


def make_prompts(vocab, seed=1234, lengths=PROMPT_LENGTHS):
    rng = np.random.RandomState(seed)
    return [[int(x) for x in rng.randint(0, vocab, size=n)] for n in lengths]


def cross_check_transformers(model_dir, model, prompts):
    try:
        import transformers
    except Exception as e:  # not installed here
        print("transformers unavailable (%s): cross-check skipped" % type(e).__name__)
        return None
    try:
        hf = transformers.LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float64)
    except TypeError:
        hf = transformers.LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float64)
    hf.eval()
    worst = 0.0
    for p in prompts:
        with torch.no_grad():
            a = hf(torch.tensor([p])).logits[0].double()
        b = ref.logits(model, p)
        worst = max(worst, float((a - b).abs().max()))
    print("cross-check vs transformers %s LlamaForCausalLM: max|diff| = %.3e"
          % (transformers.__version__, worst))
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--greedy", type=int, default=8)
    ap.add_argument("--no-hf", action="store_true")
    args = ap.parse_args()
    model = ref.load(args.model, torch.float64)
    vocab = int(model.cfg["vocab_size"])
    prompts = make_prompts(vocab)
    out = {"model": os.path.basename(os.path.normpath(args.model)), "dtype": "float64",
           "mode": model.mode, "prompts": prompts, "logits": [], "greedy": []}
    for p in prompts:
        out["logits"].append(ref.logits(model, p).tolist())
        out["greedy"].append(ref.greedy(model, p, args.greedy))
    out["mix_weights"] = [a.tolist() for a in ref.mix_weights(model, prompts[0])]
    if model.mode == "standard" and not args.no_hf:
        d = cross_check_transformers(args.model, model, prompts)
        if d is not None:
            out["hf_max_abs_diff"] = d
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote %s (%s, %d prompts, greedy %s)" % (args.out, model.mode, len(prompts),
                                                    out["greedy"]))


if __name__ == "__main__":
    main()
