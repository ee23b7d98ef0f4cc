#!/usr/bin/env python3
"""fake_github: a stand-in for GitHub's REST pulls endpoints, for tests and benchmarks.

Python 3 standard library only. HTTP/1.1 with keep-alive (ThreadingHTTPServer). Real shapes:

  GET  /repos/{o}/{r}/pulls?head=o:branch&base=&state=open|closed|all&per_page=&page=
        200 [pull, ...] (newest first); `head` must be "owner:branch" to filter, like GitHub
  POST /repos/{o}/{r}/pulls  {"title","head","base","body"?,"draft"?,"maintainer_can_modify"?}
        201 pull, with a Location header
        422 {"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom",
             "message":"A pull request already exists for o:branch."}],"documentation_url":...}
             when an open pull request for that head and base exists
        422 ... "message":"No commits between main and branch" when --git-root is given and
             `git rev-list base..head` is empty in <git-root>/<o>/<r>.git
        422 ... {"resource":"PullRequest","field":"head"|"base","code":"invalid"} for a head or
             base branch that does not exist (with --git-root) or is missing
        422 ... "body is too long (maximum is 65536 characters)"
  GET  /repos/{o}/{r}/pulls/{n}    200 pull | 404
  PATCH /repos/{o}/{r}/pulls/{n}   {"state":"closed"|"open","title","body"} 200 pull
A pull is {"url","id","node_id","html_url","number","state","locked","title","user":{login,id,
type},"body","created_at","updated_at","closed_at","merged_at","draft","head":{"label","ref",
"sha","user","repo"},"base":{"label","ref","sha","repo"},"author_association"}.

Every API request needs `Authorization: Bearer <token>` (or `token <token>`) equal to --token,
else 401 {"message":"Bad credentials","documentation_url":...,"status":"401"}. With --token ""
any request is accepted. Responses carry X-RateLimit-Limit/-Remaining/-Used/-Reset/-Resource
and X-GitHub-Request-Id. The same API is served under /api/v3 (GitHub Enterprise); unknown
repositories (with --git-root: no such bare repository) are 404
{"message":"Not Found",...}.

Misbehaviour: POST /_fake/script with a JSON list of rules (replaces the script; ?append=1
appends). Each rule: {"method": "GET"|"POST"|... or omitted, "path": "substring" or omitted,
"times": n (default 1), then one of
   "secondary": true     403 {"message":"You have exceeded a secondary rate limit. Please wait
                         a few minutes before you try again...."} (+ "retry_after": secs to send
                         Retry-After; "status": 429 to use 429)
   "primary": true       403 "API rate limit exceeded for ..." with X-RateLimit-Remaining 0 and
                         X-RateLimit-Reset now + "reset_in" (default 1) seconds
   "status": n, "body": json, "headers": {..}   that answer, verbatim
   "apply_then": n       do the real work, then answer status n with an error body instead
                         (a created pull request whose response was lost)
   "delay_ms": n         (with any of the above, or alone) wait first}
Rules are tried in order; the first matching one with times left applies and uses one time.

Control endpoints (no auth):
  GET  /_fake/requests  [{"n","ts","method","path","query","headers"{lower-case},"body"}] newest
                        last, at most 5000
  POST /_fake/reset     clears requests, pull requests and the script
  POST /_fake/seed      {"owner","repo","head","base","title"?,"state"?,"user"?,"body"?} adds a
                        pull request (as someone else would); answers the pull
  GET  /_fake/pulls     every pull request
Command line: --port N (0: pick one; the first stdout line is then PORT=<n>), --host, --token,
--git-root DIR, --quiet.
"""

import argparse
import signal
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCS = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"
SECONDARY_MSG = ("You have exceeded a secondary rate limit. Please wait a few minutes before you "
                 "try again. If you reach out to GitHub Support for help, please include the "
                 "request ID %s.")


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = []
        self.pulls = []  # dicts, oldest first
        self.next_number = 1
        self.script = []
        self.remaining = 5000
        self.n = 0


STATE = None


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def git(repo_dir, *argv):
    r = subprocess.run(["git", "-C", repo_dir] + list(argv), capture_output=True, text=True)
    return r.returncode, r.stdout.strip()


def repo_dir(owner, repo):
    root = STATE.args.git_root
    if not root:
        return None
    return os.path.join(root, owner, repo + ".git")


def stable_id(text):
    return zlib.crc32(text.encode()) % 100000000


def user_obj(login, typ="Bot"):
    return {"login": login, "id": stable_id(login), "node_id": "U_" + login,
            "type": typ, "site_admin": False,
            "html_url": "https://github.com/" + login}


def repo_obj(owner, repo):
    return {"id": stable_id(owner + "/" + repo), "name": repo,
            "full_name": owner + "/" + repo, "private": False, "owner": user_obj(owner, "User"),
            "html_url": "https://github.com/%s/%s" % (owner, repo)}


def branch_sha(owner, repo, branch):
    d = repo_dir(owner, repo)
    if d:
        rc, out = git(d, "rev-parse", "--verify", "-q", "refs/heads/" + branch)
        if rc == 0:
            return out
        return None
    return "%08x" % stable_id(owner + repo + branch) * 5


def make_pull(owner, repo, head, base, title, body, draft, user, state="open"):
    n = STATE.next_number
    STATE.next_number += 1
    ts = now_iso()
    p = {
        "url": "http://api.github.local/repos/%s/%s/pulls/%d" % (owner, repo, n),
        "id": 1000000 + n,
        "node_id": "PR_fake%d" % n,
        "html_url": "https://github.com/%s/%s/pull/%d" % (owner, repo, n),
        "number": n,
        "state": state,
        "locked": False,
        "title": title,
        "user": user_obj(user),
        "body": body,
        "created_at": ts,
        "updated_at": ts,
        "closed_at": ts if state == "closed" else None,
        "merged_at": None,
        "draft": bool(draft),
        "author_association": "NONE",
        "head": {"label": "%s:%s" % (owner, head), "ref": head,
                 "sha": branch_sha(owner, repo, head) or "0" * 40,
                 "user": user_obj(owner, "User"), "repo": repo_obj(owner, repo)},
        "base": {"label": "%s:%s" % (owner, base), "ref": base,
                 "sha": branch_sha(owner, repo, base) or "0" * 40,
                 "user": user_obj(owner, "User"), "repo": repo_obj(owner, repo)},
        "_owner": owner,
        "_repo": repo,
    }
    STATE.pulls.append(p)
    return p


def public(p):
    return {k: v for k, v in p.items() if not k.startswith("_")}


def validation_failed(errors):
    return 422, {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS,
                 "status": "422"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "GitHub.com"

    def log_message(self, fmt, *args):
        if not STATE.args.quiet:
            sys.stderr.write("fake_github: " + (fmt % args) + "\n")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Request-Id", "FAKE:%d" % STATE.n)
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for k, v in (extra or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def rate_headers(self, remaining=None, reset_in=3600):
        with STATE.lock:
            if remaining is None:
                STATE.remaining = max(STATE.remaining - 1, 1)
                remaining = STATE.remaining
        return {"X-RateLimit-Limit": 5000, "X-RateLimit-Remaining": remaining,
                "X-RateLimit-Used": 5000 - remaining,
                "X-RateLimit-Reset": int(time.time()) + reset_in,
                "X-RateLimit-Resource": "core"}

    # ---- dispatch -------------------------------------------------------------------------

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def handle_any(self, method):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_fake/"):
            return self.control(method, url, body)
        with STATE.lock:
            STATE.n += 1
            STATE.requests.append({
                "n": STATE.n, "ts": time.time(), "method": method, "path": url.path,
                "query": url.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace")})
            del STATE.requests[:-5000]
            rule = self.pick_rule(method, url.path)
        # GitHub Enterprise serves the same API under /api/v3.
        api_url = url
        if url.path.startswith("/api/v3/"):
            api_url = url._replace(path=url.path[len("/api/v3"):])
        if rule and rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if not self.authorized():
            return self.send_json(401, {"message": "Bad credentials",
                                        "documentation_url": "https://docs.github.com/rest",
                                        "status": "401"})
        if rule and self.misbehave(rule):
            return
        status, obj, extra = self.api(method, api_url, body)
        if rule and rule.get("apply_then"):
            st = int(rule["apply_then"])
            return self.send_json(st, {"message": "Server Error"} if st >= 500 else
                                  {"message": "error %d" % st})
        hdrs = self.rate_headers()
        hdrs.update(extra or {})
        self.send_json(status, obj, hdrs)

    def authorized(self):
        tok = STATE.args.token
        if not tok:
            return True
        auth = self.headers.get("Authorization") or ""
        return auth in ("Bearer " + tok, "token " + tok)

    def pick_rule(self, method, path):
        for r in STATE.script:
            if r.get("times", 1) <= 0:
                continue
            if r.get("method") and r["method"].upper() != method:
                continue
            if r.get("path") and r["path"] not in path:
                continue
            r["times"] = r.get("times", 1) - 1
            return dict(r)
        return None

    def misbehave(self, rule):
        if rule.get("secondary"):
            extra = self.rate_headers()
            if rule.get("retry_after") is not None:
                extra["Retry-After"] = rule["retry_after"]
            self.send_json(int(rule.get("status", 403)),
                           {"message": SECONDARY_MSG % ("FAKE:%d" % STATE.n),
                            "documentation_url": "https://docs.github.com/rest/overview/"
                            "rate-limits-for-the-rest-api#about-secondary-rate-limits"}, extra)
            return True
        if rule.get("primary"):
            extra = self.rate_headers(remaining=0, reset_in=int(rule.get("reset_in", 1)))
            self.send_json(int(rule.get("status", 403)),
                           {"message": "API rate limit exceeded for installation ID 1.",
                            "documentation_url": "https://docs.github.com/rest/overview/"
                            "rate-limits-for-the-rest-api"}, extra)
            return True
        if rule.get("status") and not rule.get("apply_then"):
            self.send_json(int(rule["status"]), rule.get("body", {"message": "scripted"}),
                           rule.get("headers"))
            return True
        return False

    # ---- the API --------------------------------------------------------------------------

    def api(self, method, url, body):
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if len(parts) < 4 or parts[0] != "repos" or parts[3] != "pulls":
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest",
                         "status": "404"}, None
        owner, repo = parts[1], parts[2]
        d = repo_dir(owner, repo)
        if d is not None and not os.path.isdir(d):
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, None
        with STATE.lock:
            if len(parts) == 4 and method == "GET":
                return self.list_pulls(owner, repo, urllib.parse.parse_qs(url.query))
            if len(parts) == 4 and method == "POST":
                return self.create_pull(owner, repo, body)
            if len(parts) == 5 and parts[4].isdigit():
                p = self.find_number(owner, repo, int(parts[4]))
                if not p:
                    return 404, {"message": "Not Found", "documentation_url": DOCS}, None
                if method == "GET":
                    return 200, public(p), None
                if method == "PATCH":
                    try:
                        req = json.loads(body or b"{}")
                    except ValueError:
                        return 400, {"message": "Problems parsing JSON"}, None
                    for k in ("title", "body", "state"):
                        if k in req:
                            p[k] = req[k]
                    p["closed_at"] = now_iso() if p["state"] == "closed" else None
                    return 200, public(p), None
        return 404, {"message": "Not Found", "documentation_url": DOCS}, None

    def find_number(self, owner, repo, n):
        for p in STATE.pulls:
            if p["_owner"] == owner and p["_repo"] == repo and p["number"] == n:
                return p
        return None

    def list_pulls(self, owner, repo, q):
        state = (q.get("state") or ["open"])[0]
        head = (q.get("head") or [None])[0]
        base = (q.get("base") or [None])[0]
        per_page = min(int((q.get("per_page") or ["30"])[0]), 100)
        page = int((q.get("page") or ["1"])[0])
        out = []
        for p in reversed(STATE.pulls):
            if p["_owner"] != owner or p["_repo"] != repo:
                continue
            if state != "all" and p["state"] != state:
                continue
            if head is not None and p["head"]["label"] != head:
                continue
            if base is not None and p["base"]["ref"] != base:
                continue
            out.append(public(p))
        return 200, out[(page - 1) * per_page:page * per_page], None

    def create_pull(self, owner, repo, body):
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}, None
        if not isinstance(req, dict):
            return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}, None
        title, head, base = req.get("title"), req.get("head"), req.get("base")
        errors = []
        for field, v in (("title", title), ("head", head), ("base", base)):
            if not isinstance(v, str) or not v:
                errors.append({"resource": "PullRequest", "field": field, "code": "missing_field"})
        if errors:
            return validation_failed(errors) + (None,)
        if ":" in head:
            howner, hbranch = head.split(":", 1)
            if howner != owner:
                return validation_failed([{"resource": "PullRequest", "field": "head",
                                           "code": "invalid"}]) + (None,)
        else:
            hbranch = head
        pr_body = req.get("body") or ""
        if len(pr_body) > 65536:
            return validation_failed([{"resource": "Issue", "code": "custom", "field": "body",
                                       "message": "body is too long (maximum is 65536 "
                                       "characters)"}]) + (None,)
        for p in STATE.pulls:
            if (p["_owner"] == owner and p["_repo"] == repo and p["state"] == "open" and
                    p["head"]["ref"] == hbranch and p["base"]["ref"] == base):
                return validation_failed([{
                    "resource": "PullRequest", "code": "custom",
                    "message": "A pull request already exists for %s:%s." % (owner, hbranch)
                }]) + (None,)
        d = repo_dir(owner, repo)
        if d is not None:
            for field, br in (("base", base), ("head", hbranch)):
                if branch_sha(owner, repo, br) is None:
                    return validation_failed([{"resource": "PullRequest", "field": field,
                                               "code": "invalid"}]) + (None,)
            rc, out = git(d, "rev-list", "--count", "refs/heads/%s..refs/heads/%s" % (base, hbranch))
            if rc != 0 or out == "0":
                return validation_failed([{
                    "resource": "PullRequest", "code": "custom",
                    "message": "No commits between %s and %s" % (base, hbranch)
                }]) + (None,)
        p = make_pull(owner, repo, hbranch, base, title, pr_body, req.get("draft"),
                      "dream-bot[bot]")
        return 201, public(p), {"Location": p["url"]}

    # ---- control --------------------------------------------------------------------------

    def control(self, method, url, body):
        if url.path == "/_fake/requests":
            with STATE.lock:
                return self.send_json(200, list(STATE.requests))
        if url.path == "/_fake/pulls":
            with STATE.lock:
                return self.send_json(200, [public(p) for p in STATE.pulls])
        if url.path == "/_fake/reset" and method == "POST":
            with STATE.lock:
                STATE.reset()
            return self.send_json(200, {"ok": True})
        if url.path == "/_fake/script" and method == "POST":
            try:
                rules = json.loads(body or b"[]")
            except ValueError:
                return self.send_json(400, {"message": "bad script"})
            if isinstance(rules, dict):
                rules = [rules]
            with STATE.lock:
                if "append=1" in url.query:
                    STATE.script.extend(rules)
                else:
                    STATE.script = rules
            return self.send_json(200, {"ok": True, "rules": len(rules)})
        if url.path == "/_fake/seed" and method == "POST":
            req = json.loads(body or b"{}")
            with STATE.lock:
                p = make_pull(req["owner"], req["repo"], req["head"], req.get("base", "main"),
                              req.get("title", "Someone's pull request"), req.get("body", ""),
                              req.get("draft", False), req.get("user", "someone"),
                              req.get("state", "open"))
            return self.send_json(201, public(p))
        return self.send_json(404, {"message": "no such control endpoint"})


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", default="")
    ap.add_argument("--git-root", default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    STATE = State(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    print("PORT=%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
