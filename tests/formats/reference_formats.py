"""Independent reference for quasr's format quantizers, used by tests/formats/test_python_reference.cpp.

Written from the format definitions (OCP MX v1.0, NVIDIA NVFP4, QLoRA NF4, symmetric/affine INTb), with element
rounding done by ml_dtypes' casts and numpy, not by quasr's codecs. Usage:
    reference_formats.py ROWS COLS IN.f32 OUT.f32 SPEC...
reads ROWS*COLS little-endian float32 values and writes, for each SPEC in order, the ROWS*COLS dequantized
values its definition gives (one process for all specs: numpy's start-up dominates otherwise).
Scales are computed as FP32 quotients (correctly rounded, as any IEEE division) and then rounded to their storage
type; x / s is an FP32 division; decoding is an FP32 product.
"""
import sys

import ml_dtypes
import numpy as np

f32 = np.float32
ELEMENTS = {  # name: (ml_dtypes type, max_finite, emax)
    "e4m3": (ml_dtypes.float8_e4m3fn, 448.0, 8),
    "e5m2": (ml_dtypes.float8_e5m2, 57344.0, 15),
    "e3m2": (ml_dtypes.float6_e3m2fn, 28.0, 4),
    "e2m3": (ml_dtypes.float6_e2m3fn, 7.5, 2),
    "e2m1": (ml_dtypes.float4_e2m1fn, 6.0, 2),
}
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=f32)


def to_elem(t, name):
    """Round FP32 values to an element format, saturating (clip first: ml_dtypes turns E4M3 overflow into NaN)."""
    dtype, mx, _ = ELEMENTS[name]
    return np.clip(t, -mx, mx).astype(dtype).astype(f32)


def store(s, scale_type):
    s = s.astype(f32)
    if scale_type == "fp16":
        return s.astype(np.float16).astype(f32)
    if scale_type == "bf16":
        return s.astype(ml_dtypes.bfloat16).astype(f32)
    return s


def safe_div(x, s):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, x / np.where(s > 0, s, f32(1)), f32(0)).astype(f32)


def mx(x, elem):
    _, _, emax = ELEMENTS[elem]
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    _, e = np.frexp(np.where(amax > 0, amax, f32(1)))  # amax = m * 2^e, m in [0.5, 1)
    shared = np.where(amax > 0, np.clip(e - 1 - emax, -127, 127), 0)
    X = np.ldexp(f32(1), shared).astype(f32)
    return (to_elem(b / X, elem) * X).reshape(x.shape)


def nvfp4(x):
    amax = f32(np.abs(x).max())
    t = amax / f32(448 * 6)
    if t == 0:
        return np.zeros_like(x)
    b = x.reshape(-1, 16)
    bmax = np.abs(b).max(axis=1, keepdims=True)
    sb = to_elem(bmax / (f32(6) * t), "e4m3")
    s = (sb * t).astype(f32)
    return (to_elem(safe_div(b, s), "e2m1") * s).reshape(x.shape)


def blocks(x, gran):
    """View x as [blocks, elements] for a granularity token (pt, pc = axis 0 of a 2-D tensor, gN)."""
    if gran == "pt":
        return x.reshape(1, -1)
    if gran == "pc":
        return x
    return x.reshape(-1, int(gran[1:]))


def scaled(x, kind, gran, scale_type, zp=False):
    b = blocks(x, gran)
    amax = np.abs(b).max(axis=1, keepdims=True)
    if kind.startswith("int"):
        bits = int(kind[3:])
        if zp:
            lo = np.minimum(b.min(axis=1, keepdims=True), 0).astype(np.float64)
            hi = np.maximum(b.max(axis=1, keepdims=True), 0).astype(np.float64)
            S = store(((hi - lo) / (2 ** bits - 1)), scale_type)
            S64 = S.astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                Z = np.where(S > 0, np.clip(np.rint(-lo / np.where(S > 0, S64, 1.0)), 0, 2 ** bits - 1), 0)
            q = np.clip(np.rint(safe_div(b, S).astype(np.float64) + Z), 0, 2 ** bits - 1)
            y = S * (q - Z).astype(f32)
        else:
            qmax = 2 ** (bits - 1) - 1
            s = store(amax / f32(qmax), scale_type)
            y = s * np.clip(np.rint(safe_div(b, s)), -qmax, qmax).astype(f32)
    elif kind == "nf4":
        s = store(amax, scale_type)
        t = safe_div(b, s)
        # Distances in float64 are exact for these floats; argmin takes the first (lower) level on a tie.
        idx = np.abs(t.astype(np.float64)[..., None] - NF4.astype(np.float64)).argmin(axis=-1)
        y = s * NF4[idx]
    else:  # scaled minifloat, e.g. fp8_e4m3
        elem = kind.split("_")[1]
        s = store(amax / f32(ELEMENTS[elem][1]), scale_type)
        y = s * to_elem(safe_div(b, s), elem)
    return y.astype(f32).reshape(x.shape)


def reference(spec, x):
    parts = spec.split(":")
    fmt = parts[0]
    opts = parts[1:]
    if fmt.startswith("mxfp"):
        return mx(x, {"mxfp4": "e2m1"}.get(fmt, fmt.split("_")[-1]))
    if fmt == "nvfp4":
        return nvfp4(x)
    if fmt == "fp16":
        return np.clip(x, -65504, 65504).astype(np.float16).astype(f32)
    if fmt == "bf16":
        y = x.astype(ml_dtypes.bfloat16).astype(f32)
        big = float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
        return np.where(np.isinf(y), np.sign(y) * big, y).astype(f32)
    scale_type = next((o[2:] for o in opts if o.startswith("s=")), "bf16" if fmt == "fp8_e5m2" else "fp16")
    return scaled(x, fmt, opts[0], scale_type, zp="zp" in opts)


def main():
    rows, cols, src, dst, specs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
    x = np.fromfile(src, dtype="<f4").reshape(rows, cols)
    np.concatenate([reference(spec, x).reshape(-1) for spec in specs]).astype("<f4").tofile(dst)


if __name__ == "__main__":
    main()
