#!/usr/bin/env bash
# Engine speed against PyTorch 1.13 (Debian's /usr/bin/python3) on the same
# machine: train_full, train_lora, forward, decode_b1, decode_b8. Prints one
# line per case (each side's tok/s, precision and threads, the ratio, each
# side's MFU and the peak it used, peak RSS; compare.py's comment has the
# columns), after a header with OPENBLAS_CORETYPE and the load. Extra
# arguments go to scripts/torchref/compare.py (--iters N, --rounds N, --cases).
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 scripts/torchref/compare.py "$@"
