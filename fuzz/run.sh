#!/usr/bin/env bash
# Builds the fuzz targets with cargo-afl and runs each for MINUTES (default 1), one after
# another, then prints per target: run time, executions, crashes and hangs (from AFL's
# fuzzer_stats). Output goes to fuzz/target/afl/<target>/ (gitignored); crashing inputs are in
# its default/crashes/ and reproduce with `cargo run --release --bin replay -- TARGET FILE`.
#
#   fuzz/run.sh [MINUTES] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"

minutes="${1:-1}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(origin secret remote_write rum_count gunzip http_head)
fi

cargo afl build --release --bins

# Shared machines: no CPU pinning, no cpufreq or core_pattern requirements, plain log output.
export AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1 AFL_SKIP_CRASHES=1

stat() { sed -n "s/^$1 *: //p" "$2"; }

summary=()
for t in "${targets[@]}"; do
    out="target/afl/$t"
    rm -rf "$out"
    mkdir -p "$out"
    # The HTTP target talks to a real edge: allow it more time per input than the parsers.
    timeout_ms=1000
    [ "$t" = http_head ] && timeout_ms=5000
    echo "== $t: $minutes min"
    cargo afl fuzz -i "corpus/$t" -o "$out" -V $((minutes * 60)) -t "$timeout_ms" \
        "target/release/$t" > "$out/afl.log" 2>&1 || {
        echo "afl-fuzz failed for $t; last lines of $out/afl.log:"
        tail -20 "$out/afl.log"
        continue
    }
    s="$out/default/fuzzer_stats"
    crashes="$(stat saved_crashes "$s")"
    summary+=("$(printf '%-13s %8ss %12s %10s %8s %8s' "$t" "$(stat run_time "$s")" \
        "$(stat execs_done "$s")" "$(stat execs_per_sec "$s")" "${crashes:-$(stat unique_crashes "$s")}" \
        "$(stat saved_hangs "$s")")")
done

echo
printf '%-13s %9s %12s %10s %8s %8s\n' target run_time execs execs/s crashes hangs
printf '%s\n' "${summary[@]}"
