#!/usr/bin/env python3
"""Reference text normalization for quasr's eval tests: openai-whisper's own normalizers.

  .venv/bin/python scripts/ref_normalize.py {english|basic|basic-nodiacritics|lower|nfkd|nfkc} IN.jsonl OUT.jsonl

IN holds one JSON string per line; OUT gets the normalized strings, one JSON string per line, same order.
lower/nfkd/nfkc are Python's str.lower() and unicodedata.normalize(), the primitives the normalizers use.
openai-whisper is installed with --no-deps (it would pull torch); its whisper/normalizers package needs only
`regex` and `more-itertools`, so it is imported by file path without importing whisper/__init__.py (which
imports torch).
"""
import importlib.util
import json
import os
import sys


def load_whisper_normalizers():
    spec = importlib.util.find_spec("whisper")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("openai-whisper is not installed: .venv/bin/pip install --no-deps -r scripts/requirements-nodeps.txt")
    pkg_dir = os.path.join(list(spec.submodule_search_locations)[0], "normalizers")
    pkg_spec = importlib.util.spec_from_file_location(
        "whisper_normalizers", os.path.join(pkg_dir, "__init__.py"), submodule_search_locations=[pkg_dir])
    module = importlib.util.module_from_spec(pkg_spec)
    sys.modules["whisper_normalizers"] = module
    pkg_spec.loader.exec_module(module)
    return module


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    kind, src, dst = sys.argv[1:]
    if kind in ("lower", "nfkd", "nfkc"):
        import unicodedata
        normalize = str.lower if kind == "lower" else (lambda t: unicodedata.normalize(kind.upper(), t))
    else:
        normalizers = load_whisper_normalizers()
    if kind in ("lower", "nfkd", "nfkc"):
        pass
    elif kind == "english":
        normalize = normalizers.EnglishTextNormalizer()
    elif kind == "basic":
        normalize = normalizers.BasicTextNormalizer()
    elif kind == "basic-nodiacritics":
        normalize = normalizers.BasicTextNormalizer(remove_diacritics=True)
    else:
        sys.exit(f"unknown normalizer {kind!r}")
    with open(src, encoding="utf-8") as f:
        texts = [json.loads(line) for line in f if line.strip()]
    with open(dst, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(normalize(t), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
