#!/usr/bin/env bash
# Installs what the test suite needs, only when it is missing (idempotent, quick when all is
# there): Debian's prometheus (a real remote_write sender; its promtool checks the alert
# rules), victoria-metrics (a real upstream; also ships vmagent), the openssl CLI
# (tests/transport.rs offers TLS 1.1 with it, and loadtest/transport.sh makes its test CA with
# it), PostgreSQL's server binaries (tests/several_edges.rs runs its own cluster with initdb
# and pg_ctl in a temporary directory; no system service is used), redis-server
# (tests/global_limits.rs runs its own on a free loopback port; no system service), through setup-browser.sh,
# chromium + the browser suite's npm packages, and through setup-mobile.sh, the mobile sender
# tests' npm packages and Python venv.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

missing=()
# Debian's prometheus package ships both binaries; promtool runs config/alerts_test.yml.
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || missing+=(prometheus)
[ -x /usr/bin/victoria-metrics ] || missing+=(victoria-metrics)
[ -x /usr/bin/openssl ] || missing+=(openssl)
# Debian's postgresql (the server, initdb, pg_ctl, psql) under /usr/lib/postgresql/<version>/bin.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# Debian's redis-server (the binary only is used; the package's service is not started by the tests).
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
bash "$repo/.ci/setup-browser.sh"
bash "$repo/.ci/setup-mobile.sh"
