# shellcheck shell=bash
# Helpers shared by compare.sh and smoke.sh: process bookkeeping (everything started here is
# killed on exit), the blackhole sink, and starting ingest-edge with fresh tokens.
#
# Callers set LT (loadtest binary), EDGE (ingest-edge binary) and WORK (a temp dir they own),
# then call lt_install_trap once.

LT_PIDS=()
# Optional CPU pinning (set by compare.sh): LT_SERVER_CPUS for the server under test,
# LT_SINK_CPUS for the sink, e.g. "0" and "1". Empty: not pinned.
LT_SERVER_CPUS="${LT_SERVER_CPUS:-}"
LT_SINK_CPUS="${LT_SINK_CPUS:-}"

# lt_pin CPUS: the command prefix that runs a program on CPUS (nothing when CPUS is empty).
lt_pin() {
    if [ -n "$1" ]; then printf '%s\n' taskset -c "$1"; fi
}

lt_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
lt_die() { lt_log "error: $*"; exit 1; }

# Kills every process we started (TERM, then KILL after 3 s) and removes WORK.
lt_cleanup() {
    local pid
    for pid in "${LT_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 30); do
        local alive=0
        for pid in "${LT_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${LT_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    LT_PIDS=()
# Optional CPU pinning (set by compare.sh): LT_SERVER_CPUS for the server under test,
# LT_SINK_CPUS for the sink, e.g. "0" and "1". Empty: not pinned.
LT_SERVER_CPUS="${LT_SERVER_CPUS:-}"
LT_SINK_CPUS="${LT_SINK_CPUS:-}"

# lt_pin CPUS: the command prefix that runs a program on CPUS (nothing when CPUS is empty).
lt_pin() {
    if [ -n "$1" ]; then printf '%s\n' taskset -c "$1"; fi
}
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ] && [ -z "${LT_KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
}

lt_install_trap() {
    trap lt_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Stops one process we started and forgets it.
lt_stop() {
    local pid=$1 keep=() p
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${LT_PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
    LT_PIDS=("${keep[@]}")
}

# lt_wait_port PORT SECONDS: waits until something accepts on 127.0.0.1:PORT.
lt_wait_port() {
    local port=$1 tries=$(( $2 * 10 ))
    for _ in $(seq "$tries"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# lt_wait_http URL SECONDS: waits for a 2xx from URL.
lt_wait_http() {
    local url=$1 tries=$(( $2 * 10 ))
    for _ in $(seq "$tries"); do
        curl -sf -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

# lt_json_get KEY: reads one JSON object on stdin, prints obj[KEY].
lt_json_get() {
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(v[sys.argv[1]])' "$1"
}

# Starts the sink; sets SINK_PID and SINK_PORT.
lt_start_sink() {
    local out="$WORK/sink.out" pin
    mapfile -t pin < <(lt_pin "$LT_SINK_CPUS")
    "${pin[@]}" "$LT" sink --listen 127.0.0.1:0 --lifetime 30m >"$out" 2>&1 &
    SINK_PID=$!
    LT_PIDS+=("$SINK_PID")
    for _ in $(seq 100); do
        SINK_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
        [ -n "$SINK_PORT" ] && return 0
        sleep 0.05
    done
    lt_die "sink did not start: $(cat "$out")"
}

# Prints "requests bytes samples spans" received by the sink so far.
lt_sink_counts() {
    curl -sf --max-time 2 "http://127.0.0.1:$SINK_PORT/__sink/stats" |
        python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["requests"], v["bytes"], v.get("samples", 0), v.get("spans", 0))'
}

# lt_admin_post OPS_PORT BODY: POST /api/v1/tokens, prints the response body; fails unless 201.
lt_admin_post() {
    local ops=$1 body=$2 out code
    out=$(mktemp -p "$WORK")
    code=$(curl -s -o "$out" -w '%{http_code}' --max-time 5 -X POST \
        -H "Authorization: Bearer $LT_ADMIN_KEY" -H 'Content-Type: application/json' \
        -d "$body" "http://127.0.0.1:$ops/api/v1/tokens") || code=000
    if [ "$code" != 201 ]; then
        lt_log "POST /api/v1/tokens $body -> $code: $(cat "$out")"
        return 1
    fi
    cat "$out"
}

LT_ADMIN_KEY="bench-admin-key-$$-$RANDOM$RANDOM"
# The per-client-address budget matters too: every request of the generator comes from
# 127.0.0.1, i.e. from one "client" (defaults: 10 req/s for client tokens).
LT_LIMITS='"limits":{"requests_per_second":1000000,"requests_burst":1000000,"items_per_second":1000000000,"items_burst":1000000000,"per_client_requests_per_second":1000000,"per_client_requests_burst":1000000}'

# Starts ingest-edge with a fresh data dir, forwarding remote_write and OTLP to the sink (without
# an upstream, RUM data stays in the local spool until it is full and the edge answers 503),
# and creates a
# remote_write and a web client token. Sets EDGE_PID, EDGE_PORT, EDGE_OPS_PORT, RW_TOKEN,
# CLIENT_TOKEN. The process runs in its data dir so no config/edge.toml is picked up: the
# built-in defaults plus the environment below are what is measured (plus LT_EDGE_CONFIG, a
# config file, when set: transport.sh uses it for the TLS files). With LT_SEED_STORE set (a
# tokens.json from `loadtest seed-tokens`), the edge starts with that token store; with
# LT_SERVER_CPUS, pinned to those CPUs. Also sets EDGE_DIR (its data dir is EDGE_DIR/data).
lt_start_edge() {
    local dir ports resp pin
    dir=$(mktemp -d -p "$WORK" edge.XXXXXX)
    EDGE_DIR=$dir
    read -r EDGE_PORT EDGE_OPS_PORT <<<"$("$LT" free-port 2)"
    if [ -n "${LT_SEED_STORE:-}" ]; then
        mkdir -p "$dir/data" && cp "$LT_SEED_STORE" "$dir/data/tokens.json" || lt_die "seeding the token store failed"
    fi
    mapfile -t pin < <(lt_pin "$LT_SERVER_CPUS")
    (
        cd "$dir" &&
            INGEST_EDGE_INGEST_ADDR="127.0.0.1:$EDGE_PORT" \
            INGEST_EDGE_OPS_ADDR="127.0.0.1:$EDGE_OPS_PORT" \
            INGEST_EDGE_DATA_DIR="$dir/data" \
            INGEST_EDGE_ADMIN_KEY="$LT_ADMIN_KEY" \
            INGEST_EDGE_REMOTE_WRITE_UPSTREAM="http://127.0.0.1:$SINK_PORT/api/v1/write" \
            INGEST_EDGE_OTLP_UPSTREAM="http://127.0.0.1:$SINK_PORT" \
            INGEST_EDGE_LOG="${INGEST_EDGE_LOG:-warn}" \
            exec "${pin[@]}" "$EDGE" serve ${LT_EDGE_CONFIG:+--config "$LT_EDGE_CONFIG"}
    ) >"$dir/edge.log" 2>&1 &
    EDGE_PID=$!
    EDGE_LOG="$dir/edge.log"
    LT_PIDS+=("$EDGE_PID")
    if ! lt_wait_http "http://127.0.0.1:$EDGE_OPS_PORT/readyz" 30; then
        lt_log "edge log:"; tail -20 "$dir/edge.log" >&2
        lt_die "ingest-edge did not become ready on ops port $EDGE_OPS_PORT"
    fi
    # Limits far above what this machine can send, so the limiter is exercised but never
    # rejects; fall back to the type's defaults if the API refuses the override.
    resp=$(lt_admin_post "$EDGE_OPS_PORT" "{\"name\":\"bench\",\"type\":\"remote_write\",$LT_LIMITS}") ||
        resp=$(lt_admin_post "$EDGE_OPS_PORT" '{"name":"bench","type":"remote_write"}') ||
        lt_die "could not create a remote_write token"
    RW_TOKEN=$(printf '%s' "$resp" | lt_json_get token)
    resp=$(lt_admin_post "$EDGE_OPS_PORT" "{\"name\":\"bench\",\"type\":\"client\",\"client_type\":\"web\",\"origins\":[\"http://localhost:3000\"],$LT_LIMITS}") ||
        lt_die "could not create a client token"
    CLIENT_TOKEN=$(printf '%s' "$resp" | lt_json_get token)
}

# lt_proc_cpu PID: CPU seconds (user+system) used by PID and its direct children so far.
lt_proc_cpu() {
    local pid=$1 total=0 p ticks
    for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
        ticks=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$(( total + ${ticks:-0} ))
    done
    awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# lt_proc_hwm PID: peak RSS in KiB (VmHWM) of PID plus its direct children (nginx workers).
lt_proc_hwm() {
    local pid=$1 total=0 p kb
    for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$(( total + ${kb:-0} ))
    done
    echo "$total"
}
