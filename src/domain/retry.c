/*
 * retry: the retry decision and backoff rules of the remote clients (see
 * include/dream/domain/retry.h). Pure; the only state is dm_llm_backoff_ms's jitter, used from
 * the loop thread.
 */
#include "dream/domain/retry.h"

#include "dream/domain/sse.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

long long dm_retry_backoff_ms(long base_ms, long max_ms, int attempt, uint64_t random)
{
    long long d = base_ms;

    for (int i = 1; i < attempt && d < max_ms; i++) {
        d *= 2;
    }
    if (d > max_ms) {
        d = max_ms;
    }
    if (d < 2) {
        return d;
    }
    return d / 2 + (long long)(random % (uint64_t)(d / 2 + 1));
}

/* A small per-process PRNG for jitter (replicas must not share one sequence). */
static uint64_t jitter_state;

static uint64_t jitter_next(void)
{
    if (jitter_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        jitter_state = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                       ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    }
    jitter_state ^= jitter_state << 13;
    jitter_state ^= jitter_state >> 7;
    jitter_state ^= jitter_state << 17;
    return jitter_state;
}

long long dm_llm_backoff_ms(long base_ms, long max_ms, int attempt)
{
    return dm_retry_backoff_ms(base_ms, max_ms, attempt, jitter_next());
}

int dm_llm_should_retry(long status, int got_bytes, const char *body, size_t body_len,
                        const char *retry_after, long long now_ms, long long *retry_after_ms)
{
    long long ra = -1;
    if (retry_after && dm_sse_retry_after_ms(retry_after, now_ms, &ra) != 0) {
        ra = -1;
    }
    *retry_after_ms = ra;
    switch (status) {
    case 0:
        return !got_bytes;
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return 1;
    case 402: {
        struct dm_sse_api_error e;
        if (dm_sse_parse_error(body, body_len, &e) == 0 &&
            strcmp(e.limit_source, "openrouter_in_flight_budget") == 0) {
            return 1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

int dm_llm_stream_error_retryable(const struct dm_sse_api_error *e)
{
    if (!e || !e->present) {
        return 0;
    }
    switch (e->code) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return 1;
    case 402:
        return strcmp(e->limit_source, "openrouter_in_flight_budget") == 0;
    default:
        return 0;
    }
}
