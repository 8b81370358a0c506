#!/usr/bin/env bash
# Configure and build quasr (Release, -O3) into build/. Runs setup first unless QUASR_SKIP_SETUP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${QUASR_SKIP_SETUP:-0}" = 1 ] || scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j"$(nproc)"
