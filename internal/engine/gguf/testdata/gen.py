# Reference values computed the way llama.cpp's convert_hf_to_gguf.py does
# (run with /usr/bin/python3 from this folder; torch 1.13, numpy).
import math
import numpy as np
import torch

# LlamaModel.permute, verbatim.
def permute(weights, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))

w = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
with open("permute.txt", "w") as f:
    f.write(" ".join("%g" % v for v in permute(w, 2, 2).ravel()) + "\n")   # q: 2 heads of 4
    f.write(" ".join("%g" % v for v in permute(w, 4, 1).ravel()) + "\n")   # k: 1 kv head of 8

# LlamaModel.generate_extra_tensors for rope_type llama3 (Llama 3.2 1B values).
base, dim = 500000.0, 64
factor, low_freq_factor, high_freq_factor, old_context_len = 32.0, 1.0, 4.0, 8192
freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
low_freq_wavelen = old_context_len / low_freq_factor
high_freq_wavelen = old_context_len / high_freq_factor
rope_factors = []
for freq in freqs:
    wavelen = 2 * math.pi / freq
    if wavelen < high_freq_wavelen:
        rope_factors.append(1)
    elif wavelen > low_freq_wavelen:
        rope_factors.append(factor)
    else:
        smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        rope_factors.append(1 / ((1 - smooth) / factor + smooth))
t = torch.tensor(rope_factors, dtype=torch.float32)
with open("rope_factors.txt", "w") as f:
    f.write(" ".join(str(v) for v in t.numpy().view(np.uint32).tolist()) + "\n")
