# Sourced by scripts/demo and scripts/test: make ./.venv with the package installed.
# Works on a fresh Debian machine that has only python3 (installs python3-venv when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    echo "python3 -m venv is unavailable; installing python3-venv with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
fi
export PATH="$PWD/.venv/bin:$PATH"
