/*
 * Hardening end to end (issue 14): model output that would take a replica down fails its own job
 * and the replica goes on serving. The real dreamd against a real redis-server, the fake
 * OpenRouter (scripted to answer a hostile migration), the fake GitHub and a bare repository.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "dme2e.h"
#include "dream/core/buf.h"
#include "githttp.h"

static struct dmt_world world;

static void setup(void)
{
    dmt_world_start(&world, NULL);
}

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(hardening, .init = setup, .fini = teardown, .timeout = 240);

#if defined(__SANITIZE_ADDRESS__)
#define DMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DMT_ASAN 1
#endif
#endif

/* Starts a replica whose memory is capped: under AddressSanitizer (which reserves terabytes of
 * address space, so `ulimit -v` cannot apply) by ASan's own hard RSS limit, else by
 * RLIMIT_AS (`prlimit`, the `ulimit -v` of a running process). Past the cap the replica dies. */
static void capped_replica(struct dmt_replica *rep, unsigned mib)
{
#ifdef DMT_ASAN
    const char *old = getenv("ASAN_OPTIONS");
    char *saved = old ? strdup(old) : NULL;
    char opts[512];
    snprintf(opts, sizeof(opts), "%s%shard_rss_limit_mb=%u", old ? old : "", old ? ":" : "", mib);
    setenv("ASAN_OPTIONS", opts, 1);
    dmt_world_replica(&world, rep, "capped", NULL);
    if (saved) {
        setenv("ASAN_OPTIONS", saved, 1);
        free(saved);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
#else
    char cmd[128];
    dmt_world_replica(&world, rep, "capped", NULL);
    snprintf(cmd, sizeof(cmd), "prlimit --pid %d --as=%llu", (int)rep->pid,
             (unsigned long long)mib << 20);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
#endif
}

static void submit(const char *id, const char *spec)
{
    char *job = dmt_world_job(id, spec, "builder", 200000, 5.0);
    redisReply *r = redisCommand(world.rc, "XADD dream:jobs * type build job %s", job);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD");
    freeReplyObject(r);
    free(job);
}

/* `CREATE TABLE t AS SELECT randomblob(900000000), ...` run by a validator would allocate
 * gigabytes on the replica; redelivered, it would kill every replica in turn. It must fail its
 * job as that job's error, and the same replica must serve the next job. */
Test(hardening, a_migration_that_copies_rows_fails_its_job_and_the_replica_serves_the_next)
{
    static const char spec[] = "# Blob Farm\n\nStore blobs.\n\n## Database\n- blobs table\n";
    struct dmt_replica rep;
    char *err;
    char *status;

    dmt_fakeor_script(&world.llm,
                      "[{\"match\": \"migrations/\", \"behaviour\": \"reply\", \"content\": "
                      "\"CREATE TABLE blobs AS SELECT randomblob(900000000) AS a, "
                      "randomblob(900000000) AS b;\\n\"}]");
    capped_replica(&rep, 512);
    submit("h-blob", spec);
    cr_assert(dmt_world_wait_status(&world, "h-blob", "failed,dead_lettered,complete", 90000),
              "the job ended");
    status = dmt_world_hget(&world, "h-blob", "status");
    cr_assert_str_eq(status, "failed", "the job failed as its own error, not a dead replica");
    err = dmt_world_hget(&world, "h-blob", "error");
    cr_assert_not_null(strstr(err, "migrations/"), "names the file: %s", err);
    cr_assert_not_null(strstr(err, "CREATE TABLE ... AS copies the rows of a query"), "%s", err);
    free(err);
    free(status);
    cr_assert_eq(kill(rep.pid, 0), 0, "the replica is still alive");

    /* The same replica serves the next job. */
    dmt_fakeor_script(&world.llm, "[]");
    submit("h-next", NULL);
    cr_assert(dmt_world_wait_status(&world, "h-next", "complete", 90000), "next job completes");
    cr_assert_eq(kill(rep.pid, 0), 0);
    cr_assert_eq(dmt_replica_stop(&rep, 10000), 0, "exits cleanly");
}

/* `usage.cost: 1e999` (infinity to a JSON parser) on every reply: never stored, never an `inf`
 * in an event; the cost comes from the price table and the budget still holds. */
Test(hardening, an_infinite_cost_from_the_api_leaves_valid_events_and_a_budget_that_holds)
{
    struct dmt_replica rep;
    cJSON *events;
    char *cost;
    char *status;
    double spent;

    dmt_fakeor_script(&world.llm, "[{\"match\": \"\", \"behaviour\": \"usage-bomb\"}]");
    dmt_world_replica(&world, &rep, "bomb", NULL);
    submit("h-bomb", NULL);
    cr_assert(dmt_world_wait_status(&world, "h-bomb", "complete,failed,dead_lettered", 90000));
    status = dmt_world_hget(&world, "h-bomb", "status");
    cr_assert_str_eq(status, "complete");
    cr_assert_gt(dmt_fakeor_behaviour_count(&world.llm, "usage-bomb"), 0, "the fake sent 1e999");
    /* dmt_world_events parses every event: an "inf" or "nan" would not be JSON. */
    events = dmt_world_events(&world, "h-bomb");
    cr_assert_gt(cJSON_GetArraySize(events), 3);
    for (int i = 0; i < cJSON_GetArraySize(events); i++) {
        const cJSON *c = cJSON_GetObjectItem(cJSON_GetArrayItem(events, i), "costUsd");
        cr_assert(cJSON_IsNumber(c) && c->valuedouble >= 0 && c->valuedouble <= 5.0,
                  "event %d costUsd within the budget", i);
    }
    cost = dmt_world_hget(&world, "h-bomb", "cost");
    spent = strtod(cost, NULL);
    cr_assert(spent > 0 && spent <= 5.0, "cost %s: priced from the table, within the budget", cost);
    cr_assert_gt(dmt_count_in_file(rep.log, "usage out of range"), 0, "a warning was logged");
    cJSON_Delete(events);
    free(cost);
    free(status);
    cr_assert_eq(dmt_replica_stop(&rep, 10000), 0);
}

/* The per-file limit (256 KiB) holds on what was generated, not only on the plan: a 600 KB
 * file fails the job with the limit named, and nothing is pushed. */
Test(hardening, a_600_kb_generated_file_fails_the_job_with_the_limit_named)
{
    static const char spec[] = "# Big Table\n\nOne big migration.\n\n## Database\n- blobs table\n";
    struct dmt_replica rep;
    char *job, *status, *err;
    redisReply *r;

    dmt_fakeor_script(
        &world.llm,
        "[{\"match\": \"migrations/\", \"behaviour\": \"huge\", \"param\": \"600000\"}]");
    dmt_world_replica(&world, &rep, "big", NULL);
    job = dmt_world_job("h-big", spec, "builder", 2000000, 50.0);
    r = redisCommand(world.rc, "XADD dream:jobs * type build job %s", job);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD");
    freeReplyObject(r);
    free(job);
    cr_assert(dmt_world_wait_status(&world, "h-big", "complete,failed,dead_lettered", 90000));
    status = dmt_world_hget(&world, "h-big", "status");
    cr_assert_str_eq(status, "failed");
    err = dmt_world_hget(&world, "h-big", "error");
    cr_assert_not_null(strstr(err, "migrations/"), "names the file: %s", err);
    cr_assert_not_null(strstr(err, "at most 262144 bytes (got 6000"), "names the limit: %s", err);
    cr_assert_null(dmt_world_branch_files(&world, "dream/big-table"), "nothing pushed");
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "huge"), 1, "not repaired: refused");
    free(err);
    free(status);
    cr_assert_eq(dmt_replica_stop(&rep, 10000), 0);
}

/* A git server that accepts connections and never answers: each git operation against it holds
 * a threadpool thread until its connection dies. Prints "accepted" per connection. */
static pid_t silent_git_server(const char *log, int *port)
{
    char *const argv[] = {"python3", "-c",
                          "import socket,sys\n"
                          "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(64)\n"
                          "print('PORT=%d' % s.getsockname()[1], flush=True)\n"
                          "held=[]\n"
                          "while True:\n"
                          "    c,_=s.accept(); held.append(c); print('accepted', flush=True)\n",
                          NULL};
    pid_t pid = dmt_spawn(argv, NULL, log);
    char *line = NULL;

    cr_assert(dmt_wait_in_file(log, "PORT=", 1, 10000), "the silent server started");
    line = dmt_sh("sed -n 's/^PORT=//p' '%s'", log);
    *port = atoi(line);
    free(line);
    return pid;
}

/* Git work never starves the rest of the replica: four git operations hang on a silent server,
 * Redis is killed and restarted, and the replica is back on Redis within 10 s (name resolution
 * for the reconnect runs on the same threadpool as git). */
Test(hardening, git_hanging_on_a_silent_server_does_not_stop_the_redis_reconnect)
{
    struct dmt_replica rep;
    char log[1024], url[256], spec[128], id[32];
    int port = 0;
    pid_t srv;
    int connected;

    snprintf(log, sizeof(log), "%s/silent.log", world.dir);
    srv = silent_git_server(log, &port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/{owner}/{repo}.git", port);
    dmt_world_replica_git(&world, &rep, "silent", url, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "h-silent-%d", i);
        snprintf(spec, sizeof(spec), "# Silent %d\n\n## API\n- GET /s%d answers\n", i, i);
        submit(id, spec);
    }
    /* Git work is under way against the silent server (each reads the base first). */
    cr_assert(dmt_wait_in_file(log, "accepted", 2, 30000), "git connected to the silent server");
    connected = dmt_count_in_file(rep.log, ": connected");
    dmt_redis_kill(&world.redis);
    cr_assert(dmt_wait_in_file(rep.log, "reconnecting in", 1, 10000), "the loss was noticed");
    dmt_redis_restart(&world.redis);
    cr_assert(dmt_wait_in_file(rep.log, ": connected", connected + 3, 10000),
              "all three Redis connections are back within 10 s while git hangs (log %s)", rep.log);
    dmt_stop(srv, SIGKILL, 3000);
    kill(rep.pid, SIGKILL);
    dmt_replica_stop(&rep, 10000);
}

/* The consumer group's pending count and whether it has been delivered everything the stream
 * ever held (last-delivered-id == last-generated-id): the replica has caught up. */
static int group_caught_up(void)
{
    redisReply *g = redisCommand(world.rc, "XINFO GROUPS dream:jobs");
    redisReply *s = redisCommand(world.rc, "XINFO STREAM dream:jobs");
    const char *delivered = NULL, *generated = NULL;
    long long pending = -1;
    int ok;

    for (size_t i = 0; g && g->type == REDIS_REPLY_ARRAY && i < g->elements; i++) {
        const redisReply *f = g->element[i];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "pending") == 0) {
                pending = f->element[k + 1]->integer;
            } else if (strcmp(f->element[k]->str, "last-delivered-id") == 0) {
                delivered = f->element[k + 1]->str;
            }
        }
    }
    for (size_t k = 0; s && s->type == REDIS_REPLY_ARRAY && k + 1 < s->elements; k += 2) {
        if (strcmp(s->element[k]->str, "last-generated-id") == 0) {
            generated = s->element[k + 1]->str;
        }
    }
    ok = pending == 0 && delivered && generated && strcmp(delivered, generated) == 0;
    freeReplyObject(g);
    freeReplyObject(s);
    return ok;
}

static long long key_exists(const char *key)
{
    redisReply *r = redisCommand(world.rc, "EXISTS %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* A consumer group destroyed and re-created (from 0) after a finished job's hash expired must
 * not run that job again: its entry left the stream when it was acknowledged. */
Test(hardening, a_recreated_consumer_group_does_not_run_a_finished_job_again)
{
    static const char marker[] = "# Marker\n\nA later job.\n\n## API\n- GET /marker answers\n";
    struct dmt_replica rep;
    char *status;
    redisReply *r;
    long long until;

    dmt_world_replica(&world, &rep, "regroup-a", NULL);
    submit("h-once", NULL);
    cr_assert(dmt_world_wait_status(&world, "h-once", "complete,failed,dead_lettered", 120000));
    status = dmt_world_hget(&world, "h-once", "status");
    cr_assert_str_eq(status, "complete");
    free(status);
    cr_assert_eq(dmt_world_pr_count(&world), 1);
    cr_assert_eq(dmt_replica_stop(&rep, 10000), 0);

    /* The job's keys expire (its TTL), then an operator destroys the group. */
    r = redisCommand(world.rc,
                     "DEL dream:job:h-once dream:job:h-once:events dream:job:h-once:files");
    freeReplyObject(r);
    r = redisCommand(world.rc, "XGROUP DESTROY dream:jobs workers");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "group destroyed");
    freeReplyObject(r);

    /* A replica starts, re-creates the group from 0 and serves a later job. */
    dmt_world_replica(&world, &rep, "regroup-b", NULL);
    submit("h-marker", marker);
    cr_assert(dmt_world_wait_status(&world, "h-marker", "complete,failed,dead_lettered", 120000));
    status = dmt_world_hget(&world, "h-marker", "status");
    cr_assert_str_eq(status, "complete");
    free(status);
    until = dmt_now_ms() + 30000;
    while (!group_caught_up() && dmt_now_ms() < until) {
        dmt_sleep_ms(50);
    }
    cr_assert(group_caught_up(), "the group has delivered everything and nothing is pending");
    cr_assert_gt(dmt_count_in_file(rep.log, "created consumer group"), 0, "the group was made");

    /* The finished job did not run again: no hash, no events, one pull request each. */
    cr_assert_eq(key_exists("dream:job:h-once"), 0, "the finished job's hash was not re-created");
    cr_assert_eq(key_exists("dream:job:h-once:events"), 0, "no event for the finished job");
    cr_assert_eq(dmt_world_pr_count(&world), 2, "one PR for each job");
    cr_assert_eq(dmt_world_gh_requests(&world, "POST", "/pulls"), 2, "no second PR request");
    r = redisCommand(world.rc, "XLEN dream:jobs");
    cr_assert_eq(r->integer, 0, "finished entries leave the stream");
    freeReplyObject(r);
    cr_assert_eq(dmt_replica_stop(&rep, 10000), 0);
}

/* A migration built to run the SQL check to its 2 s deadline (each ALTER TABLE ... RENAME
 * re-checks the whole schema): the check runs off the loop (validate_run's threadpool work; see
 * validate_run::a_sql_check_at_its_time_limit_runs_off_the_loop_and_fails_naming_the_limit for
 * /healthz) and the job fails with the time limit named. */
Test(hardening, a_migration_that_runs_the_sql_check_to_its_deadline_fails_naming_the_limit)
{
    static const char spec[] = "# Slow Schema\n\nMany tables.\n\n## Database\n- wide tables\n";
    struct dm_buf sql;
    /* The reply (~150 KB) fits in one generation. */
    const char *extra[] = {"--max-tokens=60000", NULL};
    struct dmt_replica rep;
    cJSON *rules, *rule;
    char *script, *status, *err, *job;
    redisReply *r;

    dm_buf_init(&sql, 0);
    /* Wide tables: each rename re-parses all of their text, while SQLite's step count (the
     * work limit) grows only with their number, so the time limit comes first. */
    for (int t = 0; t < 150; t++) {
        dm_buf_printf(&sql, "CREATE TABLE t%d (", t);
        for (int c = 0; c < 120; c++) {
            dm_buf_printf(&sql, "%sc%d INT", c ? ", " : "", c);
        }
        dm_buf_printf(&sql, ");\n");
    }
    for (int t = 0; t < 150; t++) {
        dm_buf_printf(&sql, "ALTER TABLE t%d RENAME TO u%d;\n", t, t);
    }
    for (int t = 0; t < 150; t++) {
        dm_buf_printf(&sql, "ALTER TABLE u%d RENAME TO t%d;\n", t, t);
    }
    rules = cJSON_CreateArray();
    rule = cJSON_CreateObject();
    cJSON_AddStringToObject(rule, "match", "migrations/");
    cJSON_AddStringToObject(rule, "behaviour", "reply");
    cJSON_AddStringToObject(rule, "content", sql.data);
    cJSON_AddItemToArray(rules, rule);
    script = cJSON_PrintUnformatted(rules);
    dmt_fakeor_script(&world.llm, script);
    dmt_world_replica(&world, &rep, "slowsql", extra);
    job = dmt_world_job("h-slowsql", spec, "builder", 2000000, 50.0);
    r = redisCommand(world.rc, "XADD dream:jobs * type build job %s", job);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD");
    freeReplyObject(r);
    free(job);
    cr_assert(dmt_world_wait_status(&world, "h-slowsql", "failed,dead_lettered,complete", 120000),
              "the job ended; log %s", rep.log);
    status = dmt_world_hget(&world, "h-slowsql", "status");
    cr_assert_str_eq(status, "failed");
    err = dmt_world_hget(&world, "h-slowsql", "error");
    cr_assert_not_null(strstr(err, "migrations/"), "names the file: %s", err);
    cr_assert_not_null(strstr(err, "the SQL check passed its time limit (2 s)"), "%s", err);
    cr_assert_null(dmt_world_branch_files(&world, "dream/slow-schema"), "nothing pushed");
    cr_assert_eq(kill(rep.pid, 0), 0, "the replica is still alive");
    cr_assert_eq(dmt_replica_stop(&rep, 10000), 0);
    free(err);
    free(status);
    free(script);
    cJSON_Delete(rules);
    dm_buf_free(&sql);
}

/* A git server in front of the world's smart-HTTP server: requests for /silent/ repositories
 * are accepted and never answered (prints "held", then "closed" if the client gives up); the
 * others are passed through to upstream_port. */
static pid_t silent_for_one_repo(const char *log, int upstream_port, int *port)
{
    char up[16];
    char *const argv[] = {"python3", "-c",
                          "import socket,sys,threading\n"
                          "up=int(sys.argv[1])\n"
                          "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(64)\n"
                          "print('PORT=%d' % s.getsockname()[1], flush=True)\n"
                          "def pump(a,b):\n"
                          "    try:\n"
                          "        while True:\n"
                          "            d=a.recv(65536)\n"
                          "            if not d: break\n"
                          "            b.sendall(d)\n"
                          "    except OSError: pass\n"
                          "    try: b.shutdown(socket.SHUT_WR)\n"
                          "    except OSError: pass\n"
                          "def serve(c):\n"
                          "    first=c.recv(65536)\n"
                          "    if b'/silent/' in first.split(b'\\r\\n',1)[0]:\n"
                          "        print('held', flush=True)\n"
                          "        while c.recv(65536): pass\n"
                          "        print('closed', flush=True)\n"
                          "        return\n"
                          "    u=socket.create_connection(('127.0.0.1',up)); u.sendall(first)\n"
                          "    threading.Thread(target=pump,args=(u,c),daemon=True).start()\n"
                          "    pump(c,u)\n"
                          "while True:\n"
                          "    c,_=s.accept()\n"
                          "    threading.Thread(target=serve,args=(c,),daemon=True).start()\n",
                          up, NULL};
    pid_t pid;
    char *line;

    snprintf(up, sizeof(up), "%d", upstream_port);
    pid = dmt_spawn(argv, NULL, log);
    cr_assert(dmt_wait_in_file(log, "PORT=", 1, 10000), "the proxy started");
    line = dmt_sh("sed -n 's/^PORT=//p' '%s'", log);
    *port = atoi(line);
    free(line);
    return pid;
}

/* A stage past its deadline gives back its job slot: with max_jobs 1, a job whose base read
 * hangs on a silent git server ends failed at the deadline (plus the grace to stop), with the
 * deadline named, while its git call is still blocked; the next job (another repository on the
 * same server) then runs to completion. When the blocked call finally returns, its result is
 * discarded (the replica exits cleanly, sanitizers included). */
Test(hardening, a_stage_past_its_deadline_gives_back_its_slot_while_its_git_call_still_hangs)
{
    const char *extra[] = {"--max-jobs=1", "--stage-timeout-ms=2000", NULL};
    struct dmt_githttp g;
    struct dmt_replica rep;
    char log[1024], url[256];
    char *job, *status, *err;
    cJSON *o;
    redisReply *r;
    int port = 0;
    pid_t proxy;

    dmt_world_serve_http(&world, &g);
    snprintf(log, sizeof(log), "%s/proxy.log", world.dir);
    proxy = silent_for_one_repo(log, g.port, &port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/git/{owner}/{repo}.git", port);
    dmt_world_replica_git(&world, &rep, "deadline", url, NULL, extra);

    /* The first job is on silent/app: its base read hangs. */
    job = dmt_world_job("h-hang", NULL, "builder", 200000, 5.0);
    o = cJSON_Parse(job);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "repoOwner", cJSON_CreateString("silent"));
    free(job);
    job = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r = redisCommand(world.rc, "XADD dream:jobs * type build job %s", job);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD");
    freeReplyObject(r);
    free(job);
    submit("h-after", NULL);
    cr_assert(dmt_wait_in_file(log, "held", 1, 30000), "git reached the silent repository");

    cr_assert(dmt_world_wait_status(&world, "h-hang", "failed,complete,dead_lettered", 30000),
              "the hanging job ended at its deadline; log %s", rep.log);
    status = dmt_world_hget(&world, "h-hang", "status");
    cr_assert_str_eq(status, "failed");
    err = dmt_world_hget(&world, "h-hang", "error");
    cr_assert_not_null(strstr(err, "stage plan passed its deadline of 2000 ms"), "%s", err);
    free(err);
    free(status);

    cr_assert(dmt_world_wait_status(&world, "h-after", "complete,failed,dead_lettered", 120000),
              "the next job ran in the freed slot; log %s", rep.log);
    status = dmt_world_hget(&world, "h-after", "status");
    cr_assert_str_eq(status, "complete");
    free(status);
    cr_assert_eq(dmt_world_pr_count(&world), 1, "its pull request is open");
    cr_assert_eq(dmt_count_in_file(log, "closed"), 0, "the first git call is still blocked");

    /* The silent server goes away: the blocked call returns to a job that is gone. */
    dmt_stop(proxy, SIGKILL, 3000);
    cr_assert_eq(dmt_replica_stop(&rep, 20000), 0, "clean exit; log %s", rep.log);
    dmt_githttp_stop(&g);
}
