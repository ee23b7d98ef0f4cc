/*
 * metrics_registry: atomic counters of a replica and their Prometheus text rendering (see
 * include/dream/domain/metrics_registry.h).
 *
 * Owns the struct dm_metrics: written by the loop thread, read (rendered) by any thread. Pure.
 */
#include "dream/domain/metrics_registry.h"

#include "dream/core/error.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    atomic_llong llm_in_flight;
    atomic_ullong llm[DM_METRIC_LLM_COUNT_];
    atomic_ullong latency[N_BUCKETS + 1]; /* per bucket (not cumulative); last is > max */
    atomic_ullong latency_sum;            /* double bits */
    atomic_ullong tokens_prompt;
    atomic_ullong tokens_completion;
    atomic_ullong cost; /* double bits */
    atomic_ullong reclaims;
    atomic_ullong dead_letters;
    atomic_ullong reconnects;
    atomic_ullong callback_dropped;
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
    atomic_init(&m->llm_in_flight, 0);
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
    atomic_init(&m->callback_dropped, 0);
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

void dm_metrics_set_llm_in_flight(struct dm_metrics *m, int64_t n)
{
    if (m) {
        atomic_store(&m->llm_in_flight, n);
    }
}

int64_t dm_metrics_llm_in_flight(const struct dm_metrics *m)
{
    return m ? (int64_t)atomic_load(&((struct dm_metrics *)m)->llm_in_flight) : 0;
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

void dm_metrics_callback_dropped(struct dm_metrics *m, uint64_t n)
{
    if (m) {
        atomic_fetch_add(&m->callback_dropped, n);
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
    TRY(header(b, "callback_events_dropped_total", "counter",
               "Callback events dropped unsent: the replica's callback backlog or a job's queue "
               "was full."));
    TRY(dm_buf_printf(b, "dreamd_callback_events_dropped_total %llu\n",
                      (unsigned long long)atomic_load(&m->callback_dropped)));

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
