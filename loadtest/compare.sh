#!/usr/bin/env bash
# compare.sh: measures ingest-edge against its peers on this machine, in one run, under the
# same load from the same generator, and writes the table to BENCHMARKS.md.
#
#   remote_write v1, 4 connections          ingest-edge vs vmagent   (A/B/A/B, --rounds pairs)
#   remote_write v1, 64 connections, pinned  ingest-edge vs vmagent   (A/B/A/B)
#   RUM, 32 connections                      ingest-edge vs nginx 204 (A/B/A/B)
#   RUM, 64 connections, pinned              ingest-edge vs nginx 204 (A/B/A/B)
#   the two pinned phases over 10,000 tokens ingest-edge alone        (1 run each)
#   RUM pinned, durable spool off            ingest-edge alone        (1 run: what fsync costs)
#   remote_write fixtures replay samples/s   ingest-edge vs vmagent   (1 pair; not with --quick)
#   remote_write v2 samples/s                ingest-edge alone        (not with --quick)
#   open-loop p99 at half the edge's peak    ingest-edge (--rounds runs, median) and the peer (once)
#
# Every remote_write/OTLP run reports accepted items/s (2xx answers) beside *delivered* items/s:
# what reached the shared upstream (`loadtest sink`, which counts samples and spans) during the
# measured window, the edge's own ingest_forwarded_items_total rate, the 503s/errors, and what
# was accepted but still queued when the window closed. "Pinned" (the issue 16 set-up): the
# server under test on CPU 0 (`taskset -c 0`: ingest and forwarding share one core), the load
# generator and the sink on CPU 1; without taskset or with one CPU, nothing is pinned. Each run
# starts the server fresh (new data dir, new tokens) so runs do not inherit each other's state.
#
# Usage: loadtest/compare.sh [--quick] [--rounds N] [--duration SECS] [--warmup SECS]
#                            [--connections N] [--high-connections N] [--rum-connections N]
#                            [--tokens N] [--no-pin] [--out FILE] [--no-write] [--no-build]
# (LOADTEST_BIN / INGEST_EDGE_BIN override the binaries used with --no-build.)
# Takes about 15 minutes (12 of measuring, budget 900 s, then the in-process benches);
# --quick about 2.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# remote_write: 4 connections, like a Prometheus with a few shards, and 64: one Prometheus with
# its default queue_config (up to 50 shards) and then some; RUM: 32 and 64, standing for many
# browsers at once (an edge that batches its fsyncs across requests needs concurrency).
ROUNDS=3 DURATION=15 WARMUP=3 CONNS=4 HIGH_CONNS=64 RUM_CONNS=32 OL_CONNS=32 TOKENS=10000
QUICK=0 WRITE=1 BUILD=1 PIN=1
OUT="$ROOT/BENCHMARKS.md"
BUDGET=900 # seconds of measuring; runs that would start after it are skipped
ARGS="$*"

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ROUNDS=1 DURATION=4 WARMUP=1 BUDGET=150 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --rum-connections) RUM_CONNS=$2; shift ;;
        --high-connections) HIGH_CONNS=$2; shift ;;
        --tokens) TOKENS=$2; shift ;;
        --no-pin) PIN=0 ;;
        --out) OUT=$2; shift ;;
        --no-write) WRITE=0 ;;
        --no-build) BUILD=0 ;;
        -h | --help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

WORK=$(mktemp -d -t ingest-bench.XXXXXX)
LT="${LOADTEST_BIN:-$ROOT/target/release/loadtest}"
EDGE="${INGEST_EDGE_BIN:-$ROOT/target/release/ingest-edge}"
# shellcheck source=loadtest/lib.sh
. "$HERE/lib.sh"
lt_install_trap
START=$SECONDS

for tool in curl python3; do command -v "$tool" >/dev/null || lt_die "$tool is required"; done
VMAGENT=$(command -v vmagent || true)
NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
if { [ -z "$VMAGENT" ] || [ -z "$NGINX" ]; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    lt_log "installing the peers (Debian packages victoria-metrics, nginx)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics nginx >"$WORK/apt.log" 2>&1 ||
        lt_log "apt-get install failed (see below); peers that are missing are skipped"
    VMAGENT=$(command -v vmagent || true)
    NGINX=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
fi

if [ "$BUILD" = 1 ]; then
    lt_log "building ingest-edge and loadtest (release)"
    (cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet -p loadtest) ||
        lt_die "build failed"
fi
[ -x "$EDGE" ] || lt_die "$EDGE missing"
[ -x "$LT" ] || lt_die "$LT missing"
# Private copies: a rebuild by someone else during the run must not mix two binaries in one table.
mkdir -p "$WORK/bin"
cp -p "$EDGE" "$WORK/bin/ingest-edge" && cp -p "$LT" "$WORK/bin/loadtest" || lt_die "copying binaries failed"
EDGE="$WORK/bin/ingest-edge" LT="$WORK/bin/loadtest"
BUILD_SECS=$((SECONDS - START))
MEASURE_START=$SECONDS
FIXTURES="$ROOT/tests/fixtures/prometheus-2.42"

# The pinned set-up: server on CPU 0, load generator and sink on CPU 1.
PIN_SERVER="" PIN_LOAD=""
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=0 PIN_LOAD=1
    LT_SINK_CPUS=$PIN_LOAD
else
    PIN=0
    lt_log "not pinning (no taskset, one CPU, or --no-pin): the 'pinned' phases run unpinned"
fi
lt_start_sink
RUNS="$WORK/runs.tsv" # phase server round json hwm_kib cpu_s sink_reqs sink_bytes status pinned
printf 'phase\tserver\tround\tjson\thwm_kib\tcpu_s\tsink_requests\tsink_bytes\tstatus\tpinned\n' >"$RUNS"
mkdir -p "$WORK/results"

over_budget() { [ $((SECONDS - MEASURE_START)) -ge "$BUDGET" ]; }

# --- peers ---------------------------------------------------------------------------------
start_vmagent() {
    local dir port pin
    dir=$(mktemp -d -p "$WORK" vmagent.XXXXXX)
    port=$("$LT" free-port 1)
    mapfile -t pin < <(lt_pin "$LT_SERVER_CPUS")
    "${pin[@]}" "$VMAGENT" -remoteWrite.url="http://127.0.0.1:$SINK_PORT/api/v1/write" \
        -httpListenAddr="127.0.0.1:$port" -remoteWrite.tmpDataPath="$dir/queue" \
        -loggerLevel=WARN >"$dir/vmagent.log" 2>&1 &
    SERVER_PID=$! SERVER_DIR=$dir
    LT_PIDS+=("$SERVER_PID")
    lt_wait_http "http://127.0.0.1:$port/health" 20 || lt_die "vmagent did not start: $(tail -5 "$dir/vmagent.log")"
    SERVER_PORT=$port
}

start_nginx() {
    local dir port pin
    dir=$(mktemp -d -p "$WORK" nginx.XXXXXX)
    port=$("$LT" free-port 1)
    cat >"$dir/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$port;
        location / { return 204; }
    }
}
EOF
    mapfile -t pin < <(lt_pin "$LT_SERVER_CPUS")
    "${pin[@]}" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
    SERVER_PID=$! SERVER_DIR=$dir
    LT_PIDS+=("$SERVER_PID")
    lt_wait_port "$port" 20 || lt_die "nginx did not start: $(cat "$dir/error.log" "$dir/stdout.log")"
    SERVER_PORT=$port
}

# Bounds of ingest_spool_commit_duration_seconds the edge runs observe (compare_report.py reads
# the same list from the environment).
export COMMIT_BOUNDS="0.001 0.0025 0.005 0.01 0.025 0.05 0.1"

# run_one PHASE SERVER ROUND MODE [extra loadtest args...]: starts SERVER fresh, loads it,
# records the JSON report (with what was delivered during the window), peak RSS, CPU seconds
# and what reached the sink, stops it. PINNED=1 runs the pinned set-up; TOKENS_DIR (from
# seed_tokens) makes the edge start with the seeded store and the load rotate over it.
run_one() {
    local phase=$1 server=$2 round=$3 mode=$4 url args json cpu0 cpu1 hwm status queue pin
    local pinned=${PINNED:-0} tokens_dir=${TOKENS_DIR:-}
    shift 4
    [ "$PIN" = 1 ] || pinned=0
    local LT_SERVER_CPUS="" LT_SEED_STORE=""
    [ "$pinned" = 1 ] && LT_SERVER_CPUS=$PIN_SERVER
    args=(--mode "$mode" --duration "${DURATION}s" --warmup "${WARMUP}s" --json --fixtures "$FIXTURES")
    if [ "$mode" = rum ]; then queue=traces; else queue=remote_write; fi
    case "$server" in
        edge)
            [ -n "$tokens_dir" ] && LT_SEED_STORE="$tokens_dir/tokens.json"
            lt_start_edge
            SERVER_PID=$EDGE_PID SERVER_PORT=$EDGE_PORT SERVER_DIR=$EDGE_DIR
            if [ -n "$tokens_dir" ]; then
                if [ "$mode" = rum ]; then
                    args+=(--tokens-file "$tokens_dir/client.txt")
                else
                    args+=(--tokens-file "$tokens_dir/remote_write.txt")
                fi
            elif [ "$mode" = rum ]; then
                args+=(--token "$CLIENT_TOKEN")
            else
                args+=(--token "$RW_TOKEN")
            fi
            [ "$mode" = rum ] && args+=(--origin http://localhost:3000)
            args+=(--observe-sink "http://127.0.0.1:$SINK_PORT/__sink/stats"
                --observe-metrics "http://127.0.0.1:$EDGE_OPS_PORT/metrics"
                --observe-series "ingest_forwarded_items_total{queue=\"$queue\"}"
                --observe-series "ingest_spool_records{queue=\"$queue\"}"
                --observe-series "ingest_spool_bytes{queue=\"$queue\"}"
                --observe-series "ingest_spool_commit_duration_seconds_count{queue=\"$queue\"}")
            # The spool's commit times over the window, for the report's disk row.
            for le in $COMMIT_BOUNDS; do
                args+=(--observe-series "ingest_spool_commit_duration_seconds_bucket{queue=\"$queue\",le=\"$le\"}")
            done
            ;;
        vmagent)
            start_vmagent
            args+=(--observe-sink "http://127.0.0.1:$SINK_PORT/__sink/stats"
                --observe-metrics "http://127.0.0.1:$SERVER_PORT/metrics"
                --observe-series 'vmagent_rows_inserted_total{type="promremotewrite"}'
                --observe-series vmagent_remotewrite_pending_data_bytes)
            ;;
        nginx)
            start_nginx
            args+=(--token "rum-token-placeholder" --origin http://localhost:3000)
            ;;
    esac
    if [ "$mode" = rum ]; then url="http://127.0.0.1:$SERVER_PORT/v1/traces"; else url="http://127.0.0.1:$SERVER_PORT/api/v1/write"; fi
    json="$WORK/results/$phase-$server-$round.json"
    read -r s0r s0b _ <<<"$(lt_sink_counts)"
    cpu0=$(lt_proc_cpu "$SERVER_PID")
    status=ok
    pin=()
    [ "$pinned" = 1 ] && mapfile -t pin < <(lt_pin "$PIN_LOAD")
    "${pin[@]}" "$LT" --target "$url" "${args[@]}" "$@" >"$json" 2>"$json.err" || status="loadtest-exit-$?"
    cpu1=$(lt_proc_cpu "$SERVER_PID")
    hwm=$(lt_proc_hwm "$SERVER_PID")
    kill -0 "$SERVER_PID" 2>/dev/null || status="server-died"
    # vmagent and the edge forward asynchronously: give them a moment before reading the sink
    # (the delivered-while-loaded figures come from the report, read at the window's end).
    sleep 1
    read -r s1r s1b _ <<<"$(lt_sink_counts)"
    lt_stop "$SERVER_PID"
    # A loaded edge's spool (or vmagent's queue) can hold a GiB: do not keep it for the report.
    [ -n "${LT_KEEP_WORK:-}" ] || rm -rf "$SERVER_DIR"
    [ -s "$json" ] || { status="no-report"; echo '{}' >"$json"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$server" "$round" "$json" "$hwm" \
        "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" \
        "$((s1r - s0r))" "$((s1b - s0b))" "$status" "$pinned" >>"$RUNS"
    lt_log "$phase/$server/$round: $(python3 - "$json" "$hwm" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if not r:
    print("no report"); sys.exit()
o = r.get("observed") or {}
d = o.get("delivered_items_per_s")
delivered = f", delivered {d:.0f}/s, queued at end {o.get('queued_items_at_end')}" if d is not None else ""
print(f"{r['req_per_s']:.0f} req/s, accepted {r['items_per_s']:.0f} {r['item_name']}/s{delivered}, "
      f"p99 {r['latency_ms']['p99']:.2f} ms, non-2xx {r['non_2xx']}, errors {r['errors']}, "
      f"status {r['status']}, peak RSS {int(sys.argv[2]) // 1024} MiB")
PY
)"
}

# seed_tokens: one edge makes the bench tokens through the admin API (with the run's limits and
# origins); `loadtest seed-tokens` copies them TOKENS times each into a store that every
# tokens run starts from. Sets TOKENS_SEED (a directory), left empty on failure.
seed_tokens() {
    local t0=$SECONDS
    TOKENS_SEED="$WORK/tokens"
    mkdir -p "$TOKENS_SEED"
    lt_start_edge
    if ! "$LT" seed-tokens --from "$EDGE_DIR/data/tokens.json" --to "$TOKENS_SEED/tokens.json" \
        --count "$TOKENS" --secrets-dir "$TOKENS_SEED" >"$TOKENS_SEED/seed.log" 2>&1; then
        lt_log "seeding $TOKENS tokens failed: $(cat "$TOKENS_SEED/seed.log")"
        TOKENS_SEED=""
    fi
    lt_stop "$EDGE_PID"
    [ -n "$TOKENS_SEED" ] && lt_log "seeded $TOKENS remote_write + $TOKENS client tokens in $((SECONDS - t0)) s"
    return 0
}

median_rps() { # median_rps PHASE SERVER -> median req/s over the rounds
    python3 - "$RUNS" "$1" "$2" <<'PY'
import csv, json, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t")
        if r["phase"] == sys.argv[2] and r["server"] == sys.argv[3]]
vals = [json.load(open(r["json"])).get("ok_per_s", 0) for r in rows]
print(f"{statistics.median(vals):.1f}" if vals else 0)
PY
}

# --- phases --------------------------------------------------------------------------------
lt_log "measuring: $ROUNDS round(s) of ${WARMUP}s warm-up + ${DURATION}s; remote_write $CONNS and $HIGH_CONNS (pinned) connections, RUM $RUM_CONNS and $HIGH_CONNS (pinned); budget ${BUDGET}s"
for round in $(seq "$ROUNDS"); do
    over_budget && { lt_log "time budget reached: skipping round $round"; break; }
    run_one rw-v1 edge "$round" rw-v1 --connections "$CONNS"
    [ -n "$VMAGENT" ] && run_one rw-v1 vmagent "$round" rw-v1 --connections "$CONNS"
    PINNED=1 run_one rw-c64 edge "$round" rw-v1 --connections "$HIGH_CONNS"
    [ -n "$VMAGENT" ] && PINNED=1 run_one rw-c64 vmagent "$round" rw-v1 --connections "$HIGH_CONNS"
    over_budget && { lt_log "time budget reached: skipping the rest of round $round"; break; }
    run_one rum edge "$round" rum --connections "$RUM_CONNS"
    [ -n "$NGINX" ] && run_one rum nginx "$round" rum --connections "$RUM_CONNS"
    PINNED=1 run_one rum-c64 edge "$round" rum --connections "$HIGH_CONNS"
    [ -n "$NGINX" ] && PINNED=1 run_one rum-c64 nginx "$round" rum --connections "$HIGH_CONNS"
done

# Many tokens at once: the pinned 64-connection phases again, each request with the next of
# TOKENS tokens (one run each; the one-token figures above are their reference).
if [ "$TOKENS" -gt 0 ] && ! over_budget; then
    seed_tokens
    if [ -n "$TOKENS_SEED" ]; then
        PINNED=1 TOKENS_DIR=$TOKENS_SEED run_one rw-c64-tokens edge 1 rw-v1 --connections "$HIGH_CONNS"
        PINNED=1 TOKENS_DIR=$TOKENS_SEED run_one rum-c64-tokens edge 1 rum --connections "$HIGH_CONNS"
    fi
fi

# What the durable spool costs RUM: the pinned phase once more with `pipeline.durable = false`
# (the in-memory hand-off, which loses acknowledged data on a crash), beside the durable rounds.
if ! over_budget; then
    printf '[pipeline]\ndurable = false\n' >"$WORK/in-memory.toml"
    LT_EDGE_CONFIG="$WORK/in-memory.toml" PINNED=1 run_one rum-c64-memory edge 1 rum --connections "$HIGH_CONNS"
fi

if [ "$QUICK" = 0 ] && ! over_budget; then
    run_one rw-fixtures edge 1 rw-fixtures --connections "$CONNS"
    [ -n "$VMAGENT" ] && run_one rw-fixtures vmagent 1 rw-fixtures --connections "$CONNS"
    run_one rw-v2 edge 1 rw-v2 --connections "$CONNS"
fi

RW_RATE=$(median_rps rw-v1 edge)
RUM_RATE=$(median_rps rum edge)
RW_HALF=$(awk -v r="$RW_RATE" 'BEGIN { printf "%.0f", r / 2 }')
RUM_HALF=$(awk -v r="$RUM_RATE" 'BEGIN { printf "%.0f", r / 2 }')
# The edge's open-loop p99 over 15 s hangs on a handful of slow moments (one run of the same
# binary gave 4.5, 6.3 and 22 ms), so it is run --rounds times and the median reported with its
# range; the peers once each.
if [ "$RW_HALF" -gt 0 ] && ! over_budget; then
    for round in $(seq 1 "$ROUNDS"); do
        over_budget && break
        run_one openloop-rw edge "$round" rw-v1 --connections "$OL_CONNS" --rate "$RW_HALF"
    done
    [ -n "$VMAGENT" ] && run_one openloop-rw vmagent 1 rw-v1 --connections "$OL_CONNS" --rate "$RW_HALF"
fi
if [ "$RUM_HALF" -gt 0 ] && ! over_budget; then
    for round in $(seq 1 "$ROUNDS"); do
        over_budget && break
        run_one openloop-rum edge "$round" rum --connections "$OL_CONNS" --rate "$RUM_HALF"
    done
    [ -n "$NGINX" ] && run_one openloop-rum nginx 1 rum --connections "$OL_CONNS" --rate "$RUM_HALF"
fi

# --- report --------------------------------------------------------------------------------
MEASURE_SECS=$((SECONDS - MEASURE_START))
export CMD="loadtest/compare.sh${ARGS:+ $ARGS}" NPROC="$(nproc)" CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
export FREE_G="$(free -g)" LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)" KERNEL="$(uname -r)"
export VMAGENT_VERSION="$([ -n "$VMAGENT" ] && echo "vmagent $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || "$VMAGENT" -version 2>&1 | head -1)" || echo "vmagent missing")"
export NGINX_VERSION="$([ -n "$NGINX" ] && "$NGINX" -v 2>&1 | head -1 || echo missing)"
export EDGE_VERSION="$("$EDGE" --version 2>/dev/null | head -1 || echo unknown)"
export ROUNDS DURATION WARMUP CONNS HIGH_CONNS RUM_CONNS OL_CONNS TOKENS PIN BUILD_SECS MEASURE_SECS BUDGET
export EDGE_BUILT="$(date -u -r "$EDGE" '+%Y-%m-%d %H:%M UTC')"
python3 "$HERE/compare_report.py" "$RUNS" >"$WORK/report.md"
if [ "$QUICK" = 0 ]; then
    # The in-process targets: criterion figures and the token-population checks, same machine,
    # same run. Raw lines, so nothing is rounded or reinterpreted.
    lt_log "in-process benches (criterion --quick, tokens_at_scale)"
    (cd "$ROOT" && cargo bench -q --bench remote_write -- --quick synthetic 2>/dev/null | grep -E "^remote_write|time:|thrpt:") >"$WORK/decode.txt" || true
    { (cd "$ROOT" && cargo bench -q --bench origin -- --quick 2>/dev/null | grep -E "^origin|time:")
      (cd "$ROOT" && cargo bench -q --bench request_path -- --quick auth 2>/dev/null | grep -E "^auth|time:"); } >"$WORK/origin.txt" || true
    # TOKENS is this script's own setting (exported for the report): the bench reads the same
    # name, so the million-token run names its size instead of inheriting the 10,000.
    (cd "$ROOT" && TOKENS=1000000 cargo bench -q --bench tokens_at_scale 2>/dev/null | grep '^{') >"$WORK/scale.txt" || true
    (cd "$ROOT" && TOKENS=10000 cargo bench -q --bench tokens_at_scale 2>/dev/null | grep '^{') >"$WORK/scale10k.txt" || true
    {
        echo
        echo "## In-process targets (same run)"
        echo
        python3 "$HERE/compare_report.py" --in-process "$WORK/decode.txt" "$WORK/scale.txt" "$WORK/scale10k.txt"
        echo
        echo "\`cargo bench --bench remote_write -- --quick synthetic\` (decode + validate, one core):"
        echo
        echo '```'
        cat "$WORK/decode.txt"
        echo '```'
        echo
        echo "\`cargo bench --bench origin -- --quick\` and \`cargo bench --bench request_path -- --quick auth\`:"
        echo
        echo '```'
        cat "$WORK/origin.txt"
        echo '```'
        echo
        echo "\`cargo bench --bench tokens_at_scale\` (1,000,000 tokens in the store; then \`TOKENS=10000\` for /metrics with 10 k active tokens):"
        echo
        echo '```'
        cat "$WORK/scale.txt" "$WORK/scale10k.txt"
        echo '```'
        echo
        echo "Start-up and RSS are judged on the real binary (process_startup_ms, process_rss_mib: time"
        echo "until it listens, its whole resident set); startup_ms and rss_*_mib are the same load inside"
        echo "the bench process, whose allocator reuses the memory freed after generating the store (so"
        echo "they read low)."
    } >>"$WORK/report.md"
fi
cat "$WORK/report.md"
if [ "$WRITE" = 1 ]; then
    cp "$WORK/report.md" "$OUT"
    lt_log "wrote $OUT"
fi
