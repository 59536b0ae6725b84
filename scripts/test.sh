#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: format check, unit
# tests and integration tests (real meridian processes driven by boto3 and
# the aws cli), then all of them again under AddressSanitizer + UBSan, then the
# unit tests and the multi-threaded integration suites under ThreadSanitizer,
# then every libFuzzer target for 60 seconds, one per core at a time
# (scripts/fuzz.sh).
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

echo "== build with ThreadSanitizer"
cmake -S . -B build-tsan -DMERIDIAN_WERROR=ON -DMERIDIAN_TSAN=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-tsan -j"$jobs"
echo "== tests under ThreadSanitizer"
# Which tests: those where our code runs on several threads at once. The unit
# tests that start threads (test_repl_core: the replication log's watermark
# and waiters, and a database with RocksDB's threads; test_repl_wire;
# test_sigv4's shared verifier; test_log's racing rate limit; test_store's
# concurrent counter merges); the others are
# single-threaded, where TSan cannot find anything. The integration suites whose servers run many threads
# on shared state (HTTP connection threads writing and reading the same keys,
# replication senders and receivers, replicas added and removed while they
# run, the log and tombstone collectors, shutdown while all of them run):
# test_replication, test_partition, test_tombstones, test_replica_changes,
# test_replica_removal, test_retention, test_batch, test_items, test_crash,
# test_peer_port (the peer port's connection pools under floods), test_log_seq
# (the background thread trimming the log while senders stream and DeleteTable races).
# The other suites drive one connection at a time through request parsing and
# validation, which the ASan run covers (and test_hostile's 10000 idle
# connections are 10000 threads, more than TSan can map). All of ctest under
# TSan takes about 4 minutes on an idle 2-core machine; this subset about 1.5
# (plus 10-30 s of build), 3.5-4 when the machine is busy with other work.
# -j3: these tests mostly wait (replication, collection, convergence): under
#   TSan they keep 2 cores about 30% busy.
# halt_on_error: a report ends the process at once with exit code 66, so the
#   unit test or the server's test fails (harness.Server.stop() asserts exit 0;
#   Server.close() also fails on any sanitizer report in a server's log, which
#   covers servers a test kills with SIGKILL).
# detect_deadlocks=0: db_write and db_apply lock one stripe per key, in
#   ascending order (deadlock-free by construction); a large batch holds more
#   than the 64 locks per thread that TSan's deadlock detector can track, and
#   it then aborts the process ("CHECK failed: ... n_all_locks_").
# suppressions: tests/tsan.supp, only Debian's uninstrumented RocksDB and
#   libstdc++ (see the comments there).
# MERIDIAN_SIM_SEEDS=2: test_repl_core's randomized simulation is one thread;
#   its 20 seeds take 2.5 minutes under TSan and run in full in the other runs.
tsan_supp="$PWD/tests/tsan.supp"
(cd build-tsan &&
    TSAN_OPTIONS="halt_on_error=1:exitcode=66:detect_deadlocks=0:suppressions=$tsan_supp" \
    MERIDIAN_SIM_SEEDS=2 \
    ctest --output-on-failure -j3 \
          -R '^(unit\.test_(repl_core|repl_wire|sigv4|log|store)|integration\.test_(replication|partition|tombstones|replica_changes|replica_removal|retention|batch|items|crash|peer_port|log_seq))$')

echo "== fuzzing (libFuzzer, 60 s per target)"
bash scripts/fuzz.sh 60
