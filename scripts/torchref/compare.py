"""Engine speed check: runs the Go benchmarks (internal/engine/model) and
bench.py on the same machine, alternating, and prints one line per case

    case tailor_tok_s torch_tok_s ratio tailor_rss_mib torch_rss_mib

for train_full, train_lora, forward, decode_b1 and decode_b8, using on
both sides the fastest single step of the best thread setting (1 or 2
threads) over --rounds alternating rounds (on a shared machine the fastest
step is the least disturbed estimate, and alternating keeps a change in
load from favouring one side). ratio = tailor / torch. The RSS columns are
the peak resident memory of the process that ran the case (each case runs
in its own process on both sides). A header line gives OPENBLAS_CORETYPE
and the load average; the per-setting numbers are printed as # lines.

usage (from the repository root; `make bench-engine` runs it):
    /usr/bin/python3 scripts/torchref/compare.py [--iters 5] [--rounds 3]"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = {"TrainFull": "train_full", "TrainLoRA": "train_lora", "Forward": "forward",
         "DecodeB1": "decode_b1", "DecodeB8": "decode_b8"}
LINE = re.compile(r"Benchmark(\w+)/threads=(\d+)\S*\s+\d+\s+\d+ ns/op\s+([\d.]+) best_tok/s\s+([\d.]+) tok/s")


def run_rss(cmd, **kw):
    """Runs cmd, returns (stdout, peak RSS in KiB of that process)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kw)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed with status {p.returncode}:\n{out}")
    return out, ru.ru_maxrss


def go_bench(binary, iters, best, rss):
    for name, case in CASES.items():
        out, kib = run_rss([binary, "-test.run=^$", f"-test.bench=^Benchmark{name}$", f"-test.benchtime={iters}x"],
                           cwd=os.path.join(ROOT, "internal/engine/model"))
        rss[case] = max(rss.get(case, 0), kib)
        for line in out.splitlines():
            m = LINE.match(line)
            if m:
                print(f"# tailor {case} threads={m.group(2)} best {float(m.group(3)):.0f} mean {float(m.group(4)):.0f}")
                best[case] = max(best.get(case, 0), float(m.group(3)))


def torch_bench(iters, best, rss):
    out = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--threads", "1,2", "--iters", str(iters),
                          "--cases", ",".join(CASES.values())], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        case, threads, mean, fastest, kib = line.split()
        print(f"# torch {case} threads={threads} best {fastest} mean {mean}")
        best[case] = max(best.get(case, 0), float(fastest))
        rss[case] = max(rss.get(case, 0), int(kib))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    env = " ".join(f"{k}={os.environ.get(k, 'unset')}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS"))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# {env} cores={os.cpu_count()} load_average={load} (shared machine: other jobs may be running)")
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "model.test")
        subprocess.run(["go", "test", "-c", "-o", binary, "./internal/engine/model/"], cwd=ROOT, check=True)
        tailor, torch, trss, prss = {}, {}, {}, {}
        for r in range(a.rounds):
            print(f"# round {r + 1}", flush=True)
            go_bench(binary, a.iters, tailor, trss)
            torch_bench(a.iters, torch, prss)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# load_average at the end={load}")
    print("case tailor_tok_s torch_tok_s ratio tailor_rss_mib torch_rss_mib")
    for case in CASES.values():
        if case in tailor and case in torch:
            print(f"{case} {tailor[case]:.0f} {torch[case]:.0f} {tailor[case] / torch[case]:.2f} "
                  f"{trss[case] / 1024:.0f} {prss[case] / 1024:.0f}")


if __name__ == "__main__":
    main()
