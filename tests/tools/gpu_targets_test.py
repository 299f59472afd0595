#!/usr/bin/env python3
"""scripts/gpu_targets.py on hand-made benchmark output: each target's figure and verdict, the
Block-against-standard costs (timed and span), the kernel-level prefill mixes, another card's
wording, and missing rows left out."""
import contextlib
import importlib.util
import io
import os
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_targets.py")
spec = importlib.util.spec_from_file_location("gpu_targets", SCRIPT)
gpu_targets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_targets)


def header(card, copy):
    return [f"{card}: copy {copy} TB/s measured (read + write); the bound is the H200's 4.28 TB/s",
            "| model           | measurement                        | step time    | vs ceiling |",
            "|---|---|---|---|"]


def row(preset, what, ms, vs):
    return f"| {preset:<15} | {what:<34} | {ms:9.3f} ms | {vs} |"


def decode(preset, batch, ms, bound, own, span_ms):
    what = f"decode batch {batch}, ctx 512"
    return [row(preset, what, ms, f"3.50 TB/s = {bound}% of bound ({own}% of this card's); "
                f"{batch / ms * 1e3:.0f} tok/s"),
            row(preset, what + " span", span_ms, "traced: 262 kernels, first start to last end")]


def prefill(preset, ms, peak):
    return [row(preset, "prefill 4096 tokens", ms,
                f"550 TFLOP/s GEMM-model = {peak}% of peak (+1.1 TFLOP attn)")]


# An H200 suite: the 8B pair in full, the 1B standard model alone (no Block twin to compare).
H200 = (header("NVIDIA H200", "4.31") +
        decode("llama-8b", 1, 4.000, 88.1, 87.5, 3.990) + decode("llama-8b", 64, 6.000, 70.0, 69.5,
                                                                 5.900) +
        decode("llama-8b", 256, 13.000, 60.0, 59.6, 12.900) + prefill("llama-8b", 100.0, 70.2) +
        header("NVIDIA H200", "4.30") +
        decode("llama-8b-block", 1, 4.060, 86.8, 86.2, 4.030) +
        decode("llama-8b-block", 64, 6.180, 68.0, 67.5, 5.950) +
        decode("llama-8b-block", 256, 13.100, 59.5, 59.1, 13.000) +
        prefill("llama-8b-block", 103.0, 68.2) +
        decode("llama-1b", 1, 0.931, 62.5, 62.0, 0.911))
KERNELS = ["NVIDIA H200: copy 4.31 TB/s measured (read + write); rows are against the H200's",
           "| prefill block 7 (8 slots): one-phase / two-phase | 0.500 / 0.400 ms | two-phase |",
           "| AttnRes mixes of a 4096-token prefill (8B, 8 blocks), one-phase | 2.974 ms | sum |",
           "| ... each block the faster way | 2.500 ms | |"]


class GpuTargetsTest(unittest.TestCase):
    def table(self, bench, kernels=None):
        card, rows = gpu_targets.read_bench(bench)
        mixes = gpu_targets.read_mixes_ms(kernels) if kernels else None
        return card, {t: (f, s) for t, f, s in gpu_targets.targets(card, rows, mixes)}

    def test_h200_suite(self):
        card, t = self.table(H200, KERNELS)
        self.assertEqual(card, "NVIDIA H200")
        self.assertEqual(t["llama-8b batch-1 decode at 85% of the bound"],
                         ("4.000 ms: 88.1% of bound", "met"))
        self.assertEqual(t["llama-1b batch-1 decode at 85% of the bound"],
                         ("0.931 ms: 62.5% of bound", "missed"))
        # 4.06 / 4.00: +1.5% timed, 4.03 / 3.99: +1.0% span.
        self.assertEqual(t["AttnRes at most 2% of llama-8b's batch-1 decode"],
                         ("4.060 against 4.000 ms: +1.5% (span +1.0%)", "met"))
        # +3.0% timed but +0.8% span: the worse of the two decides.
        self.assertEqual(t["AttnRes at most 2% of llama-8b's batch-64 decode"],
                         ("6.180 against 6.000 ms: +3.0% (span +0.8%)", "missed"))
        self.assertEqual(t["AttnRes at most 2% of llama-8b's 4096-token prefill"],
                         ("103.000 against 100.000 ms: +3.0%", "missed"))
        self.assertEqual(t["the 8B prefill's AttnRes mixes at most 2% (kernel level)"],
                         ("2.500 of 100.00 ms: 2.5%", "missed"))
        self.assertEqual(t["llama-8b prefill of 4096 tokens at 60% of the bf16 peak"],
                         ("100.00 ms: 70.2%", "met"))
        self.assertEqual(t["llama-8b decode, 256 sequences of 512 tokens"],
                         ("13.000 ms a step, 19692 tok/s", "reported"))
        self.assertEqual(t["llama-8b-block decode, 256 sequences of 512 tokens"][1], "reported")
        # The 1B has no Block twin here: no cost rows for it.
        self.assertFalse(any("llama-1b's" in k for k in t))

    def test_without_the_kernel_bench_the_mixes_row_is_left_out(self):
        _, t = self.table(H200)
        self.assertNotIn("the 8B prefill's AttnRes mixes at most 2% (kernel level)", t)
        self.assertIn("llama-8b prefill of 4096 tokens at 60% of the bf16 peak", t)

    def test_another_card_is_judged_by_its_own_copy(self):
        bench = (header("NVIDIA H100 80GB HBM3", "3.02") +
                 decode("llama-8b", 1, 5.286, 66.6, 94.5, 5.277) +
                 decode("llama-1b", 1, 1.067, 54.5, 77.6, 1.052))
        card, t = self.table(bench)
        self.assertEqual(card, "NVIDIA H100 80GB HBM3")
        figure, status = t["llama-8b batch-1 decode at 85% of the bound"]
        self.assertEqual(figure, "5.286 ms: 66.6% of bound (94.5% of this card's copy)")
        self.assertTrue(status.startswith("met on this card's terms"), status)
        self.assertTrue(t["llama-1b batch-1 decode at 85% of the bound"][1].startswith("missed"))

    def test_main_prints_the_table_and_fails_without_rows_or_files(self):
        with tempfile.TemporaryDirectory() as d:
            bench, kernels, empty = (os.path.join(d, n) for n in ("g.md", "k.md", "e.md"))
            for path, lines in ((bench, H200), (kernels, KERNELS), (empty, ["no CUDA device"])):
                with open(path, "w") as f:
                    f.write("\n".join(lines) + "\n")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(gpu_targets.main([bench, kernels]), 0)
            lines = out.getvalue().splitlines()
            self.assertEqual(lines[0], "Issue #4's targets on NVIDIA H200:")
            self.assertEqual(lines[1], "| target | figure | status |")
            self.assertIn("| llama-8b batch-1 decode at 85% of the bound | 4.000 ms: 88.1% of "
                          "bound | met |", lines)
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(gpu_targets.main([empty]), 1)
                missing = os.path.join(d, "missing.md")
                self.assertEqual(gpu_targets.main([bench, missing]), 1)
            self.assertIn(f"{empty}: no benchmark rows to judge", err.getvalue())
            self.assertIn(f"{missing}: No such file or directory", err.getvalue())


if __name__ == "__main__":
    unittest.main()
