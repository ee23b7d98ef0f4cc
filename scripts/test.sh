#!/usr/bin/env bash
# The test command of the README and of CI: install what is missing, check formatting, build
# with AddressSanitizer + UndefinedBehaviorSanitizer in a fresh build directory, run every test
# through ctest, then (when clang is present) run each libFuzzer target briefly.
# Exits non-zero on any failure.
#   DREAM_TEST_BUILD_DIR   build directory (default build/test; wiped first)
#   DREAM_FUZZ_SECONDS     seconds per fuzz target (default 20; 0 skips fuzzing)
#   DREAM_FUZZ_SEED        libFuzzer seed (default 1: the same mutations on every run, so CI
#                          is repeatable; set another value to explore)
#   DREAM_TEST_LABEL       run only the ctest label given (unit or integration)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

./scripts/bootstrap.sh
./scripts/check-format.sh

build=${DREAM_TEST_BUILD_DIR:-$top/build/test}
rm -rf "$build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DDREAM_SANITIZE=ON -DDREAM_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

label=()
if [ -n "${DREAM_TEST_LABEL:-}" ]; then
    label=(-L "$DREAM_TEST_LABEL")
fi
./scripts/check-layers.sh "$build"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "${label[@]}"

fuzz_seconds=${DREAM_FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" != 0 ] && command -v clang >/dev/null 2>&1 && ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
    fbuild="$build-fuzz"
    rm -rf "$fbuild"
    CC=clang cmake -S "$top" -B "$fbuild" -DCMAKE_BUILD_TYPE=Debug -DDREAM_FUZZ=ON -DDREAM_TESTS=OFF -DDREAM_WERROR=ON >/dev/null
    cmake --build "$fbuild" -j"$(nproc)"
    for f in tests/fuzz/fuzz_*.c; do
        name=$(basename "$f" .c)
        corpus="$fbuild/corpus-$name"
        mkdir -p "$corpus"
        seeds=()
        [ -d "tests/fuzz/seeds/$name" ] && seeds+=("tests/fuzz/seeds/$name")
        [ "$name" = fuzz_spec ] && seeds+=(tests/data/specs)
        echo "fuzz: $name for ${fuzz_seconds}s"
        "$fbuild/$name" -seed="${DREAM_FUZZ_SEED:-1}" -max_total_time="$fuzz_seconds" \
            -max_len=65536 -rss_limit_mb=2048 \
            -artifact_prefix="$fbuild/" "$corpus" "${seeds[@]}" 2>"$fbuild/$name.log" || {
            tail -n 40 "$fbuild/$name.log"
            exit 1
        }
        tail -n 1 "$fbuild/$name.log"
    done
fi
echo "test.sh: all passed"
