#!/usr/bin/env python3
"""Git growth benchmark driver (see bench_growth.sh).

One repository (acme/app, 50 files on main), N jobs submitted together through the real
pipeline of one dreamd replica (fake LLM at 0 ms, fake GitHub, no esbuild and no tsc, so the
figures are the pipeline's own and git's), against a remote pre-seeded with 0, 1,000 and 10,000
existing branches, over a local bare remote (file://) and over the smart-HTTP server of the
tests (lighttpd + git http-backend). For each point it prints the CPU ms per job of dreamd and
its children (/proc/<pid>/stat utime+stime+cutime+cstime, from the moment the replica is ready
to the last job's end), the replica's peak RSS (VmHWM), and the mirror's objects and refs after
the run.

usage: bench_growth.py <dreamd> <source dir> <work dir> <jobs> <seeds,comma-separated>
                       <remotes: file,http>
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine import Resp  # noqa: E402

TOKEN = "ghp_benchgrowth0000000000000000000000000"
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("%s did not start on port %d" % (what, port))


def sh(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


def make_remote(root, seeds):
    """acme/app.git: 50 files on main (one commit), plus `seeds` branches each with its own
    commit on top of main (as a busy repository's old dreamd branches), refs packed."""
    bare = os.path.join(root, "acme", "app.git")
    os.makedirs(os.path.dirname(bare), exist_ok=True)
    sh("git", "init", "-q", "--bare", "-b", "main", bare)
    sh("git", "-C", bare, "config", "http.receivepack", "true")
    out = []
    msg = b"Initial import"
    out.append(b"commit refs/heads/main\nmark :1\n")
    out.append(b"committer Seed <seed@example.com> 1767225600 +0000\n")
    out.append(b"data %d\n%s\n" % (len(msg), msg))
    pkg = b'{"name":"app","dependencies":{"hono":"^4.0.0"}}\n'
    out.append(b"M 100644 inline package.json\ndata %d\n%s\n" % (len(pkg), pkg))
    for i in range(49):
        body = b"export const value%d = %d;\n" % (i, i) * 8
        out.append(b"M 100644 inline src/lib/mod%02d.ts\ndata %d\n%s\n" % (i, len(body), body))
    out.append(b"\n")
    for i in range(seeds):
        m = b"old branch %d" % i
        body = b"export const old%d = %d;\n" % (i, i)
        out.append(b"commit refs/heads/dream/old-%05d\n" % i)
        out.append(b"committer Seed <seed@example.com> %d +0000\n" % (1767225600 + i))
        out.append(b"data %d\n%s\nfrom :1\n" % (len(m), m))
        out.append(b"M 100644 inline src/old/o%05d.ts\ndata %d\n%s\n\n" % (i, len(body), body))
    subprocess.run(["git", "-C", bare, "fast-import", "--quiet"], input=b"".join(out),
                   check=True)
    sh("git", "-C", bare, "pack-refs", "--all")
    return bare


def job(i, tag):
    spec = "# Bench %s %04d Service\n\n## API\n- GET /bench%04d returns ok\n" % (tag, i, i)
    return json.dumps({
        "jobId": "%s-%04d" % (tag, i), "specId": "s%d" % i, "userId": "u", "repoOwner": "acme",
        "repoName": "app", "specMarkdown": spec,
        "budget": {"maxTokens": 200000, "maxDollars": 5}, "trustLevel": "builder"})


def proc_cpu_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the comm: state is [0]; utime [11], stime [12], cutime [13], cstime [14]
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks * 1000.0 / CLK


def proc_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def terminal_count(r, n):
    done = failed = 0
    for i in range(0, n, 500):
        r.send("EVAL", "local c,f=0,0 for _,k in ipairs(KEYS) do local s=redis.call('HGET',k,"
               "'status') if s=='complete' then c=c+1 elseif s=='failed' then f=f+1 end end "
               "return {c,f}", min(500, n - i), *KEYS[i:i + 500])
        c, f = r.read()
        done += c
        failed += f
    return done, failed


KEYS = []


def mirror_counts(data):
    mirror = os.path.join(data, "mirrors", "acme", "app.git")
    if not os.path.isdir(mirror):
        return "no mirror"
    co = dict(line.split(": ", 1) for line in
              sh("git", "--git-dir", mirror, "count-objects", "-v").splitlines())
    refs = len(sh("git", "--git-dir", mirror, "for-each-ref").splitlines())
    return "mirror: %s loose objects, %s packed in %s packs, %d refs" % (
        co["count"], co["in-pack"], co["packs"], refs)


def run_point(a, kind, seeds, n, tag):
    root = os.path.join(a.work, "%s-%d" % (kind, seeds))
    shutil.rmtree(root, ignore_errors=True)
    remotes = os.path.join(root, "repos")
    data = os.path.join(root, "data")
    os.makedirs(data)
    make_remote(remotes, seeds)
    procs = []
    try:
        gh_port, or_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            ["python3", os.path.join(a.src, "tests/fakes/fake_github.py"), "--port", str(gh_port),
             "--token", TOKEN, "--git-root", remotes, "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            ["python3", os.path.join(a.src, "tests/fakes/fake_openrouter.py"), "--port",
             str(or_port), "--latency-ms", "0", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(gh_port, "fake GitHub")
        wait_port(or_port, "fake OpenRouter")
        if kind == "http":
            hp = free_port()
            # The server serves <root>/repos: the remote made above.
            procs.append(subprocess.Popen(
                ["sh", os.path.join(a.src, "tests/fakes/git_http_server.sh"), "run", root,
                 str(hp), "x-access-token", TOKEN],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(hp, "git http server")
            git_url = "http://127.0.0.1:%d/git/{owner}/{repo}.git" % hp
        else:
            git_url = "file://%s/{owner}/{repo}.git" % remotes
        r = Resp(a.port)
        r.call("FLUSHALL")
        env = dict(os.environ, OPENROUTER_API_KEY="sk-or-v1-bench", GITHUB_TOKEN=TOKEN,
                   PATH="/usr/bin:/bin")
        env.pop("DREAM_SOURCE_DIR", None)
        log = open(os.path.join(root, "dreamd.log"), "wb")
        # BENCH_WRAP="perf record -g -o /tmp/p --": run the replica under a profiler (the CPU
        # figures are then not the replica's).
        wrap = os.environ.get("BENCH_WRAP", "").split()
        d = subprocess.Popen(
            wrap + [a.dreamd, "--redis-url=redis://127.0.0.1:%d/0" % a.port, "--consumer=bench",
             "--llm-url=http://127.0.0.1:%d/api/v1" % or_port,
             "--github-api-url=http://127.0.0.1:%d" % gh_port, "--git-url=" + git_url,
             "--data-dir=" + data, "--admin-addr=", "--forge-write-interval-ms=0",
             "--log-level=warn", "--max-jobs=64"], env=env, stderr=log, stdout=log)
        procs.append(d)
        deadline = time.time() + 20
        while time.time() < deadline:
            groups = r.call("EXISTS", "dream:jobs")
            if groups:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        cpu0 = proc_cpu_ms(d.pid)
        del KEYS[:]
        for i in range(n):
            r.send("XADD", "dream:jobs", "*", "type", "build", "job", job(i, tag))
            KEYS.append("dream:job:%s-%04d" % (tag, i))
        for _ in range(n):
            r.read()
        t0 = time.time()
        deadline = t0 + max(300, n * 2)
        done = failed = 0
        while time.time() < deadline:
            done, failed = terminal_count(r, n)
            if done + failed >= n:
                break
            if d.poll() is not None:
                raise SystemExit("dreamd exited (%s/dreamd.log)" % root)
            time.sleep(0.1)
        wall = time.time() - t0
        cpu = proc_cpu_ms(d.pid) - cpu0
        hwm = proc_hwm_kib(d.pid)
        if failed:
            errs = set()
            for k in KEYS:
                e = r.call("HGET", k, "error")
                if e:
                    errs.add(e[:200])
            print("    %d failed: %s" % (failed, "; ".join(sorted(errs)[:3])))
        print("  %-4s %5d branches: %4d jobs (%d complete) in %5.1f s, %6.2f CPU ms/job "
              "(dreamd + children), peak RSS %5.1f MiB; %s"
              % (kind, seeds, n, done, wall, cpu / n, hwm / 1024.0, mirror_counts(data)))
        sys.stdout.flush()
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


class Args:
    pass


def main():
    a = Args()
    a.dreamd, a.src, a.work, a.port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    n = int(sys.argv[5])
    seeds = [int(s) for s in sys.argv[6].split(",")]
    kinds = sys.argv[7].split(",")
    a.keep = os.environ.get("BENCH_KEEP") is not None
    print("bench_growth: %d jobs per point (64 in flight), 50-file repository, fake LLM 0 ms, "
          "no esbuild/tsc" % n)
    for kind in kinds:
        for s in seeds:
            run_point(a, kind, s, n, "g%s%d" % (kind[0], s))


if __name__ == "__main__":
    main()
