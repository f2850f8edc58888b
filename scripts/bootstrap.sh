#!/usr/bin/env bash
# Idempotent set-up: a virtual environment at .venv with the pinned Python packages and the project
# (editable), and node_modules with the pinned npm tools (solc, anvil, js-ipfs, circom, snarkjs).
# Nothing here downloads a binary outside the Python and npm registries.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
py_stamp=$(stamp requirements.lock pyproject.toml)
if [ "$(cat .venv/.fedmarket-stamp 2>/dev/null)" != "$py_stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$py_stamp" > .venv/.fedmarket-stamp
fi

js_stamp=$(stamp package.json package-lock.json)
if [ "$(cat node_modules/.fedmarket-stamp 2>/dev/null)" != "$js_stamp" ]; then
  # `npm install`, not `npm ci`: js-ipfs needs the mortice override (see DESIGN.md).
  npm install --no-audit --no-fund --loglevel=error
  echo "$js_stamp" > node_modules/.fedmarket-stamp
fi
