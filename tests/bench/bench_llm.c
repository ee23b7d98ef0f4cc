/*
 * bench_llm: drives the llm client (on the shared http client) against a fake OpenRouter server,
 * keeping a fixed number of calls in flight until a number of calls completed, and prints
 * key=value lines: requests/s, client and server peak in flight, RSS per in-flight call, CPU
 * per 1000 calls. Built and run by tests/bench/bench_llm.sh. One process, one loop thread.
 *
 *   bench_llm --url http://127.0.0.1:PORT/api/v1 [--requests 2000] [--concurrency 64]
 *             [--stream 0|1]
 */
#include "dream/io/http.h"
#include "dream/io/llm.h"
#include "dream/core/log.h"
#include "dream/io/loop.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct bench {
    uv_loop_t loop;
    struct dm_http *http;
    struct dm_llm *llm;
    uv_timer_t sampler;
    long requests, concurrency, started, completed, failed;
    long in_flight, peak;
    int stream;
    long rss_peak_kb;
    long long first_err_rc;
    char first_err[512];
};

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
            resident = 0;
        }
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void on_sample(uv_timer_t *t)
{
    struct bench *b = t->data;
    long r = rss_kb();
    if (r > b->rss_peak_kb) {
        b->rss_peak_kb = r;
    }
}

static void start_one(struct bench *b);

static void on_done(void *arg, int rc, struct dm_llm_result *res, const struct dm_error *err)
{
    struct bench *b = arg;
    (void)res;
    b->in_flight--;
    b->completed++;
    if (rc != 0) {
        if (b->failed++ == 0) {
            b->first_err_rc = rc;
            snprintf(b->first_err, sizeof(b->first_err), "%s", err->msg);
        }
    }
    if (b->started < b->requests) {
        start_one(b);
    }
}

static void start_one(struct bench *b)
{
    struct dm_llm_request r;
    struct dm_error err = {0};
    char user[128];
    memset(&r, 0, sizeof(r));
    snprintf(user, sizeof(user), "Task: bench\nPath: src/routes/bench-%ld.ts\n", b->started);
    r.model = "anthropic/claude-sonnet-4.5";
    r.system = "You write one file.";
    r.user = user;
    r.max_tokens = 4096;
    r.temperature = 0.3;
    r.stream = b->stream;
    r.on_done = on_done;
    r.arg = b;
    if (dm_llm_start(b->llm, &r, NULL, &err) != 0) {
        fprintf(stderr, "bench_llm: start: %s\n", err.msg);
        exit(1);
    }
    b->started++;
    b->in_flight++;
    if (b->in_flight > b->peak) {
        b->peak = b->in_flight;
    }
}

static size_t sink(char *p, size_t s, size_t n, void *arg)
{
    struct dm_buf *buf = arg;
    dm_buf_append(buf, p, s * n);
    return s * n;
}

/* peak_in_flight from the fake's /_fake/stats (blocking; after the run). */
static long server_peak(const char *base)
{
    char url[256];
    struct dm_buf buf;
    long peak = -1;
    const char *p;
    CURL *e = curl_easy_init();
    snprintf(url, sizeof(url), "%s", base);
    char *cut = strstr(url, "/api/v1");
    if (cut) {
        *cut = 0;
    }
    strncat(url, "/_fake/stats", sizeof(url) - strlen(url) - 1);
    dm_buf_init(&buf, 1 << 20);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &buf);
    if (curl_easy_perform(e) == CURLE_OK && buf.data &&
        (p = strstr(buf.data, "\"peak_in_flight\":")) != NULL) {
        peak = strtol(p + strlen("\"peak_in_flight\":"), NULL, 10);
    }
    curl_easy_cleanup(e);
    dm_buf_free(&buf);
    return peak;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct bench b;
    struct dm_error err = {0};
    struct dm_llm_opts lo = DM_LLM_OPTS_INIT;
    const char *url = NULL;
    memset(&b, 0, sizeof(b));
    b.requests = 2000;
    b.concurrency = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0) {
            url = argv[i + 1];
        } else if (strcmp(argv[i], "--requests") == 0) {
            b.requests = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--concurrency") == 0) {
            b.concurrency = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--stream") == 0) {
            b.stream = atoi(argv[i + 1]);
        }
    }
    if (!url || b.requests <= 0 || b.concurrency <= 0) {
        fprintf(stderr, "usage: bench_llm --url BASE [--requests N] [--concurrency C] "
                        "[--stream 0|1]\n");
        return 2;
    }
    dm_log_set_level(DM_LOG_WARN);
    uv_loop_init(&b.loop);
    if (dm_http_new(&b.http, &b.loop, NULL, &err) != 0) {
        fprintf(stderr, "bench_llm: %s\n", err.msg);
        return 1;
    }
    lo.base_url = url;
    lo.api_key = "sk-bench";
    lo.max_attempts = 1;
    if (dm_llm_new(&b.llm, b.http, &b.loop, &lo, &err) != 0) {
        fprintf(stderr, "bench_llm: %s\n", err.msg);
        return 1;
    }
    /* Warm-up: one call, so libcurl and the first connection are not counted per request. */
    long want = b.requests;
    b.requests = 1;
    start_one(&b);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    b.requests = want;
    b.started = b.completed = b.failed = 0;
    b.peak = 0;

    long rss_base = rss_kb();
    b.rss_peak_kb = rss_base;
    uv_timer_init(&b.loop, &b.sampler);
    b.sampler.data = &b;
    uv_timer_start(&b.sampler, on_sample, 5, 5);
    double cpu0 = cpu_s();
    uint64_t t0 = uv_hrtime();
    for (long i = 0; i < b.concurrency && b.started < b.requests; i++) {
        start_one(&b);
    }
    while (b.completed < b.requests && uv_run(&b.loop, UV_RUN_ONCE)) {
    }
    double wall = (double)(uv_hrtime() - t0) / 1e9;
    double cpu = cpu_s() - cpu0;
    uv_close((uv_handle_t *)&b.sampler, NULL);
    dm_llm_free(b.llm);
    dm_http_close(b.http, NULL, NULL);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    if (dm_loop_drain_close(&b.loop) != 0) {
        fprintf(stderr, "bench_llm: handles left open\n");
        return 1;
    }
    printf("requests=%ld\n", b.completed);
    printf("failed=%ld\n", b.failed);
    if (b.failed) {
        printf("first_error=%lld %s\n", b.first_err_rc, b.first_err);
    }
    printf("concurrency=%ld\n", b.concurrency);
    printf("stream=%d\n", b.stream);
    printf("wall_s=%.3f\n", wall);
    printf("requests_per_s=%.1f\n", (double)b.completed / wall);
    printf("client_peak_in_flight=%ld\n", b.peak);
    printf("server_peak_in_flight=%ld\n", server_peak(url));
    printf("rss_base_kb=%ld\n", rss_base);
    printf("rss_peak_kb=%ld\n", b.rss_peak_kb);
    printf("rss_per_in_flight_kb=%.1f\n",
           b.peak ? (double)(b.rss_peak_kb - rss_base) / (double)b.peak : 0.0);
    printf("cpu_ms_per_1000=%.1f\n", cpu * 1000.0 * 1000.0 / (double)b.completed);
    return b.failed ? 1 : 0;
}
