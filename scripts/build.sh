#!/usr/bin/env bash
# The release build: configure and build dreamd (and dreamctl) with CMake in one build directory,
# optionally installing the binaries under a prefix. The Dockerfile runs exactly this after
# scripts/bootstrap.sh, so the image is built by the same commands a developer runs.
#   scripts/build.sh [BUILD_DIR [INSTALL_PREFIX]]
#   BUILD_DIR        default build/release (relative paths are taken from the repository top)
#   INSTALL_PREFIX   when given, `cmake --install` puts bin/dreamd (and bin/dreamctl) there
#   DREAM_BUILD_TYPE     CMake build type (default Release)
#   DREAM_BUILD_TESTS    ON to build the tests too (default OFF: a release needs no Criterion)
#   DREAM_BUILD_JOBS     parallel compile jobs (default: nproc)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

build=${1:-build/release}
prefix=${2:-}
case "$build" in
/*) ;;
*) build="$top/$build" ;;
esac

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE="${DREAM_BUILD_TYPE:-Release}" \
    -DDREAM_TESTS="${DREAM_BUILD_TESTS:-OFF}" >/dev/null
cmake --build "$build" -j"${DREAM_BUILD_JOBS:-$(nproc)}"
"$build/dreamd" --version

if [ -n "$prefix" ]; then
    cmake --install "$build" --prefix "$prefix" --strip
fi
echo "build.sh: built $build${prefix:+, installed into $prefix}" >&2
