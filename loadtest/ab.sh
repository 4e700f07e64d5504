#!/usr/bin/env bash
# ab.sh: A/B of two ingest-edge binaries on one load phase, alternated, each run on a fresh edge:
# the quick way to see what one change buys, on the set-up compare.sh calls "pinned" (edge on
# CPU 0, load generator and sink on CPU 1). Prints, per run: requests/s, p99, and the edge's CPU
# per request (user + system, all its threads, over warm-up and window).
#
#   loadtest/ab.sh OLD_BINARY NEW_BINARY [--rounds N] [--mode rum|rw-v1] [--connections N]
#                  [--duration SECS] [--rate R] [--no-pin] [--config FILE]
#
# e.g. `git worktree add /tmp/old HEAD~3 && (cd /tmp/old && cargo build --release)`, then
# `loadtest/ab.sh /tmp/old/target/release/ingest-edge target/release/ingest-edge`.
# `--rate` runs an open loop at that many requests/s instead of a closed one; `--config` is
# passed to both edges (`serve --config`). Needs target/release/loadtest (cargo build --release
# -p loadtest). The machine should be otherwise idle: a compile next door moves these numbers
# by more than most changes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,15p' "$0"; exit 2; }
A=$1 B=$2
shift 2
ROUNDS=3 MODE=rum CONNS=64 DURATION=10 RATE="" PIN=1 CONFIG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --mode) MODE=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --no-pin) PIN=0 ;;
        --config) CONFIG=$2; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }; done

WORK=$(mktemp -d -t ingest-ab.XXXXXX)
LT="${LOADTEST_BIN:-$ROOT/target/release/loadtest}"
# shellcheck source=loadtest/lib.sh
. "$HERE/lib.sh"
lt_install_trap
[ -x "$LT" ] || lt_die "$LT missing (cargo build --release -p loadtest)"
LOAD_PIN=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    LT_SERVER_CPUS=0 LT_SINK_CPUS=1 LOAD_PIN=(taskset -c 1)
fi
LT_EDGE_CONFIG=$CONFIG
lt_start_sink
WARMUP=2

# one LABEL BINARY: one fresh edge, one run of the load, one line of results.
one() {
    local label=$1 out="$WORK/run.json" cpu0 cpu1 path token
    EDGE=$2
    lt_start_edge
    if [ "$MODE" = rum ]; then
        path=/v1/traces token=$CLIENT_TOKEN
    else
        path=/api/v1/write token=$RW_TOKEN
    fi
    cpu0=$(lt_proc_cpu "$EDGE_PID")
    "${LOAD_PIN[@]}" "$LT" --target "http://127.0.0.1:$EDGE_PORT$path" --mode "$MODE" \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --json --connections "$CONNS" \
        --fixtures "$ROOT/tests/fixtures/prometheus-2.42" --token "$token" \
        --origin http://localhost:3000 ${RATE:+--rate "$RATE"} >"$out" 2>"$WORK/run.err" ||
        lt_log "loadtest failed: $(tail -3 "$WORK/run.err")"
    cpu1=$(lt_proc_cpu "$EDGE_PID")
    lt_stop "$EDGE_PID"
    rm -rf "$EDGE_DIR"
    python3 - "$out" "$label" "$cpu0" "$cpu1" "$((DURATION + WARMUP))" <<'PY'
import json, sys
path, label, c0, c1, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
try:
    r = json.load(open(path))
except ValueError:
    print(f"{label}: no report"); sys.exit()
rps = r["req_per_s"]
per_req = (c1 - c0) * 1e6 / (rps * secs) if rps else float("nan")
print(f"{label}: {rps:,.0f} req/s, {r['items_per_s']:,.0f} {r['item_name']}/s, "
      f"p99 {r['latency_ms']['p99']:.2f} ms, non-2xx {r['non_2xx']}, errors {r['errors']}, "
      f"edge CPU {per_req:.1f} us/request")
PY
}

lt_log "A = $A"
lt_log "B = $B"
lt_log "$MODE, $CONNS connections, ${DURATION}s (+${WARMUP}s warm-up), ${RATE:+open loop at $RATE req/s, }$ROUNDS round(s), pinned: $([ ${#LOAD_PIN[@]} -gt 0 ] && echo yes || echo no)"
for round in $(seq 1 "$ROUNDS"); do
    one "A$round" "$A"
    one "B$round" "$B"
done
