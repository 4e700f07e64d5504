#!/usr/bin/env python3
"""Turns the runs recorded by compare.sh (a TSV of loadtest JSON reports plus per-run peak RSS,
CPU seconds and what reached the blackhole) into the Markdown of BENCHMARKS.md.

Throughput figures are medians over the A/B rounds; peak RSS is the maximum over the rounds.
Only 2xx answers count as accepted throughput; delivered throughput is what reached the
upstream blackhole during the measured window (the `observed` part of each loadtest report). Machine facts and settings come from the environment
that compare.sh exports.
"""

import csv
import datetime
import json
import os
import statistics
import sys


def load(path):
    runs = []
    for row in csv.DictReader(open(path), delimiter="\t"):
        try:
            row["r"] = json.load(open(row["json"]))
        except (OSError, ValueError):
            row["r"] = {}
        runs.append(row)
    return runs


def pick(runs, phase, server):
    return [x for x in runs if x["phase"] == phase and x["server"] == server and x["r"]]


def med(rows, key):
    vals = [x["r"].get(key, 0.0) for x in rows]
    return statistics.median(vals) if vals else None


def saturated(x):
    """An open-loop run whose server sent back less than 95% of the schedule."""
    r = x["r"]
    return bool(r.get("rate")) and r.get("req_per_s", 0) < 0.95 * r["rate"]


def with_range(vals, note=""):
    """Median with the min-max range over the rounds, when there are several."""
    if not vals:
        return "n/a"
    m = fmt(statistics.median(vals))
    if len(vals) < 2:
        return m
    return f"{m} ({fmt(min(vals))}-{fmt(max(vals))}{note})"


def spread(rows, key):
    return with_range([x["r"].get(key, 0.0) for x in rows])


def obs(x, key):
    """A figure of a run's `observed` block (None when the run had no observation)."""
    return (x["r"].get("observed") or {}).get(key)


def med_obs(rows, key):
    vals = [obs(x, key) for x in rows if obs(x, key) is not None]
    return statistics.median(vals) if vals else None


def med_series(rows, table, prefix):
    """Median over rows of the first `observed` series (per-second or end value) named prefix."""
    vals = []
    for x in rows:
        for k, v in ((x["r"].get("observed") or {}).get(table) or {}).items():
            if k.startswith(prefix):
                vals.append(v)
                break
    return statistics.median(vals) if vals else None


def refused_per_s(rows):
    """Median of (non-2xx + errors) per second of the window: the 503s the issue counts."""
    vals = [(x["r"].get("non_2xx", 0) + x["r"].get("errors", 0)) / max(x["r"].get("duration_s", 0), 1e-9)
            for x in rows]
    return statistics.median(vals) if vals else None


def spread_obs(rows, key):
    return with_range([obs(x, key) for x in rows if obs(x, key) is not None])


def p99s(rows):
    """The p99 of every run that kept its schedule."""
    return [x["r"]["latency_ms"]["p99"] for x in rows if "latency_ms" in x["r"] and not saturated(x)]


def p99(rows):
    vals = p99s(rows)
    return statistics.median(vals) if vals else None


def p99_cell(rows):
    if rows and all(saturated(x) for x in rows):
        r = rows[0]["r"]
        return f"saturated ({r.get('req_per_s', 0):,.0f} of {r['rate']:,.0f} req/s)"
    vals = p99s(rows)
    return with_range(vals, f", median of {len(vals)}")


def commits(x):
    """(p99 bound in s, commits over 10 ms, commits) of the spool during a run's window,
    from the per-second rates of ingest_spool_commit_duration_seconds that compare.sh observed;
    None without commits (durable spool off, or an older edge without the histogram)."""
    rates = (x["r"].get("observed") or {}).get("series_per_s") or {}
    count = next((v for k, v in rates.items() if k.startswith("ingest_spool_commit_duration_seconds_count")), None)
    if not count:
        return None
    under = {}
    for le in os.environ.get("COMMIT_BOUNDS", "").split():
        v = next((v for k, v in rates.items() if k.startswith("ingest_spool_commit_duration_seconds_bucket") and f'le="{le}"' in k), None)
        if v is not None:
            under[float(le)] = v / count
    if 0.01 not in under:
        return None
    p99 = next((le for le in sorted(under) if under[le] >= 0.99), None)
    window = (x["r"].get("observed") or {}).get("window_s") or 0.0
    return p99, round(count * (1.0 - under[0.01]) * window), round(count * window)


def commits_cell(rows):
    """Each round's spool commit p99 (as a histogram bound) and its commits over 10 ms."""
    cells = []
    for x in rows:
        c = commits(x)
        if c is None:
            continue
        p99, slow, total = c
        bound = f"<= {p99 * 1000:g} ms" if p99 is not None else f"> {max(float(b) for b in os.environ['COMMIT_BOUNDS'].split()) * 1000:g} ms"
        # A count, not a share: one commit in 50,000 held up the p99 of its round.
        cells.append(f"p99 {bound}, {slow:,} of {total:,} over 10 ms")
    return "; ".join(cells) if cells else "n/a"


def hwm_mib(rows):
    vals = [int(x["hwm_kib"] or 0) for x in rows]
    return max(vals) / 1024 if vals else None


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:.2f}{unit}"


def count(v):
    return "n/a" if v is None else f"{v:,.0f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def verdict(value, target, higher_is_better):
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    return "**met**" if ok else "**not met**"


def main():
    runs = load(sys.argv[1])
    env = os.environ.get
    out = []
    w = out.append
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    w("# Benchmarks\n")
    w(f"Generated {now} by `{env('CMD', 'loadtest/compare.sh')}` (the one command that "
      "regenerates this file; `--quick` for a ~2 minute smoke version).\n")
    w("## Machine and settings\n")
    w(f"- CPU: {env('CPU_MODEL', '?')}, `nproc` = {env('NPROC', '?')}; kernel {env('KERNEL', '?')}; "
      f"load average at the end: {env('LOADAVG', '?')} (other work on the machine shows up here).")
    w("- Memory (`free -g`):\n\n```\n" + env("FREE_G", "?") + "\n```\n")
    w(f"- ingest-edge: {env('EDGE_VERSION', '?')}, binary built {env('EDGE_BUILT', '?')}, "
      "built-in defaults (durable spool on: fsync before the 2xx); "
      f"peers: {env('VMAGENT_VERSION', '?')} (Debian "
      f"`victoria-metrics`), {env('NGINX_VERSION', '?')} (Debian `nginx`, `return 204;`, "
      "`worker_processes auto`).")
    pinning = ("the server under test on CPU 0 (`taskset -c 0`: ingest and forwarding share one core), "
               "the load generator and the sink on CPU 1" if env("PIN", "0") == "1"
               else "nothing pinned (no taskset, one CPU or `--no-pin`)")
    w(f"- Load: `loadtest` on the same machine, closed loop on keep-alive connections: "
      f"{env('CONNS', '?')} for remote_write (a Prometheus with a few shards) and "
      f"{env('RUM_CONNS', '?')} for RUM (many browsers), unpinned; and {env('HIGH_CONNS', '?')} for both, "
      f"\"pinned\": {pinning}. The `-tokens` phases rotate over {env('TOKENS', '?')} tokens "
      "(each request with the next one; store seeded by `loadtest seed-tokens`). "
      f"{env('ROUNDS', '?')} A/B round(s) of {env('WARMUP', '?')} s warm-up + "
      f"{env('DURATION', '?')} s measured; every run starts its server fresh. Open loop: "
      f"{env('OL_CONNS', '?')} connections, latency from the intended send time. remote_write "
      "bodies: 2000 samples, 8-12 labels, snappy; RUM: OTLP JSON exports of 2-4 KB with "
      "`Origin` and a bearer token. The edge (remote_write and OTLP) and vmagent forward to "
      "the same blackhole (`loadtest sink`, 204).")
    w(f"- Build took {env('BUILD_SECS', '?')} s, measuring {env('MEASURE_SECS', '?')} s (budget {env('BUDGET', '?')} s).\n")

    e_rw, v_rw = pick(runs, "rw-v1", "edge"), pick(runs, "rw-v1", "vmagent")
    e_rum, n_rum = pick(runs, "rum", "edge"), pick(runs, "rum", "nginx")
    e_fx, v_fx = pick(runs, "rw-fixtures", "edge"), pick(runs, "rw-fixtures", "vmagent")
    e_v2 = pick(runs, "rw-v2", "edge")
    e_rw64, v_rw64 = pick(runs, "rw-c64", "edge"), pick(runs, "rw-c64", "vmagent")
    e_rum64, n_rum64 = pick(runs, "rum-c64", "edge"), pick(runs, "rum-c64", "nginx")
    e_rwtok, e_rumtok = pick(runs, "rw-c64-tokens", "edge"), pick(runs, "rum-c64-tokens", "edge")
    e_rummem = pick(runs, "rum-c64-memory", "edge")
    e_olrw, v_olrw = pick(runs, "openloop-rw", "edge"), pick(runs, "openloop-rw", "vmagent")
    e_olrum, n_olrum = pick(runs, "openloop-rum", "edge"), pick(runs, "openloop-rum", "nginx")

    w("## Results\n")
    w("| metric | ingest-edge | peer | edge / peer | target | status |")
    w("|---|---|---|---|---|---|")
    a, b = med(e_rw, "items_per_s"), med(v_rw, "items_per_s")
    r = ratio(a, b)
    w(f"| remote_write v1 accepted samples/s, {env('CONNS', '?')} connections, median (range) | {spread(e_rw, 'items_per_s')} | vmagent {spread(v_rw, 'items_per_s')} | {fmt(r, 'x')} | >= 2x | {verdict(r, 2.0, True)} |")
    a, b = hwm_mib(e_rw), hwm_mib(v_rw)
    r = ratio(a, b)
    w(f"| peak RSS under remote_write (MiB, VmHWM) | {fmt(a)} | vmagent {fmt(b)} | {fmt(r, 'x')} | <= 0.5x | {verdict(r, 0.5, False)} |")
    a, b = med(e_rum, "ok_per_s"), med(n_rum, "ok_per_s")
    r = ratio(a, b)
    w(f"| RUM requests/s, median (range) | {spread(e_rum, 'ok_per_s')} | nginx 204 {spread(n_rum, 'ok_per_s')} | {fmt(r, 'x')} | >= 0.8x | {verdict(r, 0.8, True)} |")
    hc = env("HIGH_CONNS", "64")
    pin = "pinned" if env("PIN", "0") == "1" else "NOT pinned"
    a, b = med(e_rw64, "items_per_s"), med(v_rw64, "items_per_s")
    w(f"| remote_write accepted samples/s, {hc} connections ({pin}) | {spread(e_rw64, 'items_per_s')} | vmagent {spread(v_rw64, 'items_per_s')} | {fmt(ratio(a, b), 'x')} | (info) | |")
    a, b = med_obs(e_rw64, "delivered_items_per_s"), med_obs(v_rw64, "delivered_items_per_s")
    r = ratio(a, b)
    w(f"| remote_write **delivered while loaded**, samples/s, {hc} connections ({pin}) | {spread_obs(e_rw64, 'delivered_items_per_s')} | vmagent {spread_obs(v_rw64, 'delivered_items_per_s')} | {fmt(r, 'x')} | >= 1.5x (goal 2x) | {verdict(r, 1.5, True)} |")
    a, b = refused_per_s(e_rw64), refused_per_s(v_rw64)
    w(f"| remote_write non-2xx + errors per second, {hc} connections (upstream healthy) | {fmt(a)} | vmagent {fmt(b)} | | 0 | {verdict(a, 0.0, False)} |")
    a, b = med_obs(e_rw, "delivered_items_per_s"), med_obs(v_rw, "delivered_items_per_s")
    w(f"| remote_write delivered while loaded, samples/s, {env('CONNS', '?')} connections | {spread_obs(e_rw, 'delivered_items_per_s')} | vmagent {spread_obs(v_rw, 'delivered_items_per_s')} | {fmt(ratio(a, b), 'x')} | (info) | |")
    a, b = med(e_rum64, "ok_per_s"), med(n_rum64, "ok_per_s")
    r = ratio(a, b)
    w(f"| RUM requests/s, {hc} connections ({pin}) | {spread(e_rum64, 'ok_per_s')} | nginx 204 {spread(n_rum64, 'ok_per_s')} | {fmt(r, 'x')} | >= 0.4x (goal 0.6x) | {verdict(r, 0.4, True)} |")
    a, b = med(e_rummem, "ok_per_s"), med(n_rum64, "ok_per_s")
    w(f"| RUM requests/s, {hc} connections ({pin}), durable spool **off** (`pipeline.durable = false`: what fsync costs) | {fmt(a)} | nginx 204 {fmt(b)} | {fmt(ratio(a, b), 'x')} | (info) | |")
    ntok = env("TOKENS", "?")
    a, b = med(e_rwtok, "items_per_s"), med(e_rw64, "items_per_s")
    w(f"| remote_write accepted samples/s over {ntok} tokens, {hc} connections | {fmt(a)} | edge, one token {fmt(b)} | {fmt(ratio(a, b), 'x')} | (info) | |")
    a, b = med_obs(e_rwtok, "delivered_items_per_s"), med_obs(e_rw64, "delivered_items_per_s")
    w(f"| remote_write delivered samples/s over {ntok} tokens, {hc} connections | {fmt(a)} | edge, one token {fmt(b)} | {fmt(ratio(a, b), 'x')} | (info) | |")
    a, b = med(e_rumtok, "ok_per_s"), med(e_rum64, "ok_per_s")
    w(f"| RUM requests/s over {ntok} tokens, {hc} connections | {fmt(a)} | edge, one token {fmt(b)} | {fmt(ratio(a, b), 'x')} | (info) | |")
    for label, e, p, peer in (("remote_write", e_olrw, v_olrw, "vmagent"), ("RUM", e_olrum, n_olrum, "nginx")):
        rate = e[0]["r"].get("rate") if e else None
        a, b = p99(e), p99(p)
        w(f"| open-loop p99 latency, {label} at {fmt(rate)} req/s (half the edge's peak), ms "
          f"| {p99_cell(e)} | {peer} {p99_cell(p)} | {fmt(ratio(a, b), 'x')} | <= 10 ms | "
          f"{'**not met** (could not keep the rate)' if e and a is None else verdict(a, 10.0, False)} |")
    for label, e in (("remote_write", e_olrw), ("RUM", e_olrum)):
        w(f"| the edge's spool commits (append + fdatasync) during those {label} runs, per round "
          f"(`ingest_spool_commit_duration_seconds`): every request waits for one | {commits_cell(e)} | | | (info) | |")
    a, b = med(e_fx, "items_per_s"), med(v_fx, "items_per_s")
    w(f"| Prometheus 2.42 fixture replay, samples/s | {fmt(a)} | vmagent {fmt(b)} | {fmt(ratio(a, b), 'x')} | (info) | |")
    a = med(e_v2, "items_per_s")
    w(f"| remote_write v2 samples/s | {fmt(a)} | vmagent: no 2.0 support | | (info) | |")
    cpu = lambda rows: sum(float(x["cpu_s"] or 0) for x in rows)
    items = lambda rows: sum(x["r"].get("items_per_s", 0) * x["r"].get("duration_s", 0) for x in rows)
    a = items(e_rw) / cpu(e_rw) if e_rw and cpu(e_rw) else None
    b = items(v_rw) / cpu(v_rw) if v_rw and cpu(v_rw) else None
    w(f"| remote_write samples per server CPU-second | {fmt(a)} | vmagent {fmt(b)} | {fmt(ratio(a, b), 'x')} | (info) | |")
    w("")
    w("The in-process targets of issue 7 (v1 decode+validate >= 5 M samples/s on one core; 1 M "
      "tokens: start-up < 5 s, RSS < 1 GiB, lookup + origin check < 200 ns; `/metrics` with 10 k "
      "tokens < 250 ms) are measured at the end of this file (full runs only, not `--quick`).\n")

    delivered_section(runs, w, env)

    w("## Anomalies\n")
    notes = []
    for x in runs:
        rr = x["r"]
        if x["status"] != "ok":
            notes.append(f"- {x['phase']}/{x['server']}/round {x['round']}: {x['status']}")
        if rr and (rr.get("non_2xx") or rr.get("errors")):
            notes.append(f"- {x['phase']}/{x['server']}/round {x['round']}: {rr.get('non_2xx')} non-2xx "
                         f"{rr.get('status')}, {rr.get('errors')} errors {rr.get('error_kinds')} "
                         f"of {rr.get('requests')} requests")
        if rr and saturated(x):
            notes.append(f"- {x['phase']}/{x['server']}: open loop reached {rr['req_per_s']:.0f} of "
                         f"{rr['rate']:.0f} req/s (server or generator saturated)")
        if rr and (obs(x, "uncounted_requests") or 0) > 0:
            notes.append(f"- {x['phase']}/{x['server']}/round {x['round']}: the sink could not count the "
                         f"items of {obs(x, 'uncounted_requests')} request(s) (delivered reads low)")
        if x["server"] in ("edge", "vmagent") and rr.get("ok") and int(x["sink_requests"] or 0) == 0:
            notes.append(f"- {x['phase']}/{x['server']}/round {x['round']}: nothing reached the "
                         "upstream blackhole during the run")
    w("\n".join(notes) if notes else "None: every request of every run was answered 2xx.")
    w("")

    w("## All runs\n")
    w("| phase | server | round | conns | pinned | req/s | accepted items/s | delivered items/s | p50 ms | p99 ms | p99.9 ms | non-2xx | errors | peak RSS MiB | server CPU s | upstream reqs | upstream MB |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for x in runs:
        rr = x["r"]
        lat = rr.get("latency_ms", {})
        w(f"| {x['phase']} | {x['server']} | {x['round']} | {rr.get('connections', 'n/a')} | "
          f"{'yes' if x.get('pinned') == '1' else 'no'} | {fmt(rr.get('ok_per_s'))} | "
          f"{fmt(rr.get('items_per_s'))} | {fmt(obs(x, 'delivered_items_per_s'))} | "
          f"{fmt(lat.get('p50'))} | {fmt(lat.get('p99'))} | "
          f"{fmt(lat.get('p999'))} | {rr.get('non_2xx', 'n/a')} | {rr.get('errors', 'n/a')} | "
          f"{int(x['hwm_kib'] or 0) / 1024:.1f} | {x['cpu_s']} | {x['sink_requests']} | "
          f"{int(x['sink_bytes'] or 0) / 1e6:.1f} |")
    print("\n".join(out))


def delivered_section(runs, w, env):
    """Accepted beside delivered for every forwarding phase, medians over the rounds."""
    w("## Accepted and delivered while loaded\n")
    w("Accepted: items in requests answered 2xx, per second of the measured window. Delivered: "
      "items that reached the upstream blackhole during that same window (the sink counts the "
      "samples and spans in what it receives), so a server that accepts faster than it forwards "
      "shows it here; forwarded: the edge's own `ingest_forwarded_items_total` over the window. "
      "Queued at the end: accepted since the first request (warm-up included) minus what reached "
      "the sink by the window's end; spool/pending: the server's own figure then (edge "
      "`ingest_spool_bytes`, vmagent `vmagent_remotewrite_pending_data_bytes`). Refused/s: non-2xx "
      "answers (the edge's `503`s) plus requests without an answer, per second. \"Pinned\": "
      "server on CPU 0, load generator and sink on CPU 1.\n")
    w("| phase | server | conns | pinned | tokens | accepted items/s | delivered items/s | delivered / accepted | delivered vs peer | forwarded items/s (edge counter) | refused/s | statuses | queued at end (items) | spool/pending at end MB | p50 ms | p99 ms |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = []
    for x in runs:
        if x["r"] and x["r"].get("observed") and (x["phase"], x["server"]) not in order:
            order.append((x["phase"], x["server"]))
    peer_of = {"edge": "vmagent"}
    for phase, server in order:
        rows = pick(runs, phase, server)
        r0 = rows[0]["r"]
        acc, dlv = med(rows, "items_per_s"), med_obs(rows, "delivered_items_per_s")
        peer_rows = pick(runs, phase, peer_of.get(server, ""))
        if phase.endswith("-tokens"):
            peer_rows = pick(runs, phase[: -len("-tokens")], "vmagent")
        peer = med_obs(peer_rows, "delivered_items_per_s")
        fwd = med_series(rows, "series_per_s", "ingest_forwarded_items_total")
        spool = med_series(rows, "series_at_end", "ingest_spool_bytes")
        if spool is None:
            spool = med_series(rows, "series_at_end", "vmagent_remotewrite_pending_data_bytes")
        statuses = {}
        for x in rows:
            for k, v in x["r"].get("status", {}).items():
                statuses[k] = statuses.get(k, 0) + v
            for k, v in x["r"].get("error_kinds", {}).items():
                statuses[k] = statuses.get(k, 0) + v
        lat = lambda q: statistics.median([x["r"]["latency_ms"][q] for x in rows])
        w(f"| {phase} | {server} | {r0.get('connections')} | {'yes' if rows[0].get('pinned') == '1' else 'no'} | "
          f"{r0.get('tokens') or 1} | {spread(rows, 'items_per_s')} | {spread_obs(rows, 'delivered_items_per_s')} | "
          f"{fmt(ratio(dlv, acc))} | {fmt(ratio(dlv, peer), 'x')} | {fmt(fwd)} | {fmt(refused_per_s(rows))} | "
          f"{' '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} | {count(med_obs(rows, 'queued_items_at_end'))} | "
          f"{fmt(spool / 1e6 if spool is not None else None)} | {fmt(lat('p50'))} | {fmt(lat('p99'))} |")
    w("")


def in_process(decode_path, scale_path, scale10k_path):
    """The table of the in-process targets, from the raw bench output compare.sh saved."""
    import re

    def read(path):
        try:
            return open(path).read()
        except OSError:
            return ""

    def records(text):
        out = {}
        for line in text.splitlines():
            try:
                out.update(json.loads(line))
            except ValueError:
                pass
        return out

    # criterion prints the v1 group name, a time line, then "thrpt: [low mid high]".
    v1 = None
    decode = read(decode_path)
    block = decode.split("synthetic_2000_v1", 1)[1] if "synthetic_2000_v1" in decode else ""
    m = re.search(r"thrpt:\s*\[\S+ \S+ (\S+) (\S+)", block)
    if m:
        scale = {"Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}.get(m.group(2), 1.0)
        v1 = float(m.group(1)) * scale
    big, small = records(read(scale_path)), records(read(scale10k_path))
    # Named by the size the bench reports, so a run on another size cannot pass for 1 M.
    n = f"{big['tokens']:,}" if isinstance(big.get("tokens"), int) else "? (no run)"
    rows = [
        ("remote_write v1 decode + validate, one core", v1, ">= 5 M samples/s",
         lambda v: v >= 5e6, lambda v: f"{v / 1e6:.2f} M samples/s"),
        (f"{n} tokens: start-up of the real binary", big.get("process_startup_ms"), "< 5 s",
         lambda v: v < 5000, lambda v: f"{v / 1000:.2f} s"),
        (f"{n} tokens: RSS of the real binary", big.get("process_rss_mib"), "< 1 GiB",
         lambda v: v < 1024, lambda v: f"{v} MiB"),
        (f"{n} tokens: lookup + origin check", big.get("lookup_plus_origin_ns"), "< 200 ns",
         lambda v: v < 200, lambda v: f"{v} ns"),
        ("`/metrics` with 10 k active tokens", small.get("metrics_render_ms"), "< 250 ms",
         lambda v: v < 250, lambda v: f"{v} ms"),
    ]
    print("| target | measured | goal | status |")
    print("|---|---|---|---|")
    for name, value, goal, ok, fmt in rows:
        if value is None:
            print(f"| {name} | not measured | {goal} | **not measured** |")
        else:
            print(f"| {name} | {fmt(value)} | {goal} | **{'met' if ok(value) else 'not met'}** |")


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--in-process":
    in_process(*sys.argv[2:])
    sys.exit(0)

if __name__ == "__main__":
    main()
