#!/usr/bin/env python3
"""Parity evidence: quasr vs faster-whisper (CTranslate2, float32) on LibriSpeech mini-eval.

For each model and beam size it runs `quasr transcribe` and faster-whisper (scripts/ref_transcribe.py) over the
same utterances with the same options (faster-whisper defaults, no VAD), normalizes with openai-whisper's
EnglishTextNormalizer (package whisper-normalizer), and reports
  - % of utterances whose normalized transcripts are identical,
  - corpus WER of each against the LibriSpeech references (jiwer),
  - wall time of each process (model load included) and of the transcription alone, and peak RSS.
With --int8-timing, faster-whisper int8 is timed too (beam 1) as a second peer.

With --cache DIR --chunk N each pass runs over chunks of N utterances, and each finished chunk is stored in DIR
(atomically, keyed by engine, model, beam, compute type and the chunk's files), so an interrupted run resumes where
it stopped, even in a later session. Times and CPU seconds are then sums over the chunks (each chunk loads its
model once: use one chunk, the default, for timing claims); peak RSS is the largest chunk's.

    .venv/bin/python scripts/compare_transcripts.py --models tiny.en --beams 1,5 --threads 2 --int8-timing \
        --out build/parity_tiny.json
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# 1-minute load average at the end of each measured process: other work on a shared machine inflates wall times
# (CTranslate2's OpenMP threads spin-wait when cores are oversubscribed), so every row records what the load was.
LOADS = []


def utterances(root, limit, every):
    files, refs = [], {}
    for trans in sorted(Path(root).rglob("*.trans.txt")):
        for line in trans.read_text().splitlines():
            uid, text = line.split(" ", 1)
            refs[uid] = text
            files.append(str(trans.parent / f"{uid}.flac"))
    files.sort()
    files = files[::every]
    if limit:
        files = files[:limit]
    return files, refs


def run_measured(cmd):
    """Runs cmd, returns (stdout, stderr, wall seconds, peak RSS MiB, CPU seconds (user + sys) of that child).

    CPU seconds come from wait4 like the peak RSS: on a shared machine they move less with other load than
    wall time does, so both are reported."""
    import threading
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks = {}
    readers = [threading.Thread(target=lambda k=k, f=f: chunks.__setitem__(k, f.read()))
               for k, f in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    LOADS.append(os.getloadavg()[0])
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = chunks["out"].decode(), chunks["err"].decode()
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd[:8])} ...\n{err[-3000:]}")
    return out, err, wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def cached_chunks(cache, chunk, key, files, run):
    """Runs `run(files_of_chunk)` -> (texts, wall, transcribe_s, peak, cpu) per chunk of `chunk` files, reusing
    chunks stored under `cache`; returns the same tuple summed over chunks (peak: max)."""
    if not cache:
        return run(files)
    import hashlib
    Path(cache).mkdir(parents=True, exist_ok=True)
    texts, wall, tr, peak, cpu = {}, 0.0, 0.0, 0.0, 0.0
    size = chunk or len(files)
    for i in range(0, len(files), size):
        part = files[i:i + size]
        digest = hashlib.sha256("\n".join(part).encode()).hexdigest()[:16]
        path = Path(cache) / f"{key}-{i // size:03d}-{digest}.json"
        if path.exists():
            d = json.loads(path.read_text())
        else:
            t, w, r, pk, c = run(part)
            d = dict(texts=t, wall=w, transcribe_s=r, peak=pk, cpu=c, load_avg_1min=os.getloadavg()[0])
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(d, ensure_ascii=False))
            tmp.replace(path)
            print(f"  {key}: chunk {i // size + 1}/{-(-len(files) // size)} done ({w:.0f} s)", flush=True)
        texts.update(d["texts"])
        wall += d["wall"]; tr += d["transcribe_s"]; cpu += d["cpu"]; peak = max(peak, d["peak"])
    return texts, wall, tr, peak, cpu


def run_quasr(binary, model, beam, threads, files):
    cmd = [binary, "transcribe", "--model", model, "--beam", str(beam), "--threads", str(threads), "-f", "json"] + files
    out, err, wall, peak, cpu = run_measured(cmd)
    texts = {}
    for line in out.splitlines():
        if line.strip():
            d = json.loads(line)
            texts[d["file"]] = d["text"]
    decode_s = sum(float(m) for m in re.findall(r"\| total ([0-9.]+) ms", err)) / 1e3
    load_s = sum(float(m) for m in re.findall(r"timings: .*?: load ([0-9.]+) ms", err)) / 1e3
    return texts, wall, decode_s - load_s, peak, cpu


def run_faster_whisper(python, model_dir, beam, threads, files, compute_type, list_file):
    Path(list_file).write_text("\n".join(files) + "\n")
    cmd = [python, str(ROOT / "scripts/ref_transcribe.py"), "--model", model_dir, "--beam", str(beam),
           "--threads", str(threads), "--compute-type", compute_type, "--file-list", list_file, "-"]
    out, err, wall, peak, cpu = run_measured(cmd)
    texts, transcribe_s = {}, 0.0
    for line in out.splitlines():
        d = json.loads(line)
        texts[d["file"]] = d["text"]
        transcribe_s += d["wall_s"]
    return texts, wall, transcribe_s, peak, cpu


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/work/shared/data/LibriSpeech/mini-eval")
    p.add_argument("--models", default="tiny.en,base")
    p.add_argument("--beams", default="1,5")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--every", type=int, default=1, help="every K-th utterance (sorted by id), spreading a subset over speakers")
    p.add_argument("--limit", type=int, default=0, help="at most N utterances (0 = all)")
    p.add_argument("--quasr", default=str(ROOT / "build/quasr"))
    p.add_argument("--int8-timing", action="store_true", help="also time faster-whisper int8 (beam 1)")
    p.add_argument("--out", help="write all numbers as JSON here")
    p.add_argument("--cache", help="store each finished chunk here and reuse it (resumable runs)")
    p.add_argument("--chunk", type=int, default=0, help="utterances per chunk with --cache (0 = one chunk)")
    args = p.parse_args()

    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    files, refs = utterances(args.data, args.limit, args.every)
    import hashlib
    # quasr's cached chunks are only valid for the binary that made them.
    quasr_id = hashlib.sha256(Path(args.quasr).read_bytes()).hexdigest()[:12]
    ref_norm = [norm(refs[Path(f).stem]) for f in files]
    # One list file per process, so two comparisons can run side by side.
    list_file = str(ROOT / "build" / f"compare_files.{os.getpid()}.txt")
    results = []
    for model in args.models.split(","):
        model_dir = str(ROOT / "models" / model)
        for beam in [int(b) for b in args.beams.split(",")]:
            LOADS.clear()
            # faster-whisper first: its cached chunks stay valid across quasr rebuilds, quasr's do not.
            f_texts, f_wall, f_tr, f_rss, f_cpu = cached_chunks(
                args.cache, args.chunk, f"fw-{model}-b{beam}-float32", files,
                lambda part: run_faster_whisper(sys.executable, model_dir, beam, args.threads, part, "float32", list_file))
            q_texts, q_wall, q_tr, q_rss, q_cpu = cached_chunks(
                args.cache, args.chunk, f"quasr-{quasr_id}-{model}-b{beam}", files,
                lambda part: run_quasr(args.quasr, model, beam, args.threads, part))
            qn = [norm(q_texts[f]) for f in files]
            fn = [norm(f_texts[f]) for f in files]
            identical = sum(a == b for a, b in zip(qn, fn)) / len(files)
            row = dict(model=model, beam=beam, threads=args.threads, utterances=len(files), chunk=args.chunk,
                       identical_pct=100 * identical,
                       wer_quasr=100 * jiwer.wer(ref_norm, qn), wer_faster_whisper=100 * jiwer.wer(ref_norm, fn),
                       quasr_wall_s=q_wall, quasr_transcribe_s=q_tr, quasr_peak_rss_mib=q_rss, quasr_cpu_s=q_cpu,
                       fw_f32_wall_s=f_wall, fw_f32_transcribe_s=f_tr, fw_f32_peak_rss_mib=f_rss, fw_f32_cpu_s=f_cpu,
                       differing=[dict(file=Path(f).stem, quasr=a, faster_whisper=b)
                                  for f, a, b in zip(files, qn, fn) if a != b])
            if args.int8_timing and beam == 1:
                _, i_wall, i_tr, i_rss, i_cpu = cached_chunks(
                    args.cache, args.chunk, f"fw-{model}-b{beam}-int8", files,
                    lambda part: run_faster_whisper(sys.executable, model_dir, beam, args.threads, part, "int8", list_file))
                row.update(fw_int8_wall_s=i_wall, fw_int8_transcribe_s=i_tr, fw_int8_peak_rss_mib=i_rss, fw_int8_cpu_s=i_cpu)
            row["load_avg_1min_after_each_pass"] = list(LOADS)
            results.append(row)
            print(f"{model} beam {beam}: identical {row['identical_pct']:.1f}% | WER quasr {row['wer_quasr']:.2f}% "
                  f"vs faster-whisper {row['wer_faster_whisper']:.2f}% | wall quasr {q_wall:.1f} s "
                  f"(transcribe {q_tr:.1f} s) vs fw-f32 {f_wall:.1f} s (transcribe {f_tr:.1f} s)"
                  + (f" vs fw-int8 {row['fw_int8_wall_s']:.1f} s (transcribe {row['fw_int8_transcribe_s']:.1f} s)"
                     if "fw_int8_wall_s" in row else "")
                  + f" | CPU s quasr {q_cpu:.0f} vs fw-f32 {f_cpu:.0f}"
                  + (f" vs fw-int8 {row['fw_int8_cpu_s']:.0f}" if "fw_int8_cpu_s" in row else "")
                  + f" | peak RSS quasr {q_rss:.0f} MiB, fw {f_rss:.0f} MiB", flush=True)
            if args.out:  # after every row, so an interrupted run keeps what it finished
                tmp = Path(args.out + ".tmp")
                tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
                tmp.replace(args.out)


if __name__ == "__main__":
    main()
