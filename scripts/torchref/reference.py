"""Reference run for Tailor's engine parity test.

usage: /usr/bin/python3 reference.py DIR [DIR...]

DIR holds config.json (the normalized engine config plus method, lora and
head options), weights.safetensors (HF-named base weights, PEFT-named LoRA
tensors, score.weight) and batch.json ({"tokens": [[...]], "loss_mask":
[[...]] or null, "labels": [...]}). Writes DIR/out.safetensors with
"logits" (or "probs" for a head), "loss_sum", "count" and "grad.<param>"
for every trainable parameter (gradients of the summed loss).

With "precision": "bf16" in config.json the forward pass (and so its
backward) runs under torch.autocast("cpu", dtype=torch.bfloat16): matrix
products in bf16 with fp32 accumulation, fp32 master weights; outputs are
written as float32."""
import contextlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import st  # noqa: E402


def main(d):
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(d, "config.json")))
    batch = json.load(open(os.path.join(d, "batch.json")))
    tensors = st.read(os.path.join(d, "weights.safetensors"))
    method = cfg["method"]
    trainable = {}
    w = {}
    lora = {}
    for k, t in tensors.items():
        if ".lora_A." in k or ".lora_B." in k or k == "score.weight":
            continue
        w[k] = t.clone().requires_grad_(method == "full")
        if method == "full":
            trainable[k] = w[k]
    lc = cfg.get("lora")
    if lc:
        scale = lc["alpha"] / lc["rank"]
        for k in tensors:
            if k.endswith(".lora_A.weight"):
                base = k[len("base_model.model."):-len(".lora_A.weight")]
                kb = k.replace(".lora_A.", ".lora_B.")
                A = tensors[k].clone().requires_grad_(True)
                B = tensors[kb].clone().requires_grad_(True)
                lora[base] = (A, B, scale)
                trainable[k], trainable[kb] = A, B
    head = None
    if method == "head":
        head = tensors["score.weight"].clone().requires_grad_(True)
        trainable["score.weight"] = head
    m = models.Model(cfg, w, lora)

    toks = batch["tokens"]
    seq = max(len(t) for t in toks)
    ids = torch.zeros(len(toks), seq, dtype=torch.long)
    for i, t in enumerate(toks):
        ids[i, : len(t)] = torch.tensor(t)
    amp = contextlib.nullcontext()
    if cfg.get("precision", "fp32") == "bf16":
        amp = torch.autocast("cpu", dtype=torch.bfloat16)
    with amp:
        out, loss, count = forward(cfg, batch, m, ids, head, seq)
    loss.backward()
    out["loss_sum"] = loss.detach().float().reshape(1)
    out["count"] = torch.tensor([float(count)])
    for k, t in trainable.items():
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        out["grad." + k] = g
    st.write(os.path.join(d, "out.safetensors"), {k: v.detach().float() for k, v in out.items()})


def forward(cfg, batch, m, ids, head, seq):
    toks = batch["tokens"]
    hidden = m.hidden(ids)
    out = {}
    if head is not None:
        rows = []
        for i, t in enumerate(toks):
            if cfg["pooling"] == "mean":
                rows.append(hidden[i, : len(t)].mean(0))
            else:
                rows.append(hidden[i, len(t) - 1])
        scores = torch.stack(rows) @ head.t()
        labels = torch.tensor(batch["labels"])
        loss = torch.nn.functional.cross_entropy(scores, labels, reduction="sum")
        out["probs"] = torch.softmax(scores, -1)
        count = len(toks)
    else:
        logits = m.logits(hidden)
        targets = torch.full((len(toks), seq), -100, dtype=torch.long)
        masks = batch.get("loss_mask")
        for i, t in enumerate(toks):
            for p in range(len(t) - 1):
                if masks is None or masks[i] is None or masks[i][p]:
                    targets[i, p] = t[p + 1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum")
        out["logits"] = logits
        count = int((targets >= 0).sum())
    return out, loss, count


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        main(arg)
