"""Trains one demo model (Block AttnRes or its standard-residual twin) on train.bin.

Owns the optimisation: epoch-shuffled non-overlapping windows (seeded, so twins with the same seed see
identical batches in identical order), AdamW, warmup + cosine, bf16 autocast on CUDA, a wall-clock
budget. Progress for the schedule is max(step/steps, elapsed/budget), so the cosine always completes
and the run always ends inside the budget (if the budget binds, the log says so).

    python3 models/training/train.py --data T --arch attnres --seed 1 --out T/attnres_s1
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import AttnResLM, count_params, hf_config  # noqa: E402


def batches(stream, ctx, batch, seed):
    n = (stream.size - 1) // ctx
    idx = np.arange(n)
    rng = np.random.RandomState(seed)
    epoch = 0
    while True:
        perm = rng.permutation(idx)
        for i in range(0, n - batch + 1, batch):
            rows = [stream[j * ctx: j * ctx + ctx + 1] for j in perm[i:i + batch]]
            yield epoch, torch.from_numpy(np.stack(rows).astype(np.int64))
        epoch += 1


@torch.no_grad()
def evaluate(model, stream, ctx, device, max_windows=None, batch=32):
    """Mean next-token loss over non-overlapping ctx windows of a token stream."""
    model.eval()
    n = (stream.size - 1) // ctx
    if max_windows:
        n = min(n, max_windows)
    tot, cnt = 0.0, 0
    for i in range(0, n, batch):
        rows = [stream[j * ctx: j * ctx + ctx + 1] for j in range(i, min(n, i + batch))]
        x = torch.from_numpy(np.stack(rows).astype(np.int64)).to(device)
        with autocast(device):
            _, loss = model(x[:, :-1], x[:, 1:])
        tot += float(loss) * x.shape[0] * ctx
        cnt += x.shape[0] * ctx
    model.train()
    return tot / max(cnt, 1)


def autocast(device):
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()


def lr_at(progress, warm_frac, lr, min_lr):
    if progress < warm_frac:
        return lr * progress / warm_frac
    p = min(1.0, (progress - warm_frac) / (1 - warm_frac))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", choices=["attnres", "standard"], default="attnres")
    ap.add_argument("--block-size", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--ff", type=int, default=1024)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=float, default=6.0)
    ap.add_argument("--steps", type=int, default=0, help="overrides --epochs")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=float, default=0.05, help="fraction of the run")
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--time-budget", type=float, default=330.0, help="seconds, training loop")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-windows", type=int, default=64)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()

    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    stats = json.load(open(os.path.join(a.data, "data_stats.json")))
    train = np.fromfile(os.path.join(a.data, "train.bin"), dtype=np.uint16)
    valid = np.fromfile(os.path.join(a.data, "valid.bin"), dtype=np.uint16)
    cfg = hf_config(d=a.d, layers=a.layers, heads=a.heads, kv_heads=a.kv_heads,
                    head_dim=a.head_dim, ff=a.ff, vocab=stats["vocab_size"], ctx=a.ctx,
                    block_size=a.block_size if a.arch == "attnres" else 0,
                    bos=stats["eot"], eos=stats["eot"])
    torch.manual_seed(a.seed)
    model = AttnResLM(cfg, dropout=a.dropout).to(a.device)
    n_params = count_params(model)
    tokens_per_step = a.batch * a.ctx
    steps = a.steps or max(1, int(a.epochs * train.size / tokens_per_step))
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "_res.proj" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "_res.proj" not in n)]
    kw = {"fused": True} if a.device.startswith("cuda") else {}
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, **kw)
    fwd = torch.compile(model) if a.compile else model
    print("[%s s%d] params %.2fM, %d steps x %d tokens = %.1fM tokens (%.2f epochs of %d)"
          % (a.arch, a.seed, n_params / 1e6, steps, tokens_per_step, steps * tokens_per_step / 1e6,
             steps * tokens_per_step / train.size, train.size), flush=True)
    curve, it = [], batches(train, a.ctx, a.batch, a.seed)
    t0, step, run_loss, budget_bound, window = time.time(), 0, None, False, []
    while True:
        elapsed = time.time() - t0
        progress = max(step / steps, elapsed / a.time_budget)
        if progress >= 1.0:
            budget_bound = step < steps
            break
        lr = lr_at(progress, a.warmup, a.lr, a.min_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        epoch, xy = next(it)
        xy = xy.to(a.device, non_blocking=True)
        with autocast(a.device):
            _, loss = fwd(xy[:, :-1], xy[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0 or step == 1:
            window.append(float(loss))
        if step % a.eval_every == 0 or step == steps:
            run_loss = sum(window) / max(1, len(window))   # mean train loss since last eval
            window = []
            vl = evaluate(model, valid, a.ctx, a.device, a.eval_windows)
            curve.append({"step": step, "tokens": step * tokens_per_step, "epoch": epoch,
                          "train_loss": round(run_loss, 4), "heldout_loss_subset": round(vl, 4),
                          "lr": lr, "elapsed_s": round(time.time() - t0, 1)})
            print("[%s s%d] step %d/%d ep %d train %.4f heldout(sub) %.4f lr %.2e %.0fs"
                  % (a.arch, a.seed, step, steps, epoch, run_loss, vl, lr, time.time() - t0),
                  flush=True)
    train_s = time.time() - t0
    if window:
        run_loss = sum(window) / len(window)
    sd = {k: v.detach().float().cpu() for k, v in model.hf_state_dict().items()}
    torch.save({"config": cfg, "state_dict": sd}, os.path.join(a.out, "ckpt.pt"))
    log = {"arch": a.arch, "seed": a.seed, "params": n_params, "steps_planned": steps,
           "steps": step, "tokens": step * tokens_per_step, "tokens_per_step": tokens_per_step,
           "epochs": step * tokens_per_step / train.size, "train_s": round(train_s, 1),
           "total_s": round(time.time() - t_start, 1), "budget_bound": budget_bound,
           "final_train_loss": run_loss, "curve": curve, "args": vars(a), "config": cfg}
    json.dump(log, open(os.path.join(a.out, "train_log.json"), "w"), indent=1)
    print("[%s s%d] done: %d steps, %.1fM tokens, %.0fs, final train loss %.4f%s"
          % (a.arch, a.seed, step, step * tokens_per_step / 1e6, train_s, run_loss,
             " (BUDGET BOUND)" if budget_bound else ""), flush=True)


if __name__ == "__main__":
    main()
