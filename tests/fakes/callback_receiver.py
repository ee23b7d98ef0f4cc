#!/usr/bin/env python3
"""A producer's callback endpoint for end-to-end tests.

Accepts POSTs of dreamd events, checks `Authorization: Bearer <secret>` and
`X-Dream-Signature: sha256=<hex HMAC-SHA256 of the body>`, and records each delivery.
  GET /_received  -> [{"ok": bool, "seq": n, "status": s, "jobId": id, "attempt": a}, ...]
  --fail-first N  -> answer 503 to the first N deliveries of every (jobId, seq)
Prints PORT=<n> first when started with --port 0.
"""
import argparse
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
received = []
attempts = {}


def make_handler(secret, fail_first):
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
            want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            ok = (self.headers.get("Authorization") == "Bearer " + secret and
                  hmac.compare_digest(self.headers.get("X-Dream-Signature", ""), want))
            try:
                ev = json.loads(body)
            except ValueError:
                ev, ok = {}, False
            key = (ev.get("jobId"), ev.get("seq"))
            with lock:
                attempts[key] = attempts.get(key, 0) + 1
                a = attempts[key]
                received.append({"ok": ok, "seq": ev.get("seq"), "status": ev.get("status"),
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
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(a.secret, a.fail_first))
    print("PORT=%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
