#!/usr/bin/env bash
# Engine benchmark: jobs/s through one replica with no-op stages (--stages=test, 0 ms), and
# enqueue->`started` latency p50/p99 with jobs arriving at a steady rate. Release build (no
# sanitizers) in build/bench; a private redis-server on a free port, removed afterwards.
#   usage: tests/bench/bench_engine.sh [jobs=3000] [latency_jobs=500] [rate_per_s=100]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build/bench"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target dreamd >/dev/null

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize yes >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
python3 "$top/tests/bench/bench_engine.py" "$build/dreamd" "$port" "${1:-3000}" "${2:-500}" "${3:-100}"
