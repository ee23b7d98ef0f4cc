/*
 * Integration tests of the http module (curl multi on libuv) against the fake OpenRouter server:
 * plain requests, header lookup, asynchronous completion, concurrency (the server's peak in
 * flight), connection reuse, size caps, total and low-speed deadlines, streaming aborts,
 * cancellation and shutdown with requests in flight. Every test closes its loop cleanly.
 */
#include "dream/io/http.h"
#include "dream/io/loop.h"

#include "dmtest.h"
#include "fakeor.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dmt_fakeor fake;
static uv_loop_t loop;
static struct dm_http *http;
static int closed;

static void setup(void)
{
    struct dm_error err = {0};
    dmt_fakeor_start(&fake, NULL);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_http_new(&http, &loop, NULL, &err), 0, "%s", err.msg);
    closed = 0;
}

static void on_closed(void *arg)
{
    (void)arg;
    closed++;
}

static void close_all(void)
{
    if (http) {
        dm_http_close(http, on_closed, NULL);
        http = NULL;
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert_eq(closed, 1, "the close callback fires once");
    }
    cr_assert_eq(dm_loop_drain_close(&loop), 0, "every handle closed");
}

static void teardown(void)
{
    dmt_fakeor_stop(&fake);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

struct result {
    int done;
    int rc;
    long status;
    char err[512];
    char *body;
    size_t body_bytes;
    char ctype[128];
    char retry_after[64];
    long long elapsed;
    int in_start;
    int fired_in_start;
};

static void on_done(void *arg, int rc, struct dm_http_response *resp, const struct dm_error *err)
{
    struct result *r = arg;
    cr_assert(err != NULL && resp != NULL);
    r->done++;
    r->fired_in_start = r->in_start;
    r->rc = rc;
    r->status = resp->status;
    snprintf(r->err, sizeof(r->err), "%s", err->msg);
    r->body = dm_buf_detach(&resp->body);
    r->body_bytes = resp->body_bytes;
    r->elapsed = resp->elapsed_ms;
    if (!dm_http_response_header(resp, "CONTENT-type", r->ctype, sizeof(r->ctype))) {
        r->ctype[0] = 0;
    }
    if (!dm_http_response_header(resp, "retry-after", r->retry_after, sizeof(r->retry_after))) {
        r->retry_after[0] = 0;
    }
}

static const char *auth_headers[] = {"Authorization: Bearer test", "Content-Type: application/json",
                                     NULL};

static char chat_body[2048];

/* A chat request whose user message carries text (markers go here). */
static const char *chat(const char *text, int stream)
{
    snprintf(chat_body, sizeof(chat_body),
             "{\"model\":\"openai/gpt-4o\",\"max_tokens\":1000,\"stream\":%s,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             stream ? "true" : "false", text);
    return chat_body;
}

static struct dm_http_request post(const char *body, struct result *r)
{
    static char url[128];
    struct dm_http_request q;
    memset(&q, 0, sizeof(q));
    snprintf(url, sizeof(url), "%s/chat/completions", fake.base);
    q.method = "POST";
    q.url = url;
    q.headers = auth_headers;
    q.body = body;
    q.body_len = strlen(body);
    q.on_done = on_done;
    q.arg = r;
    return q;
}

static void start(const struct dm_http_request *q, struct result *r, struct dm_http_call **call)
{
    struct dm_error err = {0};
    r->in_start = 1;
    cr_assert_eq(dm_http_start(http, q, call, &err), 0, "%s", err.msg);
    r->in_start = 0;
}

static void run_until(struct result *r, int n)
{
    while (r->done < n && uv_run(&loop, UV_RUN_ONCE)) {
    }
}

Test(http, get_with_headers_and_async_completion)
{
    struct result r = {0};
    struct dm_http_request q;
    char url[128];
    memset(&q, 0, sizeof(q));
    snprintf(url, sizeof(url), "%s/models", fake.base);
    q.url = url;
    q.on_done = on_done;
    q.arg = &r;
    start(&q, &r, NULL);
    cr_assert_eq(r.done, 0, "never inside the start call");
    cr_assert_eq(dm_http_in_flight(http), 1);
    run_until(&r, 1);
    cr_assert_eq(r.done, 1);
    cr_assert_eq(r.fired_in_start, 0);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.ctype, "application/json", "case-insensitive header lookup");
    cr_assert(strstr(r.body, "\"anthropic/claude-sonnet-4.5\""), "%s", r.body);
    cr_assert_eq(dm_http_in_flight(http), 0);
    free(r.body);
    close_all();
}

Test(http, post_non_2xx_keeps_body_and_headers)
{
    struct result r = {0};
    struct dm_http_request q = post(chat("x [[fake:429:7]]", 1), &r);
    start(&q, &r, NULL);
    run_until(&r, 1);
    cr_assert_eq(r.rc, 0, "an HTTP error status is still a response: %s", r.err);
    cr_assert_eq(r.status, 429);
    cr_assert_str_eq(r.retry_after, "7");
    cr_assert(strstr(r.body, "Rate limit exceeded"), "%s", r.body);
    free(r.body);
    close_all();
}

Test(http, requests_overlap_and_reuse_connections)
{
    enum { N = 16 };
    struct result r[N];
    long long t0 = dmt_now_ms();
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++) {
        struct dm_http_request q = post(chat("[[fake:wait:400]]", 0), &r[i]);
        start(&q, &r[i], NULL);
    }
    cr_assert_eq(dm_http_in_flight(http), N);
    for (int i = 0; i < N; i++) {
        run_until(&r[i], 1);
        cr_assert_eq(r[i].rc, 0, "%s", r[i].err);
        cr_assert_eq(r[i].status, 200);
        free(r[i].body);
    }
    long long wall = dmt_now_ms() - t0;
    cr_assert_lt(wall, N * 400 / 3, "16 x 400 ms requests took %lld ms: not concurrent", wall);
    cr_assert_eq(dmt_fakeor_stat(&fake, "peak_in_flight"), N);

    /* Sequential requests reuse one connection: the server sees one client port. */
    free(dmt_fakeor_http(&fake, "POST", "/_fake/reset", "{}"));
    for (int i = 0; i < 5; i++) {
        struct result s = {0};
        struct dm_http_request q = post(chat("hello", i % 2), &s);
        start(&q, &s, NULL);
        run_until(&s, 1);
        cr_assert_eq(s.rc, 0, "%s", s.err);
        free(s.body);
    }
    char *recs = dmt_fakeor_http(&fake, "GET", "/_fake/requests", NULL);
    cJSON *arr = cJSON_Parse(recs);
    cr_assert_eq(cJSON_GetArraySize(arr), 5);
    double port0 = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "client_port")->valuedouble;
    for (int i = 1; i < 5; i++) {
        cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "client_port")->valuedouble,
                     port0, "request %d used a new connection", i);
    }
    cJSON_Delete(arr);
    free(recs);
    close_all();
}

Test(http, response_cap_is_a_limit_error)
{
    struct result r = {0};
    struct dm_http_request q = post(chat("[[fake:huge:3000000]]", 0), &r);
    q.max_response_bytes = 1 << 20;
    start(&q, &r, NULL);
    run_until(&r, 1);
    cr_assert_eq(r.rc, DM_ERR_LIMIT, "rc %d: %s", r.rc, r.err);
    cr_assert(strstr(r.err, "exceeds"), "%s", r.err);
    cr_assert_leq(r.body_bytes, (size_t)(1 << 20) + 65536);
    free(r.body);

    /* Streamed too (no Content-Length to refuse up front). */
    struct result s = {0};
    struct dm_http_request q2 = post(chat("[[fake:huge:3000000]]", 1), &s);
    q2.max_response_bytes = 1 << 20;
    start(&q2, &s, NULL);
    run_until(&s, 1);
    cr_assert_eq(s.rc, DM_ERR_LIMIT, "rc %d: %s", s.rc, s.err);
    free(s.body);
    close_all();
}

Test(http, total_deadline)
{
    struct result r = {0};
    struct dm_http_request q = post(chat("[[fake:wait:5000]]", 0), &r);
    long long t0 = dmt_now_ms();
    q.timeout_ms = 400;
    start(&q, &r, NULL);
    run_until(&r, 1);
    cr_assert_eq(r.rc, DM_ERR_TIMEOUT, "rc %d: %s", r.rc, r.err);
    cr_assert_lt(dmt_now_ms() - t0, 2500);
    cr_assert_eq(strstr(r.err, "Bearer"), NULL, "no header values in errors");
    free(r.body);
    close_all();
}

Test(http, low_speed_deadline_on_a_slow_drip)
{
    struct result r = {0};
    struct dm_http_request q = post(chat("[[fake:drip:200]]", 0), &r);
    long long t0 = dmt_now_ms();
    q.timeout_ms = 30000;
    q.low_speed_limit = 100; /* bytes/s; the drip sends 5 */
    q.low_speed_time_s = 1;
    start(&q, &r, NULL);
    run_until(&r, 1);
    cr_assert_eq(r.rc, DM_ERR_TIMEOUT, "rc %d: %s", r.rc, r.err);
    cr_assert_lt(dmt_now_ms() - t0, 5000, "low-speed limit, not the total deadline");
    cr_assert_gt(r.body_bytes, 0);
    free(r.body);
    close_all();
}

struct stream_ctx {
    struct result r;
    size_t bytes;
    int calls;
    int abort_after;
};

static int on_stream_data(void *arg, long status, const char *data, size_t len)
{
    struct stream_ctx *s = arg;
    cr_assert_eq(status, 200);
    cr_assert(len > 0 && data);
    s->bytes += len;
    s->calls++;
    if (s->abort_after && s->calls >= s->abort_after) {
        return DM_ERR_BUDGET;
    }
    return 0;
}

static void on_stream_done(void *arg, int rc, struct dm_http_response *resp,
                           const struct dm_error *err)
{
    struct stream_ctx *s = arg;
    on_done(&s->r, rc, resp, err);
}

Test(http, streaming_data_and_abort_from_the_data_callback)
{
    struct stream_ctx s = {0};
    struct dm_http_request q = post(chat("Path: src/routes/a.ts", 1), &s.r);
    q.on_data = on_stream_data;
    q.on_done = on_stream_done;
    q.arg = &s;
    start(&q, &s.r, NULL);
    run_until(&s.r, 1);
    cr_assert_eq(s.r.rc, 0, "%s", s.r.err);
    cr_assert_gt(s.bytes, 100);
    cr_assert_eq(s.r.body_bytes, s.bytes);
    cr_assert(s.r.body == NULL || s.r.body[0] == 0, "2xx streamed bodies are not kept");
    free(s.r.body);

    struct stream_ctx a = {0};
    a.abort_after = 1;
    q = post(chat("[[fake:drip:50]]", 1), &a.r);
    q.on_data = on_stream_data;
    q.on_done = on_stream_done;
    q.arg = &a;
    start(&q, &a.r, NULL);
    run_until(&a.r, 1);
    cr_assert_eq(a.r.rc, DM_ERR_BUDGET, "the data callback's code: %d %s", a.r.rc, a.r.err);
    cr_assert_eq(a.calls, 1);
    free(a.r.body);
    close_all();
}

static struct dm_http_call *to_cancel;

static void on_cancel_timer(uv_timer_t *t)
{
    dm_http_cancel(to_cancel);
    uv_close((uv_handle_t *)t, NULL);
}

Test(http, cancel_is_asynchronous_and_exactly_once)
{
    struct result r = {0}, r2 = {0};
    struct dm_http_call *call;
    struct dm_http_request q = post(chat("[[fake:wait:3000]]", 0), &r);
    uv_timer_t t;
    long long t0 = dmt_now_ms();
    start(&q, &r, &call);
    /* Cancel right away: still no callback inside the cancel call. */
    dm_http_cancel(call);
    dm_http_cancel(call);
    cr_assert_eq(r.done, 0);
    run_until(&r, 1);
    cr_assert_eq(r.rc, DM_ERR_CANCELLED);

    /* Cancel while the request waits on the server. */
    q = post(chat("[[fake:wait:3000]]", 0), &r2);
    start(&q, &r2, &to_cancel);
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_cancel_timer, 200, 0);
    run_until(&r2, 1);
    cr_assert_eq(r2.rc, DM_ERR_CANCELLED, "%s", r2.err);
    cr_assert_lt(dmt_now_ms() - t0, 2500);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(r.done, 1);
    cr_assert_eq(r2.done, 1);
    free(r.body);
    free(r2.body);
    close_all();
}

Test(http, close_with_requests_in_flight)
{
    enum { N = 8 };
    struct result r[N];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < N; i++) {
        struct dm_http_request q =
            post(chat(i % 2 ? "[[fake:wait:3000]]" : "[[fake:drip:100]]", i % 2), &r[i]);
        start(&q, &r[i], NULL);
    }
    /* Let them reach the server. */
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        dmt_sleep_ms(10);
    }
    dm_http_close(http, on_closed, NULL);
    http = NULL;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(r[i].done, 0, "no completion inside dm_http_close");
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(r[i].done, 1);
        cr_assert_eq(r[i].rc, DM_ERR_CANCELLED, "%d: %s", r[i].rc, r[i].err);
        free(r[i].body);
    }
    cr_assert_eq(closed, 1);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

static void on_done_then_close(void *arg, int rc, struct dm_http_response *resp,
                               const struct dm_error *err)
{
    struct result *r = arg;
    on_done(r, rc, resp, err);
    if (r->done == 1) {
        dm_http_close(http, on_closed, NULL);
        http = NULL;
    }
}

Test(http, close_from_a_completion_callback)
{
    struct result a = {0}, b = {0};
    struct dm_http_request q = post(chat("quick", 0), &a);
    q.on_done = on_done_then_close;
    start(&q, &a, NULL);
    q = post(chat("[[fake:wait:3000]]", 0), &b);
    start(&q, &b, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_assert_eq(b.rc, DM_ERR_CANCELLED);
    cr_assert_eq(closed, 1);
    free(a.body);
    free(b.body);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

Test(http, refused_connection_and_bad_input)
{
    struct result r = {0};
    struct dm_http_request q;
    struct dm_error err = {0};
    char url[128];
    int port = dmt_free_port();
    memset(&q, 0, sizeof(q));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nothing?token=secret", port);
    q.url = url;
    q.on_done = on_done;
    q.arg = &r;
    start(&q, &r, NULL);
    run_until(&r, 1);
    cr_assert_eq(r.rc, DM_ERR_IO, "%d %s", r.rc, r.err);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(strstr(r.err, "secret"), NULL, "no query strings in errors: %s", r.err);
    free(r.body);

    q.url = "ftp://example.com/";
    cr_assert_eq(dm_http_start(http, &q, NULL, &err), DM_ERR_INVALID);
    q.url = url;
    q.on_done = NULL;
    cr_assert_eq(dm_http_start(http, &q, NULL, &err), DM_ERR_INVALID);
    const char *bad_headers[] = {"No colon here", NULL};
    q.on_done = on_done;
    q.headers = bad_headers;
    cr_assert_eq(dm_http_start(http, &q, NULL, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_http_in_flight(http), 0);
    close_all();
}
