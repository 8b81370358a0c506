#!/usr/bin/env python3
"""Summarize a `quasr_bench --benchmark_filter=Qlinear --benchmark_format=json` run (docs/benchmarks.md).

Per kernel and case (M1, M4, M1500 hot; cold M1): the median and range over the shapes of each ratio
vs_<peer> = peer time / quasr time (> 1: quasr faster), for the VNNI and AMX kernels the GEMM-only ratio, and
for the integer kernels the whole call against oneDNN int8 doing the whole job from FP32 (vs_dnnl_int8_f32in).

    OMP_NUM_THREADS=1 build/quasr_bench --benchmark_filter=Qlinear --benchmark_min_time=0.2 \
        --benchmark_format=json --benchmark_out=build/bench_qlinear.json
    python3 scripts/bench_qlinear_summary.py build/bench_qlinear.json [--rows]

--rows also prints one table row per benchmark: | name | weights, activations | quasr us | quasr GEMM us |
oneDNN int8 us | oneDNN int8 from FP32 us | bf16 us | f32 us | the ratios above |.
"""
import collections
import json
import statistics
import sys

RATIOS = ["vs_dnnl_int8", "vs_dnnl_int8_gemm", "vs_dnnl_int8_f32in", "vs_dnnl_bf16", "vs_dnnl_f32"]


def main():
    path = sys.argv[1]
    runs = json.load(open(path))["benchmarks"]
    groups = collections.defaultdict(list)
    for b in runs:
        if "error_occurred" in b and b["error_occurred"]:
            continue
        family, kernel, shape, m = b["name"].replace("/real_time", "").split("/")
        case = ("cold " if family == "QlinearCold" else "") + m
        groups[(kernel, case)].append(b)
        if "--rows" in sys.argv:
            def us(key):
                return f"{b[key]:.1f}" if key in b else ""
            cells = " | ".join(f"{b[r]:.2f}" if r in b else "" for r in RATIOS)
            print(f"| {kernel}/{shape}/{m}{' cold' if family == 'QlinearCold' else ''} | {b.get('label', '')} | "
                  f"{us('quasr_us')} | {us('quasr_gemm_us')} | {us('dnnl_int8_us')} | {us('dnnl_int8_f32in_us')} | "
                  f"{us('dnnl_bf16_us')} | "
                  f"{us('dnnl_f32_us')} | {cells} |")
    if "--rows" in sys.argv:
        print()
    print("| kernel (weights) | case | " + " | ".join(RATIOS) + " |")
    print("|---|---|" + "---|" * len(RATIOS))
    order = {"M1": 0, "M4": 1, "M1500": 2, "cold M1": 3}
    for (kernel, case), bs in sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))):
        label = bs[0].get("label", "").split(" cold")[0]
        cells = []
        for r in RATIOS:
            v = [b[r] for b in bs if r in b]
            cells.append(f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" if v else "")
        print(f"| {kernel} ({label}) | {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
