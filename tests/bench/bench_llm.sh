#!/usr/bin/env bash
# bench_llm.sh: the LLM client against the fake OpenRouter server with a set latency.
#
# Builds the libraries (Release, own build dir) and tests/bench/bench_llm.c (cc + pkg-config),
# starts tests/fakes/fake_openrouter.py pinned to one core, and prints:
#   - the client's requests/s, its peak in flight and the server's, RSS per in-flight call and
#     CPU per 1000 calls (bench_llm, pinned to another core),
#   - the same fake's requests/s under wrk (same latency, same concurrency, same body, fake on
#     one core), and the ratio client/wrk (1.0 = the client is as fast as a C load generator;
#     the fake on one core is the ceiling for both).
#
# Usage: tests/bench/bench_llm.sh [requests=2000] [concurrency=64] [latency_ms=50] [stream=1]
# Needs: cmake, cc, pkg-config, python3, wrk, taskset (scripts/bootstrap.sh installs them).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
requests=${1:-2000}
concurrency=${2:-64}
latency=${3:-50}
stream=${4:-1}
build="$top/build/bench"
work=$(mktemp -d)
fake_pid=""

cleanup() {
    if [ -n "$fake_pid" ]; then
        kill "$fake_pid" 2>/dev/null || true
        wait "$fake_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

for tool in cmake cc pkg-config python3 wrk taskset; do
    command -v "$tool" >/dev/null || { echo "bench_llm.sh: $tool is missing (scripts/bootstrap.sh)" >&2; exit 2; }
done

echo "bench_llm: building (Release) in $build" >&2
if ! { cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF &&
        cmake --build "$build" -j2 --target dm_io; } >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
fi
# shellcheck disable=SC2046
cc -O2 -std=c11 -D_GNU_SOURCE -I"$top/include" "$top/tests/bench/bench_llm.c" -o "$work/bench_llm" \
    "$build/src/io/libdm_io.a" "$build/src/domain/libdm_domain.a" "$build/src/core/libdm_core.a" \
    $(pkg-config --libs libuv libcurl hiredis libgit2 libmicrohttpd libcjson libcmark libpcre2-8 sqlite3 libcrypto) \
    -lpthread -lm

ncpu=$(nproc)
fake_cpu=0
client_cpu=$(( ncpu > 1 ? 1 : 0 ))

start_fake() {
    : >"$work/fake.out"
    taskset -c "$fake_cpu" python3 "$top/tests/fakes/fake_openrouter.py" --port 0 --quiet \
        --latency-ms "$latency" >"$work/fake.out" 2>"$work/fake.err" &
    fake_pid=$!
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^PORT=//p' "$work/fake.out")
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    echo "bench_llm.sh: the fake did not start" >&2
    cat "$work/fake.err" >&2
    exit 1
}

stop_fake() {
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
    fake_pid=""
}

echo "bench_llm: $requests calls, $concurrency in flight, latency $latency ms, stream $stream" >&2
start_fake
taskset -c "$client_cpu" "$work/bench_llm" --url "http://127.0.0.1:$port/api/v1" \
    --requests "$requests" --concurrency "$concurrency" --stream "$stream" | tee "$work/client.txt"
stop_fake

# The same request body bench_llm sends (one path; the fake's answer size does not depend on it).
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"anthropic/claude-sonnet-4.5","messages":[{"role":"system","content":"You write one file."},{"role":"user","content":"Task: bench\\\\nPath: src/routes/bench-1.ts\\\\n"}],"max_tokens":4096,"temperature":0.3,"stream":$( [ "$stream" = 1 ] && echo true || echo false ),"usage":{"include":true}}'
LUA
start_fake
wrk_secs=$(( requests / (concurrency * 1000 / (latency > 0 ? latency : 1)) + 3 ))
[ "$wrk_secs" -gt 15 ] && wrk_secs=15
taskset -c "$client_cpu" wrk -t1 -c"$concurrency" -d"${wrk_secs}s" -s "$work/post.lua" \
    "http://127.0.0.1:$port/api/v1/chat/completions" >"$work/wrk.txt" 2>&1 || true
stop_fake
wrk_rps=$(sed -n 's/^Requests\/sec: *//p' "$work/wrk.txt")
client_rps=$(sed -n 's/^requests_per_s=//p' "$work/client.txt")
if [ -z "$wrk_rps" ]; then
    echo "bench_llm.sh: wrk gave no figure:" >&2
    cat "$work/wrk.txt" >&2
    exit 1
fi
grep -E "Non-2xx|Socket errors" "$work/wrk.txt" >&2 || true
echo "wrk_requests_per_s=$wrk_rps"
python3 -c "print('client_to_wrk_ratio=%.2f' % ($client_rps / $wrk_rps))"
