#!/usr/bin/env bash
# Installs what the mobile sender tests (tests/mobile_senders.rs) need, only when missing:
# tests/mobile/node_modules from the committed package-lock.json (the OpenTelemetry JS SDK
# under Node), and a Python venv at target/mobile-venv with the pinned
# opentelemetry-exporter-otlp-proto-http from PyPI (tests/mobile/requirements.txt).
# Idempotent: a second run does nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup-mobile: installing Debian nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends nodejs npm
fi

if [ ! -d "$repo/tests/mobile/node_modules" ]; then
  echo "setup-mobile: npm ci in tests/mobile"
  (cd "$repo/tests/mobile" && npm ci --no-audit --no-fund)
fi

venv="$repo/target/mobile-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import opentelemetry.exporter.otlp.proto.http' 2>/dev/null; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian ships venv (ensurepip) separately.
    echo "setup-mobile: installing Debian python3-venv"
    rm -rf "$venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends python3-venv
    python3 -m venv "$venv"
  fi
  echo "setup-mobile: pip install -r tests/mobile/requirements.txt into target/mobile-venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo/tests/mobile/requirements.txt"
fi

echo "setup-mobile: node $(node --version), $("$venv/bin/python" --version)"
