/* Integration tests for metrics: the admin endpoint on libmicrohttpd scraped over HTTP with
 * libcurl: it serves the registry's rendering and follows updates, and Prometheus's own
 * `promtool check metrics` accepts the output. The registry itself is unit-tested
 * (tests/unit/test_metrics_registry.c). */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "dmtest.h"
#include "dream/core/buf.h"
#include "dream/io/loop.h"
#include "dream/io/metrics.h"

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    dm_buf_append(arg, p, size * n);
    return size * n;
}

/* Fetches http://127.0.0.1:<port><path> with method; returns the status, body in *body (caller
 * frees), Content-Type in ctype (may be NULL). */
static long fetch(int port, const char *method, const char *path, char **body, char *ctype,
                  size_t ctlen)
{
    CURL *c = curl_easy_init();
    struct dm_buf b;
    char url[256];
    long status = 0;
    char *ct = NULL;
    CURLcode rc;

    cr_assert_not_null(c);
    dm_buf_init(&b, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (ctype) {
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(ctype, ctlen, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(c);
    if (body) {
        *body = dm_buf_detach(&b);
    } else {
        dm_buf_free(&b);
    }
    return status;
}

static char *scrape(int port)
{
    char *body = NULL;
    char ct[128];
    cr_assert_eq(fetch(port, "GET", "/metrics", &body, ct, sizeof(ct)), 200);
    cr_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
    return body;
}

/* The value of the sample line starting with "<series> " (series includes labels). */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;
    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p += n;
    }
    cr_assert_fail("no sample %s in:\n%s", series, text);
    return 0;
}

/* Runs `promtool check metrics` on text; returns its exit status, output in out. */
static int promtool(const char *text, char *out, size_t outlen)
{
    char *dir = dmt_tempdir("prom");
    char path[512];
    char cmd[1100];
    FILE *f;
    FILE *p;
    size_t n = 0;
    int status;

    snprintf(path, sizeof(path), "%s/metrics.txt", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
    p = popen(cmd, "r");
    cr_assert_not_null(p, "popen promtool");
    while (n + 1 < outlen && fgets(out + n, (int)(outlen - n), p)) {
        n += strlen(out + n);
    }
    out[n] = '\0';
    status = pclose(p);
    dmt_rmtree(dir);
    free(dir);
    cr_assert(WIFEXITED(status), "promtool did not run");
    cr_assert_neq(WEXITSTATUS(status), 127, "promtool not installed: %s", out);
    return WEXITSTATUS(status);
}

static struct dm_admin *start(struct dm_metrics *m)
{
    struct dm_admin *a = NULL;
    struct dm_error err;
    cr_assert_eq(dm_admin_start(&a, m, "127.0.0.1:0", &err), 0, "%s", err.msg);
    cr_assert_not_null(a);
    cr_assert_gt(dm_admin_port(a), 0);
    return a;
}

Test(metrics, endpoints_and_readiness)
{
    struct dm_metrics *m = NULL;
    struct dm_admin *a;
    char *body = NULL;
    int port;

    cr_assert_eq(dm_metrics_new(&m), 0);
    a = start(m);
    port = dm_admin_port(a);

    cr_assert_eq(fetch(port, "GET", "/healthz", &body, NULL, 0), 200);
    cr_assert_str_eq(body, "ok\n");
    free(body);
    cr_assert_eq(fetch(port, "GET", "/readyz", &body, NULL, 0), 503);
    cr_assert_str_eq(body, "not ready\n");
    free(body);
    dm_metrics_set_ready(m, 1);
    cr_assert_eq(fetch(port, "GET", "/readyz", &body, NULL, 0), 200);
    free(body);
    cr_assert_eq(fetch(port, "HEAD", "/readyz", NULL, NULL, 0), 200);
    dm_metrics_set_ready(m, 0);
    cr_assert_eq(fetch(port, "GET", "/readyz", NULL, NULL, 0), 503);
    cr_assert_eq(fetch(port, "GET", "/nope", NULL, NULL, 0), 404);
    cr_assert_eq(fetch(port, "GET", "/metrics/x", NULL, NULL, 0), 404);
    cr_assert_eq(fetch(port, "POST", "/metrics", NULL, NULL, 0), 405);
    cr_assert_eq(fetch(port, "GET", "/metrics?x=1", NULL, NULL, 0), 200);

    dm_admin_stop(a);
    /* Stopped means the port no longer answers. */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_neq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
    }
    dm_metrics_free(m);
}

/* What the registry renders right now (the values themselves are unit-tested in
 * tests/unit/test_metrics_registry.c). */
static char *render(const struct dm_metrics *m)
{
    struct dm_buf b;
    dm_buf_init(&b, (size_t)4 << 20);
    cr_assert_eq(dm_metrics_render(m, &b), 0);
    return dm_buf_detach(&b);
}

Test(metrics, scrape_serves_the_registry_and_follows_updates)
{
    struct dm_metrics *m = NULL;
    struct dm_admin *a;
    char *t;
    char *want;

    cr_assert_eq(dm_metrics_new(&m), 0);
    a = start(m);
    t = scrape(dm_admin_port(a));
    want = render(m);
    cr_assert_str_eq(t, want, "the endpoint serves the registry's rendering as it is");
    cr_assert_eq(sample(t, "dreamd_jobs_total{status=\"complete\"}"), 0);
    free(want);
    free(t);

    dm_metrics_job_finished(m, DM_METRIC_JOB_COMPLETE);
    dm_metrics_job_finished(m, DM_METRIC_JOB_COMPLETE);
    dm_metrics_llm_request(m, DM_METRIC_LLM_OK, 3.0);
    dm_metrics_set_group(m, 42, 9);
    t = scrape(dm_admin_port(a));
    want = render(m);
    cr_assert_str_eq(t, want);
    cr_assert_eq(sample(t, "dreamd_jobs_total{status=\"complete\"}"), 2,
                 "a later scrape sees updates");
    cr_assert_eq(sample(t, "dreamd_group_lag"), 42);
    free(want);
    free(t);
    dm_admin_stop(a);
    dm_metrics_free(m);
}

Test(metrics, promtool_accepts_the_exposition)
{
    struct dm_metrics *m = NULL;
    struct dm_admin *a;
    char out[4096];
    char *t;
    int rc;

    /* The check must be able to fail: a counter without _total is rejected. */
    rc = promtool("# HELP x_seconds x\n# TYPE x_seconds counter\nx_seconds 1\n", out, sizeof(out));
    cr_assert_neq(rc, 0, "promtool accepted a bad exposition: %s", out);

    cr_assert_eq(dm_metrics_new(&m), 0);
    a = start(m);
    t = scrape(dm_admin_port(a));
    rc = promtool(t, out, sizeof(out));
    cr_assert_eq(rc, 0, "promtool check metrics failed (%d):\n%s\n--- on ---\n%s", rc, out, t);
    free(t);

    dm_metrics_job_finished(m, DM_METRIC_JOB_COMPLETE);
    dm_metrics_llm_request(m, DM_METRIC_LLM_OK, 1.5);
    dm_metrics_llm_cost(m, 0.0123456789);
    dm_metrics_set_group(m, 3, 2);
    t = scrape(dm_admin_port(a));
    rc = promtool(t, out, sizeof(out));
    cr_assert_eq(rc, 0, "promtool check metrics failed (%d):\n%s\n--- on ---\n%s", rc, out, t);
    free(t);
    dm_admin_stop(a);
    dm_metrics_free(m);
}

struct hammer {
    struct dm_metrics *m;
    volatile int stop;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    while (!h->stop) {
        dm_metrics_llm_request(h->m, DM_METRIC_LLM_OK, 0.3);
        dm_metrics_llm_cost(h->m, 0.001);
    }
    return NULL;
}

Test(metrics, scrapes_while_the_writer_runs_stay_consistent)
{
    struct dm_metrics *m = NULL;
    struct dm_admin *a;
    struct hammer h = {0};
    pthread_t th;

    cr_assert_eq(dm_metrics_new(&m), 0);
    a = start(m);
    h.m = m;
    cr_assert_eq(pthread_create(&th, NULL, hammer_main, &h), 0);
    for (int i = 0; i < 20; i++) {
        char *t = scrape(dm_admin_port(a));
        double count = sample(t, "dreamd_llm_request_duration_seconds_count");
        double inf = sample(t, "dreamd_llm_request_duration_seconds_bucket{le=\"+Inf\"}");
        double le05 = sample(t, "dreamd_llm_request_duration_seconds_bucket{le=\"0.5\"}");
        double sum = sample(t, "dreamd_llm_request_duration_seconds_sum");
        cr_assert_eq(count, inf);
        cr_assert_eq(le05, inf, "every observation was 0.3 s");
        cr_assert_geq(sum + 1e-6, count * 0.3 * (1 - 1e-9), "sum %f count %f", sum, count);
        free(t);
    }
    h.stop = 1;
    pthread_join(th, NULL);
    dm_admin_stop(a);
    dm_metrics_free(m);
}

Test(metrics, disabled_bad_and_busy_addresses)
{
    struct dm_metrics *m = NULL;
    struct dm_admin *a = (struct dm_admin *)1;
    struct dm_admin *b = NULL;
    struct dm_error err;
    char addr[64];

    cr_assert_eq(dm_metrics_new(&m), 0);
    cr_assert_eq(dm_admin_start(&a, m, "", &err), 0);
    cr_assert_null(a, "empty address disables the endpoint");
    cr_assert_eq(dm_admin_start(&a, m, NULL, &err), 0);
    cr_assert_null(a);
    dm_admin_stop(NULL);

    cr_assert_eq(dm_admin_start(&a, m, "no-port", &err), DM_ERR_INVALID);
    cr_assert_eq(dm_admin_start(&a, m, "127.0.0.1:99999", &err), DM_ERR_INVALID);
    cr_assert_eq(dm_admin_start(&a, m, "127.0.0.1:http", &err), DM_ERR_INVALID);

    a = start(m);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", dm_admin_port(a));
    cr_assert_eq(dm_admin_start(&b, m, addr, &err), DM_ERR_IO, "port in use");
    cr_assert_null(b);
    dm_admin_stop(a);

    /* IPv6 loopback, when the host has it. */
    if (dm_admin_start(&a, m, "[::1]:0", &err) == 0) {
        cr_assert_gt(dm_admin_port(a), 0);
        dm_admin_stop(a);
    }
    dm_metrics_free(m);
}

/* ---- /healthz answers from the loop's own heartbeat ---- */

struct stall {
    struct dm_admin *a;
    int port;
    long healthy_status;
    long stalled_status;
    char *stalled_body;
    uv_timer_t t;
};

/* Runs on the loop: first asks /healthz while the loop is fine, then blocks the loop on purpose
 * (the condition under test) past the stall time and asks again from inside the block. */
static void on_stall_timer(uv_timer_t *t)
{
    struct stall *s = t->data;
    struct timespec block = {0, 600 * 1000000L};

    s->healthy_status = fetch(s->port, "GET", "/healthz", NULL, NULL, 0);
    nanosleep(&block, NULL);
    s->stalled_status = fetch(s->port, "GET", "/healthz", &s->stalled_body, NULL, 0);
    dm_admin_unwatch_loop(s->a);
    uv_close((uv_handle_t *)t, NULL);
}

Test(metrics, healthz_fails_while_the_loop_is_blocked)
{
    struct dm_metrics *m = NULL;
    struct stall s;
    uv_loop_t loop;
    char *body = NULL;

    memset(&s, 0, sizeof(s));
    cr_assert_eq(dm_metrics_new(&m), 0);
    s.a = start(m);
    s.port = dm_admin_port(s.a);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_admin_watch_loop(s.a, &loop, 200), 0);
    s.t.data = &s;
    uv_timer_init(&loop, &s.t);
    uv_timer_start(&s.t, on_stall_timer, 100, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.healthy_status, 200, "a turning loop is healthy");
    cr_assert_eq(s.stalled_status, 503, "a loop blocked past the stall time is not");
    cr_assert_not_null(strstr(s.stalled_body, "loop stalled: no turn for "), "%s", s.stalled_body);
    free(s.stalled_body);
    cr_assert_eq(dm_loop_drain_close(&loop), 0, "the heartbeat's timer was closed");
    /* Not watched any more: healthy again whatever the stamp says. */
    cr_assert_eq(fetch(s.port, "GET", "/healthz", &body, NULL, 0), 200);
    free(body);
    dm_admin_stop(s.a);
    dm_metrics_free(m);
}
