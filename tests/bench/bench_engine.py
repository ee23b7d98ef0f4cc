#!/usr/bin/env python3
"""Engine benchmark driver (see bench_engine.sh): enqueues build jobs on a real redis-server,
runs one dreamd replica with no-op stages, and prints jobs/s and enqueue->started latency."""
import json
import os
import socket
import subprocess
import sys
import time


class Resp:
    """A minimal RESP2 client (stdlib only)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t in (b"+", b"-"):
            return rest.decode()
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def call(self, *args):
        self.send(*args)
        return self.read()


def job(i, prefix):
    return json.dumps({
        "jobId": "%s-%d" % (prefix, i), "specId": "s", "userId": "u", "repoOwner": "acme",
        "repoName": "app", "specMarkdown": "# Bench\n\n## API\n- GET /x\n",
        "budget": {"maxTokens": 1000, "maxDollars": 1}, "trustLevel": "builder"})


def enqueue(r, n, prefix):
    for i in range(n):
        r.send("XADD", "dream:jobs", "*", "type", "build", "job", job(i, prefix))
    for _ in range(n):
        r.read()


def events(r):
    out, start = [], "-"
    while True:
        page = r.call("XRANGE", "dream:events", start, "+", "COUNT", "5000")
        for eid, fields in page:
            out.append((eid, json.loads(fields[1])))
        if len(page) < 5000:
            return out
        start = "(" + page[-1][0]


def wait_terminal(r, want, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = sum(1 for _, e in events(r) if e["status"] == "complete")
        if done >= want:
            return time.time()
        time.sleep(0.05)
    raise SystemExit("timeout waiting for %d jobs" % want)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def ts_ms(ts):
    # 2026-11-24T02:04:58.123Z
    import calendar
    base = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    return base * 1000 + int(ts[20:23])


def main():
    dreamd, port, n_tput, n_lat, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), float(sys.argv[5])
    r = Resp(port)
    common = [dreamd, "--redis-url=redis://127.0.0.1:%d/0" % port, "--admin-addr=",
              "--stages=test", "--test-stage-ms=0", "--log-level=warn", "--max-jobs=64"]

    # Throughput: a backlog of n_tput jobs drained by one replica.
    enqueue(r, n_tput, "tput")
    t0 = time.time()
    p = subprocess.Popen(common + ["--consumer=bench"], stderr=subprocess.DEVNULL)
    t1 = wait_terminal(r, n_tput, 600)
    print("engine throughput: %d jobs in %.2f s = %.0f jobs/s (one replica, no-op stages, "
          "8 Lua scripts per job: start, 6 stage checkpoints, end)" % (n_tput, t1 - t0, n_tput / (t1 - t0)))

    # Latency: jobs enqueued at a steady rate while the replica idles between them.
    r.call("DEL", "dream:events")
    for i in range(n_lat):
        r.call("XADD", "dream:jobs", "*", "type", "build", "job", job(i, "lat"))
        time.sleep(1.0 / rate)
    wait_terminal(r, n_lat, 120)
    lat = []
    for eid, e in events(r):
        if e["status"] == "started":
            entry = r.call("HGET", "dream:job:" + e["jobId"], "entry")
            lat.append(ts_ms(e["ts"]) - int(entry.split("-")[0]))
    p.terminate()
    p.wait(timeout=30)
    print("enqueue->started latency over %d jobs at %.0f/s: p50 %d ms, p99 %d ms, max %d ms"
          % (len(lat), rate, pct(lat, 50), pct(lat, 99), max(lat)))


if __name__ == "__main__":
    main()
