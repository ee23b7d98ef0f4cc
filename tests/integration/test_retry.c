/*
 * `dreamctl retry` end to end (issue 17): the built dreamctl and dreamd against a real
 * redis-server. The retry tests that pay for files run the real pipeline in the dme2e world (fake
 * OpenRouter scripted to fail one path, fake GitHub counting pull requests, a bare repository);
 * the signed-token test uses test stages (the token is the point, not the files). Each test
 * checks the outcome at job level: status, events (both runs, seq without gaps), the fake's
 * requests per path, pull requests.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dmctl.h"
#include "dme2e.h"

#define ENDED "complete,failed,cancelled,dead_lettered,rejected,paused_approval"
#define MAX_PATHS 32

static struct dmt_world world;
static struct dmt_replica rep;

static void setup(void)
{
    dmt_world_start(&world, NULL);
}

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(retry, .init = setup, .fini = teardown, .timeout = 400);

/* ---- helpers ---- */

static int ctl(const char *const *args, const char *const *env, char **out, char **err)
{
    return dmt_ctl_run(dmt_redis_url(&world.redis), args, env, NULL, 60000, out, err);
}

static void submit(const char *id, const char *spec)
{
    char *job = dmt_world_job(id, spec, NULL, 400000, 20.0);
    free(dmt_submit(world.rc, job));
    free(job);
}

static void expect_status(const char *id, const char *want, int timeout_ms)
{
    char *st;
    cr_assert(dmt_world_wait_status(&world, id, ENDED, timeout_ms),
              "job %s did not end within %d ms (status %s; log %s)", id, timeout_ms,
              dmt_world_hget(&world, id, "status"), rep.log);
    st = dmt_world_hget(&world, id, "status");
    cr_assert_str_eq(st, want, "job %s ended %s, wanted %s (error: %s; log %s)", id, st, want,
                     dmt_world_hget(&world, id, "error"), rep.log);
    free(st);
}

/* The plan's generated files (the spec document left out), in plan order, and the branch. */
static int plan_paths(const char *id, char paths[][256], char *branch, size_t blen)
{
    char *json = dmt_world_hget(&world, id, "plan");
    cJSON *plan, *it;
    int n = 0;

    cr_assert_not_null(json, "job %s has a plan", id);
    plan = cJSON_Parse(json);
    cr_assert_not_null(plan);
    if (branch) {
        snprintf(branch, blen, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(plan, "branch")));
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(plan, "items"))
    {
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind"));
        if (kind && strcmp(kind, "spec") != 0 && n < MAX_PATHS) {
            snprintf(paths[n++], 256, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(it, "path")));
        }
    }
    cJSON_Delete(plan);
    free(json);
    return n;
}

static void expect_field(const char *id, const char *field, const char *want)
{
    char *v = dmt_world_hget(&world, id, field);
    cr_assert(v && strcmp(v, want) == 0, "job %s: %s is %s, wanted %s", id, field, v ? v : "(none)",
              want);
    free(v);
}

static int is_checkpointed(const char *id, const char *path)
{
    redisReply *r = redisCommand(world.rc, "HEXISTS dream:job:%s:files %s", id, path);
    int yes;
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    yes = r->integer == 1;
    freeReplyObject(r);
    return yes;
}

static int count_status(const cJSON *events, const char *status)
{
    const cJSON *ev;
    int n = 0;
    cJSON_ArrayForEach(ev, events)
    {
        n += strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status")), status) == 0;
    }
    return n;
}

/* Every event's seq is its position (1, 2, 3...): both runs in one sequence, no gap, no
 * repeat. */
static void expect_consecutive_seq(const char *id, const cJSON *events)
{
    int i = 1;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, events)
    {
        cr_assert_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "seq")), i,
                     "job %s: event %d has seq %g", id, i,
                     cJSON_GetNumberValue(cJSON_GetObjectItem(ev, "seq")));
        i++;
    }
}

/* The index of the first event with this status (-1 if none). */
static int index_of(const cJSON *events, const char *status)
{
    int i = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, events)
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status")), status) == 0) {
            return i;
        }
        i++;
    }
    return -1;
}

/* ---- the tests ---- */

/* A route, a component and a migration: three files after the spec document. */
#define TODO_BODY                                                                                  \
    "A small todo service.\n\n## API\n- GET /todos lists todos\n\n## Database\n- todos "           \
    "table\n\n## UI\n- TodoList component\n"

Test(retry, third_file_fault_then_retry_completes_without_paying_for_validated_files)
{
    const char *par[] = {"--file-parallelism=1", NULL};
    const char *retry[] = {"retry", "r-3rd", NULL};
    char paths[MAX_PATHS][256], branch[256], rules[600], *out, *err;
    int n, checkpointed = 0;
    cJSON *events;

    dmt_world_replica(&world, &rep, "rt", par);
    /* The plan of this spec, learnt from a first job (the rules planner is deterministic). */
    dmt_replica_wait_ready(&rep, world.rc, 20000);
    submit("probe", "# Todo Probe\n\n" TODO_BODY);
    expect_status("probe", "complete", 180000);
    n = plan_paths("probe", paths, NULL, 0);
    cr_assert_geq(n, 3, "the spec plans at least three files");

    /* One file at a time: the first two are generated, validated and checkpointed, the third
     * fails for good (400 is not retried). */
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/reset", NULL));
    snprintf(rules, sizeof(rules), "[{\"path\":\"%s\",\"behaviour\":\"400\"}]", paths[2]);
    dmt_fakeor_script(&world.llm, rules);
    submit("r-3rd", "# Todo API\n\n" TODO_BODY);
    expect_status("r-3rd", "failed", 180000);
    cr_assert(is_checkpointed("r-3rd", paths[0]) && is_checkpointed("r-3rd", paths[1]),
              "the first two files were checkpointed");
    cr_assert_not(is_checkpointed("r-3rd", paths[2]), "the faulty file was not");
    for (int i = 0; i < n; i++) {
        checkpointed += is_checkpointed("r-3rd", paths[i]);
    }

    /* The fault is gone; counts start from zero. */
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/reset", NULL));
    cr_assert_eq(ctl(retry, NULL, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "retry 1 of job r-3rd requested from stage generate"), "%s",
                       out);
    free(out);
    free(err);
    expect_status("r-3rd", "complete", 180000);

    /* The fake saw requests only for the files that had not been validated. */
    for (int i = 0; i < n; i++) {
        long long seen = dmt_fakeor_path_count(&world.llm, paths[i]);
        if (i < 2) {
            cr_assert(is_checkpointed("r-3rd", paths[i]));
        }
        cr_assert(i >= checkpointed || is_checkpointed("r-3rd", paths[i]));
        if (i < checkpointed) {
            cr_assert_eq(seen, 0, "%s was validated in the first run, yet asked again (%lld)",
                         paths[i], seen);
        } else {
            cr_assert_geq(seen, 1, "%s was not validated in the first run: it must be asked",
                          paths[i]);
        }
    }

    /* Both runs in the job's events, one seq sequence; attempts started afresh. */
    events = dmt_world_events(&world, "r-3rd");
    expect_consecutive_seq("r-3rd", events);
    cr_assert_eq(count_status(events, "failed"), 1);
    cr_assert_eq(count_status(events, "retry_requested"), 1);
    cr_assert_eq(count_status(events, "complete"), 1);
    cr_assert_eq(count_status(events, "started"), 2, "one `started` per run");
    cr_assert_lt(index_of(events, "failed"), index_of(events, "retry_requested"));
    cr_assert_lt(index_of(events, "retry_requested"), index_of(events, "complete"));
    cJSON_Delete(events);
    expect_field("r-3rd", "attempts", "1");
    expect_field("r-3rd", "retries", "1");
    plan_paths("r-3rd", paths, branch, sizeof(branch));
    cr_assert_eq(dmt_world_prs_for(&world, branch), 1, "one pull request for %s", branch);
}

Test(retry, dead_lettered_job_retried_completes)
{
    /* A replica that dies holding the job, and a second one that finds it delivered past
     * --max-attempts=1: the job is dead-lettered (status dead_lettered in its hash). */
    const char *a_args[] = {"--max-attempts=1", "--lease-ms=1000", NULL};
    const char *retry[] = {"retry", "r-dead", "--json", NULL};
    char *out, *err;
    struct dmt_replica a;
    cJSON *o, *events;

    dmt_fakeor_script(&world.llm, "[{\"behaviour\":\"wait\",\"param\":\"60000\"}]");
    dmt_world_replica(&world, &a, "doomed", a_args);
    submit("r-dead", "# Notes\n\n## Database\n- notes table\n");
    {
        /* It is generating: the fake holds its request. */
        long long deadline = dmt_now_ms() + 60000;
        while (dmt_fakeor_stat(&world.llm, "in_flight") < 1 && dmt_now_ms() < deadline) {
            dmt_sleep_ms(20);
        }
        cr_assert_geq(dmt_fakeor_stat(&world.llm, "in_flight"), 1,
                      "the job reached generation (log %s)", a.log);
    }
    kill(a.pid, SIGKILL);
    dmt_replica_stop(&a, 5000);
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/reset", NULL));
    dmt_world_replica(&world, &rep, "rescuer", a_args);
    expect_status("r-dead", "dead_lettered", 60000);

    cr_assert_eq(ctl(retry, NULL, &out, &err), 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "action")), "retry_requested");
    cJSON_Delete(o);
    free(out);
    free(err);
    expect_status("r-dead", "complete", 180000);
    events = dmt_world_events(&world, "r-dead");
    expect_consecutive_seq("r-dead", events);
    cr_assert_eq(count_status(events, "dead_lettered"), 1);
    cr_assert_eq(count_status(events, "complete"), 1);
    cJSON_Delete(events);
}

Test(retry, bulk_retry_of_20_failed_jobs_each_ends_once_with_one_pr)
{
    const char *bulk[] = {"retry", "--status", "failed", "--since", "1h", "--yes", NULL};
    const char *ask[] = {"retry", "--status", "failed", "--since", "1h", NULL};
    char id[32], spec[128], *out, *err;
    redisReply *r;

    dmt_world_replica(&world, &rep, "bulk", NULL);
    dmt_fakeor_script(&world.llm, "[{\"behaviour\":\"400\"}]");
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "bulk-%02d", i);
        snprintf(spec, sizeof(spec), "# Notes %d\n\n## Database\n- notes%d table\n", i, i);
        submit(id, spec);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "bulk-%02d", i);
        expect_status(id, "failed", 120000);
    }
    free(dmt_fakeor_http(&world.llm, "POST", "/_fake/reset", NULL));

    /* Without --yes the question is asked; no answer (stdin /dev/null) retries nothing. */
    cr_assert_eq(ctl(ask, NULL, &out, &err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "retry 20 jobs? [y/N]"), "%s", err);
    cr_assert_not_null(strstr(err, "not confirmed"), "%s", err);
    free(out);
    free(err);
    r = redisCommand(world.rc, "ZCARD dream:idx:status:retry_requested");
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);

    cr_assert_eq(ctl(bulk, NULL, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "20 retried, 0 refused"), "%s", out);
    free(out);
    free(err);
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "bulk-%02d", i);
        expect_status(id, "complete", 240000);
    }
    for (int i = 0; i < 20; i++) {
        cJSON *events;
        char branch[256], paths[MAX_PATHS][256];
        snprintf(id, sizeof(id), "bulk-%02d", i);
        events = dmt_world_events(&world, id);
        expect_consecutive_seq(id, events);
        cr_assert_eq(count_status(events, "retry_requested"), 1, "%s retried once", id);
        cr_assert_eq(count_status(events, "complete"), 1, "%s ended once", id);
        cr_assert_eq(count_status(events, "failed"), 1, "%s", id);
        cJSON_Delete(events);
        plan_paths(id, paths, branch, sizeof(branch));
        cr_assert_eq(dmt_world_prs_for(&world, branch), 1, "%s: one pull request", id);
    }
    cr_assert_eq(dmt_world_pr_count(&world), 20);
    /* A second bulk retry finds nothing left to retry. */
    cr_assert_eq(ctl(bulk, NULL, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "no jobs to retry"), "%s", out);
    free(out);
    free(err);
}

/* ---- signed mode: test stages, a bed of its own ---- */

#define SECRET "retry-secret-0123456789"

static struct dmt_redis bed;
static char *bed_dir;
static redisContext *brc;

static void signed_setup(void)
{
    setenv("DREAM_SIGNING_SECRETS", SECRET, 1);
    dmt_bed_start(&bed, &bed_dir, &brc, "retrysigned", 0);
}

static void signed_teardown(void)
{
    dmt_bed_stop(&bed, &bed_dir, &brc);
}

static char *bed_hget(const char *id, const char *field)
{
    redisReply *r = redisCommand(brc, "HGET dream:job:%s %s", id, field);
    char *s = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}

static void bed_wait_status(const char *id, const char *want)
{
    long long deadline = dmt_now_ms() + 60000;
    char *st = NULL;
    while (dmt_now_ms() < deadline) {
        free(st);
        st = bed_hget(id, "status");
        if (st && strcmp(st, want) == 0) {
            free(st);
            return;
        }
        dmt_sleep_ms(20);
    }
    cr_assert_fail("job %s is %s, wanted %s", id, st ? st : "(none)", want);
}

static int bed_ctl(const char *const *args, const char *const *env, char **out, char **err)
{
    return dmt_ctl_run(dmt_redis_url(&bed), args, env, NULL, 30000, out, err);
}

/* Starts replica `name` on the bed and submits job `id` (a one-route spec) signed from
 * DREAM_SIGN_SECRET, then waits until it started. */
static void bed_start_signed_job(struct dmt_replica *r, const char *name,
                                 const char *const *replica_args, const char *id)
{
    const char *env_secret[] = {"DREAM_SIGN_SECRET=" SECRET, NULL};
    const char *sub[] = {"submit", NULL, "--repo", "acme/app", "--job-id", id, NULL};
    char spec[600], *out, *err;
    FILE *f;

    snprintf(spec, sizeof(spec), "%s/spec.md", bed_dir);
    f = fopen(spec, "w");
    cr_assert_not_null(f);
    fputs("# Todo API\n\n## API\n- GET /todos lists todos\n", f);
    fclose(f);
    sub[1] = spec;
    dmt_replica_start(r, &bed, bed_dir, name, replica_args);
    dmt_replica_wait_ready(r, brc, 10000);
    cr_assert_eq(bed_ctl(sub, env_secret, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    cr_assert(dmt_wait_event(brc, id, "started", 20000));
}

Test(retry, signed_job_retried_without_a_fresh_token_is_refused_with_the_reason,
     .init = signed_setup, .fini = signed_teardown, .timeout = 120)
{
    const char *slow[] = {"--stages=test", "--test-stage-ms=400", NULL};
    const char *env_secret[] = {"DREAM_SIGN_SECRET=" SECRET, NULL};
    const char *cancel[] = {"cancel", "sig-1", NULL};
    const char *retry[] = {"retry", "sig-1", NULL};
    const char *bogus[] = {"retry", "sig-1", "--token", "not.a.token", NULL};
    struct dmt_replica r1;
    char *out, *err, *s;
    redisReply *x;
    long long len;

    bed_start_signed_job(&r1, "s1", slow, "sig-1");
    cr_assert_eq(bed_ctl(cancel, NULL, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    bed_wait_status("sig-1", "cancelled");
    s = bed_hget("sig-1", "signed");
    cr_assert(s && strcmp(s, "1") == 0, "START recorded that the job was signed");
    free(s);

    /* No token, no secret: refused, with the reason, and nothing queued or changed. */
    x = redisCommand(brc, "XLEN dream:jobs");
    len = x->integer;
    freeReplyObject(x);
    cr_assert_eq(bed_ctl(retry, NULL, &out, &err), 1, "%s", out);
    cr_assert_not_null(strstr(err, "cannot retry sig-1: job was signed: a retry needs a fresh "
                                   "token"),
                       "%s", err);
    free(out);
    free(err);
    x = redisCommand(brc, "XLEN dream:jobs");
    cr_assert_eq(x->integer, len, "no entry was added");
    freeReplyObject(x);
    s = bed_hget("sig-1", "status");
    cr_assert_str_eq(s, "cancelled");
    free(s);

    /* A token that does not verify: the worker refuses it, and the job ends failed with the
     * reason (not retry_requested without a TTL for good); nothing ran, no dead letter. */
    cr_assert_eq(bed_ctl(bogus, NULL, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    cr_assert(dmt_wait_event(brc, "sig-1", "failed", 20000),
              "a failed event for the refused retry");
    s = bed_hget("sig-1", "status");
    cr_assert_str_eq(s, "failed", "the refused retry ended the job");
    free(s);
    s = bed_hget("sig-1", "error");
    cr_assert(s && strncmp(s, "retry refused: token:", 21) == 0, "error: %s", s ? s : "(none)");
    free(s);
    x = redisCommand(brc, "TTL dream:job:sig-1");
    cr_assert(x->integer > 0, "the job hash expires again (TTL %lld)", x->integer);
    freeReplyObject(x);
    x = redisCommand(brc, "XLEN dream:dead");
    cr_assert_eq(x->integer, 0, "no dead letter");
    freeReplyObject(x);

    /* Signed from DREAM_SIGN_SECRET over the stored job: it runs and completes. */
    cr_assert_eq(bed_ctl(retry, env_secret, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    bed_wait_status("sig-1", "complete");
    dmt_replica_stop(&r1, 20000);
}

/* The statuses of the job's events after the first `retry_requested`, comma-separated. */
static void statuses_after_retry(const char *id, char *out, size_t n)
{
    redisReply *r = redisCommand(brc, "XRANGE dream:job:%s:events - +", id);
    int seen = 0;

    out[0] = '\0';
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        cJSON *ev = cJSON_Parse(r->element[i]->element[1]->element[1]->str);
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        if (seen) {
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? "," : "", st);
        }
        seen |= strcmp(st, "retry_requested") == 0;
        cJSON_Delete(ev);
    }
    freeReplyObject(r);
}

Test(retry, from_stage_and_refusals, .init = signed_setup, .fini = signed_teardown, .timeout = 120)
{
    const char *slow[] = {"--stages=test", "--test-stage-ms=300", NULL};
    const char *env_secret[] = {"DREAM_SIGN_SECRET=" SECRET, NULL};
    const char *cancel[] = {"cancel", "fs-1", NULL};
    const char *bad_stage[] = {"retry", "fs-1", "--from-stage", "deploy", NULL};
    const char *both[] = {"retry", "fs-1", "--status", "failed", NULL};
    const char *none[] = {"retry", NULL};
    const char *unknown[] = {"retry", "no-such-job", NULL};
    const char *again[] = {"retry", "fs-1", NULL};
    const char *from_review[] = {"retry", "fs-1", "--from-stage", "review", "--json", NULL};
    struct dmt_replica r1;
    char seen[400], *out, *err;
    cJSON *o;

    bed_start_signed_job(&r1, "fs", slow, "fs-1");

    /* Refused while it runs, and for an unknown job; usage errors exit 2. */
    cr_assert_eq(bed_ctl(again, NULL, &out, &err), 1);
    cr_assert_not_null(strstr(err, "cannot retry fs-1: job is running"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(bed_ctl(unknown, NULL, &out, &err), 1);
    cr_assert_not_null(strstr(err, "no such job"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(bed_ctl(bad_stage, NULL, &out, &err), 2);
    cr_assert_not_null(strstr(err, "--from-stage: one of plan, generate"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(bed_ctl(both, NULL, &out, &err), 2);
    free(out);
    free(err);
    cr_assert_eq(bed_ctl(none, NULL, &out, &err), 2);
    cr_assert_not_null(strstr(err, "give a job ID, or --status"), "%s", err);
    free(out);
    free(err);

    cr_assert_eq(bed_ctl(cancel, NULL, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    bed_wait_status("fs-1", "cancelled");

    /* From the review stage: the new run plans nothing. */
    cr_assert_eq(bed_ctl(from_review, env_secret, &out, &err), 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "stage")), "review");
    cJSON_Delete(o);
    free(out);
    free(err);
    bed_wait_status("fs-1", "complete");
    statuses_after_retry("fs-1", seen, sizeof(seen));
    cr_assert_str_eq(seen, "started,testing,pushing,complete");
    dmt_replica_stop(&r1, 20000);
}
