#!/bin/sh
# bench_check.sh: the added wall time and CPU per job of reading the base (LOAD_REPO) and of the
# whole-change check (the base written out, the base's own type-check, the change's type-check,
# the migration replay) on a repository of 10,000 TypeScript files plus a migration, cold and
# with the per-commit cache warm.
#
#   tests/bench/bench_check.sh [files_in_repo (10000)]
#
# The benchmark program is linked with the project's libraries, built here (Release) in
# build/bench-check; tsc comes from .tools/typescript (scripts/bootstrap.sh). Everything else
# lives in a temporary directory that is removed at the end.
set -eu

REPO_FILES=${1:-10000}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-check-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# Built against the project's libraries (Release, own build directory).
build="$src/build/bench-check"
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF &&
        cmake --build "$build" -j2 --target dm_io; } >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
fi
# pkg-config's output is a list of flags: word splitting is wanted.
# shellcheck disable=SC2046
cc -std=c11 -O2 -D_GNU_SOURCE -I"$src/include" "$here/bench_check.c" -o "$work/bench_check" \
    "$build/src/io/libdm_io.a" "$build/src/domain/libdm_domain.a" "$build/src/core/libdm_core.a" \
    $(pkg-config --libs libuv libcurl hiredis libgit2 libmicrohttpd libcjson libcmark libpcre2-8 sqlite3 libcrypto) \
    -lpthread -lm

mkdir -p "$work/repos/acme"
git init -q --bare -b main "$work/repos/acme/big.git"
python3 - "$REPO_FILES" <<'PY' | git -C "$work/repos/acme/big.git" fast-import --quiet
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
msg = b"Initial import"
out.write(b"commit refs/heads/main\n")
out.write(b"committer Seed <seed@example.com> 1767225600 +0000\n")
out.write(b"data %d\n%s\n" % (len(msg), msg))
def put(path, body):
    out.write(b"M 100644 inline %s\n" % path)
    out.write(b"data %d\n%s\n" % (len(body), body))
put(b"tsconfig.json", b'{"compilerOptions": {"target": "ES2022", "module": "ESNext", '
    b'"moduleResolution": "Bundler", "strict": true}}\n')
put(b"migrations/0001_init.sql", b"CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
for i in range(n):
    dep = b"import { value%d } from '../d%02d/file%05d';\n" % (i - 1, (i - 1) % 100, i - 1) if i else b""
    body = dep + (b"export const value%d: number = %d;\n" % (i, i)) + b"// padding\n" * 4
    put(b"src/d%02d/file%05d.ts" % (i % 100, i), body)
out.write(b"\n")
PY
echo "bench_check: the whole-change check on a repository of $REPO_FILES TypeScript files"
DREAM_SOURCE_DIR="$src" "$work/bench_check" "$work/data" "file://$work/repos/{owner}/{repo}.git" acme big
