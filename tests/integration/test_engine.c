/*
 * Integration tests of the job engine (issue 3): real redis-server, real dreamd replicas with
 * test stages that take time (--stages=test). Each test checks the invariants from the events
 * the replicas wrote: every job has exactly one terminal event and consecutive seq.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dme2e.h"
#include "dmproc.h"
#include "dmtest.h"

static struct dmt_redis redis;
static char *dir;
static redisContext *rc;

static void setup(void)
{
    dmt_bed_start(&redis, &dir, &rc, "engine", 0);
}

static void teardown(void)
{
    dmt_bed_stop(&redis, &dir, &rc);
}

/* Runs after the suite's setup (Criterion runs both): replace its server by one with an AOF. */
static void setup_aof(void)
{
    teardown();
    dmt_bed_start(&redis, &dir, &rc, "engine", 1);
}

static void submit_n(int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char id[64];
        char *json;
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        json = dmt_job_json(id, NULL, NULL);
        free(dmt_submit(rc, json));
        free(json);
    }
}

/* Every job of the collection ended exactly once with consecutive seq. */
static void assert_exactly_once(int want_jobs, const char *want_status)
{
    struct dmt_jobevents *v;
    int n = dmt_collect(rc, &v);
    cr_assert_eq(n, want_jobs, "jobs with events: %d, want %d", n, want_jobs);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(v[i].terminal, 1, "job %s has %d terminal events", v[i].id, v[i].terminal);
        cr_assert(v[i].seq_ok, "job %s: seq not consecutive", v[i].id);
        if (want_status) {
            cr_assert_str_eq(v[i].last, want_status, "job %s ended %s", v[i].id, v[i].last);
        }
    }
    free(v);
}

static void assert_stopped_ok(struct dmt_replica *rep)
{
    int st = dmt_replica_stop(rep, 30000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "replica %s did not exit 0 (status %d); log %s", rep->name, st, rep->log);
}

static long long pending_count(void)
{
    return dmt_pending(rc, NULL);
}

/* How often the single job of the stream has been delivered, and to whom (XPENDING's extended
 * form); aborts the test when there is not exactly one pending entry. */
static long long deliveries(char *consumer, size_t n)
{
    redisReply *r = redisCommand(rc, "XPENDING dream:jobs workers - + 10");
    long long times;
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "one pending entry");
    snprintf(consumer, n, "%s", r->element[0]->element[1]->str);
    times = r->element[0]->element[3]->integer;
    freeReplyObject(r);
    return times;
}

TestSuite(engine, .init = setup, .fini = teardown, .timeout = 240);

Test(engine, three_replicas_300_jobs_end_exactly_once)
{
    struct dmt_replica reps[3];
    const char *extra[] = {"--stages=test", "--test-stage-ms=5", "--max-jobs=16", NULL};
    char name[32];

    submit_n(300, "bulk");
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        dmt_replica_start(&reps[i], &redis, dir, name, extra);
    }
    cr_assert_eq(dmt_wait_terminal(rc, 300, 120000), 300);
    for (int i = 0; i < 3; i++) {
        assert_stopped_ok(&reps[i]);
    }
    assert_exactly_once(300, "complete");
    cr_assert_eq(pending_count(), 0);
}

Test(engine, kill9_replica_jobs_finished_by_another)
{
    struct dmt_replica a, b;
    const char *slow[] = {"--stages=test", "--test-stage-ms=400", "--lease-ms=1500", NULL};
    const char *fast[] = {"--stages=test", "--test-stage-ms=20", "--lease-ms=1500", NULL};
    struct dmt_jobevents *v;
    int n, by_b = 0;

    dmt_replica_start(&a, &redis, dir, "victim", slow);
    dmt_replica_wait_ready(&a, rc, 10000);
    submit_n(10, "k9");
    /* a holds all 10, mid-stage (each announced its first stage; a stage takes 400 ms). */
    cr_assert_eq(dmt_wait_pending(rc, "victim", 10, 10000), 10);
    cr_assert_eq(dmt_wait_started(rc, 10, 10000), 10);
    cr_assert_eq(dmt_wait_terminal(rc, 0, 0), 0, "none ended before the kill");
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    dmt_replica_start(&b, &redis, dir, "rescuer", fast);
    /* After the lease (1.5 s) the rescuer's sweep (every 0.75 s) takes them over. How fast that
     * is belongs to the benchmarks; here only that it happens. */
    cr_assert_eq(dmt_wait_terminal(rc, 10, 20000), 10);
    assert_stopped_ok(&b);
    assert_exactly_once(10, "complete");
    n = dmt_collect(rc, &v);
    for (int i = 0; i < n; i++) {
        by_b += strcmp(v[i].worker, "rescuer") == 0;
    }
    free(v);
    cr_assert_eq(by_b, 10, "every job finished by the rescuer");
}

Test(engine, sigstop_past_lease_writes_are_fenced)
{
    struct dmt_replica a, b;
    const char *slow[] = {"--stages=test", "--test-stage-ms=300", "--lease-ms=1000", NULL};
    const char *fast[] = {"--stages=test", "--test-stage-ms=10", "--lease-ms=1000", NULL};

    dmt_replica_start(&a, &redis, dir, "sleeper", slow);
    dmt_replica_wait_ready(&a, rc, 10000);
    submit_n(5, "stop");
    /* Stopped while it holds all 5 mid-stage. */
    cr_assert_eq(dmt_wait_pending(rc, "sleeper", 5, 10000), 5);
    cr_assert_eq(dmt_wait_started(rc, 5, 10000), 5);
    kill(a.pid, SIGSTOP);
    dmt_replica_start(&b, &redis, dir, "thief", fast);
    cr_assert_eq(dmt_wait_terminal(rc, 5, 20000), 5);
    kill(a.pid, SIGCONT);
    /* The sleeper wakes up, tries to write or renew its leases, is refused and says so. */
    {
        long long deadline = dmt_now_ms() + 15000;
        while (dmt_count_in_file(a.log, "FENCED") + dmt_count_in_file(a.log, "taken over") == 0 &&
               dmt_now_ms() < deadline) {
            dmt_sleep_ms(20);
        }
    }
    cr_assert_gt(dmt_count_in_file(a.log, "FENCED") + dmt_count_in_file(a.log, "taken over"), 0,
                 "the sleeper noticed it lost its jobs (log %s)", a.log);
    assert_stopped_ok(&a);
    assert_stopped_ok(&b);
    assert_exactly_once(5, "complete");
}

Test(engine, redis_restart_mid_run_jobs_end_once, .init = setup_aof)
{
    struct dmt_replica reps[2];
    const char *extra[] = {"--stages=test", "--test-stage-ms=100", "--lease-ms=3000", NULL};

    submit_n(40, "rr");
    dmt_replica_start(&reps[0], &redis, dir, "ra", extra);
    dmt_replica_start(&reps[1], &redis, dir, "rb", extra);
    /* Mid-run: every job taken and started, none can be finished yet (6 stages of 100 ms). */
    cr_assert_eq(dmt_wait_pending(rc, NULL, 40, 10000), 40);
    cr_assert_eq(dmt_wait_started(rc, 40, 10000), 40);
    redisFree(rc);
    rc = NULL;
    dmt_redis_shutdown(&redis);
    /* Redis stays down until both replicas noticed and are retrying. */
    cr_assert_gt(dmt_wait_in_file(reps[0].log, "reconnecting", 1, 10000), 0, "%s", reps[0].log);
    cr_assert_gt(dmt_wait_in_file(reps[1].log, "reconnecting", 1, 10000), 0, "%s", reps[1].log);
    dmt_redis_restart(&redis);
    rc = dmt_redis_connect(&redis);
    cr_assert_eq(dmt_wait_terminal(rc, 40, 60000), 40);
    assert_stopped_ok(&reps[0]);
    assert_stopped_ok(&reps[1]);
    assert_exactly_once(40, "complete");
    cr_assert_eq(pending_count(), 0);
}

Test(engine, malformed_entries_fail_or_dead_letter_and_worker_keeps_serving)
{
    struct dmt_replica a;
    const char *extra[] = {"--stages=test", "--test-stage-ms=5", NULL};
    struct dmt_jobevents *v;
    const struct dmt_jobevents *j;
    redisReply *r;
    char *big, *json;
    size_t big_len = 10u << 20;
    int n;

    r = redisCommand(rc, "XADD dream:jobs * type build job %s", "{not json");
    freeReplyObject(r);
    r = redisCommand(rc, "XADD dream:jobs * type frobnicate job %s", "{}");
    freeReplyObject(r);
    r = redisCommand(rc, "XADD dream:jobs * type build");
    freeReplyObject(r);
    r = redisCommand(rc, "XADD dream:jobs * type build job %s",
                     "{\"jobId\":\"types\",\"specId\":1,\"userId\":\"u\",\"repoOwner\":\"o\","
                     "\"repoName\":\"r\",\"specMarkdown\":\"# x\",\"budget\":{\"maxTokens\":10,"
                     "\"maxDollars\":1},\"trustLevel\":\"builder\"}");
    freeReplyObject(r);
    r = redisCommand(rc, "XADD dream:jobs * type build job %s",
                     "{\"jobId\":\"missing\",\"specId\":\"s\"}");
    freeReplyObject(r);
    r = redisCommand(rc, "XADD dream:jobs * type build job %s",
                     "{\"jobId\":\"nan\",\"specId\":\"s\",\"userId\":\"u\",\"repoOwner\":\"o\","
                     "\"repoName\":\"r\",\"specMarkdown\":\"# x\",\"budget\":{\"maxTokens\":10,"
                     "\"maxDollars\":NaN},\"trustLevel\":\"builder\"}");
    freeReplyObject(r);
    /* A 10 MiB spec. */
    big = malloc(big_len + 200);
    memset(big, 'a', big_len);
    big[big_len] = '\0';
    json = dmt_job_json("huge", big, NULL);
    free(big);
    free(dmt_submit(rc, json));
    free(json);
    json = dmt_job_json("observer", NULL, "observer");
    free(dmt_submit(rc, json));
    free(json);
    json = dmt_job_json("fine", NULL, NULL);
    free(dmt_submit(rc, json));
    free(json);

    dmt_replica_start(&a, &redis, dir, "w", extra);
    cr_assert_eq(dmt_wait_terminal(rc, 6, 20000), 6);
    n = dmt_collect(rc, &v);
    cr_assert_eq(n, 6);
    j = dmt_find(v, n, "fine");
    cr_assert(j && strcmp(j->last, "complete") == 0, "the valid job completed");
    j = dmt_find(v, n, "types");
    cr_assert(j && strcmp(j->last, "failed") == 0);
    j = dmt_find(v, n, "missing");
    cr_assert(j && strcmp(j->last, "failed") == 0);
    j = dmt_find(v, n, "nan");
    cr_assert(j && strcmp(j->last, "failed") == 0);
    j = dmt_find(v, n, "huge");
    cr_assert(j && strcmp(j->last, "failed") == 0);
    j = dmt_find(v, n, "observer");
    cr_assert(j && strcmp(j->last, "failed") == 0);
    free(v);
    r = redisCommand(rc, "HGET dream:job:types error");
    cr_assert(r && r->type == REDIS_REPLY_STRING && strstr(r->str, "specId"), "error names field");
    freeReplyObject(r);
    r = redisCommand(rc, "HGET dream:job:huge error");
    /* The entry is over the 4 MiB cap of a whole job before its spec is even looked at. */
    cr_assert(r && r->type == REDIS_REPLY_STRING && strstr(r->str, "must be at most"), "%s",
              r && r->str ? r->str : "(nil)");
    freeReplyObject(r);
    r = redisCommand(rc, "XLEN dream:dead");
    cr_assert_eq(r->integer, 3, "not JSON, unknown type and no job field are dead letters");
    freeReplyObject(r);
    cr_assert_eq(pending_count(), 0);
    assert_stopped_ok(&a);
}

Test(engine, duplicates_are_not_run_twice)
{
    struct dmt_replica a;
    const char *extra[] = {"--stages=test", "--test-stage-ms=5", NULL};
    char *json = dmt_job_json("dup", NULL, NULL);
    struct dmt_jobevents *v;
    redisReply *r;
    int n, completes = 0;

    free(dmt_submit(rc, json));
    dmt_replica_start(&a, &redis, dir, "w", extra);
    cr_assert_eq(dmt_wait_terminal(rc, 1, 10000), 1);
    free(dmt_submit(rc, json));
    free(json);
    cr_assert(dmt_wait_event(rc, "dup", "duplicate", 10000), "the second entry is refused");
    cr_assert_eq(dmt_wait_pending(rc, NULL, 0, 10000), 0, "and acknowledged");
    assert_stopped_ok(&a);
    n = dmt_collect(rc, &v);
    cr_assert_eq(n, 1);
    cr_assert_eq(v[0].terminal, 1);
    cr_assert_str_eq(v[0].last, "duplicate");
    cr_assert(v[0].seq_ok);
    free(v);
    r = redisCommand(rc, "XRANGE dream:job:dup:events - +");
    for (size_t i = 0; i < r->elements; i++) {
        completes += strstr(r->element[i]->element[1]->element[1]->str, "\"complete\"") != NULL;
    }
    freeReplyObject(r);
    cr_assert_eq(completes, 1);
    cr_assert_eq(pending_count(), 0);
}

Test(engine, max_jobs_bounds_in_flight_and_sigterm_leaves_rest_pending)
{
    struct dmt_replica a, b;
    const char *slow[] = {"--stages=test",           "--test-stage-ms=300", "--max-jobs=3",
                          "--shutdown-grace-ms=100", "--lease-ms=1000",     NULL};
    const char *fast[] = {"--stages=test", "--test-stage-ms=5", "--lease-ms=1000", NULL};
    redisReply *r;
    long long t0;
    int st;

    submit_n(12, "cap");
    dmt_replica_start(&a, &redis, dir, "capped", slow);
    cr_assert_eq(dmt_wait_pending(rc, "capped", 3, 10000), 3, "max_jobs entries taken");
    /* Watch it across stage boundaries (where a replica with room reads more entries): until a
     * job announced its third stage, it never holds more than 3. */
    {
        long long deadline = dmt_now_ms() + 10000;
        int moved = 0;
        while (!moved && dmt_now_ms() < deadline) {
            long long held = dmt_pending(rc, "capped");
            struct dmt_jobevents *v;
            int n = dmt_collect(rc, &v);
            cr_assert_leq(held, 3, "at most max_jobs entries held, got %lld", held);
            for (int i = 0; i < n; i++) {
                moved |= v[i].n >= 2;
            }
            free(v);
            dmt_sleep_ms(20);
        }
        cr_assert(moved, "the jobs went past a stage boundary");
    }
    r = redisCommand(rc, "XPENDING dream:jobs workers - + 100 capped");
    cr_assert_eq(r->elements, 3, "at most max_jobs entries held, got %zu", r->elements);
    freeReplyObject(r);
    t0 = dmt_now_ms();
    st = dmt_replica_stop(&a, 10000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit 0 after SIGTERM");
    cr_assert_lt(dmt_now_ms() - t0, 3000);
    cr_assert_geq(pending_count(), 1, "interrupted jobs stay pending");
    dmt_replica_start(&b, &redis, dir, "after", fast);
    cr_assert_eq(dmt_wait_terminal(rc, 12, 30000), 12);
    assert_stopped_ok(&b);
    assert_exactly_once(12, "complete");
}

Test(engine, cancel_through_control_channel)
{
    struct dmt_replica a;
    /* A stage far longer than the bound below: only the broadcast can end the job in time. */
    const char *extra[] = {"--stages=test", "--test-stage-ms=20000", NULL};
    char *json = dmt_job_json("stopme", NULL, NULL);
    struct dmt_jobevents *v;
    cJSON *ev;
    redisReply *r;
    long long t0;

    free(dmt_submit(rc, json));
    free(json);
    dmt_replica_start(&a, &redis, dir, "w", extra);
    /* The plan stage is running (its checkpoint announced it). */
    cr_assert(dmt_wait_event(rc, "stopme", "planning", 10000), "the job started");
    r = redisCommand(rc, "HSET dream:job:stopme cancel 1");
    freeReplyObject(r);
    r = redisCommand(rc, "PUBLISH dream:control {\"cancel\":\"stopme\"}");
    freeReplyObject(r);
    t0 = dmt_now_ms();
    cr_assert_eq(dmt_wait_terminal(rc, 1, 5000), 1);
    cr_assert_lt(dmt_now_ms() - t0, 1500, "cancel takes effect without waiting for the stage");
    dmt_collect(rc, &v);
    cr_assert_str_eq(v[0].last, "cancelled");
    free(v);
    /* Interrupted inside the plan stage, not at the next checkpoint. */
    r = redisCommand(rc, "XREVRANGE dream:job:stopme:events + - COUNT 1");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    ev = cJSON_Parse(r->element[0]->element[1]->element[1]->str);
    freeReplyObject(r);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "step")), "plan");
    cJSON_Delete(ev);
    assert_stopped_ok(&a);
}

Test(engine, past_max_attempts_a_job_is_dead_lettered)
{
    struct dmt_replica r1, r2, r3;
    const char *slow[] = {"--stages=test", "--test-stage-ms=3000", "--lease-ms=1000",
                          "--max-attempts=2", NULL};
    struct dmt_jobevents *v;
    redisReply *r;
    char holder[64];
    int n;

    submit_n(1, "doomed");
    /* Two deliveries, each to a replica that dies mid-stage. */
    dmt_replica_start(&r1, &redis, dir, "first", slow);
    cr_assert_eq(dmt_wait_in_file(r1.log, "running entry", 1, 10000), 1, "first delivery taken");
    cr_assert_eq(deliveries(holder, sizeof(holder)), 1);
    cr_assert_str_eq(holder, "first");
    kill(r1.pid, SIGKILL);
    waitpid(r1.pid, NULL, 0);
    dmt_replica_start(&r2, &redis, dir, "second", slow);
    cr_assert_eq(dmt_wait_in_file(r2.log, "running entry", 1, 10000), 1, "second delivery taken");
    cr_assert_eq(deliveries(holder, sizeof(holder)), 2, "reclaimed after the lease");
    cr_assert_str_eq(holder, "second");
    kill(r2.pid, SIGKILL);
    waitpid(r2.pid, NULL, 0);
    /* The third delivery is past --max-attempts=2. */
    dmt_replica_start(&r3, &redis, dir, "third", slow);
    cr_assert_eq(dmt_wait_terminal(rc, 1, 20000), 1);
    assert_stopped_ok(&r3);
    n = dmt_collect(rc, &v);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].last, "dead_lettered");
    cr_assert_eq(v[0].terminal, 1);
    cr_assert(v[0].seq_ok);
    free(v);
    r = redisCommand(rc, "XRANGE dream:dead - +");
    cr_assert_eq(r->elements, 1);
    cr_assert_not_null(strstr(r->element[0]->element[1]->element[5]->str, "max 2"), "reason");
    freeReplyObject(r);
    cr_assert_eq(pending_count(), 0, "acknowledged");
}

Test(engine, worker_heartbeat_hash_has_a_ttl)
{
    struct dmt_replica a;
    const char *extra[] = {"--stages=test", "--lease-ms=3000", NULL};
    redisReply *r;

    dmt_replica_start(&a, &redis, dir, "beat", extra);
    dmt_replica_wait_ready(&a, rc, 10000);
    r = redisCommand(rc, "PTTL dream:worker:beat");
    cr_assert(r->integer > 0 && r->integer <= 3000, "ttl %lld", r->integer);
    freeReplyObject(r);
    r = redisCommand(rc, "HGET dream:worker:beat version");
    cr_assert_str_eq(r->str, DREAM_VERSION);
    freeReplyObject(r);
    assert_stopped_ok(&a);
}

Test(engine, a_stage_past_its_deadline_is_stopped_retried_then_failed)
{
    struct dmt_replica a;
    const char *extra[] = {"--stages=test", "--test-stage-ms=5000", "--stage-timeout-ms=400", NULL};
    struct dmt_jobevents *v;
    redisReply *r;
    long long t0 = dmt_now_ms();
    int retrying = 0;

    submit_n(1, "slowpoke");
    dmt_replica_start(&a, &redis, dir, "w", extra);
    cr_assert_eq(dmt_wait_terminal(rc, 1, 30000), 1);
    /* 4 tries of 0.4 s with 1 s, 2 s and 4 s between them, far less than one 5 s stage. */
    cr_assert_lt(dmt_now_ms() - t0, 15000);
    dmt_collect(rc, &v);
    cr_assert_str_eq(v[0].last, "failed");
    cr_assert(v[0].seq_ok);
    free(v);
    r = redisCommand(rc, "XRANGE dream:job:slowpoke-0:events - +");
    for (size_t i = 0; i < r->elements; i++) {
        retrying += strstr(r->element[i]->element[1]->element[1]->str, "\"retrying\"") != NULL;
    }
    freeReplyObject(r);
    cr_assert_eq(retrying, 3, "the stage was retried 3 times");
    r = redisCommand(rc, "HGET dream:job:slowpoke-0 error");
    cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "passed its deadline of 400 ms"),
              "%s", r->str ? r->str : "(nil)");
    freeReplyObject(r);
    assert_stopped_ok(&a);
}

/* An operator trims the jobs stream under a running job (XTRIM dream:jobs MAXLEN 0): the job
 * ends dead_lettered with a dead letter that carries its job, and `dreamctl dead requeue` runs
 * it again to completion. Before, the owner's heartbeat dropped the job and its hash said
 * `running` forever. */
/* A job whose entry was trimmed away ended dead_lettered: the hash says so, one dead letter
 * carries the job and names the deletion, nothing stays pending, and `dreamctl dead requeue`
 * runs the job to `complete`. */
static void assert_dead_lettered_then_requeued(const char *id)
{
    char cmd[2048], want[160];
    redisReply *r;
    char *dead_id;
    int code;

    cr_assert(dmt_wait_event(rc, id, "dead_lettered", 15000), "the job ended");
    r = redisCommand(rc, "HGET dream:job:%s status", id);
    cr_assert_str_eq(r->str, "dead_lettered", "the hash says so too");
    freeReplyObject(r);
    r = redisCommand(rc, "ZSCORE dream:idx:status:running %s", id);
    cr_assert_eq(r->type, REDIS_REPLY_NIL, "the index no longer lists it running");
    freeReplyObject(r);
    r = redisCommand(rc, "XRANGE dream:dead - +");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "one dead letter");
    dead_id = strdup(r->element[0]->element[0]->str);
    snprintf(want, sizeof(want), "\"jobId\":\"%s\"", id);
    cr_assert_not_null(strstr(r->element[0]->element[1]->element[3]->str, want),
                       "the dead letter carries the job: %s",
                       r->element[0]->element[1]->element[3]->str);
    cr_assert_not_null(strstr(r->element[0]->element[1]->element[5]->str, "deleted"), "%s",
                       r->element[0]->element[1]->element[5]->str);
    freeReplyObject(r);
    cr_assert_eq(pending_count(), 0, "acknowledged");

    snprintf(cmd, sizeof(cmd), "'%s/dreamctl' --redis-url='%s' dead requeue %s --by ops >/dev/null",
             dmt_binary_dir(), dmt_redis_url(&redis), dead_id);
    code = system(cmd);
    cr_assert_eq(code, 0, "%s", cmd);
    cr_assert(dmt_wait_event(rc, id, "complete", 20000), "the requeued job completes");
    free(dead_id);
}

static void trim_the_jobs_stream(void)
{
    redisReply *r = redisCommand(rc, "XTRIM dream:jobs MAXLEN 0");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "the entry is gone");
    freeReplyObject(r);
}

Test(engine, an_entry_trimmed_under_a_running_job_ends_it_dead_lettered_and_requeue_runs_it)
{
    struct dmt_replica a;
    const char *extra[] = {"--stages=test", "--test-stage-ms=1500", "--lease-ms=1000", NULL};
    char *json = dmt_job_json("trimmed", NULL, NULL);

    free(dmt_submit(rc, json));
    free(json);
    dmt_replica_start(&a, &redis, dir, "w", extra);
    cr_assert(dmt_wait_event(rc, "trimmed", "planning", 10000), "the job runs");
    trim_the_jobs_stream();
    assert_dead_lettered_then_requeued("trimmed");
    assert_stopped_ok(&a);
}

/* The owner died, then its entry was trimmed: only the reclaim sweep of another replica sees
 * it (XAUTOCLAIM lists it as deleted). The job must still end, not stay `running` forever. */
Test(engine, an_entry_trimmed_after_its_replica_died_ends_its_job_dead_lettered_and_requeue_runs_it)
{
    struct dmt_replica a, b;
    const char *slow[] = {"--stages=test", "--test-stage-ms=3000", "--lease-ms=1000", NULL};
    const char *fast[] = {"--stages=test", "--test-stage-ms=20", "--lease-ms=1000", NULL};
    char *json = dmt_job_json("orphan", NULL, NULL);

    free(dmt_submit(rc, json));
    free(json);
    dmt_replica_start(&a, &redis, dir, "gone", slow);
    cr_assert(dmt_wait_event(rc, "orphan", "planning", 10000), "the job runs");
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    trim_the_jobs_stream();
    cr_assert_eq(pending_count(), 1, "still pending for the dead replica");
    dmt_replica_start(&b, &redis, dir, "sweeper", fast);
    assert_dead_lettered_then_requeued("orphan");
    assert_stopped_ok(&b);
}

/* The most jobs that ran at once, from the events the replica wrote: a job runs from its first
 * event to its terminal one (an end and a start at the same millisecond do not overlap). */
static int peak_running(void)
{
    redisReply *r = redisCommand(rc, "XRANGE dream:events - +");
    struct span {
        char id[130];
        long long from, to;
    } *v = calloc(r->elements + 1, sizeof(*v));
    int n = 0, peak = 0;

    for (size_t i = 0; i < r->elements; i++) {
        cJSON *ev = cJSON_Parse(r->element[i]->element[1]->element[1]->str);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "jobId"));
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status"));
        long long ts = dmt_world_ts_ms(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "ts")));
        int k = 0;
        cr_assert(id && st && ts > 0, "event %zu readable", i);
        while (k < n && strcmp(v[k].id, id) != 0) {
            k++;
        }
        if (k == n) {
            snprintf(v[n].id, sizeof(v[n].id), "%s", id);
            v[n].from = ts;
            n++;
        }
        if (strcmp(st, "complete") == 0 || strcmp(st, "failed") == 0 ||
            strcmp(st, "dead_lettered") == 0 || strcmp(st, "cancelled") == 0) {
            v[k].to = ts;
        }
        cJSON_Delete(ev);
    }
    for (int i = 0; i < n; i++) {
        int at = 0;
        cr_assert_gt(v[i].to, 0, "job %s ended", v[i].id);
        for (int k = 0; k < n; k++) {
            at += v[k].from <= v[i].from && v[i].from < v[k].to;
        }
        peak = at > peak ? at : peak;
    }
    free(v);
    freeReplyObject(r);
    return peak;
}

/* max_jobs is a hard bound: the reclaim sweep (XAUTOCLAIM COUNT=free) and the blocking read
 * (XREADGROUP COUNT=free) must not both fill the same free slots. A dead consumer left entries
 * idle past the lease; the replica's read blocks on an empty stream while its sweep claims them;
 * then new entries arrive for the read. */
Test(engine, max_jobs_holds_when_the_sweep_and_the_read_race_for_the_same_slots)
{
    struct dmt_replica a;
    const char *extra[] = {"--stages=test", "--test-stage-ms=500", "--lease-ms=1000",
                           "--max-jobs=2", NULL};
    long long deadline;
    redisReply *r;
    int peak;

    freeReplyObject(redisCommand(rc, "XGROUP CREATE dream:jobs workers 0 MKSTREAM"));
    submit_n(3, "orphan");
    r = redisCommand(rc, "XREADGROUP GROUP workers ghost COUNT 3 STREAMS dream:jobs >");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "the dead consumer took the entries");
    freeReplyObject(r);
    /* Idle past the lease: ready for XAUTOCLAIM. */
    deadline = dmt_now_ms() + 10000;
    for (size_t idle = 0; idle < 3 && dmt_now_ms() < deadline; dmt_sleep_ms(50)) {
        r = redisCommand(rc, "XPENDING dream:jobs workers IDLE 1000 - + 10");
        idle = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        freeReplyObject(r);
    }
    dmt_replica_start(&a, &redis, dir, "bounded", extra);
    dmt_replica_wait_ready(&a, rc, 10000);
    cr_assert(dmt_wait_event(rc, "orphan-0", "started", 10000), "the sweep reclaimed; log %s",
              a.log);
    submit_n(3, "fresh");
    cr_assert_eq(dmt_wait_terminal(rc, 6, 60000), 6, "every job ends; log %s", a.log);
    peak = peak_running();
    cr_assert_leq(peak, 2, "at most max_jobs=2 jobs ran at once, saw %d", peak);
    cr_assert_eq(peak, 2, "the replica was kept busy");
    assert_stopped_ok(&a);
    assert_exactly_once(6, "complete");
}
