#!/usr/bin/env python3
"""Markdown rows for docs/results.md from a merged sweep's results.jsonl: WER with its interval, the paired
difference from the baseline, the Linear layers' size and the modelled memory.

    python3 scripts/results_table.py OUT/results.jsonl
"""
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| scheme | recipe | WER % [95% CI] | − FP32, paired [95% CI] | linear MiB | linear bits/weight | linear × vs FP32 | memory MiB (modelled) |")
print("|---|---|---|---|---:|---:|---:|---:|")
for r in rows:
    s = r["summary"]; ci = s["wer_ci"]
    lin = r["extra"]["size"]["linear"]
    d = r["vs_baseline"]
    dtxt = "" if d is None else f"{100*d['delta']:+.2f} [{100*d['delta_ci']['lower']:+.2f}, {100*d['delta_ci']['upper']:+.2f}]"
    rss = r["extra"]["memory"]["modelled"]["total"] / 2**20
    print(f"| {r['label']} | `{r['recipe']}` | {100*s['wer']:.2f} [{100*ci['lower']:.2f}, {100*ci['upper']:.2f}] | {dtxt} | "
          f"{lin['bytes']/2**20:.2f} | {lin['bits_per_weight']:.2f} | {lin['compression_vs_fp32']:.2f} | {rss:.0f} |")
