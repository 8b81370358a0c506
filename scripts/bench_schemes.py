#!/usr/bin/env python3
"""End-to-end cost of each quantization scheme: quasr's native kernels beside faster-whisper int8 (issue #4).

For one model it writes each recipe's .quasr container (`quasr quantize`, timed apart), then, one process per pass
and one pass after the other over the same LibriSpeech utterances, greedy, runs `quasr transcribe` on the FP32
model and on every container, and faster-whisper int8 (scripts/ref_transcribe.py). Per pass it reports wall time
(model load included), transcription time, CPU seconds and peak RSS of the process, the model file's size, the
corpus WER (openai-whisper's EnglishTextNormalizer, jiwer) and the % of utterances whose transcript equals quasr
FP32's. Speed claims are ratios against faster-whisper int8 measured in the same run (docs/benchmarks.md).

    .venv/bin/python scripts/bench_schemes.py --model tiny.en --out build/schemes_tiny.json

With --cache DIR --chunk N each pass is stored per chunk of N utterances and reused (resumable; times are then sums
over chunks, each chunk loading its model again: use one chunk, the default, for timing claims).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_transcripts as ct  # noqa: E402  (utterance list, measured runs, chunk cache)

ROOT = ct.ROOT
DEFAULT_RECIPES = "fp32,w8a8,w4a8-g128,w4-g128,mxfp4,nvfp4"


def write_container(quasr, model, recipe, out_dir):
    path = Path(out_dir) / f"{model}-{recipe}.quasr"
    if not path.exists():  # quasr writes it atomically: an existing file is complete
        t0 = time.perf_counter()
        subprocess.run([quasr, "quantize", "--model", model, "--recipe", recipe, "-o", str(path)], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"  quantized {recipe} in {time.perf_counter() - t0:.1f} s -> {path}", flush=True)
    return path


def model_file_bytes(model):
    return (ROOT / "models" / model / "model.bin").stat().st_size


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/work/shared/data/LibriSpeech/mini-eval")
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--recipes", default=DEFAULT_RECIPES,
                   help="comma-separated, or ';'-separated when a recipe has commas itself "
                        "(e.g. 'fp32;w8a8,embed=on'); fp32 = the unquantized model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--every", type=int, default=1, help="every K-th utterance (sorted by id)")
    p.add_argument("--limit", type=int, default=0, help="at most N utterances (0 = all)")
    p.add_argument("--quasr", default=str(ROOT / "build/quasr"))
    p.add_argument("--containers", default=str(ROOT / "build/schemes"), help="where the .quasr files are written")
    p.add_argument("--out", help="write all numbers as JSON here (after every pass)")
    p.add_argument("--cache", help="store each finished chunk here and reuse it (resumable runs)")
    p.add_argument("--chunk", type=int, default=0, help="utterances per chunk with --cache (0 = one chunk)")
    args = p.parse_args()

    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    files, refs = ct.utterances(args.data, args.limit, args.every)
    if not files:
        sys.exit(f"no utterances under {args.data}")
    ref_norm = [norm(refs[Path(f).stem]) for f in files]
    quasr_id = hashlib.sha256(Path(args.quasr).read_bytes()).hexdigest()[:12]
    list_file = str(ROOT / "build" / f"bench_schemes_files.{os.getpid()}.txt")
    Path(args.containers).mkdir(parents=True, exist_ok=True)
    recipes = [r for r in args.recipes.split(";" if ";" in args.recipes else ",") if r]
    models = {r: (args.model if r == "fp32" else str(write_container(args.quasr, args.model, r, args.containers)))
              for r in recipes}

    rows, fp32_texts = [], None

    def record(label, texts, wall, tr, rss, cpu, size):
        nonlocal fp32_texts
        hyp = [norm(texts[f]) for f in files]
        row = dict(scheme=label, utterances=len(files), threads=args.threads, wall_s=wall, transcribe_s=tr,
                   cpu_s=cpu, peak_rss_mib=rss, file_bytes=size, wer=100 * jiwer.wer(ref_norm, hyp),
                   load_avg_1min=os.getloadavg()[0])
        if label == "fp32":
            fp32_texts = hyp
        if fp32_texts is not None:
            row["identical_to_fp32_pct"] = 100 * sum(a == b for a, b in zip(hyp, fp32_texts)) / len(files)
        rows.append(row)
        print(f"{args.model} {label}: wall {wall:.1f} s (transcribe {tr:.1f} s), CPU {cpu:.0f} s, peak RSS {rss:.0f} MiB, "
              f"file {size / 2**20:.1f} MiB, WER {row['wer']:.2f} %", flush=True)
        if args.out:
            tmp = Path(args.out + ".tmp")
            tmp.write_text(json.dumps(dict(model=args.model, data=args.data, rows=rows), indent=1))
            tmp.replace(args.out)

    for r in recipes:
        size = model_file_bytes(args.model) if r == "fp32" else Path(models[r]).stat().st_size
        result = ct.cached_chunks(args.cache, args.chunk, f"quasr-{quasr_id}-{args.model}-{r}-b1", files,
                                  lambda part, m=models[r]: ct.run_quasr(args.quasr, m, 1, args.threads, part))
        record(r, *result, size)
    fw = ct.cached_chunks(args.cache, args.chunk, f"fw-{args.model}-b1-int8", files,
                          lambda part: ct.run_faster_whisper(sys.executable, str(ROOT / "models" / args.model), 1,
                                                             args.threads, part, "int8", list_file))
    record("faster-whisper int8", *fw, model_file_bytes(args.model))
    base = rows[-1]["wall_s"]
    print("\n| scheme | wall s | fw int8 wall / wall | CPU s | peak RSS MiB | file MiB | WER % | = FP32 % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['scheme']} | {row['wall_s']:.1f} | {base / row['wall_s']:.2f} | {row['cpu_s']:.0f} | "
              f"{row['peak_rss_mib']:.0f} | {row['file_bytes'] / 2**20:.1f} | {row['wer']:.2f} | "
              f"{row.get('identical_to_fp32_pct', float('nan')):.1f} |")


if __name__ == "__main__":
    main()
