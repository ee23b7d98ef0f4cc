/*
 * ctl_ops: dreamctl's operator commands: `approve`, `reject` and `cancel` (the approver Lua
 * scripts of src/domain/scripts.c), `dead` (list, requeue with the token a signed job needs, purge
 * dead letters) and `workers` (the replicas' heartbeat hashes). Main thread only.
 */
#include "ctl_int.h"

#include "dream/core/log.h"
#include "dream/domain/auth.h"
#include "dream/domain/jobreq.h"
#include "dream/domain/scripts.h"

#include <stdlib.h>
#include <string.h>

/* The job id of the command, checked. */
static int job_arg(struct ctl *ctl, const char **id)
{
    *id = ctl->pos[0];
    if (!dm_jobreq_id_valid(*id)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "not a job id: '%s'", *id);
    }
    if (ctl_opt(ctl, "by")) {
        snprintf(ctl->who, sizeof(ctl->who), "%s", ctl_opt(ctl, "by"));
    }
    if (!ctl->who[0]) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--by: must not be empty");
    }
    return ctl_connect(ctl);
}

/* Turns a script's refusal ("NOTPARKED job is running") into a clear message. */
static int script_refused(struct ctl *ctl, const char *verb, const char *done, const char *id,
                          const char *err)
{
    const char *sp = strchr(err, ' ');
    const char *what = sp ? sp + 1 : err;

    if (strncmp(err, "NOTPARKED", 9) == 0) {
        if (strcmp(what, "job is unknown") == 0) {
            return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot %s %s: no such job", verb, id);
        }
        return ctl_fail(
            ctl, DM_CTL_EXIT_FAILED,
            "cannot %s %s: it is not parked (%s); only a job in paused_approval can be %s", verb,
            id, what, done);
    }
    if (strncmp(err, "NOTFOUND", 8) == 0) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED,
                        "cannot %s %s: no such job (never started, or expired)", verb, id);
    }
    if (strncmp(err, "FINISHED", 8) == 0) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot %s %s: it already ended (%s)", verb, id,
                        what);
    }
    return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot %s %s: %s", verb, id, err);
}

/* One call of an approver script (scripts.c APPROVE, REJECT, CANCEL): they share KEYS 1 job
 * hash, 2 job events, 3 global events and ARGV 1 jobId, 2 who, 3 ts, 4 now ms, 5 events
 * channel, 6 global maxlen, 7 job events maxlen; keys 4-5 and args 8-9 are the script's own. */
struct approver_call {
    char k_hash[DM_KEYS_MAX], k_events[DM_KEYS_MAX], k_files[DM_KEYS_MAX];
    char ts[32], now[24];
    const char *keys[5];
    const char *args[9];
};

static void approver_call_init(struct approver_call *a, const struct ctl *ctl, const char *id)
{
    ctl_job_key(a->k_hash, ctl, id, DM_JOB_KEY_HASH);
    ctl_job_key(a->k_events, ctl, id, DM_JOB_KEY_EVENTS);
    ctl_job_key(a->k_files, ctl, id, DM_JOB_KEY_FILES);
    dm_time_rfc3339(-1, a->ts, sizeof(a->ts));
    snprintf(a->now, sizeof(a->now), "%lld", dm_time_now_ms());
    a->keys[0] = a->k_hash;
    a->keys[1] = a->k_events;
    a->keys[2] = ctl->keys.events;
    a->args[0] = id;
    a->args[1] = ctl->who;
    a->args[2] = a->ts;
    a->args[3] = a->now;
    a->args[4] = ctl->keys.events;
    a->args[5] = ctl->gmax;
    a->args[6] = DM_KEYS_JOB_EVENTS_MAXLEN;
}

int ctl_run_approve(struct ctl *ctl)
{
    struct approver_call a;
    const char *id;
    redisReply *r;
    int rc;

    if ((rc = job_arg(ctl, &id))) {
        return rc;
    }
    approver_call_init(&a, ctl, id);
    a.keys[3] = ctl->keys.jobs;
    a.keys[4] = ctl->keys.parked;
    r = ctl_eval(ctl, dm_script_approve, 5, a.keys, 7, a.args);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = script_refused(ctl, "approve", "approved", id, r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "jobId", id);
            cJSON_AddStringToObject(o, "action", "approved");
            cJSON_AddStringToObject(o, "by", ctl->who);
            cJSON_AddNumberToObject(o, "seq", (double)r->element[0]->integer);
            cJSON_AddStringToObject(o, "resumeEntry", r->element[1]->str);
            ctl_print_json(o);
        } else {
            printf("approved job %s; resume entry %s queued on %s\n", id, r->element[1]->str,
                   ctl->keys.jobs);
        }
    } else {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "approve %s: unexpected reply", id);
    }
    freeReplyObject(r);
    return rc;
}

int ctl_run_reject(struct ctl *ctl)
{
    struct approver_call a;
    const char *reason = ctl_opt(ctl, "reason");
    const char *id;
    redisReply *r;
    int rc;

    if ((rc = job_arg(ctl, &id))) {
        return rc;
    }
    approver_call_init(&a, ctl, id);
    a.keys[3] = ctl->keys.parked;
    a.keys[4] = a.k_files;
    a.args[7] = reason ? reason : "";
    a.args[8] = ctl->ttl;
    r = ctl_eval(ctl, dm_script_reject, 5, a.keys, 9, a.args);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = script_refused(ctl, "reject", "rejected", id, r->str);
    } else if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "jobId", id);
        cJSON_AddStringToObject(o, "action", "rejected");
        cJSON_AddStringToObject(o, "by", ctl->who);
        if (reason) {
            cJSON_AddStringToObject(o, "reason", reason);
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
            cJSON_AddNumberToObject(o, "seq", (double)r->element[0]->integer);
        }
        ctl_print_json(o);
    } else {
        printf("rejected job %s%s%s\n", id, reason ? ": " : "", reason ? reason : "");
    }
    freeReplyObject(r);
    return rc;
}

int ctl_run_cancel(struct ctl *ctl)
{
    struct approver_call a;
    const char *id;
    redisReply *r;
    int rc;

    if ((rc = job_arg(ctl, &id))) {
        return rc;
    }
    approver_call_init(&a, ctl, id);
    a.keys[3] = ctl->keys.parked;
    a.keys[4] = a.k_files;
    a.args[7] = ctl->ttl;
    a.args[8] = ctl->keys.control;
    r = ctl_eval(ctl, dm_script_cancel, 5, a.keys, 9, a.args);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = script_refused(ctl, "cancel", "cancelled", id, r->str);
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        int now_done = strcmp(r->str, "cancelled") == 0;
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "jobId", id);
            cJSON_AddStringToObject(o, "action", "cancel");
            cJSON_AddStringToObject(o, "result", now_done ? "cancelled" : "requested");
            cJSON_AddStringToObject(o, "by", ctl->who);
            ctl_print_json(o);
        } else if (now_done) {
            printf("cancelled job %s\n", id);
        } else {
            printf("cancel requested for job %s; its worker stops it at the next stage boundary\n",
                   id);
        }
    } else {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cancel %s: unexpected reply", id);
    }
    freeReplyObject(r);
    return rc;
}

static int dead_list(struct ctl *ctl)
{
    long long limit = 100;
    redisReply *r;
    cJSON *a = NULL;

    if (ctl_opt(ctl, "limit") && ctl_parse_ll(ctl_opt(ctl, "limit"), 1, 1000000, &limit)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--limit: must be an integer in 1..1000000, got '%s'",
                        ctl_opt(ctl, "limit"));
    }
    r = ctl_cmd(ctl, "XRANGE %s - + COUNT %lld", ctl->keys.dead, limit);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        int rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "XRANGE %s: %s", ctl->keys.dead,
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    if (ctl->json) {
        a = cJSON_CreateArray();
    } else if (r->elements == 0) {
        printf("no dead letters in %s\n", ctl->keys.dead);
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const char *job, *entry, *reason, *attempts, *ts;
        char jid[DM_JOBREQ_ID_MAX + 1] = "";
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) {
            continue;
        }
        job = ctl_field_of(e->element[1], "job");
        entry = ctl_field_of(e->element[1], "entry");
        reason = ctl_field_of(e->element[1], "reason");
        attempts = ctl_field_of(e->element[1], "attempts");
        ts = ctl_field_of(e->element[1], "ts");
        if (job && dm_jobreq_peek_id(jid, sizeof(jid), job, strlen(job))) {
            jid[0] = '\0';
        }
        if (a) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", e->element[0]->str);
            cJSON_AddStringToObject(o, "entry", entry ? entry : "");
            if (jid[0]) {
                cJSON_AddStringToObject(o, "jobId", jid);
            } else {
                cJSON_AddNullToObject(o, "jobId");
            }
            cJSON_AddStringToObject(o, "reason", reason ? reason : "");
            cJSON_AddNumberToObject(o, "attempts", attempts ? atof(attempts) : 0);
            cJSON_AddStringToObject(o, "ts", ts ? ts : "");
            cJSON_AddBoolToObject(o, "requeueable", job && *job);
            cJSON_AddItemToArray(a, o);
        } else {
            printf("%s  %s  job %s  entry %s  attempts %s  ", e->element[0]->str, ts ? ts : "-",
                   jid[0] ? jid : "(none)", entry ? entry : "-", attempts ? attempts : "?");
            ctl_put_text(stdout, reason ? reason : "");
            printf("\n");
        }
    }
    if (a) {
        ctl_print_json(a);
    }
    freeReplyObject(r);
    return 0;
}

/* The token a requeue gives the job: --token, or one signed here (--sign-secret-file or
 * DREAM_SIGN_SECRET) for the dead letter's job; *out NULL when neither (the REQUEUE script then
 * uses the token the dead letter kept). A signed job's dead letter without any token is refused
 * with the reason: the worker would only dead-letter it again. Returns 0 or an exit code. */
static int requeue_token(struct ctl *ctl, const char *dead_id, char **out)
{
    const char *given = ctl_opt(ctl, "token");
    const char *job, *kept, *flag, *reason, *entry;
    const redisReply *f;
    struct dm_jobreq_opts jo = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *req = NULL;
    struct dm_error err;
    redisReply *d;
    char *secret = NULL;
    int rc = 0;

    *out = NULL;
    if (given && ctl_opt(ctl, "sign-secret-file")) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "give --token or --sign-secret-file, not both");
    }
    if (given) {
        if (!*given) {
            return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--token: must not be empty");
        }
        *out = strdup(given);
        return *out ? 0 : ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
    }
    if ((rc = ctl_sign_secret(ctl, &secret))) {
        return rc;
    }
    d = ctl_cmd(ctl, "XRANGE %s %s %s", ctl->keys.dead, dead_id, dead_id);
    if (!d) {
        ctl_secret_free(secret);
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (d->type != REDIS_REPLY_ARRAY || d->elements != 1 || d->element[0]->elements < 2) {
        /* The REQUEUE script reports what is missing. */
        goto done;
    }
    f = d->element[0]->element[1];
    job = ctl_field_of(f, "job");
    kept = ctl_field_of(f, "token");
    flag = ctl_field_of(f, "signed");
    reason = ctl_field_of(f, "reason");
    entry = ctl_field_of(f, "entry");
    if (!job || !*job) {
        goto done;
    }
    if (secret) {
        const char *trust = ctl_opt(ctl, "trust");
        enum dm_trust t;
        jo.trust_optional = 1;
        if (dm_jobreq_parse(&req, job, strlen(job), &jo, &err)) {
            rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot sign dead letter %s: its job: %s",
                          dead_id, err.msg);
            goto done;
        }
        if (!trust && req->trust_set) {
            trust = dm_trust_name(req->trust);
        }
        if (!trust) {
            rc = ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                          "the job names no trustLevel: give --trust LEVEL for its token");
            goto done;
        }
        if (dm_trust_parse(&t, trust)) {
            rc =
                ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                         "--trust: must be observer, planner, builder or shipper, got '%s'", trust);
            goto done;
        }
        rc = ctl_sign_job(ctl, req, secret, req->user_id, dm_trust_name(t), out);
        goto done;
    }
    if (kept && *kept) {
        goto done;
    }
    if ((flag && strcmp(flag, "1") == 0) || (reason && strncmp(reason, "token:", 6) == 0)) {
        /* Dead letters written before tokens were kept: the script falls back to the original
         * entry's token while the jobs stream still holds it. */
        if (entry && ctl_is_entry_id(entry)) {
            redisReply *o = ctl_cmd(ctl, "XRANGE %s %s %s", ctl->keys.jobs, entry, entry);
            int has = o && o->type == REDIS_REPLY_ARRAY && o->elements == 1 &&
                      ctl_field_of(o->element[0]->element[1], "token");
            freeReplyObject(o);
            if (has) {
                goto done;
            }
        }
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED,
                      "dead letter %s is a signed job's and keeps no token (%s): the worker would "
                      "dead-letter it again. Requeue it with a fresh token: --token JWT, or "
                      "--sign-secret-file PATH (or DREAM_SIGN_SECRET) to sign one here",
                      dead_id, reason ? reason : "signed mode");
    }
done:
    dm_jobreq_free(req);
    freeReplyObject(d);
    ctl_secret_free(secret);
    if (rc) {
        ctl_secret_free(*out);
        *out = NULL;
    }
    return rc;
}

static int dead_requeue(struct ctl *ctl, const char *dead_id)
{
    char ts[32], now[24];
    char *token = NULL;
    redisReply *r;
    int rc = 0;

    if ((rc = requeue_token(ctl, dead_id, &token))) {
        return rc;
    }
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    {
        const char *keys[] = {ctl->keys.dead, ctl->keys.jobs};
        const char *args[] = {
            dead_id,           ctl->prefix, now, ts, ctl->who, ctl->gmax, DM_KEYS_JOB_EVENTS_MAXLEN,
            token ? token : ""};
        r = ctl_eval(ctl, dm_script_requeue, 2, keys, 8, args);
    }
    ctl_secret_free(token);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        const char *sp = strchr(r->str, ' ');
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot requeue dead letter %s: %s", dead_id,
                      sp ? sp + 1 : r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        const char *entry = r->element[0]->str, *jid = r->element[1]->str;
        if (ctl->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", dead_id);
            cJSON_AddStringToObject(o, "entry", entry);
            if (jid && *jid) {
                cJSON_AddStringToObject(o, "jobId", jid);
            } else {
                cJSON_AddNullToObject(o, "jobId");
            }
            ctl_print_json(o);
        } else {
            printf("requeued dead letter %s as entry %s%s%s\n", dead_id, entry,
                   jid && *jid ? " of job " : "", jid && *jid ? jid : "");
        }
    } else {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "requeue %s: unexpected reply", dead_id);
    }
    freeReplyObject(r);
    return rc;
}

static int dead_purge(struct ctl *ctl, const char *dead_id)
{
    redisReply *r;
    long long n = 0;
    int rc = 0;

    if (dead_id) {
        r = ctl_cmd(ctl, "XDEL %s %s", ctl->keys.dead, dead_id);
    } else {
        /* XLEN then DEL in one transaction, so the count is what was deleted. */
        freeReplyObject(ctl_cmd(ctl, "MULTI"));
        if (!ctl->broken) {
            freeReplyObject(ctl_cmd(ctl, "XLEN %s", ctl->keys.dead));
        }
        if (!ctl->broken) {
            freeReplyObject(ctl_cmd(ctl, "DEL %s", ctl->keys.dead));
        }
        r = ctl->broken ? NULL : ctl_cmd(ctl, "EXEC");
    }
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_INTEGER) {
        n = r->element[0]->integer;
    } else {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "purge failed: %s",
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    if (dead_id && n == 0) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "no such dead letter: %s", dead_id);
    }
    if (ctl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "purged", (double)n);
        ctl_print_json(o);
    } else {
        printf("purged %lld dead letter%s\n", n, n == 1 ? "" : "s");
    }
    return 0;
}

int ctl_run_dead(struct ctl *ctl)
{
    const char *action = ctl->npos ? ctl->pos[0] : "list";
    const char *arg = ctl->npos > 1 ? ctl->pos[1] : NULL;
    int rc;

    if (strcmp(action, "list") != 0 && strcmp(action, "requeue") != 0 &&
        strcmp(action, "purge") != 0) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "dead: unknown action '%s' (list, requeue, purge)",
                        action);
    }
    if (strcmp(action, "requeue") == 0 && !arg) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "dead requeue: which dead letter? (see dead list)");
    }
    if (strcmp(action, "list") == 0 && arg) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "dead list takes no argument");
    }
    if (arg && !ctl_is_entry_id(arg)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "not a dead letter id: '%s' (like 1700000000000-0)",
                        arg);
    }
    if (ctl_opt(ctl, "by")) {
        snprintf(ctl->who, sizeof(ctl->who), "%s", ctl_opt(ctl, "by"));
    }
    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    if (strcmp(action, "list") == 0) {
        return dead_list(ctl);
    }
    if (strcmp(action, "requeue") == 0) {
        return dead_requeue(ctl, arg);
    }
    return dead_purge(ctl, arg);
}

static void print_worker(const char *name, const redisReply *h, int first)
{
    const char *jobs = ctl_field_of(h, "jobs"), *max = ctl_field_of(h, "max_jobs");
    const char *stopping = ctl_field_of(h, "stopping");
    char jm[40];

    if (first) {
        printf("%-24s %-9s %-9s %-8s %-24s %s\n", "WORKER", "JOBS", "STATE", "VERSION", "STARTED",
               "HEARTBEAT");
    }
    snprintf(jm, sizeof(jm), "%s/%s", jobs ? jobs : "?", max ? max : "?");
    printf("%-24s %-9s %-9s %-8s %-24s %s\n", name, jm,
           stopping && strcmp(stopping, "1") == 0 ? "stopping" : "running",
           ctl_field_of(h, "version") ? ctl_field_of(h, "version") : "?",
           ctl_field_of(h, "started") ? ctl_field_of(h, "started") : "?",
           ctl_field_of(h, "ts") ? ctl_field_of(h, "ts") : "?");
}

int ctl_run_workers(struct ctl *ctl)
{
    char cursor[64] = "0", pattern[DM_KEYS_MAX];
    redisReply *r = NULL, *h = NULL, *t = NULL;
    cJSON *a = NULL;
    size_t n = 0;
    int rc;

    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    dm_keys_pattern(pattern, sizeof(pattern), ctl->prefix, DM_KEY_FAMILY_WORKER);
    if (ctl->json) {
        a = cJSON_CreateArray();
    }
    do {
        r = ctl_cmd(ctl, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r) {
            rc = DM_CTL_EXIT_UNREACHABLE;
            goto out;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "SCAN failed");
            goto out;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            const char *name = dm_keys_name_of(key, ctl->prefix, DM_KEY_FAMILY_WORKER);
            if (!name) {
                continue;
            }
            h = ctl_cmd(ctl, "HGETALL %s", key);
            t = h ? ctl_cmd(ctl, "PTTL %s", key) : NULL;
            if (!h || !t) {
                rc = DM_CTL_EXIT_UNREACHABLE;
                goto out;
            }
            /* Skip one that expired meanwhile (or is not a hash). */
            if (h->type == REDIS_REPLY_ARRAY && h->elements > 0) {
                n++;
                if (a) {
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddStringToObject(o, "name", name);
                    for (size_t j = 0; j + 1 < h->elements; j += 2) {
                        cJSON_AddStringToObject(o, h->element[j]->str, h->element[j + 1]->str);
                    }
                    cJSON_AddNumberToObject(
                        o, "ttlMs", t->type == REDIS_REPLY_INTEGER ? (double)t->integer : -2);
                    cJSON_AddItemToArray(a, o);
                } else {
                    print_worker(name, h, n == 1);
                }
            }
            freeReplyObject(h);
            freeReplyObject(t);
            h = t = NULL;
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    if (a) {
        ctl_print_json(a);
        a = NULL;
    } else if (n == 0) {
        printf("no live workers\n");
    }
out:
    freeReplyObject(h);
    freeReplyObject(t);
    freeReplyObject(r);
    cJSON_Delete(a);
    return rc;
}
