/*
 * Signed mode end to end (issue 14): a real redis-server and real dreamd replicas (test stages,
 * so a job takes as long as the test needs) with DREAM_SIGNING_SECRETS set.
 *  - An entry without a valid token bound to its job touches neither the job hash nor the job's
 *    events: it is dead-lettered with the reason, so nobody who can XADD but holds no secret can
 *    pre-fail a future job or add `duplicate` events to a finished one.
 *  - A token signed for another body (spec or repository changed) is refused.
 *  - A reclaimed entry's token is checked as of the time its job first started under it (the
 *    hash's `created`), not its stream id (which a producer may set far into the future) nor the
 *    clock (the token may have expired while the job was being built); a replayed entry that
 *    never started the job is checked by the clock, whatever the hash says of an earlier one.
 *  - `dreamctl dead requeue` of a signed job runs it again with its original token.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmproc.h"
#include "dmtest.h"
#include "dream/core/error.h"
#include "dream/domain/auth.h"
#include "dream/domain/jobreq.h"

#define SECRET "k-new"

static struct dmt_redis redis;
static char *dir;
static redisContext *rc;

static void setup(void)
{
    /* Secrets reach dreamd through its environment (inherited), as in production. */
    setenv("DREAM_SIGNING_SECRETS", "k-old," SECRET, 1);
    dmt_bed_start(&redis, &dir, &rc, "signed", 0);
}

static void teardown(void)
{
    dmt_bed_stop(&redis, &dir, &rc);
}

TestSuite(signed, .init = setup, .fini = teardown, .timeout = 180);

/* ---- helpers ---- */

/* A token for the job JSON bound_to (jti and sub from it, dreamJobSha256 of it), signed with
 * secret; iat and exp as given (seconds since the epoch). extra: more claims (may be ""). */
static char *sign_job(const char *bound_to, const char *trust, const char *secret, long long iat,
                      long long exp, const char *extra)
{
    char payload[1024], sha[DM_AUTH_SHA256_HEX_LEN + 1];
    struct dm_jobreq_opts o = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *req = NULL;
    struct dm_error err;
    char *tok = NULL;

    o.ignore_trust = 1;
    cr_assert_eq(dm_jobreq_parse(&req, bound_to, strlen(bound_to), &o, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_jobreq_binding_sha256(sha, sizeof(sha), req), 0);
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"storia\",\"sub\":\"%s\",\"jti\":\"%s\",\"dreamTrustLevel\":\"%s\","
             "\"dreamJobSha256\":\"%s\",\"iat\":%lld,\"exp\":%lld%s}",
             req->user_id, req->job_id, trust, sha, iat, exp, extra);
    dm_jobreq_free(req);
    cr_assert_eq(dm_auth_sign_hs256(&tok, payload, secret, &err), 0, "%s", err.msg);
    return tok;
}

/* A token valid for ten minutes from now. */
static char *sign_now(const char *bound_to, const char *secret)
{
    long long now = (long long)time(NULL);
    return sign_job(bound_to, "builder", secret, now, now + 600, "");
}

/* The job JSON of dmt_job_json with one top-level string field replaced (caller frees). */
static char *job_with(const char *id, const char *field, const char *value)
{
    char *json = dmt_job_json(id, NULL, NULL);
    cJSON *o = cJSON_Parse(json);
    char *s;
    cJSON_ReplaceItemInObjectCaseSensitive(o, field, cJSON_CreateString(value));
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(json);
    return s;
}

/* XADD <stream id> type build job <json> [token <token>]; returns the entry id (caller frees). */
static char *xadd(const char *stream_id, const char *json, const char *token)
{
    redisReply *r = token
                        ? redisCommand(rc, "XADD dream:jobs %s type build job %s token %s",
                                       stream_id, json, token)
                        : redisCommand(rc, "XADD dream:jobs %s type build job %s", stream_id, json);
    char *id;
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD: %s", r ? r->str : "no reply");
    id = strdup(r->str);
    freeReplyObject(r);
    return id;
}

static long long integer(const char *cmd, const char *arg)
{
    redisReply *r = redisCommand(rc, cmd, arg);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* Waits until dream:dead holds want entries; returns how many it holds. */
static long long wait_dead(long long want, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    long long n;
    while ((n = integer("XLEN %s", "dream:dead")) < want && dmt_now_ms() < deadline) {
        dmt_sleep_ms(20);
    }
    return n;
}

/* The reason of the dead letter of stream entry `entry` (caller frees; NULL if none); its id
 * into dead_id (may be NULL). */
static char *dead_letter(const char *entry, char *dead_id, size_t n)
{
    redisReply *r = redisCommand(rc, "XRANGE dream:dead - +");
    char *reason = NULL;

    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !reason; i++) {
        const redisReply *e = r->element[i];
        const redisReply *f = e->element[1];
        const char *ent = NULL, *why = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "entry") == 0) {
                ent = f->element[k + 1]->str;
            } else if (strcmp(f->element[k]->str, "reason") == 0) {
                why = f->element[k + 1]->str;
            }
        }
        if (ent && why && strcmp(ent, entry) == 0) {
            reason = strdup(why);
            if (dead_id) {
                snprintf(dead_id, n, "%s", e->element[0]->str);
            }
        }
    }
    freeReplyObject(r);
    return reason;
}

/* Nothing of job id exists: no hash, no event stream, no event in dream:events. */
static void assert_untouched(const char *id)
{
    char keys[300];
    struct dmt_jobevents *v;
    int n;
    redisReply *r = redisCommand(rc, "EXISTS dream:job:%s dream:job:%s:events", id, id);

    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    snprintf(keys, sizeof(keys), "dream:job:%s", id);
    cr_assert_eq(r->integer, 0, "%s or its events exist", keys);
    freeReplyObject(r);
    n = dmt_collect(rc, &v);
    cr_assert_null(dmt_find(v, n, id), "job %s has events in dream:events", id);
    free(v);
}

static void assert_dead(const char *entry, const char *why)
{
    char *reason = dead_letter(entry, NULL, 0);
    cr_assert_not_null(reason, "entry %s has no dead letter", entry);
    cr_assert_not_null(strstr(reason, why), "dead letter of %s: \"%s\" lacks \"%s\"", entry, reason,
                       why);
    free(reason);
}

static char *hget(const char *id, const char *field)
{
    redisReply *r = redisCommand(rc, "HGET dream:job:%s %s", id, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

/* The statuses of a job's events, comma-separated, and the worker of each into workers (both
 * caller frees). */
static char *statuses(const char *id, char **workers)
{
    redisReply *r = redisCommand(rc, "XRANGE dream:job:%s:events - +", id);
    size_t cap = 4096;
    char *out = calloc(1, cap), *w = calloc(1, cap);

    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        cJSON *ev = cJSON_Parse(r->element[i]->element[1]->element[1]->str);
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        const char *wk = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "worker"));
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", st ? st : "?");
        snprintf(w + strlen(w), cap - strlen(w), "%s%s", i ? "," : "", wk ? wk : "?");
        cJSON_Delete(ev);
    }
    freeReplyObject(r);
    if (workers) {
        *workers = w;
    } else {
        free(w);
    }
    return out;
}

/* Runs build/dreamctl with args against the test's Redis; returns its exit code, its stdout in
 * *out (caller frees). */
static int dreamctl(const char *const *args, char **out)
{
    char bin[512], url[128], log[600];
    const char *argv[16];
    int n = 0, st = 0;
    pid_t pid;
    long long deadline = dmt_now_ms() + 30000;

    snprintf(bin, sizeof(bin), "%s/dreamctl", dmt_binary_dir());
    snprintf(url, sizeof(url), "--redis-url=%s", dmt_redis_url(&redis));
    snprintf(log, sizeof(log), "%s/dreamctl.out", dir);
    unlink(log);
    argv[n++] = bin;
    argv[n++] = url;
    for (int i = 0; args[i] && n < 15; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        (void)f;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (dmt_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            cr_assert_fail("dreamctl did not exit");
        }
        dmt_sleep_ms(10);
    }
    *out = dmt_read_file(log);
    cr_assert(WIFEXITED(st), "dreamctl died");
    return WEXITSTATUS(st);
}

/* ---- tests ---- */

Test(signed, entries_without_a_valid_bound_token_touch_nothing_of_their_job)
{
    struct dmt_replica rep;
    const char *extra[] = {"--stages=test", "--test-stage-ms=20", NULL};
    char *ok = dmt_job_json("ok-1", NULL, NULL);
    char *victim = dmt_job_json("future-job", NULL, NULL);
    char *forged = dmt_job_json("forged-1", NULL, NULL);
    /* Signed for one body, sent with another: spec, then repository changed. */
    char *spec_signed =
        dmt_job_json("respec-1", "# Todo API\n\n## API\n- GET /todos lists\n", NULL);
    char *spec_sent =
        job_with("respec-1", "specMarkdown", "# Todo API\n\n## API\n- DELETE /todos drops all\n");
    char *repo_signed = dmt_job_json("rerepo-1", NULL, NULL);
    char *repo_sent = job_with("rerepo-1", "repoName", "infra");
    char *t_ok = sign_now(ok, "k-old");
    char *t_forged = sign_now(forged, "not-our-secret");
    char *t_spec = sign_now(spec_signed, SECRET);
    char *t_repo = sign_now(repo_signed, SECRET);
    /* An old-style token: valid, names the job, but binds nothing of its content. */
    long long now = (long long)time(NULL);
    char *unbound_job = dmt_job_json("unbound-1", NULL, NULL);
    char *t_unbound = NULL;
    char *e_victim, *e_forged, *e_spec, *e_repo, *e_unbound, *e_ok, *e_replay, *s, *t_victim;
    struct dm_error err;
    char payload[256];

    snprintf(payload, sizeof(payload),
             "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"unbound-1\",\"dreamTrustLevel\":"
             "\"builder\",\"iat\":%lld,\"exp\":%lld}",
             now, now + 600);
    cr_assert_eq(dm_auth_sign_hs256(&t_unbound, payload, SECRET, &err), 0);

    dmt_replica_start(&rep, &redis, dir, "r1", extra);
    dmt_replica_wait_ready(&rep, rc, 10000);
    e_victim = xadd("*", victim, NULL);
    e_forged = xadd("*", forged, t_forged);
    e_spec = xadd("*", spec_sent, t_spec);
    e_repo = xadd("*", repo_sent, t_repo);
    e_unbound = xadd("*", unbound_job, t_unbound);
    e_ok = xadd("*", ok, t_ok);
    cr_assert(dmt_wait_event(rc, "ok-1", "complete", 20000), "the signed job ran (log %s)",
              rep.log);
    cr_assert_eq(wait_dead(5, 10000), 5, "five dead letters (log %s)", rep.log);

    assert_untouched("future-job");
    assert_dead(e_victim, "token: required (jobs must be signed)");
    assert_untouched("forged-1");
    assert_dead(e_forged, "token: signature does not match");
    assert_untouched("respec-1");
    assert_dead(e_spec, "token: dreamJobSha256 does not match the job");
    assert_untouched("rerepo-1");
    assert_dead(e_repo, "token: dreamJobSha256 does not match the job");
    assert_untouched("unbound-1");
    assert_dead(e_unbound, "token: dreamJobSha256 missing");
    cr_assert_eq(dmt_pending(rc, NULL), 0, "every entry acknowledged");

    /* The job the unsigned entry named was not pre-failed: signed, it runs. */
    t_victim = sign_now(victim, SECRET);
    free(xadd("*", victim, t_victim));
    cr_assert(dmt_wait_event(rc, "future-job", "complete", 20000), "log %s", rep.log);
    s = statuses("future-job", NULL);
    cr_assert_eq(strncmp(s, "started,", 8), 0, "%s", s);
    free(s);

    /* An unsigned replay of a finished job adds no `duplicate` event to it. */
    s = statuses("ok-1", NULL);
    e_replay = xadd("*", ok, NULL);
    cr_assert_eq(wait_dead(6, 10000), 6, "the replay was dead-lettered (log %s)", rep.log);
    assert_dead(e_replay, "token: required");
    {
        char *after = statuses("ok-1", NULL);
        cr_assert_str_eq(after, s, "the replay wrote events");
        cr_assert_null(strstr(after, "duplicate"));
        free(after);
    }
    free(s);
    s = hget("ok-1", "status");
    cr_assert_str_eq(s, "complete");
    free(s);
    cr_assert_eq(dmt_replica_stop(&rep, 10000), 0);

    free(ok);
    free(victim);
    free(forged);
    free(spec_signed);
    free(spec_sent);
    free(repo_signed);
    free(repo_sent);
    free(unbound_job);
    free(t_ok);
    free(t_forged);
    free(t_spec);
    free(t_repo);
    free(t_unbound);
    free(t_victim);
    free(e_victim);
    free(e_forged);
    free(e_spec);
    free(e_repo);
    free(e_unbound);
    free(e_ok);
    free(e_replay);
}

Test(signed, a_far_future_entry_reclaimed_after_a_kill_runs_on_its_start_time_token)
{
    struct dmt_replica a, b;
    const char *slow[] = {"--stages=test", "--test-stage-ms=3000", "--lease-ms=1500", NULL};
    const char *fast[] = {"--stages=test", "--test-stage-ms=20", "--lease-ms=1500", NULL};
    char *job = dmt_job_json("future-1", NULL, NULL);
    long long now, exp;
    char *tok, *entry, *s, *workers, *created;

    dmt_replica_start(&a, &redis, dir, "first", slow);
    dmt_replica_wait_ready(&a, rc, 10000);
    /* Valid now (with the 60 s leeway, for 5 more seconds), expired by the time it is
     * reclaimed. */
    now = (long long)time(NULL);
    exp = now - 55;
    tok = sign_job(job, "builder", SECRET, now - 600, exp, "");
    /* An id any producer may choose: the year 2286. */
    entry = xadd("9999999999999-0", job, tok);
    cr_assert_str_eq(entry, "9999999999999-0");
    cr_assert(dmt_wait_event(rc, "future-1", "started", 4000), "first started it (log %s)", a.log);
    cr_assert_eq(dmt_wait_pending(rc, "first", 1, 5000), 1);
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    a.pid = 0;
    /* Until the token is expired by the clock too (exp + leeway), so only the job's start time
     * can admit it. */
    while ((long long)time(NULL) <= exp + DM_AUTH_DEFAULT_LEEWAY_S) {
        dmt_sleep_ms(100);
    }
    s = statuses("future-1", NULL);
    cr_assert_null(strstr(s, "complete"), "the first replica did not finish it: %s", s);
    cr_assert_null(strstr(s, "failed"), "%s", s);
    free(s);
    dmt_replica_start(&b, &redis, dir, "second", fast);
    {
        long long deadline = dmt_now_ms() + 30000;
        while (dmt_now_ms() < deadline) {
            char *st = hget("future-1", "status");
            int done = st && (strcmp(st, "complete") == 0 || strcmp(st, "failed") == 0 ||
                              strcmp(st, "dead_lettered") == 0);
            free(st);
            if (done) {
                break;
            }
            dmt_sleep_ms(50);
        }
    }
    s = hget("future-1", "status");
    cr_assert_str_eq(s, "complete", "error: %s (log %s)", hget("future-1", "error"), b.log);
    free(s);
    s = statuses("future-1", &workers);
    cr_assert_not_null(strstr(s, ",retrying,"), "taken over: %s", s);
    cr_assert_null(strstr(s, "failed"), "%s", s);
    cr_assert_not_null(strstr(workers, "second"), "%s", workers);
    created = hget("future-1", "created");
    cr_assert_not_null(created);
    cr_assert_lt(atoll(created) / 1000, (long long)time(NULL), "created is a real start time");
    cr_assert_eq(integer("XLEN %s", "dream:dead"), 0);
    cr_assert_eq(dmt_pending(rc, NULL), 0);
    cr_assert_eq(dmt_replica_stop(&b, 10000), 0);
    free(s);
    free(workers);
    free(created);
    free(job);
    free(tok);
    free(entry);
}

Test(signed, a_requeued_signed_job_runs_again_with_its_original_token)
{
    struct dmt_replica a, b;
    const char *slow[] = {"--stages=test", "--test-stage-ms=3000", "--lease-ms=1500",
                          "--max-attempts=1", NULL};
    const char *fast[] = {"--stages=test", "--test-stage-ms=20", "--lease-ms=1500",
                          "--max-attempts=1", NULL};
    char *job = dmt_job_json("requeue-1", NULL, "builder");
    char *tok = sign_now(job, SECRET);
    char *entry, *s, *out = NULL;
    char dead_id[64];
    const char *requeue[4] = {"dead", "requeue", dead_id, NULL};
    cJSON *stored;

    dmt_replica_start(&a, &redis, dir, "first", slow);
    dmt_replica_wait_ready(&a, rc, 10000);
    entry = xadd("*", job, tok);
    cr_assert(dmt_wait_event(rc, "requeue-1", "started", 5000), "log %s", a.log);
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    a.pid = 0;
    /* The second delivery is past --max-attempts=1: the job goes to the dead letters with its
     * stored (normalised) job. */
    dmt_replica_start(&b, &redis, dir, "second", fast);
    cr_assert(dmt_wait_event(rc, "requeue-1", "dead_lettered", 20000), "log %s", b.log);
    s = dead_letter(entry, dead_id, sizeof(dead_id));
    cr_assert_not_null(s, "no dead letter for entry %s", entry);
    cr_assert_not_null(strstr(s, "delivered 2 times"), "%s", s);
    free(s);
    {
        redisReply *r = redisCommand(rc, "XRANGE dream:dead %s %s", dead_id, dead_id);
        const redisReply *f = r->element[0]->element[1];
        stored = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "job") == 0) {
                stored = cJSON_Parse(f->element[k + 1]->str);
            }
        }
        freeReplyObject(r);
    }
    cr_assert_not_null(stored);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(stored, "baseBranch")), "main",
                     "the dead letter holds the normalised job, not the entry's body");
    cJSON_Delete(stored);

    cr_assert_eq(dreamctl(requeue, &out), 0, "%s", out);
    cr_assert_not_null(strstr(out, "requeued dead letter"), "%s", out);
    free(out);
    cr_assert(dmt_wait_event(rc, "requeue-1", "complete", 20000), "log %s", b.log);
    s = hget("requeue-1", "status");
    cr_assert_str_eq(s, "complete", "error %s", hget("requeue-1", "error"));
    free(s);
    cr_assert_eq(integer("XLEN %s", "dream:dead"), 0, "the requeued entry was accepted");
    cr_assert_eq(dmt_replica_stop(&b, 10000), 0);
    free(job);
    free(tok);
    free(entry);
}

Test(signed, a_reclaimed_replay_is_checked_by_the_clock_not_by_another_entrys_start)
{
    struct dmt_replica a, b;
    const char *extra[] = {"--stages=test", "--test-stage-ms=20", "--lease-ms=1000", NULL};
    char *job = dmt_job_json("replayed-1", NULL, NULL);
    long long now = (long long)time(NULL), exp = now - 55;
    /* Valid for 5 more seconds: long enough to run once. */
    char *tok = sign_job(job, "builder", SECRET, now - 600, exp, "");
    char *first, *replay, *before, *after, *s;
    redisReply *r;

    dmt_replica_start(&a, &redis, dir, "a", extra);
    dmt_replica_wait_ready(&a, rc, 10000);
    first = xadd("*", job, tok);
    cr_assert(dmt_wait_event(rc, "replayed-1", "complete", 4000), "log %s", a.log);
    cr_assert_eq(dmt_replica_stop(&a, 10000), 0);
    while ((long long)time(NULL) <= exp + DM_AUTH_DEFAULT_LEEWAY_S) {
        dmt_sleep_ms(100);
    }
    /* The same entry again, taken by a consumer that never handles it, so a replica only ever
     * sees it reclaimed. The job's hash still says when it started, under the first entry. */
    before = statuses("replayed-1", NULL);
    replay = xadd("*", job, tok);
    r = redisCommand(rc, "XREADGROUP GROUP workers ghost COUNT 1 STREAMS dream:jobs >");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "the ghost took it");
    freeReplyObject(r);
    cr_assert_eq(dmt_pending(rc, "ghost"), 1);
    dmt_replica_start(&b, &redis, dir, "b", extra);
    cr_assert_eq(wait_dead(1, 10000), 1, "the replay was dead-lettered (log %s)", b.log);
    assert_dead(replay, "token: expired");
    after = statuses("replayed-1", NULL);
    cr_assert_str_eq(after, before, "the replay wrote events (no duplicate either)");
    s = hget("replayed-1", "entry");
    cr_assert_str_eq(s, first);
    free(s);
    cr_assert_eq(dmt_pending(rc, NULL), 0);
    cr_assert_eq(dmt_replica_stop(&b, 10000), 0);
    free(before);
    free(after);
    free(job);
    free(tok);
    free(first);
    free(replay);
}

/* A signed job whose entry was trimmed ends dead_lettered with a dead letter that keeps no
 * token (the trim deleted it). `dreamctl dead requeue` refuses it with the reason instead of
 * queueing an entry the worker would only dead-letter again, and requeues it with a fresh token:
 * given (--token-file) or signed by dreamctl (--sign-secret-file). */
Test(signed, a_trimmed_signed_job_is_requeued_only_with_a_fresh_token)
{
    struct dmt_replica a;
    const char *slow[] = {"--stages=test", "--test-stage-ms=1500", "--lease-ms=1000", NULL};
    char *job1 = dmt_job_json("trim-s1", NULL, "builder");
    char *job2 = dmt_job_json("trim-s2", NULL, "builder");
    char *tok1 = sign_now(job1, SECRET), *tok2 = sign_now(job2, SECRET);
    char *e1, *e2, *s, *out = NULL, *fresh, key[600];
    char dead1[64], dead2[64];
    const char *bare[] = {"--json", "dead", "requeue", dead1, NULL};
    char tokfile[600];
    const char *with_token[] = {"dead", "requeue", dead1, "--token-file", tokfile, NULL};
    const char *with_file[] = {"dead", "requeue", dead2, "--sign-secret-file", key, NULL};
    FILE *f;

    dmt_replica_start(&a, &redis, dir, "trimmer", slow);
    dmt_replica_wait_ready(&a, rc, 10000);
    e1 = xadd("*", job1, tok1);
    e2 = xadd("*", job2, tok2);
    cr_assert(dmt_wait_event(rc, "trim-s1", "planning", 10000), "log %s", a.log);
    cr_assert(dmt_wait_event(rc, "trim-s2", "planning", 10000), "log %s", a.log);
    freeReplyObject(redisCommand(rc, "XTRIM dream:jobs MAXLEN 0"));
    cr_assert(dmt_wait_event(rc, "trim-s1", "dead_lettered", 10000), "log %s", a.log);
    cr_assert(dmt_wait_event(rc, "trim-s2", "dead_lettered", 10000), "log %s", a.log);
    s = dead_letter(e1, dead1, sizeof(dead1));
    cr_assert_not_null(s);
    cr_assert_not_null(strstr(s, "deleted from the stream"), "%s", s);
    free(s);
    s = dead_letter(e2, dead2, sizeof(dead2));
    cr_assert_not_null(s);
    free(s);

    /* No token anywhere: refused with the reason, nothing queued, the dead letter kept. */
    cr_assert_eq(dreamctl(bare, &out), 1, "%s", out);
    cr_assert_not_null(strstr(out, "is a signed job's and keeps no token"), "%s", out);
    cr_assert_not_null(strstr(out, "--token JWT"), "%s", out);
    cr_assert_not_null(strstr(out, "--sign-secret-file PATH"), "%s", out);
    free(out);
    cr_assert_eq(integer("XLEN %s", "dream:jobs"), 0, "nothing queued");
    cr_assert_eq(integer("XLEN %s", "dream:dead"), 2, "the dead letters are kept");

    /* A fresh token given (from a file, its line end dropped; not on the command line): the
     * job runs again to completion. */
    fresh = sign_now(job1, SECRET);
    snprintf(tokfile, sizeof(tokfile), "%s/fresh.jwt", dir);
    f = fopen(tokfile, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", fresh);
    fclose(f);
    cr_assert_eq(dreamctl(with_token, &out), 0, "%s", out);
    free(out);
    cr_assert(dmt_wait_event(rc, "trim-s1", "complete", 20000), "log %s", a.log);

    /* Signed by dreamctl from a secret file (the secret never on its command line). */
    snprintf(key, sizeof(key), "%s/sign.key", dir);
    f = fopen(key, "w");
    cr_assert_not_null(f);
    fputs(SECRET "\n", f);
    fclose(f);
    cr_assert_eq(dreamctl(with_file, &out), 0, "%s", out);
    free(out);
    cr_assert(dmt_wait_event(rc, "trim-s2", "complete", 20000), "log %s", a.log);
    s = hget("trim-s2", "status");
    cr_assert_str_eq(s, "complete");
    free(s);
    cr_assert_eq(integer("XLEN %s", "dream:dead"), 0, "both requeued entries were accepted");
    cr_assert_eq(dmt_replica_stop(&a, 10000), 0);
    free(fresh);
    free(job1);
    free(job2);
    free(tok1);
    free(tok2);
    free(e1);
    free(e2);
}
