"""Tests of compare.py's arithmetic: the model FLOPs per token, the MFU
denominators (fp32 lines over the SGEMM peak, bf16 lines over the bf16 GEMM
peak) and the parsing of Go benchmark lines. Run by TestBenchScripts in
internal/engine/model, or directly:

    cd scripts/torchref && /usr/bin/python3 -m unittest -v test_compare"""
import unittest

import compare


class ModelFlops(unittest.TestCase):
    def test_by_hand(self):
        # d 256, ffn 1024, vocab 4096, 4 layers: N = 4 (4 d^2 + 3 d f) + d V.
        n = 4 * (4 * 256 * 256 + 3 * 256 * 1024) + 256 * 4096
        self.assertEqual(n, 5242880)
        attn = 4 * 4 * 256 * (128 + 1) / 2
        f = compare.model_flops()
        self.assertEqual(f["forward"], 2 * n + attn)
        self.assertEqual(f["forward"], 10749952)
        self.assertEqual(f["train_full"], 3 * 10749952)
        self.assertEqual(f["train_lora"], 4 * n + 3 * attn)
        self.assertEqual(f["decode_b1"], f["decode_b8"])
        # 16 prompt tokens and 128 new ones, per new token: a little over 2N.
        self.assertGreater(f["decode_b1"], 2 * n)
        self.assertLess(f["decode_b1"], 2 * n * 16 / 128 + 2 * n + 4 * 4 * 256 * 144)


class MFU(unittest.TestCase):
    peaks = {"sgemm": 100e9, "bf16gemm": 400e9}

    def test_each_precision_uses_its_peak(self):
        cases = [
            ("fp32", 10000, 10749952, 107.49952, "sgemm"),
            ("bf16", 10000, 10749952, 26.87488, "bf16gemm"),
            ("bf16", 40000, 1e6, 10.0, "bf16gemm"),
        ]
        for prec, tok_s, flops, want, peak in cases:
            with self.subTest(prec=prec, tok_s=tok_s):
                got, name = compare.mfu(tok_s, flops, prec, self.peaks)
                self.assertAlmostEqual(got, want, places=6)
                self.assertEqual(name, peak)

    def test_unknown_precision(self):
        with self.assertRaises(KeyError):
            compare.mfu(1, 1, "fp16", self.peaks)

    def test_row(self):
        line = compare.row("forward", (20000, "bf16", "2"), (10000, "fp32", "1"), 1e6, self.peaks, 2048, 4096)
        # Tailor: 2e10 / 4e11 = 5 % of the bf16 peak; torch: 1e10 / 1e11 = 10 % of SGEMM's.
        self.assertEqual(line, "forward 20000 bf16 2 10000 fp32 1 2.00 5% bf16gemm 10% sgemm 2 4")


class GoLines(unittest.TestCase):
    def test_parse(self):
        cases = [
            ("BenchmarkForward/threads=1/precision=bf16-2         \t       3\t 120383086 ns/op\t"
             "      16218 best_tok/s\t      8506 tok/s", ("Forward", "1", "bf16", "16218", "8506")),
            ("BenchmarkDecodeB8/threads=2/precision=fp32-2 \t 3\t 5 ns/op\t 2885.5 best_tok/s\t 2000 tok/s",
             ("DecodeB8", "2", "fp32", "2885.5", "2000")),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                m = compare.LINE.match(text)
                self.assertIsNotNone(m)
                self.assertEqual(m.groups(), want)
        self.assertIsNone(compare.LINE.match("PASS"))


if __name__ == "__main__":
    unittest.main()
