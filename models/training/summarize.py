"""Collects train_log.json / eval.json of every run under WORK into card_numbers.json, cross-checks the
bundled export against the independent float64 reference (tests/reference/attnres_ref.py), and prints
the results table (last thing printed by run_all.sh).

    python3 models/training/summarize.py --work T --bundled DIR --out T/card_numbers.json
"""
import argparse
import glob
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))


def cross_check(bundled, golden_path):
    import attnres_ref as ref
    g = json.load(open(golden_path))
    m = ref.load(bundled, torch.float64)
    worst, rel = 0.0, 0.0
    for p, pos, lg in zip(g["prompts"], g["positions"], g["logits"]):
        r = ref.logits(m, p)[pos]
        a = torch.tensor(lg, dtype=torch.float64)
        worst = max(worst, float((r - a).abs().max()))
        rel = max(rel, float((r - a).norm() / r.norm()))
    return {"ref_vs_modelpy_max_abs": worst, "ref_vs_modelpy_rel_l2": rel,
            "ref_greedy_ok": ref.greedy(m, g["prompts"][0], 16) == g["greedy"][0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bundled", default="")
    ap.add_argument("--golden", default="")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = {}
    for d in sorted(glob.glob(os.path.join(a.work, "*_s*"))):
        if not os.path.isdir(d):
            continue
        name = os.path.basename(d)
        r = {}
        if os.path.exists(os.path.join(d, "train_log.json")):
            r["train"] = json.load(open(os.path.join(d, "train_log.json")))
        if os.path.exists(os.path.join(d, "eval.json")):
            r["eval"] = json.load(open(os.path.join(d, "eval.json")))
        runs[name] = r
    res = {"runs": runs}
    stats_p = os.path.join(a.work, "data_stats.json")
    if os.path.exists(stats_p):
        res["data"] = json.load(open(stats_p))
    if a.bundled and a.golden and os.path.exists(a.golden):
        try:
            res["crosscheck"] = cross_check(a.bundled, a.golden)
        except Exception as e:  # report, never fail the run
            res["crosscheck"] = {"error": repr(e)}
    json.dump(res, open(a.out, "w"), indent=1)
    print("\n%-12s %8s %6s %9s %7s %8s %10s %9s %8s" % (
        "run", "params", "steps", "tokens", "epochs", "train_s", "train_loss", "heldout", "ppl"))
    for name, r in runs.items():
        t, e = r.get("train", {}), r.get("eval", {})
        print("%-12s %7.2fM %6s %8.1fM %7.2f %8s %10.4f %9.4f %8.2f" % (
            name, t.get("params", 0) / 1e6, t.get("steps", "-"), t.get("tokens", 0) / 1e6,
            t.get("epochs", 0), t.get("train_s", "-"), t.get("final_train_loss") or float("nan"),
            e.get("heldout_loss", float("nan")), e.get("heldout_ppl", float("nan"))))
    for arch in ("attnres", "standard"):
        ls = [r["eval"]["heldout_loss"] for n, r in runs.items() if n.startswith(arch) and "eval" in r]
        if ls:
            mu = sum(ls) / len(ls)
            print("%-9s mean held-out loss %.4f (ppl %.2f) over %d seed(s)" % (arch, mu, math.exp(mu),
                                                                             len(ls)))
    if "crosscheck" in res:
        print("crosscheck:", json.dumps(res["crosscheck"]))


if __name__ == "__main__":
    main()
