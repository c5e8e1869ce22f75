#!/usr/bin/env bash
# One-time setup on Debian/Ubuntu (run as root, or with sudo available):
# system packages (bubblewrap for the sandbox, chromium for the HTML tests, a CJK font so the pages'
# Chinese is drawn as text, not boxes), a virtualenv in .venv, the CPU build of torch, then this
# project with its test and Dask extras. Nothing is installed into the system's Python.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Python 3.11 or newer (the project's floor, see pyproject.toml): the first one found.
PY=""
for candidate in python3 python3.13 python3.12 python3.11; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY=$candidate
    break
  fi
done
if [ -z "$PY" ]; then
  echo "error: Python 3.11 or newer is needed and none was found (python3 is $(python3 --version 2>&1))." >&2
  echo "       On Ubuntu 22.04: $SUDO apt-get install -y python3.11 python3.11-venv; then run this script again." >&2
  exit 1
fi
VERSION=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v chromium >/dev/null || need+=(chromium)
fc-list :lang=zh family 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
"$PY" -c "import venv, ensurepip" 2>/dev/null || need+=("python$VERSION-venv")
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get install -y "${need[@]}" >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; }
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The pinned CPU wheel first: an unpinned `torch` would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[test,dask]'
