#!/usr/bin/env bash
# The whole test suite (the README's test command): installs missing system packages, then
# runs every test, builds the benches and smoke-runs the load generator.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash .ci/setup.sh
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads=2
cargo bench --no-run
if [ -f loadtest/smoke.sh ]; then
  bash loadtest/smoke.sh
fi
