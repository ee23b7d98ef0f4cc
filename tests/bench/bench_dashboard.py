#!/usr/bin/env python3
"""Dashboard benchmark driver (see bench_dashboard.sh): the replica's RSS running N jobs without
and with live SSE clients, and the events each client received."""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_engine import Resp, enqueue  # noqa: E402

TOKEN = "bench-dashboard-token-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def wait_http(port, deadline):
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dreamd did not answer /healthz")


class Client(threading.Thread):
    def __init__(self, port, after):
        super().__init__(daemon=True)
        self.port, self.after, self.ids, self.stop = port, after, [], False

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port)
        c.request("GET", "/api/events?after=" + self.after,
                  headers={"Authorization": "Bearer " + TOKEN})
        r = c.getresponse()
        while not self.stop:
            line = r.fp.readline()
            if not line:
                break
            if line.startswith(b"id: "):
                self.ids.append(line[4:].strip().decode())


def last_id(r):
    x = r.call("XREVRANGE", "dream:events", "+", "-", "COUNT", "1")
    return x[0][0] if x else "0-0"


def run(dreamd, rport, tmp, jobs, clients, stage_ms, label):
    r = Resp(rport)
    r.call("FLUSHALL")
    aport = free_port()
    env = dict(os.environ, DREAM_ADMIN_TOKEN=TOKEN)
    log = open(os.path.join(tmp, label + ".log"), "w")
    p = subprocess.Popen([dreamd, "--redis-url=redis://127.0.0.1:%d/0" % rport,
                          "--consumer=bench", "--stages=test", "--test-stage-ms=%d" % stage_ms,
                          "--max-jobs=64", "--dashboard", "--admin-addr=127.0.0.1:%d" % aport,
                          "--log-level=warn", "--data-dir=" + tmp],
                         env=env, stdout=log, stderr=log)
    try:
        wait_http(aport, time.time() + 20)
        while not r.call("EXISTS", "dream:worker:bench"):
            time.sleep(0.02)
        after = last_id(r)
        cl = [Client(aport, after) for _ in range(clients)]
        for c in cl:
            c.start()
        t0 = time.time()
        enqueue(r, jobs, label)
        while True:
            done = sum(1 for i in range(jobs)
                       if r.call("HGET", "dream:job:%s-%d" % (label, i), "status") == "complete")
            if done == jobs:
                break
            time.sleep(0.1)
        elapsed = time.time() - t0
        want = len(r.call("XRANGE", "dream:events", "(" + after, "+"))
        deadline = time.time() + 30
        while any(len(c.ids) < want for c in cl) and time.time() < deadline:
            time.sleep(0.05)
        m = rss(p.pid)
        got = [len(c.ids) for c in cl]
        for c in cl:
            c.stop = True
        return m, elapsed, want, got
    finally:
        p.terminate()
        p.wait(30)
        log.close()


def main():
    dreamd, rport, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    jobs, clients, stage_ms = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    base, t_base, n_base, _ = run(dreamd, rport, tmp, jobs, 0, stage_ms, "base")
    live, t_live, n_live, got = run(dreamd, rport, tmp, jobs, clients, stage_ms, "live")
    print("dashboard bench: %d jobs, --stages=test --test-stage-ms=%d, release build"
          % (jobs, stage_ms))
    print("  without clients: VmRSS %6d kB  VmHWM %6d kB  (%.2f s, %d events)"
          % (base["VmRSS"], base["VmHWM"], t_base, n_base))
    print("  with %2d clients: VmRSS %6d kB  VmHWM %6d kB  (%.2f s, %d events)"
          % (clients, live["VmRSS"], live["VmHWM"], t_live, n_live))
    print("  ratio with/without: VmRSS %.3f  VmHWM %.3f"
          % (live["VmRSS"] / base["VmRSS"], live["VmHWM"] / base["VmHWM"]))
    print("  events received per client: %s (of %d: %s)"
          % (",".join(map(str, got)), n_live,
             "all" if all(g == n_live for g in got) else "MISSING"))


if __name__ == "__main__":
    main()
