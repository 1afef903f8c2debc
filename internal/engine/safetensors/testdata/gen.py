# Generates the reference fixtures with numpy/torch (run with /usr/bin/python3
# from this folder). The safetensors Python package is not installed here, so
# the file is assembled by hand following the format: u64 header length, a
# compact JSON header padded with spaces to 8 bytes, then little-endian data.
import json, struct
import numpy as np
import torch

rng = np.random.default_rng(7)
f32 = rng.standard_normal((2, 3)).astype(np.float32)
f16 = (rng.standard_normal((4,)) * 1000).astype(np.float16)
bf16 = torch.tensor(rng.standard_normal((3, 2)), dtype=torch.bfloat16)

blobs = [("a.f32", "F32", list(f32.shape), f32.tobytes()),
         ("b.f16", "F16", list(f16.shape), f16.tobytes()),
         ("c.bf16", "BF16", list(bf16.shape), bf16.view(torch.int16).numpy().tobytes())]
header, off, data = {"__metadata__": {"format": "pt"}}, 0, b""
for name, dt, shape, raw in blobs:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
    off += len(raw); data += raw
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open("mixed.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)
json.dump({"a.f32": f32.ravel().tolist(),
           "b.f16": f16.astype(np.float32).ravel().tolist(),
           "c.bf16": bf16.float().numpy().ravel().tolist()}, open("mixed.json", "w"))

# float32 -> float16 rounding reference: random values over the whole f16
# range, values at rounding ties, subnormals, overflow.
vals = np.concatenate([
    rng.standard_normal(2000) * 10.0 ** rng.integers(-9, 6, 2000),
    np.array([65504, 65520, 65519.99, 1e-8, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 2.0**-14,
              1 + 2.0**-11, 1 + 3 * 2.0**-11, -0.0, np.inf, -np.inf]),
]).astype(np.float32)
np.savetxt("f16_round.txt", np.stack([vals.view(np.uint32), vals.astype(np.float16).view(np.uint16).astype(np.uint32)], 1), fmt="%d")

# Byte-exact reference for Write: one F32 and one F16 file, same layout rules.
for dt, arr in (("F32", f32), ("F16", f32.astype(np.float16))):
    hdr = {"__metadata__": {"format": "pt"},
           "a.f32": {"dtype": dt, "shape": [2, 3], "data_offsets": [0, arr.nbytes]},
           "z<&>": {"dtype": dt, "shape": [0], "data_offsets": [arr.nbytes, arr.nbytes]}}
    hb = json.dumps(hdr, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    open("write_%s.safetensors" % dt.lower(), "wb").write(struct.pack("<Q", len(hb)) + hb + arr.tobytes())
