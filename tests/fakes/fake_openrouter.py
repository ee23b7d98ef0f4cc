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
A request without a path gets --default-reply (for a request with response_format, or whose
prompt says "Answer with one JSON object only": a JSON review verdict, --review-reply).

Repository-aware replies (the prompt is read as free text; every rule falls back to the generic
answer above; GET /_fake/requests shows what was chosen as "reply_kind"):
  route module     a .ts/.js/... path under routes/ or api/ (not a test) whose resource (the
                   file's name, less a .routes/-router suffix) has endpoints in the prompt
                   ("GET /todos", "PATCH /api/todos/{id}": method + path whose first segment after
                   an optional /api is the resource): one handler per endpoint, relative to the
                   mount ('/', '/:id'). Hono ("route:hono") when the prompt names Hono (new Hono,
                   from 'hono'), Express ("route:express") when it names Express (express.Router,
                   express()); when it names both, the one on a line that says "stack", else the
                   first named; when neither, Express for .js and Hono otherwise. Hono: `const
                   <resource> = new Hono();` ... `export default <resource>;`, without type
                   arguments (they fail on untyped modules). Express: `express.Router()`,
                   CommonJS (`module.exports = router;`) for .js/.cjs unless the prompt says ESM,
                   ES modules or "type": "module"; .ts: `export default router;`. Without
                   endpoints a Hono route is the generic answer (an Express one gets GET and POST
                   '/').
  component        .tsx/.jsx ("component"): a named export (and default export) of the component
                   named by the file (TodoList.tsx -> TodoList; todo-list.tsx -> TodoList); .jsx
                   without TypeScript.
  SQL migration    .sql ("migration:sql"): `ALTER TABLE <t> ADD COLUMN <c> TEXT;` when the path is
                   [<n>_]add_<c>_to_<t> or the Task line says "add a <c> column to <t>"; else
                   `CREATE TABLE IF NOT EXISTS <t>` where <t> comes from the path
                   ([<n>_]create_<t>), else the Task line ("<t> table ...", "table <t>"), else the
                   path's name without its number; with the columns of "<t> table with a, b, c"
                   when the prompt has that (id, *_id, *_at, done/is_* typed), else the generic
                   columns.
  Knex migration   a code file under migrations/ ("migration:knex"): `exports.up`/`exports.down`
                   (createTable/dropTableIfExists, or alterTable for an added column); .ts:
                   `export async function up(knex: Knex)`; ESM .js when the prompt says so.
  test file        *.test.*, *.spec.*, __tests__/ ("test:vitest", "test:jest", "test:node"): the
                   runner the prompt names (vitest, jest, node:test; else Vitest for TS, Jest
                   for JS) and an import of the module under test: a path in the prompt with the
                   same name, else ./<name> beside it (a test under tests/ imports
                   ../src/routes/<name>); Hono routes also get a request test.
  edit             the prompt carries the file's current content: a fenced block (``` or ~~~,
                   any length) whose heading (the nearest non-empty lines before it) names the
                   path, its file name, or says current/existing/original/base content, in a
                   prompt that asks for the whole/complete/entire/full file (or content). A
                   heading saying "previous", "validator" or "error" never counts; in a repair
                   ("Validator error", "A validator refused") or a revise ("Reviewer comments")
                   only a block headed as the base or original version counts, so their own
                   blocks (the model's last answer) are not taken for the file. The answer is
                   that content with additions:
                   - an entry ("edit:entry": it holds new Hono, express(), app.use( or .route('/'):
                     every route module the prompt names (a path under routes/, not a test, not
                     already imported) is imported after the last import/require and mounted
                     after the last existing mount (else before export default / module.exports):
                     Hono `import todos from './routes/todos';` + `app.route('/todos', todos);`,
                     Express CommonJS `const todosRouter = require('./routes/todos');` +
                     `app.use('/todos', todosRouter);` (ESM import when the file has no require).
                     The mount point is the one on a line naming the module and "mount"/
                     "mounted"/"mounts" (at|on|under) "/x" (e.g. "src/routes/todos.ts
                     default-exports a Hono app mounted at /todos"), else "/" + its resource.
                     The app variable is the one assigned new Hono/express(), else app.
                   - a barrel ("edit:barrel": index.* with export ... from lines): one
                     `export { Name } from './Name';` per component file (.tsx/.jsx) the prompt
                     names in the barrel's folder that it does not export yet, after its last
                     export.
                   - anything else ("edit:unchanged"): the content as it is. Usage: prompt_tokens = ceil(bytes of all message contents / 4),
completion_tokens = ceil(bytes of content / 4); cost at the built-in prices (switch off with
--no-cost or POST /_fake/config {"cost": false}, so the client must price from its table). A
reply longer than max_tokens is truncated and ends with finish_reason "length", like a model.

API modes (--api, or POST /_fake/config {"api": ...}):
  openrouter  (default) OpenRouter's shapes, as above.
  openai      OpenAI's: a request with any field OpenAI does not document (usage, provider,
              transforms...) is refused with OpenAI's 400 {"error":{"message":"Unrecognized
              request argument supplied: <field>","type":"invalid_request_error","param":null,
              "code":null}} (behaviour "unknown-field"); max_completion_tokens or max_tokens;
              a bearer key is required (OpenAI's 401 shape); no "provider" in replies, no
              usage.cost, and a stream carries usage only with stream_options.include_usage.
  llamacpp    like openai, but any field is accepted, no key is needed, and a stream ends
              without "data: [DONE]" (the body just ends after the finish chunk).
GET /models answers --models-status (or {"models_status": n}; default 200) to simulate an
unreachable list. It lists acme/listed-coder-1 (2/8 USD per million tokens), a model dreamd's
built-in table does not know.

Misbehaviour, per request, selected either by a marker in the request's messages or by a script:
  marker   [[fake:BEHAVIOUR]]  [[fake:BEHAVIOUR:PARAM]]  [[fake:BEHAVIOUR:PARAM*TIMES]]
           with *TIMES only the first TIMES requests carrying that exact marker misbehave
           (e.g. [[fake:429:1*2]]: two 429s with Retry-After 1, then normal answers).
  script   POST /_fake/script  [{"match": "substring or empty for any", "behaviour": "429",
           "param": "1", "times": 2}, ...]  (replaces the script; ?append=1 appends). Rules are
           tried in order; a rule with times left (or no times) whose match is in the messages
           applies and uses one time. More rule members:
             "path": "src/index.ts"   the rule applies only to requests whose target path
                                      matches this fnmatch pattern ("migrations/*.sql"); every
                                      prompt lists the change's files, so "match" cannot aim
                                      at one file
             "require": "text" or ["text", ...]   the prompt must contain every text (e.g. the
                                      current content of an edited file: "app.route('/users'");
                                      "behaviour" may then be omitted ("ok"). A request the rule
                                      applies to that lacks one is refused: its behaviour is
                                      "refused", its record's "refused" lists the missing texts
                                      (null otherwise), /_fake/stats "refused" counts them, and
                                      the answer is per "refuse":
             "refuse": "broken"       (default) invalid code for the path (fails validation)
                       "400"          HTTP 400 whose message names the missing texts
                       "blind"        the file written from scratch, as if it had no content
                                      (a valid file that loses what the base had)
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
  error200[code]     a 200 whose stream carries a chunk with an error object (code, default 502)
                     and finish_reason
                     "error" (non-streamed: choices[0].error + finish_reason "error")
  error-chunk[code]  streamed: a chunk with only a top-level error object (code, default 429; no
                     finish_reason)
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
  byok[usd]          usage.cost 0.0001 plus usage.cost_details.upstream_inference_cost usd
                     (default 0.002): a bring-your-own-key reply
  403-moderation     403 with error.metadata.reasons and flagged_input (OpenRouter moderation)
  403-budget         403 with LiteLLM's budget_exceeded error (string code "403")
  400-vllm           400 with vLLM's top-level {"object":"error","message",...}
  404-ollama         404 with Ollama's {"error":"<string>"}
  422-detail         422 with a FastAPI {"detail":"<string>"}
  usage-bomb[lit]    usage.cost written as the raw JSON number lit (default 1e999, which JSON
                     parsers read as infinity; also e.g. -5 or 1e400): numbers from the API
                     are data, not trust
  reply[text]        reply with text as content (script rules may give "content" instead)
  ts-missing-export  code files (not tests): the module without its default export (and its
                     exported functions/consts/classes made local), so the entry's import fails
                     the type-check ("Module has no default export"); ES module syntax only:
                     a CommonJS file comes back unchanged
  ts-bad-import[m]   code files: an import of m (default './does-not-exist'), used in an export
  ts-type-error      .ts/.tsx: adds `export const fakeCount: number = 'not a number';` (TS2322)
  drop-route         edits: the edited content without its first route registration (a mount
                     `.route('/...'` / `.use('/...'`, else a handler `.get('/...'`...): a removal
                     the edit guard must refuse; the import stays
  sql-dup-table[t]   .sql: `CREATE TABLE <t> (...)` without IF NOT EXISTS (default users) before
                     the normal migration, so replaying it after the base fails ("already exists")
  Each of these applies to its kind of file only; any other file gets the normal answer (a
  marker's *TIMES is used all the same). Markers are in every prompt of a job that carries the
  spec: to aim at one file use a script rule with "path".
Control endpoints:
  GET /_fake/requests  recorded requests (newest last, at most 2000): n, path, model, stream,
                       max_tokens, temperature, behaviour, headers, body, usage (the usage of
                       the answer, whether or not it was sent), api, client_port (the
                       client's TCP port: equal ports mean a reused connection), refused (the
                       texts a "require" rule missed, or null), reply_kind (what the answer was
                       made as: "route:hono", "edit:entry", ... or null: see above)
  GET /_fake/stats     {"total", "chat", "models", "in_flight", "peak_in_flight",
                        "per_path": {path: n}, "per_behaviour": {b: n}, "refused": n}
  POST /_fake/reset    clears records, counts, peak, script and marker counters
  POST /_fake/config   {"cost": bool, "latency_ms": n, "path_regex": str, "chunk_bytes": n}
Command line: --port N (0: pick one; the first stdout line is then PORT=<n>), --host,
--latency-ms (before every answer; streamed answers send headers and a comment first),
--chunk-bytes, --no-cost, --path-regex, --default-reply, --review-reply, --quiet.
"""

import argparse
import email.utils
import fnmatch
import json
import posixpath
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
    "google/gemini-2.5-pro": (1.25, 10.0),
    # Listed by GET /models only: dreamd's built-in table does not know it.
    "acme/listed-coder-1": (2.0, 8.0),
}
# OpenAI's documented chat-completions request fields: in --api openai mode any other field is
# refused with OpenAI's 400 ("Unrecognized request argument supplied: <name>").
OPENAI_FIELDS = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
    "stream", "stream_options", "stop", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "user", "seed", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "metadata", "store", "reasoning_effort", "modalities", "audio",
    "prediction", "service_tier", "web_search_options", "safety_identifier", "prompt_cache_key",
    "verbosity",
}
APIS = ("openrouter", "openai", "llamacpp")
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
        self.api = args.api
        self.models_status = args.models_status
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
        self.refused = 0


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


# --- repository-aware replies -------------------------------------------------------------
# Everything below reads the prompt as hostile, free-form text: it only looks for the patterns
# documented in the module docstring and falls back to the generic answers above.

CODE_EXTS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
TS_EXTS = (".ts", ".tsx", ".mts", ".cts")
ENDPOINT_RE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+`?(/[A-Za-z0-9_\-/:{}.]*)`?")
TEST_PATH_RE = re.compile(r"(?:\.(?:test|spec)\.[cm]?[jt]sx?$)|(?:^|/)__tests__/")
ROUTE_PATH_RE = re.compile(
    r"(?:(?<=^)|(?<=[\s`'\"(\[]))((?:[\w.-]+/)*routes?/[\w.-]+\.(?:ts|tsx|js|jsx|mjs|cjs|mts|cts))"
    r"(?![\w.])")
COMPONENT_EXTS = (".tsx", ".jsx")
FENCE_RE = re.compile(r"^(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                      re.M | re.S)
FILE_TOKEN_RE = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-][\w.-]*\.[A-Za-z]{1,5})(?![\w/-])")
WHOLE_FILE_RE = re.compile(r"(?i)\b(?:whole|complete|entire|full)\b[^\n]{0,60}\b(?:file|content)")
NOT_EDIT_RE = re.compile(r"(?i)validator refused|validator error|reviewer commented|"
                         r"reviewer comments")
REGISTRATION_RE = re.compile(r"\.(?:route|use)\(\s*['\"`]/")
HANDLER_RE = re.compile(r"\.(?:get|post|put|patch|delete|all)\(\s*['\"`]/")


def ext_of(path):
    base = path.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""


def stem_of(path):
    return path.rsplit("/", 1)[-1].split(".", 1)[0]


def ident(name):
    """A JavaScript identifier from a file or resource name: user-profiles -> userProfiles."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    if not parts:
        return "mod"
    s = parts[0][:1].lower() + parts[0][1:] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    return "r" + s if s[0].isdigit() else s


def component_name(path):
    base = stem_of(path)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", base):
        return base[:1].upper() + base[1:]
    return camel(slug_of(path))


def is_test_path(path):
    return bool(TEST_PATH_RE.search(path))


def is_route_path(path):
    return ext_of(path) in CODE_EXTS and bool(re.search(r"(?:^|/)(?:routes?|api)/", path)) \
        and not is_test_path(path)


def is_knex_migration(path):
    return ext_of(path) in CODE_EXTS and bool(re.search(r"(?:^|/)migrations?/", path))


def first_of(text, names):
    """Which of the regexes in names (a dict name -> regex) the text names: the only one found,
    else the one found on a line that mentions the stack, else the first found; None if none."""
    found = {n: re.search(rx, text) for n, rx in names.items()}
    hits = [n for n, m in found.items() if m]
    if len(hits) <= 1:
        return hits[0] if hits else None
    for line in text.splitlines():
        if re.search(r"(?i)\bstack\b", line):
            inline = [(re.search(names[n], line), n) for n in hits]
            inline = [(m.start(), n) for m, n in inline if m]
            if inline:
                return min(inline)[1]
    return min((found[n].start(), n) for n in hits)[1]


def http_framework(text, path):
    fw = first_of(text, {"hono": r"\bHono\b|new Hono|from ['\"]hono['\"]",
                         "express": r"\bExpress\b|express\.Router|express\(\)|"
                                    r"require\(['\"]express['\"]\)"})
    if fw:
        return fw
    return "express" if ext_of(path) in (".js", ".cjs", ".mjs", ".jsx") else "hono"


def test_runner(text, path):
    r = first_of(text, {"vitest": r"(?i)\bvitest\b", "jest": r"(?i)\bjest\b",
                        "node": r"node:test"})
    if r:
        return r
    return "vitest" if ext_of(path) in TS_EXTS else "jest"


def commonjs(text, path):
    e = ext_of(path)
    if e in TS_EXTS or e in (".mjs", ".jsx", ".tsx"):
        return False
    if e == ".cjs":
        return True
    if re.search(r"\bESM\b|ES modules|\"type\"\s*:\s*\"module\"", text):
        return False
    return True


def endpoints_for(text, resource):
    """The (method, sub-path) pairs the prompt lists for a resource: "GET /todos" -> ("get",
    "/"), "PATCH /api/todos/{id}" -> ("patch", "/:id"), in order, without repeats."""
    out = []
    want = {resource.lower(), resource.lower().replace("_", "-"), resource.lower().replace("-", "_")}
    for m in ENDPOINT_RE.finditer(text):
        segs = [s for s in m.group(2).rstrip(".:").split("/") if s]
        if segs and segs[0].lower() == "api":
            segs = segs[1:]
        if not segs or segs[0].lower() not in want:
            continue
        sub = "/" + "/".join(re.sub(r"^\{(\w+)\}$", r":\1", s) for s in segs[1:])
        pair = (m.group(1).lower(), sub or "/")
        if pair not in out:
            out.append(pair)
    return out


def route_resource(path):
    base = stem_of(path)
    return re.sub(r"[._-]?(?:routes?|router)$", "", base) or base


def hono_route(path, text, eps):
    name = ident(route_resource(path))
    out = ["import { Hono } from 'hono';", "", f"const {name} = new Hono();", ""]
    for method, sub in eps:
        has_id = ":" in sub
        param = re.search(r":(\w+)", sub).group(1) if has_id else None
        if method == "get" and not has_id:
            out.append(f"{name}.get('{sub}', (c) => c.json({{ {name}: [] as unknown[] }}));")
        elif method == "get":
            out.append(f"{name}.get('{sub}', (c) => c.json({{ {param}: c.req.param('{param}') }}));")
        elif method == "delete":
            out.append(f"{name}.delete('{sub}', (c) => c.body(null, 204));")
        else:
            status = ", 201" if method == "post" else ""
            idpart = f"{param}: c.req.param('{param}'), " if has_id else ""
            out += [f"{name}.{method}('{sub}', async (c) => {{",
                    "  const body = (await c.req.json()) as Record<string, unknown>;",
                    f"  return c.json({{ {idpart}...body }}{status});", "});"]
        out.append("")
    out.append(f"export default {name};")
    return "\n".join(out) + "\n"


def express_route(path, text, eps):
    name = ident(route_resource(path))
    cjs = commonjs(text, path)
    out = ["const express = require('express');" if cjs else "import express from 'express';",
           "", "const router = express.Router();", ""]
    for method, sub in eps:
        has_id = ":" in sub
        param = re.search(r":(\w+)", sub).group(1) if has_id else None
        if method == "get" and not has_id:
            body = f"  res.json({{ {name}: [] }});"
        elif method == "get":
            body = f"  res.json({{ {param}: req.params.{param} }});"
        elif method == "delete":
            body = "  res.status(204).end();"
        else:
            idpart = f"{param}: req.params.{param}, " if has_id else ""
            status = "res.status(201)." if method == "post" else "res."
            body = f"  {status}json({{ {idpart}...req.body }});"
        out += [f"router.{method}('{sub}', (req, res) => {{", body, "});", ""]
    out.append("module.exports = router;" if cjs else "export default router;")
    return "\n".join(out) + "\n"


def component_code(path):
    name = component_name(path)
    slug = slug_of(path)
    typed = ext_of(path) == ".tsx"
    props = f"{{ title = '{name}' }}: {name}Props" if typed else f"{{ title = '{name}' }}"
    head = (f"export interface {name}Props {{\n  title?: string;\n}}\n\n" if typed else "")
    return (
        "import { useState } from 'react';\n\n" + head +
        f"export function {name}({props}) {{\n"
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


NOT_TABLES = {"the", "a", "an", "new", "database", "migration", "one", "this", "sql", "each"}


def migration_target(path, text):
    """(table, column or None, columns): what a migration is about. An added column comes from
    the path (`add_<col>_to_<table>`) or the task ("add a <col> column to <table>"); a table from
    the path (`<n>_create_<table>`), else the task line ("<table> table", "table <table>"), else
    the path's name; columns from "<table> table with a, b, c"."""
    base = stem_of(path)
    rest = re.sub(r"^\d+[_-]+", "", base)
    task = re.search(r"(?im)^Task:.*$", text)
    task = task.group(0) if task else ""
    m = re.match(r"(?i)^add[_-]+(\w+?)[_-]+(?:column[_-]+)?to[_-]+(\w+)$", rest) or re.search(
        r"(?i)\badd(?:s|ing)?\s+(?:an?\s+|the\s+)?`?(\w+)`?\s+column\s+(?:to|on)\s+(?:the\s+)?"
        r"`?(\w+)`?", task)
    if m:
        return m.group(2).lower(), m.group(1).lower(), []
    m = re.match(r"(?i)^(?:create|add)[_-]+(?:table[_-]+)?(\w+?)(?:[_-]+table)?$", rest)
    table = snake(m.group(1)) if m else None
    if not table:
        for rx in (r"\b([A-Za-z_]\w*)\s+table\b", r"\btable\s+`?([A-Za-z_]\w*)"):
            t = re.search(rx, task)
            if t and t.group(1).lower() not in NOT_TABLES:
                table = t.group(1).lower()
                break
    if not table:
        # A numbered path keeps its name without the number (0002_todos -> todos).
        return snake(rest if rest != base and rest else slug_of(path)), None, []
    cols = []
    c = re.search(r"(?i)\b" + re.escape(table) + r"\b\s+table\s+(?:with|of|holding)\s+([^\n]+)",
                  text)
    if c:
        for w in re.split(r",|\band\b", c.group(1)):
            w = w.strip().strip("`").split(" ")[0]
            if re.fullmatch(r"[A-Za-z_]\w*", w) and w.lower() not in cols:
                cols.append(w.lower())
    return table, None, cols


def sql_column(col):
    if col == "id":
        return "id INTEGER PRIMARY KEY AUTOINCREMENT"
    if col.endswith("_id"):
        return f"{col} INTEGER NOT NULL"
    if col.endswith("_at"):
        return f"{col} TEXT NOT NULL DEFAULT (datetime('now'))"
    if col in ("done", "active", "enabled") or col.startswith("is_"):
        return f"{col} INTEGER NOT NULL DEFAULT 0"
    return f"{col} TEXT"


def sql_migration(path, text):
    table, column, cols = migration_target(path, text)
    if column:
        return f"-- Migration for {path}\nALTER TABLE {table} ADD COLUMN {column} TEXT;\n"
    if not cols:
        return valid_code_generic_sql(path, table)
    if "id" not in cols:
        cols.insert(0, "id")
    body = ",\n".join("  " + sql_column(c) for c in cols)
    return f"-- Migration for {path}\nCREATE TABLE IF NOT EXISTS {table} (\n{body}\n);\n"


def valid_code_generic_sql(path, t):
    return (
        f"-- Migration for {path}\n"
        f"CREATE TABLE IF NOT EXISTS {t} (\n"
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "  name TEXT NOT NULL,\n"
        "  created_at TEXT NOT NULL DEFAULT (datetime('now'))\n"
        ");\n"
        f"CREATE INDEX IF NOT EXISTS idx_{t}_name ON {t} (name);\n"
    )


def knex_column(col):
    if col == "id":
        return "    table.increments('id').primary();"
    if col.endswith("_id"):
        return f"    table.integer('{col}').notNullable();"
    if col.endswith("_at"):
        return f"    table.timestamp('{col}').notNullable().defaultTo(knex.fn.now());"
    if col in ("done", "active", "enabled") or col.startswith("is_"):
        return f"    table.boolean('{col}').notNullable().defaultTo(false);"
    return f"    table.string('{col}');"


def knex_migration(path, text):
    table, column, cols = migration_target(path, text)
    if column:
        up = [f"  return knex.schema.alterTable('{table}', (table) => {{",
              f"    table.string('{column}');", "  });"]
        down = [f"  return knex.schema.alterTable('{table}', (table) => {{",
                f"    table.dropColumn('{column}');", "  });"]
    else:
        cols = cols or ["id", "name", "created_at"]
        if "id" not in cols:
            cols.insert(0, "id")
        up = [f"  return knex.schema.createTable('{table}', (table) => {{"] + \
            [knex_column(c) for c in cols] + ["  });"]
        down = [f"  return knex.schema.dropTableIfExists('{table}');"]
    if ext_of(path) in TS_EXTS:
        return ("import type { Knex } from 'knex';\n\n"
                "export async function up(knex: Knex): Promise<void> {\n" +
                "\n".join(up).replace("  return ", "  await ", 1) + "\n}\n\n"
                "export async function down(knex: Knex): Promise<void> {\n" +
                "\n".join(down).replace("  return ", "  await ", 1) + "\n}\n")
    if not commonjs(text, path):
        return ("export function up(knex) {\n" + "\n".join(up) + "\n}\n\n"
                "export function down(knex) {\n" + "\n".join(down) + "\n}\n")
    return ("exports.up = function (knex) {\n" + "\n".join(up) + "\n};\n\n"
            "exports.down = function (knex) {\n" + "\n".join(down) + "\n};\n")


def relative_import(from_path, to_path):
    target = to_path.rsplit(".", 1)[0] if ext_of(to_path) in CODE_EXTS else to_path
    rel = posixpath.relpath(target, posixpath.dirname(from_path) or ".")
    return rel if rel.startswith(".") else "./" + rel


def test_code(path, text):
    module_stem = re.sub(r"\.(?:test|spec)$", "", path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    subject = None
    for m in re.finditer(r"[\w./-]+\.(?:ts|tsx|js|jsx|mjs|cjs)\b", text):
        p = m.group(0)
        if stem_of(p) == module_stem and not is_test_path(p) and p != path:
            subject = p
            break
    if subject is None:
        here = posixpath.dirname(path)
        if re.search(r"(?:^|/)(?:tests?|__tests__)$", here):
            subject = "src/routes/" + module_stem + (".js" if ext_of(path) == ".js" else ".ts")
        else:
            subject = posixpath.join(here, module_stem + ext_of(path))
    imp = relative_import(path, subject)
    component = ext_of(subject) in COMPONENT_EXTS
    name = component_name(subject) if component else ident(module_stem)
    runner = test_runner(text, path)
    what = f"{{ {name} }}" if component else name
    if runner == "jest" and commonjs(text, path):
        head = f"const {what} = require('{imp}');\n"
        head = head if not component else f"const {{ {name} }} = require('{imp}');\n"
        return (head + f"\ndescribe('{module_stem}', () => {{\n"
                f"  test('exports the module', () => {{\n    expect({name}).toBeDefined();\n"
                "  });\n});\n")
    if runner == "node":
        return ("import { test } from 'node:test';\nimport assert from 'node:assert/strict';\n"
                f"import {what} from '{imp}';\n\n"
                f"test('{module_stem} exports the module', () => {{\n"
                f"  assert.ok({name});\n}});\n")
    lib = "vitest" if runner == "vitest" else "@jest/globals"
    extra = ""
    if is_route_path(subject) and http_framework(text, subject) == "hono":
        extra = (f"\n  it('answers', async () => {{\n"
                 f"    const res = await {name}.request('/');\n"
                 "    expect(res.status).toBeLessThan(500);\n  });\n")
    return (f"import {{ describe, expect, it }} from '{lib}';\nimport {what} from '{imp}';\n\n"
            f"describe('{module_stem}', () => {{\n  it('exports the module', () => {{\n"
            f"    expect({name}).toBeDefined();\n  }});\n{extra}}});\n")


def fresh_code(path, text):
    """(kind, content) of a new file for path, in the stack the prompt names."""
    e = ext_of(path)
    if is_test_path(path) and e in CODE_EXTS:
        return "test:" + test_runner(text, path), test_code(path, text)
    if e == ".sql":
        return "migration:sql", sql_migration(path, text)
    if is_knex_migration(path):
        return "migration:knex", knex_migration(path, text)
    if e in COMPONENT_EXTS:
        return "component", component_code(path)
    if is_route_path(path):
        fw = http_framework(text, path)
        eps = endpoints_for(text, route_resource(path))
        if eps or fw == "express":
            eps = eps or [("get", "/"), ("post", "/")]
            return "route:" + fw, (express_route if fw == "express" else hono_route)(path, text,
                                                                                        eps)
    return "generic", valid_code(path)


# --- edits ----------------------------------------------------------------------------------

def current_content(path, text):
    """The file's current content when the prompt carries it: a fenced block whose heading (the
    nearest non-empty lines before it) names the path or says current/existing/original/base
    content (never "previous": that is a repair), in a prompt that asks for the whole file and is
    not a repair or a reviewer's revise. None otherwise."""
    if not WHOLE_FILE_RE.search(text):
        return None
    # In a repair or revise only a block headed as the base/original version counts (their own
    # blocks are headed "Previous content" / "Current content": the model's last answer).
    generic = r"(?i)\b(original|base)\b" if NOT_EDIT_RE.search(text) else \
        r"(?i)\b(current|existing|original|base)\b"
    base = path.rsplit("/", 1)[-1]
    found = None
    for m in FENCE_RE.finditer(text):
        before = text[max(0, m.start() - 400):m.start()].rstrip("\n").splitlines()[-3:]
        heading = "\n".join(l for l in before if l.strip())
        if re.search(r"(?i)previous|validator|error", heading):
            continue
        names = FILE_TOKEN_RE.findall(heading)
        target = [t for t in names if t == path or t == base]
        others = [t for t in names if t != path and t != base]
        # A block headed by another file (an excerpt of what this file imports) is not ours.
        if NOT_EDIT_RE.search(text) and not re.search(generic, heading):
            continue
        if target or (not others and re.search(generic, heading)):
            found = m.group("body")
    return found


def contract_mounts(text, edit_path):
    """Route modules the prompt wants mounted, {module path: mount point}: a line naming a
    routes/ module and "mount"/"mounted"/"mounts" ... "/at": that point; any other routes/
    module the prompt names: "/" + its resource."""
    mounts = {}
    for line in text.splitlines():
        paths = [p for p in ROUTE_PATH_RE.findall(line) if p != edit_path and not is_test_path(p)]
        if len(paths) != 1:
            continue
        # The first "/x" after the word (a slash inside a file path does not count).
        at = re.search(r"(?i)\bmount\w*\b.*?(?<![\w.-])(/[\w/:{}.-]*)", line)
        if at:
            mounts[paths[0]] = at.group(1).rstrip(".:") or "/"
    for p in ROUTE_PATH_RE.findall(text):
        if p != edit_path and not is_test_path(p) and p not in mounts:
            mounts[p] = "/" + route_resource(p)
    return mounts


def import_end(lines):
    """Index of the line that ends the last import (or require) statement at the top; -1."""
    end, i = -1, 0
    while i < len(lines):
        l = lines[i]
        if re.match(r"\s*import\b(?!\s*\()", l):
            j = i
            while j < len(lines) - 1 and not re.search(
                    r"(?:\bfrom\s*['\"][^'\"]+['\"]|^\s*import\s+['\"][^'\"]+['\"])\s*;?\s*$",
                    lines[j]):
                j += 1
            end, i = j, j + 1
            continue
        if re.match(r"\s*(?:const|let|var)\s+[\w{}\s,:]+=\s*require\(", l):
            end = i
        i += 1
    return end


def edit_entry(path, content, text):
    lines = content.split("\n")
    express = bool(re.search(r"express\(\)|\bapp\.use\(", content)) and "new Hono" not in content
    cjs = express and bool(re.search(r"\brequire\(", content))
    app = re.search(r"(?:const|let|var)\s+(\w+)\s*=\s*(?:new\s+Hono\b|express\(\))", content)
    app = app.group(1) if app else "app"
    imports, regs = [], []
    for mod, at in contract_mounts(text, path).items():
        rel = relative_import(path, mod)
        if re.search(r"['\"]" + re.escape(rel) + r"(?:\.[cm]?[jt]sx?)?['\"]", content):
            continue
        name = ident(route_resource(mod)) + ("Router" if express else "")
        while re.search(r"\b" + re.escape(name) + r"\b", content + "\n".join(imports)):
            name += "Routes"
        if cjs:
            imports.append(f"const {name} = require('{rel}');")
        else:
            imports.append(f"import {name} from '{rel}';")
        regs.append(f"{app}.use('{at}', {name});" if express else f"{app}.route('{at}', {name});")
    if not imports:
        return content
    end = import_end(lines)
    lines[end + 1:end + 1] = imports
    reg_rx = re.compile(r"^\s*" + re.escape(app) + (r"\.use\(" if express else r"\.route\("))
    last = max([i for i, l in enumerate(lines) if reg_rx.match(l)], default=-1)
    if last < 0:
        ex = [i for i, l in enumerate(lines)
              if re.match(r"\s*(?:export\s+default\b|module\.exports\b)", l)]
        last = (ex[0] - 1) if ex else len(lines) - 1
        while last >= 0 and not lines[last].strip() and ex:
            last -= 1
        if ex:
            regs.append("")
    lines[last + 1:last + 1] = regs
    return "\n".join(lines)


def edit_barrel(path, content, text):
    here = posixpath.dirname(path)
    adds = []
    for m in re.finditer(r"[\w./-]+\.(?:tsx|jsx|ts|js)\b", text):
        p = m.group(0)
        if posixpath.dirname(p) != here or p == path or is_test_path(p):
            continue
        if ext_of(p) not in COMPONENT_EXTS:
            continue
        rel = relative_import(path, p)
        line = f"export {{ {component_name(p)} }} from '{rel}';"
        if re.search(r"['\"]" + re.escape(rel) + r"['\"]", content) or line in adds:
            continue
        adds.append(line)
    if not adds:
        return content
    lines = content.rstrip("\n").split("\n")
    last = max([i for i, l in enumerate(lines) if l.startswith("export")], default=len(lines) - 1)
    lines[last + 1:last + 1] = adds
    return "\n".join(lines) + "\n"


def edit_code(path, content, text):
    """(kind, content): the current content with the mounts or exports the prompt asks for."""
    if re.search(r"new Hono\b|express\(\)|\.route\(\s*['\"]/|\bapp\.use\(", content):
        return "edit:entry", edit_entry(path, content, text)
    if stem_of(path) == "index" and re.search(r"(?m)^export\b.*\bfrom\b", content):
        return "edit:barrel", edit_barrel(path, content, text)
    return "edit:unchanged", content


def drop_route(content):
    """content without its first route registration (a mount, else a handler)."""
    lines = content.split("\n")
    for rx in (REGISTRATION_RE, HANDLER_RE):
        for i, l in enumerate(lines):
            if rx.search(l):
                del lines[i]
                return "\n".join(lines)
    return content


# --- type-check misbehaviours ---------------------------------------------------------------

def break_typecheck(behaviour, param, path, reply):
    """The reply broken in the chosen way, or unchanged when the behaviour does not apply to
    this kind of file."""
    e = ext_of(path)
    if behaviour == "ts-missing-export" and e in CODE_EXTS and not is_test_path(path):
        out = re.sub(r"(?m)^export default [^\n]*\n?", "", reply)
        out = re.sub(r"(?m)^export (function|const|class) ", r"\1 ", out)
        if out != reply and "export" not in out:
            out += "\nexport {};\n"
        return out
    if behaviour == "ts-bad-import" and e in CODE_EXTS:
        target = param or "./does-not-exist"
        return f"import {{ missingHelper }} from '{target}';\n" + reply + \
            "\nexport const fakeHelper = missingHelper;\n"
    if behaviour == "ts-type-error" and e in TS_EXTS:
        return reply.rstrip("\n") + "\n\nexport const fakeCount: number = 'not a number';\n"
    if behaviour == "sql-dup-table" and e == ".sql":
        table = param or "users"
        return (f"CREATE TABLE {table} (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL\n);\n"
                + reply)
    return reply


def rule_applies(r, text, path):
    if r["times"] is not None and r["times"] <= 0:
        return False
    if r["match"] and r["match"] not in text:
        return False
    if r["path"] is not None and (path is None or not fnmatch.fnmatchcase(path, r["path"])):
        return False
    return True


def tokens_of(nbytes):
    return (nbytes + 3) // 4


def openai_error(message, etype="invalid_request_error", param=None, code=None):
    """OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""
    return json.dumps({"error": {"message": message, "type": etype, "param": param,
                                 "code": code}}).encode()


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
                    "refused": STATE.refused,
                }
            return self.send_json(200, st)
        if self.path.rstrip("/") in ("/api/v1/models", "/v1/models", "/models"):
            with STATE.lock:
                STATE.total += 1
                STATE.models += 1
                models_status = STATE.models_status
            if models_status != 200:
                return self.send_json(models_status, error_body(models_status, "models list "
                                                                "unavailable"))
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
                if not isinstance(r, dict) or ("behaviour" not in r and "require" not in r):
                    return self.send_json(400, error_body(400, "each rule needs a behaviour"))
                req = r.get("require")
                req = [req] if isinstance(req, str) else req
                if req is not None and (not isinstance(req, list) or
                                        not all(isinstance(x, str) for x in req)):
                    return self.send_json(400, error_body(400, "require: a string or a list"))
                refuse = str(r.get("refuse") or "broken")
                if refuse not in ("broken", "400", "blind"):
                    return self.send_json(400, error_body(400, "refuse: broken, 400 or blind"))
                rules.append({"match": r.get("match") or "", "behaviour": r.get("behaviour", "ok"),
                              "param": None if r.get("param") is None else str(r["param"]),
                              "content": r.get("content"), "times": r.get("times"),
                              "path": r.get("path"), "require": req, "refuse": refuse})
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
                if "api" in obj:
                    if obj["api"] not in APIS:
                        return self.send_json(400, error_body(400, "api: one of " +
                                                              ", ".join(APIS)))
                    STATE.api = obj["api"]
                if "models_status" in obj:
                    STATE.models_status = int(obj["models_status"])
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

    def pick_behaviour(self, text, path=None):
        """Returns (behaviour, param, content, refusal) for this request; refusal is None or
        (missing texts, how to refuse). Called under the lock."""
        for m in MARKER_RE.finditer(text):
            name, param, times = m.group(1), m.group(2), m.group(3)
            if times is not None:
                key = m.group(0)
                used = STATE.marker_counts.get(key, 0)
                if used >= int(times):
                    continue
                STATE.marker_counts[key] = used + 1
            return name, param, None, None
        for r in STATE.rules:
            if not rule_applies(r, text, path):
                continue
            if r["times"] is not None:
                r["times"] -= 1
            missing = [x for x in (r["require"] or []) if x not in text]
            refusal = (missing, r["refuse"]) if missing else None
            return r["behaviour"], r["param"], r["content"], refusal
        return "ok", None, None, None

    def chat(self):
        raw = self.read_body()
        try:
            req = json.loads(raw)
            messages = req["messages"]
            text = "\n".join(str(m.get("content") or "") for m in messages)
        except (ValueError, KeyError, TypeError, AttributeError):
            return self.send_json(400, error_body(400, "invalid request body"))
        with STATE.lock:
            api = STATE.api
        model = req.get("model") or "openrouter/auto"
        stream = bool(req.get("stream"))
        max_tokens = req.get("max_tokens")
        if api != "openrouter" and max_tokens is None:
            max_tokens = req.get("max_completion_tokens")
        unknown = sorted(k for k in req if k not in OPENAI_FIELDS) if api == "openai" else []
        so = req.get("stream_options")
        include_usage = isinstance(so, dict) and so.get("include_usage") is True
        path = None
        for m in reversed(messages):  # the user message names the path; the system may too
            found = STATE.path_re.search(str(m.get("content") or ""))
            if found:
                path = found.group(1)
                break
        with STATE.lock:
            behaviour, param, content, refusal = self.pick_behaviour(text, path)
            if unknown:
                behaviour = "unknown-field"
            if refusal is not None:
                STATE.refused += 1
                behaviour = "refused"
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
                "refused": refusal[0] if refusal else None, "reply_kind": None, "api": api,
            })
            record = STATE.records[-1]
            del STATE.records[:-MAX_RECORDS]
            latency = STATE.latency_ms
            cost_on = STATE.cost
        if unknown:
            # OpenAI's exact answer to a field it does not know.
            return self.send_json(400, openai_error(
                "Unrecognized request argument supplied: " + unknown[0]))
        if not isinstance(max_tokens, int) or max_tokens <= 0:
            return self.send_json(400, error_body(400, "max_tokens must be a positive integer"))
        if api != "llamacpp" and not (self.headers.get("Authorization") or "").startswith(
                "Bearer "):
            if api == "openai":
                return self.send_json(401, openai_error(
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."))
            return self.send_json(401, error_body(401, "No auth credentials found"))

        if behaviour == "wait":
            time.sleep(int(param or 1000) / 1000.0)
            behaviour = "ok"
        if refusal is not None and refusal[1] == "400":
            return self.send_json(400, error_body(400, "fake: the prompt lacks the required "
                                                  "text: " + json.dumps(refusal[0])))
        status_err = self.status_error(behaviour, param)
        if status_err is not None:
            if latency:
                time.sleep(latency / 1000.0)
            status, body, extra = status_err
            return self.send_json(status, body, extra)

        # The content of a normal (or misbehaving 200) answer.
        kind = None
        if behaviour == "reply":
            reply = content if content is not None else (param or "")
        elif behaviour == "empty":
            reply = ""
        elif behaviour == "huge":
            size = int(param or 8 * 1024 * 1024)
            reply = ("x" * 1023 + "\n") * (size // 1024) + "x" * (size % 1024)
        elif path is None:
            # A structured request: response_format, or (OpenAI-compatible servers without
            # structured output) a prompt asking for one JSON object.
            wants_json = req.get("response_format") or "Answer with one JSON object only" in text
            reply = STATE.review_reply if wants_json else STATE.default_reply
        elif behaviour == "invalid-always" or (behaviour == "invalid" and path_count == 1):
            reply = invalid_code(path)
        elif refusal is not None and refusal[1] == "broken":
            reply = invalid_code(path)
            kind = "refused"
        else:
            current = None if refusal is not None else current_content(path, text)
            if current is not None:
                kind, reply = edit_code(path, current, text)
                if behaviour == "drop-route":
                    reply = drop_route(reply)
            else:
                kind, reply = fresh_code(path, text)
            reply = break_typecheck(behaviour, param, path, reply)
        with STATE.lock:
            record["reply_kind"] = kind
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
        if cost_on and behaviour != "nocost" and api == "openrouter":
            usage["cost"] = round((prompt_tokens * pp + completion_tokens * cp) / 1e6, 10)
        if behaviour == "byok" and api == "openrouter":
            # Bring your own key: OpenRouter's fee in cost, the provider's charge apart.
            usage["cost"] = 0.0001
            usage["cost_details"] = {"upstream_inference_cost": float(param or "0.002")}
        if behaviour == "usage-bomb":
            usage["cost"] = BOMB
        with STATE.lock:
            record["usage"] = dict(usage)
        gen_id = "gen-fake-%d" % n
        ctx = {"id": gen_id, "model": model, "usage": usage, "reply": reply, "finish": finish,
               "behaviour": behaviour, "param": param, "latency": latency, "api": api,
               "include_usage": include_usage}
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
        if behaviour == "403-moderation":
            return 403, error_body(403, "Your chosen model requires moderation and your input "
                                   "was flagged",
                                   {"reasons": ["violence", "harassment"],
                                    "flagged_input": "...kill...", "provider_name": "Fake",
                                    "model_slug": "fake/model"}), None
        if behaviour == "403-budget":
            # LiteLLM's answer when a virtual key's budget is spent.
            return 403, json.dumps({"error": {"message": "Budget has been exceeded! Current "
                                              "cost: 10.5, Max budget: 10.0",
                                              "type": "budget_exceeded", "param": None,
                                              "code": "403"}}).encode(), None
        if behaviour == "400-vllm":
            return 400, json.dumps({"object": "error", "message": "This model's maximum context "
                                    "length is 4096 tokens.", "type": "BadRequestError",
                                    "param": None, "code": 400}).encode(), None
        if behaviour == "404-ollama":
            return 404, json.dumps({"error": "model \"llama9\" not found, try pulling it "
                                    "first"}).encode(), None
        if behaviour == "422-detail":
            return 422, json.dumps({"detail": "Field required: messages"}).encode(), None
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
            choice["error"] = {"code": int(c["param"] or 502),
                               "message": "Upstream provider error mid-generation"}
        obj = {"id": c["id"], "provider": "Fake", "model": c["model"], "object": "chat.completion",
               "created": int(time.time()), "choices": [choice], "usage": c["usage"]}
        if c["api"] != "openrouter":
            del obj["provider"]
            del choice["native_finish_reason"]
        data = dumps(obj, c).encode()
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
        if c["api"] != "openrouter":
            del obj["provider"]
            del obj["choices"][0]["native_finish_reason"]
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
        if c["api"] == "openrouter":
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
            err = {"error": {"code": int(c["param"] or 502),
                             "message": "Upstream provider error mid-generation"}}
            self.chunk(self.sse_chunk(c, {"content": ""}, "error", err))
            self.chunk("data: [DONE]\n\n")
            return self.end_chunks()
        if b == "error-chunk":
            obj = {"id": c["id"], "object": "chat.completion.chunk", "model": c["model"],
                   "error": {"code": int(c["param"] or 429),
                             "message": "Rate limit exceeded mid-stream"}}
            self.chunk("data: " + json.dumps(obj) + "\n\n")
            self.chunk("data: [DONE]\n\n")
            return self.end_chunks()
        self.chunk(self.sse_chunk(c, {}, c["finish"]))
        usage_chunk = {"id": c["id"], "provider": "Fake", "model": c["model"],
                       "object": "chat.completion.chunk", "created": int(time.time()),
                       "choices": [], "usage": c["usage"]}
        if c["api"] != "openrouter":
            del usage_chunk["provider"]
        # OpenAI-compatible servers send usage in a stream only when asked
        # (stream_options.include_usage); OpenRouter always does.
        if c["api"] == "openrouter" or c["include_usage"]:
            self.chunk("data: " + dumps(usage_chunk, c) + "\n\n")
        if c["api"] != "llamacpp":  # some llama.cpp builds end the body without [DONE]
            self.chunk("data: [DONE]\n\n")
        self.end_chunks()


BOMB = "__usage_bomb__"


def dumps(obj, c):
    """json.dumps, with the usage-bomb placeholder replaced by the raw number it stands for."""
    text = json.dumps(obj)
    if c.get("behaviour") == "usage-bomb":
        text = text.replace('"%s"' % BOMB, c.get("param") or "1e999")
    return text


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
    ap.add_argument("--api", choices=APIS, default="openrouter")
    ap.add_argument("--models-status", type=int, default=200)
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
