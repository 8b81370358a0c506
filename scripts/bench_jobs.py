#!/usr/bin/env python3
"""Evaluation throughput: N utterances at once, one thread each (`quasr eval -j N`), against one utterance at a
time on N threads (`-t N`): same model, recipe and utterances, runs interleaved (t j t j ...) so that load from
other work on a shared machine falls on both. Prints each run's wall time and the ratio of the medians, and
checks that both give the same hypotheses.

    python3 scripts/bench_jobs.py [--n 2] [--limit 16] [--recipe fp32] [--reps 2] [--model tiny.en]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--limit", type=int, default=16)
    p.add_argument("--recipe", default="fp32")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--quasr", default=os.path.join(ROOT, "build", "quasr"))
    a = p.parse_args()
    walls = {"-t": [], "-j": []}
    with tempfile.TemporaryDirectory() as tmp:
        def run(flag):
            out = os.path.join(tmp, "out" + flag)
            cmd = [a.quasr, "eval", "--model", a.model, "--recipe", a.recipe, "--data", "mini-eval",
                   "--limit", str(a.limit), flag, str(a.n), "-q", "-o", out]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if r.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
            walls[flag].append(wall)
            with open(os.path.join(out, "utterances.jsonl")) as f:
                return [json.loads(line)["hypothesis"] for line in f]
        for rep in range(1, a.reps + 1):
            hyp_t, hyp_j = run("-t"), run("-j")
            print(f"rep {rep}: -t {a.n} {walls['-t'][-1]:.1f} s, -j {a.n} {walls['-j'][-1]:.1f} s", flush=True)
        same = hyp_t == hyp_j
    mt, mj = statistics.median(walls["-t"]), statistics.median(walls["-j"])
    print(f"{a.model} {a.recipe}, {a.limit} mini-eval utterances: median wall -t {a.n} {mt:.1f} s, -j {a.n} "
          f"{mj:.1f} s; throughput -j / -t = {mt / mj:.2f}; same hypotheses: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
