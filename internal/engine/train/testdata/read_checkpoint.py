"""Independent reader for the checkpoint format: parses it as safetensors
with json + numpy and prints {tensor name: flat values} as JSON."""
import json, struct, sys
import numpy as np

raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
header.pop("__metadata__")
data = raw[8 + n:]
out = {}
for name, h in header.items():
    assert h["dtype"] == "F32"
    b, e = h["data_offsets"]
    arr = np.frombuffer(data[b:e], dtype="<f4").reshape(h["shape"])
    out[name] = [float(x) for x in arr.flatten()]
print(json.dumps(out))
