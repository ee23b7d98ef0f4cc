/*
 * The web dashboard (DREAM_DASHBOARD=1) of a real dreamd against a real redis-server, over HTTP
 * with libcurl: the token (login form cookie or Bearer) guards everything but /metrics and
 * /healthz, an action needs the session's CSRF token and runs dreamctl's Lua script, ten live
 * SSE clients get every event of 200 jobs in order (one of them reconnecting with
 * Last-Event-ID in the middle), and a client that stops reading is dropped while /metrics keeps
 * answering. The page itself is driven in a real browser by tests/browser/dashboard.test.mjs
 * (suite dashboard_browser).
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dme2e.h"
#include "dmproc.h"
#include "dmtest.h"
#include "dream/core/buf.h"

#define TOKEN "dashboard-test-token-0123456789"

static struct dmt_redis redis;
static char *dir;
static redisContext *rc;
static struct dmt_replica rep;
static int port;

static void start_replica(const char *stage_ms, const char *max_jobs)
{
    char addr[64], ms[64], mj[64];
    const char *extra[] = {"--stages=test", ms, mj, "--dashboard", addr, NULL};

    port = dmt_free_port();
    snprintf(addr, sizeof(addr), "--admin-addr=127.0.0.1:%d", port);
    snprintf(ms, sizeof(ms), "--test-stage-ms=%s", stage_ms);
    snprintf(mj, sizeof(mj), "--max-jobs=%s", max_jobs);
    setenv("DREAM_ADMIN_TOKEN", TOKEN, 1); /* a secret: environment only */
    dmt_replica_start(&rep, &redis, dir, "dash", extra);
    dmt_replica_wait_ready(&rep, rc, 20000);
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    dmt_bed_start(&redis, &dir, &rc, "dashboard", 0);
}

static void teardown(void)
{
    dmt_bed_stop(&redis, &dir, &rc);
}

TestSuite(dashboard, .init = setup, .fini = teardown, .timeout = 300);

/* ---- HTTP ------------------------------------------------------------------------------------ */

struct resp {
    long status;
    struct dm_buf body;
    struct dm_buf headers;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    dm_buf_append(arg, p, size * n);
    return size * n;
}

/* One request: method, path, extra header lines (NULL-terminated, may be NULL), body. */
static void req(struct resp *r, const char *method, const char *path, const char *const *hdrs,
                const char *body)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[256];
    CURLcode cc;

    memset(r, 0, sizeof(*r));
    dm_buf_init(&r->body, 0);
    dm_buf_init(&r->headers, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    for (int i = 0; hdrs && hdrs[i]; i++) {
        h = curl_slist_append(h, hdrs[i]);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void resp_free(struct resp *r)
{
    dm_buf_free(&r->body);
    dm_buf_free(&r->headers);
}

static long status_of(const char *method, const char *path, const char *const *hdrs,
                      const char *body)
{
    struct resp r;
    long s;
    req(&r, method, path, hdrs, body);
    s = r.status;
    resp_free(&r);
    return s;
}

/* The value of response header name (case-insensitive) into out; 0 when found. */
static int header(const struct resp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers.data; p && *p;) {
        const char *e = strstr(p, "\r\n");
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') {
                v++;
            }
            snprintf(out, n, "%.*s", (int)(l - (size_t)(v - p)), v);
            return 0;
        }
        p = e ? e + 2 : NULL;
    }
    return -1;
}

static const char *const BEARER[] = {"Authorization: Bearer " TOKEN, NULL};

/* Logs in through the form; the session cookie ("dream_session=…") into cookie. */
static void login(char *cookie, size_t n)
{
    struct resp r;
    char set[512], loc[64];
    req(&r, "POST", "/login", NULL, "token=" TOKEN);
    cr_assert_eq(r.status, 303);
    cr_assert_eq(header(&r, "Location", loc, sizeof(loc)), 0);
    cr_assert_str_eq(loc, "/");
    cr_assert_eq(header(&r, "Set-Cookie", set, sizeof(set)), 0, "a session cookie");
    cr_assert(strstr(set, "HttpOnly"), "HttpOnly: %s", set);
    cr_assert(strstr(set, "SameSite=Strict"), "SameSite=Strict: %s", set);
    snprintf(cookie, n, "Cookie: %.*s", (int)strcspn(set, ";"), set);
    resp_free(&r);
}

static char *csrf_of(const char *cookie)
{
    const char *hdrs[] = {cookie, NULL};
    struct resp r;
    cJSON *o;
    char *csrf;
    req(&r, "GET", "/api/session", hdrs, NULL);
    cr_assert_eq(r.status, 200);
    o = cJSON_Parse(r.body.data);
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(o, "csrf")), "session: %s", r.body.data);
    csrf = strdup(cJSON_GetObjectItem(o, "csrf")->valuestring);
    cJSON_Delete(o);
    resp_free(&r);
    return csrf;
}

static char *hget(const char *id, const char *field)
{
    redisReply *r = redisCommand(rc, "HGET dream:job:%s %s", id, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static int wait_hfield(const char *id, const char *field, const char *want, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    while (dmt_now_ms() < deadline) {
        char *v = hget(id, field);
        int ok = v && strcmp(v, want) == 0;
        free(v);
        if (ok) {
            return 1;
        }
        dmt_sleep_ms(20);
    }
    return 0;
}

/* ---- settings ---------------------------------------------------------------------------------
 */

/* Runs dreamd with args (and DREAM_ADMIN_TOKEN unset); returns its exit code, its output in *out.
 */
static int dreamd_exit(const char *const *args, char **out)
{
    char bin[512], logpath[600];
    const char *argv[16];
    int n = 0, st;
    pid_t pid;

    snprintf(bin, sizeof(bin), "%s/dreamd", dmt_binary_dir());
    snprintf(logpath, sizeof(logpath), "%s/exit.log", dir);
    argv[n++] = bin;
    for (int i = 0; args[i] && n < 15; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    unsetenv("DREAM_ADMIN_TOKEN");
    unsetenv("DREAM_ADMIN_TOKEN_FILE");
    pid = dmt_spawn((char *const *)argv, NULL, logpath);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    *out = dmt_read_file(logpath);
    unlink(logpath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(dashboard, refuses_to_start_without_a_token_or_with_it_as_a_flag)
{
    char url[160], *out;
    const char *no_token[] = {url, "--dashboard", "--admin-addr=127.0.0.1:0", NULL};
    const char *as_flag[] = {url, "--dashboard", "--admin-addr=127.0.0.1:0",
                             "--admin-token=dashboard-flag-token-123456", NULL};

    snprintf(url, sizeof(url), "--redis-url=%s", dmt_redis_url(&redis));
    cr_assert_eq(dreamd_exit(no_token, &out), 2, "%s", out);
    cr_assert(strstr(out, "DREAM_ADMIN_TOKEN"), "names the setting: %s", out);
    free(out);
    cr_assert_eq(dreamd_exit(as_flag, &out), 2, "%s", out);
    cr_assert(strstr(out, "DREAM_ADMIN_TOKEN_FILE"), "a secret is not a flag: %s", out);
    cr_assert_null(strstr(out, "dashboard-flag-token-123456"), "the token is not echoed: %s", out);
    free(out);
}

/* ---- token, session, CSRF -------------------------------------------------------------------- */

Test(dashboard, token_guards_everything_but_metrics_and_healthz)
{
    const char *wrong[] = {"Authorization: Bearer " TOKEN "x", NULL};
    const char *bad_cookie[] = {"Cookie: dream_session=1.2.3", NULL};
    struct resp r;
    char v[512];

    start_replica("0", "8");
    cr_assert_eq(status_of("GET", "/metrics", NULL, NULL), 200);
    cr_assert_eq(status_of("GET", "/healthz", NULL, NULL), 200);
    cr_assert_eq(status_of("GET", "/api/jobs", NULL, NULL), 401);
    cr_assert_eq(status_of("GET", "/api/events", NULL, NULL), 401);
    cr_assert_eq(status_of("GET", "/api/jobs", wrong, NULL), 401);
    cr_assert_eq(status_of("GET", "/api/jobs", bad_cookie, NULL), 401);
    cr_assert_eq(status_of("POST", "/api/jobs/x/cancel", NULL, "{}"), 401);
    cr_assert_eq(status_of("GET", "/api/jobs", BEARER, NULL), 200);

    /* A wrong token at the form: back to the form, no cookie. */
    req(&r, "POST", "/login", NULL, "token=nope");
    cr_assert_eq(r.status, 303);
    cr_assert_neq(header(&r, "Set-Cookie", v, sizeof(v)), 0, "no cookie for a wrong token");
    resp_free(&r);

    /* The page: a strict policy, no inline script, scripts from a separate route. */
    req(&r, "GET", "/", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(header(&r, "Content-Security-Policy", v, sizeof(v)), 0);
    cr_assert(strstr(v, "script-src 'self'") && !strstr(v, "unsafe-inline"), "CSP: %s", v);
    cr_assert_eq(header(&r, "X-Content-Type-Options", v, sizeof(v)), 0);
    cr_assert_str_eq(v, "nosniff");
    cr_assert(strstr(r.body.data, "<script src=\"/app.js\"></script>"), "the page loads app.js");
    resp_free(&r);
    req(&r, "GET", "/app.js", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(header(&r, "Content-Type", v, sizeof(v)), 0);
    cr_assert(strstr(v, "javascript"), "%s", v);
    cr_assert_null(strstr(r.body.data, "innerHTML"), "the page never uses innerHTML");
    resp_free(&r);
}

Test(dashboard, an_action_needs_the_sessions_csrf_token_and_runs_dreamctls_script)
{
    char cookie[512], hdr[128];
    char *csrf, *by;
    const char *id = "dash-cancel-1";
    char *job = dmt_job_json(id, NULL, "builder");

    start_replica("60000", "8"); /* every stage waits a minute: the job is running */
    free(dmt_submit(rc, job));
    free(job);
    cr_assert(wait_hfield(id, "status", "running", 20000), "job running");

    login(cookie, sizeof(cookie));
    csrf = csrf_of(cookie);
    {
        const char *no_csrf[] = {cookie, NULL};
        const char *wrong[] = {cookie, "X-CSRF-Token: 0000", NULL};
        cr_assert_eq(status_of("POST", "/api/jobs/dash-cancel-1/cancel", no_csrf, "{}"), 403);
        cr_assert_eq(status_of("POST", "/api/jobs/dash-cancel-1/cancel", wrong, "{}"), 403);
    }
    {
        /* Another session's CSRF token is not this one's. */
        char other[512];
        char *csrf2;
        login(other, sizeof(other));
        csrf2 = csrf_of(other);
        cr_assert_str_neq(csrf, csrf2, "per-session CSRF tokens");
        snprintf(hdr, sizeof(hdr), "X-CSRF-Token: %s", csrf2);
        {
            const char *cross[] = {cookie, hdr, NULL};
            cr_assert_eq(status_of("POST", "/api/jobs/dash-cancel-1/cancel", cross, "{}"), 403);
        }
        free(csrf2);
    }
    cr_assert_eq(status_of("GET", "/api/jobs", (const char *[]){cookie, NULL}, NULL), 200);
    {
        char *st = hget(id, "status");
        cr_assert_str_eq(st, "running", "refused actions changed nothing");
        free(st);
    }
    snprintf(hdr, sizeof(hdr), "X-CSRF-Token: %s", csrf);
    {
        const char *ok[] = {cookie, hdr, NULL};
        struct resp r;
        req(&r, "POST", "/api/jobs/dash-cancel-1/cancel", ok, "{}");
        cr_assert_eq(r.status, 200, "cancel: %s", r.body.data);
        cr_assert(strstr(r.body.data, "\"requested\""), "a running job: %s", r.body.data);
        resp_free(&r);
        /* Not parked: approve is refused by the script, with the reason. */
        req(&r, "POST", "/api/jobs/dash-cancel-1/approve", ok, "{}");
        cr_assert_eq(r.status, 409, "approve of a running job: %s", r.body.data);
        cr_assert(strstr(r.body.data, "not parked"), "%s", r.body.data);
        resp_free(&r);
        cr_assert_eq(status_of("POST", "/api/jobs/nope-404/reject", ok, "{\"reason\":\"x\"}"), 404);
    }
    /* The CANCEL script recorded it, as `dreamctl cancel --by dashboard` would. */
    by = hget(id, "cancel");
    cr_assert_not_null(by, "cancel requested in the hash");
    free(by);
    /* Bearer needs no CSRF token (a browser never sends it by itself). */
    cr_assert_eq(status_of("POST", "/api/jobs/nope-404/cancel", BEARER, "{}"), 404);
    free(csrf);
}

/* ---- live events ------------------------------------------------------------------------------
 */

#define CLIENTS 10
#define JOBS 200

struct sse_client {
    char after[64];
    char **ids;
    size_t n, cap;
    struct dm_buf line;
    atomic_int stop;
    atomic_size_t got;
    int reconnect_at; /* > 0: close after this many ids and reconnect with Last-Event-ID */
    int reconnected;
    long status;
};

static size_t sse_data(char *p, size_t size, size_t n, void *arg)
{
    struct sse_client *s = arg;
    size_t len = size * n;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            dm_buf_append(&s->line, p + i, 1);
            continue;
        }
        if (s->line.len > 4 && strncmp(s->line.data, "id: ", 4) == 0) {
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 1024;
                s->ids = realloc(s->ids, s->cap * sizeof(*s->ids));
            }
            s->ids[s->n++] = strdup(s->line.data + 4);
            atomic_store(&s->got, s->n);
        }
        dm_buf_reset(&s->line);
        if (s->reconnect_at > 0 && !s->reconnected && s->n == (size_t)s->reconnect_at) {
            return 0; /* hang up in the middle of the stream */
        }
    }
    return len;
}

static int sse_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    struct sse_client *s = arg;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&s->stop) ? 1 : 0;
}

static void *sse_run(void *arg)
{
    struct sse_client *s = arg;
    char url[256], last[128];

    for (int round = 0; round < 2; round++) {
        CURL *c = curl_easy_init();
        struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/events?after=%s", port, s->after);
        if (round == 1) {
            /* What a browser's EventSource sends when it reconnects. */
            snprintf(last, sizeof(last), "Last-Event-ID: %s", s->ids[s->n - 1]);
            h = curl_slist_append(h, last);
            s->reconnected = 1;
        }
        dm_buf_reset(&s->line);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sse_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
        curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (!(s->reconnect_at > 0 && round == 0 && !atomic_load(&s->stop))) {
            break;
        }
    }
    return NULL;
}

static char *last_events_id(void)
{
    redisReply *r = redisCommand(rc, "XREVRANGE dream:events + - COUNT 1");
    char *id = strdup(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1
                          ? r->element[0]->element[0]->str
                          : "0-0");
    freeReplyObject(r);
    return id;
}

Test(dashboard, ten_sse_clients_get_every_event_of_200_jobs_in_order)
{
    struct sse_client cl[CLIENTS];
    pthread_t th[CLIENTS];
    char *after;
    redisReply *all;
    long long deadline;
    char id[64];

    start_replica("10", "64");
    /* A few events before the clients connect: they must not get these. */
    {
        char *job = dmt_job_json("before-1", NULL, "builder");
        free(dmt_submit(rc, job));
        free(job);
    }
    cr_assert(wait_hfield("before-1", "status", "complete", 30000));
    after = last_events_id();

    memset(cl, 0, sizeof(cl));
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(cl[i].after, sizeof(cl[i].after), "%s", after);
        dm_buf_init(&cl[i].line, 0);
        cl[i].reconnect_at = i == 0 ? 300 : 0; /* one reconnects in the middle */
        pthread_create(&th[i], NULL, sse_run, &cl[i]);
    }
    for (int i = 0; i < JOBS; i++) {
        char *job;
        snprintf(id, sizeof(id), "sse-%03d", i);
        job = dmt_job_json(id, NULL, "builder");
        free(dmt_submit(rc, job));
        free(job);
    }
    /* /metrics and /healthz answer while ten dashboards are connected. */
    cr_assert_eq(status_of("GET", "/metrics", NULL, NULL), 200);
    cr_assert_eq(status_of("GET", "/healthz", NULL, NULL), 200);
    for (int i = 0; i < JOBS; i++) {
        snprintf(id, sizeof(id), "sse-%03d", i);
        cr_assert(wait_hfield(id, "status", "complete", 120000), "job %s complete", id);
    }
    cr_assert_eq(status_of("GET", "/metrics", NULL, NULL), 200);

    all = redisCommand(rc, "XRANGE dream:events (%s +", after);
    cr_assert(all && all->type == REDIS_REPLY_ARRAY);
    cr_assert_geq(all->elements, (size_t)JOBS * 5, "every job wrote its events: %zu",
                  all->elements);
    deadline = dmt_now_ms() + 60000;
    for (int i = 0; i < CLIENTS; i++) {
        while (atomic_load(&cl[i].got) < all->elements && dmt_now_ms() < deadline) {
            dmt_sleep_ms(20);
        }
    }
    for (int i = 0; i < CLIENTS; i++) {
        atomic_store(&cl[i].stop, 1);
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < CLIENTS; i++) {
        cr_assert_eq(cl[i].status, 200, "client %d: HTTP %ld", i, cl[i].status);
        cr_assert_eq(cl[i].n, all->elements, "client %d got %zu of %zu events", i, cl[i].n,
                     all->elements);
        for (size_t k = 0; k < all->elements; k++) {
            cr_assert_str_eq(cl[i].ids[k], all->element[k]->element[0]->str,
                             "client %d, event %zu: out of order or missing", i, k);
        }
    }
    cr_assert(cl[0].reconnected, "client 0 reconnected with Last-Event-ID in the middle");
    freeReplyObject(all);
    for (int i = 0; i < CLIENTS; i++) {
        for (size_t k = 0; k < cl[i].n; k++) {
            free(cl[i].ids[k]);
        }
        free(cl[i].ids);
        dm_buf_free(&cl[i].line);
    }
    free(after);
}

Test(dashboard, a_client_that_stops_reading_is_dropped_and_metrics_keeps_answering)
{
    struct sockaddr_in sa;
    int fd, small = 4096;
    char reqtext[256], big[8192];
    redisReply *r;

    start_replica("0", "8");
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    snprintf(reqtext, sizeof(reqtext),
             "GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", TOKEN);
    cr_assert_eq(write(fd, reqtext, strlen(reqtext)), (ssize_t)strlen(reqtext));
    cr_assert(dmt_wait_in_file(rep.log, "event stream opened", 1, 10000), "stream opened");
    /* Far more events than the socket buffers hold; this client never reads. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 2000; i++) {
        r = redisCommand(rc, "XADD dream:events * event {\"pad\":\"%s\"}", big);
        freeReplyObject(r);
    }
    cr_assert_eq(status_of("GET", "/metrics", NULL, NULL), 200, "while the client is stuck");
    cr_assert_eq(status_of("GET", "/healthz", NULL, NULL), 200, "while the client is stuck");
    /* The server gives up on it (no progress for the connection timeout) ... */
    cr_assert(dmt_wait_in_file(rep.log, "event stream closed", 1, 60000),
              "the stuck client was dropped (log %s)", rep.log);
    /* ... and /metrics, /healthz never stopped answering. */
    cr_assert_eq(status_of("GET", "/metrics", NULL, NULL), 200);
    cr_assert_eq(status_of("GET", "/healthz", NULL, NULL), 200);
    close(fd);
}

/* An event larger than a client's whole buffer (DM_DASHBOARD_SSE_BUF) reaches the client as its
 * head (jobId, seq, status, "truncated"), and the events after it follow: the stream does not
 * read the same event again forever. */
Test(dashboard, an_event_larger_than_the_sse_buffer_does_not_stall_the_stream)
{
    struct sse_client cl;
    pthread_t th;
    static const char head[] = "{\"jobId\":\"big-1\",\"seq\":7,\"status\":\"running\",\"pad\":\"";
    size_t pad = 300u * 1024u; /* more than DM_DASHBOARD_SSE_BUF (256 KiB) */
    char *after, *ev = malloc(sizeof(head) + pad + 3), *big_id, *small_id;
    long long deadline;
    redisReply *r;

    cr_assert_not_null(ev);
    memcpy(ev, head, sizeof(head) - 1);
    memset(ev + sizeof(head) - 1, 'x', pad);
    memcpy(ev + sizeof(head) - 1 + pad, "\"}", 3);
    start_replica("0", "8");
    after = last_events_id();
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.after, sizeof(cl.after), "%s", after);
    dm_buf_init(&cl.line, 0);
    pthread_create(&th, NULL, sse_run, &cl);
    cr_assert(dmt_wait_in_file(rep.log, "event stream opened", 1, 10000), "stream opened");
    r = redisCommand(rc, "XADD dream:events * event %s", ev);
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    big_id = strdup(r->str);
    freeReplyObject(r);
    r = redisCommand(rc, "XADD dream:events * event {\"jobId\":\"small-1\",\"seq\":1}");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    small_id = strdup(r->str);
    freeReplyObject(r);
    deadline = dmt_now_ms() + 20000;
    while (atomic_load(&cl.got) < 2 && dmt_now_ms() < deadline) {
        dmt_sleep_ms(20);
    }
    atomic_store(&cl.stop, 1);
    pthread_join(th, NULL);
    cr_assert_eq(cl.n, 2, "the client got %zu of the 2 events", cl.n);
    cr_assert_str_eq(cl.ids[0], big_id);
    cr_assert_str_eq(cl.ids[1], small_id, "the event after the large one arrived");
    for (size_t k = 0; k < cl.n; k++) {
        free(cl.ids[k]);
    }
    free(cl.ids);
    dm_buf_free(&cl.line);
    free(big_id);
    free(small_id);
    free(after);
    free(ev);
}

/* ---- the page in a real browser ---------------------------------------------------------------
 */

/* A spec whose one database item the fake answers with a destructive migration (as in
 * test_gate.c): the gate parks the job. */
#define DROP_SPEC                                                                                  \
    "# Drop Users\n\nRetire the legacy accounts.\n\n## Database\n- legacy users table\n"
#define DROP_PATH "migrations/0001_create_users.sql"
#define DROP_SQL "-- retire the legacy table\nDROP TABLE users;\n"

static struct dmt_world world;

static void browser_teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(dashboard_browser, .fini = browser_teardown, .timeout = 600);

Test(dashboard_browser, login_live_list_job_page_approve_escaping_and_refusals_in_chromium)
{
    char pw[1024], script[1024], artifacts[1024], shot[1200], addr[64], ctl[1024];
    char e_url[128], e_tok[128], e_ctl[1100], e_redis[160], e_pw[1100], e_art[1100], e_spec[256];
    char e_path[4200];
    char *const node_argv[] = {"node", script, NULL};
    const char *extra[] = {"--dashboard", addr, NULL};
    struct dmt_replica web;
    char *log, *logpath;
    long long deadline;
    int st = -1;
    pid_t pid;

    snprintf(pw, sizeof(pw), "%s/.tools/playwright/node_modules/playwright-core", dmt_source_dir());
    snprintf(script, sizeof(script), "%s/tests/browser/dashboard.test.mjs", dmt_source_dir());
    snprintf(artifacts, sizeof(artifacts), "%s/test-artifacts/dashboard", dmt_binary_dir());
    snprintf(ctl, sizeof(ctl), "%s/dreamctl", dmt_binary_dir());
    cr_assert_eq(access("/usr/bin/chromium", X_OK), 0,
                 "Debian's chromium is missing: run scripts/bootstrap.sh");
    cr_assert_eq(access(pw, R_OK), 0, "playwright-core is missing (%s): run scripts/bootstrap.sh",
                 pw);

    dmt_world_start(&world, NULL);
    {
        cJSON *a = cJSON_CreateArray(), *o = cJSON_CreateObject();
        char *rules;
        cJSON_AddStringToObject(o, "match", "Target path: `" DROP_PATH "`");
        cJSON_AddStringToObject(o, "behaviour", "reply");
        cJSON_AddStringToObject(o, "content", DROP_SQL);
        cJSON_AddItemToArray(a, o);
        rules = cJSON_PrintUnformatted(a);
        dmt_fakeor_script(&world.llm, rules);
        free(rules);
        cJSON_Delete(a);
    }
    port = dmt_free_port();
    snprintf(addr, sizeof(addr), "--admin-addr=127.0.0.1:%d", port);
    setenv("DREAM_ADMIN_TOKEN", TOKEN, 1);
    dmt_world_replica(&world, &web, "web", extra);
    dmt_replica_wait_ready(&web, world.rc, 30000);

    snprintf(e_url, sizeof(e_url), "DASH_URL=http://127.0.0.1:%d", port);
    snprintf(e_tok, sizeof(e_tok), "DASH_TOKEN=%s", TOKEN);
    snprintf(e_ctl, sizeof(e_ctl), "DREAMCTL=%s", ctl);
    snprintf(e_redis, sizeof(e_redis), "DREAM_REDIS_URL=%s", dmt_redis_url(&world.redis));
    snprintf(e_pw, sizeof(e_pw), "PLAYWRIGHT_CORE=%s", pw);
    snprintf(e_art, sizeof(e_art), "ARTIFACT_DIR=%s", artifacts);
    snprintf(e_spec, sizeof(e_spec), "DROP_SPEC=%s", DROP_SPEC);
    snprintf(e_path, sizeof(e_path), "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin");
    {
        char *const env[] = {e_url, e_tok, e_ctl, e_redis, e_pw, e_art, e_spec, e_path, NULL};
        if (asprintf(&logpath, "%s/browser.log", world.dir) < 0) {
            cr_assert_fail("oom");
        }
        pid = dmt_spawn(node_argv, env, logpath);
    }
    deadline = dmt_now_ms() + 480000;
    while (dmt_now_ms() < deadline) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            break;
        }
        st = -1;
        dmt_sleep_ms(100);
    }
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    log = dmt_read_file(logpath);
    free(logpath);
    cr_log_info("browser test output:\n%s", log ? log : "(none)");
    cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "the browser checks failed (status %d):\n%s\n(dreamd log %s)", st,
              log ? log : "(no output)", web.log);
    cr_assert(strstr(log, "all browser checks passed"), "%s", log);
    free(log);
    snprintf(shot, sizeof(shot), "%s/dashboard-job.png", artifacts);
    cr_assert_eq(access(shot, R_OK), 0, "the screenshot is a test artifact: %s", shot);
}

/* ---- views ---------------------------------------------------------------------------------- */

static cJSON *get_json(const char *path)
{
    struct resp r;
    cJSON *o;
    req(&r, "GET", path, BEARER, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body.data);
    o = cJSON_Parse(r.body.data);
    cr_assert_not_null(o, "JSON: %s", r.body.data);
    resp_free(&r);
    return o;
}

/* The jobIds of a /api/jobs answer, comma-separated, in order; source into src. */
static void list_of(const char *path, char *ids, size_t n, char *src, size_t sn)
{
    cJSON *o = get_json(path), *it;
    ids[0] = '\0';
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "jobs"))
    {
        size_t l = strlen(ids);
        snprintf(ids + l, n - l, "%s%s", l ? "," : "",
                 cJSON_GetStringValue(cJSON_GetObjectItem(it, "jobId")));
    }
    snprintf(src, sn, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "source")));
    cJSON_Delete(o);
}

static void submit_as(const char *id, const char *owner, const char *user)
{
    cJSON *o;
    char *s = dmt_job_json(id, NULL, "builder");
    o = cJSON_Parse(s);
    free(s);
    cJSON_ReplaceItemInObject(o, "repoOwner", cJSON_CreateString(owner));
    cJSON_ReplaceItemInObject(o, "userId", cJSON_CreateString(user));
    s = cJSON_PrintUnformatted(o);
    free(dmt_submit(rc, s));
    free(s);
    cJSON_Delete(o);
}

Test(dashboard, the_job_list_filters_and_reads_the_index_when_it_exists)
{
    char ids[512], src[16];

    start_replica("0", "8");
    submit_as("list-a", "acme", "ann");
    cr_assert(wait_hfield("list-a", "status", "complete", 20000));
    submit_as("list-b", "other", "bob");
    cr_assert(wait_hfield("list-b", "status", "complete", 20000));

    /* The job index (kept by the Lua scripts), newest first. */
    list_of("/api/jobs", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-b,list-a");
    cr_assert_str_eq(src, "index");
    list_of("/api/jobs?repo=acme/app", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-a");
    list_of("/api/jobs?user=bob", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-b");
    list_of("/api/jobs?status=failed,running", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "");
    list_of("/api/jobs?status=complete&since=1h", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-b,list-a");
    list_of("/api/jobs?status=complete", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-b,list-a");
    cr_assert_str_eq(src, "index");
    list_of("/api/jobs?since=4102444800000", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "", "nothing created after 2100");
    cr_assert_eq(status_of("GET", "/api/jobs?since=yesterday", BEARER, NULL), 400);

    /* 600 newer jobs (index members whose hashes are gone): a filter reads the set it names
     * (the repository's, the user's, the statuses'), not only the newest 500 of all jobs. */
    for (int i = 0; i < 600; i++) {
        long long ms = (long long)time(NULL) * 1000 + 1000 + i; /* (the index's clock: epoch) */
        freeReplyObject(redisCommand(rc, "ZADD dream:idx:created %lld gone-%03d", ms, i));
    }
    list_of("/api/jobs?repo=acme/app", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-a", "found behind 600 newer jobs");
    list_of("/api/jobs?user=bob", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-b", "found behind 600 newer jobs");
    list_of("/api/jobs?status=failed,complete", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-b,list-a", "found behind 600 newer jobs");
    cr_assert_str_eq(src, "index");

    /* Without the index (keys written before it existed): a SCAN of the job hashes. */
    freeReplyObject(redisCommand(rc, "DEL dream:idx:created"));
    list_of("/api/jobs", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(src, "scan");
    cr_assert_str_eq(ids, "list-b,list-a");
    list_of("/api/jobs?repo=acme/app", ids, sizeof(ids), src, sizeof(src));
    cr_assert_str_eq(ids, "list-a");
}

Test(dashboard, the_job_page_parked_workers_and_a_dead_letter_requeued)
{
    const char *ok_hdrs[3];
    char cookie[512], hdr[128], path[128];
    cJSON *o, *job;
    char *csrf, *entry;
    redisReply *r;

    start_replica("0", "8");
    submit_as("page-a", "acme", "ann");
    cr_assert(wait_hfield("page-a", "status", "complete", 20000));
    o = get_json("/api/jobs/page-a");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "title")), "Todo API");
    cr_assert_geq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "events")), 5);
    cr_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "hash"), "status")),
        "complete");
    cJSON_Delete(o);
    cr_assert_eq(status_of("GET", "/api/jobs/nope-404", BEARER, NULL), 404);
    o = get_json("/api/workers");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "workers")), 1);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(
                         cJSON_GetArrayItem(cJSON_GetObjectItem(o, "workers"), 0), "name")),
                     "dash");
    cJSON_Delete(o);
    o = get_json("/api/parked");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "parked")), 0);
    cJSON_Delete(o);

    /* A dead letter carrying a job (as the engine writes one), requeued from the dashboard:
     * the REQUEUE script puts it back and the replica runs it. */
    entry = dmt_job_json("dead-a", NULL, "builder");
    r = redisCommand(rc, "XADD dream:dead * entry 1-1 job %s reason %s attempts 4 ts x", entry,
                     "delivered 4 times (max 3)");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    snprintf(path, sizeof(path), "/api/dead/%s/requeue", r->str);
    freeReplyObject(r);
    free(entry);
    o = get_json("/api/dead");
    job = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "dead"), 0);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "jobId")), "dead-a");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(job, "requeueable")));
    cJSON_Delete(o);
    login(cookie, sizeof(cookie));
    csrf = csrf_of(cookie);
    snprintf(hdr, sizeof(hdr), "X-CSRF-Token: %s", csrf);
    ok_hdrs[0] = cookie;
    ok_hdrs[1] = hdr;
    ok_hdrs[2] = NULL;
    cr_assert_eq(status_of("POST", path, (const char *[]){cookie, NULL}, "{}"), 403);
    cr_assert_eq(status_of("POST", path, ok_hdrs, "{}"), 200);
    cr_assert(wait_hfield("dead-a", "status", "complete", 20000), "the requeued job ran");
    cr_assert_eq(status_of("POST", path, ok_hdrs, "{}"), 404, "gone from the dead letters");
    free(csrf);
}

Test(dashboard, a_cancelled_job_is_retried_from_the_dashboard_through_the_retry_script)
{
    struct resp r;
    char *job = dmt_job_json("retry-a", NULL, "builder");

    start_replica("300", "8");
    free(dmt_submit(rc, job));
    free(job);
    cr_assert(wait_hfield("retry-a", "status", "running", 20000));
    cr_assert_eq(status_of("POST", "/api/jobs/retry-a/cancel", BEARER, "{}"), 200);
    cr_assert(wait_hfield("retry-a", "status", "cancelled", 20000), "cancelled");
    req(&r, "POST", "/api/jobs/retry-a/retry", BEARER, "{}");
    cr_assert_eq(r.status, 200, "retry: %s", r.body.data);
    resp_free(&r);
    cr_assert(wait_hfield("retry-a", "status", "complete", 30000), "the retried job completed");
    {
        char *by = hget("retry-a", "retried_by");
        cr_assert_str_eq(by, "dashboard", "the RETRY script recorded the dashboard");
        free(by);
    }
    /* A job that completed is not retryable: the script's refusal, with its reason. */
    req(&r, "POST", "/api/jobs/retry-a/retry", BEARER, "{}");
    cr_assert_eq(r.status, 409, "%s", r.body.data);
    resp_free(&r);
}
