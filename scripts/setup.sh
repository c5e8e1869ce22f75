#!/usr/bin/env bash
# One-time setup on Debian/Ubuntu (run as root, or with sudo available):
# system packages (bubblewrap for the sandbox, chromium for the HTML tests), a virtualenv in .venv,
# the CPU build of torch, then this project with its test and Dask extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v bwrap >/dev/null || ! command -v chromium >/dev/null || ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  $SUDO apt-get install -y bubblewrap chromium python3-venv >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq bubblewrap chromium python3-venv >/dev/null; }
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The pinned CPU wheel first: an unpinned `torch` would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[test,dask]'
