#!/usr/bin/env bash
# Regenerates docs/screenshot-home.png (used by README.md): seeds a demo board into a real
# `ipquest serve` and shoots the home page with headless Chromium (Debian's chromium and
# chromium-driver, Selenium from PyPI: `scripts/install-deps.sh test` installs them).
# IPQUEST_BIN picks the binary (default .build/debug/ipquest, built here if missing).
# `scripts/screenshot.sh FILE --metrics` also prints page weight and first render of cold loads.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${IPQUEST_BIN:-}" ] && [ ! -x .build/debug/ipquest ]; then
  swift build --product ipquest
fi
python3 Tests/web/screenshot.py "${@:-docs/screenshot-home.png}"
