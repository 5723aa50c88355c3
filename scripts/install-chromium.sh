#!/usr/bin/env bash
# Headless Chromium (Debian's package) for the tests that look at the monitoring report as a
# person would: a screenshot, and a check that every image on the page rendered. Needs root.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
chromium --version >&2
