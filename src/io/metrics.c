/*
 * metrics: atomic counters of a replica, their Prometheus text rendering, and the admin HTTP
 * server (see include/dream/io/metrics.h).
 *
 * Owns the struct dm_metrics (written by the loop thread, read by any) and the libmicrohttpd
 * daemon with its internal polling thread, which only reads metrics and the readiness flag.
 */
#include "dream/io/metrics.h"
#include "dream/core/log.h"

#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef DREAM_VERSION
#define DREAM_VERSION "0.0.0"
#endif

static const double latency_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300};
#define N_BUCKETS (sizeof(latency_buckets) / sizeof(latency_buckets[0]))

static const char *const job_names[DM_METRIC_JOB_COUNT_] = {"complete", "failed", "cancelled",
                                                            "dead_lettered", "parked"};
static const char *const llm_names[DM_METRIC_LLM_COUNT_] = {"ok", "retried", "failed"};

struct dm_metrics {
    atomic_ullong jobs[DM_METRIC_JOB_COUNT_];
    atomic_llong jobs_in_flight;
    atomic_ullong llm[DM_METRIC_LLM_COUNT_];
    atomic_ullong latency[N_BUCKETS + 1]; /* per bucket (not cumulative); last is > max */
    atomic_ullong latency_sum;            /* double bits */
    atomic_ullong tokens_prompt;
    atomic_ullong tokens_completion;
    atomic_ullong cost; /* double bits */
    atomic_ullong reclaims;
    atomic_ullong dead_letters;
    atomic_ullong reconnects;
    atomic_llong group_lag; /* < 0: unknown */
    atomic_llong group_pending;
    atomic_int ready;
    double start_time;
};

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(atomic_ullong *a, double v)
{
    unsigned long long old = atomic_load(a);
    while (!atomic_compare_exchange_weak(a, &old, dbits(bitsd(old) + v))) {
    }
}

int dm_metrics_new(struct dm_metrics **out)
{
    struct dm_metrics *m = calloc(1, sizeof(*m));
    struct timespec ts;

    *out = NULL;
    if (!m) {
        return DM_ERR_NOMEM;
    }
    for (int i = 0; i < DM_METRIC_JOB_COUNT_; i++) {
        atomic_init(&m->jobs[i], 0);
    }
    atomic_init(&m->jobs_in_flight, 0);
    for (int i = 0; i < DM_METRIC_LLM_COUNT_; i++) {
        atomic_init(&m->llm[i], 0);
    }
    for (size_t i = 0; i <= N_BUCKETS; i++) {
        atomic_init(&m->latency[i], 0);
    }
    atomic_init(&m->latency_sum, dbits(0.0));
    atomic_init(&m->tokens_prompt, 0);
    atomic_init(&m->tokens_completion, 0);
    atomic_init(&m->cost, dbits(0.0));
    atomic_init(&m->reclaims, 0);
    atomic_init(&m->dead_letters, 0);
    atomic_init(&m->reconnects, 0);
    atomic_init(&m->group_lag, -1);
    atomic_init(&m->group_pending, 0);
    atomic_init(&m->ready, 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
    *out = m;
    return 0;
}

void dm_metrics_free(struct dm_metrics *m)
{
    free(m);
}

void dm_metrics_job_finished(struct dm_metrics *m, enum dm_metric_job status)
{
    if (m && (int)status >= 0 && status < DM_METRIC_JOB_COUNT_) {
        atomic_fetch_add(&m->jobs[status], 1);
    }
}

void dm_metrics_set_jobs_in_flight(struct dm_metrics *m, int64_t n)
{
    if (m) {
        atomic_store(&m->jobs_in_flight, n);
    }
}

void dm_metrics_llm_request(struct dm_metrics *m, enum dm_metric_llm outcome, double seconds)
{
    size_t b;

    if (!m || (int)outcome < 0 || outcome >= DM_METRIC_LLM_COUNT_) {
        return;
    }
    atomic_fetch_add(&m->llm[outcome], 1);
    if (!(seconds >= 0) || isinf(seconds)) {
        return;
    }
    for (b = 0; b < N_BUCKETS && seconds > latency_buckets[b]; b++) {
    }
    /* Sum first: a reader that loads the buckets before the sum never sees a count whose time
     * is missing from the sum. */
    atomic_add_double(&m->latency_sum, seconds);
    atomic_fetch_add(&m->latency[b], 1);
}

void dm_metrics_llm_tokens(struct dm_metrics *m, uint64_t prompt, uint64_t completion)
{
    if (m) {
        atomic_fetch_add(&m->tokens_prompt, prompt);
        atomic_fetch_add(&m->tokens_completion, completion);
    }
}

void dm_metrics_llm_cost(struct dm_metrics *m, double dollars)
{
    if (m && dollars > 0 && !isinf(dollars)) {
        atomic_add_double(&m->cost, dollars);
    }
}

void dm_metrics_reclaimed(struct dm_metrics *m, uint64_t n)
{
    if (m) {
        atomic_fetch_add(&m->reclaims, n);
    }
}

void dm_metrics_dead_lettered(struct dm_metrics *m)
{
    if (m) {
        atomic_fetch_add(&m->dead_letters, 1);
    }
}

void dm_metrics_redis_reconnected(struct dm_metrics *m)
{
    if (m) {
        atomic_fetch_add(&m->reconnects, 1);
    }
}

void dm_metrics_set_group(struct dm_metrics *m, int64_t lag, int64_t pending)
{
    if (m) {
        atomic_store(&m->group_lag, lag < 0 ? -1 : lag);
        atomic_store(&m->group_pending, pending);
    }
}

void dm_metrics_set_ready(struct dm_metrics *m, int ready)
{
    if (m) {
        atomic_store(&m->ready, ready ? 1 : 0);
    }
}

int dm_metrics_ready(const struct dm_metrics *m)
{
    return m ? atomic_load(&((struct dm_metrics *)m)->ready) : 0;
}

/* ---- rendering ---------------------------------------------------------------------------- */

static int header(struct dm_buf *b, const char *name, const char *type, const char *help)
{
    return dm_buf_printf(b, "# HELP dreamd_%s %s\n# TYPE dreamd_%s %s\n", name, help, name, type);
}

/* A float as Prometheus reads it (Go's ParseFloat): shortest exact-enough decimal. */
static void fmt_double(char *out, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
    } else if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, n, "%.15g", v);
    }
}

int dm_metrics_render(const struct dm_metrics *cm, struct dm_buf *b)
{
    /* Atomic loads need a non-const object in C11; nothing is written. */
    struct dm_metrics *m = (struct dm_metrics *)cm;
    unsigned long long cum = 0;
    char num[64];
    int64_t lag;
    int rc = 0;

#define TRY(x)                                                                                     \
    do {                                                                                           \
        rc = (x);                                                                                  \
        if (rc) {                                                                                  \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

    TRY(header(b, "jobs_total", "counter", "Jobs that reached a terminal or parked status."));
    for (int i = 0; i < DM_METRIC_JOB_COUNT_; i++) {
        TRY(dm_buf_printf(b, "dreamd_jobs_total{status=\"%s\"} %llu\n", job_names[i],
                          (unsigned long long)atomic_load(&m->jobs[i])));
    }
    TRY(header(b, "jobs_in_flight", "gauge", "Jobs being worked on by this replica."));
    TRY(dm_buf_printf(b, "dreamd_jobs_in_flight %lld\n",
                      (long long)atomic_load(&m->jobs_in_flight)));

    TRY(header(b, "llm_requests_total", "counter", "LLM HTTP attempts by outcome."));
    for (int i = 0; i < DM_METRIC_LLM_COUNT_; i++) {
        TRY(dm_buf_printf(b, "dreamd_llm_requests_total{outcome=\"%s\"} %llu\n", llm_names[i],
                          (unsigned long long)atomic_load(&m->llm[i])));
    }

    TRY(header(b, "llm_request_duration_seconds", "histogram", "Latency of LLM HTTP attempts."));
    {
        /* Buckets first, then the sum (the writer adds to the sum before it counts), so _sum
         * covers every observation counted. */
        unsigned long long counts[N_BUCKETS + 1];
        double sum;
        for (size_t i = 0; i <= N_BUCKETS; i++) {
            counts[i] = atomic_load(&m->latency[i]);
        }
        sum = bitsd(atomic_load(&m->latency_sum));
        for (size_t i = 0; i < N_BUCKETS; i++) {
            cum += counts[i];
            fmt_double(num, sizeof(num), latency_buckets[i]);
            TRY(dm_buf_printf(b, "dreamd_llm_request_duration_seconds_bucket{le=\"%s\"} %llu\n",
                              num, cum));
        }
        cum += counts[N_BUCKETS];
        TRY(dm_buf_printf(b, "dreamd_llm_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                          cum));
        fmt_double(num, sizeof(num), sum);
        TRY(dm_buf_printf(b, "dreamd_llm_request_duration_seconds_sum %s\n", num));
        TRY(dm_buf_printf(b, "dreamd_llm_request_duration_seconds_count %llu\n", cum));
    }

    TRY(header(b, "llm_tokens_total", "counter", "Tokens reported by LLM replies."));
    TRY(dm_buf_printf(b, "dreamd_llm_tokens_total{kind=\"prompt\"} %llu\n",
                      (unsigned long long)atomic_load(&m->tokens_prompt)));
    TRY(dm_buf_printf(b, "dreamd_llm_tokens_total{kind=\"completion\"} %llu\n",
                      (unsigned long long)atomic_load(&m->tokens_completion)));
    TRY(header(b, "llm_cost_dollars_total", "counter", "US dollars charged for LLM calls."));
    fmt_double(num, sizeof(num), bitsd(atomic_load(&m->cost)));
    TRY(dm_buf_printf(b, "dreamd_llm_cost_dollars_total %s\n", num));

    TRY(header(b, "reclaims_total", "counter", "Stream entries reclaimed from other replicas."));
    TRY(dm_buf_printf(b, "dreamd_reclaims_total %llu\n",
                      (unsigned long long)atomic_load(&m->reclaims)));
    TRY(header(b, "dead_letters_total", "counter", "Entries written to the dead-letter stream."));
    TRY(dm_buf_printf(b, "dreamd_dead_letters_total %llu\n",
                      (unsigned long long)atomic_load(&m->dead_letters)));
    TRY(header(b, "redis_reconnects_total", "counter", "Times the Redis connection came back."));
    TRY(dm_buf_printf(b, "dreamd_redis_reconnects_total %llu\n",
                      (unsigned long long)atomic_load(&m->reconnects)));

    lag = atomic_load(&m->group_lag);
    TRY(header(b, "group_lag", "gauge",
               "Entries of the jobs stream not yet delivered to the consumer group."));
    if (lag < 0) {
        TRY(dm_buf_puts(b, "dreamd_group_lag NaN\n"));
    } else {
        TRY(dm_buf_printf(b, "dreamd_group_lag %lld\n", (long long)lag));
    }
    TRY(header(b, "group_pending", "gauge",
               "Entries delivered to the consumer group and not acknowledged."));
    TRY(dm_buf_printf(b, "dreamd_group_pending %lld\n", (long long)atomic_load(&m->group_pending)));

    TRY(header(b, "ready", "gauge", "1 when the replica is ready to take jobs."));
    TRY(dm_buf_printf(b, "dreamd_ready %d\n", atomic_load(&m->ready)));
    TRY(header(b, "start_time_seconds", "gauge", "Start time of the process, Unix seconds."));
    fmt_double(num, sizeof(num), m->start_time);
    TRY(dm_buf_printf(b, "dreamd_start_time_seconds %s\n", num));
    TRY(header(b, "build_info", "gauge", "Version of dreamd; always 1."));
    TRY(dm_buf_printf(b, "dreamd_build_info{version=\"%s\"} 1\n", DREAM_VERSION));
#undef TRY
out:
    return rc;
}

/* ---- admin server ------------------------------------------------------------------------- */

struct dm_admin {
    struct MHD_Daemon *daemon;
    struct dm_metrics *m;
    int port;
};

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    dm_warn("admin", NULL, "%s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len, int must_free)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = must_free ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
                  : MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (must_free) {
            free(body);
        }
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **state)
{
    static const char text[] = "text/plain; charset=utf-8";
    struct dm_admin *a = cls;
    (void)version;
    (void)upload_data;
    (void)state;

    if (*upload_data_size) {
        *upload_data_size = 0; /* a body we do not want: drop it */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, "method not allowed\n", 19, 0);
    }
    if (!strcmp(url, "/metrics")) {
        struct dm_buf b;
        size_t len;
        char *body;
        dm_buf_init(&b, (size_t)4 << 20);
        if (dm_metrics_render(a->m, &b)) {
            dm_buf_free(&b);
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "render failed\n", 14, 0);
        }
        len = b.len;
        body = dm_buf_detach(&b);
        if (!body) {
            return MHD_NO;
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, 1);
    }
    if (!strcmp(url, "/healthz")) {
        return reply(c, MHD_HTTP_OK, text, "ok\n", 3, 0);
    }
    if (!strcmp(url, "/readyz")) {
        if (dm_metrics_ready(a->m)) {
            return reply(c, MHD_HTTP_OK, text, "ready\n", 6, 0);
        }
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, text, "not ready\n", 10, 0);
    }
    return reply(c, MHD_HTTP_NOT_FOUND, text, "not found\n", 10, 0);
}

/* Splits "host:port" / "[v6]:port" into host (may become "") and port. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    const char *h = addr;
    size_t hl;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            return -1;
        }
        h = addr + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            return -1;
        }
        hl = (size_t)(colon - addr);
    }
    if (hl >= hostlen || strlen(colon + 1) >= portlen || !colon[1]) {
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
    }
    return atoi(port) <= 65535 ? 0 : -1;
}

int dm_admin_start(struct dm_admin **out, struct dm_metrics *m, const char *addr,
                   struct dm_error *err)
{
    struct addrinfo hints;
    struct addrinfo *ai = NULL;
    struct dm_admin *a = NULL;
    const union MHD_DaemonInfo *info;
    char host[256];
    char port[16];
    unsigned flags;
    int gai;
    int rc = 0;

    *out = NULL;
    if (!addr || !*addr) {
        return 0;
    }
    if (split_addr(addr, host, sizeof(host), port, sizeof(port))) {
        rc = dm_error_set(err, DM_ERR_INVALID, "admin address '%s': want host:port", addr);
        goto out;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai || !ai) {
        rc = dm_error_set(err, DM_ERR_INVALID, "admin address '%s': %s", addr, gai_strerror(gai));
        goto out;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        rc = dm_error_set(err, DM_ERR_NOMEM, "out of memory");
        goto out;
    }
    a->m = m;
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    a->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
                                 on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!a->daemon) {
        rc = dm_error_set(err, DM_ERR_IO, "admin server: cannot listen on %s", addr);
        goto out;
    }
    info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? (int)info->port : atoi(port);
    dm_info("admin", NULL, "admin endpoint on %s (port %d): /metrics /healthz /readyz", addr,
            a->port);
    *out = a;
    a = NULL;
out:
    if (ai) {
        freeaddrinfo(ai);
    }
    free(a);
    return rc;
}

int dm_admin_port(const struct dm_admin *a)
{
    return a ? a->port : 0;
}

void dm_admin_stop(struct dm_admin *a)
{
    if (!a) {
        return;
    }
    MHD_stop_daemon(a->daemon);
    free(a);
}
