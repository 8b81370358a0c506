#!/usr/bin/env bash
# Build quasr and run every test: the Release suite, then the format and core tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer. Does its own setup (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
if [ "${QUASR_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "[test] AddressSanitizer + UndefinedBehaviorSanitizer build (core, formats)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
        -DQUASR_SANITIZE=ON -DQUASR_BUILD_BENCH=OFF > build-asan.log 2>&1 || { cat build-asan.log; exit 1; }
  cmake --build build-asan -j"$(nproc)" --target test_core test_formats quasr
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -R '^(core|formats)\.'
fi
