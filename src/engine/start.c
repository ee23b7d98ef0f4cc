/*
 * start: a classified entry becomes a running job, or a dead letter. Owns the START script call
 * (ownership, epoch and attempt bump, the `started`/`retrying`/`resumed` event, dead letter past
 * max attempts, `failed` for an invalid job) and the reading of its reply into the job, then
 * dispatches the job to its stage; and the DEAD script for entries with no usable job. Loop
 * thread only.
 */
#include "engine_int.h"

#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/intake.h"
#include "dream/domain/jobreq.h"
#include "dream/io/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *reply_str(const redisReply *r, size_t i)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) {
        return "";
    }
    r = r->element[i];
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ? r->str : "";
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void on_start_reply(void *arg, redisReply *reply, const char *why)
{
    struct ejob *ej = arg;
    struct dm_job *job = &ej->job;
    const char *verdict;

    ej->starting = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            dm_errorf("engine", job->id, "start of entry %s failed: %s", job->entry, reply->str);
        } else {
            dm_warn("engine", job->id, "start of entry %s interrupted (%s); it stays pending",
                    job->entry, why ? why : "bad reply");
        }
        job->over = 1;
        eng_job_release(ej);
        return;
    }
    verdict = reply_str(reply, 0);
    if (strcmp(verdict, "dead") == 0) {
        dm_metrics_dead_lettered(ej->eng->metrics);
        dm_metrics_job_finished(ej->eng->metrics, DM_METRIC_JOB_DEAD_LETTERED);
    } else if (strcmp(verdict, "failed") == 0) {
        dm_metrics_job_finished(ej->eng->metrics, DM_METRIC_JOB_FAILED);
    }
    if (strcmp(verdict, "run") != 0) {
        dm_info("engine", job->id, "entry %s: %s (%s)", job->entry, verdict, reply_str(reply, 1));
        job->over = 1;
        eng_job_release(ej);
        return;
    }
    job->epoch = atoll(reply_str(reply, 1));
    if (dm_stage_parse(&job->stage, reply_str(reply, 2))) {
        job->stage = DM_STAGE_PLAN;
    }
    job->attempts = atoi(reply_str(reply, 3));
    if (!job->job_json || !*job->job_json) {
        free(job->job_json);
        job->job_json = dup_or_null(reply_str(reply, 4));
    }
    job->plan_json = dup_or_null(reply_str(reply, 5));
    job->approved = strcmp(reply_str(reply, 6), "1") == 0;
    job->branch = dup_or_null(reply_str(reply, 7));
    job->pr_url = dup_or_null(reply_str(reply, 8));
    job->commit = dup_or_null(reply_str(reply, 9));
    job->cancel_requested = strcmp(reply_str(reply, 10), "1") == 0;
    job->created_ms = atoll(reply_str(reply, 11));
    job->tokens = atoll(reply_str(reply, 12));
    job->cost = atof(reply_str(reply, 13));
    if (!job->req && job->job_json) {
        struct dm_error err;
        struct dm_jobreq_opts opts = DM_JOBREQ_OPTS_INIT;
        /* The stored job passed intake: parse it under the same rules. */
        opts.http_hosts = ej->eng->hosts;
        opts.n_http_hosts = ej->eng->n_hosts;
        opts.internal_hosts = ej->eng->ihosts;
        opts.n_internal_hosts = ej->eng->n_ihosts;
        opts.trust_optional = 1;
        if (dm_jobreq_parse(&job->req, job->job_json, strlen(job->job_json), &opts, &err)) {
            char msg[DM_ERROR_MSG_MAX + 40];
            struct dm_event_extra x = {0};
            snprintf(msg, sizeof(msg), "stored job is unreadable: %s", err.msg);
            x.error = msg;
            dm_job_finish(job, "failed", msg, &x);
            return;
        }
    }
    if (!job->req) {
        struct dm_event_extra x = {0};
        x.error = "no job stored for this id";
        dm_job_finish(job, "failed", x.error, &x);
        return;
    }
    job->dry_run = job->req->trust_set && job->req->trust == DM_TRUST_PLANNER;
    snprintf(job->review, sizeof(job->review), "%s", reply_str(reply, 15));
    free(job->verification);
    job->verification = dup_or_null(reply_str(reply, 16));
    if (reply->elements >= 15 && reply->element[14]->type == REDIS_REPLY_STRING) {
        eng_post_callback(ej->eng, job, reply->element[14]->str, reply->element[14]->len);
    }
    dm_info("engine", job->id, "running entry %s at stage %s (attempt %d, epoch %lld)", job->entry,
            dm_stage_name(job->stage), job->attempts, job->epoch);
    dm_job_dispatch(job);
}

static void on_dead_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    e->cmds--;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        dm_warn("engine", NULL, "dead letter not written (%s); the entry stays pending",
                reply ? reply->str : why);
    }
    eng_maybe_finish_stop(e);
}

void eng_dead_letter(struct dm_engine *e, const char *entry, const char *raw, size_t raw_len,
                     const char *reason)
{
    char ts[32];
    const char *args[10];
    size_t lens[10];
    /* A dead letter keeps the entry's job so it can be requeued, up to a cap. */
    size_t cap = raw_len > (1u << 20) ? (1u << 20) : raw_len;

    dm_warn("engine", NULL, "entry %s dead-lettered: %s", entry, reason);
    dm_metrics_dead_lettered(e->metrics);
    dm_time_rfc3339(-1, ts, sizeof(ts));
    args[0] = e->keys.dead;
    args[1] = e->keys.jobs;
    args[2] = entry;
    args[3] = DM_KEYS_GROUP;
    args[4] = raw ? raw : "";
    args[5] = reason;
    args[6] = "1";
    args[7] = ts;
    args[8] = e->gmax; /* the same cap as the START script's dead letters */
    /* A signed-mode dead letter says so: dreamctl refuses to requeue it without a token. */
    args[9] = e->n_secrets ? "1" : "";
    for (int i = 0; i < 10; i++) {
        lens[i] = strlen(args[i]);
    }
    lens[4] = raw ? cap : 0;
    if (dm_redis_eval(e->cmd, &e->s_dead, on_dead_reply, e, 2, 10, args, lens) == 0) {
        e->cmds++;
    }
}

static void on_orphan_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    e->cmds--;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        dm_warn("engine", NULL, "dead letter not written (%s); the entry stays pending",
                reply ? reply->str : why);
    } else if (reply->type == REDIS_REPLY_STRING && reply->len > 0) {
        dm_warn("engine", reply->str,
                "its entry was deleted from the stream while its replica "
                "was gone; the job ended dead-lettered");
    }
    eng_maybe_finish_stop(e);
}

void eng_orphan(struct dm_engine *e, const char *entry)
{
    static const char reason[] = "entry was deleted from the stream while pending (XTRIM?)";
    char ts[32], now[24];
    const char *args[14];

    dm_warn("engine", NULL, "entry %s dead-lettered: %s", entry, reason);
    dm_metrics_dead_lettered(e->metrics);
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    args[0] = e->keys.dead;
    args[1] = e->keys.jobs;
    args[2] = e->keys.events;
    args[3] = entry;
    args[4] = DM_KEYS_GROUP;
    args[5] = reason;
    args[6] = ts;
    args[7] = now;
    args[8] = e->gmax;
    args[9] = e->keys.events; /* the channel */
    args[10] = e->ttl;
    args[11] = DM_KEYS_JOB_EVENTS_MAXLEN;
    args[12] = e->n_secrets ? "1" : "";
    args[13] = e->cfg->consumer;
    if (dm_redis_eval(e->cmd, &e->s_orphan, on_orphan_reply, e, 3, 14, args, NULL) == 0) {
        e->cmds++;
    }
}

void eng_start_job(struct dm_engine *e, const char *entry, const char *mode, struct dm_intake *in)
{
    struct ejob *ej = eng_job_new(e, entry, in->job_id);

    if (!ej) {
        dm_errorf("engine", in->job_id, "out of memory; entry %s stays pending", entry);
        return;
    }
    eng_start_on(ej, mode, in);
}

void eng_start_on(struct ejob *ej, const char *mode, struct dm_intake *in)
{
    struct dm_engine *e = ej->eng;
    const char *entry = ej->job.entry;
    char ts[32], now[24], maxatt[16];
    const char *args[22];
    size_t lens[22];
    const char *invalid = in->kind == DM_INTAKE_INVALID ? in->reason : "";
    const char *json = in->job_json ? in->job_json : "";

    snprintf(ej->mode, sizeof(ej->mode), "%s", mode);
    /* The parsed job moves into the job. */
    ej->job.req = in->req;
    in->req = NULL;
    ej->job.job_json = in->job_json;
    in->job_json = NULL;
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    snprintf(maxatt, sizeof(maxatt), "%lld", e->cfg->max_attempts);
    args[0] = ej->k_hash;
    args[1] = ej->k_events;
    args[2] = e->keys.events;
    args[3] = e->keys.jobs;
    args[4] = e->keys.parked;
    args[5] = e->keys.dead;
    args[6] = ej->k_files;
    args[7] = entry;
    args[8] = e->cfg->consumer;
    args[9] = DM_KEYS_GROUP;
    args[10] = ts;
    args[11] = now;
    args[12] = ej->job.job_json ? ej->job.job_json : json;
    args[13] = invalid;
    args[14] = e->gmax;
    args[15] = e->keys.events;
    args[16] = e->ttl;
    args[17] = maxatt;
    args[18] = mode;
    args[19] = in->job_id;
    args[20] = DM_KEYS_JOB_EVENTS_MAXLEN;
    args[21] = e->n_secrets > 0 && in->kind == DM_INTAKE_BUILD ? "1" : ""; /* token verified */
    for (int i = 0; i < 22; i++) {
        lens[i] = strlen(args[i]);
    }
    if (dm_redis_eval(e->cmd, &e->s_start, on_start_reply, ej, 7, 22, args, lens)) {
        dm_warn("engine", in->job_id, "Redis unavailable; entry %s stays pending", entry);
        ej->job.over = 1;
        eng_job_release(ej);
        return;
    }
    ej->starting = 1;
}
