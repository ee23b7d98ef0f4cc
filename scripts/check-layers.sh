#!/usr/bin/env bash
# The layer rule (docs/architecture.md): src/core and src/domain are pure. Fails (exit 1) when a
# pure source or header includes an I/O library (libuv, curl, hiredis, libgit2, microhttpd), and,
# given a build directory, when the pure libraries need a symbol from one.
#   scripts/check-layers.sh [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
fail=0
io_include='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](uv\.h|uv/|curl/|hiredis/|git2\.h|git2/|microhttpd\.h)'
if hits=$(grep -EnH "$io_include" src/core src/domain include/dream/core include/dream/domain -r); then
    echo "check-layers: a pure file includes an I/O library:" >&2
    echo "$hits" >&2
    fail=1
fi
# The pure layers may include only their own headers: core only core, domain core and domain.
if hits=$(grep -EnH '#[[:space:]]*include[[:space:]]*"dream/(io|engine|stages|cmd)/' \
    src/core src/domain include/dream/core include/dream/domain -r); then
    echo "check-layers: a pure file includes an I/O layer's header:" >&2
    echo "$hits" >&2
    fail=1
fi
if hits=$(grep -EnH '#[[:space:]]*include[[:space:]]*"dream/domain/' src/core include/dream/core -r); then
    echo "check-layers: core includes a domain header:" >&2
    echo "$hits" >&2
    fail=1
fi
build=${1:-}
if [ -n "$build" ]; then
    for lib in core/libdm_core.a domain/libdm_domain.a; do
        a="$build/src/$lib"
        [ -f "$a" ] || { echo "check-layers: $a not built" >&2; fail=1; continue; }
        if und=$(nm -u "$a" | grep -E '^[[:space:]]*U (uv_|redis|curl_|git_|MHD_)' | sort -u); then
            echo "check-layers: $lib needs I/O symbols:" >&2
            echo "$und" >&2
            fail=1
        fi
    done
fi
[ "$fail" = 0 ] && echo "check-layers: ok"
exit "$fail"
