#!/usr/bin/env bash
# quasr's main job, end to end: install what is needed, build, then evaluate Whisper tiny.en on real LibriSpeech
# speech (a slice of mini-eval) under the default grid (examples/grids/default.grid: the FP32 baseline and a few
# quantization recipes), printing each scheme's accuracy / size / memory / speed and where the results are.
#
#   bash scripts/demo.sh                      # 40 utterances, 2 threads
#   QUASR_DEMO_LIMIT=100 QUASR_DEMO_THREADS=8 QUASR_DEMO_OUT=my-eval bash scripts/demo.sh
#   QUASR_SKIP_SETUP=1 QUASR_SKIP_BUILD=1 bash scripts/demo.sh   # reuse an existing build
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${QUASR_DEMO_LIMIT:-40}"
THREADS="${QUASR_DEMO_THREADS:-2}"
OUT="${QUASR_DEMO_OUT:-demo-out}"
MODEL="${QUASR_DEMO_MODEL:-tiny.en}"
DATA="${QUASR_DEMO_DATA:-mini-eval}"
GRID="${QUASR_DEMO_GRID:-examples/grids/default.grid}"
QUASR="${QUASR_BIN:-build/quasr}"

start=$(date +%s)
[ "${QUASR_SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh
[ "${QUASR_SKIP_BUILD:-0}" = 1 ] || QUASR_SKIP_SETUP=1 scripts/build.sh

# The grid's recipes in order: the baseline first, then every `recipe` line.
mapfile -t recipes < <(awk '$1 == "baseline" || $1 == "recipe" { print $2 }' "$GRID")
[ "${#recipes[@]}" -gt 0 ] || { echo "demo: no recipes in $GRID" >&2; exit 1; }

mkdir -p "$OUT"
baseline_dir=""
for recipe in "${recipes[@]}"; do
  dir="$OUT/$recipe"
  echo "== $MODEL, recipe $recipe, $LIMIT utterances of $DATA ($THREADS threads)"
  args=(eval --model "$MODEL" --recipe "$recipe" --data "$DATA" --limit "$LIMIT" --threads "$THREADS" -o "$dir"
        --resume --quiet)
  [ -n "$baseline_dir" ] && args+=(--baseline "$baseline_dir")
  "$QUASR" "${args[@]}"
  [ -n "$baseline_dir" ] || baseline_dir="$dir"
done
echo
echo "demo: done in $(( $(date +%s) - start )) s. Results: $OUT/<recipe>/summary.json (accuracy, size, memory, speed)"
echo "      and $OUT/<recipe>/utterances.jsonl (per utterance); rerunning resumes where it stopped."
