/*
 * leases: keeping this replica's jobs owned and taking over those of dead replicas. Owns the
 * job heartbeat (the HEARTBEAT script resets the idle time of our pending entries and names the
 * ones another replica took: those jobs are fenced and stopped), the reclaim sweep (XAUTOCLAIM
 * of entries idle past the lease, walking the whole pending list with its cursor; COUNT is the
 * free slots, held until its reply, never those the blocking read holds) and each
 * job's stage deadline timer (a stage that does not stop within the grace after its deadline
 * ends its job with that error and gives back the slot; its late result is discarded). Loop
 * thread only.
 */
#include "engine_int.h"

#include "dream/core/error.h"
#include "dream/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_heartbeat_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;

    (void)why;
    e->cmds--;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY &&
        reply->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *lost = reply->element[0], *gone = reply->element[1];
        for (size_t i = 0; i < lost->elements; i++) {
            const char *id = lost->element[i]->str;
            for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
                /* A job ending dead-lettered acknowledged its own entry: not taken over. */
                if (!ej->job.over && !ej->starting && !ej->job.end_status[0] &&
                    strcmp(ej->job.entry, id) == 0) {
                    dm_warn("engine", ej->job.id,
                            "entry %s was taken over by another replica; dropping the job", id);
                    ej->job.fenced = 1;
                    if (ej->job.running && e->stages->cancel) {
                        e->stages->cancel(&ej->job);
                    }
                }
            }
        }
        for (size_t i = 0; i < gone->elements; i++) {
            const char *id = gone->element[i]->str;
            for (struct ejob *ej = e->jobs; ej; ej = ej->next) {
                if (!ej->job.over && !ej->starting && !ej->job.end_status[0] &&
                    strcmp(ej->job.entry, id) == 0) {
                    /* Still ours, but nobody could ever take it over or requeue it from the
                     * stream: end it dead-lettered, with a dead letter that carries the job so
                     * that `dreamctl dead requeue` works. */
                    static const char reason[] = "entry was deleted from the stream while its job "
                                                 "ran (XTRIM?)";
                    dm_warn("engine", ej->job.id, "entry %s %s; ending the job dead-lettered", id,
                            reason + strlen("entry "));
                    eng_dead_letter(e, id, ej->job.job_json,
                                    ej->job.job_json ? strlen(ej->job.job_json) : 0, reason);
                    dm_job_request_end(&ej->job, "dead_lettered", reason);
                }
            }
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        dm_warn("engine", NULL, "heartbeat failed: %s", reply->str);
    }
    eng_maybe_finish_stop(e);
}

static void on_hb_timer(uv_timer_t *t)
{
    struct dm_engine *e = t->data;
    const char **args;
    int n = 0;

    if (!e->jobs || !dm_redis_is_up(e->cmd)) {
        return;
    }
    args = calloc((size_t)e->inflight + 3, sizeof(char *));
    if (!args) {
        return;
    }
    args[n++] = e->keys.jobs;
    args[n++] = DM_KEYS_GROUP;
    args[n++] = e->cfg->consumer;
    for (struct ejob *ej = e->jobs; ej && n < e->inflight + 3; ej = ej->next) {
        if (!ej->job.over && !ej->starting && !ej->job.fenced) {
            args[n++] = ej->job.entry;
        }
    }
    if (n > 3 &&
        dm_redis_eval(e->cmd, &e->s_heartbeat, on_heartbeat_reply, e, 1, n, args, NULL) == 0) {
        e->cmds++;
    }
    free(args);
}

int eng_free_slots(const struct dm_engine *e)
{
    return (int)e->cfg->max_jobs - e->inflight - e->read_slots - e->sweep_slots;
}

static void on_sweep_reply(void *arg, redisReply *reply, const char *why)
{
    struct dm_engine *e = arg;

    (void)why;
    e->cmds--;
    /* The slots held for this sweep go back; the entries below take theirs as jobs. */
    e->sweeping = 0;
    e->sweep_slots = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(e->sweep_cursor, sizeof(e->sweep_cursor), "%s", reply->element[0]->str);
    }
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[1]->type == REDIS_REPLY_ARRAY && !e->stopping) {
        const redisReply *entries = reply->element[1];
        if (entries->elements) {
            dm_info("engine", NULL, "reclaimed %zu entries idle past the lease", entries->elements);
        }
        for (size_t i = 0; i < entries->elements; i++) {
            eng_handle_entry(e, entries->element[i], 1);
        }
        /* Redis 7 lists entries deleted while pending for a dead consumer: their jobs end
         * dead-lettered, requeueable from the job the hash kept. */
        if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < reply->element[2]->elements; i++) {
                if (reply->element[2]->element[i]->type == REDIS_REPLY_STRING) {
                    eng_orphan(e, reply->element[2]->element[i]->str);
                }
            }
        }
    } else if (reply && reply->type == REDIS_REPLY_ERROR &&
               strncmp(reply->str, "NOGROUP", 7) == 0) {
        e->group_ready = 0;
        eng_ensure_group(e);
    }
    /* A read that waited for this sweep goes out now, with what is left. */
    eng_read_more(e);
    eng_maybe_finish_stop(e);
}

void eng_sweep(struct dm_engine *e)
{
    int free_slots = eng_free_slots(e);
    char count[16], idle[24];

    if (e->sweeping || e->stopping || !e->group_ready || !dm_redis_is_up(e->cmd)) {
        return;
    }
    if (free_slots <= 0) {
        /* No slot now (running jobs, or the slots the blocking read holds): the sweep goes
         * before the next read, once the read returned (within BLOCK_MS) or a job ended, so a
         * busy stream never starves the reclaim of dead replicas' jobs. */
        e->sweep_wanted = 1;
        return;
    }
    e->sweep_wanted = 0;
    snprintf(count, sizeof(count), "%d", free_slots);
    snprintf(idle, sizeof(idle), "%lld", e->cfg->lease_ms);
    if (dm_redis_cmdf(e->cmd, on_sweep_reply, e, "XAUTOCLAIM %s %s %s %s %s COUNT %s", e->keys.jobs,
                      DM_KEYS_GROUP, e->cfg->consumer, idle,
                      e->sweep_cursor[0] ? e->sweep_cursor : "0-0", count) == 0) {
        e->cmds++;
        e->sweeping = 1;
        e->sweep_slots = free_slots;
    }
}

static void on_sweep_timer(uv_timer_t *t)
{
    eng_sweep(t->data);
}

/* The stage was told to stop at its deadline and has not reported back within the grace: its
 * work is blocked in a call that cannot be interrupted (libgit2 on a silent server). The job
 * ends now with that error and gives back its slot; the stage's work is detached (the stages'
 * release op: what comes back later only counts itself down and is discarded). Only when
 * nothing of the job's own is in flight on the loop (a write, a file read, a start, a timer
 * turn): those would come back to a job whose stage state is gone. Returns 1 when done. */
static int end_stuck_stage(struct ejob *ej)
{
    struct dm_job *job = &ej->job;
    struct dm_engine *e = ej->eng;
    struct dm_error err;

    if (!job->running || !job->timed_out || job->over || job->fenced || job->stopping ||
        !e->stages->release || ej->writing || ej->wq_head || ej->reads || ej->starting ||
        ej->after_fn || ej->closing) {
        return 0;
    }
    dm_error_set(&err, DM_ERR_TIMEOUT,
                 "stage %s passed its deadline of %ld ms and did not stop; its work was abandoned",
                 dm_stage_name(job->stage), job->stage_timeout_ms);
    dm_errorf("engine", job->id, "%s: ending the job and freeing its slot", err.msg);
    e->stages->release(job);
    /* Not transient: a retry here would block on the same call again. A job asked to end
     * meanwhile (cancel, its entry trimmed) ends as asked. */
    dm_job_stage_done(job, job->cancel_requested ? DM_ERR_CANCELLED : DM_ERR_TIMEOUT, &err);
    return 1;
}

static void on_deadline_timer(uv_timer_t *t)
{
    struct ejob *ej = t->data;
    void (*fn)(struct dm_job *) = ej->deadline_fn;
    ej->deadline_fn = NULL;
    if (end_stuck_stage(ej)) {
        return;
    }
    if (fn) {
        fn(&ej->job);
    }
}

int eng_io_deadline(struct dm_job *job, long ms, void (*fn)(struct dm_job *job))
{
    struct ejob *ej = (struct ejob *)job;
    if (ej->closing) {
        return DM_ERR_UNAVAILABLE;
    }
    if (ms <= 0) {
        ej->deadline_fn = NULL;
        uv_timer_stop(&ej->deadline_timer);
        return 0;
    }
    ej->deadline_fn = fn;
    return uv_timer_start(&ej->deadline_timer, on_deadline_timer, (uint64_t)ms, 0) ? DM_ERR_IO : 0;
}

void eng_leases_start(struct dm_engine *e)
{
    long lease = (long)e->cfg->lease_ms;

    /* Three beats per lease: one lost beat never costs a job. */
    uv_timer_start(&e->hb_timer, on_hb_timer, (uint64_t)(lease / 3), (uint64_t)(lease / 3));
    uv_timer_start(&e->sweep_timer, on_sweep_timer, (uint64_t)(lease / 2), (uint64_t)(lease / 2));
}
