"""Torch greedy decoding with its own KV cache, for the engine speed check
(decode_b1, decode_b8 in bench.py). Llama layout as models.Model (RMSNorm,
RoPE, SwiGLU, grouped-query heads, tied or separate lm_head, optional
q/k/v bias): the prompt runs as one batched prefill, then one token per
step against preallocated per-layer caches [batch, kv_heads, max, head_dim]
holding the key/value heads only.

    /usr/bin/python3 decode.py --check   # cached greedy == full recompute"""
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


class KVDecoder:
    def __init__(self, cfg, w, max_len):
        self.cfg, self.w, self.max_len = cfg, w, max_len
        self.cos, self.sin = models.rope_cos_sin(cfg, max_len)

    def new_cache(self, bsz):
        c = self.cfg
        shape = (bsz, c["kv_heads"], self.max_len, c["head_dim"])
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(c["layers"])]

    def step(self, ids, pos0, cache):
        """Appends ids [batch, n] at positions pos0.. and returns the logits
        after the last one [batch, vocab]."""
        c, w = self.cfg, self.w
        bsz, n = ids.shape
        H, KV, hd, eps = c["heads"], c["kv_heads"], c["head_dim"], c["norm_eps"]
        bias = c["attention_bias"]
        cos, sin = self.cos[pos0:pos0 + n], self.sin[pos0:pos0 + n]
        T = pos0 + n
        mask = None
        if n > 1:
            mask = torch.full((n, T), float("-inf")).triu(pos0 + 1)

        def rms(x, key):
            return w[key] * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

        def lin(x, key, b=False):
            return F.linear(x, w[key + ".weight"], w[key + ".bias"] if b else None)

        x = w["model.embed_tokens.weight"][ids]
        for l in range(c["layers"]):
            p = f"model.layers.{l}."
            h = rms(x, p + "input_layernorm.weight")
            q = lin(h, p + "self_attn.q_proj", bias).view(bsz, n, H, hd).transpose(1, 2)
            k = lin(h, p + "self_attn.k_proj", bias).view(bsz, n, KV, hd).transpose(1, 2)
            v = lin(h, p + "self_attn.v_proj", bias).view(bsz, n, KV, hd).transpose(1, 2)
            q = q * cos + models.rotate_half(q) * sin
            k = k * cos + models.rotate_half(k) * sin
            ck, cv = cache[l]
            ck[:, :, pos0:T] = k
            cv[:, :, pos0:T] = v
            K, V = ck[:, :, :T], cv[:, :, :T]
            if H != KV:
                K, V = K.repeat_interleave(H // KV, dim=1), V.repeat_interleave(H // KV, dim=1)
            s = (q @ K.transpose(2, 3)) / math.sqrt(hd)
            if mask is not None:
                s = s + mask
            o = (torch.softmax(s, dim=-1) @ V).transpose(1, 2).reshape(bsz, n, H * hd)
            x = x + lin(o, p + "self_attn.o_proj")
            h = rms(x, p + "post_attention_layernorm.weight")
            x = x + lin(F.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        last = rms(x[:, -1], "model.norm.weight")
        head = w["model.embed_tokens.weight"] if c["tie"] else w["lm_head.weight"]
        return last @ head.t()

    def greedy(self, prompt, new):
        """prompt [batch, n]: one prefill, then new-1 one-token steps."""
        with torch.no_grad():
            cache = self.new_cache(prompt.shape[0])
            logits = self.step(prompt, 0, cache)
            pos, out = prompt.shape[1], []
            for i in range(new):
                tok = logits.argmax(-1, keepdim=True)
                out.append(tok)
                if i + 1 < new:
                    logits = self.step(tok, pos, cache)
                    pos += 1
            return torch.cat(out, dim=1)


def check():
    cfg = {"arch": "LlamaForCausalLM", "vocab": 64, "hidden": 32, "intermediate": 48, "layers": 2, "heads": 4,
           "kv_heads": 2, "head_dim": 8, "rope_theta": 10000.0, "norm_eps": 1e-5, "tie": False,
           "attention_bias": True, "activation": "silu"}
    g = torch.Generator().manual_seed(3)
    d, f, v = 32, 48, 64
    w = {"model.embed_tokens.weight": torch.randn(v, d, generator=g) * 0.5, "model.norm.weight": torch.ones(d),
         "lm_head.weight": torch.randn(v, d, generator=g) * 0.3}
    for l in range(2):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = torch.ones(d)
        w[p + "post_attention_layernorm.weight"] = torch.ones(d)
        for name, shape in [("self_attn.q_proj", (32, d)), ("self_attn.k_proj", (16, d)), ("self_attn.v_proj", (16, d)),
                            ("self_attn.o_proj", (d, 32)), ("mlp.gate_proj", (f, d)), ("mlp.up_proj", (f, d)),
                            ("mlp.down_proj", (d, f))]:
            w[p + name + ".weight"] = torch.randn(*shape, generator=g) * 0.3
        for name, n in [("q_proj", 32), ("k_proj", 16), ("v_proj", 16)]:
            w[p + "self_attn." + name + ".bias"] = torch.randn(n, generator=g) * 0.1
    prompt = torch.randint(0, v, (3, 5), generator=g)
    got = KVDecoder(cfg, w, 32).greedy(prompt, 10)
    ref, seq = models.Model(cfg, w), prompt
    with torch.no_grad():
        for _ in range(10):
            tok = ref.logits(ref.hidden(seq))[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, tok], dim=1)
    if not torch.equal(got, seq[:, 5:]):
        sys.exit(f"decode check failed: cached {got.tolist()}, recompute {seq[:, 5:].tolist()}")
    print("decode check: cached greedy == full recompute")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    if ap.parse_args().check:
        check()
