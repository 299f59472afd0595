#!/usr/bin/env python3
"""scripts/trace_compare.py on hand-made traces: what each kernel is charged (the time from the
latest end before it to its own end), medians over steps, families, spans, the preset filter."""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "trace_compare.py")
spec = importlib.util.spec_from_file_location("trace_compare", SCRIPT)
trace_compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trace_compare)


def row(preset, what, step, i, start, dur, name):
    # The --trace columns: preset, what, step, kernel, start, duration, gap, stream, grid, block,
    # name (gap, stream, grid and block are not read).
    return f"{preset}\t{what}\t{step}\t{i}\t{start}\t{dur}\t0\t7\t1x1\t128\t{name}\n"


class TraceCompareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "t.tsv")
        lines = []
        for step, extra in enumerate([0.0, 2.0, 4.0]):  # step 1 is the median
            # a: 0-2; b (launched early under PDL) 1-5: charged 3; a gap, then c 6-7: charged 2.
            lines += [row("m", "decode batch 64, ctx 512", step, 0, 0, 2, "Gemv<1, 2>"),
                      row("m", "decode batch 64, ctx 512", step, 1, 1, 4, "Flash<64>"),
                      row("m", "decode batch 64, ctx 512", step, 2, 6, 1 + extra,
                          "ResidualBoundaryKernel<1, 8, true>")]
            # Preset n: a second-stream kernel inside b's span is charged nothing.
            lines += [row("n", "decode batch 64, ctx 512", step, 0, 0, 2, "Gemv<1, 2>"),
                      row("n", "decode batch 64, ctx 512", step, 1, 1, 4, "Flash<64>"),
                      row("n", "decode batch 64, ctx 512", step, 2, 2, 1, "Side"),
                      row("n", "decode batch 64, ctx 512", step, 3, 6, 1 + extra,
                          "ResidualBoundaryKernel<1, 8, false>")]
        lines.append(row("m", "decode batch 1, ctx 512", 0, 0, 0, 9, "Gemv<1, 2>"))
        with open(self.path, "w") as f:
            f.writelines(lines)

    def tearDown(self):
        self.dir.cleanup()

    def test_charges_and_spans(self):
        name, charged, span, steps = trace_compare.read_side(self.path + ":m", "decode batch 64")
        self.assertEqual(steps, 3)
        self.assertEqual(charged, {"Gemv": 2.0, "Flash": 3.0,
                                   "ResidualBoundaryKernel<1, 8, true>": 4.0})
        self.assertEqual(span, 9.0)  # step 1: 0 to 9
        self.assertTrue(name.endswith(":m"))

    def test_second_stream_inside_a_kernel_is_free(self):
        _, charged, _, _ = trace_compare.read_side(self.path + ":n", "decode batch 64")
        self.assertEqual(charged["Side"], 0.0)

    def test_first_preset_by_default_and_what_filter(self):
        name, charged, span, steps = trace_compare.read_side(self.path, "decode batch 1")
        self.assertEqual((steps, span, charged), (1, 9.0, {"Gemv": 9.0}))
        self.assertTrue(name.endswith(":m"))

    def test_command_line(self):
        out = subprocess.run([sys.executable, SCRIPT, self.path + ":m", self.path + ":n"],
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("+0.0  span", out)
        self.assertIn("ResidualBoundaryKernel<1, 8, false>", out)
        missing = subprocess.run([sys.executable, SCRIPT, self.path + ":x", self.path],
                                 capture_output=True, text=True)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("no steps of x", missing.stderr)


if __name__ == "__main__":
    unittest.main()
