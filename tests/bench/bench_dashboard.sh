#!/usr/bin/env bash
# Dashboard benchmark: one replica (no-op stages) runs 200 jobs, first with no dashboard client,
# then with ten SSE clients connected; prints the replica's RSS (VmRSS at the end, VmHWM peak)
# for both runs and their ratio, and how many events each client received. Release build (no
# sanitizers) in build/bench; a private redis-server on a free port, removed afterwards.
#   usage: tests/bench/bench_dashboard.sh [jobs=200] [clients=10] [stage_ms=20]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build/bench"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target dreamd >/dev/null

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize yes >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
python3 "$top/tests/bench/bench_dashboard.py" "$build/dreamd" "$port" "$dir" "${1:-200}" \
    "${2:-10}" "${3:-20}"
