#!/usr/bin/env python3
"""quasr's FP32 Whisper against CTranslate2 float32 (what faster-whisper runs), same model, same thread count,
measured in one run: encoder time per 30-s window and decoder time per token (greedy and beam 5).

CTranslate2 side: Whisper.encode on real faster-whisper features; per-token decode time is the slope between a
greedy (or beam) generate() that produces 1 token and one that produces n tokens, from CTranslate2's encoder
output, so the cross-attention setup cancels out. quasr side: build/quasr_bench --benchmark_filter=bm_ (see
bench/bench_whisper.cpp). Medians of repeated calls; wall time and process CPU time are both reported, because
this machine is shared and wall time is noisy under load (CPU time is the cost at threads=1).

Usage: .venv/bin/python scripts/bench_whisper.py [--model tiny.en] [--threads 1 2] [--repeats 5]
Ratio columns are ct2 time / quasr time: > 1 means quasr is faster.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP = "/work/shared/data/LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac"


def timed(fn, repeats):
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def ct2_times(model_dir, threads, repeats):
    import ctranslate2
    from faster_whisper.audio import decode_audio, pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor

    m = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32", intra_threads=threads,
                                   inter_threads=1)
    feats = pad_or_trim(FeatureExtractor(feature_size=m.n_mels)(decode_audio(CLIP))[:, :3000]).astype(np.float32)
    sv = ctranslate2.StorageView.from_array(feats[None])
    out = {}
    out["encode"] = timed(lambda: m.encode(sv, to_cpu=True), repeats)
    enc = ctranslate2.StorageView.from_array(np.array(m.encode(sv, to_cpu=True)))
    sot = [50257, 50362] if not m.is_multilingual else [50258, 50259, 50359, 50363]
    for beam in (1, 5):
        def gen(max_length):
            return m.generate(enc, [sot], beam_size=beam, max_length=max_length, suppress_blank=False,
                              suppress_tokens=[])[0]
        n_full = len(gen(448).sequences_ids[0])
        t1 = timed(lambda: gen(2), repeats)
        tn = timed(lambda: gen(448), repeats)
        out[f"token_beam{beam}"] = tuple((b - a) / max(1, n_full - 1) for a, b in zip(t1, tn))
    return out


def quasr_times(model_name, threads, repeats):
    bench = os.path.join(ROOT, "build", "quasr_bench")
    res = subprocess.run([bench, "--benchmark_filter=bm_(encode|decode)/" + model_name.replace(".", "_") + "/",
                          "--benchmark_format=json"], capture_output=True, text=True, check=True)
    out = {}
    for b in json.loads(res.stdout)["benchmarks"]:
        name = b["name"]
        if f"threads:{threads}/" not in name:
            continue
        cpu = b["cpu_time"] / 1e3  # ms per iteration -> s
        if name.startswith("bm_encode"):
            out["encode"] = (b["median_ms"] / 1e3, cpu)
        else:
            beam = 5 if "batch:5" in name else 1
            out[f"token_beam{beam}"] = (b["median_ms_per_token"] / 1e3, cpu / 32)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    model_dir = os.path.join(ROOT, "models", args.model)
    print(f"model {args.model}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'threads':>7} {'what':<12} {'ct2 wall ms':>11} {'quasr wall':>10} {'ratio':>6} "
          f"{'ct2 cpu ms':>10} {'quasr cpu':>9} {'ratio':>6}")
    for th in args.threads:
        c = ct2_times(model_dir, th, args.repeats)
        q = quasr_times(args.model, th, args.repeats)
        for what in ("encode", "token_beam1", "token_beam5"):
            if what not in c or what not in q:
                continue
            (cw, cc), (qw, qc) = c[what], q[what]
            print(f"{th:>7} {what:<12} {cw*1e3:>11.1f} {qw*1e3:>10.1f} {cw/qw:>6.2f} {cc*1e3:>10.1f} {qc*1e3:>9.1f} "
                  f"{cc/qc:>6.2f}")


if __name__ == "__main__":
    sys.exit(main())
