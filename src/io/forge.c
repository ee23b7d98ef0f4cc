/*
 * forge: GitHub REST find-or-create of the job's pull request, on the shared HTTP client (see
 * forge.h for the protocol and the rate-limit rules).
 *
 * Owns: the client (its uv_timer, freed in the timer's close callback), the calls in progress
 * (a list; each is freed right after its completion fired) and the per-token rate-limit state:
 * when the next request may go at all (blocked_until) and when the next mutating request may go
 * (next_write_at). One timer drives every wait: pump() starts each due call's next request and
 * re-arms the timer for the earliest pending one. Loop thread only.
 */
#include "dream/io/forge.h"
#include "dream/core/secret.h"
#include "dream/io/ghapp.h"

#include "dream/core/buf.h"
#include "dream/core/log.h"
#include "dream/core/refname.h"
#include "dream/domain/retry.h"
#include "dream/domain/sse.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MOD "forge"
#define DEFAULT_API "https://api.github.com"
#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_MAX_ATTEMPTS 6
#define DEFAULT_BACKOFF_BASE_MS 1000L
#define DEFAULT_BACKOFF_MAX_MS 60000L
#define DEFAULT_SECONDARY_MS 60000L
#define DEFAULT_MAX_WAIT_MS 900000L
#define MAX_RESPONSE (4u << 20)

#ifndef DREAM_VERSION
#define DREAM_VERSION "0"
#endif

enum step {
    STEP_LIST = 0,   /* look for an open pull request */
    STEP_CREATE = 1, /* open one */
    STEP_RELIST = 2, /* GitHub said one exists: find it */
    STEP_POST = 3,   /* one POST after the pull request opened (dm_forge_post) */
};

struct dm_forge_call {
    struct dm_forge *f;
    struct dm_forge_call *prev, *next;
    char *owner, *repo, *head, *base, *title, *body, *job;
    int draft;
    dm_forge_pr_cb on_done;
    void *arg;
    /* STEP_POST */
    enum dm_forge_post_kind kind;
    char *path;      /* after {api} */
    char *post_body; /* JSON */
    dm_forge_post_cb post_done;
    /* credentials from a struct dm_ghapp */
    struct dm_ghapp_wait *auth_wait; /* a token being fetched */
    int auth_fetches;                /* fetches for this call */
    int auth_retried;                /* a 401 was answered with a new token once */
    char *used_token;                /* secret: the token of the request in flight */

    enum step step;
    int step_attempts; /* requests sent for the current step */
    int waiting;       /* 1 = waiting for the timer (not in HTTP) */
    uint64_t wake_at;  /* uv_now() time before which this call does not go */
    struct dm_http_call *http;
    int cancelled;
    int failed;          /* a failure decided outside a callback, delivered by pump() */
    struct dm_error err; /* with failed */
    struct dm_forge_pr pr;
};

struct dm_forge {
    uv_loop_t *loop;
    struct dm_http *http;
    uv_timer_t timer;
    char *api;             /* base URL without trailing '/' */
    char *auth_header;     /* "Authorization: Bearer <token>"; secret; NULL without a token */
    struct dm_ghapp *auth; /* borrowed; when set, the token of each request comes from it */
    long write_interval_ms;
    long timeout_ms;
    int max_attempts;
    long backoff_base_ms;
    long backoff_max_ms;
    long secondary_ms;
    long max_wait_ms;

    uint64_t blocked_until; /* no request before this (rate limits) */
    uint64_t next_write_at; /* no mutating request before this */
    int secondary_streak;   /* secondary limits in a row, for the exponential wait */
    uint64_t rng;

    struct dm_forge_call *calls;
    size_t in_flight;
    int closing;
    int timer_closing;
    dm_forge_closed_cb done;
    void *done_arg;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int append_encoded(struct dm_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            rc = dm_buf_append(b, s, 1);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = dm_buf_append(b, enc, 3);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static uint64_t next_random(struct dm_forge *f)
{
    /* xorshift64: jitter only, no security role. */
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static long long backoff_ms(struct dm_forge *f, int attempt)
{
    return dm_retry_backoff_ms(f->backoff_base_ms, f->backoff_max_ms, attempt, next_random(f));
}

/* ---- calls ------------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

static void kick(struct dm_forge *f)
{
    if (!f->timer_closing) {
        uv_timer_start(&f->timer, on_timer, 0, 0);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    struct dm_forge *f = h->data;
    dm_forge_closed_cb done = f->done;
    void *arg = f->done_arg;

    free(f->api);
    if (f->auth_header) {
        memset(f->auth_header, 0, strlen(f->auth_header));
        dm_secret_free(f->auth_header);
    }
    free(f);
    if (done) {
        done(arg);
    }
}

static void maybe_finish_close(struct dm_forge *f)
{
    if (f->closing && !f->calls && !f->timer_closing) {
        f->timer_closing = 1;
        uv_timer_stop(&f->timer);
        uv_close((uv_handle_t *)&f->timer, on_timer_closed);
    }
}

static void call_free(struct dm_forge_call *c)
{
    free(c->owner);
    free(c->repo);
    free(c->head);
    free(c->base);
    free(c->title);
    free(c->body);
    free(c->job);
    free(c->path);
    free(c->post_body);
    dm_secret_free(c->used_token);
    free(c);
}

/* Fires the completion and frees the call. */
static void finish(struct dm_forge_call *c, int rc, const struct dm_error *err)
{
    struct dm_forge *f = c->f;
    struct dm_error local = {0};

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        f->calls = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    f->in_flight--;
    if (rc < 0 && !err) {
        dm_error_set(&local, rc, "%s", dm_err_name(rc));
        err = &local;
    }
    if (c->step == STEP_POST) {
        if (rc == 0) {
            dm_info(MOD, c->job, "%s on %s/%s done", dm_forge_post_name(c->kind), c->owner,
                    c->repo);
        } else {
            dm_warn(MOD, c->job, "%s on %s/%s failed: %s", dm_forge_post_name(c->kind), c->owner,
                    c->repo, err->msg);
        }
        c->post_done(c->arg, rc, c->pr.http_status, rc == 0 ? NULL : err);
        call_free(c);
        maybe_finish_close(f);
        return;
    }
    if (rc == 0) {
        dm_info(MOD, c->job, "%s pull request #%ld for %s/%s %s: %s",
                c->pr.created ? "opened" : "found", c->pr.number, c->owner, c->repo, c->head,
                c->pr.html_url);
    } else {
        dm_warn(MOD, c->job, "pull request for %s/%s %s failed: %s", c->owner, c->repo, c->head,
                err->msg);
    }
    c->on_done(c->arg, rc, &c->pr, rc == 0 ? NULL : err);
    call_free(c);
    maybe_finish_close(f);
}

static int fail(struct dm_forge_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct dm_forge_call *c, int code, const char *fmt, ...)
{
    struct dm_error err = {0};
    va_list ap;
    char msg[DM_ERROR_MSG_MAX];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dm_error_set(&err, code, "%s", msg);
    finish(c, code, &err);
    return code;
}

static void wait_then(struct dm_forge_call *c, uint64_t at)
{
    c->waiting = 1;
    c->wake_at = at;
    kick(c->f);
}

static int is_mutating(enum step s)
{
    return s == STEP_CREATE || s == STEP_POST;
}

static void on_auth(void *arg, int rc, const struct dm_error *err)
{
    struct dm_forge_call *c = arg;

    c->auth_wait = NULL;
    if (c->cancelled || rc == DM_ERR_CANCELLED) {
        fail(c, DM_ERR_CANCELLED, "pull request call cancelled");
        return;
    }
    if (rc) {
        finish(c, rc, err);
        return;
    }
    wait_then(c, uv_now(c->f->loop));
}

/* The Authorization line of the next request into *line (secret), or 1 when a token is being
 * fetched first (on_auth continues), or an error (the call failed). */
static int auth_line(struct dm_forge_call *c, char **line)
{
    struct dm_forge *f = c->f;
    const char *tok;

    *line = NULL;
    if (!f->auth) {
        return f->auth_header && !(*line = strdup(f->auth_header))
                   ? fail(c, DM_ERR_NOMEM, "out of memory")
                   : 0;
    }
    tok = dm_ghapp_peek(f->auth, c->owner, c->repo);
    if (!tok) {
        if (!dm_ghapp_is_app(f->auth)) {
            return fail(c, DM_ERR_AUTH, "no GitHub token is configured");
        }
        if (c->auth_fetches >= 3) {
            return fail(c, DM_ERR_AUTH, "no fresh GitHub App installation token after %d fetches",
                        c->auth_fetches);
        }
        c->auth_fetches++;
        c->waiting = 0;
        if (dm_ghapp_fetch(f->auth, c->owner, c->repo, on_auth, c, &c->auth_wait)) {
            return fail(c, DM_ERR_CANCELLED, "the GitHub credentials are closing");
        }
        return 1;
    }
    if (strpbrk(tok, "\r\n")) {
        return fail(c, DM_ERR_AUTH, "unusable GitHub token");
    }
    dm_secret_free(c->used_token);
    c->used_token = strdup(tok);
    if (!c->used_token || asprintf(line, "Authorization: Bearer %s", tok) < 0) {
        *line = NULL;
        return fail(c, DM_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static void on_http_done(void *arg, int rc, struct dm_http_response *resp,
                         const struct dm_error *err);

/* Sends the current step's request. Returns 0, or fails the call (completion fired). */
static int issue(struct dm_forge_call *c)
{
    struct dm_forge *f = c->f;
    struct dm_buf url;
    struct dm_http_request req;
    struct dm_error err = {0};
    char *body = NULL;
    const char *headers[8];
    int n = 0;
    int rc;

    char *auth = NULL;

    memset(&req, 0, sizeof(req));
    rc = auth_line(c, &auth);
    if (rc) {
        return rc < 0 ? rc : 0;
    }
    dm_buf_init(&url, 8192);
    if (c->step == STEP_POST) {
        rc = dm_buf_printf(&url, "%s%s", f->api, c->path);
    } else {
        rc = dm_buf_printf(&url, "%s/repos/%s/%s/pulls", f->api, c->owner, c->repo);
    }
    if (rc == 0 && c->step != STEP_CREATE && c->step != STEP_POST) {
        rc = dm_buf_puts(&url, "?head=");
        if (rc == 0) {
            rc = append_encoded(&url, c->owner);
        }
        if (rc == 0) {
            rc = dm_buf_puts(&url, "%3A");
        }
        if (rc == 0) {
            rc = append_encoded(&url, c->head);
        }
        if (rc == 0) {
            rc = dm_buf_puts(&url, "&state=all&per_page=100");
        }
    }
    if (rc < 0) {
        dm_buf_free(&url);
        dm_secret_free(auth);
        return fail(c, DM_ERR_NOMEM, "out of memory");
    }
    headers[n++] = "Accept: application/vnd.github+json";
    headers[n++] = "X-GitHub-Api-Version: 2022-11-28";
    if (auth) {
        headers[n++] = auth;
    }
    if (c->step == STEP_POST) {
        headers[n++] = "Content-Type: application/json";
        req.method = "POST";
        req.body = c->post_body;
        req.body_len = strlen(c->post_body);
    } else if (c->step == STEP_CREATE) {
        cJSON *j = cJSON_CreateObject();
        if (!j || !cJSON_AddStringToObject(j, "title", c->title) ||
            !cJSON_AddStringToObject(j, "head", c->head) ||
            !cJSON_AddStringToObject(j, "base", c->base) ||
            !cJSON_AddStringToObject(j, "body", c->body) ||
            !cJSON_AddBoolToObject(j, "draft", c->draft ? 1 : 0) ||
            !(body = cJSON_PrintUnformatted(j))) {
            cJSON_Delete(j);
            dm_buf_free(&url);
            dm_secret_free(auth);
            return fail(c, DM_ERR_NOMEM, "out of memory");
        }
        cJSON_Delete(j);
        headers[n++] = "Content-Type: application/json";
        req.method = "POST";
        req.body = body;
        req.body_len = strlen(body);
    }
    headers[n] = NULL;
    req.url = url.data;
    req.headers = headers;
    req.timeout_ms = f->timeout_ms;
    req.max_response_bytes = MAX_RESPONSE;
    req.on_done = on_http_done;
    req.arg = c;
    c->waiting = 0;
    rc = dm_http_start(f->http, &req, &c->http, &err);
    dm_secret_free(auth);
    free(body);
    dm_buf_free(&url);
    if (rc < 0) {
        c->http = NULL;
        finish(c, rc, &err);
        return rc;
    }
    c->step_attempts++;
    c->pr.requests++;
    if (is_mutating(c->step)) {
        f->next_write_at = uv_now(f->loop) + (uint64_t)f->write_interval_ms;
    }
    return 0;
}

/* When the call may send its next request. */
static uint64_t due_at(const struct dm_forge_call *c)
{
    const struct dm_forge *f = c->f;
    uint64_t t = c->wake_at;
    if (f->blocked_until > t) {
        t = f->blocked_until;
    }
    if (is_mutating(c->step) && f->next_write_at > t) {
        t = f->next_write_at;
    }
    return t;
}

static void pump(struct dm_forge *f)
{
    uint64_t now, next = UINT64_MAX;
    struct dm_forge_call *c;

again:
    now = uv_now(f->loop);
    for (c = f->calls; c; c = c->next) {
        if (!c->waiting) {
            continue;
        }
        if (c->cancelled) {
            fail(c, DM_ERR_CANCELLED, "pull request call cancelled");
            goto again;
        }
        if (c->failed) {
            struct dm_error e = c->err;
            finish(c, e.code, &e);
            goto again;
        }
        if (due_at(c) <= now) {
            issue(c);
            goto again;
        }
    }
    if (f->timer_closing) {
        return;
    }
    for (c = f->calls; c; c = c->next) {
        if (c->waiting && due_at(c) < next) {
            next = due_at(c);
        }
    }
    if (next != UINT64_MAX) {
        uv_timer_start(&f->timer, on_timer, next > now ? next - now : 0, 0);
    }
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* Updates the shared rate-limit state from any response. Returns the wait (ms) this response
 * asks for before the request may be repeated, or -1 when it is not a rate-limit answer. */
static long long rate_limit(struct dm_forge_call *c, const struct dm_http_response *resp)
{
    struct dm_forge *f = c->f;
    char remaining[32], reset[32], retry[128];
    const char *rem =
        dm_http_response_header(resp, "x-ratelimit-remaining", remaining, sizeof(remaining));
    const char *rst = dm_http_response_header(resp, "x-ratelimit-reset", reset, sizeof(reset));
    const char *ra = dm_http_response_header(resp, "retry-after", retry, sizeof(retry));
    uint64_t now = uv_now(f->loop);
    long long reset_wait = -1;
    long long wait = -1;
    int limited = resp->status == 403 || resp->status == 429;

    if (rem && strcmp(rem, "0") == 0 && rst) {
        long long at = strtoll(rst, NULL, 10);
        reset_wait = at * 1000 - dm_time_now_ms() + 500;
        if (reset_wait < 0) {
            reset_wait = 0;
        }
        /* Even on a success: the budget is spent until the reset, for every later request. */
        if (now + (uint64_t)reset_wait > f->blocked_until && reset_wait <= f->max_wait_ms) {
            f->blocked_until = now + (uint64_t)reset_wait;
        }
    }
    if (!limited) {
        if (resp->status >= 200 && resp->status < 300) {
            f->secondary_streak = 0;
        }
        return -1;
    }
    /* Retry-After: delay seconds or an HTTP date (the parser the LLM client uses too). */
    if (ra && dm_sse_retry_after_ms(ra, dm_time_now_ms(), &wait) != 0) {
        wait = -1;
    }
    if (wait < 0 && reset_wait >= 0) {
        wait = reset_wait;
    }
    if (wait < 0) {
        const char *body = resp->body.data ? resp->body.data : "";
        int secondary = resp->status == 429 || strcasestr(body, "secondary rate limit") ||
                        strcasestr(body, "abuse");
        if (!secondary) {
            return -1;
        }
        wait = f->secondary_ms;
        for (int i = 0; i < f->secondary_streak && wait < f->max_wait_ms; i++) {
            wait *= 2;
        }
        f->secondary_streak++;
    }
    if (wait <= f->max_wait_ms && now + (uint64_t)wait > f->blocked_until) {
        f->blocked_until = now + (uint64_t)wait;
    }
    return wait;
}

static void handle_list(struct dm_forge_call *c, const struct dm_http_response *resp)
{
    int found = dm_forge_pull_find(&c->pr, resp->body.data, resp->body.len, c->head, c->base);

    if (found < 0) {
        fail(c, DM_ERR_INVALID, "GitHub answered the pull request list with something else");
        return;
    }
    if (found) {
        c->pr.created = 0;
        finish(c, 0, NULL);
        return;
    }
    if (c->step == STEP_RELIST) {
        fail(c, DM_ERR_REMOTE,
             "GitHub says a pull request for %s:%s already exists, but no open one into %s was "
             "found",
             c->owner, c->head, c->base);
        return;
    }
    c->step = STEP_CREATE;
    c->step_attempts = 0;
    wait_then(c, uv_now(c->f->loop));
}

static void handle_create(struct dm_forge_call *c, const struct dm_http_response *resp)
{
    char msg[400];

    if (resp->status == 201 || resp->status == 200) {
        if (dm_forge_pull_read(&c->pr, resp->body.data, resp->body.len) < 0) {
            fail(c, DM_ERR_INVALID, "GitHub answered the new pull request with something else");
            return;
        }
        c->pr.created = 1;
        finish(c, 0, NULL);
        return;
    }
    dm_forge_error_text(resp->body.data, resp->body.len, msg, sizeof(msg));
    if (resp->status == 422 && strcasestr(msg, "already exists")) {
        /* Made meanwhile (or by our own earlier attempt whose answer was lost): find it. */
        c->step = STEP_RELIST;
        c->step_attempts = 0;
        wait_then(c, uv_now(c->f->loop));
        return;
    }
    if (resp->status == 422 && strcasestr(msg, "No commits between")) {
        fail(c, DM_ERR_REMOTE, "cannot open a pull request: %s (nothing to merge)", msg);
        return;
    }
    fail(c, DM_ERR_INVALID, "GitHub refused the pull request (%ld): %s", resp->status, msg);
}

static void on_http_done(void *arg, int rc, struct dm_http_response *resp,
                         const struct dm_error *err)
{
    struct dm_forge_call *c = arg;
    struct dm_forge *f = c->f;
    uint64_t now = uv_now(f->loop);
    const char *what = c->step == STEP_POST     ? dm_forge_post_name(c->kind)
                       : c->step == STEP_CREATE ? "creating the pull request"
                                                : "listing pull requests";
    char msg[400];
    long long wait;

    c->http = NULL;
    c->pr.http_status = resp ? resp->status : 0;
    if (c->cancelled) {
        fail(c, DM_ERR_CANCELLED, "pull request call cancelled");
        return;
    }
    if (rc < 0) {
        if (rc == DM_ERR_CANCELLED) {
            fail(c, rc, "%s: %s", what, err ? err->msg : "cancelled");
            return;
        }
        if ((rc == DM_ERR_IO || rc == DM_ERR_TIMEOUT) && c->step_attempts < f->max_attempts) {
            dm_warn(MOD, c->job, "%s failed (%s), retrying", what, err ? err->msg : "");
            wait_then(c, now + (uint64_t)backoff_ms(f, c->step_attempts));
            return;
        }
        fail(c, rc == DM_ERR_IO || rc == DM_ERR_TIMEOUT ? DM_ERR_TRANSIENT : rc, "%s: %s", what,
             err ? err->msg : dm_err_name(rc));
        return;
    }
    wait = rate_limit(c, resp);
    if (wait >= 0) {
        if (wait > f->max_wait_ms) {
            fail(c, DM_ERR_TRANSIENT, "GitHub rate limit: asked to wait %lld s (more than %ld s)",
                 wait / 1000, f->max_wait_ms / 1000);
            return;
        }
        if (c->step_attempts >= f->max_attempts) {
            fail(c, DM_ERR_TRANSIENT, "GitHub rate limit: still limited after %d attempts",
                 c->step_attempts);
            return;
        }
        dm_warn(MOD, c->job, "GitHub rate limit (%ld) while %s; waiting %lld ms", resp->status,
                what, wait);
        wait_then(c, now);
        return;
    }
    if (resp->status >= 500 || resp->status == 408) {
        if (c->step_attempts < f->max_attempts) {
            dm_warn(MOD, c->job, "GitHub answered %ld while %s, retrying", resp->status, what);
            wait_then(c, now + (uint64_t)backoff_ms(f, c->step_attempts));
            return;
        }
        fail(c, DM_ERR_TRANSIENT, "%s: GitHub answered %ld %d times", what, resp->status,
             c->step_attempts);
        return;
    }
    if (resp->status == 401 && f->auth && dm_ghapp_is_app(f->auth) && !c->auth_retried) {
        /* Expired or revoked early: a new installation token, once. */
        c->auth_retried = 1;
        dm_ghapp_invalidate(f->auth, c->used_token);
        dm_warn(MOD, c->job,
                "GitHub refused the installation token (401) while %s; fetching "
                "another",
                what);
        wait_then(c, now);
        return;
    }
    if (c->step == STEP_POST && resp->status >= 200 && resp->status < 300) {
        finish(c, 0, NULL);
        return;
    }
    if (c->step == STEP_POST && resp->status != 401) {
        dm_forge_error_text(resp->body.data, resp->body.len, msg, sizeof(msg));
        fail(c,
             resp->status == 403   ? DM_ERR_AUTH
             : resp->status == 404 ? DM_ERR_NOTFOUND
                                   : DM_ERR_INVALID,
             "%s: GitHub answered %ld: %s", what, resp->status, msg);
        return;
    }
    if (resp->status == 401 || resp->status == 403) {
        dm_forge_error_text(resp->body.data, resp->body.len, msg, sizeof(msg));
        fail(c, DM_ERR_AUTH, "%s: GitHub refused the token (%ld %s)", what, resp->status, msg);
        return;
    }
    if (resp->status == 404) {
        fail(c, DM_ERR_NOTFOUND, "%s: repository %s/%s not found, or the token cannot see it (404)",
             what, c->owner, c->repo);
        return;
    }
    if (c->step == STEP_CREATE) {
        handle_create(c, resp);
        return;
    }
    if (resp->status == 200) {
        handle_list(c, resp);
        return;
    }
    dm_forge_error_text(resp->body.data, resp->body.len, msg, sizeof(msg));
    fail(c, resp->status == 400 || resp->status == 422 ? DM_ERR_INVALID : DM_ERR_REMOTE,
         "%s: GitHub answered %ld: %s", what, resp->status, msg);
}

/* ---- public ----------------------------------------------------------------------------- */

int dm_forge_new(struct dm_forge **out, struct dm_http *http, uv_loop_t *loop,
                 const struct dm_forge_opts *opts, struct dm_error *err)
{
    struct dm_forge_opts defaults = DM_FORGE_OPTS_INIT;
    const struct dm_forge_opts *o = opts ? opts : &defaults;
    const char *api = o->api_url && *o->api_url ? o->api_url : DEFAULT_API;
    struct dm_forge *f;
    size_t n;

    *out = NULL;
    if (strncmp(api, "https://", 8) != 0 && strncmp(api, "http://", 7) != 0) {
        return dm_error_set(err, DM_ERR_INVALID, "the GitHub API URL must be http(s)://");
    }
    f = calloc(1, sizeof(*f));
    if (!f || !(f->api = strdup(api))) {
        free(f);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    n = strlen(f->api);
    while (n > 0 && f->api[n - 1] == '/') {
        f->api[--n] = '\0';
    }
    if (o->token && *o->token) {
        if (strpbrk(o->token, "\r\n") ||
            asprintf(&f->auth_header, "Authorization: Bearer %s", o->token) < 0) {
            f->auth_header = NULL;
            free(f->api);
            free(f);
            return dm_error_set(err, DM_ERR_INVALID, "unusable GitHub token");
        }
    }
    f->loop = loop;
    f->http = http;
    f->auth = o->auth;
    f->write_interval_ms = o->write_interval_ms > 0 ? o->write_interval_ms : 0;
    f->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    f->max_attempts = o->max_attempts > 0 ? o->max_attempts : DEFAULT_MAX_ATTEMPTS;
    f->backoff_base_ms = o->backoff_base_ms > 0 ? o->backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    f->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    f->secondary_ms = o->secondary_backoff_ms > 0 ? o->secondary_backoff_ms : DEFAULT_SECONDARY_MS;
    f->max_wait_ms = o->max_wait_ms > 0 ? o->max_wait_ms : DEFAULT_MAX_WAIT_MS;
    f->rng = uv_hrtime() | 1;
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    *out = f;
    return 0;
}

int dm_forge_open_pr(struct dm_forge *f, const struct dm_forge_pr_request *req,
                     struct dm_forge_call **out, struct dm_error *err)
{
    struct dm_forge_call *c;

    if (out) {
        *out = NULL;
    }
    if (f->closing) {
        return dm_error_set(err, DM_ERR_CANCELLED, "the forge client is closing");
    }
    if (!req || !req->on_done || !req->title || !*req->title) {
        return dm_error_set(err, DM_ERR_INVALID, "pull request needs a title and a callback");
    }
    if (!dm_forge_name_valid(req->owner) || !dm_forge_name_valid(req->repo)) {
        return dm_error_set(err, DM_ERR_INVALID, "invalid repository name");
    }
    if (!dm_refname_valid(req->head) || !dm_refname_valid(req->base) ||
        strcmp(req->head, req->base) == 0) {
        return dm_error_set(err, DM_ERR_INVALID, "invalid head or base branch");
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    c->f = f;
    c->owner = strdup(req->owner);
    c->repo = strdup(req->repo);
    c->head = strdup(req->head);
    c->base = strdup(req->base);
    c->title = dm_forge_title(req->title);
    c->body = dm_forge_cap_body(req->body, DM_FORGE_BODY_MAX);
    c->job = dup_or_null(req->job_id);
    if (!c->owner || !c->repo || !c->head || !c->base || !c->title || !c->body ||
        (req->job_id && !c->job)) {
        call_free(c);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    c->draft = req->draft != 0;
    c->on_done = req->on_done;
    c->arg = req->arg;
    c->step = STEP_LIST;
    c->waiting = 1;
    c->wake_at = uv_now(f->loop);
    if (!f->auth_header && !f->auth) {
        c->failed = 1;
        dm_error_set(&c->err, DM_ERR_AUTH, "no GitHub token is configured");
    }
    c->next = f->calls;
    if (f->calls) {
        f->calls->prev = c;
    }
    f->calls = c;
    f->in_flight++;
    kick(f);
    if (out) {
        *out = c;
    }
    return 0;
}

const char *dm_forge_post_name(enum dm_forge_post_kind kind)
{
    switch (kind) {
    case DM_FORGE_LABELS:
        return "adding labels";
    case DM_FORGE_REVIEWERS:
        return "requesting reviewers";
    case DM_FORGE_STATUS:
        return "setting the commit status";
    }
    return "posting";
}

int dm_forge_post(struct dm_forge *f, const struct dm_forge_post_request *req,
                  struct dm_forge_call **out, struct dm_error *err)
{
    struct dm_forge_call *c;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (f->closing) {
        return dm_error_set(err, DM_ERR_CANCELLED, "the forge client is closing");
    }
    if (!req || !req->on_done || !req->body || !dm_forge_name_valid(req->owner) ||
        !dm_forge_name_valid(req->repo)) {
        return dm_error_set(err, DM_ERR_INVALID, "invalid repository name or request");
    }
    if (req->kind == DM_FORGE_STATUS
            ? !req->sha || strlen(req->sha) != 40 || strspn(req->sha, "0123456789abcdef") != 40
            : req->number <= 0) {
        return dm_error_set(err, DM_ERR_INVALID, "%s needs a pull request number or a commit",
                            dm_forge_post_name(req->kind));
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    c->f = f;
    c->step = STEP_POST;
    c->kind = req->kind;
    c->owner = strdup(req->owner);
    c->repo = strdup(req->repo);
    c->post_body = strdup(req->body);
    c->job = dup_or_null(req->job_id);
    switch (req->kind) {
    case DM_FORGE_LABELS:
        rc = asprintf(&c->path, "/repos/%s/%s/issues/%ld/labels", req->owner, req->repo,
                      req->number);
        break;
    case DM_FORGE_REVIEWERS:
        rc = asprintf(&c->path, "/repos/%s/%s/pulls/%ld/requested_reviewers", req->owner, req->repo,
                      req->number);
        break;
    default:
        rc = asprintf(&c->path, "/repos/%s/%s/statuses/%s", req->owner, req->repo, req->sha);
        break;
    }
    if (rc < 0) {
        c->path = NULL;
    }
    if (!c->owner || !c->repo || !c->post_body || !c->path || (req->job_id && !c->job)) {
        call_free(c);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    c->post_done = req->on_done;
    c->arg = req->arg;
    c->waiting = 1;
    c->wake_at = uv_now(f->loop);
    if (!f->auth_header && !f->auth) {
        c->failed = 1;
        dm_error_set(&c->err, DM_ERR_AUTH, "no GitHub token is configured");
    }
    c->next = f->calls;
    if (f->calls) {
        f->calls->prev = c;
    }
    f->calls = c;
    f->in_flight++;
    kick(f);
    if (out) {
        *out = c;
    }
    return 0;
}

void dm_forge_cancel(struct dm_forge_call *c)
{
    if (!c || c->cancelled) {
        return;
    }
    c->cancelled = 1;
    if (c->http) {
        dm_http_cancel(c->http);
    } else if (c->auth_wait) {
        dm_ghapp_cancel(c->auth_wait);
    } else {
        kick(c->f);
    }
}

size_t dm_forge_in_flight(const struct dm_forge *f)
{
    return f->in_flight;
}

void dm_forge_close(struct dm_forge *f, dm_forge_closed_cb done, void *arg)
{
    f->closing = 1;
    f->done = done;
    f->done_arg = arg;
    for (struct dm_forge_call *c = f->calls; c; c = c->next) {
        dm_forge_cancel(c);
    }
    if (!f->calls) {
        maybe_finish_close(f);
    } else {
        kick(f);
    }
}
