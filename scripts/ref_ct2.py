#!/usr/bin/env python3
"""Reference outputs of CTranslate2's Whisper (compute_type=float32) for quasr's model tests.

For each audio file, writes into OUT/<stem>/:
  features.f32   log-mel features as faster-whisper computes them, padded/trimmed to 3000 frames
                 ([n_mels][3000], float32 little-endian)
  encoder.f32    ctranslate2 Whisper.encode(features)  ([n_audio_ctx][d_model])
  logits.f32     decoder logits after each prefix sot + text[:j], j = 0..n_text ([n_text + 1][n_vocab]),
                 fed with ctranslate2's own encoder output; from generate(return_logits_vocab=True) with the
                 text forced and every logits processor disabled
  greedy.json    {"prefix": [...], "tokens": [...]}: ctranslate2 greedy tokens after the prefix (EOT excluded)
and OUT/meta.json with the model's n_mels, the prefix and the ctranslate2 version.

The token prefix is the SOT sequence (<|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|>) followed
by the first tokens of the reference transcript, so the logits cover real text positions.

Usage: .venv/bin/python scripts/ref_ct2.py --model models/tiny.en --out DIR [--threads 1] [--what all] a.flac ...
"""
import argparse
import json
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="CTranslate2 Whisper model directory")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--text-tokens", type=int, default=6, help="transcript tokens appended to the SOT sequence")
    ap.add_argument("--max-length", type=int, default=448, help="greedy decoding length limit")
    ap.add_argument("audio", nargs="+")
    args = ap.parse_args()

    import ctranslate2
    from faster_whisper.audio import decode_audio, pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor
    import tokenizers

    model = ctranslate2.models.Whisper(args.model, device="cpu", compute_type="float32",
                                       intra_threads=args.threads, inter_threads=1)
    fe = FeatureExtractor(feature_size=model.n_mels)
    tok = tokenizers.Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))

    sot = [tok.token_to_id("<|startoftranscript|>")]
    if model.is_multilingual:
        sot += [tok.token_to_id("<|en|>"), tok.token_to_id("<|transcribe|>")]
    sot += [tok.token_to_id("<|notimestamps|>")]

    os.makedirs(args.out, exist_ok=True)
    meta = {"n_mels": model.n_mels, "ctranslate2": ctranslate2.__version__, "clips": []}
    for path in args.audio:
        stem = os.path.splitext(os.path.basename(path))[0]
        d = os.path.join(args.out, stem)
        os.makedirs(d, exist_ok=True)
        audio = decode_audio(path, sampling_rate=16000)
        feats = pad_or_trim(fe(audio)[:, :3000]).astype(np.float32)
        feats = np.ascontiguousarray(feats)
        feats.tofile(os.path.join(d, "features.f32"))

        sv = ctranslate2.StorageView.from_array(feats[None])
        enc = np.array(model.encode(sv, to_cpu=True))[0].astype(np.float32)
        enc.tofile(os.path.join(d, "encoder.f32"))
        enc_sv = ctranslate2.StorageView.from_array(enc[None])

        # Transcript tokens for the prefix: the clip's line in the LibriSpeech transcript if present.
        text = transcript_for(path)
        text_ids = tok.encode(" " + text.lower().capitalize(), add_special_tokens=False).ids if text else []
        prefix = sot + text_ids[: args.text_tokens]

        # One decoding with the prefix forced: ctranslate2 returns the logits of every step, forced ones
        # included, so row j holds the logits after sot + text[:j] (no logits processor is active: the SOT
        # sequence ends in <|notimestamps|> and suppression is off).
        r = model.generate(enc_sv, [prefix], beam_size=1, max_length=args.max_length, return_logits_vocab=True,
                           suppress_blank=False, suppress_tokens=[])[0]
        n_rows = len(prefix) - len(sot) + 1
        if len(r.logits[0]) < n_rows:
            raise SystemExit(f"{path}: ctranslate2 returned {len(r.logits[0])} logit rows, expected {n_rows}")
        rows = [np.array(r.logits[0][j], dtype=np.float32) for j in range(n_rows)]
        np.stack(rows).tofile(os.path.join(d, "logits.f32"))

        g = model.generate(enc_sv, [sot], beam_size=1, max_length=args.max_length, suppress_blank=False,
                           suppress_tokens=[])[0]
        with open(os.path.join(d, "greedy.json"), "w") as f:
            json.dump({"prefix": sot, "tokens": g.sequences_ids[0]}, f)
        meta["clips"].append({"stem": stem, "sot": sot, "prefix": prefix, "n_logits": len(rows)})
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f)


def transcript_for(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    parts = stem.split("-")
    if len(parts) != 3:
        return ""
    trans = os.path.join(os.path.dirname(path), f"{parts[0]}-{parts[1]}.trans.txt")
    if not os.path.exists(trans):
        return ""
    with open(trans) as f:
        for line in f:
            key, _, text = line.strip().partition(" ")
            if key == stem:
                return text
    return ""


if __name__ == "__main__":
    sys.exit(main())
