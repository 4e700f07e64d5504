#!/usr/bin/env bash
# transport.sh: throughput of the edge per transport: plain HTTP/1.1, h2c, TLS HTTP/1.1 and
# TLS HTTP/2, for RUM (req/s) and remote_write (samples/s), closed loop. A test CA and a
# certificate for 127.0.0.1 are made with the openssl CLI; one edge runs TLS, one plain, both
# forwarding to a `loadtest sink`.
#
# Usage: loadtest/transport.sh [--seconds N] [--connections N] [--no-build]
#   default: 10 s per run, 4 connections, release build. 8 runs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SECS=10 CONNS=4 BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECS=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

WORK=$(mktemp -d -t ingest-transport.XXXXXX)
LT="$ROOT/target/release/loadtest"
EDGE="$ROOT/target/release/ingest-edge"
# shellcheck source=loadtest/lib.sh
. "$HERE/lib.sh"
lt_install_trap
command -v openssl >/dev/null || lt_die "openssl is required"
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release --bins --quiet && cargo build --release -p loadtest --quiet) ||
        lt_die "build failed"
fi

# A throwaway CA and a leaf for 127.0.0.1 (P-256, like most ACME certificates).
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 \
    -subj /CN=transport-bench-ca 2>/dev/null
openssl req "${ec[@]}" -keyout "$WORK/key.pem" -out "$WORK/leaf.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$WORK/san.ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -out "$WORK/cert.pem" -days 2 -extfile "$WORK/san.ext" 2>/dev/null
printf '[server]\ntls_cert_file = "%s"\ntls_key_file = "%s"\n' "$WORK/cert.pem" "$WORK/key.pem" \
    >"$WORK/tls.toml"

lt_start_sink
lt_start_edge
PLAIN_PORT=$EDGE_PORT PLAIN_RW=$RW_TOKEN PLAIN_CLIENT=$CLIENT_TOKEN
LT_EDGE_CONFIG="$WORK/tls.toml" lt_start_edge
TLS_PORT=$EDGE_PORT TLS_RW=$RW_TOKEN TLS_CLIENT=$CLIENT_TOKEN

# run NAME MODE URL TOKEN extra-args...: prints "NAME MODE rate".
run() {
    local name=$1 mode=$2 url=$3 token=$4 out
    shift 4
    out="$WORK/$name-$mode.json"
    "$LT" --target "$url" --mode "$mode" --token "$token" --origin http://localhost:3000 \
        --duration "${SECS}s" --warmup 1s --connections "$CONNS" --timeout 5s --json "$@" >"$out"
    python3 - "$out" "$name" "$mode" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = r["errors"] + (r["requests"] - r["ok"])
what = f'{r["req_per_s"]:9.0f} req/s' if sys.argv[3] == "rum" else f'{r["items_per_s"]:11.0f} samples/s'
print(f'{sys.argv[2]:14} {sys.argv[3]:6} {what}  p99 {r["latency_ms"]["p99"]:.2f} ms  connects {r["connects"]}  not-ok {bad}')
PY
}

for mode in rum rw-v1; do
    if [ "$mode" = rum ]; then path=/v1/traces; p=$PLAIN_CLIENT; t=$TLS_CLIENT; else path=/api/v1/write; p=$PLAIN_RW; t=$TLS_RW; fi
    run http1 "$mode" "http://127.0.0.1:$PLAIN_PORT$path" "$p"
    run h2c "$mode" "http://127.0.0.1:$PLAIN_PORT$path" "$p" --h2
    run tls-http1 "$mode" "https://127.0.0.1:$TLS_PORT$path" "$t" --tls-ca "$WORK/ca.pem"
    run tls-h2 "$mode" "https://127.0.0.1:$TLS_PORT$path" "$t" --tls-ca "$WORK/ca.pem" --h2
done
