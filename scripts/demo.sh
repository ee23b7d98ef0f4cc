#!/usr/bin/env bash
# The README's first command: sets up (bootstrap, release build), starts a private redis-server,
# a bare git repository seeded from examples/target-repo/ as the target, the fake OpenRouter and
# fake GitHub (unless OPENROUTER_API_KEY / GITHUB_TOKEN are set: then the real services), and two
# dreamd replicas; shows the target's layout, submits every spec in examples/specs/ with
# dreamctl, watches each to the end, prints for each job its planned files (kind, path and, when
# the plan has them, the contract and the detected stack), the pull request URL and the files its
# branch adds or changes, then the body of one pull request (from the fake GitHub; with a real
# GITHUB_TOKEN, from the GitHub API), and stops everything it started.
#
#   DEMO_REPO=owner/name   the GitHub repository to target when GITHUB_TOKEN is set (required then)
#   DEMO_KEEP=1            leave the working directory (logs, repositories) in place
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

./scripts/bootstrap.sh
build="$top/build/demo"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDREAM_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target dreamd dreamctl >/dev/null
dreamd="$build/dreamd"
dreamctl="$build/dreamctl"

work=$(mktemp -d "${TMPDIR:-/tmp}/dreamd-demo-XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        echo "demo: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: nothing listens on port $1" >&2
    return 1
}

# Redis, private to the demo.
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' --appendonly no \
    --logfile "$work/redis.log" >/dev/null &
pids+=($!)
wait_port "$redis_port"
export DREAM_REDIS_URL="redis://127.0.0.1:$redis_port/0"

env_args=()
if [ -n "${GITHUB_TOKEN:-}" ]; then
    repo=${DEMO_REPO:?set DEMO_REPO=owner/name to target a real GitHub repository}
    echo "demo: GITHUB_TOKEN set: pushing to github.com/$repo and opening real pull requests"
else
    # A local bare repository seeded from examples/target-repo/, and the fake GitHub API.
    repo=acme/app
    mkdir -p "$work/remotes/acme"
    git init -q --bare "$work/remotes/acme/app.git"
    git -C "$work/remotes/acme/app.git" symbolic-ref HEAD refs/heads/main
    seed="$work/seed"
    cp -r "$top/examples/target-repo" "$seed"
    git -C "$seed" init -q -b main
    git -C "$seed" add -A
    git -C "$seed" -c user.name=demo -c user.email=demo@localhost commit -qm "Acme app"
    git -C "$seed" push -q "$work/remotes/acme/app.git" main
    echo "demo: the target repository (acme/app, branch main):"
    git --git-dir="$work/remotes/acme/app.git" ls-tree -r --name-only main | sed 's/^/    /'
    gh_port=$(free_port)
    export GITHUB_TOKEN="ghp_demo_fake_token"
    python3 "$top/tests/fakes/fake_github.py" --port "$gh_port" --token "$GITHUB_TOKEN" \
        --git-root "$work/remotes" --quiet >"$work/fake_github.log" 2>&1 &
    pids+=($!)
    wait_port "$gh_port"
    export DREAM_GITHUB_API_URL="http://127.0.0.1:$gh_port"
    export DREAM_GIT_URL="file://$work/remotes/{owner}/{repo}.git"
    export DREAM_FORGE_WRITE_INTERVAL_MS=0
    echo "demo: target is a local bare repository $work/remotes/acme/app.git and a fake GitHub"
fi

if [ -n "${OPENROUTER_API_KEY:-}" ]; then
    echo "demo: OPENROUTER_API_KEY set: generating with the real OpenRouter"
else
    or_port=$(free_port)
    python3 "$top/tests/fakes/fake_openrouter.py" --port "$or_port" --latency-ms 300 --quiet \
        >"$work/fake_openrouter.log" 2>&1 &
    pids+=($!)
    wait_port "$or_port"
    export OPENROUTER_API_KEY="sk-or-v1-demo-fake-key"
    export DREAM_LLM_URL="http://127.0.0.1:$or_port/api/v1"
    echo "demo: generating with the fake OpenRouter (set OPENROUTER_API_KEY for the real one)"
fi

export DREAM_ESBUILD="$top/.tools/node_modules/.bin/esbuild"
for i in 1 2; do
    mkdir -p "$work/data$i"
    DREAM_DATA_DIR="$work/data$i" DREAM_CONSUMER="demo-$i" DREAM_ADMIN_ADDR="127.0.0.1:0" \
        "$dreamd" >"$work/dreamd-$i.log" 2>&1 &
    pids+=($!)
done
echo "demo: two dreamd replicas running (logs in $work)"

ids=()
for spec in "$top"/examples/specs/*.md; do
    id=$("$dreamctl" submit "$spec" --repo "$repo" --max-tokens 200000 --max-dollars 5 \
        --trust builder)
    echo "demo: submitted $(basename "$spec") as job $id"
    ids+=("$id")
done

status=0
for id in "${ids[@]}"; do
    echo
    echo "== job $id"
    rc=0
    "$dreamctl" watch "$id" || rc=$?
    case $rc in
    0) ;;
    3) echo "demo: job $id is parked for approval: dreamctl approve $id (or reject $id)" ;;
    *) status=1 ;;
    esac
done

# The plan of a job as the job hash holds it (dreamctl status --json): one line per file, then
# the stack when the plan records one.
print_plan() {
    python3 -c '
import json, sys
job = json.load(sys.stdin)
plan = job.get("plan")
if isinstance(plan, str):
    try:
        plan = json.loads(plan)
    except ValueError:
        plan = None
if not isinstance(plan, dict):
    print("  (no plan recorded)")
    sys.exit(0)
print("  planned files:")
for it in plan.get("items") or []:
    line = "    %-9s %s" % (it.get("kind", "?"), it.get("path", "?"))
    usage = it.get("usage") or it.get("exports")
    if isinstance(usage, list):
        usage = ", ".join(str(u) for u in usage)
    if usage:
        line += "  (" + str(usage) + ")"
    print(line)
if plan.get("stack"):
    print("  stack: " + str(plan["stack"]))
'
}

# The body of the newest pull request whose head is $1: from the fake GitHub, or from the real
# API when GITHUB_TOKEN targets github.com.
pr_body() {
    local json
    if [ -n "${gh_port:-}" ]; then
        json=$(curl -fsS "http://127.0.0.1:$gh_port/_fake/pulls") || return 1
    else
        json=$(curl -fsS -H "Authorization: Bearer $GITHUB_TOKEN" \
            -H "Accept: application/vnd.github+json" \
            "${DREAM_GITHUB_API_URL:-https://api.github.com}/repos/$repo/pulls?state=all&per_page=50") \
            || return 1
    fi
    printf '%s' "$json" | python3 -c '
import json, sys
head = sys.argv[1]
pulls = [p for p in json.load(sys.stdin) if (p.get("head") or {}).get("ref") == head]
if not pulls:
    sys.exit(1)
print(max(pulls, key=lambda p: p.get("number", 0)).get("body") or "")
' "$1"
}

echo
shown=""
for id in "${ids[@]}"; do
    st=$("$dreamctl" status "$id" --json)
    pr=$(printf '%s' "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("pr_url",""))')
    branch=$(printf '%s' "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("branch",""))')
    echo "job $id: pull request ${pr:-none}"
    printf '%s' "$st" | print_plan
    if [ -n "$branch" ] && [ -d "$work/remotes" ] &&
        git --git-dir="$work/remotes/acme/app.git" rev-parse -q --verify "refs/heads/$branch" >/dev/null; then
        echo "  files $branch adds (A) or changes (M):"
        git --git-dir="$work/remotes/acme/app.git" diff --name-status main "$branch" | sed 's/^/    /'
    fi
    if [ -z "$shown" ] && [ -n "$pr" ] && [ -n "$branch" ]; then
        shown="$id $branch"
    fi
done

if [ -n "$shown" ]; then
    set -- $shown
    echo
    echo "== pull request body of job $1 (branch $2)"
    pr_body "$2" || echo "demo: could not read the pull request of $2"
fi
exit $status
