"""Independent torch implementations of the architectures Tailor's engine
supports, written from the Hugging Face transformers modeling code (Llama,
Qwen2, GPT-2; eager attention), with PEFT-style LoRA and a classification
head. Weights are a dict of HF-named tensors."""
import math

import torch
import torch.nn.functional as F


def llama3_inv_freq(inv_freq, rs):
    factor = rs["factor"]
    low, high = rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wave, high_wave = old / low, old / high
    wavelen = 2 * math.pi / inv_freq
    inv_l = torch.where(wavelen > low_wave, inv_freq / factor, inv_freq)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    medium = ~(wavelen < high_wave) * ~(wavelen > low_wave)
    return torch.where(medium, smoothed, inv_l)


def rope_cos_sin(cfg, seq):
    dim = cfg["head_dim"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.get("rope_scaling")
    if rs and rs["type"] == "llama3":
        inv = llama3_inv_freq(inv, rs)
    elif rs and rs["type"] == "linear":
        inv = inv / rs["factor"]
    pos = torch.arange(seq).float()
    freqs = pos[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Model:
    def __init__(self, cfg, w, lora=None, head=None):
        self.cfg, self.w, self.lora, self.head = cfg, w, lora or {}, head

    def lin(self, x, key, bias=False, conv1d=False):
        W = self.w[key + ".weight"]
        b = self.w[key + ".bias"] if bias else None
        if conv1d:
            y = x @ W if b is None else torch.addmm(b, x.reshape(-1, W.shape[0]), W).view(*x.shape[:-1], W.shape[1])
        else:
            y = F.linear(x, W, b)
        ad = self.lora.get(key)
        if ad is not None:
            A, B, scale = ad
            y = y + scale * ((x @ A.t()) @ B.t())
        return y

    def attention(self, q, k, v, bsz, seq):
        c = self.cfg
        H, KV, hd = c["heads"], c["kv_heads"], c["head_dim"]
        q = q.view(bsz, seq, H, hd).transpose(1, 2)
        k = k.view(bsz, seq, KV, hd).transpose(1, 2)
        v = v.view(bsz, seq, KV, hd).transpose(1, 2)
        if c["arch"] != "GPT2LMHeadModel":
            cos, sin = rope_cos_sin(c, seq)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        rep = H // KV
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(2, 3)) / math.sqrt(hd)
        mask = torch.full((seq, seq), torch.finfo(s.dtype).min).triu(1)
        p = torch.softmax(s + mask, dim=-1, dtype=torch.float32)
        return (p @ v).transpose(1, 2).reshape(bsz, seq, H * hd)

    def hidden(self, ids):
        c, w = self.cfg, self.w
        bsz, seq = ids.shape
        eps = c["norm_eps"]
        if c["arch"] == "GPT2LMHeadModel":
            x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][torch.arange(seq)][None]
            d = c["hidden"]
            for l in range(c["layers"]):
                p = f"transformer.h.{l}."
                h = F.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
                qkv = self.lin(h, p + "attn.c_attn", True, True)
                q, k, v = qkv.split(d, dim=2)
                x = x + self.lin(self.attention(q, k, v, bsz, seq), p + "attn.c_proj", True, True)
                h = F.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
                h = self.lin(h, p + "mlp.c_fc", True, True)
                if c["activation"] == "gelu":
                    h = F.gelu(h)
                else:
                    h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
                x = x + self.lin(h, p + "mlp.c_proj", True, True)
            return F.layer_norm(x, (d,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)

        def rms(x, key):
            var = x.pow(2).mean(-1, keepdim=True)
            return w[key] * (x * torch.rsqrt(var + eps))

        x = w["model.embed_tokens.weight"][ids]
        b = c["attention_bias"]
        for l in range(c["layers"]):
            p = f"model.layers.{l}."
            h = rms(x, p + "input_layernorm.weight")
            q = self.lin(h, p + "self_attn.q_proj", b)
            k = self.lin(h, p + "self_attn.k_proj", b)
            v = self.lin(h, p + "self_attn.v_proj", b)
            x = x + self.lin(self.attention(q, k, v, bsz, seq), p + "self_attn.o_proj")
            h = rms(x, p + "post_attention_layernorm.weight")
            g = self.lin(h, p + "mlp.gate_proj")
            u = self.lin(h, p + "mlp.up_proj")
            x = x + self.lin(F.silu(g) * u, p + "mlp.down_proj")
        return rms(x, "model.norm.weight")

    def logits(self, hidden):
        c, w = self.cfg, self.w
        if c["arch"] == "GPT2LMHeadModel":
            return hidden @ w["transformer.wte.weight"].t()
        if c["tie"]:
            return hidden @ w["model.embed_tokens.weight"].t()
        return hidden @ w["lm_head.weight"].t()
