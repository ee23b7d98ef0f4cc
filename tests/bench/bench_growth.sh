#!/usr/bin/env bash
# Git growth benchmark (issue 15): N jobs through the real pipeline of one dreamd replica (fake
# LLM at 0 ms, fake GitHub, no esbuild or tsc) on one repository whose remote is pre-seeded with
# 0, 1,000 and 10,000 branches, over file:// and over the smart-HTTP server of the tests. Prints
# CPU ms per job (dreamd + children), peak RSS and the mirror's object and ref counts per point.
# Release build (no sanitizers) in build/bench; a private redis-server on a free port; every
# process it starts is stopped by its pid and the temporary directory removed (BENCH_KEEP=1
# keeps it).
#   usage: tests/bench/bench_growth.sh [jobs=100] [seeds=0,1000,10000] [remotes=file,http]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="$top/build/bench"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target dreamd >/dev/null

dir=$(mktemp -d)
# A copy outside the source tree, so dreamd finds no tsc next to it (PATH has none either).
cp "$build/dreamd" "$dir/dreamd"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize yes >/dev/null
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
python3 "$top/tests/bench/bench_growth.py" "$dir/dreamd" "$top" "$dir" "$port" "${1:-100}" \
    "${2:-0,1000,10000}" "${3:-file,http}"
