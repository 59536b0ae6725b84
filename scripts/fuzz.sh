#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c, CMake option MERIDIAN_FUZZ) with
# clang into build-fuzz/, replays every saved crash under fuzz/regressions/<target>/
# (none may crash), then fuzzes each target for SECONDS (default 60) on a copy
# of its seed corpus fuzz/corpus/<target>/ with fuzz/<target>.dict if present,
# as many targets at once as there are cores.
# Prints executions, exec/s and coverage per target; exits non-zero if any
# target crashes, naming the saved input. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
jobs=$(nproc)
out=build-fuzz

echo "== fuzz: build ($out, clang, -DMERIDIAN_FUZZ=ON)"
cmake -S . -B "$out" -DCMAKE_C_COMPILER=clang -DMERIDIAN_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$out" --target fuzz -j"$jobs" >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

targets=()
for src in fuzz/fuzz_*.c; do
    targets+=("$(basename "$src" .c)")
done

failed=0
echo "== fuzz: replay fuzz/regressions"
for t in "${targets[@]}"; do
    dir=fuzz/regressions/$t
    [ -d "$dir" ] || continue
    files=("$dir"/*)
    [ -e "${files[0]}" ] || continue
    if "$out/$t" -runs=1 "${files[@]}" >"$out/$t.replay.log" 2>&1; then
        echo "  $t: ${#files[@]} inputs ok"
    else
        echo "  $t: FAILED replaying $dir (log: $out/$t.replay.log)"
        tail -n 30 "$out/$t.replay.log"
        failed=1
    fi
done

# One target: fuzzes it, then writes its row of the table (and what to look
# at if it crashed, marked CRASH) to $out/$t.result.
fuzz_one() {
    local t=$1 corpus=$out/corpus/$1 artifacts=$out/artifacts/$1/ log=$out/$1.log rc=0
    rm -rf "$corpus" "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$corpus/"
    local dict=()
    [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
    "$out/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "${dict[@]}" "$corpus" >"$log" 2>&1 || rc=$?
    local done_line execs eps cov ft corp result=ok
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    [ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(awk '/^stat::number_of_executed_units:/ {v = $2} END {print v}' "$log")
    eps=$(awk '/^stat::average_exec_per_sec:/ {v = $2} END {print v}' "$log")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$done_line")
    [ "$rc" -eq 0 ] || result="CRASH (exit $rc, log $log)"
    {
        printf '  %-18s %12s %10s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" \
            "${ft:-?}" "${corp:-?}" "$result"
        if [ "$rc" -ne 0 ]; then
            grep -E 'ERROR: |SUMMARY: |fuzz property failed|runtime error' "$log" | head -n 5 |
                sed 's/^/    /'
            for f in "$artifacts"*; do
                [ -e "$f" ] && echo "    crashing input: $f (copy it to fuzz/regressions/$t/ once fixed)"
            done
        fi
    } >"$out/$t.result"
}

# As many targets at once as there are cores (each libFuzzer process is one
# thread), so CI gets SECONDS per target in about SECONDS x targets / cores.
echo "== fuzz: ${secs}s per target, $jobs at a time"
for t in "${targets[@]}"; do
    rm -f "$out/$t.result"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    fuzz_one "$t" &
done
wait || true
printf '  %-18s %12s %10s %8s %8s %8s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
    if [ -f "$out/$t.result" ]; then
        cat "$out/$t.result"
        grep -q 'CRASH' "$out/$t.result" && failed=1
    else
        echo "  $t: no result (the fuzzing job failed)"
        failed=1
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED"
    exit 1
fi
echo "fuzz: all targets ok"
