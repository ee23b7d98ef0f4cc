/*
 * dashboard: the HTTP side of the web dashboard (see include/dream/io/dashboard.h): the token
 * and its sessions, CSRF, the routes, the page compiled into the binary, and the Server-Sent
 * Events. Runs on the admin server's connection threads (one per connection); the Redis side is
 * dashboard_data.c.
 *
 * Sessions are stateless: the cookie is "<issued s>.<random>.<HMAC(token, session:…)>", and the
 * session's CSRF token is HMAC(token, csrf:…), so a new DREAM_ADMIN_TOKEN ends every session.
 * Every secret comparison compares two HMAC-SHA256 digests with CRYPTO_memcmp (constant time,
 * whatever the lengths of what was sent).
 */
#include "dashboard_private.h"

#include "dream/core/buf.h"
#include "dream/core/log.h"
#include "dream/core/secret.h"

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The page, compiled in by src/io/CMakeLists.txt from src/io/dashboard/ (dashboard_assets.c). */
extern const unsigned char dm_dash_index_html[];
extern const size_t dm_dash_index_html_len;
extern const unsigned char dm_dash_app_js[];
extern const size_t dm_dash_app_js_len;
extern const unsigned char dm_dash_app_css[];
extern const size_t dm_dash_app_css_len;

#define COOKIE "dream_session"
#define SESSION_S (12 * 3600)
#define BODY_MAX (16 * 1024)
#define SSE_KEEPALIVE_MS 5000

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; form-action 'self'; "
                          "base-uri 'none'; frame-ancestors 'none'";

/* ---- lifecycle ----------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int dm_dashboard_new(struct dm_dashboard **out, const struct dm_config *cfg, struct dm_error *err)
{
    struct dm_dashboard *d;

    *out = NULL;
    if (!cfg->admin_token || strlen(cfg->admin_token) < 16) {
        return dm_error_set(err, DM_ERR_INVALID,
                            "the dashboard needs DREAM_ADMIN_TOKEN (or DREAM_ADMIN_TOKEN_FILE) of "
                            "at least 16 characters");
    }
    if (!(d = calloc(1, sizeof(*d)))) {
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    d->host = dup_or_null(cfg->redis.host);
    d->unix_path = dup_or_null(cfg->redis.unix_path);
    d->username = dup_or_null(cfg->redis.username);
    d->password = dup_or_null(cfg->redis.password);
    d->port = cfg->redis.port;
    d->db = cfg->redis.db;
    d->timeout_ms = cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : 2000;
    snprintf(d->prefix, sizeof(d->prefix), "%s", cfg->prefix);
    d->token = strdup(cfg->admin_token);
    d->token_len = strlen(cfg->admin_token);
    snprintf(d->gmax, sizeof(d->gmax), "%lld", cfg->events_maxlen);
    snprintf(d->ttl, sizeof(d->ttl), "%lld", cfg->job_ttl_s);
    if (dm_keys_init(&d->keys, d->prefix) || !d->token || (cfg->redis.host && !d->host) ||
        (cfg->redis.unix_path && !d->unix_path)) {
        dm_dashboard_free(d);
        return dm_error_set(err, DM_ERR_NOMEM, "out of memory");
    }
    *out = d;
    return 0;
}

void dm_dashboard_free(struct dm_dashboard *d)
{
    if (!d) {
        return;
    }
    free(d->host);
    free(d->unix_path);
    free(d->username);
    dm_secret_free(d->password);
    dm_secret_free(d->token);
    free(d);
}

void dm_dashboard_stopping(struct dm_dashboard *d)
{
    if (d) {
        atomic_store(&d->stopping, 1);
    }
}

void *dm_dashboard_conn_open(void)
{
    return calloc(1, sizeof(struct dconn));
}

void dm_dashboard_conn_close(void *conn)
{
    struct dconn *dc = conn;
    if (dc) {
        if (dc->rc) {
            redisFree(dc->rc);
        }
        free(dc);
    }
}

/* ---- tokens, sessions, CSRF ---------------------------------------------------------------- */

static void mac(const struct dm_dashboard *d, const char *what, const char *s, size_t n,
                unsigned char out[32])
{
    /* Streamed: no copy of the token (or of what was sent) is left on the stack, and an input
     * of any length is MACed whole. */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t len = 0;

    if (!ctx || !EVP_MAC_init(ctx, (const unsigned char *)d->token, d->token_len, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)what, strlen(what)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)s, n) || !EVP_MAC_final(ctx, out, &len, 32) ||
        len != 32) {
        RAND_bytes(out, 32); /* matches nothing */
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Whether s is the token: HMACs of both, compared in constant time. */
static int token_ok(const struct dm_dashboard *d, const char *s, size_t n)
{
    unsigned char a[32], b[32];
    mac(d, "token:", s, n, a);
    mac(d, "token:", d->token, d->token_len, b);
    return CRYPTO_memcmp(a, b, 32) == 0;
}

/* A new session cookie value "<ts>.<rand>.<mac>" into out (>= 128 bytes). */
static int session_new(const struct dm_dashboard *d, char *out, size_t n)
{
    unsigned char rnd[16], m[32];
    char rh[33], mh[65], sid[64];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return -1;
    }
    hex(rnd, sizeof(rnd), rh);
    snprintf(sid, sizeof(sid), "%lld.%s", (long long)time(NULL), rh);
    mac(d, "session:", sid, strlen(sid), m);
    hex(m, 32, mh);
    snprintf(out, n, "%s.%s", sid, mh);
    return 0;
}

/* The session id part ("<ts>.<rand>") of a valid, unexpired cookie into sid, else -1. */
static int session_check(const struct dm_dashboard *d, const char *cookie, char *sid, size_t n)
{
    const char *dot;
    unsigned char want[32], got[32];
    size_t sl;
    long long ts, now = (long long)time(NULL);

    if (!cookie || !(dot = strrchr(cookie, '.')) || strlen(dot + 1) != 64) {
        return -1;
    }
    sl = (size_t)(dot - cookie);
    if (sl == 0 || sl >= n) {
        return -1;
    }
    memcpy(sid, cookie, sl);
    sid[sl] = '\0';
    mac(d, "session:", sid, sl, want);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(dot + 1 + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        got[i] = (unsigned char)v;
    }
    if (CRYPTO_memcmp(want, got, 32) != 0) {
        return -1;
    }
    ts = atoll(sid);
    return ts > 0 && ts <= now + 60 && now - ts < SESSION_S ? 0 : -1;
}

static void csrf_of(const struct dm_dashboard *d, const char *sid, char out[65])
{
    unsigned char m[32];
    mac(d, "csrf:", sid, strlen(sid), m);
    hex(m, 32, out);
}

enum auth { AUTH_NONE = 0, AUTH_COOKIE, AUTH_BEARER };

static enum auth authenticate(const struct dm_dashboard *d, struct MHD_Connection *c, char *sid,
                              size_t n)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncmp(h, "Bearer ", 7) == 0) {
        return token_ok(d, h + 7, strlen(h + 7)) ? AUTH_BEARER : AUTH_NONE;
    }
    if (session_check(d, MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE), sid, n) == 0) {
        return AUTH_COOKIE;
    }
    return AUTH_NONE;
}

/* ---- responses ----------------------------------------------------------------------------- */

static enum MHD_Result send_resp(struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
                                 const char *type)
{
    enum MHD_Result ret;
    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_static(struct MHD_Connection *c, const unsigned char *p, size_t n,
                                   const char *type)
{
    return send_resp(c, MHD_HTTP_OK,
                     MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_PERSISTENT), type);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) {
        return MHD_NO;
    }
    return send_resp(c, status,
                     MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE),
                     "application/json; charset=utf-8");
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    return send_json(c, status, o);
}

static enum MHD_Result send_redirect(struct MHD_Connection *c, const char *to, const char *cookie)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, to);
    if (cookie) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    }
    return send_resp(c, MHD_HTTP_SEE_OTHER, r, "text/plain; charset=utf-8");
}

/* ---- Server-Sent Events -------------------------------------------------------------------- */

struct sse {
    struct dm_dashboard *d;
    long long sent;  /* events rendered */
    struct dconn dc; /* its own Redis connection: XREAD BLOCK holds it */
    char last[64];   /* id of the last event rendered */
    struct dm_buf out;
    size_t off;
    long long wrote_ms;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An event larger than the whole buffer, as its head only (jobId, seq, status, ts, prUrl and
 * "truncated": true), so that the stream moves past it. 0, or -1 when even that does not fit. */
static int sse_render_head(struct sse *s, const char *id, const char *data)
{
    static const char *const keep[] = {"jobId", "seq", "status", "ts", "prUrl"};
    cJSON *full = data ? cJSON_Parse(data) : NULL, *head = cJSON_CreateObject();
    char *json = NULL;
    int rc = -1;

    for (size_t i = 0; head && i < sizeof(keep) / sizeof(keep[0]); i++) {
        const cJSON *v = cJSON_GetObjectItem(full, keep[i]);
        if (v && (cJSON_IsString(v) || cJSON_IsNumber(v))) {
            cJSON_AddItemToObject(head, keep[i], cJSON_Duplicate(v, 0));
        }
    }
    if (head && cJSON_AddTrueToObject(head, "truncated") && (json = cJSON_PrintUnformatted(head))) {
        rc = dm_buf_printf(&s->out, "id: %s\nevent: job\ndata: %s\n\n", id, json) ? -1 : 0;
    }
    cJSON_free(json);
    cJSON_Delete(head);
    cJSON_Delete(full);
    return rc;
}

/* Renders an XREAD reply's entries into s->out, as far as the cap allows. */
static void sse_render(struct sse *s, const redisReply *r)
{
    const redisReply *entries;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements < 2) {
        return;
    }
    entries = r->element[0]->element[1];
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        const char *data = NULL;
        size_t before = s->out.len;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING) {
            continue;
        }
        for (size_t j = 0;
             e->element[1]->type == REDIS_REPLY_ARRAY && j + 1 < e->element[1]->elements; j += 2) {
            const redisReply *k = e->element[1]->element[j], *v = e->element[1]->element[j + 1];
            if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
                strcmp(k->str, "event") == 0) {
                data = v->str;
            }
        }
        /* An event JSON never holds a raw newline (Lua's cjson escapes them); one that did would
         * end its data line early, so it is cut there. */
        if (dm_buf_printf(&s->out, "id: %s\nevent: job\ndata: %.*s\n\n", e->element[0]->str,
                          data ? (int)strcspn(data, "\r\n") : 2, data ? data : "{}")) {
            s->out.len = before; /* full: the rest comes with the next read */
            if (s->out.data) {
                s->out.data[before] = '\0';
            }
            if (before > 0) {
                return;
            }
            /* An event that fits no buffer would be read again forever: its head instead. */
            if (sse_render_head(s, e->element[0]->str, data)) {
                dm_warn("dashboard", NULL, "event %s does not fit an event stream; skipped",
                        e->element[0]->str);
            }
        }
        snprintf(s->last, sizeof(s->last), "%s", e->element[0]->str);
        s->sent++;
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse *s = cls;
    (void)pos;

    for (;;) {
        redisReply *r;
        if (atomic_load(&s->d->stopping)) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (s->off < s->out.len) {
            size_t n = s->out.len - s->off;
            n = n < max ? n : max;
            memcpy(buf, s->out.data + s->off, n);
            s->off += n;
            if (s->off == s->out.len) {
                dm_buf_reset(&s->out);
                s->off = 0;
            }
            s->wrote_ms = now_ms();
            return (ssize_t)n;
        }
        r = dash_cmd(s->d, &s->dc, "XREAD COUNT 8 BLOCK 1000 STREAMS %s %s", s->d->keys.events,
                     s->last);
        if (!r) {
            return MHD_CONTENT_READER_END_WITH_ERROR; /* the browser reconnects with its id */
        }
        if (r->type == REDIS_REPLY_ARRAY) {
            sse_render(s, r);
        } else if (r->type == REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        freeReplyObject(r);
        if (s->out.len == 0 && now_ms() - s->wrote_ms >= SSE_KEEPALIVE_MS) {
            dm_buf_puts(&s->out, ": keepalive\n\n");
        }
    }
}

static void sse_free(void *cls)
{
    struct sse *s = cls;
    int left = atomic_fetch_sub(&s->d->sse_clients, 1) - 1;
    dm_info("dashboard", NULL,
            "event stream closed after %lld events, at %s (client gone, too slow, or stopping); "
            "%d left",
            s->sent, s->last, left);
    if (s->dc.rc) {
        redisFree(s->dc.rc);
    }
    dm_buf_free(&s->out);
    free(s);
}

static int is_entry_id(const char *s)
{
    size_t a = s ? strspn(s, "0123456789") : 0;
    return a > 0 && a < 24 && s[a] == '-' && s[a + 1] &&
           strspn(s + a + 1, "0123456789") == strlen(s + a + 1) && strlen(s + a + 1) < 24;
}

static enum MHD_Result serve_events(struct dm_dashboard *d, struct MHD_Connection *c)
{
    const char *from = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    struct MHD_Response *r;
    struct sse *s;

    if (!is_entry_id(from)) {
        from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    }
    if (atomic_fetch_add(&d->sse_clients, 1) >= DM_DASHBOARD_MAX_SSE) {
        atomic_fetch_sub(&d->sse_clients, 1);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many live dashboards");
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        atomic_fetch_sub(&d->sse_clients, 1);
        return MHD_NO;
    }
    s->d = d;
    dm_buf_init(&s->out, DM_DASHBOARD_SSE_BUF);
    if (is_entry_id(from)) {
        snprintf(s->last, sizeof(s->last), "%s", from);
    } else if (dash_events_last_id(d, &s->dc, s->last, sizeof(s->last))) {
        sse_free(s);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis is unreachable");
    }
    dm_buf_printf(&s->out, "retry: 1000\n: from %s\n\n", s->last);
    dm_info("dashboard", NULL, "event stream opened from %s", s->last);
    s->wrote_ms = now_ms();
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!r) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return send_resp(c, MHD_HTTP_OK, r, "text/event-stream; charset=utf-8");
}

/* ---- requests ------------------------------------------------------------------------------ */

struct dreq {
    struct dm_buf body;
    int too_big;
};

void dm_dashboard_request_done(void *state)
{
    struct dreq *q = state;
    if (q) {
        dm_secret_wipe(q->body.data, q->body.len); /* may hold the token (login) */
        dm_buf_free(&q->body);
        free(q);
    }
}

/* The value of name in an application/x-www-form-urlencoded body, decoded, into out. */
static int form_value(const char *body, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p;) {
        const char *e = strchr(p, '&');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = l - nl - 1;
            if (vl >= n) {
                return -1;
            }
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            for (char *q = out; *q; q++) {
                if (*q == '+') {
                    *q = ' ';
                }
            }
            MHD_http_unescape(out);
            return 0;
        }
        p = e ? e + 1 : NULL;
    }
    return -1;
}

/* since=: as dreamctl's --since (dm_time_parse_when); absent or empty: 0 (no bound), bad: -1. */
static long long parse_since(const char *s)
{
    long long v;

    if (!s || !*s) {
        return 0;
    }
    return dm_time_parse_when(s, dm_time_now_ms(), &v) || v < 0 ? -1 : v;
}

static enum MHD_Result api_get(struct dm_dashboard *d, struct MHD_Connection *c, struct dconn *dc,
                               const char *url, const char *sid, enum auth how)
{
    cJSON *o = NULL;
    int status;

    if (strcmp(url, "/api/session") == 0) {
        char csrf[65];
        o = cJSON_CreateObject();
        if (how == AUTH_COOKIE) {
            csrf_of(d, sid, csrf);
            cJSON_AddStringToObject(o, "csrf", csrf);
        }
        cJSON_AddStringToObject(o, "prefix", d->prefix);
        return send_json(c, MHD_HTTP_OK, o);
    }
    if (strcmp(url, "/api/events") == 0) {
        return serve_events(d, c);
    }
    if (strcmp(url, "/api/jobs") == 0) {
        struct dash_filter f = {0};
        const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
        f.status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
        f.repo = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "repo");
        f.user = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "user");
        f.since_ms = parse_since(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"));
        f.limit = lim ? atoll(lim) : 0;
        if (f.since_ms < 0) {
            return send_error(c, MHD_HTTP_BAD_REQUEST,
                              "since: want a duration (90s, 15m, 1h, 7d), ms since the epoch or an "
                              "RFC 3339 time");
        }
        status = dash_list_jobs(d, dc, &f, &o);
    } else if (strncmp(url, "/api/jobs/", 10) == 0 && !strchr(url + 10, '/')) {
        status = dash_job(d, dc, url + 10, &o);
    } else if (strcmp(url, "/api/parked") == 0) {
        status = dash_parked(d, dc, &o);
    } else if (strcmp(url, "/api/workers") == 0) {
        status = dash_workers(d, dc, &o);
    } else if (strcmp(url, "/api/dead") == 0) {
        status = dash_dead(d, dc, &o);
    } else {
        return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
    }
    return send_json(c, (unsigned)status, o);
}

static enum MHD_Result api_post(struct dm_dashboard *d, struct MHD_Connection *c, struct dconn *dc,
                                const char *url, struct dreq *q)
{
    char id[200], action[16];
    const char *rest, *slash;
    cJSON *o = NULL, *body = NULL;
    const char *reason = NULL;
    int status;
    size_t idl;

    if (strncmp(url, "/api/jobs/", 10) == 0) {
        rest = url + 10;
    } else if (strncmp(url, "/api/dead/", 10) == 0) {
        rest = url + 10;
    } else {
        return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
    }
    slash = strchr(rest, '/');
    idl = slash ? (size_t)(slash - rest) : 0;
    if (!slash || idl == 0 || idl >= sizeof(id) || strlen(slash + 1) >= sizeof(action)) {
        return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
    }
    memcpy(id, rest, idl);
    id[idl] = '\0';
    snprintf(action, sizeof(action), "%s", slash + 1);
    if ((strncmp(url, "/api/dead/", 10) == 0) != (strcmp(action, "requeue") == 0)) {
        return send_error(c, MHD_HTTP_NOT_FOUND, "no such action");
    }
    if (strcmp(action, "reject") == 0 && q->body.len) {
        body = cJSON_ParseWithLength(q->body.data, q->body.len);
        if (!body) {
            return send_error(c, MHD_HTTP_BAD_REQUEST, "body: want JSON {\"reason\": \"...\"}");
        }
        reason = cJSON_GetStringValue(cJSON_GetObjectItem(body, "reason"));
    }
    status = dash_action(d, dc, action, id, reason, "dashboard", &o);
    cJSON_Delete(body);
    return send_json(c, (unsigned)status, o);
}

int dm_dashboard_handle(struct dm_dashboard *d, struct MHD_Connection *c, void *conn,
                        const char *url, const char *method, const char *upload_data,
                        size_t *upload_data_size, void **state)
{
    struct dconn *dc = conn;
    struct dreq *q = *state;
    int is_get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    int is_post = !strcmp(method, MHD_HTTP_METHOD_POST);
    enum auth how;
    char sid[128];

    if (!q) {
        if (!(q = calloc(1, sizeof(*q)))) {
            return MHD_NO;
        }
        dm_buf_init(&q->body, BODY_MAX);
        *state = q;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (dm_buf_append(&q->body, upload_data, *upload_data_size)) {
            q->too_big = 1;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!dc) {
        return MHD_NO;
    }
    if (!is_get && !is_post) {
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    /* The page itself holds no data: it asks /api/session and shows the login form on 401. */
    if (is_get && (!strcmp(url, "/") || !strcmp(url, "/index.html"))) {
        return send_static(c, dm_dash_index_html, dm_dash_index_html_len,
                           "text/html; charset=utf-8");
    }
    if (is_get && !strcmp(url, "/app.js")) {
        return send_static(c, dm_dash_app_js, dm_dash_app_js_len, "text/javascript; charset=utf-8");
    }
    if (is_get && !strcmp(url, "/app.css")) {
        return send_static(c, dm_dash_app_css, dm_dash_app_css_len, "text/css; charset=utf-8");
    }
    if (q->too_big) {
        return send_error(c, 413, "body too large");
    }
    if (is_post && !strcmp(url, "/login")) {
        char tok[1024], cookie[256], value[192];
        int ok = q->body.data && form_value(q->body.data, "token", tok, sizeof(tok)) == 0 &&
                 token_ok(d, tok, strlen(tok));
        dm_secret_wipe(tok, sizeof(tok));
        if (!ok || session_new(d, value, sizeof(value))) {
            dm_warn("dashboard", NULL, "login refused: wrong token");
            return send_redirect(c, "/#login-failed", NULL);
        }
        snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict",
                 COOKIE, value, SESSION_S);
        return send_redirect(c, "/", cookie);
    }
    if (is_post && !strcmp(url, "/logout")) {
        return send_redirect(c, "/", COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    }
    how = authenticate(d, c, sid, sizeof(sid));
    if (how == AUTH_NONE) {
        return send_error(c, MHD_HTTP_UNAUTHORIZED, "log in first (or send Authorization: Bearer)");
    }
    if (strncmp(url, "/api/", 5) != 0) {
        return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
    }
    if (is_get) {
        return api_get(d, c, dc, url, sid, how);
    }
    /* A browser sends the cookie by itself: an action also needs the session's CSRF token
     * (a Bearer header is never sent by itself). */
    if (how == AUTH_COOKIE) {
        const char *sent = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
        char want[65];
        unsigned char a[32], b[32];
        csrf_of(d, sid, want);
        mac(d, "cmp:", sent ? sent : "", sent ? strlen(sent) : 0, a);
        mac(d, "cmp:", want, strlen(want), b);
        if (!sent || CRYPTO_memcmp(a, b, 32) != 0) {
            return send_error(c, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token");
        }
    }
    return api_post(d, c, dc, url, q);
}
