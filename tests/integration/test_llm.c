/*
 * Integration tests of the llm module against the fake OpenRouter server: the request it sends
 * (headers, body), streamed and plain replies, usage and cost (API and price table), every
 * misbehaviour of the fake and its documented outcome (retries honouring Retry-After, what is
 * never retried, errors inside a 200, cut streams, truncation, caps, deadlines, garbage), a
 * budget cut of a stream, cancellation, concurrency and shutdown with calls in flight.
 */
#include "dream/domain/budget.h"
#include "dream/io/http.h"
#include "dream/io/llm.h"
#include "dream/core/log.h"
#include "dream/io/loop.h"
#include "dream/io/models.h"
#include "dream/domain/price.h"

#include "dmtest.h"
#include "fakeor.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "sk-or-v1-TESTKEY-0123456789abcdef"
#define MODEL "anthropic/claude-sonnet-4.5"

static struct dmt_fakeor fake;
static uv_loop_t loop;
static struct dm_http *http;
static struct dm_llm *llm;
static struct dm_price_table *prices;

static struct dm_llm_opts base_opts(void)
{
    struct dm_llm_opts o = DM_LLM_OPTS_INIT;
    o.base_url = fake.base;
    o.api_key = KEY;
    o.referer = "https://example.test/dream";
    o.title = "dreamd-tests";
    o.backoff_base_ms = 50;
    o.backoff_max_ms = 200;
    o.prices = prices;
    return o;
}

static void make_llm(const struct dm_llm_opts *o)
{
    struct dm_error err = {0};
    if (llm) {
        dm_llm_free(llm);
    }
    cr_assert_eq(dm_llm_new(&llm, http, &loop, o, &err), 0, "%s", err.msg);
}

static void setup(void)
{
    struct dm_error err = {0};
    struct dm_llm_opts o;
    dmt_fakeor_start(&fake, NULL);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_http_new(&http, &loop, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_price_table_new(&prices), 0);
    llm = NULL;
    o = base_opts();
    make_llm(&o);
}

static void teardown(void)
{
    dmt_fakeor_stop(&fake);
    dm_price_table_free(prices);
}

/* Frees the client, closes HTTP and asserts every handle is gone. */
static void close_all(void)
{
    cr_assert_eq(dm_llm_in_flight(llm), 0);
    dm_llm_free(llm);
    llm = NULL;
    dm_http_close(http, NULL, NULL);
    http = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

TestSuite(llm, .init = setup, .fini = teardown, .timeout = 90);

struct outcome {
    int done;
    int rc;
    char err[512];
    char *content;
    struct dm_llm_result res; /* copy, content pointer cleared */
    int progress_calls;
    long long last_tokens;
    int token_calls;
    struct dm_budget *budget; /* when set, the tokens hook checks the stream against it */
    struct dm_budget_hold *hold;
};

static void on_done(void *arg, int rc, struct dm_llm_result *res, const struct dm_error *err)
{
    struct outcome *o = arg;
    cr_assert(res && err);
    o->done++;
    o->rc = rc;
    snprintf(o->err, sizeof(o->err), "%s", err->msg);
    o->content = res->content;
    res->content = NULL;
    o->res = *res;
    o->res.content = NULL;
}

static void on_progress(void *arg, size_t bytes, long long tokens)
{
    struct outcome *o = arg;
    (void)bytes;
    o->progress_calls++;
    o->last_tokens = tokens;
}

static int on_tokens(void *arg, long long tokens)
{
    struct outcome *o = arg;
    o->token_calls++;
    o->last_tokens = tokens;
    if (o->budget) {
        return dm_budget_stream_check(o->budget, o->hold, tokens, NULL) != 0;
    }
    return 0;
}

static struct dm_llm_request request(const char *user, int stream, struct outcome *o)
{
    struct dm_llm_request r;
    memset(&r, 0, sizeof(r));
    r.model = MODEL;
    r.system = "You write one file.";
    r.user = user;
    r.max_tokens = 4096;
    r.temperature = 0.3;
    r.stream = stream;
    r.job_id = "job-test";
    r.progress_interval_ms = 1;
    r.on_progress = on_progress;
    r.on_tokens = on_tokens;
    r.on_done = on_done;
    r.arg = o;
    return r;
}

static void run(struct dm_llm_request *r, struct outcome *o)
{
    struct dm_error err = {0};
    cr_assert_eq(dm_llm_start(llm, r, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(o->done, 0, "never inside dm_llm_start");
    while (o->done == 0 && uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert_eq(o->done, 1);
}

/* Runs one call and returns its outcome (content freed by the caller). */
static struct outcome call(const char *user, int stream)
{
    struct outcome o;
    memset(&o, 0, sizeof(o));
    struct dm_llm_request r = request(user, stream, &o);
    run(&r, &o);
    return o;
}

static cJSON *last_request(void)
{
    char *b = dmt_fakeor_http(&fake, "GET", "/_fake/requests", NULL);
    cJSON *arr = cJSON_Parse(b);
    cJSON *last = cJSON_DetachItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
    free(b);
    cJSON_Delete(arr);
    cr_assert(last);
    return last;
}

Test(llm, plain_call_sends_the_documented_request)
{
    struct outcome o = call("Task: write\nPath: src/routes/todo.ts\n", 0);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert(strstr(o.content, "new Hono()"), "valid TS for a .ts path: %s", o.content);
    cr_assert_str_eq(o.res.id, "gen-fake-1");
    cr_assert_str_eq(o.res.finish_reason, "stop");
    cr_assert_eq(o.res.usage_known, 1);
    cr_assert_gt(o.res.prompt_tokens, 0);
    cr_assert_gt(o.res.completion_tokens, 0);
    cr_assert_eq(o.res.cost_source, DM_LLM_COST_API);
    cr_assert_float_eq(o.res.cost_usd,
                       (o.res.prompt_tokens * 3.0 + o.res.completion_tokens * 15.0) / 1e6, 1e-9);
    cr_assert_eq(o.res.attempts, 1);
    cr_assert_eq(o.res.billed, 1);
    free(o.content);

    cJSON *req = last_request();
    cJSON *h = cJSON_GetObjectItem(req, "headers");
    cJSON *body = cJSON_GetObjectItem(req, "body");
    cr_assert_str_eq(cJSON_GetObjectItem(h, "Authorization")->valuestring, "Bearer " KEY);
    cr_assert_str_eq(cJSON_GetObjectItem(h, "HTTP-Referer")->valuestring,
                     "https://example.test/dream");
    cr_assert_str_eq(cJSON_GetObjectItem(h, "X-OpenRouter-Title")->valuestring, "dreamd-tests");
    cr_assert_str_eq(cJSON_GetObjectItem(h, "Content-Type")->valuestring, "application/json");
    cr_assert_str_eq(cJSON_GetObjectItem(body, "model")->valuestring, MODEL);
    cr_assert_eq(cJSON_GetObjectItem(body, "max_tokens")->valuedouble, 4096);
    cr_assert_float_eq(cJSON_GetObjectItem(body, "temperature")->valuedouble, 0.3, 1e-9);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(body, "stream")));
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "usage"), "include")));
    cJSON *msgs = cJSON_GetObjectItem(body, "messages");
    cr_assert_eq(cJSON_GetArraySize(msgs), 2);
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring,
                     "system");
    cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "role")->valuestring, "user");
    cr_assert_null(cJSON_GetObjectItem(body, "response_format"));
    cr_assert_null(cJSON_GetObjectItem(body, "provider"));
    cJSON_Delete(req);
    close_all();
}

Test(llm, streamed_call_with_progress_and_response_format)
{
    struct outcome o;
    memset(&o, 0, sizeof(o));
    struct dm_llm_request r =
        request("Path: src/components/todo-list.tsx\n[[fake:slow:20]]", 1, &o);
    r.response_format = "{\"type\":\"json_object\"}";
    run(&r, &o);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert(strstr(o.content, "export function TodoList"), "%s", o.content);
    cr_assert_str_eq(o.res.id, "gen-fake-1");
    cr_assert_eq(o.res.usage_known, 1, "usage from the final chunk with empty choices");
    cr_assert_gt(o.progress_calls, 1);
    cr_assert_gt(o.token_calls, 1);
    free(o.content);
    cJSON *req = last_request();
    cJSON *body = cJSON_GetObjectItem(req, "body");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(body, "stream")));
    cr_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "response_format"), "type")->valuestring,
        "json_object");
    cr_assert(cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "provider"), "require_parameters")));
    cJSON_Delete(req);
    close_all();
}

Test(llm, cost_from_the_price_table_when_usage_has_none)
{
    free(dmt_fakeor_http(&fake, "POST", "/_fake/config", "{\"cost\": false}"));
    struct outcome o = call("Path: migrations/todos.sql", 1);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert(strstr(o.content, "CREATE TABLE IF NOT EXISTS todos"), "%s", o.content);
    cr_assert_eq(o.res.cost_source, DM_LLM_COST_TABLE);
    cr_assert_float_eq(o.res.cost_usd,
                       (o.res.prompt_tokens * 3.0 + o.res.completion_tokens * 15.0) / 1e6, 1e-12);
    free(o.content);
    close_all();
}

Test(llm, retries_429_honouring_retry_after)
{
    long long t0 = dmt_now_ms();
    struct outcome o = call("Path: a.json\n[[fake:429:1*1]]", 1);
    long long wall = dmt_now_ms() - t0;
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert_eq(o.res.attempts, 2);
    cr_assert_geq(wall, 950, "Retry-After: 1 was honoured (took %lld ms)", wall);
    cr_assert_eq(dmt_fakeor_path_count(&fake, "a.json"), 2);
    cr_assert(strstr(o.content, "\"generated\": true"), "%s", o.content);
    free(o.content);

    /* Retry-After as an HTTP date. */
    t0 = dmt_now_ms();
    o = call("Path: b.json\n[[fake:retry-date:2*1]]", 0);
    wall = dmt_now_ms() - t0;
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert_eq(o.res.attempts, 2);
    cr_assert_geq(wall, 900, "HTTP-date Retry-After honoured (took %lld ms)", wall);
    free(o.content);
    close_all();
}

Test(llm, retries_5xx_408_and_inflight_402)
{
    const char *once[] = {"500", "502", "503", "504", "408", "402-inflight:0"};
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
        char user[128];
        snprintf(user, sizeof(user), "Path: f%zu.ts\n[[fake:%s*2]]", i, once[i]);
        struct outcome o = call(user, (int)(i % 2));
        cr_assert_eq(o.rc, 0, "%s: %s", once[i], o.err);
        cr_assert_eq(o.res.attempts, 3, "%s retried twice", once[i]);
        free(o.content);
    }
    cr_assert_eq(dmt_fakeor_behaviour_count(&fake, "402-inflight"), 2);

    /* Retries run out. */
    struct dm_llm_opts opts = base_opts();
    opts.max_attempts = 2;
    make_llm(&opts);
    struct outcome o = call("Path: g.ts\n[[fake:503]]", 1);
    cr_assert_eq(o.rc, DM_ERR_TRANSIENT, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "503"), "%s", o.err);
    cr_assert(strstr(o.err, "2 attempts"), "%s", o.err);
    cr_assert_eq(o.res.billed, 0);
    cr_assert_eq(dmt_fakeor_path_count(&fake, "g.ts"), 2);
    close_all();
}

Test(llm, never_retries_400_401_403_and_other_402s)
{
    struct {
        const char *b;
        int rc;
        const char *msg;
    } cases[] = {
        {"400", DM_ERR_INVALID, "HTTP 400"},
        {"401", DM_ERR_AUTH, "HTTP 401"},
        {"403", DM_ERR_AUTH, "HTTP 403"},
        {"402-credits", DM_ERR_REMOTE, "openrouter_credits"},
        {"402-weight", DM_ERR_REMOTE, "weight_exceeds_budget"},
        {"402-key", DM_ERR_REMOTE, "openrouter_key_limit"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char user[128], path[32];
        snprintf(path, sizeof(path), "n%zu.ts", i);
        snprintf(user, sizeof(user), "Path: %s\n[[fake:%s]]", path, cases[i].b);
        struct outcome o = call(user, (int)(i % 2));
        cr_assert_eq(o.rc, cases[i].rc, "%s: %d %s", cases[i].b, o.rc, o.err);
        cr_assert(strstr(o.err, cases[i].msg), "%s: %s", cases[i].b, o.err);
        cr_assert_eq(o.res.attempts, 1, "%s not retried", cases[i].b);
        cr_assert_eq(o.res.billed, 0);
        cr_assert_eq(dmt_fakeor_path_count(&fake, path), 1);
        cr_assert_null(o.content);
    }
    close_all();
}

/* A provider error after the stream began arrives inside the 200 (finish_reason "error" with an
 * error object, or an error chunk): a permanent code is final, a code the same HTTP status would
 * be retried for (502, 429) is retried, and the failed attempt's spend stays on the call. */
Test(llm, errors_inside_a_200_are_retried_like_their_status)
{
    struct outcome o = call("Path: e1.ts\n[[fake:error200:400]]", 1);
    long long retried_prompt;

    cr_assert_eq(o.rc, DM_ERR_REMOTE, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "Upstream provider error"), "%s", o.err);
    cr_assert_eq(o.res.billed, 1);
    cr_assert_null(o.content);
    o = call("Path: e2.ts\n[[fake:error200:400]]", 0);
    cr_assert_eq(o.rc, DM_ERR_REMOTE, "%d %s", o.rc, o.err);
    cr_assert_eq(dmt_fakeor_stat(&fake, "chat"), 2, "a permanent code is not retried");

    o = call("Path: e3.ts\n[[fake:error200*1]]", 1);
    cr_assert_eq(o.rc, 0, "502 inside the stream is retried: %d %s", o.rc, o.err);
    cr_assert_not_null(o.content);
    cr_assert_eq(o.res.attempts, 2);
    retried_prompt = o.res.prompt_tokens;
    free(o.content);
    o = call("Path: e3.ts\n[[fake:error200*1]]", 1); /* the marker is spent: one attempt */
    cr_assert_eq(o.rc, 0);
    cr_assert_eq(o.res.attempts, 1);
    free(o.content);
    cr_assert_geq(retried_prompt, 2 * o.res.prompt_tokens - 2,
                  "both attempts are counted: %lld against %lld for one", retried_prompt,
                  o.res.prompt_tokens);

    o = call("Path: e4.ts\n[[fake:error-chunk*1]]", 1);
    cr_assert_eq(o.rc, 0, "429 in an error chunk is retried: %d %s", o.rc, o.err);
    cr_assert_eq(o.res.attempts, 2);
    free(o.content);
    cr_assert_eq(dmt_fakeor_stat(&fake, "chat"), 7);
    close_all();
}

Test(llm, cut_stream_length_and_garbage_fail)
{
    struct outcome o = call("Path: c1.tsx\n[[fake:cut]]", 1);
    cr_assert_eq(o.rc, DM_ERR_IO, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "cut"), "%s", o.err);
    cr_assert_eq(o.res.billed, 1);
    cr_assert_eq(dmt_fakeor_path_count(&fake, "c1.tsx"), 1, "a cut stream is not retried");

    o = call("Path: c2.tsx\n[[fake:cut]]", 0);
    cr_assert_eq(o.rc, DM_ERR_IO, "%d %s", o.rc, o.err);

    o = call("Path: l1.ts\n[[fake:length]]", 1);
    cr_assert_eq(o.rc, DM_ERR_LIMIT, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "truncated"), "%s", o.err);
    cr_assert_str_eq(o.res.finish_reason, "length");
    o = call("Path: l2.ts\n[[fake:length]]", 0);
    cr_assert_eq(o.rc, DM_ERR_LIMIT, "%d %s", o.rc, o.err);

    o = call("Path: g1.ts\n[[fake:garbage]]", 1);
    cr_assert_eq(o.rc, DM_ERR_INVALID, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "not a JSON"), "%s", o.err);
    o = call("Path: g2.ts\n[[fake:garbage]]", 0);
    cr_assert_eq(o.rc, DM_ERR_INVALID, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "not a JSON"), "%s", o.err);

    o = call("Path: z.ts\n[[fake:empty]]", 1);
    cr_assert_eq(o.rc, DM_ERR_INVALID, "an empty reply is refused: %d %s", o.rc, o.err);
    close_all();
}

Test(llm, huge_reply_and_slow_drip)
{
    struct dm_llm_opts opts = base_opts();
    opts.max_response_bytes = 1 << 20;
    opts.low_speed_limit = 1000;
    opts.low_speed_time_s = 1;
    make_llm(&opts);
    struct outcome o = call("Path: h.ts\n[[fake:huge:3000000]]", 1);
    cr_assert_eq(o.rc, DM_ERR_LIMIT, "%d %s", o.rc, o.err);
    o = call("Path: h2.ts\n[[fake:huge:3000000]]", 0);
    cr_assert_eq(o.rc, DM_ERR_LIMIT, "%d %s", o.rc, o.err);

    long long t0 = dmt_now_ms();
    o = call("Path: d.ts\n[[fake:drip:1000]]", 1);
    cr_assert_eq(o.rc, DM_ERR_TIMEOUT, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "too slow"), "%s", o.err);
    /* curl averages the speed over a few seconds; the total deadline is 300 s. */
    cr_assert_lt(dmt_now_ms() - t0, 10000);
    cr_assert_eq(dmt_fakeor_path_count(&fake, "d.ts"), 1, "bytes arrived: not retried");

    /* The total deadline also ends a drip that is fast enough for the low-speed check. */
    opts.low_speed_limit = 1;
    opts.timeout_ms = 1200;
    opts.max_attempts = 1;
    make_llm(&opts);
    t0 = dmt_now_ms();
    o = call("Path: d2.ts\n[[fake:drip:50]]", 1);
    cr_assert_eq(o.rc, DM_ERR_TIMEOUT, "%d %s", o.rc, o.err);
    cr_assert_lt(dmt_now_ms() - t0, 4000);
    close_all();
}

Test(llm, invalid_code_then_valid_for_the_same_path)
{
    struct outcome o = call("Path: migrations/x.sql\n[[fake:invalid]]", 1);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert(strstr(o.content, "CREATE TABLE ("), "invalid SQL first: %s", o.content);
    free(o.content);
    o = call("Path: `migrations/x.sql`\nrepair [[fake:invalid]]", 1);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert(strstr(o.content, "CREATE TABLE IF NOT EXISTS x"), "valid next: %s", o.content);
    free(o.content);
    close_all();
}

Test(llm, budget_cuts_a_stream_that_would_cross_the_limit)
{
    struct dm_budget b;
    struct dm_budget_hold hold;
    struct dm_price p;
    struct dm_error err = {0};
    struct outcome o;
    const char *user = "Path: src/components/big-table.tsx";
    long long prompt = dm_budget_estimate_tokens(strlen(user) + strlen("You write one file."));
    cr_assert_eq(dm_price_lookup(prices, MODEL, &p, &err), 0);
    /* Room for the prompt and 40 completion tokens; the reply is ~300 bytes (~100 tokens). */
    dm_budget_init(&b, prompt + 40, 10.0);
    cr_assert_eq(dm_budget_reserve(&b, &p, prompt, 40, &hold, &err), 0, "%s", err.msg);
    memset(&o, 0, sizeof(o));
    o.budget = &b;
    o.hold = &hold;
    struct dm_llm_request r = request(user, 1, &o);
    r.max_tokens = 4096; /* the server ignores a cap the budget cannot pay for */
    run(&r, &o);
    cr_assert_eq(o.rc, DM_ERR_BUDGET, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "budget"), "%s", o.err);
    cr_assert_gt(o.last_tokens, 40);
    cr_assert_eq(o.res.billed, 1);
    cr_assert_lt(o.res.completion_tokens, 40 + 30, "cut near the limit");
    dm_budget_settle(&b, &hold, o.res.prompt_tokens + o.res.completion_tokens, o.res.cost_usd);
    cr_assert_eq(b.holds, 0);
    close_all();
}

static struct dm_llm_call *victim;

static void on_cancel_timer(uv_timer_t *t)
{
    dm_llm_cancel(victim);
    uv_close((uv_handle_t *)t, NULL);
}

Test(llm, cancel_in_flight_and_during_backoff)
{
    struct dm_error err = {0};
    uv_timer_t t;
    struct outcome o;
    memset(&o, 0, sizeof(o));
    struct dm_llm_request r = request("Path: w.ts\n[[fake:wait:5000]]", 1, &o);
    long long t0 = dmt_now_ms();
    cr_assert_eq(dm_llm_start(llm, &r, &victim, &err), 0);
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_cancel_timer, 200, 0);
    while (o.done == 0 && uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert_eq(o.rc, DM_ERR_CANCELLED, "%d %s", o.rc, o.err);
    cr_assert_lt(dmt_now_ms() - t0, 3000);

    /* During a Retry-After wait of 30 s. */
    memset(&o, 0, sizeof(o));
    r = request("Path: w2.ts\n[[fake:429:30]]", 0, &o);
    t0 = dmt_now_ms();
    cr_assert_eq(dm_llm_start(llm, &r, &victim, &err), 0);
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_cancel_timer, 500, 0);
    while (o.done == 0 && uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert_eq(o.rc, DM_ERR_CANCELLED, "%d %s", o.rc, o.err);
    cr_assert_eq(o.res.attempts, 1);
    cr_assert_lt(dmt_now_ms() - t0, 3000);
    close_all();
}

Test(llm, no_key_fails_clearly_and_the_key_never_leaks)
{
    struct dm_llm_opts opts = base_opts();
    char logpath[] = "/tmp/dm_llm_log_XXXXXX";
    int fd = mkstemp(logpath);
    cr_assert(fd >= 0);
    dm_log_set_level(DM_LOG_DEBUG);
    dm_log_set_fd(fd);

    opts.api_key = NULL;
    make_llm(&opts);
    struct outcome o = call("Path: k.ts", 1);
    cr_assert_eq(o.rc, DM_ERR_AUTH, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "OPENROUTER_API_KEY"), "%s", o.err);
    cr_assert_eq(dmt_fakeor_stat(&fake, "chat"), 0, "nothing sent without a key");

    opts = base_opts();
    make_llm(&opts);
    const char *kinds[] = {"[[fake:401]]", "[[fake:429:0*1]]", "[[fake:error200]]", "",
                           "[[fake:cut]]"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        char user[128];
        snprintf(user, sizeof(user), "Path: k%zu.ts\n%s", i, kinds[i]);
        o = call(user, (int)(i % 2));
        cr_assert_null(strstr(o.err, "TESTKEY"), "%s", o.err);
        free(o.content);
    }
    dm_log_set_fd(2);
    char *logs = dmt_read_file(logpath);
    cr_assert(logs && strstr(logs, "\"module\":\"llm\""), "llm logged something");
    cr_assert_null(strstr(logs, "TESTKEY"), "the API key appears in a log line");
    free(logs);
    close(fd);
    unlink(logpath);
    close_all();
}

Test(llm, concurrent_calls_overlap)
{
    enum { N = 12 };
    struct outcome o[N];
    struct dm_error err = {0};
    char users[N][64];
    long long t0 = dmt_now_ms();
    memset(o, 0, sizeof(o));
    for (int i = 0; i < N; i++) {
        snprintf(users[i], sizeof(users[i]), "Path: p%d.ts\n[[fake:wait:500]]", i);
        struct dm_llm_request r = request(users[i], i % 2, &o[i]);
        cr_assert_eq(dm_llm_start(llm, &r, NULL, &err), 0);
    }
    cr_assert_eq(dm_llm_in_flight(llm), N);
    for (int i = 0; i < N; i++) {
        while (o[i].done == 0 && uv_run(&loop, UV_RUN_ONCE)) {
        }
        cr_assert_eq(o[i].rc, 0, "%s", o[i].err);
        free(o[i].content);
    }
    long long wall = dmt_now_ms() - t0;
    cr_assert_lt(wall, N * 500 / 3, "took %lld ms", wall);
    cr_assert_eq(dmt_fakeor_stat(&fake, "peak_in_flight"), N);
    close_all();
}

Test(llm, shutdown_with_calls_in_flight)
{
    enum { N = 6 };
    struct outcome o[N];
    struct dm_error err = {0};
    memset(o, 0, sizeof(o));
    for (int i = 0; i < N; i++) {
        /* Some waiting on the server, some in a retry wait. */
        struct dm_llm_request r =
            request(i % 2 ? "Path: s.ts\n[[fake:wait:5000]]" : "Path: s2.ts\n[[fake:429:20]]",
                    i % 3 == 0, &o[i]);
        cr_assert_eq(dm_llm_start(llm, &r, NULL, &err), 0);
    }
    for (int i = 0; i < 40; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        dmt_sleep_ms(10);
    }
    /* The engine's shutdown order: cancel every LLM call (requests in flight are aborted,
     * retry waits end), close HTTP, wait for every completion, free. */
    dm_llm_cancel_all(llm);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(o[i].done, 0, "no completion inside dm_llm_cancel_all");
    }
    dm_http_close(http, NULL, NULL);
    http = NULL;
    long long t0 = dmt_now_ms();
    while (dm_llm_in_flight(llm) > 0 && dmt_now_ms() - t0 < 5000) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < N; i++) {
        if (o[i].done == 0) {
            cr_assert_fail("call %d still in flight", i);
        }
    }
    for (int i = 0; i < N; i++) {
        cr_assert(o[i].rc == DM_ERR_CANCELLED, "%d: %d %s", i, o[i].rc, o[i].err);
    }
    dm_llm_free(llm);
    llm = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
}

struct models_fetch {
    int done;
    int rc;
    size_t updated;
    char err[512];
};

static void on_models(void *arg, int rc, struct dm_http_response *resp, const struct dm_error *err)
{
    struct models_fetch *m = arg;
    struct dm_error perr = {0};
    m->done = 1;
    m->rc = rc;
    snprintf(m->err, sizeof(m->err), "%s", err->msg);
    if (rc == 0 && resp->status == 200) {
        m->rc =
            dm_price_table_load_models(prices, resp->body.data, resp->body.len, &m->updated, &perr);
        snprintf(m->err, sizeof(m->err), "%s", perr.msg);
    }
}

Test(llm, price_refresh_from_the_models_endpoint)
{
    struct dm_http_request q;
    struct dm_error err = {0};
    struct dm_price p;
    struct models_fetch m = {0};
    char url[128];
    memset(&q, 0, sizeof(q));
    snprintf(url, sizeof(url), "%s/models", fake.base);
    q.url = url;
    q.arg = &m;
    q.on_done = on_models;
    /* A price only the refresh can give: the fake's table has gpt-4o at 2.5/10 like ours, so
     * change ours first and check the refresh restores it. */
    cr_assert_eq(dm_price_table_set(prices, "openai/gpt-4o", &(struct dm_price){99, 99}), 0);
    cr_assert_eq(dm_http_start(http, &q, NULL, &err), 0, "%s", err.msg);
    while (!m.done && uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert_eq(m.rc, 0, "%s", m.err);
    cr_assert_eq(m.updated, 7, "seven priced models, the router's -1 skipped");
    cr_assert_eq(dm_price_lookup(prices, "openai/gpt-4o", &p, NULL), 0);
    cr_assert_float_eq(p.prompt, 2.5, 1e-9);
    cr_assert_float_eq(p.completion, 10.0, 1e-9);
    close_all();
}

/* ---- issue 16: OpenAI-compatible servers ---- */

/* Keys of a request body that OpenAI does not document (the fake's openai mode refuses them). */
static void assert_only_openai_fields(const cJSON *body)
{
    static const char *const allowed[] = {
        "model",       "messages", "max_completion_tokens", "max_tokens",
        "temperature", "stream",   "stream_options",        "response_format"};
    const cJSON *f;
    cJSON_ArrayForEach(f, body)
    {
        int ok = 0;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
            ok |= strcmp(f->string, allowed[i]) == 0;
        }
        cr_assert(ok, "field %s is not one of OpenAI's", f->string);
    }
}

Test(llm, openai_mode_sends_only_openai_fields_and_gets_usage_from_include_usage)
{
    struct dm_llm_opts opts = base_opts();
    free(dmt_fakeor_http(&fake, "POST", "/_fake/config", "{\"api\": \"openai\"}"));
    /* First the OpenRouter body against the OpenAI fake: refused with OpenAI's 400, final. */
    struct outcome o = call("Path: a.ts", 1);
    cr_assert_eq(o.rc, DM_ERR_INVALID, "%d %s", o.rc, o.err);
    cr_assert(strstr(o.err, "Unrecognized request argument supplied: usage"), "%s", o.err);
    cr_assert_eq(o.res.attempts, 1);

    opts.api = DM_LLM_API_OPENAI;
    opts.referer = NULL; /* openai mode: no attribution unless configured */
    opts.title = NULL;
    make_llm(&opts);
    for (int stream = 0; stream <= 1; stream++) {
        memset(&o, 0, sizeof(o));
        struct dm_llm_request r = request("Path: src/routes/todo.ts", stream, &o);
        r.response_format = "{\"type\":\"json_object\"}";
        run(&r, &o);
        cr_assert_eq(o.rc, 0, "stream %d: %s", stream, o.err);
        cr_assert(strstr(o.content, "new Hono()"), "%s", o.content);
        cr_assert_eq(o.res.usage_known, 1, "stream %d: usage reported", stream);
        cr_assert_eq(o.res.cost_source, DM_LLM_COST_TABLE, "no usage.cost: the table prices it");
        cr_assert_float_eq(o.res.cost_usd,
                           (o.res.prompt_tokens * 3.0 + o.res.completion_tokens * 15.0) / 1e6,
                           1e-12);
        free(o.content);
        cJSON *req = last_request();
        cJSON *body = cJSON_GetObjectItem(req, "body");
        cJSON *h = cJSON_GetObjectItem(req, "headers");
        assert_only_openai_fields(body);
        cr_assert_null(cJSON_GetObjectItem(body, "usage"));
        cr_assert_null(cJSON_GetObjectItem(body, "provider"));
        cr_assert_null(cJSON_GetObjectItem(body, "response_format"),
                       "json_schema only when configured");
        cr_assert_eq(cJSON_GetObjectItem(body, "max_completion_tokens")->valuedouble, 4096);
        cr_assert_null(cJSON_GetObjectItem(body, "max_tokens"));
        const char *sys =
            cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(body, "messages"), 0),
                                "content")
                ->valuestring;
        cr_assert(strstr(sys, "Answer with one JSON object only"), "asked in words: %s", sys);
        if (stream) {
            cr_assert(cJSON_IsTrue(
                cJSON_GetObjectItem(cJSON_GetObjectItem(body, "stream_options"), "include_usage")));
        } else {
            cr_assert_null(cJSON_GetObjectItem(body, "stream_options"));
        }
        cr_assert_null(cJSON_GetObjectItem(h, "HTTP-Referer"));
        cr_assert_null(cJSON_GetObjectItem(h, "X-Title"));
        cr_assert_null(cJSON_GetObjectItem(h, "X-OpenRouter-Title"));
        cJSON_Delete(req);
    }

    /* Configured: json_schema sent, max_tokens for older servers, attribution headers. */
    opts.json_schema = 1;
    opts.max_tokens_field = "max_tokens";
    opts.referer = "https://example.test/dream";
    opts.title = "dreamd-tests";
    make_llm(&opts);
    memset(&o, 0, sizeof(o));
    struct dm_llm_request r = request("Path: b.ts", 1, &o);
    r.response_format = "{\"type\":\"json_object\"}";
    run(&r, &o);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    free(o.content);
    cJSON *req = last_request();
    cJSON *body = cJSON_GetObjectItem(req, "body");
    cJSON *h = cJSON_GetObjectItem(req, "headers");
    assert_only_openai_fields(body);
    cr_assert_not_null(cJSON_GetObjectItem(body, "response_format"));
    cr_assert_null(cJSON_GetObjectItem(body, "provider"));
    cr_assert_eq(cJSON_GetObjectItem(body, "max_tokens")->valuedouble, 4096);
    cr_assert_str_eq(cJSON_GetObjectItem(h, "X-Title")->valuestring, "dreamd-tests");
    cr_assert_null(cJSON_GetObjectItem(h, "X-OpenRouter-Title"));
    cJSON_Delete(req);
    cr_assert_eq(dmt_fakeor_behaviour_count(&fake, "unknown-field"), 1,
                 "only the first (OpenRouter) request was refused");
    close_all();
}

Test(llm, usage_in_an_openai_stream_comes_from_include_usage)
{
    /* The llama.cpp fake takes any field and, like OpenAI, streams usage only when
     * stream_options.include_usage asks for it. */
    free(dmt_fakeor_http(&fake, "POST", "/_fake/config", "{\"api\": \"llamacpp\"}"));
    struct outcome o = call("Path: c.ts", 1); /* OpenRouter's body: no stream_options */
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert_eq(o.res.usage_known, 0, "no include_usage, no usage: estimated");
    free(o.content);
    struct dm_llm_opts opts = base_opts();
    opts.api = DM_LLM_API_OPENAI;
    make_llm(&opts);
    o = call("Path: c2.ts", 1);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert_eq(o.res.usage_known, 1, "include_usage brings the usage chunk");
    cr_assert_gt(o.res.prompt_tokens, 0);
    free(o.content);
    close_all();
}

Test(llm, llamacpp_stream_without_done_completes_and_needs_no_key_on_loopback)
{
    free(dmt_fakeor_http(&fake, "POST", "/_fake/config", "{\"api\": \"llamacpp\"}"));
    /* OpenRouter mode still demands a key and names OpenRouter's setting. */
    struct dm_llm_opts opts = base_opts();
    opts.api_key = NULL;
    make_llm(&opts);
    struct outcome o = call("Path: d.ts", 1);
    cr_assert_eq(o.rc, DM_ERR_AUTH);
    cr_assert(strstr(o.err, "OPENROUTER_API_KEY"), "%s", o.err);

    opts.api = DM_LLM_API_OPENAI;
    make_llm(&opts);
    cr_assert(dm_llm_key_optional(llm), "127.0.0.1 needs no key");
    for (int stream = 1; stream >= 0; stream--) {
        o = call("Path: src/routes/todo.ts", stream);
        cr_assert_eq(o.rc, 0, "stream %d: %s", stream, o.err);
        cr_assert(strstr(o.content, "new Hono()"), "%s", o.content);
        cr_assert_str_eq(o.res.finish_reason, "stop");
        free(o.content);
        cJSON *req = last_request();
        cr_assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(req, "headers"), "Authorization"),
                       "no key, no Authorization header");
        cJSON_Delete(req);
    }
    /* A cut stream (the connection dropped) is still a cut, [DONE] or not. */
    o = call("Path: e.ts\n[[fake:cut]]", 1);
    cr_assert_eq(o.rc, DM_ERR_IO, "%d %s", o.rc, o.err);
    free(o.content);
    close_all();
}

Test(llm, a_missing_key_in_openai_mode_names_the_right_settings)
{
    struct dm_llm_opts opts = base_opts();
    char url[128];
    /* "localhost.test" is not loopback: the key is required unless the host is listed. */
    snprintf(url, sizeof(url), "http://llm.internal.test:%d/v1", fake.port);
    opts.base_url = url;
    opts.api = DM_LLM_API_OPENAI;
    opts.api_key = NULL;
    make_llm(&opts);
    cr_assert_eq(dm_llm_key_optional(llm), 0);
    struct outcome o = call("Path: f.ts", 1);
    cr_assert_eq(o.rc, DM_ERR_AUTH);
    cr_assert(strstr(o.err, "DREAM_LLM_API_KEY") && strstr(o.err, "DREAM_LLM_KEYLESS_HOSTS") &&
                  strstr(o.err, "llm.internal.test"),
              "%s", o.err);
    cr_assert_null(strstr(o.err, "OpenRouter"), "openai mode does not name OpenRouter: %s", o.err);
    opts.keyless_hosts = "other.test, LLM.internal.test";
    make_llm(&opts);
    cr_assert_eq(dm_llm_key_optional(llm), 1, "an allow-listed host needs no key");
    cr_assert_eq(dmt_fakeor_stat(&fake, "chat"), 0, "nothing was sent");
    close_all();
}

Test(llm, a_403_is_mapped_to_its_cause_and_error_shapes_are_read)
{
    struct {
        const char *b;
        int rc;
        const char *msg;
    } cases[] = {
        {"403", DM_ERR_AUTH, "not allowed (authorization)"},
        {"403-moderation", DM_ERR_REMOTE, "moderation (input flagged; reasons: violence"},
        {"403-budget", DM_ERR_REMOTE, "spending limit or budget"},
        {"400-vllm", DM_ERR_INVALID, "maximum context length is 4096"},
        {"404-ollama", DM_ERR_REMOTE, "not found, try pulling it first"},
        {"422-detail", DM_ERR_REMOTE, "Field required: messages"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char user[128];
        snprintf(user, sizeof(user), "Path: m%zu.ts\n[[fake:%s]]", i, cases[i].b);
        struct outcome o = call(user, (int)(i % 2));
        cr_assert_eq(o.rc, cases[i].rc, "%s: %d %s", cases[i].b, o.rc, o.err);
        cr_assert(strstr(o.err, cases[i].msg), "%s: %s", cases[i].b, o.err);
        cr_assert_eq(o.res.attempts, 1, "%s is final", cases[i].b);
    }
    close_all();
}

Test(llm, byok_upstream_inference_cost_is_added_to_usage_cost)
{
    struct outcome o = call("Path: g.ts\n[[fake:byok:0.002]]", 1);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert_eq(o.res.cost_source, DM_LLM_COST_API);
    cr_assert_float_eq(o.res.cost_usd, 0.0001 + 0.002, 1e-12);
    free(o.content);
    o = call("Path: h.ts\n[[fake:byok:0.003]]", 0);
    cr_assert_eq(o.rc, 0, "%s", o.err);
    cr_assert_float_eq(o.res.cost_usd, 0.0001 + 0.003, 1e-12);
    free(o.content);
    close_all();
}

/* The same error chunks from an OpenAI-compatible server (a bare {"error":{...}} event, no
 * finish_reason): 502 is retried, 400 is final. */
Test(llm, error_chunks_with_502_and_400_in_openai_mode)
{
    struct dm_llm_opts opts = base_opts();
    free(dmt_fakeor_http(&fake, "POST", "/_fake/config", "{\"api\": \"openai\"}"));
    opts.api = DM_LLM_API_OPENAI;
    make_llm(&opts);
    struct outcome o = call("Path: x1.ts\n[[fake:error-chunk:502*1]]", 1);
    cr_assert_eq(o.rc, 0, "502 in an error chunk is retried: %d %s", o.rc, o.err);
    cr_assert_eq(o.res.attempts, 2);
    free(o.content);
    o = call("Path: x2.ts\n[[fake:error-chunk:400*1]]", 1);
    cr_assert_eq(o.rc, DM_ERR_REMOTE, "%d %s", o.rc, o.err);
    cr_assert_eq(o.res.attempts, 1, "400 inside the stream is final");
    cr_assert_eq(dmt_fakeor_path_count(&fake, "x2.ts"), 1);
    close_all();
}

static void on_models_closed(void *arg)
{
    *(int *)arg = 1;
}

/* A password in DREAM_LLM_URL's userinfo (a proxy's basic auth) goes to the server only: the
 * price list's log lines name the URL without it, as the HTTP client's own messages do. */
Test(llm, the_price_list_logs_its_url_without_the_password_in_it)
{
    struct dm_models_opts mo = {0};
    struct dm_models *models = NULL;
    struct dm_error err = {0};
    char logpath[] = "/tmp/dm_models_log_XXXXXX";
    int fd = mkstemp(logpath), closed = 0;
    long long t0;
    char *logs;

    cr_assert(fd >= 0);
    dm_log_set_level(DM_LOG_DEBUG);
    dm_log_set_fd(fd);
    /* Port 1 refuses the connection: the read fails and says so, naming the URL. */
    mo.base_url = "http://dreamuser:PWSECRET-42@127.0.0.1:1/v1";
    mo.refresh_s = 3600;
    mo.timeout_ms = 5000;
    cr_assert_eq(dm_models_new(&models, http, &loop, prices, &mo, &err), 0, "%s", err.msg);
    t0 = dmt_now_ms();
    while (!dm_models_settled(models) && dmt_now_ms() - t0 < 10000) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert(dm_models_settled(models), "the read ended");
    dm_models_close(models, on_models_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert(closed);
    dm_log_set_fd(2);
    logs = dmt_read_file(logpath);
    cr_assert(logs && strstr(logs, "http://127.0.0.1:1/v1/models"), "%s", logs ? logs : "");
    cr_assert_null(strstr(logs, "PWSECRET"), "the URL's password appears in a log line: %s", logs);
    cr_assert_null(strstr(logs, "dreamuser"), "%s", logs);
    free(logs);
    close(fd);
    unlink(logpath);
    close_all();
}

/* The price list cache is written through a fresh temporary file: a file or link already at a
 * predictable temporary name (another replica's write in a shared data dir, a planted link) is
 * neither written through nor renamed over the cache. */
Test(llm, the_price_cache_is_written_through_a_fresh_temporary_file)
{
    struct dm_models_opts mo = {0};
    struct dm_models *models = NULL;
    struct dm_error err = {0};
    char dir[] = "/tmp/dm_models_cache_XXXXXX", sub[64], cache[96], planted[96], link[160];
    int closed = 0;
    long long t0;
    char *text;
    FILE *f;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/prices", dir);
    snprintf(cache, sizeof(cache), "%s/models.json", sub);
    snprintf(planted, sizeof(planted), "%s/planted", dir);
    snprintf(link, sizeof(link), "%s.tmp.%ld", cache, (long)getpid());
    cr_assert_eq(mkdir(sub, 0700), 0);
    f = fopen(planted, "w");
    cr_assert_not_null(f);
    fputs("keep", f);
    fclose(f);
    cr_assert_eq(symlink(planted, link), 0);

    mo.base_url = fake.base;
    mo.api_key = KEY;
    mo.cache_path = cache;
    mo.refresh_s = 3600;
    cr_assert_eq(dm_models_new(&models, http, &loop, prices, &mo, &err), 0, "%s", err.msg);
    t0 = dmt_now_ms();
    while (!dm_models_settled(models) && dmt_now_ms() - t0 < 10000) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_gt(dm_models_count(models), 0, "the list was read");
    /* Closing waits for the cache write. */
    dm_models_close(models, on_models_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    cr_assert(closed);
    text = dmt_read_file(planted);
    cr_assert_str_eq(text, "keep", "the cache was written through the planted link");
    free(text);
    text = dmt_read_file(cache);
    cr_assert(text && strstr(text, "\"data\""), "the cache holds the list: %s", text ? text : "");
    cr_assert_null(strstr(text, "TESTKEY"), "the cache holds no key");
    free(text);
    unlink(link);
    unlink(cache);
    unlink(planted);
    rmdir(sub);
    rmdir(dir);
    close_all();
}
