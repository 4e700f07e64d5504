#!/usr/bin/env bash
# smoke.sh: what CI runs. Builds ingest-edge and loadtest, starts the edge (forwarding
# remote_write to a `loadtest sink` blackhole), drives it for a few seconds per traffic kind,
# and fails unless every run had 2xx answers and no error or non-2xx at all, and unless
# remote_write data reached the upstream (the sink counting its samples). Then a second edge
# starts from a store seeded with 200 copies of the bench tokens (`loadtest seed-tokens`) and
# remote_write and RUM runs rotate over them. No timing is asserted: this is a functional check.
#
# Usage: loadtest/smoke.sh [--release] [--no-build] [--seconds N]
#   default: debug build (shares CI's `cargo test` artifacts); ~30 s of load in total.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PROFILE=debug BUILD=1 SECS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --release) PROFILE=release ;;
        --no-build) BUILD=0 ;;
        --seconds) SECS=$2; shift ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

WORK=$(mktemp -d -t ingest-smoke.XXXXXX)
LT="${LOADTEST_BIN:-$ROOT/target/$PROFILE/loadtest}"
EDGE="${INGEST_EDGE_BIN:-$ROOT/target/$PROFILE/ingest-edge}"
# shellcheck source=loadtest/lib.sh
. "$HERE/lib.sh"
lt_install_trap
command -v curl >/dev/null || lt_die "curl is required"
command -v python3 >/dev/null || lt_die "python3 is required"

if [ "$BUILD" = 1 ]; then
    flag=()
    [ "$PROFILE" = release ] && flag=(--release)
    lt_log "building ingest-edge and loadtest ($PROFILE)"
    (cd "$ROOT" && cargo build "${flag[@]}" --bins --quiet && cargo build "${flag[@]}" -p loadtest --quiet) ||
        lt_die "build failed"
fi
[ -x "$EDGE" ] || lt_die "$EDGE missing"
[ -x "$LT" ] || lt_die "$LT missing"

lt_start_sink
lt_start_edge
lt_log "edge on 127.0.0.1:$EDGE_PORT (ops $EDGE_OPS_PORT), sink on $SINK_PORT"

FIXTURES="$ROOT/tests/fixtures/prometheus-2.42"
RW="http://127.0.0.1:$EDGE_PORT/api/v1/write"
TRACES="http://127.0.0.1:$EDGE_PORT/v1/traces"
PASSED=0 FAILED=0

# check NAME loadtest-args...: one short closed-loop run with --check.
check() {
    local name=$1
    shift
    if "$LT" --duration "${SECS}s" --connections 2 --timeout 5s --check --fixtures "$FIXTURES" "$@" \
        >"$WORK/$name.out" 2>&1; then
        PASSED=$((PASSED + 1))
        lt_log "ok   $name: $(sed -n 3p "$WORK/$name.out")"
    else
        FAILED=$((FAILED + 1))
        lt_log "FAIL $name:"
        cat "$WORK/$name.out" >&2
    fi
}

check rw-v1 --target "$RW" --mode rw-v1 --token "$RW_TOKEN"
check rw-v2 --target "$RW" --mode rw-v2 --token "$RW_TOKEN"
if [ -d "$FIXTURES" ]; then
    check rw-fixtures --target "$RW" --mode rw-fixtures --token "$RW_TOKEN"
else
    lt_log "skip rw-fixtures: no $FIXTURES"
fi
check rum-header --target "$TRACES" --mode rum --token "$CLIENT_TOKEN" --origin http://localhost:3000
check rum-query --target "$TRACES" --mode rum --token "$CLIENT_TOKEN" --token-in query --origin http://localhost:3000
check rum-open-loop --target "$TRACES" --mode rum --token "$CLIENT_TOKEN" --origin http://localhost:3000 --rate 200

# Accepted remote_write data must reach the upstream (the pipeline may batch: wait up to 15 s).
forwarded=0 reqs=0 samples=0 deadline=$((SECONDS + 15))
while [ "$SECONDS" -lt "$deadline" ]; do
    read -r reqs _ samples _ <<<"$(lt_sink_counts || echo "0 0 0 0")"
    if [ "${reqs:-0}" -gt 0 ] && [ "${samples:-0}" -gt 0 ]; then forwarded=1; break; fi
    sleep 0.2
done
if [ "$forwarded" = 1 ]; then
    PASSED=$((PASSED + 1))
    lt_log "ok   forwarded: the upstream blackhole received $reqs request(s), $samples samples"
else
    FAILED=$((FAILED + 1))
    lt_log "FAIL forwarded: nothing (or no countable sample) reached the upstream blackhole ($reqs requests)"
fi

if ! kill -0 "$EDGE_PID" 2>/dev/null; then
    FAILED=$((FAILED + 1))
    lt_log "FAIL the edge exited during the smoke test; its log:"
    tail -30 "$EDGE_LOG" >&2
fi

# Many tokens: a second edge starts from a store seeded with copies of the first one's bench
# tokens; every request carries the next one (a seeded token the edge does not know fails).
if "$LT" seed-tokens --from "$EDGE_DIR/data/tokens.json" --to "$WORK/seeded.json" --count 200 \
    --secrets-dir "$WORK" >"$WORK/seed.out" 2>&1; then
    LT_SEED_STORE="$WORK/seeded.json" lt_start_edge
    check rw-many-tokens --target "http://127.0.0.1:$EDGE_PORT/api/v1/write" --mode rw-v1 \
        --tokens-file "$WORK/remote_write.txt"
    check rum-many-tokens --target "http://127.0.0.1:$EDGE_PORT/v1/traces" --mode rum \
        --tokens-file "$WORK/client.txt" --origin http://localhost:3000
else
    FAILED=$((FAILED + 1))
    lt_log "FAIL seed-tokens: $(cat "$WORK/seed.out")"
fi

echo "smoke: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
