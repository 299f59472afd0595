#!/usr/bin/env python3
"""Compares decode or prefill steps traced by `attnres-gpu-bench --trace FILE` (bench/kernel_trace.h).

    scripts/trace_compare.py A.tsv[:PRESET] B.tsv[:PRESET] [--what "decode batch 64"]

For each side, the steps of the measurement whose name starts with --what (of PRESET, or of the
file's first preset) are read. Each kernel is charged the time from the previous kernel's end
(the latest end so far) to its own end: what it added to the step's critical path, so a kernel
launched early under programmatic dependent launch is not charged for its wait, and one that runs
beside another on a second stream only for what sticks out. Charges are summed per kernel family
(the name up to its template arguments; the residual-boundary kernels keep theirs, which say
which form ran) and the median over the traced steps is printed for both sides, with the
difference, largest first, then the steps' spans (first start to last end).
"""
import argparse
import collections
import statistics
import sys

# Column order of the --trace file.
PRESET, WHAT, STEP, START_US, DUR_US, NAME = 0, 1, 2, 4, 5, 10


def family(name):
    base = name.split("<")[0]
    return name if base == "ResidualBoundaryKernel" else base


def read_side(spec, what):
    path, _, preset = spec.partition(":")
    steps = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            row = line.rstrip("\n").split("\t")
            if len(row) <= NAME:
                continue
            if not preset:
                preset = row[PRESET]
            if row[PRESET] != preset or not row[WHAT].startswith(what):
                continue
            key = (row[WHAT], int(row[STEP]))
            steps[key].append((float(row[START_US]), float(row[DUR_US]), row[NAME]))
    if not steps:
        sys.exit(f"{spec}: no steps of {preset or 'any preset'} named '{what}...'")
    charges = collections.defaultdict(list)
    spans = []
    for kernels in steps.values():
        kernels.sort()
        per_family = collections.defaultdict(float)
        latest = kernels[0][0]
        for start, dur, name in kernels:
            end = start + dur
            per_family[family(name)] += max(0.0, end - latest)
            latest = max(latest, end)
        spans.append(latest - kernels[0][0])
        for fam, us in per_family.items():
            charges[fam].append(us)
    n = len(steps)
    # A family missing from some steps counts 0 there.
    medians = {fam: statistics.median(v + [0.0] * (n - len(v))) for fam, v in charges.items()}
    return f"{path}:{preset}", medians, statistics.median(spans), n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--what", default="decode batch 64",
                   help="measurement name prefix (default: %(default)s)")
    args = p.parse_args()
    name_a, a, span_a, n_a = read_side(args.a, args.what)
    name_b, b, span_b, n_b = read_side(args.b, args.what)
    print(f"A: {name_a} ({n_a} steps)\nB: {name_b} ({n_b} steps)")
    print(f"{'A us':>10} {'B us':>10} {'B - A':>9}  kernel family")
    for fam in sorted(set(a) | set(b), key=lambda f: -(b.get(f, 0.0) - a.get(f, 0.0))):
        x, y = a.get(fam, 0.0), b.get(fam, 0.0)
        print(f"{x:10.1f} {y:10.1f} {y - x:+9.1f}  {fam[:90]}")
    print(f"{sum(a.values()):10.1f} {sum(b.values()):10.1f} {sum(b.values()) - sum(a.values()):+9.1f}"
          "  charged in all")
    print(f"{span_a:10.1f} {span_b:10.1f} {span_b - span_a:+9.1f}  span, first start to last end"
          f" ({100.0 * (span_b / span_a - 1.0):+.1f}%)")


if __name__ == "__main__":
    main()
