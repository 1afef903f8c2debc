"""Engine speed check: runs the Go benchmarks (internal/engine/model) and
bench.py on the same machine, one after the other, and prints

    case tailor_tok_s torch_tok_s ratio

using, on both sides, the fastest single step of the best thread setting
over --rounds alternating rounds (on a shared machine the fastest step is
the least disturbed estimate, and alternating keeps a change in load from
favouring one side). The per-setting numbers are printed first.

usage (from the repository root):
    /usr/bin/python3 scripts/torchref/compare.py [--iters 5] [--rounds 3]"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GO_CASES = {"TrainFull": "train_full", "TrainLoRA": "train_lora", "Forward": "forward"}


def go_bench(iters):
    out = subprocess.run(["go", "test", "-run=^$", "-bench=.", f"-benchtime={iters}x", "./internal/engine/model/"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    best = {}
    for line in out.splitlines():
        m = re.match(r"Benchmark(\w+)/threads=(\d+)\S*\s+\d+\s+\d+ ns/op\s+([\d.]+) best_tok/s\s+([\d.]+) tok/s", line)
        if m:
            case = GO_CASES[m.group(1)]
            print(f"tailor {case} threads={m.group(2)} best {float(m.group(3)):.0f} mean {float(m.group(4)):.0f}")
            best[case] = max(best.get(case, 0), float(m.group(3)))
    return best


def torch_bench(iters):
    out = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--iters", str(iters)],
                         capture_output=True, text=True, check=True).stdout
    best = {}
    for line in out.splitlines():
        case, threads, mean, fastest = line.split()
        print(f"torch {case} threads={threads} best {fastest} mean {mean}")
        best[case] = max(best.get(case, 0), float(fastest))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS") if k in os.environ)
    print(f"# environment: {env or 'OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS unset'}")
    tailor, torch = {}, {}
    for r in range(a.rounds):
        print(f"# round {r + 1}")
        for side, got in ((tailor, go_bench(a.iters)), (torch, torch_bench(a.iters))):
            for k, v in got.items():
                side[k] = max(side.get(k, 0), v)
    print("case tailor_tok_s torch_tok_s ratio")
    for case in GO_CASES.values():
        if case in tailor and case in torch:
            print(f"{case} {tailor[case]:.0f} {torch[case]:.0f} {tailor[case] / torch[case]:.2f}")


if __name__ == "__main__":
    main()
