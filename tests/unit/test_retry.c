/* Unit tests for retry: the LLM retry decision (status codes, OpenRouter's in-flight 402,
 * transport failures, Retry-After) and the shared capped exponential backoff with jitter. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dream/domain/retry.h"
#include "dream/domain/sse.h"

Test(retry, llm_decision_by_status)
{
    long long ra;
    const long retried[] = {408, 429, 500, 502, 503, 504};
    const long final[] = {200, 400, 401, 403, 404, 409, 422, 501};
    for (size_t i = 0; i < sizeof(retried) / sizeof(retried[0]); i++) {
        cr_assert_eq(dm_llm_should_retry(retried[i], 0, "", 0, NULL, 0, &ra), 1, "%ld", retried[i]);
        cr_assert_eq(ra, -1, "no Retry-After");
    }
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        cr_assert_eq(dm_llm_should_retry(final[i], 0, "", 0, "1", 0, &ra), 0, "%ld", final[i]);
        cr_assert_eq(ra, 1000, "Retry-After is read even when the answer is final");
    }
}

Test(retry, llm_402_only_for_the_in_flight_budget)
{
    long long ra;
    const char *inflight = "{\"error\":{\"code\":402,\"message\":\"m\",\"metadata\":{\"reason\":"
                           "\"in_flight_budget_exhausted\",\"limit_source\":"
                           "\"openrouter_in_flight_budget\"}}}";
    const char *credits = "{\"error\":{\"code\":402,\"message\":\"m\",\"metadata\":{"
                          "\"limit_source\":\"openrouter_credits\"}}}";
    cr_assert_eq(dm_llm_should_retry(402, 0, inflight, strlen(inflight), "3", 0, &ra), 1);
    cr_assert_eq(ra, 3000);
    cr_assert_eq(dm_llm_should_retry(402, 0, credits, strlen(credits), NULL, 0, &ra), 0);
    cr_assert_eq(dm_llm_should_retry(402, 0, "", 0, NULL, 0, &ra), 0, "no body: final");
    cr_assert_eq(dm_llm_should_retry(402, 0, "not json", 8, NULL, 0, &ra), 0);
}

Test(retry, llm_transport_failures_and_retry_after)
{
    long long ra;
    cr_assert_eq(dm_llm_should_retry(0, 0, NULL, 0, NULL, 0, &ra), 1, "connect failure");
    cr_assert_eq(dm_llm_should_retry(0, 1, NULL, 0, NULL, 0, &ra), 0, "bytes arrived");
    /* An HTTP date, relative to now_ms (Thu, 01 Jan 2026 00:00:10 GMT = 1767225610 s). */
    cr_assert_eq(
        dm_llm_should_retry(429, 0, NULL, 0, "Thu, 01 Jan 2026 00:00:10 GMT", 1767225600000LL, &ra),
        1);
    cr_assert_eq(ra, 10000);
    cr_assert_eq(dm_llm_should_retry(503, 0, NULL, 0, "soon", 0, &ra), 1);
    cr_assert_eq(ra, -1, "an unreadable Retry-After is ignored");
}

Test(retry, backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half)
{
    /* random 0 gives the bottom of [d/2, d], d/2 gives the top. */
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 1, 0), 500);
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 1, 500), 1000);
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 1, 501), 500, "random wraps modulo d/2+1");
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 2, 0), 1000);
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 3, 2000), 4000);
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 5, 0), 8000);
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 6, 15000), 30000, "capped at max");
    cr_assert_eq(dm_retry_backoff_ms(1000, 30000, 60, 0), 15000, "no overflow for late attempts");
    cr_assert_eq(dm_retry_backoff_ms(5000, 3000, 1, 0), 1500, "base above max is capped too");
    cr_assert_eq(dm_retry_backoff_ms(1, 100, 1, 12345), 1, "below 2 ms there is no jitter");
    cr_assert_eq(dm_retry_backoff_ms(0, 100, 3, 7), 0);
}

Test(retry, llm_backoff_stays_in_bounds_and_varies)
{
    int varied = 0;
    for (int a = 1; a <= 10; a++) {
        long long cap = 1000LL << (a - 1);
        long long first = -1;
        if (cap > 30000) {
            cap = 30000;
        }
        for (int k = 0; k < 50; k++) {
            long long d = dm_llm_backoff_ms(1000, 30000, a);
            cr_assert_geq(d, cap / 2);
            cr_assert_leq(d, cap);
            if (first < 0) {
                first = d;
            } else if (d != first) {
                varied = 1;
            }
        }
    }
    cr_assert(varied, "the jitter changes the delay");
}

Test(retry, errors_inside_a_stream_are_retried_like_their_status)
{
    struct dm_sse_api_error e;
    static const long retried[] = {408, 429, 500, 502, 503, 504};
    static const long final[] = {400, 401, 403, 404, 0};

    memset(&e, 0, sizeof(e));
    cr_assert_eq(dm_llm_stream_error_retryable(&e), 0, "no error");
    cr_assert_eq(dm_llm_stream_error_retryable(NULL), 0);
    e.present = 1;
    for (size_t i = 0; i < sizeof(retried) / sizeof(retried[0]); i++) {
        e.code = retried[i];
        cr_assert_eq(dm_llm_stream_error_retryable(&e), 1, "%ld", retried[i]);
    }
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        e.code = final[i];
        cr_assert_eq(dm_llm_stream_error_retryable(&e), 0, "%ld", final[i]);
    }
    e.code = 402;
    cr_assert_eq(dm_llm_stream_error_retryable(&e), 0, "credits: final");
    snprintf(e.limit_source, sizeof(e.limit_source), "openrouter_in_flight_budget");
    cr_assert_eq(dm_llm_stream_error_retryable(&e), 1, "the in-flight budget frees up");
}
