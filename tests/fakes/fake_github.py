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

Pull request extras (GitHub's shapes):
  POST /repos/{o}/{r}/issues/{n}/labels {"labels":[...]}  200 [label, ...] (every label of it)
  POST /repos/{o}/{r}/pulls/{n}/requested_reviewers {"reviewers":[...],"team_reviewers":[...]}
        201 pull (with requested_reviewers, requested_teams); make it fail with a script rule,
        e.g. {"path":"requested_reviewers","status":422,"body":{"message":"Reviews may only be
        requested from collaborators. ..."}}
  POST /repos/{o}/{r}/statuses/{sha} {"state","target_url"?,"description"?,"context"?}
        201 status; 422 for a state other than error, failure, pending, success
A pull also carries "labels", "requested_reviewers" and "requested_teams".

GitHub App (with --app-id and --app-public-key PEM):
  GET  /repos/{o}/{r}/installation            200 installation {"id","app_id","account",...}
  POST /app/installations/{id}/access_tokens  201 {"token":"ghs_…","expires_at":"…Z",
        "permissions":{...},"repository_selection":"all"}; the token is valid for --token-ttl
        seconds (default 3600), then 401 Bad credentials like any unknown token
Both need `Authorization: Bearer <JWT>`: RS256, signature checked with the public key (openssl),
iss equal to --app-id (its iss is recorded), exp in the future and at most 10 minutes after iat;
else 401 {"message":"A JSON web token could not be decoded" | "'Expiration time' claim ('exp')
...","documentation_url":...}. Unknown installation: 404. An installation token is accepted
wherever --token is. With --git-users FILE, FILE always holds "x-access-token:<token>" for the
installation tokens still valid (lighttpd's plain users file of git_http_server.sh), so the
smart-HTTP git server takes exactly those.

Control endpoints (no auth):
  GET  /_fake/requests  [{"n","ts","method","path","query","headers"{lower-case},"body"}] newest
                        last, at most 5000
  POST /_fake/reset     clears requests, pull requests and the script
  POST /_fake/seed      {"owner","repo","head","base","title"?,"state"?,"user"?,"body"?} adds a
                        pull request (as someone else would); answers the pull
  GET  /_fake/pulls     every pull request
  POST /_fake/revoke    revokes every installation token issued so far (REST and git refuse them)
  GET  /_fake/statuses  every commit status [{"sha","owner","repo",...status}]
  GET  /_fake/app       {"jwt_iss":[iss of each accepted JWT],"jwt_rejected":n,
                        "tokens_issued":n,"token_expiries":[epoch s of token 1, 2, ...],
                        "tokens_refused":n (expired installation tokens seen)}
A request record's "inst_token" is the number (1, 2, ...) of the installation token it carried,
or null.
Command line: --port N (0: pick one; the first stdout line is then PORT=<n>), --host, --token,
--git-root DIR, --quiet, --app-id ID, --app-public-key FILE, --installation-id N (default
4242), --token-ttl S, --git-users FILE.
"""

import argparse
import base64
import signal
import json
import os
import secrets
import subprocess
import tempfile
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
        self.statuses = []
        self.inst_tokens = {}  # token -> expiry (epoch seconds)
        self.token_index = {}  # token -> 1, 2, ... in the order issued
        self.token_expiries = []  # expiry of token n at [n - 1]
        self.jwt_iss = []
        self.jwt_rejected = 0
        self.tokens_issued = 0
        self.tokens_refused = 0


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
        "labels": [],
        "requested_reviewers": [],
        "requested_teams": [],
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


APP_DOCS = "https://docs.github.com/rest/apps/apps"


def is_app_route(path):
    parts = path.strip("/").split("/")
    return ((len(parts) == 4 and parts[0] == "repos" and parts[3] == "installation") or
            (len(parts) >= 2 and parts[0] == "app"))


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(data, sig, public_key_file):
    """RS256 (RSASSA-PKCS1-v1_5 with SHA-256) checked by the openssl command line."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "data"), "wb") as f:
            f.write(data)
        with open(os.path.join(d, "sig"), "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", public_key_file,
                            "-signature", os.path.join(d, "sig"), os.path.join(d, "data")],
                           capture_output=True)
        return r.returncode == 0


def installation_obj(owner):
    inst = STATE.args.installation_id
    return {"id": inst, "account": user_obj(owner, "Organization"),
            "access_tokens_url": "http://api.github.local/app/installations/%d/access_tokens"
            % inst,
            "repositories_url": "http://api.github.local/installation/repositories",
            "html_url": "https://github.com/organizations/%s/settings/installations/%d"
            % (owner, inst),
            "app_id": int(STATE.args.app_id) if str(STATE.args.app_id).isdigit() else 1,
            "app_slug": "dreamd", "target_id": stable_id(owner), "target_type": "Organization",
            "permissions": {"contents": "write", "pull_requests": "write", "statuses": "write",
                            "metadata": "read"},
            "events": [], "created_at": now_iso(), "updated_at": now_iso(),
            "single_file_name": None}


def write_git_users():
    """The valid installation tokens as lighttpd's plain users file (caller holds the lock)."""
    path = STATE.args.git_users
    if not path:
        return
    now = time.time()
    lines = "".join("x-access-token:%s\n" % t for t, exp in STATE.inst_tokens.items()
                    if exp > now)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(lines or "x-access-token:no-valid-token\n")
    os.rename(tmp, path)


def git_users_loop():
    while True:
        time.sleep(0.1)
        with STATE.lock:
            write_git_users()


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
                "body": body.decode("utf-8", "replace"),
                "inst_token": STATE.token_index.get(
                    (self.headers.get("Authorization") or " ").split(" ", 1)[-1])})
            del STATE.requests[:-5000]
            rule = self.pick_rule(method, url.path)
        # GitHub Enterprise serves the same API under /api/v3.
        api_url = url
        if url.path.startswith("/api/v3/"):
            api_url = url._replace(path=url.path[len("/api/v3"):])
        if rule and rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        app_route = is_app_route(api_url.path)
        if app_route:
            why = self.check_jwt()
            if why:
                return self.send_json(401, {"message": why,
                                            "documentation_url": "https://docs.github.com/rest",
                                            "status": "401"})
        elif not self.authorized():
            return self.send_json(401, {"message": "Bad credentials",
                                        "documentation_url": "https://docs.github.com/rest",
                                        "status": "401"})
        if rule and self.misbehave(rule):
            return
        if app_route:
            status, obj = self.app_api(method, api_url)
            return self.send_json(status, obj, self.rate_headers())
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
        auth = self.headers.get("Authorization") or ""
        given = auth.split(" ", 1)[1] if " " in auth else ""
        with STATE.lock:
            exp = STATE.inst_tokens.get(given)
            if exp is not None:
                if time.time() < exp:
                    return True
                STATE.tokens_refused += 1
                return False
        if not tok:
            return not STATE.args.app_id
        return auth in ("Bearer " + tok, "token " + tok)

    # ---- GitHub App ----------------------------------------------------------------------

    def check_jwt(self):
        """None when the request carries a valid App JWT, else GitHub's 401 message."""
        bad = "A JSON web token could not be decoded"
        if not STATE.args.app_id or not STATE.args.app_public_key:
            return "Bad credentials"
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return bad
        parts = auth[7:].split(".")
        if len(parts) != 3:
            return bad
        try:
            header = json.loads(b64url(parts[0]))
            claims = json.loads(b64url(parts[1]))
            sig = b64url(parts[2])
        except (ValueError, TypeError):
            return bad
        if header.get("alg") != "RS256" or not verify_rs256(
                (parts[0] + "." + parts[1]).encode(), sig, STATE.args.app_public_key):
            with STATE.lock:
                STATE.jwt_rejected += 1
            return bad
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60:
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past."
        if exp <= now:
            return ("'Expiration time' claim ('exp') must be a numeric value representing the "
                    "future time at which the assertion expires.")
        if exp - iat > 660:
            return "'Expiration time' claim ('exp') is too far in the future"
        if str(claims.get("iss")) != str(STATE.args.app_id):
            with STATE.lock:
                STATE.jwt_rejected += 1
            return "Integration not found"
        with STATE.lock:
            STATE.jwt_iss.append(claims.get("iss"))
        return None

    def app_api(self, method, url):
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        inst = STATE.args.installation_id
        if len(parts) == 4 and parts[0] == "repos" and parts[3] == "installation":
            d = repo_dir(parts[1], parts[2])
            if method != "GET" or (d is not None and not os.path.isdir(d)):
                return 404, {"message": "Not Found", "documentation_url": APP_DOCS,
                             "status": "404"}
            return 200, installation_obj(parts[1])
        if (len(parts) == 4 and parts[:2] == ["app", "installations"] and
                parts[3] == "access_tokens" and method == "POST"):
            if parts[2] != str(inst):
                return 404, {"message": "Not Found", "documentation_url": APP_DOCS,
                             "status": "404"}
            tok = "ghs_" + secrets.token_hex(18)
            exp = int(time.time()) + STATE.args.token_ttl
            with STATE.lock:
                STATE.inst_tokens[tok] = exp
                STATE.tokens_issued += 1
                STATE.token_index[tok] = STATE.tokens_issued
                STATE.token_expiries.append(exp)
                write_git_users()
            return 201, {"token": tok,
                         "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)),
                         "permissions": {"contents": "write", "pull_requests": "write",
                                         "statuses": "write", "metadata": "read"},
                         "repository_selection": "all"}
        return 404, {"message": "Not Found", "documentation_url": APP_DOCS, "status": "404"}

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
        if (len(parts) >= 4 and parts[0] == "repos" and method == "POST" and
                (parts[3] in ("statuses", "issues") or parts[-1] == "requested_reviewers")):
            d = repo_dir(parts[1], parts[2])
            if d is not None and not os.path.isdir(d):
                return 404, {"message": "Not Found", "documentation_url": DOCS,
                             "status": "404"}, None
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                return 400, {"message": "Problems parsing JSON"}, None
            if not isinstance(req, dict):
                return 400, {"message": "Problems parsing JSON"}, None
            with STATE.lock:
                return self.extras(parts, req)
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

    def extras(self, parts, req):
        owner, repo = parts[1], parts[2]
        nf = (404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, None)
        if parts[3] == "statuses" and len(parts) == 5:
            state = req.get("state")
            if state not in ("error", "failure", "pending", "success"):
                return validation_failed([{"resource": "Status", "field": "state",
                                           "code": "custom",
                                           "message": "state is not included in the list"}]) + (None,)
            desc = req.get("description")
            if isinstance(desc, str) and len(desc) > 140:
                return validation_failed([{"resource": "Status", "field": "description",
                                           "code": "custom", "message": "description is too "
                                           "long (maximum is 140 characters)"}]) + (None,)
            ts = now_iso()
            st = {"url": "http://api.github.local/repos/%s/%s/statuses/%s" % (owner, repo,
                                                                             parts[4]),
                  "id": len(STATE.statuses) + 1, "node_id": "SC_fake%d" % len(STATE.statuses),
                  "state": state, "description": desc, "target_url": req.get("target_url"),
                  "context": req.get("context") or "default", "created_at": ts,
                  "updated_at": ts, "creator": user_obj("dream-bot[bot]")}
            STATE.statuses.append(dict(st, sha=parts[4], owner=owner, repo=repo))
            return 201, st, None
        if (parts[3] == "issues" and len(parts) == 6 and parts[4].isdigit() and
                parts[5] == "labels"):
            p = self.find_number(owner, repo, int(parts[4]))
            labels = req.get("labels")
            if not p:
                return nf
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                return validation_failed([{"resource": "Label", "field": "labels",
                                           "code": "invalid"}]) + (None,)
            for name in labels:
                if name not in [x["name"] for x in p["labels"]]:
                    p["labels"].append({"id": stable_id(name), "node_id": "LA_" + name,
                                        "url": "http://api.github.local/repos/%s/%s/labels/%s"
                                        % (owner, repo, urllib.parse.quote(name)),
                                        "name": name, "description": None, "color": "ededed",
                                        "default": False})
            return 200, p["labels"], None
        if (parts[3] == "pulls" and len(parts) == 6 and parts[4].isdigit() and
                parts[5] == "requested_reviewers"):
            p = self.find_number(owner, repo, int(parts[4]))
            if not p:
                return nf
            for login in req.get("reviewers") or []:
                p["requested_reviewers"].append(user_obj(login, "User"))
            for slug in req.get("team_reviewers") or []:
                p["requested_teams"].append({"id": stable_id(slug), "slug": slug,
                                             "name": slug})
            return 201, public(p), None
        return nf

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
        if url.path == "/_fake/revoke" and method == "POST":
            with STATE.lock:
                n = len(STATE.inst_tokens)
                STATE.inst_tokens.clear()
                write_git_users()
            return self.send_json(200, {"revoked": n})
        if url.path == "/_fake/statuses":
            with STATE.lock:
                return self.send_json(200, list(STATE.statuses))
        if url.path == "/_fake/app":
            with STATE.lock:
                return self.send_json(200, {"jwt_iss": list(STATE.jwt_iss),
                                            "jwt_rejected": STATE.jwt_rejected,
                                            "tokens_issued": STATE.tokens_issued,
                                            "token_expiries": list(STATE.token_expiries),
                                            "tokens_refused": STATE.tokens_refused})
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
    ap.add_argument("--app-id", default=None)
    ap.add_argument("--app-public-key", default=None)
    ap.add_argument("--installation-id", type=int, default=4242)
    ap.add_argument("--token-ttl", type=int, default=3600)
    ap.add_argument("--git-users", default=None)
    args = ap.parse_args()
    STATE = State(args)
    if args.git_users:
        with STATE.lock:
            write_git_users()
        threading.Thread(target=git_users_loop, daemon=True).start()
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
