#!/usr/bin/env bash
# Fails (exit 1) listing every tracked or new C file that clang-format would change.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bad=()
while IFS= read -r f; do
    [ -f "$f" ] || continue
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' | sort -u)
if [ ${#bad[@]} -gt 0 ]; then
    echo "check-format: not formatted (run: clang-format -i ${bad[*]})" >&2
    exit 1
fi
