#!/usr/bin/env bash
# The throughput cost of durability: remote_write v1 samples/s with the durable spool vs the
# in-memory hand-off (`pipeline.durable = false`), alternating in one run, 16 connections, both
# forwarding to the same blackhole sink. Usage: bash loadtest/durability.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -p ingest-edge -p loadtest
D=$(mktemp -d)
./target/release/loadtest sink --listen 127.0.0.1:0 --lifetime 10m > $D/sink.log 2>&1 &
SINKPID=$!
sleep 0.5
SINK=$(head -1 $D/sink.log | awk '{print $3}')
trap 'kill $SINKPID 2>/dev/null; pkill -f "ingest-edge serve --config $D" 2>/dev/null || true' EXIT
for round in 1 2; do
  for mode in true false; do
    rm -rf $D/data; printf '[pipeline]\ndurable = %s\nmax_bytes = 4294967296\nforward_concurrency = 4\n' $mode > $D/edge.toml
    INGEST_EDGE_INGEST_ADDR=127.0.0.1:18081 INGEST_EDGE_OPS_ADDR=127.0.0.1:19465 INGEST_EDGE_DATA_DIR=$D/data \
    INGEST_EDGE_ADMIN_KEY=bench-admin-key-0123456789 INGEST_EDGE_REMOTE_WRITE_UPSTREAM=http://$SINK/api/v1/write INGEST_EDGE_LOG=warn \
      ./target/release/ingest-edge serve --config $D/edge.toml > $D/edge.log 2>&1 &
    EP=$!; sleep 0.7
    TOK=$(curl -s -H "Authorization: Bearer bench-admin-key-0123456789" -XPOST 127.0.0.1:19465/api/v1/tokens -d '{"name":"b","type":"remote_write","limits":{"requests_per_second":1000000,"requests_burst":1000000,"items_per_second":4000000000,"items_burst":4000000000}}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
    R=$(./target/release/loadtest --target http://127.0.0.1:18081/api/v1/write --mode rw-v1 --token $TOK --duration 10s --warmup 2s --connections 16 --json)
    echo "round=$round durable=$mode $(echo "$R" | python3 -c 'import sys,json;r=json.load(sys.stdin);print("samples_per_s=%d p50_ms=%.2f p99_ms=%.2f non2xx=%s" % (r["items_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], r["non_2xx"]))' 2>/dev/null || echo "$R" | head -c 600)"
    kill $EP; wait $EP 2>/dev/null || true
  done
done
