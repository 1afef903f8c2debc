"""Torch side of the engine speed check: the benchmark model (Llama layout,
d_model 256, 4 layers, 4 heads, ffn 1024, vocab 4096, tied embeddings) on
batches of 8 x 128 tokens, same cases as `go test -bench` in
internal/engine/model: train_full, train_lora (r=8 on every linear),
forward, and greedy generation with a KV cache (decode.py) at batch 1 and
8, prompts of 16 tokens, 128 new tokens, prefill included (decode_b1,
decode_b8; tok/s counts new tokens). Prints one line per case and thread
count:

    case threads torch_tok_s torch_best_tok_s peak_rss_kib

(mean over --iters steps, the fastest single step: on a shared machine
the fastest step is the least disturbed estimate, and the interpreter's
peak resident memory).

With --precision bf16 every case runs under torch.autocast("cpu",
dtype=torch.bfloat16): matrix products in bf16 through oneDNN with fp32
accumulation (AVX512_BF16 where the CPU has it), fp32 master weights; the
case column then reads e.g. "train_full@bf16". --peak prints instead the
machine's matrix-product peaks, the MFU denominators of compare.py:
"sgemm threads gflops", the fastest of 1024x1024x1024 fp32 matrix products
(OpenBLAS), and "bf16gemm threads gflops", the fastest of the same product
on bf16 tensors with a bf16 result (oneDNN's bf16 matmul, the library
Tailor's bf16 products use, with no fp32 conversion in the timed call).

Each case and thread count runs in its own interpreter with OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS set to it, because torch.set_num_threads does not limit the
OpenBLAS pool that torch's matrix products use; "default" runs with the
environment as it is (here: 1 intra-op thread, OpenBLAS using every core).

usage: /usr/bin/python3 bench.py [--threads default,1,2] [--iters 10] [--precision fp32,bf16] [--peak]"""
import argparse
import os
import resource
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode  # noqa: E402
import models  # noqa: E402

CFG = {"arch": "LlamaForCausalLM", "vocab": 4096, "hidden": 256, "intermediate": 1024, "layers": 4,
       "heads": 4, "kv_heads": 4, "head_dim": 64, "rope_theta": 10000.0, "norm_eps": 1e-5,
       "tie": True, "attention_bias": False, "activation": "silu"}
BATCH, SEQ = 8, 128
PROMPT, NEW = 16, 128
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def weights(g):
    c = CFG
    d, f, v = c["hidden"], c["intermediate"], c["vocab"]
    w = {"model.embed_tokens.weight": torch.randn(v, d, generator=g) * 0.02, "model.norm.weight": torch.ones(d)}
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = torch.ones(d)
        w[p + "post_attention_layernorm.weight"] = torch.ones(d)
        for name, shape in [("self_attn.q_proj", (d, d)), ("self_attn.k_proj", (d, d)), ("self_attn.v_proj", (d, d)),
                            ("self_attn.o_proj", (d, d)), ("mlp.gate_proj", (f, d)), ("mlp.up_proj", (f, d)),
                            ("mlp.down_proj", (d, f))]:
            w[p + name + ".weight"] = torch.randn(*shape, generator=g) * 0.02
    return w


def build(case):
    g = torch.Generator().manual_seed(0)
    w = weights(g)
    params, lora = [], {}
    for t in w.values():
        t.requires_grad_(case == "train_full")
        if case == "train_full":
            params.append(t)
    if case == "train_lora":
        for k in list(w):
            if k.endswith(".weight") and k.rsplit(".", 2)[-2] in TARGETS:
                base = k[: -len(".weight")]
                shape = w[k].shape
                A = (torch.rand(8, shape[1], generator=g) - 0.5).requires_grad_(True)
                B = torch.zeros(shape[0], 8).requires_grad_(True)
                lora[base] = (A, B, 2.0)
                params += [A, B]
    return models.Model(CFG, w, lora), params


def step(m, params, ids, targets, case):
    if case == "forward":
        with torch.no_grad():
            m.logits(m.hidden(ids))
        return
    for p in params:
        if p.grad is not None:
            p.grad.zero_()
    logits = m.logits(m.hidden(ids))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
    loss.backward()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="default,1,2")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--cases", default="train_full,train_lora,forward,decode_b1,decode_b8")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--peak", action="store_true")
    a = ap.parse_args()
    if a.child is None:
        for t in a.threads.split(","):
            env = dict(os.environ)
            if t != "default":
                env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = t
            if a.peak:
                subprocess.run([sys.executable, __file__, "--child", t, "--peak"], env=env, check=True)
                continue
            for prec in a.precision.split(","):
                for case in a.cases.split(","):
                    subprocess.run([sys.executable, __file__, "--child", t, "--iters", str(a.iters), "--cases", case,
                                    "--precision", prec], env=env, check=True)
        return
    if a.child != "default":
        torch.set_num_threads(int(a.child))
    if a.peak:
        sgemm_peak(a.child)
        return
    if a.precision == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            run_cases(a, "@bf16")
    elif a.precision == "fp32":
        run_cases(a, "")
    else:
        sys.exit(f"--precision {a.precision}: want fp32 or bf16")


def sgemm_peak(threads, n=1024, reps=20):
    """Prints the fastest fp32 and bf16 n x n x n matrix products in GFLOPS."""
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    for name, dtype in (("sgemm", torch.float32), ("bf16gemm", torch.bfloat16)):
        x, y = a.to(dtype), b.to(dtype)
        out = torch.empty(n, n, dtype=dtype)
        for _ in range(3):
            torch.mm(x, y, out=out)
        best = min(timed(lambda: torch.mm(x, y, out=out)) for _ in range(reps))
        print(f"{name} {threads} {2 * n ** 3 / best / 1e9:.1f}", flush=True)


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def run_cases(a, suffix):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, CFG["vocab"], (BATCH, SEQ), generator=g)
    targets = torch.cat([ids[:, 1:], torch.full((BATCH, 1), -100)], dim=1)
    threads = a.child
    for case in a.cases.split(","):
        if case.startswith("decode_b"):
            bench_decode(case, suffix, threads, a.iters)
            continue
        m, params = build(case)
        for _ in range(2):
            step(m, params, ids, targets, case)
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            step(m, params, ids, targets, case)
            times.append(time.perf_counter() - t0)
        report(case + suffix, threads, BATCH * SEQ, times)


def report(case, threads, tok, times):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{case} {threads} {tok * len(times) / sum(times):.0f} {tok / min(times):.0f} {rss}", flush=True)


def bench_decode(case, suffix, threads, iters):
    bsz = int(case[len("decode_b"):])
    d = decode.KVDecoder(CFG, weights(torch.Generator().manual_seed(0)), PROMPT + NEW)
    prompt = torch.randint(0, CFG["vocab"], (bsz, PROMPT), generator=torch.Generator().manual_seed(1))
    d.greedy(prompt, NEW)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        d.greedy(prompt, NEW)
        times.append(time.perf_counter() - t0)
    report(case + suffix, threads, bsz * NEW, times)


if __name__ == "__main__":
    main()
