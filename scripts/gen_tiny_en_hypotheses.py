#!/usr/bin/env python3
"""Regenerate tests/eval/data/tiny_en_mini_eval_hypotheses.jsonl: faster-whisper tiny.en transcripts of the
mini-eval utterances, used as realistic (mixed case, punctuation, digits) test input for the normalizer and
scorer parity tests. Single-threaded int8 greedy decoding; takes tens of minutes on a busy 2-core machine.

  .venv/bin/python scripts/gen_tiny_en_hypotheses.py [OUT.jsonl]
"""
import glob
import json
import os
import sys

from faster_whisper import WhisperModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, "tests", "eval", "data", "tiny_en_mini_eval_hypotheses.jsonl")
    model = WhisperModel(os.path.join(ROOT, "models", "tiny.en"), device="cpu", compute_type="int8", cpu_threads=1)
    files = sorted(glob.glob("/work/shared/data/LibriSpeech/mini-eval/*/*/*.flac"))
    with open(out_path, "w", encoding="utf-8") as out:
        for f in files:
            segments, _ = model.transcribe(f, beam_size=1, language="en", condition_on_previous_text=False)
            text = "".join(s.text for s in segments).strip()
            out.write(json.dumps({"id": os.path.basename(f)[:-5], "hypothesis": text}, ensure_ascii=False) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
