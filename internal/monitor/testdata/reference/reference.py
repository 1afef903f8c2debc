#!/usr/bin/env python3
"""Reference values for internal/monitor's statistics, from scipy and numpy.

Reads the fixture inputs (JSON) named by argv[1] and writes the expected
outputs as JSON to stdout. reference_test.go runs it and compares with the
committed golden file expected.json and with the Go implementation.
"""
import json
import sys

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon, pdist


def ks(case):
    r = stats.ks_2samp(np.array(case["a"], dtype=float), np.array(case["b"], dtype=float), method="auto")
    return {"name": case["name"], "d": float(r.statistic), "pvalue": float(r.pvalue)}


def chisq(case):
    r = stats.chisquare(np.array(case["observed"], dtype=float), np.array(case["expected"], dtype=float))
    return {"name": case["name"], "statistic": float(r.statistic), "pvalue": float(r.pvalue)}


def divergence(case):
    ref = np.array(case["ref"], dtype=float)
    cur = np.array(case["cur"], dtype=float)
    js = float(jensenshannon(ref, cur, base=2))  # on all buckets, no smoothing
    eps = case["epsilon"]
    # PSI on pseudo-count smoothed proportions, (c + eps) / (N + K*eps),
    # over the K buckets non-empty in at least one histogram.
    keep = (ref > 0) | (cur > 0)
    ref, cur = ref[keep], cur[keep]
    rp = (ref + eps) / (ref.sum() + len(ref) * eps)
    cp = (cur + eps) / (cur.sum() + len(cur) * eps)
    psi = float(np.sum((cp - rp) * np.log(cp / rp)))
    return {"name": case["name"], "psi": psi, "js": js}


def rate(case):
    xr, nr, xw, nw, phi = (case[k] for k in ("xr", "nr", "xw", "nw", "phi"))
    pool = (xr + xw) / (nr + nw)
    z = (xw / nw - xr / nr) / np.sqrt(max(phi, 1.0) * pool * (1 - pool) * (1 / nr + 1 / nw))
    return {"name": case["name"], "z": float(z), "pvalue": float(2 * stats.norm.sf(abs(z)))}


def mmd(case):
    x = np.array(case["x"], dtype=float)
    y = np.array(case["y"], dtype=float)
    pooled = np.vstack([x, y])
    sigma = float(np.median(pdist(pooled)))  # median heuristic
    d2 = np.sum((pooled[:, None, :] - pooled[None, :, :]) ** 2, axis=-1)
    k = np.exp(-d2 / (2 * sigma ** 2))
    m, n = len(x), len(y)
    kxx, kyy, kxy = k[:m, :m], k[m:, m:], k[:m, m:]
    mmd2 = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.sum() / (m * n))
    return {"name": case["name"], "mmd2": float(mmd2), "bandwidth": sigma}


def main():
    with open(sys.argv[1]) as f:
        inp = json.load(f)
    out = {
        "ks": [ks(c) for c in inp["ks"]],
        "chisquare": [chisq(c) for c in inp["chisquare"]],
        "divergence": [divergence(c) for c in inp["divergence"]],
        "rate": [rate(c) for c in inp["rate"]],
        "mmd": [mmd(c) for c in inp["mmd"]],
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
