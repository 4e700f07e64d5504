#!/usr/bin/env bash
# The whole test suite (the README's test command): installs missing system packages, then
# checks and unit-tests the alerting rules with promtool, runs every test, builds the benches
# and smoke-runs the load generator.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup.sh
# The alerting rules (SPEC §12) first: quick, and a broken rule should not wait for a build.
echo "== promtool check rules config/alerts.yml"
promtool check rules config/alerts.yml
echo "== promtool test rules config/alerts_test.yml"
promtool test rules config/alerts_test.yml
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
cargo bench --no-run
if [ -f loadtest/smoke.sh ]; then
  bash loadtest/smoke.sh
fi
