"""Evaluates an exported model directory (bf16 weights upcast to fp32, fp32 forward with model.py) on
the held-out TinyStories validation prefix (valid.bin; never trained on), and optionally writes the
bundled model's golden file and sample generations.

    python3 models/training/eval.py --model DIR --data T [--golden tests/data/golden/bundled.json]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import Tok  # noqa: E402
from export import read_dir  # noqa: E402
from model import AttnResLM  # noqa: E402

GOLDEN_PROMPTS = ["Once upon a time", "The little dog was very happy because",
                  "Lily and Tom went to the park. They saw"]


def load(model_dir, device):
    cfg, sd = read_dir(model_dir)
    m = AttnResLM(cfg).to(device)
    m.load_hf_state_dict({k: v.to(device) for k, v in sd.items()})
    m.eval()
    return m


@torch.no_grad()
def heldout_loss(m, valid, ctx, device, batch=32, max_windows=0):
    n = (valid.size - 1) // ctx
    if max_windows:
        n = min(n, max_windows)
    tot, cnt = 0.0, 0
    for i in range(0, n, batch):
        rows = [valid[j * ctx: j * ctx + ctx + 1] for j in range(i, min(n, i + batch))]
        x = torch.from_numpy(np.stack(rows).astype(np.int64)).to(device)
        logits = m(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                 x[:, 1:].reshape(-1), reduction="sum")
        tot += float(loss)
        cnt += x[:, 1:].numel()
    return tot / cnt, cnt


@torch.no_grad()
def greedy(m, ids, n, device):
    ids = list(ids)
    out = []
    for _ in range(n):
        lg = m(torch.tensor([ids], device=device))[0, -1]
        t = int(lg.argmax())
        out.append(t)
        ids.append(t)
    return out


@torch.no_grad()
def sample(m, ids, n, device, temp=0.8, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    ids = list(ids)
    for _ in range(n):
        lg = m(torch.tensor([ids[-512:]], device=device))[0, -1].float().cpu() / temp
        t = int(torch.multinomial(torch.softmax(lg, -1), 1, generator=g))
        if t == m.c["eos_token_id"]:
            break
        ids.append(t)
    return ids


@torch.no_grad()
def golden(m, tok, device, out_path, keep_last=4, n_greedy=16):
    bos = m.c["bos_token_id"]
    prompts = [[bos] + tok.encode(p) for p in GOLDEN_PROMPTS]
    res = {"model": "attnres-tiny-stories", "dtype": "float32", "weights_dtype": "bfloat16",
           "note": "model.py fp32 forward on the exported bf16 weights (upcast); logits kept for "
                   "the last positions only (see positions); prompts start with BOS",
           "prompt_texts": GOLDEN_PROMPTS, "prompts": prompts, "positions": [], "logits": [],
           "greedy": [], "greedy_text": []}
    for i, p in enumerate(prompts):
        rec = [] if i == 0 else None
        lg = m(torch.tensor([p], device=device), record=rec)[0].float().cpu()
        pos = list(range(max(0, len(p) - keep_last), len(p)))
        res["positions"].append(pos)
        res["logits"].append([[round(float(x), 6) for x in lg[j]] for j in pos])
        if i == 0:
            res["mix_weights"] = [a[:, 0, :].t().cpu().tolist() for a in rec]
        g = greedy(m, p, n_greedy, device)
        res["greedy"].append(g)
        res["greedy_text"].append(tok.decode(g))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    json.dump(res, open(out_path, "w"), separators=(",", ":"))
    print("golden -> %s; greedy(%r) = %r" % (out_path, GOLDEN_PROMPTS[0], res["greedy_text"][0]))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", default="", help="default: MODEL/tokenizer.json if present")
    ap.add_argument("--golden", default="")
    ap.add_argument("--result", default="", help="write eval JSON here")
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--no-loss", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    m = load(a.model, a.device)
    valid = np.fromfile(os.path.join(a.data, "valid.bin"), dtype=np.uint16)
    ctx = m.c["max_position_embeddings"]
    out = {"model": a.model, "ctx": ctx}
    if not a.no_loss:
        loss, n = heldout_loss(m, valid, ctx, a.device)
        out.update({"heldout_loss": loss, "heldout_ppl": math.exp(loss), "heldout_tokens": n})
        # The first 64 windows are the subset train.py logs during training (comparability).
        out["heldout_loss_first64"] = heldout_loss(m, valid, ctx, a.device, max_windows=64)[0]
        print("eval %s: held-out loss %.4f ppl %.2f over %d tokens (first 64 windows: %.4f)"
              % (a.model, loss, math.exp(loss), n, out["heldout_loss_first64"]))
    tkp = a.tokenizer or os.path.join(a.model, "tokenizer.json")
    tok = Tok(tkp if os.path.exists(tkp) else None)
    if a.golden:
        golden(m, tok, a.device, a.golden)
    if a.samples:
        out["samples"] = []
        for s in range(a.samples):
            ids = sample(m, [m.c["bos_token_id"]] + tok.encode("Once upon a time"), 120, a.device,
                         seed=s)
            out["samples"].append(tok.decode(ids[1:]))
            print("sample %d: %s" % (s, out["samples"][-1].replace("\n", " | ")))
    if a.result:
        json.dump(out, open(a.result, "w"), indent=1)


if __name__ == "__main__":
    main()
