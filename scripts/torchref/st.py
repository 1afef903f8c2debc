"""Minimal safetensors read/write for float32 tensors (no safetensors package
on Debian): 8-byte little-endian header length, JSON header, raw bytes."""
import json
import struct

import numpy as np
import torch


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name}: dtype {meta['dtype']} not supported")
        a, b = meta["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype="<f4").reshape(meta["shape"]).copy()
        out[name] = torch.from_numpy(arr)
    return out


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        arr = tensors[name].detach().cpu().contiguous().to(torch.float32).numpy().astype("<f4")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
