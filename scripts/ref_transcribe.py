#!/usr/bin/env python3
"""Reference transcriptions from faster-whisper (CTranslate2), for quasr's tests and parity scripts.

Prints one JSON object per input file (JSON Lines) with the same fields as `quasr transcribe -f json`:
file, language, language_probability, duration, text, segments[{id, seek, start, end, text, tokens, temperature,
avg_logprob, compression_ratio, no_speech_prob}], plus wall_s (transcription time of that file).

    .venv/bin/python scripts/ref_transcribe.py --model models/tiny.en --beam 5 FILE...
"""
import argparse
import json
import os
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+")
    p.add_argument("--model", default="models/tiny.en", help="CTranslate2 model directory")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--best-of", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="cpu_threads")
    p.add_argument("--compute-type", default="float32")
    p.add_argument("--language", default=None)
    p.add_argument("--without-timestamps", action="store_true")
    p.add_argument("--temperature", default=None, help="comma-separated temperatures (default 0..1 step 0.2)")
    p.add_argument("--no-condition-on-previous-text", action="store_true")
    p.add_argument("--file-list", help="read more input files from this file, one per line")
    args = p.parse_args()

    from faster_whisper import WhisperModel

    files = list(args.files)
    if args.file_list:
        files += [l.strip() for l in open(args.file_list) if l.strip()]
    t0 = time.perf_counter()
    model = WhisperModel(args.model, device="cpu", compute_type=args.compute_type, cpu_threads=args.threads)
    load_s = time.perf_counter() - t0
    kwargs = dict(beam_size=args.beam, best_of=args.best_of, language=args.language,
                  without_timestamps=args.without_timestamps, vad_filter=False,
                  condition_on_previous_text=not args.no_condition_on_previous_text)
    if args.temperature is not None:
        kwargs["temperature"] = [float(t) for t in args.temperature.split(",")]
    for path in files:
        if path == "-":
            continue
        t0 = time.perf_counter()
        segments, info = model.transcribe(path, **kwargs)
        segs = [dict(id=s.id, seek=s.seek, start=s.start, end=s.end, text=s.text, tokens=list(s.tokens),
                     temperature=s.temperature, avg_logprob=s.avg_logprob,
                     compression_ratio=s.compression_ratio, no_speech_prob=s.no_speech_prob)
                for s in segments]  # the generator does the decoding
        wall = time.perf_counter() - t0
        out = dict(file=path, language=info.language, language_probability=info.language_probability,
                   duration=info.duration, text="".join(s["text"] for s in segs), segments=segs, wall_s=wall)
        print(json.dumps(out, ensure_ascii=False), flush=True)
    print(json.dumps({"load_s": load_s}), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
