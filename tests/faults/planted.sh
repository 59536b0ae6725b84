#!/usr/bin/env bash
# tests/faults/planted.sh NAME [run.py arguments...]
#
# Shows that the fault suite catches a known bug: copies the working tree,
# applies tests/faults/planted/NAME.patch to the copy, builds its meridian,
# and runs the fault suite against it. Succeeds (exit 0) only if the run FAILS
# with violations found by the checker; exit 1 if the bug went unnoticed.
#   apply-without-lww     replicated writes applied without last-writer-wins
#   clock-ignores-remote  writes do not order after the versions they replace
#   log-seq-reuse         the log restarts after its last entry on disk, and a peer
#                         ahead of the log is not repaired (issue 11, defect 1)
#   skew-bypass           a write over a runaway version drags the clock along
#                         (issue 11, defect 2)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
name="${1:?usage: tests/faults/planted.sh NAME [run.py arguments]}"
shift
patch="$here/planted/$name.patch"
[ -f "$patch" ] || { echo "no such planted bug: $patch" >&2; exit 2; }
work="$(mktemp -d /tmp/meridian-planted-XXXXXX)"
trap 'rm -rf "$work"' EXIT
(cd "$root" && tar --exclude='./build*' --exclude='./bench/.peers' --exclude='./.git' -cf - .) | tar -xf - -C "$work"
(cd "$work" && patch -p1 --quiet < "$patch")
cmake -S "$work" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$work/build" -j"$(nproc)" --target meridian meridian_diskfault >/dev/null
export MERIDIAN_BIN="$work/build/meridian" MERIDIAN_DISKFAULT_LIB="$work/build/libmeridian_diskfault.so"
set +e
(cd "$here" && python3 run.py "$@")
rc=$?
set -e
if [ "$rc" -eq 1 ]; then
    echo "planted bug '$name': caught (the checker reported violations)"
    exit 0
fi
echo "planted bug '$name': NOT caught (run.py exit $rc)" >&2
exit 1
