/*
 * engine: one replica's lifecycle (see include/dream/engine/engine.h). Owns the engine itself,
 * its three Redis connections (reader, commands, subscriber) and their up/down handling, the
 * control channel (cancel requests), the list of in-flight jobs (a job's allocation and
 * release) and the orderly shutdown with its grace period. The other duties live beside it
 * (src/engine/engine_int.h lists them).
 *
 * Ownership: a job (struct ejob, which embeds the pure struct dm_job) is freed only when it is
 * over, has no write, start or file read in flight and its three timers have closed. The engine
 * frees itself in the last close callback after dm_engine_stop. Loop thread only.
 */
#include "engine_int.h"

#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/core/text.h"
#include "dream/domain/jobreq.h"
#include "dream/domain/scripts.h"
#include "dream/io/callback.h"
#include "dream/io/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dm_engine_observe(struct dm_engine *e, struct dm_metrics *metrics,
                       struct dm_callbacks *callbacks)
{
    e->metrics = metrics;
    e->callbacks = callbacks;
}

/* POSTs an event to the job's callbackUrl; never blocks or fails the job. */
void eng_post_callback(struct dm_engine *e, const struct dm_job *job, const char *ev, size_t len)
{
    struct dm_error err;
    if (!e->callbacks || !job->req || !job->req->callback_url || !ev || !len) {
        return;
    }
    if (dm_callback_post(e->callbacks, job->req->callback_url, ev, len, &err)) {
        dm_warn("engine", job->id, "callback not queued: %s", err.msg);
    }
}

void eng_update_readiness(struct dm_engine *e)
{
    dm_metrics_set_ready(e->metrics, dm_engine_ready(e));
}

uv_loop_t *dm_engine_loop(const struct dm_engine *e)
{
    return e->loop;
}

struct dm_engine *dm_job_engine(const struct dm_job *job)
{
    return job->engine;
}

const struct dm_config *dm_engine_config(const struct dm_engine *e)
{
    return e->cfg;
}

int dm_engine_inflight(const struct dm_engine *e)
{
    return e->inflight;
}

int dm_engine_ready(const struct dm_engine *e)
{
    return !e->stopping && dm_redis_is_up(e->reader) && dm_redis_is_up(e->cmd) &&
           dm_redis_is_up(e->sub);
}

unsigned long dm_engine_reconnects(const struct dm_engine *e)
{
    return dm_redis_reconnects(e->reader) + dm_redis_reconnects(e->cmd) +
           dm_redis_reconnects(e->sub);
}

static void on_ejob_handle_closed(uv_handle_t *h)
{
    struct ejob *ej = h->data;
    struct dm_engine *e = ej->eng;

    if (--ej->handles > 0) {
        return;
    }
    if (ej->prev) {
        ej->prev->next = ej->next;
    } else {
        e->jobs = ej->next;
    }
    if (ej->next) {
        ej->next->prev = ej->prev;
    }
    if (ej->job.final_status) {
        static const struct {
            const char *status;
            enum dm_metric_job metric;
        } map[] = {{"complete", DM_METRIC_JOB_COMPLETE},
                   {"failed", DM_METRIC_JOB_FAILED},
                   {"cancelled", DM_METRIC_JOB_CANCELLED},
                   {"paused_approval", DM_METRIC_JOB_PARKED}};
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            if (strcmp(ej->job.final_status, map[i].status) == 0) {
                dm_metrics_job_finished(e->metrics, map[i].metric);
            }
        }
    }
    dm_job_clear(&ej->job);
    free(ej);
    e->inflight--;
    dm_metrics_set_jobs_in_flight(e->metrics, e->inflight);
    if (e->stopping) {
        eng_maybe_finish_stop(e);
    } else {
        eng_read_more(e);
    }
}

struct ejob *eng_job_new(struct dm_engine *e, const char *entry, const char *job_id)
{
    struct ejob *ej = calloc(1, sizeof(*ej));
    const char *p = e->cfg->prefix;

    if (!ej) {
        return NULL;
    }
    dm_job_init(&ej->job, e->stages, &e->io, e);
    snprintf(ej->job.id, sizeof(ej->job.id), "%s", job_id);
    snprintf(ej->job.entry, sizeof(ej->job.entry), "%s", entry);
    /* job_id passed the jobId rule (at most 128 bytes) and the prefix the setting's (at most
     * 64): the keys always fit. */
    if (dm_keys_job(ej->k_hash, sizeof(ej->k_hash), p, job_id, DM_JOB_KEY_HASH) ||
        dm_keys_job(ej->k_events, sizeof(ej->k_events), p, job_id, DM_JOB_KEY_EVENTS) ||
        dm_keys_job(ej->k_files, sizeof(ej->k_files), p, job_id, DM_JOB_KEY_FILES)) {
        free(ej);
        return NULL;
    }
    ej->eng = e;
    uv_timer_init(e->loop, &ej->after_timer);
    uv_timer_init(e->loop, &ej->write_timer);
    uv_timer_init(e->loop, &ej->deadline_timer);
    ej->after_timer.data = ej;
    ej->write_timer.data = ej;
    ej->deadline_timer.data = ej;
    ej->handles = 3;
    ej->job.stage_timeout_ms = (long)e->cfg->stage_timeout_ms;
    ej->job.stopping = e->stopping;
    ej->next = e->jobs;
    if (e->jobs) {
        e->jobs->prev = ej;
    }
    e->jobs = ej;
    e->inflight++;
    dm_metrics_set_jobs_in_flight(e->metrics, e->inflight);
    return ej;
}

void eng_job_release(struct ejob *ej)
{
    if (ej->closing || !ej->job.over || ej->writing || ej->starting || ej->reads || ej->wq_head) {
        return;
    }
    ej->closing = 1;
    uv_timer_stop(&ej->after_timer);
    uv_timer_stop(&ej->write_timer);
    uv_timer_stop(&ej->deadline_timer);
    uv_close((uv_handle_t *)&ej->after_timer, on_ejob_handle_closed);
    uv_close((uv_handle_t *)&ej->write_timer, on_ejob_handle_closed);
    uv_close((uv_handle_t *)&ej->deadline_timer, on_ejob_handle_closed);
}

static void on_conn_down(struct dm_redis_conn *c, void *arg, const char *why)
{
    struct dm_engine *e = arg;
    (void)c;
    (void)why;
    dm_metrics_redis_reconnected(e->metrics);
    eng_update_readiness(e);
}

static void on_conn_up(struct dm_redis_conn *c, void *arg)
{
    struct dm_engine *e = arg;
    eng_update_readiness(e);
    if (c == e->cmd) {
        eng_ensure_group(e);
        eng_worker_beat(e);
    }
    eng_read_more(e);
}

static void on_control(void *arg, const char *channel, const char *msg, size_t len)
{
    struct dm_engine *e = arg;
    const char *key = "\"cancel\":\"";
    const char *p;
    char id[DM_JOBREQ_ID_MAX + 1];
    size_t n = 0;

    (void)channel;
    (void)len;
    p = strstr(msg, key);
    if (!p) {
        return;
    }
    p += strlen(key);
    while (p[n] && p[n] != '"' && n < sizeof(id) - 1) {
        id[n] = p[n];
        n++;
    }
    id[n] = '\0';
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        if (!ej->job.over && strcmp(ej->job.id, id) == 0) {
            dm_info("engine", id, "cancel requested");
            dm_job_request_cancel(&ej->job);
        }
    }
}

static void on_engine_handle_closed(uv_handle_t *h)
{
    struct dm_engine *e = h->data;
    if (--e->handles > 0) {
        return;
    }
    free(e->secrets_buf);
    free(e->hosts_buf);
    free(e->ihosts_buf);
    if (e->stopped) {
        e->stopped(e, e->arg);
    }
    free(e);
}

static void close_conns(struct dm_engine *e)
{
    struct dm_redis_conn *r = e->reader, *c = e->cmd, *s = e->sub;

    if (e->conns_closed) {
        return;
    }
    e->conns_closed = 1;
    e->reader = e->cmd = e->sub = NULL;
    e->reading = 0;
    e->read_slots = 0;
    /* In-flight commands get their callbacks (reply NULL) inside these closes, or right after
     * the hiredis callback we may be in returns. */
    dm_redis_close(r);
    dm_redis_close(c);
    dm_redis_close(s);
}

void eng_maybe_finish_stop(struct dm_engine *e)
{
    if (!e->stopping || e->finished || e->jobs || e->reading) {
        return;
    }
    e->finished = 1;
    dm_info("engine", NULL, "stopped: no job in flight");
    uv_timer_stop(&e->hb_timer);
    uv_timer_stop(&e->sweep_timer);
    uv_timer_stop(&e->worker_timer);
    uv_timer_stop(&e->grace_timer);
    uv_timer_stop(&e->retry_timer);
    close_conns(e);
    uv_close((uv_handle_t *)&e->retry_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->hb_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->sweep_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->worker_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->grace_timer, on_engine_handle_closed);
}

static void on_grace_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    int n = 0;

    if (!e->forcing) {
        /* Ask running stages to stop; they report back and the jobs stay pending. */
        e->forcing = 1;
        for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
            n++;
            if (ej->job.running && e->stages->cancel) {
                e->stages->cancel(&ej->job);
            }
        }
        if (n) {
            dm_warn("engine", NULL,
                    "shutdown grace over: interrupting %d jobs; they stay pending for another "
                    "replica",
                    n);
            uv_timer_start(&e->grace_timer, on_grace_timer, 1000, 0);
            return;
        }
    }
    /* Whatever still waits on Redis gives up now. */
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        ej->job.over = 1;
    }
    close_conns(e);
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        eng_drop_writes(ej, DM_ERR_UNAVAILABLE);
        eng_job_release(ej);
    }
    eng_maybe_finish_stop(e);
}

void dm_engine_stop(struct dm_engine *e, int force)
{
    if (e->stopping) {
        if (force && !e->finished) {
            uv_timer_start(&e->grace_timer, on_grace_timer, 0, 0);
        }
        return;
    }
    e->stopping = 1;
    eng_update_readiness(e);
    dm_info("engine", NULL, "stopping: %d jobs in flight, grace %lld ms", e->inflight,
            force ? 0LL : e->cfg->shutdown_grace_ms);
    for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
        ej->job.stopping = 1;
    }
    /* The blocked read is abandoned with its connection. */
    dm_redis_close(e->reader);
    e->reader = NULL;
    e->reading = 0;
    e->read_slots = 0;
    eng_maybe_finish_stop(e);
    if (e->finished) {
        return;
    }
    uv_timer_start(&e->grace_timer, on_grace_timer, force ? 0 : (uint64_t)e->cfg->shutdown_grace_ms,
                   0);
    eng_maybe_finish_stop(e);
}

int dm_engine_start(struct dm_engine **out, uv_loop_t *loop, const struct dm_config *cfg,
                    const struct dm_stage_ops *stages, dm_engine_stopped_cb stopped, void *arg)
{
    struct dm_engine *e = calloc(1, sizeof(*e));
    static const char *channels[2];
    struct dm_redis_opts o;
    const char *p = cfg->prefix;

    *out = NULL;
    if (!e) {
        return DM_ERR_NOMEM;
    }
    /* The settings passed the prefix and consumer rules: the keys fit unless those rules and
     * the key schema disagree. */
    if (dm_keys_init(&e->keys, p) ||
        dm_keys_worker(e->k_worker, sizeof(e->k_worker), p, cfg->consumer)) {
        free(e);
        return DM_ERR_INVALID;
    }
    e->loop = loop;
    e->cfg = cfg;
    e->stages = stages;
    e->stopped = stopped;
    e->arg = arg;
    e->io.write = eng_io_write;
    e->io.after = eng_io_after;
    e->io.over = eng_io_over;
    e->io.read_files = eng_io_read_files;
    e->io.deadline = eng_io_deadline;
    e->started_ms = dm_time_now_ms();
    snprintf(e->gmax, sizeof(e->gmax), "%lld", cfg->events_maxlen);
    snprintf(e->ttl, sizeof(e->ttl), "%lld", cfg->job_ttl_s);
    if (cfg->signing_secrets && *cfg->signing_secrets) {
        e->secrets_buf = strdup(cfg->signing_secrets);
        if (e->secrets_buf) {
            e->n_secrets = dm_text_split_list(e->secrets_buf, e->secrets, MAX_SECRETS);
        }
    }
    if (cfg->callback_allow_http && *cfg->callback_allow_http) {
        e->hosts_buf = strdup(cfg->callback_allow_http);
        if (e->hosts_buf) {
            e->n_hosts = dm_text_split_list(e->hosts_buf, e->hosts, MAX_HOSTS);
        }
    }
    if (cfg->callback_hosts && *cfg->callback_hosts) {
        e->ihosts_buf = strdup(cfg->callback_hosts);
        if (e->ihosts_buf) {
            e->n_ihosts = dm_text_split_list(e->ihosts_buf, e->ihosts, MAX_HOSTS);
        }
    }

    e->s_start = (struct dm_redis_script){"start", dm_script_start, ""};
    e->s_transition = (struct dm_redis_script){"transition", dm_script_transition, ""};
    e->s_dead = (struct dm_redis_script){"dead", dm_script_dead, ""};
    e->s_orphan = (struct dm_redis_script){"orphan", dm_script_orphan, ""};
    e->s_heartbeat = (struct dm_redis_script){"heartbeat", dm_script_heartbeat, ""};
    dm_redis_script_init(&e->s_start);
    dm_redis_script_init(&e->s_transition);
    dm_redis_script_init(&e->s_dead);
    dm_redis_script_init(&e->s_orphan);
    dm_redis_script_init(&e->s_heartbeat);

    uv_timer_init(loop, &e->hb_timer);
    uv_timer_init(loop, &e->sweep_timer);
    uv_timer_init(loop, &e->worker_timer);
    uv_timer_init(loop, &e->grace_timer);
    uv_timer_init(loop, &e->retry_timer);
    e->hb_timer.data = e->sweep_timer.data = e->worker_timer.data = e->grace_timer.data = e;
    e->retry_timer.data = e;
    e->handles = 5;

    memset(&o, 0, sizeof(o));
    o.connect_timeout_ms = (long)cfg->redis_timeout_ms;
    o.up = on_conn_up;
    o.down = on_conn_down;
    o.arg = e;
    o.name = "reader";
    dm_redis_open(&e->reader, loop, &cfg->redis, &o);
    o.name = "commands";
    dm_redis_open(&e->cmd, loop, &cfg->redis, &o);
    dm_redis_add_script(e->cmd, &e->s_start);
    dm_redis_add_script(e->cmd, &e->s_transition);
    dm_redis_add_script(e->cmd, &e->s_dead);
    dm_redis_add_script(e->cmd, &e->s_orphan);
    dm_redis_add_script(e->cmd, &e->s_heartbeat);
    o.name = "subscriber";
    channels[0] = e->keys.control;
    channels[1] = NULL;
    o.channels = channels;
    o.message = on_control;
    dm_redis_open(&e->sub, loop, &cfg->redis, &o);
    if (!e->reader || !e->cmd || !e->sub) {
        dm_redis_close(e->reader);
        dm_redis_close(e->cmd);
        dm_redis_close(e->sub);
        e->stopping = 1;
        e->finished = 1;
        uv_close((uv_handle_t *)&e->retry_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->hb_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->sweep_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->worker_timer, on_engine_handle_closed);
        uv_close((uv_handle_t *)&e->grace_timer, on_engine_handle_closed);
        return DM_ERR_NOMEM;
    }
    eng_leases_start(e);
    eng_worker_start(e);
    *out = e;
    return 0;
}
