#!/usr/bin/env python3
"""Reads a .safetensors file with the reference implementation (the `safetensors` package, numpy backend) and
prints a JSON summary per tensor: dtype, shape, float64 sum and sum of squares, and the first values. quasr's
tests compare it with what quasr wrote, so the writer is checked by the format's own reader.

Usage: .venv/bin/python scripts/ref_safetensors.py FILE.safetensors
"""
import json
import sys

import numpy as np
from safetensors import safe_open


def main():
    out = {}
    with safe_open(sys.argv[1], framework="numpy") as f:
        out["__metadata__"] = f.metadata() or {}
        for name in f.keys():
            t = f.get_tensor(name)
            v = t.astype(np.float64)
            out[name] = {"dtype": str(t.dtype), "shape": list(t.shape), "sum": float(v.sum()),
                         "sumsq": float((v * v).sum()), "first": [float(x) for x in v.reshape(-1)[:4]]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
