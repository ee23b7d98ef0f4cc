/*
 * Integration tests of the forge client against tests/fakes/fake_github.py (the pulls endpoints
 * with GitHub's shapes, 422s, rate-limit answers), over the real HTTP client on a real loop.
 * What the client sent is checked in the fake's request log.
 */
#include "dream/io/forge.h"
#include "dream/io/git.h"
#include "dream/io/http.h"
#include "dream/io/loop.h"

#include "dmtest.h"
#include "githttp.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "ghp_FakeForgeToken0123456789"

static pid_t fake_pid;
static int fake_port;
static char *fake_dir;
static char *git_root;
static uv_loop_t loop;
static struct dm_http *http;
static struct dm_forge *forge;

/* ---- the fake ----------------------------------------------------------------------------- */

static void fake_start(const char *extra_arg, const char *extra_val)
{
    char log[1024];
    char script[1024];
    long long deadline;

    fake_dir = dmt_tempdir("fakegh");
    snprintf(log, sizeof(log), "%s/fake.log", fake_dir);
    snprintf(script, sizeof(script), "%s/tests/fakes/fake_github.py", dmt_source_dir());
    char *argv[] = {"python3",         script, "--port",  "0",
                    "--token",         TOKEN,  "--quiet", (char *)extra_arg,
                    (char *)extra_val, NULL};
    fake_pid = dmt_spawn(argv, NULL, log);
    deadline = dmt_now_ms() + 10000;
    while (dmt_now_ms() < deadline) {
        char *out = dmt_read_file(log);
        char *p = out ? strstr(out, "PORT=") : NULL;
        if (p) {
            fake_port = atoi(p + 5);
            free(out);
            return;
        }
        free(out);
        dmt_sleep_ms(20);
    }
    cr_assert_fail("fake_github did not start");
}

/* A synchronous request to the fake (control endpoints). Returns the body (caller frees). */
static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    struct dm_buf *b = arg;
    dm_buf_append(b, data, size * n);
    return size * n;
}

static char *fake_call(const char *method, const char *path, const char *body)
{
    CURL *c = curl_easy_init();
    struct dm_buf b;
    char url[512];

    dm_buf_init(&b, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK, "fake control %s", path);
    curl_easy_cleanup(c);
    return dm_buf_detach(&b);
}

static void fake_script(const char *json)
{
    free(fake_call("POST", "/_fake/script", json));
}

static cJSON *fake_requests(void)
{
    char *s = fake_call("GET", "/_fake/requests", NULL);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert(cJSON_IsArray(j));
    return j;
}

static cJSON *fake_pulls(void)
{
    char *s = fake_call("GET", "/_fake/pulls", NULL);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert(cJSON_IsArray(j));
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *req_header(const cJSON *req, const char *name)
{
    return jstr(cJSON_GetObjectItemCaseSensitive(req, "headers"), name);
}

/* ---- loop, http and forge ------------------------------------------------------------------ */

static void base_setup(const char *extra_arg, const char *extra_val)
{
    struct dm_error err = {0};
    fake_start(extra_arg, extra_val);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_http_new(&http, &loop, NULL, &err), 0, "%s", err.msg);
    forge = NULL;
}

static void setup(void)
{
    base_setup(NULL, NULL);
}

static void setup_git(void)
{
    git_root = dmt_tempdir("fakegh-git");
    base_setup("--git-root", git_root);
}

static int closed_count;

static void on_closed(void *arg)
{
    (void)arg;
    closed_count++;
}

static void teardown(void)
{
    closed_count = 0;
    if (forge) {
        dm_forge_close(forge, on_closed, NULL);
    } else {
        closed_count++;
    }
    dm_http_close(http, on_closed, NULL);
    for (int i = 0; i < 1000 && closed_count < 2; i++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_expect_eq(closed_count, 2);
    cr_expect_eq(dm_loop_drain_close(&loop), 0);
    dmt_stop(fake_pid, SIGTERM, 5000);
    dmt_rmtree(fake_dir);
    free(fake_dir);
    if (git_root) {
        dmt_rmtree(git_root);
        free(git_root);
        git_root = NULL;
    }
}

TestSuite(forge, .init = setup, .fini = teardown, .timeout = 60);

static struct dm_forge *make_forge(long write_interval_ms, long secondary_ms, long max_wait_ms)
{
    struct dm_forge_opts o = DM_FORGE_OPTS_INIT;
    struct dm_error err = {0};
    char api[128];
    struct dm_forge *f = NULL;

    snprintf(api, sizeof(api), "http://127.0.0.1:%d", fake_port);
    o.api_url = api;
    o.token = TOKEN;
    o.write_interval_ms = write_interval_ms;
    o.secondary_backoff_ms = secondary_ms;
    o.max_wait_ms = max_wait_ms;
    o.backoff_base_ms = 50;
    o.backoff_max_ms = 400;
    cr_assert_eq(dm_forge_new(&f, http, &loop, &o, &err), 0, "%s", err.msg);
    return f;
}

struct outcome {
    int fired;
    int rc;
    struct dm_forge_pr pr;
    char msg[DM_ERROR_MSG_MAX];
    long long at_ms;
};

static void on_pr(void *arg, int rc, const struct dm_forge_pr *pr, const struct dm_error *err)
{
    struct outcome *o = arg;
    o->fired++;
    o->rc = rc;
    o->pr = *pr;
    o->at_ms = dmt_now_ms();
    snprintf(o->msg, sizeof(o->msg), "%s", err ? err->msg : "");
}

static struct dm_forge_pr_request pr_req(const char *head, struct outcome *out)
{
    struct dm_forge_pr_request r = {0};
    r.owner = "acme";
    r.repo = "widgets";
    r.head = head;
    r.base = "main";
    r.title = "Todo API";
    r.body = "## Dream Machine Build\n\n**Spec**: Todo API\n";
    r.job_id = "job-1";
    r.on_done = on_pr;
    r.arg = out;
    return r;
}

static void run_until(struct outcome *const *outs, int n, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    for (;;) {
        int all = 1;
        for (int i = 0; i < n; i++) {
            if (!outs[i]->fired) {
                all = 0;
            }
        }
        if (all || dmt_now_ms() > deadline) {
            break;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        dmt_sleep_ms(1);
    }
    for (int i = 0; i < n; i++) {
        cr_assert_eq(outs[i]->fired, 1, "completion %d fired %d times", i, outs[i]->fired);
    }
}

static void open_and_wait(struct dm_forge_pr_request *r, struct outcome *out, int timeout_ms)
{
    struct dm_error err = {0};
    struct outcome *outs[1] = {out};
    cr_assert_eq(dm_forge_open_pr(forge, r, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(out->fired, 0, "never inside the starting call");
    run_until(outs, 1, timeout_ms);
}

static int count_requests(const cJSON *reqs, const char *method)
{
    const cJSON *r;
    int n = 0;
    cJSON_ArrayForEach(r, reqs)
    {
        if (strcmp(jstr(r, "method"), method) == 0) {
            n++;
        }
    }
    return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

Test(forge, creates_then_finds_the_same_pull_request)
{
    struct outcome a = {0}, b = {0};
    forge = make_forge(0, 0, 0);
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);

    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.created, 1);
    cr_assert_eq(a.pr.number, 1);
    cr_assert_str_eq(a.pr.html_url, "https://github.com/acme/widgets/pull/1");
    cr_assert_eq(a.pr.requests, 2);

    cJSON *reqs = fake_requests();
    cr_assert_eq(cJSON_GetArraySize(reqs), 2);
    const cJSON *list = cJSON_GetArrayItem(reqs, 0);
    const cJSON *post = cJSON_GetArrayItem(reqs, 1);
    cr_assert_str_eq(jstr(list, "method"), "GET");
    cr_assert_str_eq(jstr(list, "path"), "/repos/acme/widgets/pulls");
    cr_assert(strstr(jstr(list, "query"), "head=acme%3Adream%2Ftodo-api") != NULL, "%s",
              jstr(list, "query"));
    cr_assert(strstr(jstr(list, "query"), "state=all") != NULL);
    cr_assert_str_eq(jstr(post, "method"), "POST");
    cr_assert_str_eq(req_header(post, "accept"), "application/vnd.github+json");
    cr_assert_str_eq(req_header(post, "x-github-api-version"), "2022-11-28");
    cr_assert_str_eq(req_header(post, "authorization"), "Bearer " TOKEN);
    cr_assert(strncmp(req_header(post, "user-agent"), "dreamd/", 7) == 0, "%s",
              req_header(post, "user-agent"));
    cJSON *body = cJSON_Parse(jstr(post, "body"));
    cr_assert_str_eq(jstr(body, "title"), "[Dream] Todo API");
    cr_assert_str_eq(jstr(body, "head"), "dream/todo-api");
    cr_assert_str_eq(jstr(body, "base"), "main");
    cr_assert_str_eq(jstr(body, "body"), "## Dream Machine Build\n\n**Spec**: Todo API\n");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "draft")));
    cJSON_Delete(body);
    cJSON_Delete(reqs);

    /* Called again (a resumed job): the open pull request is found, nothing is created. */
    r.arg = &b;
    open_and_wait(&r, &b, 10000);
    cr_assert_eq(b.rc, 0, "%s", b.msg);
    cr_assert_eq(b.pr.created, 0);
    cr_assert_eq(b.pr.number, 1);
    cr_assert_eq(b.pr.requests, 1);
    reqs = fake_requests();
    cr_assert_eq(count_requests(reqs, "POST"), 1, "one POST in all");
    cJSON_Delete(reqs);
    cJSON *pulls = fake_pulls();
    cr_assert_eq(cJSON_GetArraySize(pulls), 1, "one pull request in all");
    cJSON_Delete(pulls);
}

Test(forge, closed_pull_request_is_not_reused)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    free(fake_call("POST", "/_fake/seed",
                   "{\"owner\":\"acme\",\"repo\":\"widgets\",\"head\":\"dream/todo-api\","
                   "\"state\":\"closed\"}"));
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.created, 1);
    cr_assert_eq(a.pr.number, 2);
}

Test(forge, already_exists_lists_again_and_uses_it)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    /* Someone (an earlier attempt) opened it; the first list misses it (replica race). */
    free(fake_call("POST", "/_fake/seed",
                   "{\"owner\":\"acme\",\"repo\":\"widgets\",\"head\":\"dream/todo-api\","
                   "\"user\":\"dream-bot[bot]\"}"));
    fake_script("[{\"method\":\"GET\",\"status\":200,\"body\":[]}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.created, 0);
    cr_assert_eq(a.pr.number, 1);
    cr_assert_eq(a.pr.requests, 3);
    cJSON *reqs = fake_requests();
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(reqs, 0), "method"), "GET");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(reqs, 1), "method"), "POST");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(reqs, 2), "method"), "GET");
    cJSON_Delete(reqs);
}

Test(forge, lost_create_answer_makes_no_second_pull_request)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    /* The PR is created but the answer is a 502 (a crash right after the PR, seen remotely). */
    fake_script("[{\"method\":\"POST\",\"apply_then\":502}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.number, 1);
    cJSON *pulls = fake_pulls();
    cr_assert_eq(cJSON_GetArraySize(pulls), 1);
    cJSON_Delete(pulls);
    cJSON *reqs = fake_requests();
    cr_assert_eq(count_requests(reqs, "POST"), 2);
    cJSON_Delete(reqs);
}

Test(forge, bad_token_is_an_auth_failure_without_the_token)
{
    struct dm_forge_opts o = DM_FORGE_OPTS_INIT;
    struct dm_error err = {0};
    struct outcome a = {0}, b = {0};
    char api[128];

    snprintf(api, sizeof(api), "http://127.0.0.1:%d", fake_port);
    o.api_url = api;
    o.token = "ghp_WRONGwrongWRONG";
    cr_assert_eq(dm_forge_new(&forge, http, &loop, &o, &err), 0);
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, DM_ERR_AUTH, "%d %s", a.rc, a.msg);
    cr_assert(strstr(a.msg, "Bad credentials") != NULL, "%s", a.msg);
    cr_assert_null(strstr(a.msg, "WRONG"), "%s", a.msg);
    dm_forge_close(forge, NULL, NULL);

    /* No token: fails through the callback, without a request. */
    o.token = NULL;
    cr_assert_eq(dm_forge_new(&forge, http, &loop, &o, &err), 0);
    r.arg = &b;
    open_and_wait(&r, &b, 10000);
    cr_assert_eq(b.rc, DM_ERR_AUTH);
    cr_assert_eq(b.pr.requests, 0);
}

Test(forge, secondary_rate_limit_with_retry_after)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    fake_script("[{\"method\":\"GET\",\"secondary\":true,\"retry_after\":1}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    long long start = dmt_now_ms();
    open_and_wait(&r, &a, 15000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.created, 1);
    cr_assert_geq(a.at_ms - start, 950, "waited for Retry-After (%lld ms)", a.at_ms - start);
    cJSON *reqs = fake_requests();
    cr_assert_eq(cJSON_GetArraySize(reqs), 3);
    double t0 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(reqs, 0), "ts")->valuedouble;
    double t1 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(reqs, 1), "ts")->valuedouble;
    cr_assert_geq(t1 - t0, 0.95, "the repeat came %.3f s later", t1 - t0);
    cJSON_Delete(reqs);
}

Test(forge, secondary_rate_limit_backs_off_exponentially)
{
    struct outcome a = {0};
    forge = make_forge(0, 300, 0);
    /* Two secondary-limit answers without Retry-After (one 429, one 403 with the message). */
    fake_script("[{\"method\":\"POST\",\"secondary\":true,\"status\":429},"
                "{\"method\":\"POST\",\"secondary\":true}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 15000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.created, 1);
    cJSON *reqs = fake_requests();
    cr_assert_eq(count_requests(reqs, "POST"), 3);
    double t[3];
    int k = 0;
    const cJSON *q;
    cJSON_ArrayForEach(q, reqs)
    {
        if (strcmp(jstr(q, "method"), "POST") == 0) {
            t[k++] = cJSON_GetObjectItemCaseSensitive(q, "ts")->valuedouble;
        }
    }
    cr_assert_geq(t[1] - t[0], 0.28, "first wait %.3f", t[1] - t[0]);
    cr_assert_geq(t[2] - t[1], 0.58, "second wait doubled %.3f", t[2] - t[1]);
    cJSON_Delete(reqs);
}

Test(forge, primary_rate_limit_waits_for_reset)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    fake_script("[{\"method\":\"GET\",\"primary\":true,\"reset_in\":1}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    long long start = dmt_now_ms();
    open_and_wait(&r, &a, 15000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_geq(a.at_ms - start, 500, "waited for the reset (%lld ms)", a.at_ms - start);
}

Test(forge, rate_limit_longer_than_allowed_fails_transient)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 2000);
    fake_script("[{\"method\":\"GET\",\"secondary\":true,\"retry_after\":600}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    long long start = dmt_now_ms();
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, DM_ERR_TRANSIENT, "%d %s", a.rc, a.msg);
    cr_assert(strstr(a.msg, "rate limit") != NULL, "%s", a.msg);
    cr_assert_lt(a.at_ms - start, 2000);
}

Test(forge, one_mutating_request_per_interval)
{
    struct outcome a = {0}, b = {0};
    struct outcome *outs[2] = {&a, &b};
    struct dm_error err = {0};
    forge = make_forge(700, 0, 0);
    struct dm_forge_pr_request ra = pr_req("dream/a", &a);
    struct dm_forge_pr_request rb = pr_req("dream/b", &b);
    cr_assert_eq(dm_forge_open_pr(forge, &ra, NULL, &err), 0);
    cr_assert_eq(dm_forge_open_pr(forge, &rb, NULL, &err), 0);
    run_until(outs, 2, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(b.rc, 0, "%s", b.msg);
    cr_assert_neq(a.pr.number, b.pr.number);
    cJSON *reqs = fake_requests();
    double t[2];
    int k = 0;
    const cJSON *q;
    cJSON_ArrayForEach(q, reqs)
    {
        if (strcmp(jstr(q, "method"), "POST") == 0 && k < 2) {
            t[k++] = cJSON_GetObjectItemCaseSensitive(q, "ts")->valuedouble;
        }
    }
    cr_assert_eq(k, 2);
    cr_assert_geq(t[1] - t[0], 0.65, "POSTs %.3f s apart", t[1] - t[0]);
    cJSON_Delete(reqs);
}

Test(forge, server_errors_are_retried)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    fake_script("[{\"method\":\"GET\",\"status\":502,\"times\":2}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.requests, 4);
}

Test(forge, unexpected_422_is_invalid_with_the_message)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    fake_script("[{\"method\":\"POST\",\"status\":422,\"body\":{\"message\":\"Validation "
                "Failed\",\"errors\":[{\"resource\":\"PullRequest\",\"field\":\"base\","
                "\"code\":\"invalid\"}]}}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, DM_ERR_INVALID, "%d %s", a.rc, a.msg);
    cr_assert(strstr(a.msg, "base invalid") != NULL, "%s", a.msg);
}

Test(forge, long_body_is_capped_and_draft_is_sent)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    size_t n = 70000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    r.body = big;
    r.draft = 1;
    r.title = "[Dream] Already prefixed";
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.draft, 1);
    cJSON *reqs = fake_requests();
    cJSON *body = cJSON_Parse(jstr(cJSON_GetArrayItem(reqs, 1), "body"));
    const char *sent = jstr(body, "body");
    cr_assert_leq(strlen(sent), DM_FORGE_BODY_MAX);
    cr_assert_gt(strlen(sent), 60000);
    cr_assert(strstr(sent, "truncated") != NULL);
    cr_assert_str_eq(jstr(body, "title"), "[Dream] Already prefixed");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "draft")));
    cJSON_Delete(body);
    cJSON_Delete(reqs);
    free(big);
}

Test(forge, cancel_and_close_fire_once)
{
    struct outcome a = {0}, b = {0};
    struct outcome *outs[1] = {&a};
    struct dm_forge_call *call = NULL;
    struct dm_error err = {0};
    forge = make_forge(0, 0, 0);
    fake_script("[{\"method\":\"GET\",\"delay_ms\":3000,\"times\":5}]");
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    cr_assert_eq(dm_forge_open_pr(forge, &r, &call, &err), 0);
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        dmt_sleep_ms(5);
    }
    long long start = dmt_now_ms();
    dm_forge_cancel(call);
    cr_assert_eq(a.fired, 0, "not inside cancel");
    run_until(outs, 1, 5000);
    cr_assert_eq(a.rc, DM_ERR_CANCELLED);
    cr_assert_lt(a.at_ms - start, 1000);

    /* Closing with a call in flight: it completes cancelled, then the client is freed. */
    r.arg = &b;
    cr_assert_eq(dm_forge_open_pr(forge, &r, NULL, &err), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    closed_count = 0;
    dm_forge_close(forge, on_closed, NULL);
    forge = NULL;
    cr_assert_eq(b.fired, 0);
    outs[0] = &b;
    run_until(outs, 1, 5000);
    cr_assert_eq(b.rc, DM_ERR_CANCELLED);
    for (int i = 0; i < 100 && closed_count == 0; i++) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(closed_count, 1);
}

Test(forge, enterprise_base_url)
{
    struct dm_forge_opts o = DM_FORGE_OPTS_INIT;
    struct dm_error err = {0};
    struct outcome a = {0};
    char api[128];

    snprintf(api, sizeof(api), "http://127.0.0.1:%d/api/v3/", fake_port);
    o.api_url = api;
    o.token = TOKEN;
    o.write_interval_ms = 0;
    cr_assert_eq(dm_forge_new(&forge, http, &loop, &o, &err), 0);
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cJSON *reqs = fake_requests();
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(reqs, 0), "path"), "/api/v3/repos/acme/widgets/pulls");
    cJSON_Delete(reqs);
}

Test(forge, invalid_requests_are_refused_synchronously)
{
    struct outcome a = {0};
    struct dm_error err = {0};
    forge = make_forge(0, 0, 0);
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    r.owner = "../etc";
    cr_assert_eq(dm_forge_open_pr(forge, &r, NULL, &err), DM_ERR_INVALID);
    r = pr_req("main", &a);
    cr_assert_eq(dm_forge_open_pr(forge, &r, NULL, &err), DM_ERR_INVALID);
    r = pr_req("bad branch", &a);
    cr_assert_eq(dm_forge_open_pr(forge, &r, NULL, &err), DM_ERR_INVALID);
    r = pr_req("dream/x", &a);
    r.title = "";
    cr_assert_eq(dm_forge_open_pr(forge, &r, NULL, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_forge_in_flight(forge), 0);
    cr_assert_eq(a.fired, 0);
}

/* ---- against real repositories (--git-root) ------------------------------------------------ */

TestSuite(forge_git, .init = setup_git, .fini = teardown, .timeout = 60);

Test(forge_git, no_commits_between_is_a_clear_permanent_failure)
{
    struct outcome a = {0}, b = {0};
    char *bare = dmt_git_make_repo(git_root, "acme", "widgets", "main");
    free(dmt_sh("git -C '%s' branch dream/empty main", bare));
    forge = make_forge(0, 0, 0);
    struct dm_forge_pr_request r = pr_req("dream/empty", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, DM_ERR_REMOTE, "%d %s", a.rc, a.msg);
    cr_assert(strstr(a.msg, "No commits between main and dream/empty") != NULL, "%s", a.msg);

    /* With a commit on the branch the same call opens the pull request. */
    free(dmt_sh("set -e; w=$(mktemp -d); git clone -q '%s' \"$w/w\"; cd \"$w/w\"; "
                "git checkout -q -b dream/full; echo x > x.txt; git add x.txt; "
                "git -c user.name=D -c user.email=d@x commit -q -m x; "
                "git push -q origin dream/full; rm -rf \"$w\"",
                bare));
    r = pr_req("dream/full", &b);
    open_and_wait(&r, &b, 10000);
    cr_assert_eq(b.rc, 0, "%s", b.msg);
    cr_assert_eq(b.pr.created, 1);
    char *sha = dmt_sh("git -C '%s' rev-parse dream/full", bare);
    cr_assert_str_eq(b.pr.head_sha, sha);
    free(sha);
    free(bare);
}

Test(forge_git, unknown_repository_is_not_found)
{
    struct outcome a = {0};
    forge = make_forge(0, 0, 0);
    struct dm_forge_pr_request r = pr_req("dream/x", &a);
    r.repo = "nothere";
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, DM_ERR_NOTFOUND, "%d %s", a.rc, a.msg);
}

Test(forge_git, resumed_job_pushes_once_and_opens_one_pull_request)
{
    /* publish → crash before the PR → resume: publish + PR → crash after the PR → resume. */
    char *bare = dmt_git_make_repo(git_root, "acme", "widgets", "main");
    char *data = dmt_tempdir("forge-data");
    char tpl[1024];
    struct dm_git_opts go = DM_GIT_OPTS_INIT;
    struct dm_git_file files[2] = {{"src/routes/todos.ts", "export const t = 1;\n", 20, 0},
                                   {"docs/dream-specs/todo-api.md", "# Todo API\n", 11, 0}};
    struct dm_git_result r1, r2, r3;
    struct dm_error err = {0};
    struct outcome a = {0}, b = {0};

    snprintf(tpl, sizeof(tpl), "file://%s/{owner}/{repo}.git", git_root);
    go.data_dir = data;
    go.url_template = tpl;
    forge = make_forge(0, 0, 0);
#define PUBLISH(res)                                                                               \
    dm_git_publish(res, &go, "acme", "widgets", "main", "dream/todo-api", "job-1", "spec-1",       \
                   "[Dream] Todo API", 1767225600LL, files, 2, &err)
    cr_assert_eq(PUBLISH(&r1), 0, "%s", err.msg);
    cr_assert_eq(r1.pushed, 1);
    /* resumed after a crash before the PR */
    cr_assert_eq(PUBLISH(&r2), 0, "%s", err.msg);
    cr_assert_eq(r2.pushed, 0);
    struct dm_forge_pr_request r = pr_req("dream/todo-api", &a);
    open_and_wait(&r, &a, 10000);
    cr_assert_eq(a.rc, 0, "%s", a.msg);
    cr_assert_eq(a.pr.created, 1);
    cr_assert_str_eq(a.pr.head_sha, r1.commit);
    /* resumed after a crash after the PR */
    cr_assert_eq(PUBLISH(&r3), 0, "%s", err.msg);
    cr_assert_eq(r3.pushed, 0);
    r.arg = &b;
    open_and_wait(&r, &b, 10000);
    cr_assert_eq(b.rc, 0, "%s", b.msg);
    cr_assert_eq(b.pr.created, 0);
    cr_assert_eq(b.pr.number, a.pr.number);
#undef PUBLISH
    cr_assert_str_eq(r3.commit, r1.commit);
    cJSON *pulls = fake_pulls();
    cr_assert_eq(cJSON_GetArraySize(pulls), 1, "exactly one pull request");
    cJSON_Delete(pulls);
    char *n = dmt_sh("git -C '%s' rev-list --count main..dream/todo-api", bare);
    cr_assert_str_eq(n, "1", "exactly one commit");
    free(n);
    dmt_rmtree(data);
    free(data);
    free(bare);
}
