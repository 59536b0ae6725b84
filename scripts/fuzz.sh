#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c, CMake option MERIDIAN_FUZZ) with
# clang into build-fuzz/, replays every saved crash under fuzz/regressions/<target>/
# (none may crash), then fuzzes each target for SECONDS (default 30) on a copy
# of its seed corpus fuzz/corpus/<target>/ with fuzz/<target>.dict if present.
# Prints executions, exec/s and coverage per target; exits non-zero if any
# target crashes, naming the saved input. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
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

echo "== fuzz: ${secs}s per target"
printf '  %-18s %12s %10s %8s %8s %8s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
    corpus=$out/corpus/$t
    artifacts=$out/artifacts/$t/
    rm -rf "$corpus" "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$corpus/"
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
    log=$out/$t.log
    rc=0
    "$out/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "${dict[@]}" "$corpus" >"$log" 2>&1 || rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    [ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(awk '/^stat::number_of_executed_units:/ {v = $2} END {print v}' "$log")
    eps=$(awk '/^stat::average_exec_per_sec:/ {v = $2} END {print v}' "$log")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$done_line")
    result=ok
    if [ "$rc" -ne 0 ]; then
        result="CRASH (exit $rc, log $log)"
        failed=1
    fi
    printf '  %-18s %12s %10s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$result"
    if [ "$rc" -ne 0 ]; then
        grep -E 'ERROR: |SUMMARY: |fuzz property failed|runtime error' "$log" | head -n 5 | sed 's/^/    /'
        for f in "$artifacts"*; do
            [ -e "$f" ] && echo "    crashing input: $f (copy it to fuzz/regressions/$t/ once fixed)"
        done
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED"
    exit 1
fi
echo "fuzz: all targets ok"
