/*
 * forge: the GitHub REST client (github.com or a GitHub Enterprise base URL such as
 * https://host/api/v3), on the shared asynchronous HTTP client. It finds or opens the job's pull
 * request, so that a retried or resumed job never opens a second one.
 *
 * Every request carries `User-Agent: dreamd/<version>`, `Accept: application/vnd.github+json`,
 * `X-GitHub-Api-Version: 2022-11-28` and `Authorization: Bearer <token>`. The token is only ever
 * put in that header: never in a URL, a log line or an error message.
 *
 * Find-or-create (one call = these steps, in order):
 *   1. GET  {api}/repos/{o}/{r}/pulls?head={o}:{branch}&state=all&per_page=100
 *      an open pull request whose head is {o}:{branch} (and base is `base`) → use it (found).
 *   2. POST {api}/repos/{o}/{r}/pulls {"title","head","base","body","draft"}
 *      201 → created. 422 "A pull request already exists" → 3. 422 "No commits between" →
 *      DM_ERR_REMOTE, permanent. Other 422 → DM_ERR_INVALID with GitHub's message.
 *   3. GET as in 1 → use the open one (found); none → DM_ERR_REMOTE.
 *
 * Rate limits, shared by every call of a client (one client per token):
 *   - Retry-After (seconds or an HTTP date) on any 403/429 → every request waits that long;
 *   - X-RateLimit-Remaining: 0 with X-RateLimit-Reset → requests wait until the reset (on a
 *     403/429 the request is repeated then; on a success only later requests wait);
 *   - a 403/429 whose message says "secondary rate limit" without Retry-After → exponential
 *     backoff from secondary_backoff_ms (GitHub asks for at least a minute);
 *   - at most one mutating request (POST/PATCH/PUT/DELETE) per write_interval_ms;
 *   - a wait longer than max_wait_ms ends the call with DM_ERR_TRANSIENT.
 * 5xx, 408 and transport failures are retried with capped exponential backoff (a POST whose
 * answer was lost is safe to repeat: the repeat gets "already exists" and step 3 finds it).
 * Every step gives up after max_attempts requests (DM_ERR_TRANSIENT).
 *
 * Threading: loop thread only.
 */
#ifndef DREAM_FORGE_H
#define DREAM_FORGE_H

#include "dream/core/error.h"
#include "dream/domain/forge_proto.h" /* struct dm_forge_pr, DM_FORGE_BODY_MAX, names, caps */
#include "dream/io/http.h"

#include <stddef.h>
#include <uv.h>

struct dm_forge;      /* client, one per token */
struct dm_ghapp;      /* io/ghapp.h: where tokens come from */
struct dm_forge_call; /* one find-or-create in progress */

struct dm_forge_opts {
    const char *api_url;       /* DREAM_GITHUB_API_URL; NULL = "https://api.github.com" */
    const char *token;         /* secret, copied; NULL/"" = every call fails with DM_ERR_AUTH */
    long write_interval_ms;    /* least time between two mutating requests; 0 = none */
    long timeout_ms;           /* per request; 0 = 30000 */
    int max_attempts;          /* requests per step; 0 = 6 */
    long backoff_base_ms;      /* 5xx/transport backoff start; 0 = 1000 */
    long backoff_max_ms;       /* 0 = 60000 */
    long secondary_backoff_ms; /* first wait after a secondary limit without Retry-After;
                                * 0 = 60000 */
    long max_wait_ms;          /* longest rate-limit wait accepted; 0 = 900000 (15 min) */
    struct dm_ghapp *auth;     /* borrowed, outlives the client; when set, each request's token
                                * comes from it (token is then unused): a GitHub App's
                                * installation token is fetched first when none is fresh, and a
                                * 401 is answered once with a new one */
};

/* write_interval_ms defaults to 1000 (DREAM_FORGE_WRITE_INTERVAL_MS). */
#define DM_FORGE_OPTS_INIT                                                                         \
    {                                                                                              \
        .api_url = NULL, .write_interval_ms = 1000                                                 \
    }

/* Completion, fired exactly once per started call, from the loop, never inside
 * dm_forge_open_pr / dm_forge_cancel / dm_forge_close. rc == 0: pr holds the pull request.
 * rc < 0: err says why (never the token):
 *   DM_ERR_AUTH       401 (bad credentials), 403 without rate-limit signs, or no token
 *   DM_ERR_NOTFOUND   404: no such repository, or the token cannot see it
 *   DM_ERR_REMOTE     422 "No commits between <base> and <branch>"; or GitHub said a pull
 *                     request exists but none could be found
 *   DM_ERR_INVALID    another 422 or 400 (GitHub's messages in err)
 *   DM_ERR_TRANSIENT  rate limited past max_wait_ms, or attempts used up on 5xx/transport errors
 *   DM_ERR_CANCELLED  dm_forge_cancel or dm_forge_close
 * pr is never NULL (requests/http_status are filled on failure too) and is valid only during
 * the callback. The callback may start new calls, cancel others, or close the client. */
typedef void (*dm_forge_pr_cb)(void *arg, int rc, const struct dm_forge_pr *pr,
                               const struct dm_error *err);

struct dm_forge_pr_request {
    const char *owner;  /* required, [A-Za-z0-9._-]{1,100} (dm_forge_name_valid) */
    const char *repo;   /* required, same rule */
    const char *head;   /* required: the branch in owner/repo (dm_refname_valid) */
    const char *base;   /* required: the base branch (dm_refname_valid), not head */
    const char *title;  /* required: the spec title; sent as "[Dream] <title>" (the prefix is not
                         * doubled when title already starts with it) */
    const char *body;   /* may be NULL; capped at DM_FORGE_BODY_MAX characters */
    int draft;          /* non-zero: open as a draft */
    const char *job_id; /* for log lines, may be NULL */
    dm_forge_pr_cb on_done; /* required */
    void *arg;
};

/* Creates a client using http (borrowed; it must outlive this client) on loop. Everything in
 * opts is copied. Returns 0, DM_ERR_INVALID (api_url not http(s)://) or DM_ERR_NOMEM. Close it
 * with dm_forge_close. */
int dm_forge_new(struct dm_forge **out, struct dm_http *http, uv_loop_t *loop,
                 const struct dm_forge_opts *opts, struct dm_error *err);

/* Starts a find-or-create; everything in req is copied. Returns 0 and a borrowed handle in *out
 * (may be NULL; valid until the completion fires), after which req->on_done fires exactly once,
 * from the loop. Returns DM_ERR_INVALID (missing or bad field), DM_ERR_NOMEM, or
 * DM_ERR_CANCELLED (client closing), and then no callback fires. A missing token is reported
 * through the callback (DM_ERR_AUTH). */
int dm_forge_open_pr(struct dm_forge *f, const struct dm_forge_pr_request *req,
                     struct dm_forge_call **out, struct dm_error *err);

/* ---- after the pull request opened: labels, reviewers, the commit status ----
 *   DM_FORGE_LABELS     POST {api}/repos/{o}/{r}/issues/{number}/labels  {"labels":[...]}
 *   DM_FORGE_REVIEWERS  POST {api}/repos/{o}/{r}/pulls/{number}/requested_reviewers
 *                       {"reviewers":[...],"team_reviewers":[...]}
 *   DM_FORGE_STATUS     POST {api}/repos/{o}/{r}/statuses/{sha}
 *                       {"state","context","description","target_url"?}
 * (bodies from forge_proto's dm_forge_*_json). Same rate limits, retries and credentials as the
 * find-or-create; any 2xx is success; 403 → DM_ERR_AUTH, 404 → DM_ERR_NOTFOUND, another 4xx
 * (e.g. 422 "Reviews may only be requested from collaborators") → DM_ERR_INVALID with
 * GitHub's message. */
enum dm_forge_post_kind { DM_FORGE_LABELS, DM_FORGE_REVIEWERS, DM_FORGE_STATUS };

typedef void (*dm_forge_post_cb)(void *arg, int rc, long http_status, const struct dm_error *err);

struct dm_forge_post_request {
    enum dm_forge_post_kind kind;
    const char *owner, *repo; /* required (dm_forge_name_valid) */
    long number;              /* LABELS, REVIEWERS: the pull request */
    const char *sha;          /* STATUS: the commit, 40 lowercase hex digits */
    const char *body;         /* required JSON */
    const char *job_id;       /* for log lines, may be NULL */
    dm_forge_post_cb on_done; /* required; fires once, from the loop */
    void *arg;
};

/* Starts one such request (everything copied). Returns 0 (then on_done fires exactly once), or
 * DM_ERR_INVALID / DM_ERR_NOMEM / DM_ERR_CANCELLED and no callback fires. *out as for
 * dm_forge_open_pr (cancel with dm_forge_cancel). */
int dm_forge_post(struct dm_forge *f, const struct dm_forge_post_request *req,
                  struct dm_forge_call **out, struct dm_error *err);

/* "adding labels", "requesting reviewers", "setting the commit status". */
const char *dm_forge_post_name(enum dm_forge_post_kind kind);

/* Cancels a call whose completion has not fired: its request is aborted or its wait ended, and
 * the completion fires later, from the loop, with DM_ERR_CANCELLED. */
void dm_forge_cancel(struct dm_forge_call *call);

/* Calls started whose completion has not fired yet. */
size_t dm_forge_in_flight(const struct dm_forge *f);

typedef void (*dm_forge_closed_cb)(void *arg);

/* Refuses new calls, cancels every call (their completions fire with DM_ERR_CANCELLED, from the
 * loop), closes the timer and frees the client in its close callback, after which done (may be
 * NULL) fires with arg. Safe inside a completion callback. Close the forge before the HTTP
 * client it uses. Calling it twice is a programmer error. */
void dm_forge_close(struct dm_forge *f, dm_forge_closed_cb done, void *arg);

#endif
