#!/usr/bin/env bash
# Job index benchmark: 100,000 finished jobs in Redis (hashes and the index sets the Lua
# scripts keep), then the time of `dreamctl jobs` with filters (median of 5 runs each), and a
# check that no command SCANs. Release build (no sanitizers) in build/bench; a private
# redis-server on a free port, removed afterwards.
#   usage: tests/bench/bench_jobs_index.sh [jobs=100000]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build/bench"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target dreamctl >/dev/null

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize yes >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
python3 "$top/tests/bench/bench_jobs_index.py" "$build/dreamctl" "$port" "${1:-100000}"
