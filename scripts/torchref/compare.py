"""Engine speed check: runs the Go benchmarks (internal/engine/model) and
bench.py on the same machine, alternating, and prints one line per case

    case tailor_tok_s tailor_precision tailor_threads torch_tok_s torch_precision torch_threads ratio tailor_mfu tailor_peak torch_mfu torch_peak tailor_rss_mib torch_rss_mib

for train_full, train_lora, forward, decode_b1 and decode_b8 (--cases
picks some). Each side's number is the fastest single step of its best
setting over --rounds alternating rounds (on a shared machine the fastest
step is the least disturbed estimate, and alternating keeps a change in
load from favouring one side); the precision and threads columns say which
setting gave it. Both sides run every case in fp32 and in bf16 (Tailor's
gemm.BF16 where the CPU has AVX512_BF16; PyTorch under
torch.autocast("cpu", dtype=torch.bfloat16)), and each side's number is
its faster precision, so a bf16 PyTorch cannot hide behind an fp32 one.
ratio = tailor / torch.

MFU is model-FLOPs utilisation: the case's model FLOPs per token (below)
times tok/s, over the peak of the precision that setting computed in,
measured in the same run: fp32 lines over the SGEMM peak (the fastest
1024^3 fp32 torch.mm over 1 and 2 threads and every round, "# sgemm"),
bf16 lines over the bf16 GEMM peak (the same product on bf16 tensors,
oneDNN's bf16 matmul, "# bf16gemm"). The tailor_peak and torch_peak
columns name the peak each MFU used. Model FLOPs per token, with N the
weights every token multiplies (4 layers x (4 d^2 + 3 d f) + the tied LM
head d V = 5.24 M) and A = 4 d c per layer for attention scores and values
over c positions:
    forward     2N + A (c = (128 + 1) / 2, the causal half)
    train_full  3 (2N + A): forward, gradients of activations and weights
    train_lora  4N + 3A: frozen weights get no gradient (LoRA's r = 8
                products, under 4 % more, are not counted)
    decode_bB   the greedy call's total (16 prompt tokens with c = 8.5,
                then 128 new with c = 16 + (128 + 1) / 2) per new token.
The RSS columns are the peak resident memory of the process that ran the
case (each case runs in its own process on both sides). A header line gives
OPENBLAS_CORETYPE and the load average; the per-setting numbers are printed
as # lines.

usage (from the repository root; `make bench-engine` runs it):
    /usr/bin/python3 scripts/torchref/compare.py [--iters 5] [--rounds 3] [--cases decode_b8,...]
    make bench-engine BENCH_ENGINE_ARGS="--cases decode_b8 --rounds 1"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CFG, BATCH, SEQ, PROMPT, NEW  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = {"TrainFull": "train_full", "TrainLoRA": "train_lora", "Forward": "forward",
         "DecodeB1": "decode_b1", "DecodeB8": "decode_b8"}
LINE = re.compile(r"Benchmark(\w+)/threads=(\d+)(?:/precision=(\w+))?\S*\s+\d+\s+\d+ ns/op\s+([\d.]+) best_tok/s"
                  r"\s+([\d.]+) tok/s")


def run_rss(cmd, **kw):
    """Runs cmd, returns (stdout, peak RSS in KiB of that process)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kw)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed with status {p.returncode}:\n{out}")
    return out, ru.ru_maxrss


def model_flops():
    """FLOPs per token of each case; see the module comment."""
    d, f, v, layers = CFG["hidden"], CFG["intermediate"], CFG["vocab"], CFG["layers"]
    n = layers * (4 * d * d + 3 * d * f) + d * v
    attn = lambda c: layers * 4 * d * c  # noqa: E731
    fwd = 2 * n + attn((SEQ + 1) / 2)
    decode = (PROMPT * (2 * n + attn((PROMPT + 1) / 2)) + NEW * (2 * n + attn(PROMPT + (NEW + 1) / 2))) / NEW
    return {"forward": fwd, "train_full": 3 * fwd, "train_lora": 4 * n + 3 * attn((SEQ + 1) / 2),
            "decode_b1": decode, "decode_b8": decode}


def better(best, case, tok_s, prec, threads):
    if tok_s > best.get(case, (0,))[0]:
        best[case] = (tok_s, prec, threads)


PEAK_NAMES = {"fp32": "sgemm", "bf16": "bf16gemm"}


def mfu(tok_s, flops_per_token, prec, peaks):
    """Model-FLOPs utilisation in percent, over the peak (FLOP/s) of the
    precision the setting computed in, and the name of that peak."""
    name = PEAK_NAMES[prec]
    return 100 * tok_s * flops_per_token / peaks[name], name


def row(case, tailor, torch, flops, peaks, trss_kib, prss_kib):
    """One result line: each side's (tok/s, precision, threads), the case's
    FLOPs per token, the peaks by name (FLOP/s), peak RSS in KiB."""
    (t, tp, tt), (p, pp, pt) = tailor, torch
    tm, tpk = mfu(t, flops, tp, peaks)
    pm, ppk = mfu(p, flops, pp, peaks)
    return (f"{case} {t:.0f} {tp} {tt} {p:.0f} {pp} {pt} {t / p:.2f} {tm:.0f}% {tpk} {pm:.0f}% {ppk} "
            f"{trss_kib / 1024:.0f} {prss_kib / 1024:.0f}")


def go_bench(binary, iters, cases, best, rss):
    for name, case in CASES.items():
        if case not in cases:
            continue
        out, kib = run_rss([binary, "-test.run=^$", f"-test.bench=^Benchmark{name}$", f"-test.benchtime={iters}x"],
                           cwd=os.path.join(ROOT, "internal/engine/model"))
        rss[case] = max(rss.get(case, 0), kib)
        for line in out.splitlines():
            m = LINE.match(line)
            if m:
                prec = m.group(3) or "fp32"
                print(f"# tailor {case} {prec} threads={m.group(2)} best {float(m.group(4)):.0f} "
                      f"mean {float(m.group(5)):.0f}")
                better(best, case, float(m.group(4)), prec, m.group(2))


def torch_bench(iters, cases, best, rss):
    out = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--threads", "1,2", "--iters", str(iters),
                          "--cases", ",".join(cases), "--precision", "fp32,bf16"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        name, threads, mean, fastest, kib = line.split()
        case, _, prec = name.partition("@")
        prec = prec or "fp32"
        print(f"# torch {case} {prec} threads={threads} best {fastest} mean {mean}")
        better(best, case, float(fastest), prec, threads)
        rss[case] = max(rss.get(case, 0), int(kib))


def measure_peaks(peaks):
    """Raises peaks["sgemm"] and peaks["bf16gemm"] (FLOP/s) to this round's
    fastest 1024^3 products over 1 and 2 threads."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--threads", "1,2", "--peak"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        name, threads, gflops = line.split()
        print(f"# {name} threads={threads} {gflops} GFLOPS")
        peaks[name] = max(peaks.get(name, 0.0), float(gflops) * 1e9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES.values()))
    a = ap.parse_args()
    cases = a.cases.split(",")
    for c in cases:
        if c not in CASES.values():
            sys.exit(f"--cases: unknown case {c!r} (known: {', '.join(CASES.values())})")
    env = " ".join(f"{k}={os.environ.get(k, 'unset')}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS"))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# {env} cores={os.cpu_count()} load_average={load} (shared machine: other jobs may be running)")
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "model.test")
        subprocess.run(["go", "test", "-c", "-o", binary, "./internal/engine/model/"], cwd=ROOT, check=True)
        tailor, torch, trss, prss = {}, {}, {}, {}
        peaks = {}
        for r in range(a.rounds):
            print(f"# round {r + 1}", flush=True)
            measure_peaks(peaks)
            go_bench(binary, a.iters, cases, tailor, trss)
            torch_bench(a.iters, cases, torch, prss)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# load_average at the end={load}; peaks: sgemm {peaks['sgemm'] / 1e9:.1f} GFLOPS (fp32 lines), "
          f"bf16gemm {peaks['bf16gemm'] / 1e9:.1f} GFLOPS (bf16 lines)")
    flops = model_flops()
    print("case tailor_tok_s tailor_precision tailor_threads torch_tok_s torch_precision torch_threads ratio "
          "tailor_mfu tailor_peak torch_mfu torch_peak tailor_rss_mib torch_rss_mib")
    for case in CASES.values():
        if case in tailor and case in torch:
            print(row(case, tailor[case], torch[case], flops[case], peaks, trss[case], prss[case]))


if __name__ == "__main__":
    main()
