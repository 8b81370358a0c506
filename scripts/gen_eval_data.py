#!/usr/bin/env python3
"""Regenerate the data files quasr's eval/ module is built from, so that the C++ needs no Python at run time.

  .venv/bin/python scripts/gen_eval_data.py

Writes
  data/english_spelling.json   British->American spelling map copied from openai-whisper's
                               whisper/normalizers/english.json (MIT License, Copyright (c) 2022 OpenAI),
                               and data/english_spelling.json.LICENSE, that license.
  src/eval/unicode_*.inc       the Unicode properties Python's `re`, `str.lower()` and `unicodedata` use in
                               whisper's normalizers, taken from this Python's unicodedata so that the C++ agrees
                               with the reference character for character (same Unicode version).
"""
import json
import os
import re
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_CP = 0x110000


def find_whisper_normalizers():
    import importlib.util
    spec = importlib.util.find_spec("whisper")
    if spec is None or spec.submodule_search_locations is None:
        sys.exit("openai-whisper is not installed: .venv/bin/pip install --no-deps -r scripts/requirements-nodeps.txt")
    return os.path.join(list(spec.submodule_search_locations)[0], "normalizers")


def write_spelling_map():
    src = os.path.join(find_whisper_normalizers(), "english.json")
    with open(src, encoding="utf-8") as f:
        mapping = json.load(f)
    out = os.path.join(ROOT, "data", "english_spelling.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(mapping, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out}: {len(mapping)} entries")
    # Ship openai-whisper's license next to the copied data.
    import importlib.metadata
    dist = importlib.metadata.distribution("openai-whisper")
    lic = next((f for f in dist.files if f.name.startswith("LICENSE")), None)
    if lic is None:
        sys.exit("openai-whisper's LICENSE file not found in its distribution")
    with open(out + ".LICENSE", "w", encoding="utf-8") as f:
        f.write(f"data/english_spelling.json is copied from openai-whisper {dist.version} "
                "(whisper/normalizers/english.json), under this license:\n\n")
        f.write(dist.locate_file(lic).read_text(encoding="utf-8"))
    print(f"wrote {out}.LICENSE")


# Character classes, packed in one byte: bits 0-4 are flags, bits 5-7 the category class.
WORD, DIGIT, SPACE, CASED, CASE_IGNORABLE = 1, 2, 4, 8, 16
CLASS_OTHER, CLASS_MN, CLASS_MARK, CLASS_SYMBOL, CLASS_PUNCT = 0, 1, 2, 3, 4


def char_flags(cp):
    c = chr(cp)
    f = 0
    if re.match(r"\w", c):
        f |= WORD
    if re.match(r"\d", c):
        f |= DIGIT
    if c.isspace():
        assert re.match(r"\s", c), hex(cp)
        f |= SPACE
    else:
        assert not re.match(r"\s", c), hex(cp)
    # str.lower() picks final sigma by looking through case-ignorable characters for a cased one; probe both
    # properties through that very rule (see the C++ comment next to final sigma).
    if cp not in (0x3A3,) and not (0xD800 <= cp < 0xE000):
        t1 = ("A" + c + "\u03a3").lower()[-1] == "\u03c2"
        t2 = (" " + c + "\u03a3").lower()[-1] == "\u03c2"
        if t2:
            f |= CASED
        elif t1:
            f |= CASE_IGNORABLE
    elif cp == 0x3A3:
        f |= CASED
    cat = unicodedata.category(c)
    cls = CLASS_OTHER
    if cat == "Mn":
        cls = CLASS_MN
    elif cat[0] == "M":
        cls = CLASS_MARK
    elif cat[0] == "S":
        cls = CLASS_SYMBOL
    elif cat[0] == "P":
        cls = CLASS_PUNCT
    return f | (cls << 5)


def hexcp(cp):
    return f"0x{cp:04X}"


def rows(items, per_line):
    return "\n".join("  " + " ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def write_unicode_tables():
    # 1. character class ranges: (first code point, flags) at every change.
    ranges = []
    prev = None
    for cp in range(MAX_CP):
        f = char_flags(cp)
        if f != prev:
            ranges.append((cp, f))
            prev = f
    # 2. decimal digits: the zero of every run of ten (Python's int()/Fraction() accept any of them).
    zeros = []
    for cp in range(MAX_CP):
        c = chr(cp)
        if unicodedata.category(c) == "Nd" and unicodedata.decimal(c) == 0:
            for k in range(10):
                assert unicodedata.decimal(chr(cp + k)) == k, hex(cp)
            zeros.append(cp)
    n_nd = sum(1 for cp in range(MAX_CP) if unicodedata.category(chr(cp)) == "Nd")
    assert n_nd == 10 * len(zeros)
    # 3. str.lower() (full case mapping; final sigma is contextual and handled in code).
    lower = []
    for cp in range(MAX_CP):
        if 0xD800 <= cp < 0xE000 or cp == 0x3A3:
            continue
        lo = chr(cp).lower()
        if lo != chr(cp):
            assert len(lo) <= 2, hex(cp)
            lower.append((cp, ord(lo[0]), ord(lo[1]) if len(lo) > 1 else 0))
    # 4. NFKD of single code points (Hangul syllables are decomposed arithmetically in code).
    decomp = []
    pool = []
    for cp in range(MAX_CP):
        if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp < 0xE000:
            continue
        d = unicodedata.normalize("NFKD", chr(cp))
        if d != chr(cp):
            decomp.append((cp, len(pool), len(d)))
            pool.extend(ord(x) for x in d)
    # 5. canonical combining classes (for canonical ordering and composition blocking).
    ccc = []
    run = None
    for cp in range(MAX_CP):
        v = unicodedata.combining(chr(cp))
        if run and v == run[2] and cp == run[1] + 1:
            run[1] = cp
            continue
        if run and run[2] != 0:
            ccc.append(tuple(run))
        run = [cp, cp, v]
    if run and run[2] != 0:
        ccc.append(tuple(run))
    # 6. canonical composition pairs (primary composites), for NFKC; Hangul LV/LVT in code.
    compose = []
    for cp in range(MAX_CP):
        if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp < 0xE000:
            continue
        dec = unicodedata.decomposition(chr(cp))
        if not dec or dec.startswith("<"):
            continue
        parts = [int(x, 16) for x in dec.split()]
        if len(parts) != 2:
            continue
        if unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(cp):
            compose.append((parts[0], parts[1], cp))
    compose.sort()

    header = ("// Generated by scripts/gen_eval_data.py from Python " + sys.version.split()[0] +
              " unicodedata (Unicode " + unicodedata.unidata_version + "). Do not edit.\n")
    out = os.path.join(ROOT, "src", "eval", "unicode_properties.inc")
    with open(out, "w") as f:
        f.write(header)
        f.write(f"// {len(ranges)} class ranges, {len(zeros)} digit runs, {len(lower)} lowercase mappings, "
                f"{len(ccc)} combining-class runs.\n")
        f.write(f'#define QUASR_UNICODE_VERSION "{unicodedata.unidata_version}"\n')
        f.write("static constexpr ClassRange kClassRanges[] = {\n")
        f.write(rows([f"{{{hexcp(a)},{b}}}," for a, b in ranges], 12) + "\n};\n")
        f.write("static constexpr char32_t kDigitZeros[] = {\n")
        f.write(rows([f"{hexcp(a)}," for a in zeros], 12) + "\n};\n")
        f.write("static constexpr LowerMapping kLower[] = {\n")
        f.write(rows([f"{{{hexcp(a)},{hexcp(b)},{hexcp(c)}}}," for a, b, c in lower], 7) + "\n};\n")
        f.write("static constexpr CombiningRun kCombiningRuns[] = {\n")
        f.write(rows([f"{{{hexcp(a)},{hexcp(b)},{c}}}," for a, b, c in ccc], 7) + "\n};\n")
    print(f"wrote {out}")
    out = os.path.join(ROOT, "src", "eval", "unicode_decompositions.inc")
    with open(out, "w") as f:
        f.write(header)
        f.write(f"// {len(decomp)} NFKD decompositions ({len(pool)} code points), "
                f"{len(compose)} canonical composition pairs.\n")
        f.write("static constexpr Decomposition kDecompositions[] = {\n")
        f.write(rows([f"{{{hexcp(a)},{b},{c}}}," for a, b, c in decomp], 9) + "\n};\n")
        f.write("static constexpr char32_t kDecompositionPool[] = {\n")
        f.write(rows([f"{hexcp(a)}," for a in pool], 16) + "\n};\n")
        f.write("static constexpr Composition kCompositions[] = {\n")
        f.write(rows([f"{{{hexcp(a)},{hexcp(b)},{hexcp(c)}}}," for a, b, c in compose], 6) + "\n};\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    write_spelling_map()
    write_unicode_tables()
