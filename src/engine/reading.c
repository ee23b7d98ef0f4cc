/*
 * reading: intake from the jobs stream. Owns the consumer group's creation (from "0", retried
 * until it exists, again after Redis lost it), the blocking XREADGROUP on the reader connection
 * (never more entries than free job slots), and the classification of each entry (intake:
 * build, resume, invalid or dead) before it is started or dead-lettered. Loop thread only.
 */
#include "engine_int.h"

#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/intake.h"

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

/* One entry: [id, [field, value, ...]] (fields nil when the entry was deleted). */
void eng_handle_entry(struct dm_engine *e, const redisReply *entry, int claimed)
{
    const redisReply *fields;
    const redisReply *f;
    struct dm_entry_fields ef;
    struct dm_intake in;
    struct dm_intake_policy pol;
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
    memset(&pol, 0, sizeof(pol));
    pol.secrets = e->secrets;
    pol.n_secrets = e->n_secrets;
    pol.issuer = e->cfg->jwt_issuer;
    pol.http_hosts = e->hosts;
    pol.n_http_hosts = e->n_hosts;
    /* A first delivery is checked against the clock; a reclaimed one against the time it was
     * enqueued (its id), so a job taken over from a dead replica is not failed for a token
     * that expired while it was being built. */
    pol.now_s = claimed ? atoll(id) / 1000 : dm_time_now_ms() / 1000;
    if (dm_intake_classify(&in, &ef, &pol)) {
        dm_errorf("engine", NULL, "out of memory classifying entry %s; it stays pending", id);
        return;
    }
    switch (in.kind) {
    case DM_INTAKE_DEAD:
        eng_dead_letter(e, id, ef.job, ef.job_len, in.reason);
        break;
    case DM_INTAKE_RESUME:
        eng_start_job(e, id, "resume", &in);
        break;
    case DM_INTAKE_INVALID:
    case DM_INTAKE_BUILD:
        eng_start_job(e, id, claimed ? "claim" : "new", &in);
        break;
    }
    dm_intake_clear(&in);
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
    /* From "0": entries added before any worker existed are still served. */
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
    free_slots = (int)e->cfg->max_jobs - e->inflight;
    if (free_slots <= 0) {
        return; /* resumed when a job ends */
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
        }
    }
}
