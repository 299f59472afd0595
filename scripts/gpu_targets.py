#!/usr/bin/env python3
"""Issue #4's speed targets, judged from one suite's benchmark output.

    scripts/gpu_targets.py GPU_BENCH.md [KERNEL_BENCH.md]

GPU_BENCH.md is what `attnres-gpu-bench` printed for the presets (scripts/gpu_run.sh appends
them all to $OUT/gpu_bench.md); KERNEL_BENCH.md, `attnres-kernel-bench`'s output, adds the
kernel-level cost of the AttnRes mixes of a 4096-token 8B prefill. Prints one markdown table:

- batch-1 decode against the bandwidth bound (weight + KV bytes read per step at the H200's
  4.28 TB/s; target 85%), per preset, with the card's own copy speed beside it;
- what Block AttnRes adds to each step (the "-block" preset against its standard twin) at
  batch 1 and 64 and for the 4096-token prefill, timed and traced span (target: at most 2%);
- the mixes of a 4096-token 8B prefill at kernel level against the standard 8B prefill;
- the 8B prefill's fraction of the bf16 GEMM peak (target 60%);
- 8B decode throughput at 256 sequences (reported).

The targets are set for the H200. On another card each verdict says it holds on that card's
terms only, and batch-1 decode is judged against the card's own measured copy speed instead of
the H200's bound. Rows missing from the input are left out.
"""
import argparse
import re
import sys

DECODE_BOUND_TARGET = 85.0  # % of the bandwidth bound, batch-1 decode
ATTNRES_COST_TARGET = 2.0  # % of the standard model's step
PREFILL_PEAK_TARGET = 60.0  # % of the bf16 GEMM peak, 8B prefill of 4096 tokens

ROW = re.compile(r"^\|\s*(?P<preset>[\w.-]+)\s*\|\s*(?P<what>[^|]+?)\s*\|\s*(?P<ms>[\d.]+) ms\s*\|"
                 r"\s*(?P<vs>.*?)\s*\|\s*$")
CARD = re.compile(r"^(?P<card>[^:|]+): copy (?P<copy>[\d.]+) TB/s measured")
MIXES = re.compile(r"^\| \.\.\. each block the faster way \| (?P<ms>[\d.]+) ms")


def read_bench(lines):
    """Returns (card, {(preset, what): (ms, vs)}) from attnres-gpu-bench output."""
    card, rows = None, {}
    for line in lines:
        m = CARD.match(line)
        if m and card is None:
            card = m.group("card").strip()
        m = ROW.match(line)
        if m:
            rows[(m.group("preset"), m.group("what"))] = (float(m.group("ms")), m.group("vs"))
    return card, rows


def read_mixes_ms(lines):
    """The kernel bench's sum of the 8B prefill's mixes (each block the faster way), or None."""
    for line in lines:
        m = MIXES.match(line)
        if m:
            return float(m.group("ms"))
    return None


def percent(pattern, text):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


def verdict(ok, on_h200):
    word = "met" if ok else "missed"
    return word if on_h200 else f"{word} on this card's terms (the target is judged on an H200)"


def targets(card, rows, mixes_ms):
    """The table's rows: (target, figure, status)."""
    on_h200 = card is not None and "H200" in card
    out = []
    presets = []
    for preset, _ in rows:
        if preset not in presets:
            presets.append(preset)

    for preset in presets:
        row = rows.get((preset, "decode batch 1, ctx 512"))
        if not row:
            continue
        ms, vs = row
        bound = percent(r"([\d.]+)% of bound", vs)
        own = percent(r"\(([\d.]+)% of this card's\)", vs)
        if bound is None:
            continue
        figure = f"{ms:.3f} ms: {bound:.1f}% of bound"
        judged = bound
        if own is not None and not on_h200:  # the bound is the H200's: judge by the card's copy
            figure += f" ({own:.1f}% of this card's copy)"
            judged = own
        out.append((f"{preset} batch-1 decode at {DECODE_BOUND_TARGET:.0f}% of the bound", figure,
                    verdict(judged >= DECODE_BOUND_TARGET, on_h200)))

    for preset in presets:
        if preset.endswith("-block") or (preset + "-block") not in presets:
            continue
        block = preset + "-block"
        for what, label in (("decode batch 1, ctx 512", "batch-1 decode"),
                            ("decode batch 64, ctx 512", "batch-64 decode"),
                            ("prefill 4096 tokens", "4096-token prefill")):
            std, blk = rows.get((preset, what)), rows.get((block, what))
            if not std or not blk:
                continue
            cost = 100.0 * (blk[0] / std[0] - 1.0)
            figure = f"{blk[0]:.3f} against {std[0]:.3f} ms: {cost:+.1f}%"
            costs = [cost]
            std_span, blk_span = rows.get((preset, what + " span")), rows.get((block, what + " span"))
            if std_span and blk_span:
                span_cost = 100.0 * (blk_span[0] / std_span[0] - 1.0)
                figure += f" (span {span_cost:+.1f}%)"
                costs.append(span_cost)
            out.append((f"AttnRes at most {ATTNRES_COST_TARGET:.0f}% of {preset}'s {label}",
                        figure, verdict(max(costs) <= ATTNRES_COST_TARGET, on_h200)))

    prefill_8b = rows.get(("llama-8b", "prefill 4096 tokens"))
    if prefill_8b and mixes_ms is not None:
        share = 100.0 * mixes_ms / prefill_8b[0]
        out.append((f"the 8B prefill's AttnRes mixes at most {ATTNRES_COST_TARGET:.0f}% "
                    "(kernel level)",
                    f"{mixes_ms:.3f} of {prefill_8b[0]:.2f} ms: {share:.1f}%",
                    verdict(share <= ATTNRES_COST_TARGET, on_h200)))
    if prefill_8b:
        peak = percent(r"= ([\d.]+)% of peak", prefill_8b[1])
        if peak is not None:
            out.append((f"llama-8b prefill of 4096 tokens at {PREFILL_PEAK_TARGET:.0f}% of the "
                        "bf16 peak", f"{prefill_8b[0]:.2f} ms: {peak:.1f}%",
                        verdict(peak >= PREFILL_PEAK_TARGET, on_h200)))

    for preset in ("llama-8b", "llama-8b-block"):
        row = rows.get((preset, "decode batch 256, ctx 512"))
        if row:
            tok = percent(r"([\d.]+) tok/s", row[1])
            if tok is not None:
                out.append((f"{preset} decode, 256 sequences of 512 tokens",
                            f"{row[0]:.3f} ms a step, {tok:.0f} tok/s", "reported"))
    return out


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gpu_bench")
    parser.add_argument("kernel_bench", nargs="?")
    args = parser.parse_args(argv)
    mixes_ms = None
    try:
        with open(args.gpu_bench) as f:
            card, rows = read_bench(f)
        if args.kernel_bench:
            with open(args.kernel_bench) as f:
                mixes_ms = read_mixes_ms(f)
    except OSError as e:  # a missing or unreadable output: say which, no traceback
        print(f"{e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    table = targets(card, rows, mixes_ms)
    if not table:
        print(f"{args.gpu_bench}: no benchmark rows to judge", file=sys.stderr)
        return 1
    print(f"Issue #4's targets on {card or 'an unnamed card'}:")
    print("| target | figure | status |")
    print("|---|---|---|")
    for target, figure, status in table:
        print(f"| {target} | {figure} | {status} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
