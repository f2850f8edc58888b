#!/usr/bin/env bash
# The browser test's browser: Debian's chromium and chromium-driver from apt (no browser download at run time).
# Idempotent; needs root or sudo. Run by `make test` before the tests.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "scripts/browser.sh: installing chromium and chromium-driver needs root or sudo; the dashboard's browser test will fail" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver
