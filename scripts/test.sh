#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: format check, unit
# tests and integration tests (real meridian processes driven by boto3 and
# the aws cli), then all of them again under AddressSanitizer + UBSan, then
# every libFuzzer target for 30 seconds (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

jobs=$(nproc)

echo "== clang-format check"
clang-format --dry-run -Werror $(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 'bench/*.h' 'fuzz/*.c' 'fuzz/*.h' 2>/dev/null || find src tests bench fuzz -name '*.[ch]')

echo "== build (warnings are errors)"
cmake -S . -B build -DMERIDIAN_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
(cd build && ctest --output-on-failure -j2)

echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DMERIDIAN_WERROR=ON -DMERIDIAN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under sanitizers"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j2)

echo "== fuzzing (libFuzzer, 30 s per target)"
bash scripts/fuzz.sh 30
