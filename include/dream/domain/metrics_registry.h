/*
 * metrics_registry: the counters, gauges and the LLM latency histogram of a replica, and their
 * rendering in the Prometheus text exposition format (version 0.0.4). The admin HTTP endpoint
 * that serves them is dream/io/metrics.h.
 *
 * Families (all prefixed `dreamd_`):
 *   dreamd_jobs_total{status}                    counter  jobs ended: complete, failed,
 *                                                         cancelled, dead_lettered, parked
 *   dreamd_jobs_in_flight                        gauge
 *   dreamd_llm_requests_total{outcome}           counter  ok, retried, failed
 *   dreamd_llm_request_duration_seconds          histogram (le 0.1 0.25 0.5 1 2.5 5 10 20 30 60
 *                                                          120 300 +Inf)
 *   dreamd_llm_tokens_total{kind}                counter  prompt, completion
 *   dreamd_llm_cost_dollars_total                counter  USD spent on LLM calls
 *   dreamd_reclaims_total                        counter  entries reclaimed from other replicas
 *   dreamd_dead_letters_total                    counter  entries written to <prefix>:dead
 *   dreamd_redis_reconnects_total                counter
 *   dreamd_callback_events_dropped_total         counter  callback events dropped unsent
 *                                                         (backlog or job queue full)
 *   dreamd_group_lag                             gauge    consumer group lag (NaN until known)
 *   dreamd_group_pending                         gauge    consumer group pending entries
 *   dreamd_ready                                 gauge    1 when /readyz answers 200
 *   dreamd_start_time_seconds                    gauge    process start, Unix time
 *   dreamd_build_info{version}                   gauge    always 1
 *
 * Threading: the update functions are meant for the loop thread (one writer); every value is a
 * C11 atomic, so the admin server's thread (and any other) may render at any time. A render
 * taken while updates happen may mix values from before and after an update, never torn ones;
 * a histogram's _count always equals its +Inf bucket. Every update function accepts m == NULL
 * and then does nothing, so modules work without metrics (tests). Pure: no I/O.
 */
#ifndef DREAM_METRICS_REGISTRY_H
#define DREAM_METRICS_REGISTRY_H

#include "dream/core/buf.h"

#include <stdint.h>

enum dm_metric_job {
    DM_METRIC_JOB_COMPLETE = 0,
    DM_METRIC_JOB_FAILED = 1,
    DM_METRIC_JOB_CANCELLED = 2,
    DM_METRIC_JOB_DEAD_LETTERED = 3,
    DM_METRIC_JOB_PARKED = 4, /* paused_approval: the entry is acked, the job waits */
    DM_METRIC_JOB_COUNT_ = 5,
};

enum dm_metric_llm {
    DM_METRIC_LLM_OK = 0,
    DM_METRIC_LLM_RETRIED = 1, /* an attempt that failed in a retryable way and was retried */
    DM_METRIC_LLM_FAILED = 2,  /* an attempt that failed for good */
    DM_METRIC_LLM_COUNT_ = 3,
};

struct dm_metrics; /* opaque */

/* Makes a zeroed set of metrics (group lag unknown, not ready). Returns 0 or DM_ERR_NOMEM.
 * Free with dm_metrics_free after the admin server using it has stopped. */
int dm_metrics_new(struct dm_metrics **out);
void dm_metrics_free(struct dm_metrics *m);

/* A job reached status (counted once per job and outcome; a parked job that later completes
 * counts in both). */
void dm_metrics_job_finished(struct dm_metrics *m, enum dm_metric_job status);
/* Jobs in flight on this replica right now. */
void dm_metrics_set_jobs_in_flight(struct dm_metrics *m, int64_t n);
/* Model requests in flight on this replica right now (the worker hash's `requests`; not
 * rendered). */
void dm_metrics_set_llm_in_flight(struct dm_metrics *m, int64_t n);
int64_t dm_metrics_llm_in_flight(const struct dm_metrics *m);
/* One LLM HTTP attempt ended with outcome after seconds (seconds < 0: not observed in the
 * latency histogram, e.g. a request that never reached the network). */
void dm_metrics_llm_request(struct dm_metrics *m, enum dm_metric_llm outcome, double seconds);
/* Tokens reported by an LLM reply. */
void dm_metrics_llm_tokens(struct dm_metrics *m, uint64_t prompt, uint64_t completion);
/* Dollars charged for an LLM call (negative or NaN values are ignored). */
void dm_metrics_llm_cost(struct dm_metrics *m, double dollars);
/* n entries reclaimed from a crashed or slow replica. */
void dm_metrics_reclaimed(struct dm_metrics *m, uint64_t n);
/* One entry written to the dead-letter stream. */
void dm_metrics_dead_lettered(struct dm_metrics *m);
/* The Redis connection was re-established. */
void dm_metrics_redis_reconnected(struct dm_metrics *m);
/* n callback events were dropped without being delivered (dream/io/callback.h). */
void dm_metrics_callback_dropped(struct dm_metrics *m, uint64_t n);
/* From the engine's periodic XINFO GROUPS: lag < 0 means unknown (Redis reports nil). */
void dm_metrics_set_group(struct dm_metrics *m, int64_t lag, int64_t pending);
/* Readiness, set by the engine: Redis connected and not shutting down. */
void dm_metrics_set_ready(struct dm_metrics *m, int ready);
/* 1 when ready (0 for m == NULL). Any thread. */
int dm_metrics_ready(const struct dm_metrics *m);

/* Appends the whole exposition to out. Any thread. Returns 0 or dm_buf's error. */
int dm_metrics_render(const struct dm_metrics *m, struct dm_buf *out);

#endif
