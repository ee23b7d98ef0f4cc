#!/usr/bin/env bash
# Installs everything dreamd builds, tests and runs with: Debian packages (apt-get, only the
# missing ones, one `apt-get update` at most) and the npm packages esbuild, typescript and
# playwright-core into .tools/ (git-ignored).
# Idempotent: a second run only checks and takes seconds. Works as root or through sudo.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

packages=(
    build-essential cmake pkg-config git ca-certificates
    libuv1-dev libhiredis-dev libcurl4-openssl-dev libcjson-dev libgit2-dev libcmark-dev
    libpcre2-dev libsqlite3-dev libssl-dev libmicrohttpd-dev libcriterion-dev
    redis-server redis-tools clang clang-format
    lighttpd apache2-utils prometheus python3 python3-yaml curl procps wrk docker-compose
    chromium
)
# Node.js may come from elsewhere (NodeSource ships npm inside nodejs); ask apt only when absent.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    echo "bootstrap: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The packaged redis-server may start a system instance; tests start their own on free ports.

tools="$top/.tools"
if [ ! -x "$tools/node_modules/.bin/esbuild" ]; then
    echo "bootstrap: installing esbuild into $tools" >&2
    mkdir -p "$tools"
    (cd "$tools" && { [ -f package.json ] || echo '{"name":"dreamd-tools","private":true}' > package.json; } \
        && npm install --no-audit --no-fund --silent esbuild@0.24.2 >/dev/null)
fi
"$tools/node_modules/.bin/esbuild" --version >/dev/null

# The TypeScript compiler for the whole-change type-check (src/io/typecheck.c). typescript 7.x
# ships a native tsc (Go) in a per-platform package (@typescript/typescript-<os>-<arch>); the
# `tsc` launcher in .bin needs node, the native binary does not. Its own folder keeps it apart
# from esbuild's.
if [ ! -f "$tools/typescript/node_modules/typescript/package.json" ]; then
    echo "bootstrap: installing typescript into $tools/typescript" >&2
    mkdir -p "$tools/typescript"
    (cd "$tools/typescript" \
        && { [ -f package.json ] || echo '{"name":"dreamd-typescript","private":true}' > package.json; } \
        && npm install --no-audit --no-fund --silent typescript@7.0.2 >/dev/null)
fi
"$tools/typescript/node_modules/.bin/tsc" --version >/dev/null

# The dashboard's browser test (tests/browser/dashboard.test.mjs): playwright-core drives
# Debian's chromium (/usr/bin/chromium, from the packages above); playwright-core never downloads
# a browser itself.
if [ ! -f "$tools/playwright/node_modules/playwright-core/package.json" ]; then
    echo "bootstrap: installing playwright-core into $tools/playwright" >&2
    mkdir -p "$tools/playwright"
    (cd "$tools/playwright" \
        && { [ -f package.json ] || echo '{"name":"dreamd-playwright","private":true}' > package.json; } \
        && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent playwright-core@1.57.0 >/dev/null)
fi

# Schemas for scripts/check-deploy.sh (Kubernetes and KEDA objects).
if [ ! -d "$tools/deploy-check/node_modules/kubernetes-models" ]; then
    echo "bootstrap: installing the Kubernetes schema packages into $tools/deploy-check" >&2
    mkdir -p "$tools/deploy-check"
    (cd "$tools/deploy-check" \
        && { [ -f package.json ] || echo '{"name":"dreamd-deploy-check","private":true}' > package.json; } \
        && npm install --no-audit --no-fund --silent kubernetes-models@4.5.1 @kubernetes-models/keda@2.0.0 >/dev/null)
fi
echo "bootstrap: ok" >&2
