#!/usr/bin/env bash
# Validates the deployment artifacts without a container engine or a cluster: Dockerfile,
# deploy/compose.yaml (+ compose.fakes.yaml), deploy/k8s/, deploy/systemd/. Exits non-zero on any
# problem, printing one FAIL line per problem.
#
# Always (python3 + PyYAML, from scripts/bootstrap.sh):
#   - every file parses; every environment variable set anywhere is a dreamd setting (or the
#     <ENV>_FILE of a secret one) and every value passes the setting's type and range; the list
#     comes from `dreamd --help` when a built dreamd is given, else from src/core/config.c's table
#     (both, cross-checked, when a binary is given)
#   - the drain time agrees: compose stop_grace_period, Kubernetes terminationGracePeriodSeconds
#     and systemd TimeoutStopSec each exceed the effective DREAM_SHUTDOWN_GRACE_MS by >= 5 s
#   - the Dockerfile builds with scripts/bootstrap.sh and scripts/build.sh on debian:bookworm and
#     runs on debian:bookworm-slim as a non-root user, port 9464, SIGTERM, entrypoint dreamd
#   - the manifests' structure: apiVersion/kind/metadata.name, the required kinds, selectors
#     that match the pod labels, probes /healthz and /readyz on 9464, non-root and read-only root
#     with the data dir on an emptyDir, resources, *_FILE paths on mounted Secret items, the
#     KEDA trigger (redis-streams, stream <prefix>:jobs, group workers, lagCount) and its auth
#   - compose: Redis with appendonly, three dreamd replicas, secrets, the fakes behind the
#     profile `fakes` and the override pointing dreamd at them (hosts and ports agree)
#   - systemd: the unit's required keys and hardening, credentials behind every *_FILE
# When the tools are there (otherwise reported as skipped):
#   docker-compose / docker compose `config`, `kubectl kustomize`, `systemd-analyze verify` and
#   `security --offline`, the runtime image's packages against the binary's NEEDED libraries
#   (dpkg), and a JSON-schema check of every Kubernetes object, KEDA's CRDs included, with the npm
#   packages kubernetes-models and @kubernetes-models/keda (`scripts/check-deploy.sh
#   --install-tools` installs them into .tools/deploy-check).
#
# Environment:
#   DREAM_CHECK_ROOT   tree to check (default: this repository); it needs Dockerfile, deploy/,
#                      scripts/bootstrap.sh, scripts/build.sh, src/core/config.c, tests/fakes/
#   DREAM_DREAMD       a built dreamd for --help and its libraries (default
#                      $DREAM_BINARY_DIR/dreamd when that exists)
#   DREAM_K8S_MODELS   node_modules holding kubernetes-models (default .tools/deploy-check/...)
#   DREAM_CHECK_TOOLS  0 skips every external tool above (only this script's own checks; fast)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
root=${DREAM_CHECK_ROOT:-$top}
models=${DREAM_K8S_MODELS:-$top/.tools/deploy-check/node_modules}

if [ "${1:-}" = "--install-tools" ]; then
    mkdir -p "$top/.tools/deploy-check"
    (cd "$top/.tools/deploy-check" \
        && { [ -f package.json ] || echo '{"name":"dreamd-deploy-check","private":true}' > package.json; } \
        && npm install --no-audit --no-fund --silent kubernetes-models@4.5.1 @kubernetes-models/keda@2.0.0)
    shift
fi

dreamd=${DREAM_DREAMD:-}
if [ -z "$dreamd" ] && [ -n "${DREAM_BINARY_DIR:-}" ] && [ -x "$DREAM_BINARY_DIR/dreamd" ]; then
    dreamd=$DREAM_BINARY_DIR/dreamd
fi

py=""
for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import yaml' 2>/dev/null; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "check-deploy: FAIL: no python3 with PyYAML (Debian: python3-yaml; run scripts/bootstrap.sh)" >&2
    exit 1
fi

export CHECK_ROOT="$root" CHECK_DREAMD="$dreamd" CHECK_K8S_MODELS="$models"
export CHECK_TOOLS="${DREAM_CHECK_TOOLS:-1}"
exec "$py" - <<'PY'
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

import yaml

ROOT = os.path.abspath(os.environ["CHECK_ROOT"])
DREAMD = os.environ.get("CHECK_DREAMD") or ""
MODELS = os.environ.get("CHECK_K8S_MODELS") or ""
TOOLS = os.environ.get("CHECK_TOOLS", "1") != "0"
MARGIN_S = 5  # least time between the end of dreamd's drain and the SIGKILL
ADMIN_PORT = 9464
GROUP = "workers"

failures = []
passed = 0
ENV_SETS = []  # (where, environment) of every deployment, for dreamd --print-config


def ok(msg):
    global passed
    passed += 1
    print("ok: " + msg)


def fail(msg):
    msg = " | ".join(l for l in msg.splitlines() if l.strip())
    failures.append(msg)
    print("FAIL: " + msg)


def skip(msg):
    print("skip: " + msg)


def check(cond, msg, why=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (": " + why if why else ""))
    return cond


def rel(path):
    return os.path.relpath(path, ROOT)


def load_yaml_docs(path):
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        ok("%s parses as YAML (%d document%s)" % (rel(path), len(docs), "" if len(docs) == 1 else "s"))
        return docs
    except (OSError, yaml.YAMLError) as e:
        fail("%s: %s" % (rel(path), e))
        return None


def tool(name):
    """The path of an external tool, or None when absent or DREAM_CHECK_TOOLS=0."""
    return shutil.which(name) if TOOLS else None


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


# ---- dreamd's settings ----------------------------------------------------------------------

def settings_from_config_c(path):
    src = open(path).read()
    m = re.search(r"static const struct setting settings\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    if not m:
        return {}
    out = {}
    entry = re.compile(r'\{\s*"([a-z0-9-]+)",\s*"([A-Z][A-Z0-9_]*)",\s*K_(STR|INT|BOOL),\s*S\(\w+\),'
                       r'\s*(NULL|"(?:[^"\\]|\\.)*"),\s*(-?\d+)(?:LL)?\s*,\s*(-?\d+)(?:LL)?\s*,\s*([01])\s*,')
    for e in entry.finditer(m.group(1)):
        flag, env, kind, d, lo, hi, secret = e.groups()
        out[env] = {"flag": flag, "kind": kind, "default": None if d == "NULL" else d[1:-1],
                    "min": int(lo), "max": int(hi), "secret": secret == "1"}
    return out


def settings_from_help(text):
    out = {}
    pat = re.compile(r"^\s+--([a-z0-9-]+)=<(\w+)>\n\s+env (\w+)(?: or (\w+)_FILE)?; default (.*?)"
                     r"(; secret, never printed)?$", re.M)
    for m in pat.finditer(text):
        flag, arg, env, fenv, d, secret = m.groups()
        kind = {"n": "INT", "bool": "BOOL"}.get(arg, "STR")
        if d == "(unset)" or d == "<hostname>-<pid>":
            d = None
        elif d == '"" (empty)':
            d = ""
        out[env] = {"flag": flag, "kind": kind, "default": d, "secret": bool(secret or fenv)}
    return out


config_c = os.path.join(ROOT, "src", "core", "config.c")
SETTINGS = settings_from_config_c(config_c) if os.path.exists(config_c) else {}
check(len(SETTINGS) >= 20 and "DREAM_SHUTDOWN_GRACE_MS" in SETTINGS,
      "src/core/config.c's settings table read (%d settings)" % len(SETTINGS))
if DREAMD:
    r = run([DREAMD, "--help"])
    helped = settings_from_help(r.stdout) if r.returncode == 0 else {}
    if check(r.returncode == 0 and helped, "%s --help lists %d settings" % (DREAMD, len(helped)),
             r.stdout[-500:]):
        same = set(helped) == set(SETTINGS) and all(
            helped[k]["secret"] == SETTINGS[k]["secret"] and helped[k]["kind"] == SETTINGS[k]["kind"]
            for k in helped)
        check(same, "dreamd --help and src/core/config.c's table agree",
              "only in --help: %s; only in config.c: %s" % (sorted(set(helped) - set(SETTINGS)),
                                                            sorted(set(SETTINGS) - set(helped))))
        for k, v in helped.items():
            SETTINGS.setdefault(k, {"min": None, "max": None, **v})
else:
    skip("no built dreamd given (DREAM_DREAMD or DREAM_BINARY_DIR): settings from src/core/config.c only")

if not SETTINGS:
    print("check-deploy: cannot learn dreamd's settings; stopping")
    sys.exit(1)


def default_of(name):
    return SETTINGS[name]["default"]


def value_problem(name, value):
    s = SETTINGS[name]
    value = str(value)
    if s["kind"] == "INT":
        if not re.fullmatch(r"-?\d+", value):
            return "%s=%r is not an integer" % (name, value)
        if s.get("min") is not None and not (s["min"] <= int(value) <= s["max"]):
            return "%s=%s is outside %d..%d" % (name, value, s["min"], s["max"])
    if s["kind"] == "BOOL" and value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        return "%s=%r is not a boolean" % (name, value)
    return None


def check_env(where, env, quiet=False):
    """Checks names and values of an environment mapping; returns the number of problems."""
    bad = 0
    for name, value in env.items():
        if name in SETTINGS:
            p = value_problem(name, value) if value is not None else None
            if p:
                fail("%s: %s" % (where, p))
                bad += 1
        elif name.endswith("_FILE") and name[:-5] in SETTINGS:
            if not SETTINGS[name[:-5]]["secret"]:
                fail("%s: %s: %s is not a secret setting, dreamd ignores %s" % (where, name, name[:-5], name))
                bad += 1
        else:
            fail("%s: %s is not a dreamd setting (see dreamd --help)" % (where, name))
            bad += 1
    if not bad and not quiet:
        ok("%s: %d variables, all dreamd settings with valid values" % (where, len(env)))
    return bad


def effective(env, name):
    v = env.get(name)
    return default_of(name) if v is None else str(v)


def grace_ms(env):
    return int(effective(env, "DREAM_SHUTDOWN_GRACE_MS"))


def check_grace(where, what, seconds, env):
    g = grace_ms(env)
    need = g / 1000.0 + MARGIN_S
    check(seconds is not None and seconds >= need,
          "%s: %s (%ss) exceeds DREAM_SHUTDOWN_GRACE_MS (%d ms) by >= %d s" % (where, what, seconds, g, MARGIN_S),
          "raise it to at least %gs or lower the grace" % need)


def admin_addr_problem(env):
    addr = effective(env, "DREAM_ADMIN_ADDR")
    if not addr:
        return "DREAM_ADMIN_ADDR is empty: no /healthz, /readyz, /metrics"
    host, _, port = addr.rpartition(":")
    if port != str(ADMIN_PORT):
        return "DREAM_ADMIN_ADDR %s is not on port %d" % (addr, ADMIN_PORT)
    if host in ("127.0.0.1", "localhost", "[::1]", "::1"):
        return "DREAM_ADMIN_ADDR %s is loopback: unreachable from outside the container" % addr
    return None


# ---- Dockerfile -----------------------------------------------------------------------------

def dockerfile_instructions(path):
    lines, cur = [], ""
    for raw in open(path):
        s = raw.rstrip("\n")
        if not cur and (s.strip().startswith("#") or not s.strip()):
            continue
        if cur and s.strip().startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        lines.append(cur.strip())
        cur = ""
    out = []
    stage = -1
    for l in lines:
        instr, _, args = l.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, args.strip()))
    return out


def parse_env_instr(args):
    env = {}
    toks = shlex.split(args)
    if toks and "=" not in toks[0]:
        return {toks[0]: " ".join(toks[1:])}
    for t in toks:
        k, _, v = t.partition("=")
        env[k] = v
    return env


DOCKER_ENV = {}
dockerfile = os.path.join(ROOT, "Dockerfile")
if check(os.path.exists(dockerfile), "Dockerfile exists"):
    ins = dockerfile_instructions(dockerfile)
    froms = [(st, a) for st, i, a in ins if i == "FROM"]
    final = froms[-1][0] if froms else -1
    stage_names = {}
    for st, a in froms:
        t = a.split()
        if len(t) >= 3 and t[1].lower() == "as":
            stage_names[st] = t[2]
    check(len(froms) >= 2, "Dockerfile is multi-stage (%d stages)" % len(froms))
    check(froms and all(a.split()[0] == "debian:bookworm" for st, a in froms[:-1]),
          "Dockerfile: build stage(s) FROM debian:bookworm", str([a for _, a in froms[:-1]]))
    check(froms and froms[-1][1].split()[0] == "debian:bookworm-slim",
          "Dockerfile: runtime stage FROM debian:bookworm-slim", froms[-1][1] if froms else "")
    runs = [(st, a) for st, i, a in ins if i == "RUN"]
    for script in ("scripts/bootstrap.sh", "scripts/build.sh"):
        pat = re.compile(r"(^|[\s;&|(])(\./)?" + re.escape(script) + r"(\s|$)")
        hits = [st for st, a in runs if pat.search(a) and st != final]
        check(hits, "Dockerfile: a build-stage RUN calls %s" % script)
        path = os.path.join(ROOT, script)
        check(os.path.isfile(path) and os.access(path, os.X_OK), "%s exists and is executable" % script)
    bs = os.path.join(ROOT, "scripts", "build.sh")
    if os.path.exists(bs):
        txt = open(bs).read()
        check(re.search(r"cmake -S .* -B ", txt) and "CMAKE_BUILD_TYPE" in txt and "cmake --build" in txt,
              "scripts/build.sh configures and builds with cmake")
    fin = [(i, a) for st, i, a in ins if st == final]
    users = [a for i, a in fin if i == "USER"]
    check(users and users[-1].split(":")[0] not in ("root", "0"), "Dockerfile: runtime USER is not root",
          str(users))
    exposed = " ".join(a for i, a in fin if i == "EXPOSE").split()
    check(str(ADMIN_PORT) in [p.split("/")[0] for p in exposed], "Dockerfile: EXPOSE %d" % ADMIN_PORT)
    check(any(i == "STOPSIGNAL" and a in ("SIGTERM", "15") for i, a in fin), "Dockerfile: STOPSIGNAL SIGTERM")
    ep = [a for i, a in fin if i == "ENTRYPOINT"]
    try:
        ep0 = json.loads(ep[-1])[0] if ep else ""
    except ValueError:
        ep0 = ep[-1].split()[0]
    check(os.path.basename(ep0) == "dreamd", "Dockerfile: ENTRYPOINT is dreamd", str(ep))
    hc = [a for i, a in fin if i == "HEALTHCHECK"]
    if hc:
        check("/healthz" in hc[-1] and str(ADMIN_PORT) in hc[-1], "Dockerfile: HEALTHCHECK probes /healthz")
    for i, a in fin:
        if i == "ENV":
            DOCKER_ENV.update(parse_env_instr(a))
    check_env("Dockerfile ENV", DOCKER_ENV)
    p = admin_addr_problem(DOCKER_ENV)
    check(p is None, "Dockerfile: admin endpoint reachable on port %d" % ADMIN_PORT, p or "")
    pkgs = set()
    for i, a in fin:
        if i == "RUN":
            for m in re.finditer(r"apt-get\s+install\s+([^;&|]*)", a):
                pkgs.update(t for t in m.group(1).split() if not t.startswith("-"))
    check(pkgs, "Dockerfile: runtime packages listed (%d)" % len(pkgs))
    copies = " ".join(a for i, a in fin if i == "COPY")
    check("--from=" in copies and ("dreamd" in copies or "/bin" in copies),
          "Dockerfile: runtime stage copies the built binaries from the build stage")
    # The binary's direct libraries must come from packages the runtime stage installs.
    base_pkgs = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5", "libbz2-1.0"}
    if DREAMD and tool("readelf") and tool("dpkg") and tool("ldconfig"):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", DREAMD]).stdout)
        needed = [so for so in needed if not re.match(r"lib(asan|ubsan|lsan|tsan)\.", so)]  # sanitizer builds
        cache = {}
        for line in run(["ldconfig", "-p"]).stdout.splitlines():
            m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
            if m:
                cache.setdefault(m.group(1), m.group(3))
        variants = {}
        for so in needed:
            path = cache.get(so)
            for cand in ([path, os.path.realpath(path)] if path else []):
                alt = cand[4:] if cand.startswith("/usr/") else "/usr" + cand
                variants.setdefault(so, []).extend([cand, alt])
        owners = {}
        allpaths = sorted({p for v in variants.values() for p in v})
        for line in run(["dpkg", "-S"] + allpaths).stdout.splitlines():
            m = re.match(r"([^:,\s]+)(?::[a-z0-9]+)?: (\S+)$", line)
            if m:
                owners[m.group(2)] = m.group(1)
        missing = []
        for so in needed:
            owner = next((owners[p] for p in variants.get(so, []) if p in owners), None)
            if owner is None:
                missing.append("%s (no package found)" % so)
            elif owner not in pkgs and owner not in base_pkgs:
                missing.append("%s from %s" % (so, owner))
        check(not missing, "Dockerfile: runtime packages cover every library dreamd links (%d)" % len(needed),
              "; ".join(missing))
    else:
        skip("runtime libraries vs packages: needs a built dreamd, readelf, dpkg and ldconfig "
             "(and not DREAM_CHECK_TOOLS=0)")

# ---- compose --------------------------------------------------------------------------------

COMPOSE_KEYS = {"version", "name", "services", "networks", "volumes", "secrets", "configs"}


def compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        d = {}
        for item in env:
            k, eq, v = str(item).partition("=")
            d[k] = v if eq else None
        env = d
    return {k: ("" if v is None else str(v)) for k, v in env.items()}


def compose_duration_s(v):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", str(v)):
        if m.start() != pos:
            return None
        pos = m.end()
        total += float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return total if pos == len(str(v)) and pos else None


def cmd_list(c):
    if c is None:
        return []
    return c if isinstance(c, list) else shlex.split(str(c))


def arg_after(args, flag):
    args = [str(a) for a in args]
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def merge_service(base, over):
    out = dict(base)
    for k, v in over.items():
        if k == "environment":
            e = compose_env(base)
            e.update(compose_env(over))
            out[k] = e
        elif k in ("volumes", "secrets", "ports", "expose"):
            out[k] = list(base.get(k) or []) + list(v or [])
        elif k == "depends_on":
            d = base.get(k) or {}
            d = {x: {} for x in d} if isinstance(d, list) else dict(d)
            d.update({x: {} for x in v} if isinstance(v, list) else v)
            out[k] = d
        else:
            out[k] = v
    return out


deploy = os.path.join(ROOT, "deploy")
compose_path = os.path.join(deploy, "compose.yaml")
fakes_path = os.path.join(deploy, "compose.fakes.yaml")
final_stage_name = None
if os.path.exists(dockerfile):
    froms = [a for _, i, a in dockerfile_instructions(dockerfile) if i == "FROM"]
    t = froms[-1].split() if froms else []
    final_stage_name = t[2] if len(t) >= 3 else None


def is_dreamd_service(svc, cdir):
    b = svc.get("build")
    if b is None:
        return str(svc.get("image", "")).split(":")[0].endswith("dreamd") and "entrypoint" not in svc
    ctx = b if isinstance(b, str) else b.get("context", ".")
    target = None if isinstance(b, str) else b.get("target")
    return (os.path.realpath(os.path.join(cdir, ctx)) == os.path.realpath(ROOT)
            and target in (None, final_stage_name) and "entrypoint" not in svc)


def check_compose(base, over):
    cdir = deploy
    bad_top = [k for k in base if k not in COMPOSE_KEYS and not str(k).startswith("x-")]
    check(not bad_top, "compose.yaml: top-level keys are compose keys", str(bad_top))
    services = base.get("services") or {}
    top_secrets = base.get("secrets") or {}
    redis = services.get("redis")
    if check(redis is not None, "compose.yaml: service redis"):
        check(str(redis.get("image", "")).startswith("redis:7"), "compose.yaml: redis runs redis:7",
              str(redis.get("image")))
        c = " ".join(cmd_list(redis.get("command")))
        check(re.search(r"--appendonly\s+yes", c), "compose.yaml: redis has appendonly yes", c)
        check(any(":/data" in str(v) for v in redis.get("volumes") or []), "compose.yaml: redis data on a volume")
    dsvcs = {n: s for n, s in services.items() if is_dreamd_service(s, cdir)}
    replicas = sum(int(((s.get("deploy") or {}).get("replicas", 1))) for s in dsvcs.values())
    check(replicas == 3, "compose.yaml: three dreamd replicas built from the Dockerfile (%d)" % replicas,
          "dreamd services: %s" % sorted(dsvcs))
    for name, s in dsvcs.items():
        where = "compose.yaml: %s" % name
        b = s.get("build")
        df = "Dockerfile" if b is None or isinstance(b, str) else b.get("dockerfile", "Dockerfile")
        check(b is None or os.path.exists(os.path.join(ROOT, df)), where + ": build uses the repository's Dockerfile")
        check(not s.get("profiles"), where + ": always started (no profile)")
        env = dict(DOCKER_ENV)
        env.update(compose_env(s))
        ENV_SETS.append((where, env))
        check_env(where + " environment", compose_env(s))
        check_grace(where, "stop_grace_period", compose_duration_s(s.get("stop_grace_period", "10s")), env)
        if "stop_signal" in s:
            check(s["stop_signal"] in ("SIGTERM", "TERM", 15), where + ": stop_signal SIGTERM")
        url = urllib.parse.urlparse(effective(env, "DREAM_REDIS_URL"))
        check(url.hostname in services, where + ": DREAM_REDIS_URL's host is a compose service",
              str(url.hostname))
        p = admin_addr_problem(env)
        check(p is None, where + ": admin endpoint reachable on %d" % ADMIN_PORT, p or "")
        svc_secrets = {}
        for sec in s.get("secrets") or []:
            src = sec if isinstance(sec, str) else sec.get("source")
            tgt = src if isinstance(sec, str) else sec.get("target", src)
            svc_secrets[tgt if tgt.startswith("/") else "/run/secrets/" + tgt] = src
            check(src in top_secrets and "file" in (top_secrets.get(src) or {}),
                  where + ": secret %s declared with a file" % src)
        for k, v in compose_env(s).items():
            if k.endswith("_FILE"):
                check(v in svc_secrets, where + ": %s=%s is a mounted compose secret" % (k, v))
        if s.get("read_only"):
            dd = effective(env, "DREAM_DATA_DIR")
            mounts = [str(v).split(":")[1] if ":" in str(v) else str(v) for v in s.get("volumes") or []]
            check(dd in mounts, where + ": read-only root, DREAM_DATA_DIR %s on a volume" % dd, str(mounts))
        for dep in (s.get("depends_on") or {}):
            check(dep in services, where + ": depends_on %s exists" % dep)
    fakes = {}
    for fname, script in (("fake-openrouter", "fake_openrouter.py"), ("fake-github", "fake_github.py")):
        f = services.get(fname)
        if not check(f is not None, "compose.yaml: service %s" % fname):
            continue
        fakes[fname] = f
        check("fakes" in (f.get("profiles") or []), "compose.yaml: %s is in profile fakes" % fname)
        check(str(f.get("image", "")).startswith("python:3"), "compose.yaml: %s runs python:3" % fname)
        args = cmd_list(f.get("command"))
        mnt = [str(v) for v in f.get("volumes") or []]
        host_dir = None
        for m in mnt:
            parts = m.split(":")
            if len(parts) >= 2 and any(a.startswith(parts[1] + "/") and a.endswith(script) for a in map(str, args)):
                host_dir = os.path.realpath(os.path.join(cdir, parts[0]))
        check(host_dir == os.path.realpath(os.path.join(ROOT, "tests", "fakes"))
              and os.path.exists(os.path.join(host_dir, script)),
              "compose.yaml: %s runs tests/fakes/%s from the mounted folder" % (fname, script), str(mnt))
        check(arg_after(args, "--host") == "0.0.0.0", "compose.yaml: %s listens on all interfaces" % fname)
    if over is None:
        return
    osvcs = over.get("services") or {}
    unknown = [n for n in osvcs if n not in services]
    check(not unknown, "compose.fakes.yaml: overrides only services of compose.yaml", str(unknown))
    for name in dsvcs:
        if name not in osvcs:
            fail("compose.fakes.yaml: does not override %s" % name)
            continue
        m = merge_service(dsvcs[name], osvcs[name])
        where = "compose.yaml+compose.fakes.yaml: %s" % name
        env = dict(DOCKER_ENV)
        env.update(compose_env(m))
        ENV_SETS.append((where, env))
        check_env(where + " environment", compose_env(m))
        check_grace(where, "stop_grace_period", compose_duration_s(m.get("stop_grace_period", "10s")), env)
        for var, fname, path in (("DREAM_LLM_URL", "fake-openrouter", "/api/v1"),
                                 ("DREAM_GITHUB_API_URL", "fake-github", "")):
            u = urllib.parse.urlparse(env.get(var, ""))
            f = fakes.get(fname) or {}
            port = arg_after(cmd_list(f.get("command")), "--port")
            check(u.hostname == fname and str(u.port) == str(port) and u.path.rstrip("/") == path,
                  where + ": %s points at %s:%s%s" % (var, fname, port, path), env.get(var, "(unset)"))
        tok = arg_after(cmd_list((fakes.get("fake-github") or {}).get("command")), "--token")
        if tok:
            check(env.get("GITHUB_TOKEN") == tok and not env.get("GITHUB_TOKEN_FILE"),
                  where + ": GITHUB_TOKEN is the fake's --token")
        for k, v in compose_env(m).items():
            if k.endswith("_FILE") and v:
                mounted = ["/run/secrets/" + (x if isinstance(x, str) else x.get("target", x.get("source")))
                           for x in m.get("secrets") or []]
                check(v in mounted, where + ": %s=%s is a mounted compose secret" % (k, v))
        gu = env.get("DREAM_GIT_URL", "")
        if gu.startswith("file://"):
            d = gu[len("file://"):].split("{owner}")[0].rstrip("/")
            mounts = [str(v).split(":")[1] for v in m.get("volumes") or [] if ":" in str(v)]
            check(any(d == t or d.startswith(t + "/") for t in mounts),
                  where + ": DREAM_GIT_URL's folder %s is a mounted volume" % d, str(mounts))
        for dep in (m.get("depends_on") or {}):
            check(dep in services, where + ": depends_on %s exists" % dep)


base = load_yaml_docs(compose_path) if check(os.path.exists(compose_path), "deploy/compose.yaml exists") else None
over = load_yaml_docs(fakes_path) if check(os.path.exists(fakes_path), "deploy/compose.fakes.yaml exists") else None
if base and len(base) == 1 and isinstance(base[0], dict):
    check_compose(base[0], over[0] if over else None)
    if tool("docker") and run(["docker", "compose", "version"]).returncode == 0:
        ctool = ["docker", "compose"]
    elif tool("docker-compose"):
        ctool = ["docker-compose"]
    else:
        ctool = None
    if ctool:
        envc = dict(os.environ)
        r = run(ctool + ["-f", compose_path, "config", "-q"], env=envc)
        check(r.returncode == 0, "%s config accepts deploy/compose.yaml" % " ".join(ctool), r.stdout.strip())
        r = run(ctool + ["-f", compose_path, "-f", fakes_path, "--profile", "fakes", "config", "-q"], env=envc)
        check(r.returncode == 0, "%s config accepts compose.yaml + compose.fakes.yaml with profile fakes"
              % " ".join(ctool), r.stdout.strip())
    else:
        skip("docker compose / docker-compose not installed (or DREAM_CHECK_TOOLS=0): "
             "compose files checked by this script only")

# ---- Kubernetes -----------------------------------------------------------------------------

k8s = os.path.join(deploy, "k8s")
objs = []
kz_path = os.path.join(k8s, "kustomization.yaml")
if check(os.path.exists(kz_path), "deploy/k8s/kustomization.yaml exists"):
    kz = (load_yaml_docs(kz_path) or [{}])[0]
    res = kz.get("resources") or []
    files = sorted(f for f in os.listdir(k8s) if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml")
    check(sorted(res) == files, "kustomization.yaml lists every manifest in deploy/k8s",
          "listed %s, present %s" % (sorted(res), files))
    for f in res:
        p = os.path.join(k8s, f)
        if check(os.path.exists(p), "deploy/k8s/%s exists" % f):
            for d in load_yaml_docs(p) or []:
                objs.append((f, d))

for f, d in objs:
    md = d.get("metadata") or {}
    check(isinstance(d.get("apiVersion"), str) and isinstance(d.get("kind"), str)
          and isinstance(md.get("name"), str) and md.get("name"),
          "%s: %s/%s has apiVersion, kind and metadata.name" % (f, d.get("kind"), md.get("name")))

by_kind = {}
for f, d in objs:
    by_kind.setdefault(d.get("kind"), []).append(d)
for kind, api in (("Deployment", "apps/v1"), ("Secret", "v1"), ("ConfigMap", "v1"),
                  ("PodDisruptionBudget", "policy/v1"), ("ScaledObject", "keda.sh/v1alpha1")):
    got = by_kind.get(kind) or []
    check(got and all(o.get("apiVersion") == api for o in got), "k8s: %s (%s) present" % (kind, api))


def named(kind, name):
    for o in by_kind.get(kind) or []:
        if (o.get("metadata") or {}).get("name") == name:
            return o
    return None


def secret_keys(sec):
    return set((sec.get("data") or {}).keys()) | set((sec.get("stringData") or {}).keys())


def secret_value(sec, key):
    import base64
    if key in (sec.get("stringData") or {}):
        return str(sec["stringData"][key])
    if key in (sec.get("data") or {}):
        return base64.b64decode(sec["data"][key]).decode()
    return None


def subset(a, b):
    return bool(a) and all(b.get(k) == v for k, v in a.items())


dep = (by_kind.get("Deployment") or [None])[0]
K8S_ENV = {}
if dep:
    spec = dep.get("spec") or {}
    tpl = spec.get("template") or {}
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    pod = tpl.get("spec") or {}
    check(spec.get("replicas") == 3, "k8s Deployment: 3 replicas", str(spec.get("replicas")))
    check(subset((spec.get("selector") or {}).get("matchLabels") or {}, labels),
          "k8s Deployment: selector matches the pod template's labels")
    conts = pod.get("containers") or []
    c = next((x for x in conts if str(x.get("image", "")).split(":")[0].split("/")[-1] == "dreamd"),
             conts[0] if conts else {})
    # environment: envFrom first, then env (env wins, as in Kubernetes)
    for ef in c.get("envFrom") or []:
        if "configMapRef" in ef:
            cm = named("ConfigMap", ef["configMapRef"].get("name"))
            if check(cm is not None, "k8s Deployment: envFrom ConfigMap %s exists" % ef["configMapRef"].get("name")):
                check_env("k8s ConfigMap %s" % cm["metadata"]["name"], {k: str(v) for k, v in (cm.get("data") or {}).items()})
                K8S_ENV.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
        if "secretRef" in ef:
            sec = named("Secret", ef["secretRef"].get("name"))
            if check(sec is not None, "k8s Deployment: envFrom Secret exists"):
                check_env("k8s Secret %s (envFrom)" % sec["metadata"]["name"], {k: "" for k in secret_keys(sec)}, quiet=True)
    plain = {}
    for e in c.get("env") or []:
        n = e.get("name")
        vf = e.get("valueFrom") or {}
        if "value" in e:
            plain[n] = str(e["value"])
        elif "secretKeyRef" in vf:
            ref = vf["secretKeyRef"]
            sec = named("Secret", ref.get("name"))
            check(sec is not None and ref.get("key") in secret_keys(sec),
                  "k8s Deployment: %s from Secret %s key %s" % (n, ref.get("name"), ref.get("key")))
            plain[n] = secret_value(sec, ref.get("key")) if sec else None
        elif "configMapKeyRef" in vf:
            ref = vf["configMapKeyRef"]
            cm = named("ConfigMap", ref.get("name"))
            check(cm is not None and ref.get("key") in (cm.get("data") or {}),
                  "k8s Deployment: %s from ConfigMap %s key %s" % (n, ref.get("name"), ref.get("key")))
            plain[n] = str((cm.get("data") or {}).get(ref.get("key"))) if cm else None
        else:
            plain[n] = None  # fieldRef / resourceFieldRef: value known only at run time
    check_env("k8s Deployment env", plain)
    K8S_ENV.update({k: v for k, v in plain.items() if v is not None})
    env_all = dict(DOCKER_ENV)
    env_all.update(K8S_ENV)
    ENV_SETS.append(("k8s Deployment", env_all))
    check_grace("k8s Deployment", "terminationGracePeriodSeconds",
                pod.get("terminationGracePeriodSeconds", 30), env_all)
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    check((csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True)
          and csc.get("runAsUser", psc.get("runAsUser", 1)) != 0,
          "k8s Deployment: runs as non-root")
    check(csc.get("readOnlyRootFilesystem") is True, "k8s Deployment: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, "k8s Deployment: allowPrivilegeEscalation false")
    rs = c.get("resources") or {}
    check(all(k in (rs.get("requests") or {}) for k in ("cpu", "memory")) and "memory" in (rs.get("limits") or {}),
          "k8s Deployment: resource requests (cpu, memory) and a memory limit")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    check(ADMIN_PORT in ports.values(), "k8s Deployment: containerPort %d" % ADMIN_PORT)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = (c.get(probe) or {}).get("httpGet") or {}
        port = hg.get("port")
        port = ports.get(port, port) if isinstance(port, str) else port
        check(hg.get("path") == path and port == ADMIN_PORT,
              "k8s Deployment: %s GET %s on port %d" % (probe, path, ADMIN_PORT), str(hg))
    p = admin_addr_problem(env_all)
    check(p is None, "k8s: admin endpoint reachable on %d" % ADMIN_PORT, p or "")
    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = {m.get("mountPath"): m for m in c.get("volumeMounts") or []}
    dd = effective(env_all, "DREAM_DATA_DIR")
    m = mounts.get(dd)
    check(m is not None and "emptyDir" in (vols.get(m.get("name")) or {}),
          "k8s Deployment: DREAM_DATA_DIR %s is an emptyDir mount" % dd)
    for n, v in plain.items():
        if not n.endswith("_FILE"):
            continue
        d, base_ = os.path.dirname(v or ""), os.path.basename(v or "")
        mm = mounts.get(d)
        vol = vols.get(mm.get("name")) if mm else None
        sv = (vol or {}).get("secret")
        good = False
        if sv:
            sec = named("Secret", sv.get("secretName"))
            items = sv.get("items")
            key = next((i.get("key") for i in items if i.get("path") == base_), None) if items else base_
            good = sec is not None and key in secret_keys(sec)
        check(good, "k8s Deployment: %s=%s is an item of a mounted Secret" % (n, v))
    pdb = (by_kind.get("PodDisruptionBudget") or [None])[0]
    if pdb:
        ps = pdb.get("spec") or {}
        check(("minAvailable" in ps) != ("maxUnavailable" in ps), "k8s PodDisruptionBudget: minAvailable or maxUnavailable")
        check(subset((ps.get("selector") or {}).get("matchLabels") or {}, labels),
              "k8s PodDisruptionBudget: selector matches the Deployment's pods")
        if isinstance(ps.get("minAvailable"), int):
            check(ps["minAvailable"] < spec.get("replicas", 1), "k8s PodDisruptionBudget: leaves room for a drain")
    so = (by_kind.get("ScaledObject") or [None])[0]
    if so:
        ss = so.get("spec") or {}
        check((ss.get("scaleTargetRef") or {}).get("name") == dep["metadata"]["name"]
              and (ss.get("scaleTargetRef") or {}).get("kind", "Deployment") == "Deployment",
              "k8s ScaledObject: scales the Deployment")
        trig = [t for t in ss.get("triggers") or [] if t.get("type") == "redis-streams"]
        if check(len(trig) == 1, "k8s ScaledObject: one redis-streams trigger"):
            t = trig[0]
            md = t.get("metadata") or {}
            check(all(isinstance(v, str) for v in md.values()), "k8s ScaledObject: trigger metadata values are strings")
            stream = effective(env_all, "DREAM_PREFIX") + ":jobs"
            check(md.get("stream") == stream, "k8s ScaledObject: stream %s" % stream, str(md.get("stream")))
            check(md.get("consumerGroup") == GROUP, "k8s ScaledObject: consumerGroup %s" % GROUP)
            check(re.fullmatch(r"[1-9]\d*", str(md.get("lagCount", ""))) is not None,
                  "k8s ScaledObject: lagCount is a positive integer", str(md.get("lagCount")))
            check(any(k in md for k in ("address", "host", "addressFromEnv", "hostFromEnv")),
                  "k8s ScaledObject: Redis address given")
            ru = urllib.parse.urlparse(effective(env_all, "DREAM_REDIS_URL"))
            if "address" in md and ru.hostname:
                check(md["address"] == "%s:%d" % (ru.hostname, ru.port or 6379),
                      "k8s ScaledObject: address is DREAM_REDIS_URL's host:port", md["address"])
            if "databaseIndex" in md:
                db = (ru.path or "/0").strip("/") or "0"
                check(md["databaseIndex"] == db, "k8s ScaledObject: databaseIndex is DREAM_REDIS_URL's db")
            ar = t.get("authenticationRef")
            if ru.password and check(ar is not None, "k8s ScaledObject: Redis has a password, trigger has an authenticationRef"):
                ta = named(ar.get("kind", "TriggerAuthentication"), ar.get("name"))
                if check(ta is not None, "k8s TriggerAuthentication %s exists" % ar.get("name")):
                    for ref in (ta.get("spec") or {}).get("secretTargetRef") or []:
                        sec = named("Secret", ref.get("name"))
                        check(sec is not None and ref.get("key") in secret_keys(sec),
                              "k8s TriggerAuthentication: %s from Secret %s key %s" % (ref.get("parameter"), ref.get("name"), ref.get("key")))
                        if ref.get("parameter") == "password" and sec is not None:
                            check(secret_value(sec, ref.get("key")) == urllib.parse.unquote(ru.password),
                                  "k8s: KEDA's Redis password is the one in DREAM_REDIS_URL")
        check(int(ss.get("minReplicaCount", 0)) <= int(ss.get("maxReplicaCount", 100)),
              "k8s ScaledObject: minReplicaCount <= maxReplicaCount")

if objs and tool("kubectl"):
    r = subprocess.run(["kubectl", "kustomize", k8s], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    built = [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []
    check(r.returncode == 0 and len(built) == len(objs), "kubectl kustomize builds deploy/k8s (%d objects)" % len(built),
          r.stderr.strip())
else:
    skip("kubectl not installed (or DREAM_CHECK_TOOLS=0): kustomization not built")

validator = r"""
import { pathToFileURL } from "node:url";
import fs from "node:fs";
const [objsPath, mods] = process.argv.slice(2);
const objs = JSON.parse(fs.readFileSync(objsPath, "utf8"));
let bad = 0;
for (const o of objs) {
  const [g, v] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const file = g.endsWith("keda.sh") ? `${mods}/@kubernetes-models/keda/${g}/${v}/${o.kind}.js`
             : `${mods}/kubernetes-models/${g ? g + "/" : ""}${v}/${o.kind}.mjs`;
  const where = `${o.kind}/${o.metadata.name}`;
  if (!fs.existsSync(file)) { console.log(`FAIL ${where}: no schema (${file})`); bad++; continue; }
  try {
    const M = (await import(pathToFileURL(file).href))[o.kind];
    new M(o).validate();
    console.log(`ok ${where}`);
  } catch (e) { console.log(`FAIL ${where}: ${e.message}`); bad++; }
}
process.exit(bad ? 1 : 0);
"""
have_models = MODELS and os.path.exists(os.path.join(MODELS, "kubernetes-models")) and \
    os.path.exists(os.path.join(MODELS, "@kubernetes-models", "keda"))
if objs and have_models and tool("node"):
    with tempfile.TemporaryDirectory() as td:
        op = os.path.join(td, "objs.json")
        vp = os.path.join(td, "validate.mjs")
        json.dump([d for _, d in objs], open(op, "w"))
        open(vp, "w").write(validator)
        r = run(["node", vp, op, MODELS])
        for line in r.stdout.splitlines():
            if line.startswith("ok "):
                ok("k8s schema: " + line[3:])
            elif line.startswith("FAIL "):
                fail("k8s schema: " + line[5:])
        if r.returncode != 0 and "FAIL" not in r.stdout:
            fail("k8s schema validator failed: " + r.stdout[-500:])
else:
    skip("k8s JSON-schema check: needs node and kubernetes-models + @kubernetes-models/keda "
         "(scripts/check-deploy.sh --install-tools; DREAM_CHECK_TOOLS=0 skips it)")

# ---- systemd --------------------------------------------------------------------------------

def parse_unit(path):
    sections, cur, pending = {}, None, ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if pending:
            line = pending + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            cur = s[1:-1]
            sections.setdefault(cur, [])
            continue
        k, _, v = s.partition("=")
        sections.setdefault(cur, []).append((k.strip(), v.strip()))
    return sections


def systemd_seconds(v):
    v = v.strip()
    if v in ("infinity", ""):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    units = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1, "sec": 1, "second": 1, "seconds": 1,
             "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}
    total, pos = 0.0, 0
    s = v.replace(" ", "")
    for m in re.finditer(r"(\d+(?:\.\d+)?)([a-z]+)", s):
        if m.start() != pos or m.group(2) not in units:
            return None
        pos = m.end()
        total += float(m.group(1)) * units[m.group(2)]
    return total if pos == len(s) else None


unit_path = os.path.join(deploy, "systemd", "dreamd.service")
if check(os.path.exists(unit_path), "deploy/systemd/dreamd.service exists"):
    u = parse_unit(unit_path)
    svc = u.get("Service") or []

    def last(k):
        vals = [v for kk, v in svc if kk == k]
        return vals[-1] if vals else None

    def all_of(k):
        return [v for kk, v in svc if kk == k]

    for k, want in (("Type", "simple"), ("User", "dreamd"), ("StateDirectory", "dreamd"),
                    ("KillSignal", "SIGTERM"), ("Restart", "on-failure"), ("NoNewPrivileges", "yes"),
                    ("ProtectSystem", "strict"), ("PrivateTmp", "yes")):
        check(last(k) == want, "systemd: %s=%s" % (k, want), "found %s" % last(k))
    es = last("ExecStart") or ""
    check(os.path.basename(es.split()[0].lstrip("-@:+!")) == "dreamd" if es else False, "systemd: ExecStart runs dreamd")
    check("Install" in u and any(k == "WantedBy" for k, _ in u["Install"]), "systemd: [Install] WantedBy")
    envfile = (last("EnvironmentFile") or "").lstrip("-")
    check(envfile, "systemd: EnvironmentFile set")
    unit_env = {}
    for v in all_of("Environment"):
        for tok in shlex.split(v):
            k, _, val = tok.partition("=")
            unit_env[k] = val
    creds = {v.split(":")[0] for v in all_of("LoadCredential") + all_of("LoadCredentialEncrypted") + all_of("SetCredential")}
    check_env("systemd Environment=", unit_env)
    for k, v in unit_env.items():
        if k.endswith("_FILE"):
            m = re.fullmatch(r"(?:%d|\$\{CREDENTIALS_DIRECTORY\}|\$CREDENTIALS_DIRECTORY)/(.+)", v)
            check(m and m.group(1) in creds, "systemd: %s=%s is a loaded credential" % (k, v))
    file_env = {}
    example = os.path.join(deploy, "systemd", os.path.basename(envfile)) if envfile else ""
    if check(example and os.path.exists(example), "systemd: example %s shipped as deploy/systemd/%s"
             % (envfile, os.path.basename(envfile or "?"))):
        for line in open(example):
            s = line.strip()
            if s and not s.startswith("#"):
                k, _, v = s.partition("=")
                file_env[k.strip()] = v.strip().strip('"')
        check_env("systemd %s" % os.path.basename(envfile), file_env)
    env = dict(unit_env)
    env.update(file_env)  # EnvironmentFile= wins over Environment=
    ENV_SETS.append(("systemd", env))
    tss = last("TimeoutStopSec") or last("TimeoutSec") or "90s"
    check_grace("systemd", "TimeoutStopSec", systemd_seconds(tss), env)
    dd = effective(env, "DREAM_DATA_DIR")
    check(dd == "/var/lib/" + (last("StateDirectory") or ""), "systemd: DREAM_DATA_DIR %s is the StateDirectory" % dd)
    if tool("systemd-analyze"):
        with tempfile.TemporaryDirectory() as td:
            copy = os.path.join(td, "dreamd.service")
            text = open(unit_path).read()
            exe = DREAMD if DREAMD and os.path.isabs(DREAMD) else "/bin/true"
            text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=" + exe, text)
            open(copy, "w").write(text)
            r = run(["systemd-analyze", "verify", copy])
            check(r.returncode == 0 and not r.stdout.strip(), "systemd-analyze verify: no warnings", r.stdout.strip())
            r = run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", copy])
            lvl = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
            check(r.returncode == 0, "systemd-analyze security: exposure %s <= 2.0" % (lvl.group(1) if lvl else "?"),
                  r.stdout[-300:])
    else:
        skip("systemd-analyze not installed (or DREAM_CHECK_TOOLS=0)")

# ---- dreamd itself accepts each deployment's settings ---------------------------------------

if DREAMD:
    with tempfile.TemporaryDirectory() as td:
        secret = os.path.join(td, "secret")
        with open(secret, "w") as f:
            f.write("not-a-real-secret\n")
        for where, env in ENV_SETS:
            e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            for k, v in env.items():
                if v is None:
                    continue
                e[k] = secret if k.endswith("_FILE") and v else v  # the secret files exist at run time
            r = run([DREAMD, "--print-config"], env=e)
            printed = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l) if r.returncode == 0 else {}
            check(r.returncode == 0 and printed.get("shutdown-grace-ms") == str(grace_ms(env)),
                  "%s: dreamd --print-config accepts every setting (grace %s ms)" % (where, printed.get("shutdown-grace-ms")),
                  r.stdout.strip()[-400:])
else:
    skip("dreamd --print-config on each deployment's settings: needs a built dreamd")

print()
if failures:
    print("check-deploy: %d problem(s), %d checks fine" % (len(failures), passed))
    sys.exit(1)
print("check-deploy: all %d checks fine" % passed)
PY
