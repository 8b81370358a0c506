#!/usr/bin/env bash
# quasr's main job, end to end: install what is needed, build, then evaluate Whisper tiny.en on real LibriSpeech
# speech (a slice of mini-eval) under the default grid (examples/grids/default.grid: the FP32 baseline and a few
# quantization recipes) with `quasr sweep`, and print where the report (HTML, Markdown, CSV, JSONL) is.
#
#   bash scripts/demo.sh                      # 20 utterances, one per core at a time (-j $(nproc))
#   QUASR_DEMO_LIMIT=100 QUASR_DEMO_JOBS=8 QUASR_DEMO_OUT=my-sweep bash scripts/demo.sh
#   QUASR_SKIP_SETUP=1 QUASR_SKIP_BUILD=1 bash scripts/demo.sh   # reuse an existing build
# Rerunning resumes: finished points are kept in $OUT/points.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${QUASR_DEMO_LIMIT:-20}"
# Utterances decoded at once, one thread each: the records of -t 1, 1.4-1.7x the throughput of -t 2 on two
# cores (docs/benchmarks.md); the report's speeds are then per stream.
JOBS="${QUASR_DEMO_JOBS:-$(nproc)}"
OUT="${QUASR_DEMO_OUT:-demo-out}"
MODEL="${QUASR_DEMO_MODEL:-tiny.en}"
DATA="${QUASR_DEMO_DATA:-mini-eval}"
GRID="${QUASR_DEMO_GRID:-examples/grids/default.grid}"
QUASR="${QUASR_BIN:-build/quasr}"

start=$(date +%s)
[ "${QUASR_SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh
[ "${QUASR_SKIP_BUILD:-0}" = 1 ] || QUASR_SKIP_SETUP=1 scripts/build.sh

echo "== $MODEL on $LIMIT utterances of $DATA, grid $GRID, $JOBS utterances at a time (beam 1)"
"$QUASR" sweep "$GRID" --model "$MODEL" --data "$DATA" --limit "$LIMIT" --jobs "$JOBS" -o "$OUT" \
  --progress lines
echo
cat "$OUT/results.md"
echo
echo "demo: done in $(( $(date +%s) - start )) s. Report: $OUT/report.html (open in a browser), $OUT/results.md,"
echo "      $OUT/results.csv, $OUT/results.jsonl, $OUT/pareto.json. Per scheme in detail:"
echo "      quasr eval --model $MODEL --recipe <recipe> --data $DATA --limit $LIMIT -o DIR"
