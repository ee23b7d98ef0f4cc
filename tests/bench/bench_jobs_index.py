#!/usr/bin/env python3
"""Loads N finished jobs into Redis as dreamd's Lua scripts leave them (job hash with status,
stage, created, updated, repo, user, tokens, cost; the index sets <p>:idx:created,
<p>:idx:status:<s>, <p>:idx:repo:<r>, <p>:idx:user:<u>; spelt as in include/dream/core/keys.h),
then times dreamctl commands that read the index and checks that none of them SCANs.

usage: bench_jobs_index.py DREAMCTL PORT [N=100000]
Jobs: created uniformly over the last 7 days, ended 10 s to 30 min later; 70% complete, 20%
failed, 5% cancelled, 5% dead_lettered; 20% for acme/app, the rest over 50 other repositories;
200 users. Prints the load time and, per command, the median of 5 runs and what it printed."""
import random
import statistics
import subprocess
import sys
import time

ctl, port = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
url = f"redis://127.0.0.1:{port}/0"
random.seed(17)
now = int(time.time() * 1000)
week = 7 * 24 * 3600 * 1000


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def redis(*args):
    return subprocess.run(["redis-cli", "-p", port, *map(str, args)], check=True,
                          capture_output=True, text=True).stdout


buf = []
statuses = ["complete"] * 14 + ["failed"] * 4 + ["cancelled", "dead_lettered"]
t0 = time.time()
for i in range(n):
    jid = f"job-{i:06d}"
    created = now - random.randrange(week)
    updated = created + random.randrange(10_000, 1_800_000)
    if updated > now:
        updated = now - 1
    status = random.choice(statuses)
    repo = "acme/app" if random.random() < 0.2 else f"org{random.randrange(50)}/svc"
    user = f"user-{random.randrange(200)}"
    tokens = random.randrange(1000, 200000)
    cost = round(tokens * 0.000003, 6)
    buf.append(resp("HSET", f"dream:job:{jid}", "status", status, "stage", "pr", "created",
                    created, "updated", updated, "repo", repo, "user", user, "tokens", tokens,
                    "cost", cost, "owner", "bench", "attempts", 1))
    buf.append(resp("ZADD", "dream:idx:created", created, jid))
    buf.append(resp("ZADD", f"dream:idx:status:{status}", updated, jid))
    buf.append(resp("ZADD", f"dream:idx:repo:{repo}", created, jid))
    buf.append(resp("ZADD", f"dream:idx:user:{user}", created, jid))
p = subprocess.run(["redis-cli", "-p", port, "--pipe"], input=b"".join(buf), check=True,
                   capture_output=True)
print(f"loaded {n} finished jobs in {time.time() - t0:.1f} s "
      f"({redis('DBSIZE').strip()} keys, {redis('INFO', 'memory').split('used_memory_human:')[1].split()[0]})")

redis("CONFIG", "RESETSTAT")
commands = [
    ["jobs", "--repo", "acme/app", "--status", "failed", "--since", "1h"],
    ["jobs", "--repo", "acme/app", "--status", "failed", "--limit", "50"],
    ["jobs", "--status", "failed,cancelled", "--since", "24h", "--limit", "0"],
    ["jobs", "--limit", "50"],
    ["jobs", "--user", "user-7", "--min-cost", "0.3", "--limit", "20"],
]
for args in commands:
    times = []
    for _ in range(5):
        t = time.perf_counter()
        r = subprocess.run([ctl, f"--redis-url={url}", *args, "--json"], check=True,
                           capture_output=True, text=True)
        times.append((time.perf_counter() - t) * 1000)
    rows = r.stdout.count('"jobId"')
    print(f"dreamctl {' '.join(args)}: median {statistics.median(times):.1f} ms "
          f"(min {min(times):.1f}, max {max(times):.1f}) over 5 runs, {rows} jobs")
stats = redis("INFO", "commandstats")
scan = [l for l in stats.splitlines() if l.startswith("cmdstat_scan:")]
print("SCAN calls during the commands:", scan[0].split("calls=")[1].split(",")[0] if scan else 0)
if scan:
    sys.exit("dreamctl jobs issued a SCAN")
