#!/bin/sh
# bench_git.sh: time to commit and push 20 generated files into a repository of 10,000 files with
# the git module, the first time (mirror cloned into an empty data directory) and on the cached
# mirror; over the real smart-HTTP server (lighttpd + git http-backend, Basic auth) and over
# file://.
#
#   tests/bench/bench_git.sh [files_in_repo (10000)] [generated_files (20)]
#
# The benchmark program is linked with the project's libraries, built here (Release) in
# build/bench-git. Everything else lives in a temporary directory that is removed at the end; the
# web server this script starts is stopped by its pid.
set -eu

REPO_FILES=${1:-10000}
GEN_FILES=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-git-XXXXXX")
server_pid=

cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Built against the project's libraries (Release, own build directory).
build="$src/build/bench-git"
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF &&
        cmake --build "$build" -j2 --target dm_io; } >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
fi
# pkg-config's output is a list of flags: word splitting is wanted.
# shellcheck disable=SC2046
cc -std=c11 -O2 -D_GNU_SOURCE -I"$src/include" "$here/bench_git.c" -o "$work/bench_git" \
    "$build/src/io/libdm_io.a" "$build/src/domain/libdm_domain.a" "$build/src/core/libdm_core.a" \
    $(pkg-config --libs libuv libcurl hiredis libgit2 libmicrohttpd libcjson libcmark libpcre2-8 sqlite3 libcrypto) \
    -lpthread -lm

# A repository of REPO_FILES files in 100 directories, one commit on main, made with fast-import.
make_repo() {
    bare=$1
    mkdir -p "$(dirname "$bare")"
    git init -q --bare -b main "$bare"
    git -C "$bare" config http.receivepack true
    python3 - "$REPO_FILES" <<'EOF' | git -C "$bare" fast-import --quiet
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
msg = b"Initial import"
out.write(b"commit refs/heads/main\n")
out.write(b"committer Seed <seed@example.com> 1767225600 +0000\n")
out.write(b"data %d\n%s\n" % (len(msg), msg))
for i in range(n):
    body = (b"// file %d\nexport const value%d = %d;\n" % (i, i, i)) * 4
    out.write(b"M 100644 inline src/d%02d/file%05d.ts\n" % (i % 100, i))
    out.write(b"data %d\n%s\n" % (len(body), body))
out.write(b"\n")
EOF
}

echo "bench_git: $GEN_FILES generated files into a repository of $REPO_FILES files"

# Smart HTTP with Basic auth.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$work/http"
make_repo "$work/http/repos/acme/big.git"
sh "$here/../fakes/git_http_server.sh" run "$work/http" "$port" x-access-token benchtoken \
    >"$work/http/server.log" 2>&1 &
server_pid=$!
i=0
while ! python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "web server did not start" >&2; cat "$work/http/server.log" >&2; exit 1; }
    sleep 0.1
done
echo "  repository: $(du -sh "$work/http/repos/acme/big.git" | cut -f1) packed"
"$work/bench_git" "$work/data-http" "http://127.0.0.1:$port/git/{owner}/{repo}.git" benchtoken \
    acme big "$GEN_FILES" http

# file://
make_repo "$work/file/acme/big.git"
"$work/bench_git" "$work/data-file" "file://$work/file/{owner}/{repo}.git" - acme big \
    "$GEN_FILES" file
