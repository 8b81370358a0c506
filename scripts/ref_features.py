#!/usr/bin/env python3
"""Reference audio samples and log-mel features from faster-whisper, for quasr's audio tests and docs.

    .venv/bin/python scripts/ref_features.py [--n-mels 80 128] [--padding 160] -- OUT_DIR INPUT...

Each INPUT is an audio file, decoded with faster_whisper.audio.decode_audio (PyAV/ffmpeg, 16 kHz mono);
`raw:PATH`, a file of little-endian float32 samples at 16 kHz used as the waveform as is; or `resampled:RATE:PATH`,
PATH decoded at 16 kHz, resampled to RATE Hz by PyAV (ffmpeg's swresample) and written as a 16-bit mono WAV
OUT_DIR/i.input.wav (manifest key "written_input"), which is then decoded like a file -- a non-16-kHz version of
real speech for comparing resamplers. For input i the script
writes OUT_DIR/i.samples.f32 (the waveform) and OUT_DIR/i.mel<N>.f32 (FeatureExtractor(feature_size=N)(waveform,
padding), float32 [N][frames]); OUT_DIR/filters<N>.f32 holds the mel filter bank ([N][201], float32);
OUT_DIR/manifest.json describes all of it. An input the reference rejects (e.g. too short for one frame) gets an
"error" entry instead of a file.
"""
import argparse
import json
import os
import sys

import wave

import av
import numpy as np
from faster_whisper.audio import decode_audio
from faster_whisper.feature_extractor import FeatureExtractor


def write_resampled_wav(source: str, rate: int, path: str) -> None:
    pcm = np.round(decode_audio(source) * 32768.0).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 16000
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=rate)
    chunks = [f.to_ndarray() for f in resampler.resample(frame)] + [f.to_ndarray() for f in resampler.resample(None)]
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(chunks, axis=1).astype("<i2").tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("inputs", nargs="*")
    parser.add_argument("--n-mels", type=int, nargs="*", default=[80, 128])
    parser.add_argument("--padding", type=int, default=160)
    args = parser.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    extractors = {n: FeatureExtractor(feature_size=n) for n in args.n_mels}
    manifest = {"padding": args.padding, "filters": {}, "inputs": []}
    for n, fe in extractors.items():
        name = f"filters{n}.f32"
        fe.mel_filters.astype("<f4").tofile(os.path.join(args.out_dir, name))
        manifest["filters"][str(n)] = {"file": name, "shape": list(fe.mel_filters.shape)}

    for i, spec in enumerate(args.inputs):
        entry = {"input": spec}
        if spec.startswith("raw:"):
            waveform = np.fromfile(spec[4:], dtype="<f4")
        elif spec.startswith("resampled:"):
            _, rate, source = spec.split(":", 2)
            entry["written_input"] = os.path.join(args.out_dir, f"{i}.input.wav")
            write_resampled_wav(source, int(rate), entry["written_input"])
            waveform = decode_audio(entry["written_input"])
        else:
            waveform = decode_audio(spec)
        entry.update({"n_samples": int(waveform.shape[0]), "samples": f"{i}.samples.f32", "mel": {}})
        waveform.astype("<f4").tofile(os.path.join(args.out_dir, entry["samples"]))
        for n, fe in extractors.items():
            try:
                mel = fe(waveform, padding=args.padding)
            except ValueError as e:  # e.g. zero frames: the reference takes the max of an empty array
                entry["mel"][str(n)] = {"error": str(e)}
                continue
            name = f"{i}.mel{n}.f32"
            np.ascontiguousarray(mel, dtype="<f4").tofile(os.path.join(args.out_dir, name))
            entry["mel"][str(n)] = {"file": name, "n_frames": int(mel.shape[1])}
        manifest["inputs"].append(entry)

    with open(os.path.join(args.out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
