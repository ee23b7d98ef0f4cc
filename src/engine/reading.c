/*
 * reading: intake from the jobs stream. Owns the consumer group's creation (from "0", retried
 * until it exists, again after Redis lost it), the blocking XREADGROUP on the reader connection
 * (COUNT: the free job slots, held until its reply so the sweep cannot fill them too), and the
 * classification of each entry (intake: build, resume, invalid or dead) before it is started or
 * dead-lettered; for a reclaimed entry in signed mode, first the read of when its job started (the
 * token's time). Loop thread only.
 */
#include "engine_int.h"

#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/auth.h"
#include "dream/domain/intake.h"
#include "dream/domain/jobreq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_retry_timer(uv_timer_t *t);

static const redisReply *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING) {
            return fields->element[i + 1];
        }
    }
    return NULL;
}

void eng_intake_policy(const struct dm_engine *e, struct dm_intake_policy *pol, int64_t now_s)
{
    memset(pol, 0, sizeof(*pol));
    pol->secrets = e->secrets;
    pol->n_secrets = e->n_secrets;
    pol->issuer = e->cfg->jwt_issuer;
    pol->audience = e->cfg->signing_audience;
    pol->max_ttl_s = e->cfg->signing_max_ttl_s;
    pol->http_hosts = e->hosts;
    pol->n_http_hosts = e->n_hosts;
    pol->internal_hosts = e->ihosts;
    pol->n_internal_hosts = e->n_ihosts;
    pol->now_s = now_s;
}

/* Classifies an entry at token time now_s and starts or dead-letters it. ej: a job already
 * allocated for the entry (a reclaimed signed one), or NULL. */
static void classify_and_start(struct dm_engine *e, const char *id,
                               const struct dm_entry_fields *ef, int claimed, int64_t now_s,
                               struct ejob *ej)
{
    struct dm_intake in;
    struct dm_intake_policy pol;

    eng_intake_policy(e, &pol, now_s);
    if (dm_intake_classify(&in, ef, &pol)) {
        dm_errorf("engine", NULL, "out of memory classifying entry %s; it stays pending", id);
        if (ej) {
            ej->job.over = 1;
            eng_job_release(ej);
        }
        return;
    }
    if (in.kind == DM_INTAKE_BUILD && e->stages && e->stages->admit) {
        char why[sizeof(in.reason)];
        if (e->stages->admit(e->stages->ctx, in.req, why, sizeof(why)) != 0) {
            dm_intake_refuse(&in, why);
        }
    }
    if (ej && (in.kind == DM_INTAKE_DEAD || in.kind == DM_INTAKE_RESUME ||
               strcmp(in.job_id, ej->job.id) != 0)) {
        /* Only a build for the job it was allocated for starts on it. */
        ej->job.over = 1;
        eng_job_release(ej);
        ej = NULL;
        if (in.kind != DM_INTAKE_DEAD) {
            dm_intake_clear(&in);
            dm_errorf("engine", NULL, "entry %s changed while it was held; it stays pending", id);
            return;
        }
    }
    switch (in.kind) {
    case DM_INTAKE_DEAD:
        /* Signed mode refuses here: nothing is written under the jobId the entry names
         * (eng_dead_letter logs the entry and the reason). */
        eng_dead_letter(e, id, ef->job, ef->job_len, in.reason);
        break;
    case DM_INTAKE_RESUME:
        eng_start_job(e, id, "resume", &in);
        break;
    case DM_INTAKE_INVALID:
    case DM_INTAKE_BUILD:
        if (ej) {
            eng_start_on(ej, "claim", &in);
        } else {
            eng_start_job(e, id, claimed ? "claim" : "new", &in);
        }
        break;
    }
    dm_intake_clear(&in);
}

/* A reclaimed signed build entry, held (with a job slot) while the time its job first started
 * is read from the job hash. */
struct start_time_read {
    struct ejob *ej;
    struct dm_entry_fields ef; /* points into the copies below */
    char *type, *job, *token;
};

static void start_time_read_free(struct start_time_read *r)
{
    free(r->type);
    free(r->job);
    if (r->token) {
        explicit_bzero(r->token, r->ef.token_len);
    }
    free(r->token);
    free(r);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void on_created_reply(void *arg, redisReply *reply, const char *why)
{
    struct start_time_read *r = arg;
    struct ejob *ej = r->ej;
    struct dm_engine *e = ej->eng;
    long long now_ms = dm_time_now_ms();
    long long at_ms = now_ms;

    ej->starting = 0;
    if (!reply || reply->type == REDIS_REPLY_ERROR || e->stopping) {
        dm_warn("engine", ej->job.id, "reclaimed entry %s not started (%s); it stays pending",
                ej->job.entry,
                reply && reply->type == REDIS_REPLY_ERROR ? reply->str : (why ? why : "stopping"));
        ej->job.over = 1;
        eng_job_release(ej);
        start_time_read_free(r);
        return;
    }
    /* [created, entry]: `created` counts only when this very entry started the job (the START
     * script wrote both, and in signed mode only after its token verified); a hash left by an
     * earlier entry of the same jobId says nothing about this one. Never later than now. */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[1]->str, ej->job.entry) == 0) {
        long long created = atoll(reply->element[0]->str);
        if (created > 0 && created < now_ms) {
            at_ms = created;
        }
    }
    classify_and_start(e, ej->job.entry, &r->ef, 1, at_ms / 1000, ej);
    start_time_read_free(r);
}

/* Signed mode, a reclaimed build entry: its token is checked as of the time the job first
 * started under this entry (the job hash's `created`, when its `entry` is this one; else the
 * clock: the job has not started yet), not as of the entry id, which any producer can set into
 * the future (XADD with an explicit id). Returns 1 when the entry is held for that read (or
 * stays pending), 0 when the caller classifies it now. */
static int hold_for_start_time(struct dm_engine *e, const char *id,
                               const struct dm_entry_fields *ef)
{
    char job_id[DM_JOBREQ_ID_MAX + 1];
    struct start_time_read *r;
    struct ejob *ej;

    if (e->n_secrets == 0 || (ef->type && strcmp(ef->type, "build") != 0) || !ef->job ||
        !ef->token || dm_jobreq_peek_id(job_id, sizeof(job_id), ef->job, ef->job_len) != 0) {
        return 0; /* intake decides without a token time */
    }
    r = calloc(1, sizeof(*r));
    ej = r ? eng_job_new(e, id, job_id) : NULL;
    if (!ej) {
        free(r);
        dm_errorf("engine", job_id, "out of memory; entry %s stays pending", id);
        return 1;
    }
    r->ej = ej;
    r->ef = *ef;
    r->ef.type = r->type = ef->type ? strdup(ef->type) : NULL;
    r->ef.job = r->job = dup_n(ef->job, ef->job_len);
    r->ef.token = r->token = dup_n(ef->token, ef->token_len);
    r->ef.id = NULL;
    if ((ef->type && !r->type) || !r->job || !r->token ||
        dm_redis_cmdf(e->cmd, on_created_reply, r, "HMGET %s created entry", ej->k_hash) != 0) {
        dm_warn("engine", job_id, "cannot read when job started; entry %s stays pending", id);
        ej->job.over = 1;
        eng_job_release(ej);
        start_time_read_free(r);
        return 1;
    }
    /* Holds the slot; the heartbeat leaves the entry alone until it runs. */
    ej->starting = 1;
    return 1;
}

/* One entry: [id, [field, value, ...]] (fields nil when the entry was deleted). */
void eng_handle_entry(struct dm_engine *e, const redisReply *entry, int claimed)
{
    const redisReply *fields;
    const redisReply *f;
    struct dm_entry_fields ef;
    const char *id;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING) {
        return;
    }
    id = entry->element[0]->str;
    fields = entry->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) {
        eng_dead_letter(e, id, NULL, 0, "entry was deleted from the stream");
        return;
    }
    memset(&ef, 0, sizeof(ef));
    if ((f = field(fields, "type"))) {
        ef.type = f->str;
    }
    if ((f = field(fields, "job"))) {
        ef.job = f->str;
        ef.job_len = f->len;
    }
    if ((f = field(fields, "token"))) {
        ef.token = f->str;
        ef.token_len = f->len;
    }
    if ((f = field(fields, "id"))) {
        ef.id = f->str;
    }
    if (ef.type && strcmp(ef.type, "retry") == 0) {
        eng_retry_entry(e, id, &ef); /* retry.c */
        return;
    }
    /* A first delivery's token is checked against the clock; a reclaimed one's against the
     * time its job first started, so a job taken over from a dead replica is not failed for a
     * token that expired while it was being built. */
    if (claimed && hold_for_start_time(e, id, &ef)) {
        return;
    }
    classify_and_start(e, id, &ef, claimed, dm_time_now_ms() / 1000, NULL);
}

static void on_retry_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    if (!e->group_ready) {
        eng_ensure_group(e);
    }
    eng_read_more(e);
}

static void on_group_created(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;
    e->cmds--;
    e->group_creating = 0;
    if (reply && (reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "BUSYGROUP", 9) == 0)) {
        if (reply->type != REDIS_REPLY_ERROR) {
            /* Safe from "0" at any time: a finished entry is deleted when it is acknowledged
             * (START, TRANSITION, DEAD), so the stream holds only work not yet done. */
            dm_info("engine", NULL, "created consumer group %s on %s from the stream's start",
                    DM_KEYS_GROUP, e->keys.jobs);
        }
        e->group_ready = 1;
        eng_read_more(e);
    } else {
        dm_warn("engine", NULL, "cannot create consumer group: %s; trying again in 1 s",
                reply ? reply->str : (why ? why : "?"));
        if (reply && !e->finished) {
            uv_timer_start(&e->retry_timer, on_retry_timer, 1000, 0);
        }
    }
    eng_maybe_finish_stop(e);
}

void eng_ensure_group(struct dm_engine *e)
{
    if (e->group_creating || e->stopping) {
        return;
    }
    /* From "0": entries added before any worker existed are still served, and a group lost
     * with Redis's data or destroyed by an operator is re-created without re-running anything:
     * finished entries are deleted from the stream together with their acknowledgement. */
    if (dm_redis_cmdf(e->cmd, on_group_created, e, "XGROUP CREATE %s %s 0 MKSTREAM", e->keys.jobs,
                      DM_KEYS_GROUP) == 0) {
        e->group_creating = 1;
        e->cmds++;
    }
}

static void on_read_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;

    (void)why;
    e->reading = 0;
    /* The slots held for this read go back; the entries below take theirs as jobs. */
    e->read_slots = 0;
    if (!reply) {
        eng_maybe_finish_stop(e);
        return; /* the reader's `up` callback reads again */
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            /* A Redis that lost its data lost the group too. */
            e->group_ready = 0;
            eng_ensure_group(e);
        } else {
            /* READONLY after a failover, MISCONF...: read again after a pause, never stop. */
            dm_errorf("engine", NULL, "XREADGROUP failed: %s; reading again in 1 s", reply->str);
            if (!e->finished) {
                uv_timer_start(&e->retry_timer, on_retry_timer, 1000, 0);
            }
        }
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < reply->elements; s++) {
            const redisReply *stream = reply->element[s];
            if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) {
                continue;
            }
            for (size_t i = 0; i < stream->element[1]->elements; i++) {
                eng_handle_entry(e, stream->element[1]->element[i], 0);
            }
        }
    }
    eng_read_more(e);
}

void eng_read_more(struct dm_engine *e)
{
    char count[16], block[16];
    const char *argv[10];
    int free_slots;

    if (e->reading || e->stopping || !e->group_ready || !dm_redis_is_up(e->reader) ||
        !dm_redis_is_up(e->cmd)) {
        return;
    }
    if (e->sweep_wanted) {
        /* A wanted sweep (it found no free slot) goes first, this read after it. */
        eng_sweep(e);
        if (e->sweeping) {
            return; /* its reply reads again */
        }
    }
    free_slots = eng_free_slots(e);
    if (free_slots <= 0) {
        return; /* resumed when a job ends or the sweep's reply came */
    }
    snprintf(count, sizeof(count), "%d", free_slots);
    snprintf(block, sizeof(block), "%d", BLOCK_MS);
    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = DM_KEYS_GROUP;
    argv[3] = e->cfg->consumer;
    argv[4] = "COUNT";
    argv[5] = count;
    argv[6] = "BLOCK";
    argv[7] = block;
    argv[8] = "STREAMS";
    argv[9] = e->keys.jobs;
    {
        const char *full[11];
        memcpy(full, argv, sizeof(argv));
        full[10] = ">";
        if (dm_redis_cmdv(e->reader, BLOCK_MS, on_read_reply, e, 11, full, NULL) == 0) {
            e->reading = 1;
            e->read_slots = free_slots; /* held until the reply: the sweep cannot take them */
        }
    }
}
