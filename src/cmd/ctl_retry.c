/*
 * ctl_retry: `dreamctl retry`, one job (ID) or many (--status with the filters of `jobs`, after
 * a confirmation or --yes). Each job goes through the RETRY script of src/domain/scripts.c (the
 * same the dashboard runs): it checks the job ended in a retryable status, resets it to
 * retry_requested, emits `retry_requested` and queues `type retry id <jobId> [token <jwt>]`. A
 * job that was signed (the job hash's `signed`) needs a fresh token: --token (one job), or one
 * signed here from DREAM_SIGN_SECRET over the stored job (never a secret on the command line).
 * Main thread only.
 */
#include "ctl_int.h"

#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/auth.h"
#include "dream/domain/job.h"
#include "dream/domain/jobreq.h"
#include "dream/domain/scripts.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_LIFETIME_S 3600

struct retry_opts {
    const char *from_stage; /* "" = the recorded stage */
    int regenerate, force;
    const char *token; /* --token, for one job */
    const char *secret;
};

/* Signs a token for the job stored in the hash (HGET job): iss, sub = userId, jti = jobId,
 * dreamTrustLevel (the stored job's), dreamJobSha256, iat, exp = iat + 1 h, aud. *out is owned
 * (wipe and free). Returns 0 or an exit code (reported). */
static int sign_stored(struct ctl *ctl, const char *id, const char *secret, char **out)
{
    char key[DM_KEYS_MAX], sha[DM_AUTH_SHA256_HEX_LEN + 1];
    struct dm_jobreq_opts jo = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *req = NULL;
    struct dm_error err;
    cJSON *claims = NULL;
    char *claims_json = NULL;
    const char *aud =
        ctl_opt(ctl, "audience") ? ctl_opt(ctl, "audience") : getenv("DREAM_SIGNING_AUDIENCE");
    long long now = dm_time_now_ms() / 1000;
    redisReply *r;
    int rc = 0;

    *out = NULL;
    ctl_job_key(key, ctl, id, DM_JOB_KEY_HASH);
    r = ctl_cmd(ctl, "HGET %s job", key);
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    jo.trust_optional = 1;
    if (r->type != REDIS_REPLY_STRING || dm_jobreq_parse(&req, r->str, r->len, &jo, &err) != 0) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot retry %s: cannot sign its stored job: %s",
                      id, r->type == REDIS_REPLY_STRING ? err.msg : "no stored job");
        freeReplyObject(r);
        return rc;
    }
    freeReplyObject(r);
    if (dm_jobreq_binding_sha256(sha, sizeof(sha), req)) {
        dm_jobreq_free(req);
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "out of memory");
    }
    claims = cJSON_CreateObject();
    cJSON_AddStringToObject(
        claims, "iss", ctl_opt(ctl, "issuer") ? ctl_opt(ctl, "issuer") : DM_AUTH_DEFAULT_ISSUER);
    cJSON_AddStringToObject(claims, "sub", req->user_id);
    cJSON_AddStringToObject(claims, "jti", id);
    cJSON_AddStringToObject(claims, "dreamTrustLevel",
                            dm_trust_name(req->trust_set ? req->trust : DM_TRUST_BUILDER));
    cJSON_AddStringToObject(claims, DM_AUTH_JOB_SHA256_CLAIM, sha);
    if (aud && *aud) {
        cJSON_AddStringToObject(claims, "aud", aud);
    }
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + TOKEN_LIFETIME_S));
    claims_json = cJSON_PrintUnformatted(claims);
    if (!claims_json || dm_auth_sign_hs256(out, claims_json, secret, &err)) {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot sign a token for %s: %s", id,
                      claims_json ? err.msg : "out of memory");
    }
    cJSON_Delete(claims);
    free(claims_json);
    dm_jobreq_free(req);
    return rc;
}

/* The RETRY script's refusal ("TOKEN job was signed: ...") as a message. */
static int refused(struct ctl *ctl, const char *id, const char *err)
{
    const char *sp = strchr(err, ' ');
    const char *what = sp ? sp + 1 : err;

    if (strncmp(err, "NOTFOUND", 8) == 0) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED,
                        "cannot retry %s: no such job (never started, or expired; a dead letter "
                        "without a job hash is run again with `dead requeue`)",
                        id);
    }
    if (strncmp(err, "NOTRETRYABLE", 12) == 0) {
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED,
                        "cannot retry %s: %s; only a job that ended failed, cancelled, "
                        "dead_lettered (or rejected, with --force) can be retried",
                        id, what);
    }
    return ctl_fail(ctl, DM_CTL_EXIT_FAILED, "cannot retry %s: %s", id, what);
}

/* One job through the RETRY script. Returns 0 or an exit code (reported). */
static int retry_one(struct ctl *ctl, const char *id, const struct retry_opts *o)
{
    char k_hash[DM_KEYS_MAX], k_events[DM_KEYS_MAX], k_files[DM_KEYS_MAX];
    char ts[32], now[24];
    const char *keys[5], *args[11];
    char *signed_token = NULL;
    const char *token = o->token;
    redisReply *r;
    int rc = 0;

    ctl_job_key(k_hash, ctl, id, DM_JOB_KEY_HASH);
    ctl_job_key(k_events, ctl, id, DM_JOB_KEY_EVENTS);
    ctl_job_key(k_files, ctl, id, DM_JOB_KEY_FILES);
    if (!token && o->secret) {
        r = ctl_cmd(ctl, "HGET %s signed", k_hash);
        if (!r) {
            return DM_CTL_EXIT_UNREACHABLE;
        }
        if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0) {
            rc = sign_stored(ctl, id, o->secret, &signed_token);
            token = signed_token;
        }
        freeReplyObject(r);
        if (rc) {
            return rc;
        }
    }
    dm_time_rfc3339(-1, ts, sizeof(ts));
    snprintf(now, sizeof(now), "%lld", dm_time_now_ms());
    keys[0] = k_hash;
    keys[1] = k_events;
    keys[2] = ctl->keys.events;
    keys[3] = ctl->keys.jobs;
    keys[4] = k_files;
    args[0] = id;
    args[1] = ctl->who;
    args[2] = ts;
    args[3] = now;
    args[4] = ctl->keys.events;
    args[5] = ctl->gmax;
    args[6] = DM_KEYS_JOB_EVENTS_MAXLEN;
    args[7] = o->force ? "1" : "";
    args[8] = o->from_stage;
    args[9] = o->regenerate ? "1" : "";
    args[10] = token ? token : "";
    r = ctl_eval(ctl, dm_script_retry, 5, keys, 11, args);
    if (signed_token) {
        explicit_bzero(signed_token, strlen(signed_token));
        free(signed_token);
    }
    if (!r) {
        return DM_CTL_EXIT_UNREACHABLE;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = refused(ctl, id, r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
               r->element[1]->type == REDIS_REPLY_STRING &&
               r->element[3]->type == REDIS_REPLY_STRING) {
        if (ctl->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "jobId", id);
            cJSON_AddStringToObject(j, "action", "retry_requested");
            cJSON_AddStringToObject(j, "by", ctl->who);
            cJSON_AddNumberToObject(j, "seq", (double)r->element[0]->integer);
            cJSON_AddNumberToObject(j, "retry", (double)r->element[2]->integer);
            cJSON_AddStringToObject(j, "stage", r->element[3]->str);
            cJSON_AddStringToObject(j, "retryEntry", r->element[1]->str);
            ctl_print_json(j);
        } else {
            printf("retry %lld of job %s requested from stage %s; entry %s queued on %s\n",
                   r->element[2]->integer, id, r->element[3]->str, r->element[1]->str,
                   ctl->keys.jobs);
        }
    } else {
        rc = ctl_fail(ctl, DM_CTL_EXIT_FAILED, "retry %s: unexpected reply", id);
    }
    freeReplyObject(r);
    return rc;
}

/* Asks on stderr, reads the answer from stdin. */
static int confirmed(size_t n)
{
    char line[32];

    fprintf(stderr, "retry %zu job%s? [y/N] ", n, n == 1 ? "" : "s");
    fflush(stderr);
    if (!fgets(line, sizeof(line), stdin)) {
        return 0;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static int retry_bulk(struct ctl *ctl, const struct retry_opts *o)
{
    struct jobq q;
    struct jobrow *rows = NULL;
    size_t nrows = 0, ok = 0, failed = 0;
    int more = 0, rc;

    if ((rc = ctl_jobq_options(ctl, &q))) {
        return rc;
    }
    if (!ctl_opt(ctl, "limit")) {
        q.limit = 0; /* every job that matches */
    }
    if (!q.nstatus) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "retry: give a job ID, or --status (with --since, --repo...) for a bulk "
                        "retry");
    }
    if (o->token) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--token binds one job: a bulk retry signs from DREAM_SIGN_SECRET");
    }
    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    if ((rc = ctl_jobs_query(ctl, &q, &rows, &nrows, &more))) {
        return rc;
    }
    if (nrows == 0) {
        if (ctl->json) {
            ctl_print_json(cJSON_CreateArray());
        } else {
            printf("no jobs to retry\n");
        }
        ctl_jobrows_free(rows, nrows);
        return 0;
    }
    if (!ctl_opt(ctl, "yes") && !confirmed(nrows)) {
        ctl_jobrows_free(rows, nrows);
        return ctl_fail(ctl, DM_CTL_EXIT_FAILED,
                        "not confirmed: nothing retried (--yes skips the "
                        "question)");
    }
    for (size_t i = 0; i < nrows; i++) {
        rc = retry_one(ctl, rows[i].id, o);
        if (rc == DM_CTL_EXIT_UNREACHABLE) {
            ctl_jobrows_free(rows, nrows);
            return rc;
        }
        rc ? failed++ : ok++;
    }
    ctl_jobrows_free(rows, nrows);
    if (!ctl->json) {
        printf("%zu retried, %zu refused\n", ok, failed);
    }
    return failed ? DM_CTL_EXIT_FAILED : 0;
}

int ctl_run_retry(struct ctl *ctl)
{
    struct retry_opts o;
    enum dm_stage st;
    int rc;

    memset(&o, 0, sizeof(o));
    o.from_stage = ctl_opt(ctl, "from-stage") ? ctl_opt(ctl, "from-stage") : "";
    o.regenerate = ctl_opt(ctl, "regenerate") != NULL;
    o.force = ctl_opt(ctl, "force") != NULL;
    o.token = ctl_opt(ctl, "token");
    o.secret = getenv("DREAM_SIGN_SECRET");
    if (o.secret && !*o.secret) {
        o.secret = NULL;
    }
    if (*o.from_stage &&
        (dm_stage_parse(&st, o.from_stage) || st >= DM_STAGE_DONE || !*o.from_stage)) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "--from-stage: one of plan, generate, review, gate, push, pr; got '%s'",
                        o.from_stage);
    }
    if (ctl_opt(ctl, "by")) {
        snprintf(ctl->who, sizeof(ctl->who), "%s", ctl_opt(ctl, "by"));
    }
    if (!ctl->who[0]) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "--by: must not be empty");
    }
    if (ctl->npos == 0) {
        return retry_bulk(ctl, &o);
    }
    if (ctl_opt(ctl, "status") || ctl_opt(ctl, "since") || ctl_opt(ctl, "until") ||
        ctl_opt(ctl, "repo") || ctl_opt(ctl, "user") || ctl_opt(ctl, "min-cost")) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE,
                        "retry: give a job ID or the filters of a bulk retry, not both");
    }
    if (!dm_jobreq_id_valid(ctl->pos[0])) {
        return ctl_fail(ctl, DM_CTL_EXIT_USAGE, "not a job id: '%s'", ctl->pos[0]);
    }
    if ((rc = ctl_connect(ctl))) {
        return rc;
    }
    return retry_one(ctl, ctl->pos[0], &o);
}
