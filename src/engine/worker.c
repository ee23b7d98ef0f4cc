/*
 * worker: this replica's heartbeat hash <prefix>:worker:<consumer> (when it last beat, version,
 * start time, jobs in flight, whether it is stopping; it expires three beats after the last)
 * that `dreamctl workers` lists, and the consumer group's lag and pending count for metrics.
 * Loop thread only.
 */
#include "engine_int.h"

#include "dream/core/log.h"
#include "dream/io/metrics.h"

#include <stdio.h>
#include <string.h>

static void on_simple_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    (void)reply;
    (void)why;
    e->cmds--;
    eng_maybe_finish_stop(e);
}

static long long reply_field_int(const redisReply *flat, const char *name)
{
    for (size_t i = 0; flat && flat->type == REDIS_REPLY_ARRAY && i + 1 < flat->elements; i += 2) {
        const redisReply *k = flat->element[i];
        const redisReply *v = flat->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) {
            return v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
        }
    }
    return -1;
}

static void on_groups_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    (void)why;
    e->cmds--;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        for (size_t k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements; k += 2) {
            if (g->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[k]->str, "name") == 0 &&
                g->element[k + 1]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[k + 1]->str, DM_KEYS_GROUP) == 0) {
                dm_metrics_set_group(e->metrics, reply_field_int(g, "lag"),
                                     reply_field_int(g, "pending"));
            }
        }
    }
    eng_maybe_finish_stop(e);
}

static long worker_interval(const struct dm_engine *e)
{
    long v = (long)(e->cfg->lease_ms / 3);
    return v > 5000 ? 5000 : v;
}

void eng_worker_beat(struct dm_engine *e)
{
    char ts[32], inflight[16], ttl[24], started[32];

    if (!dm_redis_is_up(e->cmd)) {
        return;
    }
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(inflight, sizeof(inflight), "%d", e->inflight);
    snprintf(ttl, sizeof(ttl), "%ld", worker_interval(e) * 3);
    dm_time_rfc3339(e->started_ms, started, sizeof(started));
    if (dm_redis_cmdf(e->cmd, on_simple_reply, e,
                      "HSET %s ts %s version %s started %s jobs %s max_jobs %lld stopping %d "
                      "requests %lld",
                      e->k_worker, ts, DREAM_VERSION, started, inflight, e->cfg->max_jobs,
                      e->stopping, (long long)dm_metrics_llm_in_flight(e->metrics)) == 0) {
        e->cmds++;
    }
    if (dm_redis_cmdf(e->cmd, on_simple_reply, e, "PEXPIRE %s %s", e->k_worker, ttl) == 0) {
        e->cmds++;
    }
    if (e->metrics &&
        dm_redis_cmdf(e->cmd, on_groups_reply, e, "XINFO GROUPS %s", e->keys.jobs) == 0) {
        e->cmds++;
    }
    eng_update_readiness(e);
}

static void on_worker_timer(uv_timer_t *t)
{
    eng_worker_beat(t->data);
}

void eng_worker_start(struct dm_engine *e)
{
    uv_timer_start(&e->worker_timer, on_worker_timer, (uint64_t)worker_interval(e),
                   (uint64_t)worker_interval(e));
}
