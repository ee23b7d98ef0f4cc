/*
 * The job index and `dreamctl stats` (issue 17): the built dreamctl and dreamd against a real
 * redis-server. `jobs` filters are checked against jobs the test made, and Redis's own command
 * statistics prove the answer came from the index (no SCAN); the index is trimmed with the jobs'
 * TTL; `stats --json` is checked against a run of the real pipeline (the dme2e world: fake
 * OpenRouter with costs, fake GitHub) whose counts the test knows.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "dmctl.h"
#include "dme2e.h"

static struct dmt_redis redis;
static char *dir;
static redisContext *rc;

static void setup(void)
{
    dmt_bed_start(&redis, &dir, &rc, "stats", 0);
}

static void teardown(void)
{
    dmt_bed_stop(&redis, &dir, &rc);
}

TestSuite(stats, .init = setup, .fini = teardown, .timeout = 300);

/* ---- helpers ---- */

static int ctl(const char *const *args, char **out, char **err)
{
    return dmt_ctl_run(dmt_redis_url(&redis), args, NULL, NULL, 30000, out, err);
}

/* A job for owner/repo by user (trust: builder, or observer, which intake fails at once). */
static void xadd_job(const char *id, const char *owner, const char *repo, const char *user,
                     const char *trust)
{
    char *base = dmt_job_json(id, NULL, trust);
    cJSON *o = cJSON_Parse(base);
    char *json;
    redisReply *r;

    free(base);
    cr_assert_not_null(o);
    cJSON_ReplaceItemInObject(o, "repoOwner", cJSON_CreateString(owner));
    cJSON_ReplaceItemInObject(o, "repoName", cJSON_CreateString(repo));
    cJSON_ReplaceItemInObject(o, "userId", cJSON_CreateString(user));
    json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r = redisCommand(rc, "XADD dream:jobs * type build job %s", json);
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    free(json);
}

static char *hget(const char *id, const char *field)
{
    redisReply *r = redisCommand(rc, "HGET dream:job:%s %s", id, field);
    char *s = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}

static void wait_status(const char *id, const char *want)
{
    long long deadline = dmt_now_ms() + 60000;
    char *st = NULL;
    while (dmt_now_ms() < deadline) {
        free(st);
        st = hget(id, "status");
        if (st && strcmp(st, want) == 0) {
            free(st);
            return;
        }
        dmt_sleep_ms(20);
    }
    cr_assert_fail("job %s is %s, wanted %s", id, st ? st : "(none)", want);
}

/* Calls of a command since the server started (INFO commandstats; 0 when never called). */
static long long calls(const char *cmd)
{
    redisReply *r = redisCommand(rc, "INFO commandstats");
    char needle[64];
    const char *p;
    long long n = 0;

    cr_assert(r && r->type == REDIS_REPLY_STRING);
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
    p = strstr(r->str, needle);
    if (p) {
        n = atoll(p + strlen(needle));
    }
    freeReplyObject(r);
    return n;
}

static const char *jstr(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, name));
}

/* ---- the tests ---- */

Test(stats, jobs_filters_answer_from_the_index_without_scan)
{
    const char *fast[] = {"--stages=test", "--test-stage-ms=0", NULL};
    /* Every stage passes its deadline: three transient retries, then `failed`. */
    const char *doomed[] = {"--stages=test", "--test-stage-ms=5000", "--stage-timeout-ms=50", NULL};
    const char *q[] = {"jobs",    "--repo", "acme/app", "--status", "failed",
                       "--since", "1h",     "--json",   NULL};
    const char *page1[] = {"jobs", "--repo", "acme/app", "--limit", "3", "--json", NULL};
    const char *several[] = {"jobs",   "--status", "failed", "--status", "complete",
                             "--user", "bob",      "--json", NULL};
    const char *comma[] = {"jobs", "--status", "complete,failed", "--user", "bob", "--json", NULL};
    const char *until[] = {"jobs", "--status", "failed", "--until", "2h", "--json", NULL};
    const char *costly[] = {"jobs", "--min-cost", "0.01", "--json", NULL};
    const char *bad[] = {"jobs", "--status", "broken", NULL};
    char cursor[200], *out, *err;
    struct dmt_replica rep;
    long long scans, zreads, prev;
    cJSON *a, *it;
    int i;

    /* First acme/app's c-1, c-3, c-5 and other/lib's o-c complete, one after the other... */
    dmt_replica_start(&rep, &redis, dir, "fast", fast);
    dmt_replica_wait_ready(&rep, rc, 10000);
    xadd_job("c-1", "acme", "app", "alice", "builder");
    wait_status("c-1", "complete");
    xadd_job("c-3", "acme", "app", "bob", "builder");
    wait_status("c-3", "complete");
    xadd_job("c-5", "acme", "app", "alice", "builder");
    wait_status("c-5", "complete");
    xadd_job("o-c", "other", "lib", "bob", "builder");
    wait_status("o-c", "complete");
    cr_assert_eq(dmt_replica_stop(&rep, 20000), 0);
    /* ... then acme/app's f-0, f-2, f-4 and other/lib's o-f fail. */
    dmt_replica_start(&rep, &redis, dir, "doomed", doomed);
    dmt_replica_wait_ready(&rep, rc, 10000);
    xadd_job("f-0", "acme", "app", "bob", "builder");
    xadd_job("f-2", "acme", "app", "alice", "builder");
    xadd_job("f-4", "acme", "app", "alice", "builder");
    xadd_job("o-f", "other", "lib", "bob", "builder");
    wait_status("f-0", "failed");
    wait_status("f-2", "failed");
    wait_status("f-4", "failed");
    wait_status("o-f", "failed");
    cr_assert_eq(dmt_replica_stop(&rep, 20000), 0);

    scans = calls("scan");
    zreads = calls("zrevrangebyscore");
    cr_assert_eq(ctl(q, &out, &err), 0, "%s", err);
    cr_assert_eq(calls("scan"), scans, "dreamctl jobs issued a SCAN");
    cr_assert_gt(calls("zrevrangebyscore"), zreads, "dreamctl jobs read the index");
    a = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(a), "%s", out);
    cr_assert_eq(cJSON_GetArraySize(a), 3, "%s", out);
    prev = -1;
    cJSON_ArrayForEach(it, a)
    {
        long long changed = dmt_world_ts_ms(jstr(it, "updated"));
        cr_assert_str_eq(jstr(it, "status"), "failed");
        cr_assert_str_eq(jstr(it, "repo"), "acme/app");
        cr_assert_eq(jstr(it, "jobId")[0], 'f', "%s", jstr(it, "jobId"));
        cr_assert(prev < 0 || changed <= prev, "newest failure first: %s", out);
        prev = changed;
    }
    cJSON_Delete(a);
    free(out);
    free(err);

    /* Pages, newest created first: f-4 f-2 f-0, then from the cursor c-5 c-3 c-1. */
    cr_assert_eq(ctl(page1, &out, &err), 0, "%s", err);
    a = cJSON_Parse(out);
    cr_assert_eq(cJSON_GetArraySize(a), 3, "%s", out);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(a, 0), "jobId"), "f-4");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(a, 2), "jobId"), "f-0");
    snprintf(cursor, sizeof(cursor), "%s", jstr(cJSON_GetArrayItem(a, 2), "cursor"));
    cJSON_Delete(a);
    free(out);
    free(err);
    {
        const char *page2[] = {"jobs",     "--repo", "acme/app", "--limit", "3",
                               "--cursor", cursor,   "--json",   NULL};
        cr_assert_eq(ctl(page2, &out, &err), 0, "%s", err);
        a = cJSON_Parse(out);
        cr_assert_eq(cJSON_GetArraySize(a), 3, "%s", out);
        cr_assert_str_eq(jstr(cJSON_GetArrayItem(a, 0), "jobId"), "c-5");
        cr_assert_str_eq(jstr(cJSON_GetArrayItem(a, 1), "jobId"), "c-3");
        cr_assert_str_eq(jstr(cJSON_GetArrayItem(a, 2), "jobId"), "c-1");
        cJSON_Delete(a);
        free(out);
        free(err);
    }

    /* Several statuses and a user: bob's are f-0 and o-f (failed last), o-c, then c-3. */
    cr_assert_eq(ctl(several, &out, &err), 0, "%s", err);
    a = cJSON_Parse(out);
    cr_assert_eq(cJSON_GetArraySize(a), 4, "%s", out);
    for (i = 0; i < 2; i++) {
        const char *id = jstr(cJSON_GetArrayItem(a, i), "jobId");
        cr_assert(strcmp(id, "f-0") == 0 || strcmp(id, "o-f") == 0, "%s", out);
    }
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(a, 2), "jobId"), "o-c");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(a, 3), "jobId"), "c-3");
    cJSON_Delete(a);
    free(out);
    free(err);
    {
        /* The same as a comma-separated list. */
        char *out2;
        cr_assert_eq(ctl(several, &out, &err), 0, "%s", err);
        free(err);
        cr_assert_eq(ctl(comma, &out2, &err), 0, "%s", err);
        cr_assert_str_eq(out, out2);
        free(out);
        free(out2);
        free(err);
    }

    /* --until two hours ago: nothing had failed yet; test stages cost nothing. */
    cr_assert_eq(ctl(until, &out, &err), 0, "%s", err);
    cr_assert_str_eq(out, "[]\n");
    free(out);
    free(err);
    cr_assert_eq(ctl(costly, &out, &err), 0, "%s", err);
    cr_assert_str_eq(out, "[]\n");
    free(out);
    free(err);
    cr_assert_eq(ctl(bad, &out, &err), 2);
    cr_assert_not_null(strstr(err, "unknown status 'broken'"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(calls("scan"), scans, "no command above issued a SCAN");
}

Test(stats, index_is_trimmed_with_the_job_ttl)
{
    const char *fast[] = {"--stages=test", "--test-stage-ms=0", "--job-ttl-s=60", NULL};
    const char *set[] = {"dream:idx:created", "dream:idx:status:complete",
                         "dream:idx:repo:acme/app", "dream:idx:user:bob"};
    long long two_min_ago = (long long)time(NULL) * 1000 - 120000; /* (epoch, as the index) */
    struct dmt_replica rep;
    redisReply *r;

    dmt_replica_start(&rep, &redis, dir, "ttl", fast);
    dmt_replica_wait_ready(&rep, rc, 10000);
    xadd_job("old", "acme", "app", "bob", "builder");
    wait_status("old", "complete");
    r = redisCommand(rc, "TTL dream:job:old");
    cr_assert(r->integer > 0 && r->integer <= 60, "the ended job's hash has the TTL");
    freeReplyObject(r);
    /* As it will be 60 s later, made now: the job ended two minutes ago and its hash expired. */
    for (int i = 0; i < 4; i++) {
        freeReplyObject(redisCommand(rc, "ZADD %s XX %lld old", set[i], two_min_ago));
    }
    freeReplyObject(redisCommand(rc, "DEL dream:job:old"));
    /* Older still, 40 jobs alive past the TTL (parked): they stay, and do not keep the trimming
     * from the expired job behind them. */
    for (int i = 0; i < 40; i++) {
        freeReplyObject(redisCommand(rc, "HSET dream:job:alive-%02d status paused_approval", i));
        freeReplyObject(redisCommand(rc, "ZADD dream:idx:created %d alive-%02d", i + 1, i));
    }

    /* The next job's end trims what expired: older than the TTL and without a hash. */
    xadd_job("new", "acme", "app", "bob", "builder");
    wait_status("new", "complete");
    for (int i = 0; i < 4; i++) {
        r = redisCommand(rc, "ZSCORE %s old", set[i]);
        cr_assert_eq(r->type, REDIS_REPLY_NIL, "%s no longer holds the expired job", set[i]);
        freeReplyObject(r);
        r = redisCommand(rc, "ZSCORE %s new", set[i]);
        cr_assert_eq(r->type, REDIS_REPLY_STRING, "%s holds the new job", set[i]);
        freeReplyObject(r);
    }
    r = redisCommand(rc, "ZCOUNT dream:idx:created -inf 40");
    cr_assert_eq(r->integer, 40, "the jobs still alive stay in the index");
    freeReplyObject(r);
    dmt_replica_stop(&rep, 20000);
}

/* ---- stats against a run of the real pipeline ---- */

static struct dmt_world world;

static void world_setup(void)
{
    dmt_world_start(&world, NULL);
}

static void world_teardown(void)
{
    dmt_world_stop(&world);
}

static void world_submit(const char *id, const char *spec)
{
    char *job = dmt_world_job(id, spec, NULL, 400000, 20.0);
    free(dmt_submit(world.rc, job));
    free(job);
}

static double num(const cJSON *o, const char *path)
{
    char buf[200], *save = NULL, *part;
    const cJSON *cur = o;
    snprintf(buf, sizeof(buf), "%s", path);
    for (part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save)) {
        cur = cJSON_GetObjectItem(cur, part);
    }
    cr_assert(cJSON_IsNumber(cur), "%s is a number", path);
    return cJSON_GetNumberValue(cur);
}

Test(stats, stats_json_matches_the_counts_of_a_run, .init = world_setup, .fini = world_teardown)
{
    const char *args[] = {"stats", "--json", NULL};
    const char *ids[] = {"s-1", "s-2", "s-3", "s-bad"};
    struct dmt_replica rep;
    long long tokens = 0;
    double cost = 0, by_model_tokens = 0, completed = 0, failed = 0;
    char *out, *err;
    cJSON *d, *it;

    /* Three jobs complete; one fails on its first file (a 400 the fake gives its prompts). */
    dmt_fakeor_script(&world.llm, "[{\"match\":\"FAILFAST\",\"behaviour\":\"400\"}]");
    dmt_world_replica(&world, &rep, "st", NULL);
    world_submit("s-1", "# Alpha\n\n## Database\n- alpha table\n");
    world_submit("s-2", "# Beta\n\n## Database\n- beta table\n");
    world_submit("s-3", "# Gamma\n\n## Database\n- gamma table\n");
    world_submit("s-bad", "# Delta\n\nFAILFAST\n\n## Database\n- delta table\n");
    for (int i = 0; i < 4; i++) {
        const char *want = i < 3 ? "complete" : "failed";
        char *st;
        cr_assert(dmt_world_wait_status(&world, ids[i], "complete,failed", 180000), "%s", rep.log);
        st = dmt_world_hget(&world, ids[i], "status");
        cr_assert_str_eq(st, want, "%s", ids[i]);
        free(st);
    }
    for (int i = 0; i < 4; i++) {
        char *t = dmt_world_hget(&world, ids[i], "tokens");
        char *c = dmt_world_hget(&world, ids[i], "cost");
        tokens += t ? atoll(t) : 0;
        cost += c ? atof(c) : 0;
        free(t);
        free(c);
    }
    cr_assert_gt(tokens, 0, "the run spent tokens");
    cr_assert_gt(cost, 0, "and dollars");

    cr_assert_eq(dmt_ctl_run(dmt_redis_url(&world.redis), args, NULL, NULL, 30000, &out, &err), 0,
                 "%s", err);
    d = cJSON_Parse(out);
    cr_assert_not_null(d, "one JSON document: %s", out);
    cr_assert_eq(num(d, "jobsByStatus.complete"), 3);
    cr_assert_eq(num(d, "jobsByStatus.failed"), 1);
    cr_assert_eq(num(d, "jobsByStatus.running"), 0);
    cr_assert_eq(num(d, "jobsByStatus.paused_approval"), 0);
    cr_assert_eq(num(d, "changedInWindow.complete"), 3);
    cr_assert_eq(num(d, "spend.tokens"), (double)tokens, "stats %g, job hashes %lld",
                 num(d, "spend.tokens"), tokens);
    cr_assert(fabs(num(d, "spend.costUsd") - cost) < 1e-6, "stats $%.9f, job hashes $%.9f",
              num(d, "spend.costUsd"), cost);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spend"), "byModel"))
    {
        by_model_tokens += num(it, "tokens");
    }
    cr_assert_eq(by_model_tokens, (double)tokens, "spend by model adds up");
    cr_assert_eq(num(d, "spend.byRepo.acme/app.tokens"), (double)tokens);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(d, "perHour"))
    {
        completed += num(it, "completed");
        failed += num(it, "failed");
    }
    cr_assert_eq(completed, 3);
    cr_assert_eq(failed, 1);
    cr_assert_eq(num(d, "durations.total.count"), 4);
    cr_assert_gt(num(d, "durations.total.p95Ms"), 0);
    cr_assert_geq(num(d, "durations.byStage.generate.count"), 1);
    cr_assert_eq(num(d, "stream.pending"), 0);
    cr_assert_eq(num(d, "parked.count"), 0);
    it = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "workers"), 0);
    cr_assert_not_null(it, "the replica is listed: %s", out);
    cr_assert_str_eq(jstr(it, "name"), "st");
    cr_assert_eq(num(it, "jobs"), 0);
    cr_assert_eq(num(it, "requests"), 0);
    cJSON_Delete(d);
    free(out);
    free(err);
}
