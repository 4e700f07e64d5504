#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/ (run from anywhere; committed output).

Seeds: the repository's own fixtures (Prometheus 2.42 remote-write bodies, OTel JS JSON
exports), plus small handwritten origins, secrets, protobuf bodies and HTTP heads. Protobuf
and snappy are encoded by hand here (snappy as one literal), so nothing needs installing.
"""
import gzip, os, struct, zlib, pathlib

HERE = pathlib.Path(__file__).resolve().parent
FIX = HERE.parent / "tests" / "fixtures"
OUT = HERE / "corpus"

def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F; n >>= 7
        if n: out.append(b | 0x80)
        else: out.append(b); return bytes(out)

def field(tag, wire, payload):
    key = varint(tag << 3 | wire)
    if wire == 2: return key + varint(len(payload)) + payload
    return key + payload

def ld(tag, payload): return field(tag, 2, payload if isinstance(payload, bytes) else payload.encode())

def snappy_literal(raw):
    """Snappy block: the decoded length, then the whole input as literals (<= 60 bytes each
    would be simplest; one literal with a 4-byte length works for any size)."""
    n = len(raw) - 1
    return varint(len(raw)) + bytes([63 << 2]) + struct.pack("<I", n) + raw if raw else varint(0)

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def checksum(random):
    c = zlib.crc32(random.encode()) & 0xFFFFFFFF
    s = ""
    for _ in range(6):
        s = B62[c % 62] + s; c //= 62
    return s

# --- origin: lines of patterns; the last line is also the request Origin header.
for i, text in enumerate([
    "https://app.example.com\nhttps://app.example.com",
    "https://*.example.com\nhttps://shop.example.com",
    "https://*.eu.*.example.com\nhttps://a.eu.b.example.com",
    "http://localhost:3000\nhttp://localhost:3000",
    "https://[::1]:8443\nhttps://[::1]:8443",
    "https://127.0.0.1\nhttps://127.0.0.1:443",
    "https://xn--bcher-kva.example\nhttps://b\u00fccher.example",
    "HTTPS://APP.Example.COM:443\nhttps://app.example.com",
    "https://app.example.com.\nnull",
    "https://%41pp.example.com\nhttps://0x7f.1",
]):
    put("origin", f"seed_{i:02}", text)

# --- secret: valid secrets (checksum computed as the edge does) and near misses.
for i, (prefix, random) in enumerate([("iec_", "A" * 27), ("iew_", "0123456789abcdefghijklmnopq"),
                                      ("iec_", "zZyYxXwWvVuUtTsSrRqQpPoOnNm")]):
    put("secret", f"valid_{i}", prefix + random + checksum(random))
put("secret", "bad_checksum", "iec_" + "A" * 27 + "000000")
put("secret", "short", "iew_abc")

# --- remote_write: byte 0 = version (0: 1.0, 1: 2.0), then the snappy body.
for i in range(3):
    put("remote_write", f"prometheus_2_42_body_{i:03}", b"\x00" + (FIX / "prometheus-2.42" / f"body_{i:03}.bin").read_bytes())
label = lambda n, v: ld(1, ld(1, n) + ld(2, v))
sample = lambda v, ts: ld(2, field(1, 1, struct.pack("<d", v)) + field(2, 0, varint(ts)))
NOW = 1_767_225_000_000
v1 = ld(1, ld(1, "__name__") + ld(2, "up"))[0:0]
series = ld(1, ld(1, ld(1, "__name__") + ld(2, "up")) + ld(1, ld(1, "job") + ld(2, "api"))
                + ld(2, field(1, 1, struct.pack("<d", 1.0)) + field(2, 0, varint(NOW))))
meta = ld(3, field(1, 0, varint(1)) + ld(2, "up") + ld(4, "Whether up.") + ld(5, ""))
put("remote_write", "v1_small", b"\x00" + snappy_literal(series + meta))
syms = b"".join(ld(4, s) for s in ["", "__name__", "up", "job", "api", "Help."])
ts2 = ld(5, ld(1, varint(1) + varint(2) + varint(3) + varint(4))
            + ld(2, field(1, 1, struct.pack("<d", 2.0)) + field(2, 0, varint(NOW)))
            + ld(5, field(1, 0, varint(1)) + field(3, 0, varint(5))))
put("remote_write", "v2_small", b"\x01" + snappy_literal(syms + ts2))
put("remote_write", "v2_unsorted_labels", b"\x01" + snappy_literal(syms + ld(5, ld(1, varint(3) + varint(4) + varint(1) + varint(2)) + ld(2, field(2, 0, varint(NOW))))))

# --- rum_count: byte 0 = signal (bit 0: logs) | format (bit 1: protobuf), byte 1 = limit.
for i in range(2):
    put("rum_count", f"otel_js_export_{i:02}_json", b"\x00\x10" + (FIX / "otel-js-2.12" / f"export_{i:02}.json.body").read_bytes())
put("rum_count", "logs_json", b"\x01\x04" + b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}},{}]}]}]}')
span = ld(1, bytes(16)) + ld(2, bytes(8)) + ld(5, "GET /") + field(7, 1, bytes(8)) + ld(9, ld(1, "k") + ld(2, ld(1, "v")))
traces = ld(1, ld(1, ld(1, ld(1, "service.name") + ld(2, ld(1, "shop")))) + ld(2, ld(2, span) + ld(2, span)))
put("rum_count", "traces_proto", b"\x02\x01" + traces)
put("rum_count", "traces_proto_limit_1", b"\x02\x01" + traces + traces)
logs = ld(1, ld(2, ld(2, ld(5, ld(1, "hello")) + field(1, 1, bytes(8)))))
put("rum_count", "logs_proto", b"\x03\x08" + logs)

# --- gunzip: bytes 0..2 = output limit (u16 LE), then the body.
body = (FIX / "otel-js-2.12" / "export_00.json.body").read_bytes()
put("gunzip", "export_00_gz", struct.pack("<H", 4096) + gzip.compress(body, mtime=0))
put("gunzip", "export_00_gz_too_large", struct.pack("<H", 100) + gzip.compress(body, mtime=0))
put("gunzip", "zeros_bomb", struct.pack("<H", 65535) + gzip.compress(bytes(200_000), mtime=0))
put("gunzip", "empty", struct.pack("<H", 16) + gzip.compress(b"", mtime=0))

# --- http_head: raw bytes to the ingest listener; @WEB@ / @RW@ become real secrets.
json_body = body.decode()
heads = {
    "healthz": "GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n",
    "preflight": "OPTIONS /v1/traces HTTP/1.1\r\nHost: edge\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\r\n",
    "rum_json": f"POST /v1/traces HTTP/1.1\r\nHost: edge\r\nOrigin: https://app.example.com\r\nAuthorization: Bearer @WEB@\r\nContent-Type: application/json\r\nContent-Length: {len(json_body)}\r\n\r\n{json_body}",
    "rum_beacon_query_token": f"POST /v1/logs?token=@WEB@ HTTP/1.1\r\nHost: edge\r\nOrigin: https://app.example.com\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n{{}}",
    "rum_chunked": "POST /v1/traces HTTP/1.1\r\nHost: edge\r\nOrigin: https://app.example.com\r\nAuthorization: Bearer @WEB@\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "two_requests_keepalive": "GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\nGET /nope HTTP/1.1\r\nHost: edge\r\n\r\n",
    "bad_content_length": "POST /api/v1/write HTTP/1.1\r\nHost: edge\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
}
for name, head in heads.items():
    put("http_head", name, head)
rw = snappy_literal(series)
put("http_head", "remote_write_v1", b"POST /api/v1/write HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer @RW@\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: " + str(len(rw)).encode() + b"\r\n\r\n" + rw)
gz = gzip.compress(b"{}", mtime=0)
put("http_head", "rum_gzip", b"POST /v1/traces HTTP/1.1\r\nHost: edge\r\nOrigin: https://app.example.com\r\nAuthorization: Bearer @WEB@\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: " + str(len(gz)).encode() + b"\r\n\r\n" + gz)
# h2c with prior knowledge: the preface and an empty SETTINGS frame.
put("http_head", "h2c_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
