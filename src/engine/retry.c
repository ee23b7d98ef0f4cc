/*
 * retry: `type=retry id=<jobId> [token <jwt>]` entries, queued by the RETRY script (dreamctl
 * retry, the dashboard). The entry names the job; the job itself is the one stored in its hash.
 * Holding a job slot, the engine reads the hash (job, retry_entry, retry_at), classifies the
 * stored job as a build entry with the retry's token (intake: in signed mode the token must be
 * valid and bound to that job; its time is when the retry was requested, so a retry reclaimed
 * from a dead replica is not failed by a token that expired meanwhile), then runs the START
 * script in mode retry: it starts only a job in retry_requested whose retry_entry is this entry,
 * at its recorded stage, with its checkpointed files. A retry whose token is refused fails the
 * job ("retry refused: <reason>") through the same START script (only when the entry is the
 * job's retry_entry); an entry whose stored job names another jobId is dead-lettered. Loop
 * thread only.
 */
#include "engine_int.h"

#include "dream/core/log.h"
#include "dream/domain/intake.h"
#include "dream/domain/jobreq.h"

#include <stdlib.h>
#include <string.h>

struct retry_read {
    struct ejob *ej;
    char *token; /* the entry's, or NULL */
    size_t token_len;
};

static void retry_read_free(struct retry_read *r)
{
    if (r->token) {
        explicit_bzero(r->token, r->token_len);
    }
    free(r->token);
    free(r);
}

static const char *elem(const redisReply *r, size_t i)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_STRING) {
        return NULL;
    }
    return r->element[i]->str;
}

static void give_up(struct ejob *ej, struct retry_read *r)
{
    ej->job.over = 1;
    eng_job_release(ej);
    retry_read_free(r);
}

/* [job, retry_entry, retry_at] of the job hash. */
static void on_job_read(void *arg, redisReply *reply, const char *why)
{
    struct retry_read *r = arg;
    struct ejob *ej = r->ej;
    struct dm_engine *e = ej->eng;
    struct dm_entry_fields ef;
    struct dm_intake_policy pol;
    struct dm_intake in;
    const char *job, *rentry, *rat;
    long long now_ms = dm_time_now_ms(), at_ms = now_ms;
    char entry[64];

    ej->starting = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 || e->stopping) {
        dm_warn("engine", ej->job.id, "retry entry %s not started (%s); it stays pending",
                ej->job.entry,
                reply && reply->type == REDIS_REPLY_ERROR ? reply->str : (why ? why : "stopping"));
        give_up(ej, r);
        return;
    }
    job = elem(reply, 0);
    rentry = elem(reply, 1);
    rat = elem(reply, 2);
    snprintf(entry, sizeof(entry), "%s", ej->job.entry);
    if (!job || !*job) {
        give_up(ej, r);
        eng_dead_letter(e, entry, NULL, 0, "retry of a job that has no stored job (expired?)");
        return;
    }
    if (rentry && rat && strcmp(rentry, entry) == 0) {
        long long t = atoll(rat);
        if (t > 0 && t < now_ms) {
            at_ms = t;
        }
    }
    memset(&ef, 0, sizeof(ef));
    ef.type = "build";
    ef.job = job;
    ef.job_len = strlen(job);
    ef.token = r->token;
    ef.token_len = r->token_len;
    eng_intake_policy(e, &pol, at_ms / 1000);
    if (dm_intake_classify(&in, &ef, &pol)) {
        dm_errorf("engine", ej->job.id,
                  "out of memory classifying retry entry %s; it stays pending", entry);
        give_up(ej, r);
        return;
    }
    if (in.kind != DM_INTAKE_DEAD && strcmp(in.job_id, ej->job.id) != 0) {
        dm_intake_clear(&in);
        give_up(ej, r);
        eng_dead_letter(e, entry, NULL, 0, "retry refused: stored job names another jobId");
        return;
    }
    if (in.kind == DM_INTAKE_DEAD) {
        /* The stored job was authentic when it ran; only this retry's token is refused. The
         * START script fails the job with the reason only when this entry is the one the RETRY
         * script queued (retry_entry), so the job ends (events, TTLs back) instead of staying
         * retry_requested, without expiry, for good. */
        char reason[sizeof(in.reason)];
        snprintf(reason, sizeof(reason), "retry refused: %.480s", in.reason);
        snprintf(in.reason, sizeof(in.reason), "%s", reason);
        snprintf(in.job_id, sizeof(in.job_id), "%s", ej->job.id);
        in.kind = DM_INTAKE_INVALID;
    }
    retry_read_free(r);
    eng_start_on(ej, "retry", &in);
    dm_intake_clear(&in);
}

void eng_retry_entry(struct dm_engine *e, const char *id, const struct dm_entry_fields *ef)
{
    struct retry_read *r;
    struct ejob *ej;

    if (!ef->id || !dm_jobreq_id_valid(ef->id)) {
        eng_dead_letter(e, id, NULL, 0, "retry entry without a usable id");
        return;
    }
    r = calloc(1, sizeof(*r));
    ej = r ? eng_job_new(e, id, ef->id) : NULL;
    if (!ej) {
        free(r);
        dm_errorf("engine", ef->id, "out of memory; retry entry %s stays pending", id);
        return;
    }
    r->ej = ej;
    if (ef->token) {
        r->token = malloc(ef->token_len + 1);
        if (!r->token) {
            dm_errorf("engine", ef->id, "out of memory; retry entry %s stays pending", id);
            give_up(ej, r);
            return;
        }
        memcpy(r->token, ef->token, ef->token_len);
        r->token[ef->token_len] = '\0';
        r->token_len = ef->token_len;
    }
    if (dm_redis_cmdf(e->cmd, on_job_read, r, "HMGET %s job retry_entry retry_at", ej->k_hash)) {
        dm_warn("engine", ef->id, "Redis unavailable; retry entry %s stays pending", id);
        give_up(ej, r);
        return;
    }
    /* Holds the slot; the heartbeat leaves the entry alone until it runs. */
    ej->starting = 1;
}
