#!/usr/bin/env bash
# Wall time and peak RSS of `quasr transcribe` (FP32) against faster-whisper float32 and int8 on the same
# LibriSpeech mini-eval utterances, greedy (beam 1), 2 threads each, one process per run (model load included;
# transcription-only time reported too). Also prints the parity numbers of that run.
#   scripts/bench_transcribe.sh [N_UTTERANCES=532] [MODEL=tiny.en] [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-532}; MODEL=${2:-tiny.en}; THREADS=${3:-2}
[ -x build/quasr ] || { echo "build quasr first: scripts/build.sh" >&2; exit 1; }
mkdir -p build
exec .venv/bin/python scripts/compare_transcripts.py --models "$MODEL" --beams 1 --threads "$THREADS" \
  --limit "$N" --int8-timing --out "build/bench_transcribe_${MODEL}_${N}.json"
