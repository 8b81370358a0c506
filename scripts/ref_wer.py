#!/usr/bin/env python3
"""Reference scoring for quasr's eval tests: jiwer (PyPI) word/character error rates, and an exact sign test.

  .venv/bin/python scripts/ref_wer.py wer PAIRS.jsonl OUT.json
      PAIRS: one {"ref": ..., "hyp": ...} per line (already normalized text; references must be non-empty,
      jiwer rejects empty ones). OUT: {"utterances": [{wer, cer, hits, substitutions, deletions, insertions,
      char_hits, char_substitutions, char_deletions, char_insertions}...], "corpus": {wer, cer, ...}}
  .venv/bin/python scripts/ref_wer.py signtest COUNTS.jsonl OUT.json
      COUNTS: one [successes, failures] per line. OUT: [p, ...], the two-sided exact binomial(1/2) p-value
      2 * P(X <= min(successes, failures)) capped at 1, computed with exact integers.
"""
import json
import sys
from fractions import Fraction
from math import comb


def counts(out, prefix=""):
    return {prefix + "hits": out.hits, prefix + "substitutions": out.substitutions,
            prefix + "deletions": out.deletions, prefix + "insertions": out.insertions}


def wer_mode(src, dst):
    import jiwer
    with open(src, encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    utterances = []
    for p in pairs:
        w = jiwer.process_words(p["ref"], p["hyp"])
        c = jiwer.process_characters(p["ref"], p["hyp"])
        utterances.append({"wer": w.wer, "cer": c.cer, **counts(w), **counts(c, "char_")})
    refs = [p["ref"] for p in pairs]
    hyps = [p["hyp"] for p in pairs]
    w = jiwer.process_words(refs, hyps)
    c = jiwer.process_characters(refs, hyps)
    corpus = {"wer": w.wer, "cer": c.cer, **counts(w), **counts(c, "char_")}
    with open(dst, "w", encoding="utf-8") as f:
        json.dump({"utterances": utterances, "corpus": corpus}, f)


def signtest_mode(src, dst):
    out = []
    with open(src) as f:
        for line in f:
            if not line.strip():
                continue
            s, fl = json.loads(line)
            n, k = s + fl, min(s, fl)
            if n == 0:
                out.append(1.0)
                continue
            tail = Fraction(sum(comb(n, i) for i in range(k + 1)), 2 ** n)
            out.append(float(min(Fraction(1), 2 * tail)))
    with open(dst, "w") as f:
        json.dump(out, f)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("wer", "signtest"):
        sys.exit(__doc__)
    (wer_mode if sys.argv[1] == "wer" else signtest_mode)(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
