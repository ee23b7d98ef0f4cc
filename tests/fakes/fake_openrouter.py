#!/usr/bin/env python3
"""fake_openrouter: a deterministic stand-in for OpenRouter's API, for tests and benchmarks.

Python 3 standard library only. HTTP/1.1 with keep-alive (ThreadingHTTPServer, a thread per
connection). It answers the real shapes:

  POST /api/v1/chat/completions   streamed (SSE, with ": OPENROUTER PROCESSING" comments, one
                                  chunk per piece of content, a finish chunk, a usage chunk with
                                  empty choices, then "data: [DONE]") or not (one JSON object)
  GET  /api/v1/models             {"data":[{"id","pricing":{"prompt","completion"}}]} in USD per
                                  token as strings (plus a router entry priced "-1")

Replies are deterministic: a request whose messages name a target path (a line "Path: <path>",
"Path: `<path>`" or "Target path: `<path>`"; the regex is --path-regex) gets valid code for that
file type (.ts route, .tsx component, .sql migration, .json, .md, anything else TypeScript).
A request without a path gets --default-reply (for a request with response_format: a JSON
review verdict, --review-reply). Usage: prompt_tokens = ceil(bytes of all message contents / 4),
completion_tokens = ceil(bytes of content / 4); cost at the built-in prices (switch off with
--no-cost or POST /_fake/config {"cost": false}, so the client must price from its table). A
reply longer than max_tokens is truncated and ends with finish_reason "length", like a model.

Misbehaviour, per request, selected either by a marker in the request's messages or by a script:
  marker   [[fake:BEHAVIOUR]]  [[fake:BEHAVIOUR:PARAM]]  [[fake:BEHAVIOUR:PARAM*TIMES]]
           with *TIMES only the first TIMES requests carrying that exact marker misbehave
           (e.g. [[fake:429:1*2]]: two 429s with Retry-After 1, then normal answers).
  script   POST /_fake/script  [{"match": "substring or empty for any", "behaviour": "429",
           "param": "1", "times": 2}, ...]  (replaces the script; ?append=1 appends). Rules are
           tried in order; a rule with times left (or no times) whose match is in the messages
           applies and uses one time.
Behaviours (PARAM in brackets):
  ok                 normal answer
  wait[ms]           wait ms (default 1000), then answer normally
  429[secs]          429 with Retry-After: secs (default 1) and X-RateLimit-* headers
  retry-date[secs]   429 with Retry-After as an HTTP date secs ahead (default 2)
  408 500 502 503 504 400 401 403   that status with an OpenRouter error body
  402-credits        402 limit_source openrouter_credits (insufficient credits)
  402-weight         402 reason weight_exceeds_budget, limit_source openrouter_credits
  402-key            402 limit_source openrouter_key_limit
  402-inflight[secs] 402 reason in_flight_budget_exhausted, limit_source
                     openrouter_in_flight_budget, Retry-After secs (default 1)
  error200           a 200 whose stream carries a chunk with an error object and finish_reason
                     "error" (non-streamed: choices[0].error + finish_reason "error")
  error-chunk        streamed: a chunk with only a top-level error object (no finish_reason)
  cut[n]             stream cut after n content chunks (default half), connection dropped
                     mid-body (non-streamed: Content-Length promised, half the body sent)
  length             finish_reason "length" (content cut)
  invalid            invalid code for the path's type on the first request for that path,
                     valid on later ones (to test repair)
  invalid-always     invalid code every time
  huge[bytes]        a reply of bytes bytes of content (default 8 MiB), ignoring max_tokens
  slow[ms]           streamed: the normal reply, one content chunk every ms (default 100)
  drip[ms]           streamed: one small chunk every ms (default 500) for up to 120 s
                     (non-streamed: headers, then one body byte every ms)
  garbage            200 with bytes that are not JSON (streamed: "data: {not json")
  empty              an empty reply content
  fenced             the valid code wrapped in a ``` fence
  nocost             usage without cost
  reply[text]        reply with text as content (script rules may give "content" instead)
Control endpoints:
  GET /_fake/requests  recorded requests (newest last, at most 2000): n, path, model, stream,
                       max_tokens, temperature, behaviour, headers, body, client_port (the
                       client's TCP port: equal ports mean a reused connection)
  GET /_fake/stats     {"total", "chat", "models", "in_flight", "peak_in_flight",
                        "per_path": {path: n}, "per_behaviour": {b: n}}
  POST /_fake/reset    clears records, counts, peak, script and marker counters
  POST /_fake/config   {"cost": bool, "latency_ms": n, "path_regex": str, "chunk_bytes": n}
Command line: --port N (0: pick one; the first stdout line is then PORT=<n>), --host,
--latency-ms (before every answer; streamed answers send headers and a comment first),
--chunk-bytes, --no-cost, --path-regex, --default-reply, --review-reply, --quiet.
"""

import argparse
import email.utils
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRICES = {  # USD per million tokens (prompt, completion)
    "anthropic/claude-sonnet-4.5": (3.0, 15.0),
    "anthropic/claude-opus-4.5": (5.0, 25.0),
    "anthropic/claude-haiku-4.5": (1.0, 5.0),
    "openai/gpt-4o": (2.5, 10.0),
    "openai/gpt-4o-mini": (0.15, 0.6),
    "google/gemini-2.5-pro-preview": (1.25, 10.0),
}
DEFAULT_PRICE = (3.0, 15.0)
MARKER_RE = re.compile(r"\[\[fake:([a-z0-9-]+)(?::([^\]*]*))?(?:\*(\d+))?\]\]")
DEFAULT_PATH_RE = r"^(?:Target path|Path|File):\s*`?([^`\s]+)`?\s*$"
MAX_RECORDS = 2000


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.cost = not args.no_cost
        self.latency_ms = args.latency_ms
        self.chunk_bytes = args.chunk_bytes
        self.path_re = re.compile(args.path_regex, re.M)
        self.default_reply = args.default_reply
        self.review_reply = args.review_reply
        self.quiet = args.quiet
        self.reset()

    def reset(self):
        self.records = []
        self.total = 0
        self.chat = 0
        self.models = 0
        self.in_flight = 0
        self.peak = 0
        self.per_path = {}
        self.per_behaviour = {}
        self.marker_counts = {}
        self.rules = []
        self.seq = 0


STATE = None


def slug_of(path):
    base = path.rsplit("/", 1)[-1].split(".", 1)[0]
    s = re.sub(r"[^a-zA-Z0-9]+", "-", base).strip("-").lower()
    return s or "item"


def camel(slug):
    parts = [p for p in re.split(r"[^a-zA-Z0-9]+", slug) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Item"
    if name[0].isdigit():
        name = "C" + name
    return name


def snake(slug):
    s = re.sub(r"[^a-z0-9]+", "_", slug.lower()).strip("_") or "item"
    if s[0].isdigit():
        s = "t_" + s
    return s


def valid_code(path):
    slug = slug_of(path)
    if path.endswith(".tsx") or path.endswith(".jsx"):
        name = camel(slug)
        return (
            "import { useState } from 'react';\n\n"
            f"export interface {name}Props {{\n  title?: string;\n}}\n\n"
            f"export function {name}({{ title = '{slug}' }}: {name}Props) {{\n"
            "  const [count, setCount] = useState(0);\n"
            "  return (\n"
            f"    <section className=\"{slug}\">\n"
            "      <h2>{title}</h2>\n"
            "      <button type=\"button\" onClick={() => setCount(count + 1)}>\n"
            "        Clicked {count} times\n"
            "      </button>\n"
            "    </section>\n"
            "  );\n}\n\n"
            f"export default {name};\n"
        )
    if path.endswith(".sql"):
        t = snake(slug)
        return (
            f"-- Migration for {path}\n"
            f"CREATE TABLE IF NOT EXISTS {t} (\n"
            "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
            "  name TEXT NOT NULL,\n"
            "  created_at TEXT NOT NULL DEFAULT (datetime('now'))\n"
            ");\n"
            f"CREATE INDEX IF NOT EXISTS idx_{t}_name ON {t} (name);\n"
        )
    if path.endswith(".json"):
        return json.dumps({"name": slug, "generated": True, "path": path}, indent=2) + "\n"
    if path.endswith(".md"):
        return f"# {slug}\n\nGenerated for `{path}`.\n"
    if path.endswith(".js"):
        return f"export function {camel(slug)}() {{\n  return '{slug}';\n}}\n"
    return (
        "import { Hono } from 'hono';\n\n"
        "const app = new Hono();\n\n"
        f"app.get('/{slug}', (c) => c.json({{ ok: true, path: '{path}' }}));\n\n"
        f"app.post('/{slug}', async (c) => {{\n"
        "  const body = await c.req.json<{ name?: string }>();\n"
        "  return c.json({ ok: true, name: body.name ?? null }, 201);\n"
        "});\n\n"
        "export default app;\n"
    )


def invalid_code(path):
    if path.endswith(".sql"):
        return "CREATE TABLE (\n  id INTEGER PRIMARY KEY,,\n;\n"
    if path.endswith(".json"):
        return '{"name": "broken", "generated": \n'
    if path.endswith(".tsx") or path.endswith(".jsx"):
        return "export function Broken() {\n  return <div><span></div>;\n"
    return "export const broken = {;\nfunction (\n"


def tokens_of(nbytes):
    return (nbytes + 3) // 4


def error_body(code, message, metadata=None):
    e = {"code": code, "message": message}
    if metadata is not None:
        e["metadata"] = metadata
    return json.dumps({"error": e}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openrouter/1"

    def log_message(self, fmt, *args):
        if not STATE.quiet:
            sys.stderr.write("fake_openrouter: " + (fmt % args) + "\n")

    # --- plumbing -------------------------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, extra=None):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- control --------------------------------------------------------------------------
    def do_GET(self):
        if self.path.startswith("/_fake/requests"):
            with STATE.lock:
                recs = list(STATE.records)
            return self.send_json(200, recs)
        if self.path.startswith("/_fake/stats"):
            with STATE.lock:
                st = {
                    "total": STATE.total,
                    "chat": STATE.chat,
                    "models": STATE.models,
                    "in_flight": STATE.in_flight,
                    "peak_in_flight": STATE.peak,
                    "per_path": dict(STATE.per_path),
                    "per_behaviour": dict(STATE.per_behaviour),
                }
            return self.send_json(200, st)
        if self.path.rstrip("/") in ("/api/v1/models", "/v1/models", "/models"):
            with STATE.lock:
                STATE.total += 1
                STATE.models += 1
            data = []
            for mid, (p, c) in sorted(PRICES.items()):
                data.append({
                    "id": mid,
                    "name": mid,
                    "context_length": 200000,
                    "pricing": {"prompt": "%.10g" % (p / 1e6), "completion": "%.10g" % (c / 1e6),
                                "request": "0", "image": "0"},
                })
            data.append({"id": "openrouter/auto", "name": "Auto Router",
                         "pricing": {"prompt": "-1", "completion": "-1"}})
            return self.send_json(200, {"data": data})
        self.send_json(404, error_body(404, "not found"))

    def do_POST(self):
        if self.path.startswith("/_fake/"):
            return self.control()
        if self.path.rstrip("/") in ("/api/v1/chat/completions", "/v1/chat/completions",
                                     "/chat/completions"):
            return self.chat_entry()
        self.read_body()
        self.send_json(404, error_body(404, "not found"))

    def control(self):
        body = self.read_body()
        try:
            obj = json.loads(body or b"null")
        except ValueError:
            return self.send_json(400, error_body(400, "control body is not JSON"))
        if self.path.startswith("/_fake/reset"):
            with STATE.lock:
                STATE.reset()
            return self.send_json(200, {"ok": True})
        if self.path.startswith("/_fake/script"):
            if not isinstance(obj, list):
                return self.send_json(400, error_body(400, "script must be a JSON list"))
            rules = []
            for r in obj:
                if not isinstance(r, dict) or "behaviour" not in r:
                    return self.send_json(400, error_body(400, "each rule needs a behaviour"))
                rules.append({"match": r.get("match") or "", "behaviour": r["behaviour"],
                              "param": None if r.get("param") is None else str(r["param"]),
                              "content": r.get("content"), "times": r.get("times")})
            with STATE.lock:
                if "append=1" in self.path:
                    STATE.rules.extend(rules)
                else:
                    STATE.rules = rules
            return self.send_json(200, {"ok": True, "rules": len(rules)})
        if self.path.startswith("/_fake/config"):
            if not isinstance(obj, dict):
                return self.send_json(400, error_body(400, "config must be an object"))
            with STATE.lock:
                if "cost" in obj:
                    STATE.cost = bool(obj["cost"])
                if "latency_ms" in obj:
                    STATE.latency_ms = int(obj["latency_ms"])
                if "chunk_bytes" in obj:
                    STATE.chunk_bytes = max(1, int(obj["chunk_bytes"]))
                if "path_regex" in obj:
                    STATE.path_re = re.compile(obj["path_regex"], re.M)
                if "review_reply" in obj:
                    STATE.review_reply = str(obj["review_reply"])
                if "default_reply" in obj:
                    STATE.default_reply = str(obj["default_reply"])
            return self.send_json(200, {"ok": True})
        self.send_json(404, error_body(404, "unknown control endpoint"))

    # --- chat -----------------------------------------------------------------------------
    def chat_entry(self):
        with STATE.lock:
            STATE.total += 1
            STATE.chat += 1
            STATE.in_flight += 1
            STATE.peak = max(STATE.peak, STATE.in_flight)
        try:
            self.chat()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with STATE.lock:
                STATE.in_flight -= 1

    def pick_behaviour(self, text):
        """Returns (behaviour, param, content) for this request; called under the lock."""
        for m in MARKER_RE.finditer(text):
            name, param, times = m.group(1), m.group(2), m.group(3)
            if times is not None:
                key = m.group(0)
                used = STATE.marker_counts.get(key, 0)
                if used >= int(times):
                    continue
                STATE.marker_counts[key] = used + 1
            return name, param, None
        for r in STATE.rules:
            if r["times"] is not None and r["times"] <= 0:
                continue
            if r["match"] and r["match"] not in text:
                continue
            if r["times"] is not None:
                r["times"] -= 1
            return r["behaviour"], r["param"], r["content"]
        return "ok", None, None

    def chat(self):
        raw = self.read_body()
        try:
            req = json.loads(raw)
            messages = req["messages"]
            text = "\n".join(str(m.get("content") or "") for m in messages)
        except (ValueError, KeyError, TypeError, AttributeError):
            return self.send_json(400, error_body(400, "invalid request body"))
        model = req.get("model") or "openrouter/auto"
        stream = bool(req.get("stream"))
        max_tokens = req.get("max_tokens")
        path = None
        for m in reversed(messages):  # the user message names the path; the system may too
            found = STATE.path_re.search(str(m.get("content") or ""))
            if found:
                path = found.group(1)
                break
        with STATE.lock:
            behaviour, param, content = self.pick_behaviour(text)
            STATE.seq += 1
            n = STATE.seq
            key = path or "-"
            STATE.per_path[key] = STATE.per_path.get(key, 0) + 1
            path_count = STATE.per_path[key]
            STATE.per_behaviour[behaviour] = STATE.per_behaviour.get(behaviour, 0) + 1
            STATE.records.append({
                "n": n, "path": path, "model": model, "stream": stream,
                "max_tokens": max_tokens, "temperature": req.get("temperature"),
                "behaviour": behaviour, "headers": dict(self.headers.items()), "body": req,
                "client_port": self.client_address[1],
            })
            del STATE.records[:-MAX_RECORDS]
            latency = STATE.latency_ms
            cost_on = STATE.cost
        if not isinstance(max_tokens, int) or max_tokens <= 0:
            return self.send_json(400, error_body(400, "max_tokens must be a positive integer"))
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            return self.send_json(401, error_body(401, "No auth credentials found"))

        if behaviour == "wait":
            time.sleep(int(param or 1000) / 1000.0)
            behaviour = "ok"
        status_err = self.status_error(behaviour, param)
        if status_err is not None:
            if latency:
                time.sleep(latency / 1000.0)
            status, body, extra = status_err
            return self.send_json(status, body, extra)

        # The content of a normal (or misbehaving 200) answer.
        if behaviour == "reply":
            reply = content if content is not None else (param or "")
        elif behaviour == "empty":
            reply = ""
        elif behaviour == "huge":
            size = int(param or 8 * 1024 * 1024)
            reply = ("x" * 1023 + "\n") * (size // 1024) + "x" * (size % 1024)
        elif path is None:
            reply = STATE.review_reply if req.get("response_format") else STATE.default_reply
        elif behaviour == "invalid-always" or (behaviour == "invalid" and path_count == 1):
            reply = invalid_code(path)
        else:
            reply = valid_code(path)
        if behaviour == "fenced":
            lang = (path or "x.ts").rsplit(".", 1)[-1]
            reply = "```" + lang + "\n" + reply + "```\n"
        finish = "stop"
        if behaviour == "length":
            reply = reply[: max(1, len(reply) // 2)]
            finish = "length"
        elif behaviour != "huge" and tokens_of(len(reply.encode())) > max_tokens:
            reply = reply.encode()[: max_tokens * 4].decode("utf-8", "ignore")
            finish = "length"
        prompt_tokens = tokens_of(len(text.encode()))
        completion_tokens = tokens_of(len(reply.encode()))
        pp, cp = PRICES.get(model, DEFAULT_PRICE)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if cost_on and behaviour != "nocost":
            usage["cost"] = round((prompt_tokens * pp + completion_tokens * cp) / 1e6, 10)
        gen_id = "gen-fake-%d" % n
        ctx = {"id": gen_id, "model": model, "usage": usage, "reply": reply, "finish": finish,
               "behaviour": behaviour, "param": param, "latency": latency}
        if stream:
            self.answer_stream(ctx)
        else:
            self.answer_plain(ctx)

    def status_error(self, behaviour, param):
        plain = {
            "400": (400, "Bad Request: invalid parameter"),
            "401": (401, "No auth credentials found"),
            "403": (403, "Key is forbidden from this model"),
            "408": (408, "Request timed out"),
            "500": (500, "Internal Server Error"),
            "502": (502, "Provider returned an invalid response"),
            "503": (503, "No available provider for this request"),
            "504": (504, "Gateway timeout"),
        }
        if behaviour in plain:
            code, msg = plain[behaviour]
            return code, error_body(code, msg), None
        if behaviour == "429":
            secs = param or "1"
            return 429, error_body(429, "Rate limit exceeded",
                                   {"error_type": "rate_limit_exceeded"}), {
                "Retry-After": secs, "X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time() * 1000) + int(float(secs) * 1000))}
        if behaviour == "retry-date":
            when = time.time() + float(param or 2)
            return 429, error_body(429, "Rate limit exceeded"), {
                "Retry-After": email.utils.formatdate(when, usegmt=True)}
        if behaviour == "402-credits":
            return 402, error_body(402, "Insufficient credits. Add more using "
                                   "https://openrouter.ai/credits",
                                   {"limit_source": "openrouter_credits",
                                    "remedy_hint": "Add credits."}), None
        if behaviour == "402-weight":
            return 402, error_body(402, "This request's estimated cost exceeds your in-flight "
                                   "budget.",
                                   {"reason": "weight_exceeds_budget",
                                    "limit_source": "openrouter_credits",
                                    "remedy_hint": "Lower max_tokens or add credits."}), None
        if behaviour == "402-key":
            return 402, error_body(402, "Key limit exceeded",
                                   {"limit_source": "openrouter_key_limit",
                                    "remedy_hint": "Raise the key's limit."}), None
        if behaviour == "402-inflight":
            return 402, error_body(402, "This request would exceed your available credits given "
                                   "your current in-flight requests.",
                                   {"reason": "in_flight_budget_exhausted",
                                    "limit_source": "openrouter_in_flight_budget",
                                    "remedy_hint": "Retry after Retry-After."}), {
                "Retry-After": param or "1"}
        return None

    def answer_plain(self, c):
        if c["latency"]:
            time.sleep(c["latency"] / 1000.0)
        b = c["behaviour"]
        if b == "garbage":
            data = b"<html>upstream exploded {\"choices\": [ not json"
            return self.send_json(200, data)
        message = {"role": "assistant", "content": c["reply"]}
        choice = {"index": 0, "message": message, "finish_reason": c["finish"],
                  "native_finish_reason": c["finish"], "logprobs": None}
        if b == "error200":
            choice["finish_reason"] = "error"
            choice["error"] = {"code": 502, "message": "Upstream provider error mid-generation"}
        obj = {"id": c["id"], "provider": "Fake", "model": c["model"], "object": "chat.completion",
               "created": int(time.time()), "choices": [choice], "usage": c["usage"]}
        data = json.dumps(obj).encode()
        if b == "cut":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if b == "drip":
            interval = int(c["param"] or 500) / 1000.0
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            deadline = time.time() + 120
            for i in range(len(data)):
                if time.time() > deadline:
                    break
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(interval)
            self.close_connection = True
            return
        self.send_json(200, data, {"X-Generation-Id": c["id"]})

    def sse_chunk(self, c, delta, finish=None, extra=None):
        obj = {"id": c["id"], "provider": "Fake", "model": c["model"],
               "object": "chat.completion.chunk", "created": int(time.time()),
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                            "native_finish_reason": finish, "logprobs": None}]}
        if extra:
            obj.update(extra)
        return "data: " + json.dumps(obj) + "\n\n"

    def answer_stream(self, c):
        b = c["behaviour"]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Generation-Id", c["id"])
        self.end_headers()
        self.chunk(": OPENROUTER PROCESSING\n\n")
        if c["latency"]:
            time.sleep(c["latency"] / 1000.0)
            self.chunk(": OPENROUTER PROCESSING\n\n")
        if b == "garbage":
            self.chunk("data: {not json at all\n\n")
            self.chunk("data: [DONE]\n\n")
            return self.end_chunks()
        reply = c["reply"]
        size = STATE.chunk_bytes
        if b == "huge":
            size = 64 * 1024
        pieces = [reply[i:i + size] for i in range(0, len(reply), size)] or [""]
        if b == "drip":
            interval = int(c["param"] or 500) / 1000.0
            deadline = time.time() + 120
            i = 0
            while time.time() < deadline:
                self.chunk(self.sse_chunk(c, {"role": "assistant", "content": "."}))
                i += 1
                time.sleep(interval)
            self.close_connection = True
            return
        cut_after = None
        if b == "cut":
            cut_after = int(c["param"]) if c["param"] else len(pieces) // 2
        out = []
        for i, piece in enumerate(pieces):
            if cut_after is not None and i >= cut_after:
                self.wfile.write(b"".join(out))
                self.wfile.flush()
                # Drop the connection in the middle of the chunked body.
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            ev = self.sse_chunk(c, delta).encode()
            out.append(b"%x\r\n%s\r\n" % (len(ev), ev))
            if b == "slow":
                self.wfile.write(b"".join(out))
                self.wfile.flush()
                out = []
                time.sleep(int(c["param"] or 100) / 1000.0)
            if len(out) >= 16:
                self.wfile.write(b"".join(out))
                self.wfile.flush()
                out = []
            if b == "error200" and i == 0:
                break
            if b == "error-chunk" and i == 0:
                break
        if out:
            self.wfile.write(b"".join(out))
            self.wfile.flush()
        if b == "error200":
            err = {"error": {"code": 502, "message": "Upstream provider error mid-generation"}}
            self.chunk(self.sse_chunk(c, {"content": ""}, "error", err))
            self.chunk("data: [DONE]\n\n")
            return self.end_chunks()
        if b == "error-chunk":
            obj = {"id": c["id"], "object": "chat.completion.chunk", "model": c["model"],
                   "error": {"code": 429, "message": "Rate limit exceeded mid-stream"}}
            self.chunk("data: " + json.dumps(obj) + "\n\n")
            self.chunk("data: [DONE]\n\n")
            return self.end_chunks()
        self.chunk(self.sse_chunk(c, {}, c["finish"]))
        usage_chunk = {"id": c["id"], "provider": "Fake", "model": c["model"],
                       "object": "chat.completion.chunk", "created": int(time.time()),
                       "choices": [], "usage": c["usage"]}
        self.chunk("data: " + json.dumps(usage_chunk) + "\n\n")
        self.chunk("data: [DONE]\n\n")
        self.end_chunks()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def main():
    global STATE
    ap = argparse.ArgumentParser(description="fake OpenRouter API for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--chunk-bytes", type=int, default=64)
    ap.add_argument("--no-cost", action="store_true")
    ap.add_argument("--path-regex", default=DEFAULT_PATH_RE)
    ap.add_argument("--default-reply", default="OK")
    ap.add_argument("--review-reply",
                    default='{"decision":"PROCEED","risk":"low","summary":"fake review: no issues"}')
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    STATE = State(args)
    srv = Server((args.host, args.port), Handler)
    port = srv.server_address[1]
    print("PORT=%d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    srv.server_close()


if __name__ == "__main__":
    main()
