#!/usr/bin/env python3
"""A producer's callback endpoint for end-to-end tests.

Accepts POSTs of dreamd events and verifies them the way a real receiver should:
`X-Dream-Signature: t=<unix>,v1=<hex>` where v1 is the HMAC-SHA256, keyed by the shared secret,
of "<t>.<body>"; the timestamp must be within --tolerance seconds of now (replays are refused).
It also records whether any header carried the secret (none may: the callback URL is the job's,
not the operator's). Each delivery is recorded:
  GET /_received  -> [{"ok": bool, "sig_ok": bool, "fresh": bool, "secret_seen": bool,
                       "authorization": bool, "seq": n, "status": s, "jobId": id,
                       "attempt": a}, ...]
  --fail-first N  -> answer 503 to the first N deliveries of every (jobId, seq)
  --tolerance S   -> accepted age (either side) of the signature's timestamp, default 300
Prints PORT=<n> first when started with --port 0.
"""
import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
received = []
attempts = {}


def verify(header, secret, body, tolerance, now=None):
    """(signature valid, timestamp within tolerance) of an X-Dream-Signature value."""
    parts = [p.split("=", 1) for p in (header or "").split(",") if "=" in p]
    ts = [v for k, v in parts if k == "t"]
    sigs = [v for k, v in parts if k == "v1"]
    if len(ts) != 1 or not ts[0].isdigit() or not sigs:
        return False, False
    t = int(ts[0])
    want = hmac.new(secret.encode(), ts[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    ok = any(hmac.compare_digest(s, want) for s in sigs)
    now = time.time() if now is None else now
    return ok, abs(now - t) <= tolerance


def make_handler(secret, fail_first, tolerance):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body=b"{}"):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    body = json.dumps(received).encode()
                self.reply(200, body)
            else:
                self.reply(404)

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            sig_ok, fresh = verify(self.headers.get("X-Dream-Signature"), secret, body,
                                   tolerance)
            secret_seen = any(secret in k or secret in v for k, v in self.headers.items())
            ok = sig_ok and fresh and not secret_seen
            try:
                ev = json.loads(body)
            except ValueError:
                ev, ok = {}, False
            key = (ev.get("jobId"), ev.get("seq"))
            with lock:
                attempts[key] = attempts.get(key, 0) + 1
                a = attempts[key]
                received.append({"ok": ok, "sig_ok": sig_ok, "fresh": fresh,
                                 "secret_seen": secret_seen,
                                 "authorization": "Authorization" in self.headers,
                                 "seq": ev.get("seq"), "status": ev.get("status"),
                                 "jobId": ev.get("jobId"), "attempt": a})
            if a <= fail_first:
                self.reply(503)
            else:
                self.reply(200 if ok else 401)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--tolerance", type=int, default=300)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port),
                              make_handler(a.secret, a.fail_first, a.tolerance))
    print("PORT=%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
