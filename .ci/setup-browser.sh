#!/usr/bin/env bash
# Installs what the browser suites (tests/browser.rs, tests/console.rs) need, only when missing:
# Debian's chromium at /usr/bin/chromium, and tests/browser/node_modules from the
# committed package-lock.json. Idempotent: a second run does nothing. Never
# downloads a browser build of its own (no `playwright install`).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  echo "setup-browser: installing Debian chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends chromium
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup-browser: installing Debian nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends nodejs npm
fi

if [ ! -d "$repo/tests/browser/node_modules" ]; then
  echo "setup-browser: npm ci in tests/browser"
  (cd "$repo/tests/browser" && npm ci --no-audit --no-fund)
fi

echo "setup-browser: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium missing'), node $(node --version)"
