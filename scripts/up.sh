#!/usr/bin/env bash
# Installs what is missing, builds, and starts a local Meridian deployment
# (meridian up). Extra arguments go to `meridian up`, e.g. --regions a,b,c.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target meridian
exec build/meridian up "$@"
