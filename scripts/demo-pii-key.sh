#!/usr/bin/env bash
# Print the PII HMAC key for the local demo: $LAKEBOOST_PII_KEY if set, else a random key made
# once per checkout in data/.demo-pii-key (git-ignored; stable, so silver hashes stay stable).
# Production keys come from the environment or a Databricks secret scope, never from a file.
set -euo pipefail
if [ -n "${LAKEBOOST_PII_KEY:-}" ]; then printf '%s' "$LAKEBOOST_PII_KEY"; exit 0; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEY_FILE="$ROOT/data/.demo-pii-key"
if [ ! -s "$KEY_FILE" ]; then
  mkdir -p "$(dirname "$KEY_FILE")"
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$KEY_FILE")
fi
cat "$KEY_FILE"
