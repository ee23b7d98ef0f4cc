/* Unit tests for metrics_registry: updates and their Prometheus text rendering, without the
 * admin server (tests/integration/test_metrics.c scrapes it over HTTP). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/error.h"
#include "dream/domain/metrics_registry.h"

static char *render(const struct dm_metrics *m)
{
    struct dm_buf b;
    dm_buf_init(&b, (size_t)1 << 20);
    cr_assert_eq(dm_metrics_render(m, &b), 0);
    return dm_buf_detach(&b);
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

Test(metrics_registry, starts_at_zero_with_unknown_lag)
{
    struct dm_metrics *m = NULL;
    char *t;
    cr_assert_eq(dm_metrics_new(&m), 0);
    t = render(m);
    cr_assert_eq(sample(t, "dreamd_jobs_total{status=\"complete\"}"), 0);
    cr_assert_eq(sample(t, "dreamd_llm_request_duration_seconds_count"), 0);
    cr_assert(strstr(t, "\ndreamd_group_lag NaN\n"), "lag is unknown at first");
    cr_assert_eq(sample(t, "dreamd_ready"), 0);
    cr_assert_eq(dm_metrics_ready(m), 0);
    cr_assert_gt(sample(t, "dreamd_start_time_seconds"), 1.7e9);
    cr_assert_eq(sample(t, "dreamd_build_info{version=\"" DREAM_VERSION "\"}"), 1);
    cr_assert(strstr(t, "# TYPE dreamd_llm_request_duration_seconds histogram\n"));
    free(t);
    dm_metrics_free(m);
}

Test(metrics_registry, values_follow_updates)
{
    struct dm_metrics *m = NULL;
    char *t;
    cr_assert_eq(dm_metrics_new(&m), 0);
    dm_metrics_job_finished(m, DM_METRIC_JOB_COMPLETE);
    dm_metrics_job_finished(m, DM_METRIC_JOB_COMPLETE);
    dm_metrics_job_finished(m, DM_METRIC_JOB_PARKED);
    dm_metrics_job_finished(m, DM_METRIC_JOB_COUNT_); /* out of range: ignored */
    dm_metrics_set_jobs_in_flight(m, 7);
    dm_metrics_llm_request(m, DM_METRIC_LLM_OK, 0.05);
    dm_metrics_llm_request(m, DM_METRIC_LLM_OK, 0.1); /* le is inclusive */
    dm_metrics_llm_request(m, DM_METRIC_LLM_OK, 3.0);
    dm_metrics_llm_request(m, DM_METRIC_LLM_RETRIED, 400.0);
    dm_metrics_llm_request(m, DM_METRIC_LLM_FAILED, -1);       /* counted, not observed */
    dm_metrics_llm_request(m, DM_METRIC_LLM_FAILED, INFINITY); /* counted, not observed */
    dm_metrics_llm_tokens(m, 1200, 345);
    dm_metrics_llm_tokens(m, 800, 655);
    dm_metrics_llm_cost(m, 0.25);
    dm_metrics_llm_cost(m, 0.125);
    dm_metrics_llm_cost(m, -3);
    dm_metrics_llm_cost(m, NAN);
    dm_metrics_reclaimed(m, 4);
    dm_metrics_dead_lettered(m);
    dm_metrics_redis_reconnected(m);
    dm_metrics_redis_reconnected(m);
    dm_metrics_set_group(m, 42, 9);
    dm_metrics_set_ready(m, 5);

    t = render(m);
    cr_assert_eq(sample(t, "dreamd_jobs_total{status=\"complete\"}"), 2);
    cr_assert_eq(sample(t, "dreamd_jobs_total{status=\"parked\"}"), 1);
    cr_assert_eq(sample(t, "dreamd_jobs_total{status=\"failed\"}"), 0);
    cr_assert_eq(sample(t, "dreamd_jobs_in_flight"), 7);
    cr_assert_eq(sample(t, "dreamd_llm_requests_total{outcome=\"ok\"}"), 3);
    cr_assert_eq(sample(t, "dreamd_llm_requests_total{outcome=\"retried\"}"), 1);
    cr_assert_eq(sample(t, "dreamd_llm_requests_total{outcome=\"failed\"}"), 2);
    cr_assert_eq(sample(t, "dreamd_llm_request_duration_seconds_bucket{le=\"0.1\"}"), 2);
    cr_assert_eq(sample(t, "dreamd_llm_request_duration_seconds_bucket{le=\"2.5\"}"), 2);
    cr_assert_eq(sample(t, "dreamd_llm_request_duration_seconds_bucket{le=\"5\"}"), 3);
    cr_assert_eq(sample(t, "dreamd_llm_request_duration_seconds_bucket{le=\"300\"}"), 3);
    cr_assert_eq(sample(t, "dreamd_llm_request_duration_seconds_bucket{le=\"+Inf\"}"), 4);
    cr_assert_eq(sample(t, "dreamd_llm_request_duration_seconds_count"), 4);
    cr_assert_float_eq(sample(t, "dreamd_llm_request_duration_seconds_sum"), 403.15, 1e-9);
    cr_assert_eq(sample(t, "dreamd_llm_tokens_total{kind=\"prompt\"}"), 2000);
    cr_assert_eq(sample(t, "dreamd_llm_tokens_total{kind=\"completion\"}"), 1000);
    cr_assert_float_eq(sample(t, "dreamd_llm_cost_dollars_total"), 0.375, 1e-12);
    cr_assert_eq(sample(t, "dreamd_reclaims_total"), 4);
    cr_assert_eq(sample(t, "dreamd_dead_letters_total"), 1);
    cr_assert_eq(sample(t, "dreamd_redis_reconnects_total"), 2);
    cr_assert_eq(sample(t, "dreamd_group_lag"), 42);
    cr_assert_eq(sample(t, "dreamd_group_pending"), 9);
    cr_assert_eq(sample(t, "dreamd_ready"), 1, "readiness is 0 or 1");
    cr_assert_eq(dm_metrics_ready(m), 1);
    free(t);

    dm_metrics_set_group(m, -5, 0);
    t = render(m);
    cr_assert(strstr(t, "\ndreamd_group_lag NaN\n"), "lag unknown again");
    free(t);
    dm_metrics_free(m);
}

Test(metrics_registry, null_metrics_are_ignored_and_the_render_respects_the_cap)
{
    struct dm_metrics *m = NULL;
    struct dm_buf b;
    dm_metrics_job_finished(NULL, DM_METRIC_JOB_COMPLETE);
    dm_metrics_set_jobs_in_flight(NULL, 1);
    dm_metrics_llm_request(NULL, DM_METRIC_LLM_OK, 1);
    dm_metrics_llm_tokens(NULL, 1, 1);
    dm_metrics_llm_cost(NULL, 1);
    dm_metrics_reclaimed(NULL, 1);
    dm_metrics_dead_lettered(NULL);
    dm_metrics_redis_reconnected(NULL);
    dm_metrics_set_group(NULL, 1, 1);
    dm_metrics_set_ready(NULL, 1);
    cr_assert_eq(dm_metrics_ready(NULL), 0);
    cr_assert_eq(dm_metrics_new(&m), 0);
    dm_buf_init(&b, 64);
    cr_assert_eq(dm_metrics_render(m, &b), DM_ERR_LIMIT);
    dm_buf_free(&b);
    dm_metrics_free(m);
}
