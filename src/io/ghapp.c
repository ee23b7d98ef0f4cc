/*
 * ghapp: GitHub credentials: a fixed token, a token file re-read when it changes, or a GitHub
 * App's installation tokens (see include/dream/io/ghapp.h).
 *
 * Owns: the copies of the token (wiped when freed), the App's key (domain/ghjwt), the caches
 * (installations with their token, repositories with their installation), the waits, one
 * uv_timer that runs progress() on a later loop turn (so no completion fires inside a call into
 * this module) and the HTTP calls in flight (at most one per installation and per repository).
 * Loop thread only.
 */
#include "dream/io/ghapp.h"

#include "dream/core/log.h"
#include "dream/core/secret.h"
#include "dream/domain/forge_proto.h"
#include "dream/domain/ghjwt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MOD "ghapp"
#define DEFAULT_API "https://api.github.com"
#define DEFAULT_MARGIN_S 300L
#define DEFAULT_TIMEOUT_MS 30000L
#define MAX_RESPONSE (256u << 10)
#define TOKEN_FILE_MAX 65536

#ifndef DREAM_VERSION
#define DREAM_VERSION "0"
#endif

enum mode { MODE_NONE, MODE_STATIC, MODE_FILE, MODE_APP };

struct inst { /* an installation and its token */
    struct dm_ghapp *a;
    long long id;
    char *token; /* secret; NULL = none */
    long long issued_s, expires_s;
    struct dm_http_call *http; /* the token request in flight */
    struct inst *next;
};

struct repo_ent { /* a repository's installation (look-up mode) */
    struct dm_ghapp *a;
    char *owner, *repo;
    long long inst_id;         /* 0 = not known yet */
    struct dm_http_call *http; /* the look-up in flight */
    struct repo_ent *next;
};

struct dm_ghapp_wait {
    struct dm_ghapp *a;
    char *owner, *repo;
    dm_ghapp_cb cb;
    void *arg;
    int cancelled;
    int failed; /* err holds why */
    struct dm_error err;
    struct dm_ghapp_wait *next;
};

struct dm_ghapp {
    uv_loop_t *loop;
    struct dm_http *http;
    uv_timer_t timer;
    enum mode mode;
    char *api;
    char *token; /* MODE_STATIC / MODE_FILE: secret */
    char *file;
    struct stat seen; /* the token file as last read */
    int seen_valid;
    struct dm_ghjwt_key *key;
    char *app_id;
    long long installation_id;
    long margin_s;
    long timeout_ms;
    struct inst *insts;
    struct repo_ent *repos;
    struct dm_ghapp_wait *waits;
    int in_http;
    unsigned long fetched;
    int closing, timer_closed;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- the token file ---- */

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Reads the token file when it changed since the last read. Returns 0, or -1 (unreadable; the
 * previous token stays). */
static int file_refresh(struct dm_ghapp *a, char *why, size_t whylen)
{
    struct stat st;
    FILE *f;
    char *buf;
    size_t n;

    if (stat(a->file, &st) != 0) {
        snprintf(why, whylen, "cannot stat the GitHub token file: %s", strerror(errno));
        return -1;
    }
    if (a->seen_valid && same_file(&st, &a->seen)) {
        return 0;
    }
    f = fopen(a->file, "rb");
    buf = malloc(TOKEN_FILE_MAX + 1);
    if (!f || !buf) {
        snprintf(why, whylen, "cannot read the GitHub token file: %s", strerror(errno));
        if (f) {
            fclose(f);
        }
        free(buf);
        return -1;
    }
    n = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
    fclose(f);
    if (n > TOKEN_FILE_MAX) {
        dm_secret_wipe(buf, n);
        free(buf);
        snprintf(why, whylen, "the GitHub token file is larger than 64 KiB");
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) {
        n--;
    }
    buf[n] = '\0';
    if (n == 0 || memchr(buf, '\n', n) || memchr(buf, '\r', n)) {
        dm_secret_wipe(buf, n);
        free(buf);
        snprintf(why, whylen, "the GitHub token file is empty or holds more than one line");
        return -1;
    }
    if (a->token && strcmp(a->token, buf) != 0) {
        dm_info(MOD, NULL, "GitHub token file changed: using the new token");
    }
    dm_secret_free(a->token);
    a->token = buf;
    a->seen = st;
    a->seen_valid = 1;
    return 0;
}

/* ---- caches ---- */

static long long now_s(void)
{
    return (long long)time(NULL);
}

static int fresh(const struct dm_ghapp *a, const struct inst *i)
{
    long long margin = a->margin_s;
    long long life = i->expires_s - i->issued_s;

    if (!i->token) {
        return 0;
    }
    if (life / 2 < margin) {
        margin = life / 2;
    }
    return now_s() + margin < i->expires_s;
}

static struct inst *inst_find(struct dm_ghapp *a, long long id, int add)
{
    struct inst *i;
    for (i = a->insts; i; i = i->next) {
        if (i->id == id) {
            return i;
        }
    }
    if (!add || !(i = calloc(1, sizeof(*i)))) {
        return NULL;
    }
    i->a = a;
    i->id = id;
    i->next = a->insts;
    a->insts = i;
    return i;
}

static struct repo_ent *repo_find(struct dm_ghapp *a, const char *owner, const char *repo, int add)
{
    struct repo_ent *r;
    for (r = a->repos; r; r = r->next) {
        if (strcmp(r->owner, owner) == 0 && strcmp(r->repo, repo) == 0) {
            return r;
        }
    }
    if (!add || !(r = calloc(1, sizeof(*r)))) {
        return NULL;
    }
    r->a = a;
    r->owner = strdup(owner);
    r->repo = strdup(repo);
    if (!r->owner || !r->repo) {
        free(r->owner);
        free(r->repo);
        free(r);
        return NULL;
    }
    r->next = a->repos;
    a->repos = r;
    return r;
}

/* The installation of owner/repo, 0 when not known yet. */
static long long inst_of(struct dm_ghapp *a, const char *owner, const char *repo)
{
    struct repo_ent *r;
    if (a->installation_id > 0) {
        return a->installation_id;
    }
    r = repo_find(a, owner, repo, 0);
    return r ? r->inst_id : 0;
}

/* ---- progress ---- */

static void on_timer(uv_timer_t *t);

static void kick(struct dm_ghapp *a)
{
    if (!a->timer_closed) {
        uv_timer_start(&a->timer, on_timer, 0, 0);
    }
}

static void wait_free(struct dm_ghapp_wait *w)
{
    free(w->owner);
    free(w->repo);
    free(w);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct dm_ghapp *a = h->data;
    void (*done)(void *) = a->done;
    void *arg = a->done_arg;

    while (a->insts) {
        struct inst *i = a->insts;
        a->insts = i->next;
        dm_secret_free(i->token);
        free(i);
    }
    while (a->repos) {
        struct repo_ent *r = a->repos;
        a->repos = r->next;
        free(r->owner);
        free(r->repo);
        free(r);
    }
    dm_ghjwt_key_free(a->key);
    dm_secret_free(a->token);
    free(a->file);
    free(a->app_id);
    free(a->api);
    free(a);
    if (done) {
        done(arg);
    }
}

static void maybe_finish_close(struct dm_ghapp *a)
{
    if (a->closing && !a->waits && a->in_http == 0 && !a->timer_closed) {
        a->timer_closed = 1;
        uv_timer_stop(&a->timer);
        uv_close((uv_handle_t *)&a->timer, on_timer_closed);
    }
}

/* Unlinks w, fires its callback, frees it. */
static void complete(struct dm_ghapp_wait *w, int rc, const struct dm_error *err)
{
    struct dm_ghapp *a = w->a;
    struct dm_ghapp_wait **pp = &a->waits;
    while (*pp && *pp != w) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = w->next;
    }
    w->cb(w->arg, rc, rc ? err : NULL);
    wait_free(w);
}

/* Marks the waits of a repository (owner != NULL) or of an installation (id) failed. */
static void fail_waits(struct dm_ghapp *a, const char *owner, const char *repo, long long id,
                       const struct dm_error *err)
{
    for (struct dm_ghapp_wait *w = a->waits; w; w = w->next) {
        int match = owner ? strcmp(w->owner, owner) == 0 && strcmp(w->repo, repo) == 0
                          : inst_of(a, w->owner, w->repo) == id;
        if (match && !w->failed) {
            w->failed = 1;
            w->err = *err;
        }
    }
}

static void on_lookup_done(void *arg, int rc, struct dm_http_response *resp,
                           const struct dm_error *herr);
static void on_token_done(void *arg, int rc, struct dm_http_response *resp,
                          const struct dm_error *herr);

/* Starts an App-authenticated request (JWT). Returns 0 or an error in err. */
static int app_request(struct dm_ghapp *a, const char *method, const char *url, dm_http_done_cb cb,
                       void *arg, struct dm_http_call **out, struct dm_error *err)
{
    struct dm_http_request req;
    char *jwt = NULL, *auth = NULL;
    const char *headers[5];
    int rc;

    if ((rc = dm_ghjwt_sign(&jwt, a->key, a->app_id, now_s(), err))) {
        return rc;
    }
    if (asprintf(&auth, "Authorization: Bearer %s", jwt) < 0) {
        dm_secret_free(jwt);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    dm_secret_free(jwt);
    headers[0] = "Accept: application/vnd.github+json";
    headers[1] = "X-GitHub-Api-Version: 2022-11-28";
    headers[2] = auth;
    headers[3] = NULL;
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.timeout_ms = a->timeout_ms;
    req.max_response_bytes = MAX_RESPONSE;
    req.on_done = cb;
    req.arg = arg;
    if (strcmp(method, "POST") == 0) {
        req.body = "{}";
        req.body_len = 2;
    }
    rc = dm_http_start(a->http, &req, out, err);
    dm_secret_free(auth);
    if (rc == 0) {
        a->in_http++;
    }
    return rc;
}

static void start_lookup(struct dm_ghapp *a, struct repo_ent *r)
{
    char url[600];
    struct dm_error err = {0};

    snprintf(url, sizeof(url), "%s/repos/%s/%s/installation", a->api, r->owner, r->repo);
    if (app_request(a, "GET", url, on_lookup_done, r, &r->http, &err)) {
        r->http = NULL;
        fail_waits(a, r->owner, r->repo, 0, &err);
    }
}

static void start_token(struct dm_ghapp *a, struct inst *i)
{
    char url[400];
    struct dm_error err = {0};

    snprintf(url, sizeof(url), "%s/app/installations/%lld/access_tokens", a->api, i->id);
    if (app_request(a, "POST", url, on_token_done, i, &i->http, &err)) {
        i->http = NULL;
        fail_waits(a, NULL, NULL, i->id, &err);
    }
}

static void progress(struct dm_ghapp *a)
{
    struct dm_ghapp_wait *w;

again:
    for (w = a->waits; w; w = w->next) {
        long long id;
        struct inst *i;

        if (w->cancelled || a->closing) {
            struct dm_error e;
            dm_error_set(&e, DM_ERR_CANCELLED, "waiting for a GitHub token: cancelled");
            complete(w, DM_ERR_CANCELLED, &e);
            goto again;
        }
        if (w->failed) {
            struct dm_error e = w->err;
            complete(w, e.code ? e.code : DM_ERR_AUTH, &e);
            goto again;
        }
        if (a->mode != MODE_APP) {
            complete(w, 0, NULL);
            goto again;
        }
        id = inst_of(a, w->owner, w->repo);
        if (id == 0) {
            struct repo_ent *r = repo_find(a, w->owner, w->repo, 1);
            if (!r) {
                struct dm_error e;
                dm_error_set(&e, DM_ERR_NOMEM, "out of memory");
                complete(w, DM_ERR_NOMEM, &e);
                goto again;
            }
            if (!r->http) {
                start_lookup(a, r);
                goto again; /* a failure to start marked the waits */
            }
            continue;
        }
        i = inst_find(a, id, 1);
        if (!i) {
            struct dm_error e;
            dm_error_set(&e, DM_ERR_NOMEM, "out of memory");
            complete(w, DM_ERR_NOMEM, &e);
            goto again;
        }
        if (fresh(a, i)) {
            complete(w, 0, NULL);
            goto again;
        }
        if (!i->http) {
            start_token(a, i);
            goto again;
        }
    }
    maybe_finish_close(a);
}

static void on_timer(uv_timer_t *t)
{
    progress(t->data);
}

/* The error of a failed App request, never quoting a secret (GitHub's message is one line). */
static int request_error(struct dm_error *err, int rc, const struct dm_http_response *resp,
                         const struct dm_error *herr, const char *what)
{
    char msg[300];

    if (rc < 0) {
        if (rc == DM_ERR_CANCELLED) {
            return dm_error_set(err, rc, "%s: cancelled", what);
        }
        return dm_error_set(err, DM_ERR_TRANSIENT, "%s: %s", what, herr ? herr->msg : "failed");
    }
    dm_forge_error_text(resp->body.data, resp->body.len, msg, sizeof(msg));
    if (resp->status == 401 || resp->status == 403) {
        return dm_error_set(err, DM_ERR_AUTH, "%s: GitHub refused the App (%ld %s)", what,
                            resp->status, msg);
    }
    if (resp->status == 404) {
        return dm_error_set(err, DM_ERR_NOTFOUND, "%s: not found (404 %s)", what, msg);
    }
    return dm_error_set(
        err, resp->status >= 500 || resp->status == 429 ? DM_ERR_TRANSIENT : DM_ERR_REMOTE,
        "%s: GitHub answered %ld %s", what, resp->status, msg);
}

static void on_lookup_done(void *arg, int rc, struct dm_http_response *resp,
                           const struct dm_error *herr)
{
    struct repo_ent *r = arg;
    struct dm_ghapp *a = r->a;
    struct dm_error err = {0};
    char what[300];

    r->http = NULL;
    a->in_http--;
    snprintf(what, sizeof(what), "finding the GitHub App's installation on %s/%s", r->owner,
             r->repo);
    if (rc == 0 && resp->status == 200 &&
        dm_forge_installation_read(&r->inst_id, resp->body.data, resp->body.len) == 0) {
        dm_info(MOD, NULL, "GitHub App installation %lld serves %s/%s", r->inst_id, r->owner,
                r->repo);
    } else {
        if (rc == 0 && resp->status == 200) {
            dm_error_set(&err, DM_ERR_REMOTE, "%s: GitHub answered something else", what);
        } else {
            request_error(&err, rc, resp, herr, what);
            if (err.code == DM_ERR_NOTFOUND) {
                dm_error_set(&err, DM_ERR_NOTFOUND,
                             "the GitHub App is not installed on %s/%s (or cannot see it)",
                             r->owner, r->repo);
            }
        }
        dm_warn(MOD, NULL, "%s", err.msg);
        fail_waits(a, r->owner, r->repo, 0, &err);
    }
    kick(a);
}

static void on_token_done(void *arg, int rc, struct dm_http_response *resp,
                          const struct dm_error *herr)
{
    struct inst *i = arg;
    struct dm_ghapp *a = i->a;
    struct dm_error err = {0};
    char what[120];
    char *tok = NULL;
    long long exp = 0;

    i->http = NULL;
    a->in_http--;
    snprintf(what, sizeof(what), "getting an installation token of installation %lld", i->id);
    if (rc == 0 && (resp->status == 201 || resp->status == 200) &&
        dm_forge_token_read(&tok, &exp, resp->body.data, resp->body.len) == 0 && exp <= now_s()) {
        /* Never fresh: taken, it would be fetched again at once, forever. */
        dm_secret_free(tok);
        tok = NULL;
        dm_error_set(&err, DM_ERR_AUTH,
                     "%s: the token GitHub gave has already expired (is this machine's clock "
                     "right?)",
                     what);
        dm_warn(MOD, NULL, "%s", err.msg);
        fail_waits(a, NULL, NULL, i->id, &err);
    } else if (tok) {
        dm_secret_free(i->token);
        i->token = tok;
        i->issued_s = now_s();
        i->expires_s = exp;
        a->fetched++;
        dm_info(MOD, NULL, "installation token of installation %lld fetched, valid for %lld s",
                i->id, exp - i->issued_s);
    } else {
        if (rc == 0 && (resp->status == 201 || resp->status == 200)) {
            dm_error_set(&err, DM_ERR_REMOTE, "%s: GitHub answered something else", what);
        } else {
            request_error(&err, rc, resp, herr, what);
        }
        dm_warn(MOD, NULL, "%s", err.msg);
        fail_waits(a, NULL, NULL, i->id, &err);
        if (err.code == DM_ERR_NOTFOUND) {
            /* Uninstalled (or installed anew): look the repositories up again next time. */
            for (struct repo_ent *r = a->repos; r; r = r->next) {
                if (r->inst_id == i->id) {
                    r->inst_id = 0;
                }
            }
        }
    }
    if (resp) {
        dm_secret_wipe(resp->body.data, resp->body.len);
    }
    kick(a);
}

/* ---- public ---- */

int dm_ghapp_new(struct dm_ghapp **out, struct dm_http *http, uv_loop_t *loop,
                 const struct dm_ghapp_opts *o, struct dm_error *err)
{
    struct dm_ghapp *a = calloc(1, sizeof(*a));
    const char *api = o->api_url && *o->api_url ? o->api_url : DEFAULT_API;
    size_t n;
    int rc;

    *out = NULL;
    if (!a || !(a->api = strdup(api))) {
        free(a);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    n = strlen(a->api);
    while (n > 0 && a->api[n - 1] == '/') {
        a->api[--n] = '\0';
    }
    a->loop = loop;
    a->http = http;
    a->margin_s = o->refresh_margin_s > 0 ? o->refresh_margin_s : DEFAULT_MARGIN_S;
    a->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    a->installation_id = o->installation_id;
    if (o->app_id && *o->app_id) {
        a->mode = MODE_APP;
        if (!dm_ghjwt_app_id_valid(o->app_id)) {
            rc = dm_error_set(err, DM_ERR_INVALID,
                              "DREAM_GITHUB_APP_ID: must be 1..64 letters, digits or dots");
            goto fail;
        }
        if (!o->private_key ||
            (rc = dm_ghjwt_key_load(&a->key, o->private_key, strlen(o->private_key), err))) {
            rc = dm_error_set(err, DM_ERR_INVALID, "DREAM_GITHUB_APP_PRIVATE_KEY: %s",
                              o->private_key ? err->msg : "required with DREAM_GITHUB_APP_ID");
            goto fail;
        }
        if (!(a->app_id = strdup(o->app_id))) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto fail;
        }
    } else if (o->token_file && *o->token_file) {
        char why[200];
        a->mode = MODE_FILE;
        if (!(a->file = strdup(o->token_file))) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if (file_refresh(a, why, sizeof(why))) {
            rc = dm_error_set(err, DM_ERR_INVALID, "GITHUB_TOKEN_FILE: %s", why);
            goto fail;
        }
    } else if (o->token && *o->token) {
        a->mode = MODE_STATIC;
        if (!(a->token = strdup(o->token))) {
            rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    *out = a;
    return 0;
fail:
    dm_ghjwt_key_free(a->key);
    dm_secret_free(a->token);
    free(a->file);
    free(a->app_id);
    free(a->api);
    free(a);
    return rc;
}

int dm_ghapp_is_app(const struct dm_ghapp *a)
{
    return a && a->mode == MODE_APP;
}

const char *dm_ghapp_peek(struct dm_ghapp *a, const char *owner, const char *repo)
{
    struct inst *i;
    long long id;

    if (!a) {
        return NULL;
    }
    switch (a->mode) {
    case MODE_NONE:
        return NULL;
    case MODE_STATIC:
        return a->token;
    case MODE_FILE: {
        char why[200];
        if (file_refresh(a, why, sizeof(why))) {
            dm_warn(MOD, NULL, "%s; the last token read is used", why);
        }
        return a->token;
    }
    case MODE_APP:
        break;
    }
    if (!owner || !repo || !(id = inst_of(a, owner, repo)) || !(i = inst_find(a, id, 0)) ||
        !fresh(a, i)) {
        return NULL;
    }
    return i->token;
}

int dm_ghapp_fetch(struct dm_ghapp *a, const char *owner, const char *repo, dm_ghapp_cb cb,
                   void *arg, struct dm_ghapp_wait **out)
{
    struct dm_ghapp_wait *w;

    if (out) {
        *out = NULL;
    }
    if (a->closing) {
        return DM_ERR_CANCELLED;
    }
    w = calloc(1, sizeof(*w));
    if (!w || !(w->owner = strdup(owner ? owner : "")) || !(w->repo = strdup(repo ? repo : ""))) {
        if (w) {
            wait_free(w);
        }
        return DM_ERR_NOMEM;
    }
    w->a = a;
    w->cb = cb;
    w->arg = arg;
    w->next = a->waits;
    a->waits = w;
    kick(a);
    if (out) {
        *out = w;
    }
    return 0;
}

void dm_ghapp_cancel(struct dm_ghapp_wait *w)
{
    if (w && !w->cancelled) {
        w->cancelled = 1;
        kick(w->a);
    }
}

void dm_ghapp_invalidate(struct dm_ghapp *a, const char *token)
{
    if (!a || !token) {
        return;
    }
    if (a->mode == MODE_FILE) {
        a->seen_valid = 0; /* read it again */
        return;
    }
    for (struct inst *i = a->insts; i; i = i->next) {
        if (i->token && strcmp(i->token, token) == 0) {
            dm_info(MOD, NULL, "GitHub refused the token of installation %lld: fetching another",
                    i->id);
            dm_secret_free(i->token);
            i->token = NULL;
        }
    }
}

unsigned long dm_ghapp_tokens_fetched(const struct dm_ghapp *a)
{
    return a ? a->fetched : 0;
}

void dm_ghapp_close(struct dm_ghapp *a, void (*done)(void *arg), void *arg)
{
    a->closing = 1;
    a->done = done;
    a->done_arg = arg;
    for (struct inst *i = a->insts; i; i = i->next) {
        if (i->http) {
            dm_http_cancel(i->http);
        }
    }
    for (struct repo_ent *r = a->repos; r; r = r->next) {
        if (r->http) {
            dm_http_cancel(r->http);
        }
    }
    kick(a);
}
