/*
 * Safety gate end to end (issues 6 and 8): the real dreamd against a real redis-server, the fake
 * OpenRouter (scripted to write destructive SQL, secrets, or to stall), the fake GitHub and a
 * bare git repository. Destructive output parks the job until an approver acts (approve resumes
 * it on any replica without regenerating a file, reject ends it with nothing pushed); secrets
 * in generated files fail the job without leaking; trust levels and signed jobs are enforced in
 * the worker; a cancel in the middle of generation ends the job `cancelled`.
 * Approver actions run the very Lua scripts dreamctl runs (dream/scripts.h) with EVAL.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "dme2e.h"
#include "dream/domain/auth.h"
#include "dream/domain/jobreq.h"
#include "dream/core/error.h"
#include "dream/core/log.h"
#include "dream/domain/scripts.h"

static struct dmt_world world;

static void setup(void)
{
    dmt_world_start(&world, NULL);
}

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(gate, .init = setup, .fini = teardown, .timeout = 240);

/* A spec whose one database item the fake answers with a destructive migration. */
#define DROP_SPEC                                                                                  \
    "# Drop Users\n\nRetire the legacy accounts.\n\n## Database\n- legacy users table\n"
#define DROP_PATH "migrations/0001_create_users.sql"
#define DROP_SQL "-- retire the legacy table\nDROP TABLE users;\n"

/* Secrets the fake writes into generated files (test values of the real shapes). */
#define AWS_KEY "AKIAZ7Q3X9K2M5N8P4R6"
#define GH_SECRET "ghp_Q9w8E7r6T5y4U3i2O1p0A9s8D7f6G5h4J3k2"
#define SECRET_SPEC                                                                                \
    "# Keys API\n\nLists keys.\n\n## API\n- GET /keys returns keys\n\n## UI\n- KeyList "           \
    "component\n"
#define SECRET_ROUTE "src/routes/keys.ts"
#define SECRET_COMPONENT "src/components/KeyList.tsx"

/* ---- helpers ---- */

static void submit(const char *id, const char *spec, const char *trust, const char *token)
{
    char *job = dmt_world_job(id, spec, trust, 200000, 5.0);
    redisReply *r;
    if (token) {
        r = redisCommand(world.rc, "XADD dream:jobs * type build job %s token %s", job, token);
    } else {
        r = redisCommand(world.rc, "XADD dream:jobs * type build job %s", job);
    }
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD");
    freeReplyObject(r);
    free(job);
}

/* Tells the fake OpenRouter to answer the request for target path `path` with content. */
static void script_reply(const char *rules_json)
{
    dmt_fakeor_script(&world.llm, rules_json);
}

static char *reply_rule(const char *path, const char *content)
{
    cJSON *a = cJSON_CreateArray();
    cJSON *o = cJSON_CreateObject();
    char match[512];
    char *s;
    snprintf(match, sizeof(match), "Target path: `%s`", path);
    cJSON_AddStringToObject(o, "match", match);
    cJSON_AddStringToObject(o, "behaviour", "reply");
    cJSON_AddStringToObject(o, "content", content);
    cJSON_AddItemToArray(a, o);
    s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

static long long pending_entries(void)
{
    redisReply *r = redisCommand(world.rc, "XPENDING dream:jobs workers");
    long long n;
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1, "XPENDING");
    n = r->element[0]->integer;
    freeReplyObject(r);
    return n;
}

static int is_parked(const char *id)
{
    redisReply *r = redisCommand(world.rc, "ZSCORE dream:parked %s", id);
    int parked = r && r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return parked;
}

static void now_args(char *ts, size_t tn, char *ms, size_t mn)
{
    long long now = dm_time_now_ms();
    dm_time_rfc3339(now, ts, tn);
    snprintf(ms, mn, "%lld", now);
}

/* EVAL of the approve script, exactly as dreamctl approve does it. Returns the reply. */
static redisReply *approve(const char *id, const char *who)
{
    char ts[64], ms[32];
    now_args(ts, sizeof(ts), ms, sizeof(ms));
    return redisCommand(world.rc,
                        "EVAL %s 5 dream:job:%s dream:job:%s:events dream:events dream:jobs "
                        "dream:parked %s %s %s %s dream:events 100000 1000",
                        dm_script_approve, id, id, id, who, ts, ms);
}

static redisReply *reject(const char *id, const char *who, const char *reason)
{
    char ts[64], ms[32];
    now_args(ts, sizeof(ts), ms, sizeof(ms));
    return redisCommand(world.rc,
                        "EVAL %s 5 dream:job:%s dream:job:%s:events dream:events dream:parked "
                        "dream:job:%s:files %s %s %s %s dream:events 100000 1000 %s 604800",
                        dm_script_reject, id, id, id, id, who, ts, ms, reason);
}

static redisReply *cancel(const char *id, const char *who)
{
    char ts[64], ms[32];
    now_args(ts, sizeof(ts), ms, sizeof(ms));
    return redisCommand(world.rc,
                        "EVAL %s 5 dream:job:%s dream:job:%s:events dream:events dream:parked "
                        "dream:job:%s:files %s %s %s %s dream:events 100000 1000 604800 "
                        "dream:control",
                        dm_script_cancel, id, id, id, id, who, ts, ms);
}

static int count_status(const char *statuses, const char *status)
{
    char probe[64];
    char *padded;
    int n = 0;
    if (asprintf(&padded, ",%s,", statuses) < 0) {
        return -1;
    }
    snprintf(probe, sizeof(probe), ",%s,", status);
    for (char *p = padded; (p = strstr(p, probe)); p += strlen(probe) - 1) {
        n++;
    }
    free(padded);
    return n;
}

static const char *terminal_statuses = "complete,failed,cancelled,rejected,dead_lettered";

static int terminal_count(const char *statuses)
{
    char list[128];
    int n = 0;
    snprintf(list, sizeof(list), "%s", terminal_statuses);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        n += count_status(statuses, t);
    }
    return n;
}

/* Runs the destructive job until it is parked, and checks the parking. */
static void run_until_parked(const char *id, struct dmt_replica *rep, const char *replica)
{
    char *rule = reply_rule(DROP_PATH, DROP_SQL);
    cJSON *ev, *flagged, *it;
    int found = 0;
    char *status, *refs;

    script_reply(rule);
    free(rule);
    dmt_world_replica(&world, rep, replica, NULL);
    submit(id, DROP_SPEC, "builder", NULL);
    cr_assert(dmt_world_wait_status(&world, id, "paused_approval,failed,complete", 60000),
              "job %s never parked (log %s)", id, rep->log);
    status = dmt_world_hget(&world, id, "status");
    cr_assert_str_eq(status, "paused_approval", "status %s, error %s", status,
                     dmt_world_hget(&world, id, "error"));
    free(status);
    /* Parked means: acknowledged (no worker holds it), listed, and announced with findings. */
    cr_assert_eq(pending_entries(), 0, "the parked job's entry is acknowledged");
    cr_assert(is_parked(id), "%s is in dream:parked", id);
    ev = dmt_world_event(&world, id, "paused_approval");
    cr_assert_not_null(ev, "a paused_approval event");
    flagged = cJSON_GetObjectItem(ev, "flagged");
    cr_assert(cJSON_IsArray(flagged) && cJSON_GetArraySize(flagged) >= 1, "flagged findings: %s",
              cJSON_PrintUnformatted(ev));
    cJSON_ArrayForEach(it, flagged)
    {
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(it, "path"));
        const char *rname = cJSON_GetStringValue(cJSON_GetObjectItem(it, "rule"));
        double line = cJSON_GetNumberValue(cJSON_GetObjectItem(it, "line"));
        if (path && rname && strcmp(path, DROP_PATH) == 0 && strcmp(rname, "drop-table") == 0) {
            /* The DROP is on the second line of the generated file. */
            cr_assert_eq((int)line, 2, "finding line: %s", cJSON_PrintUnformatted(it));
            found = 1;
        }
    }
    cr_assert(found, "a drop-table finding on %s: %s", DROP_PATH, cJSON_PrintUnformatted(flagged));
    cr_assert_not_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "message")), DROP_PATH),
                       "the message names the file");
    cJSON_Delete(ev);
    /* Nothing left dreamd yet. */
    refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main", "no branch while parked");
    free(refs);
    cr_assert_eq(dmt_world_pr_count(&world), 0);
}

/* ---- issue 6: destructive output, approve, reject ---- */

Test(gate, destructive_output_parks_and_approve_resumes_elsewhere_without_regenerating)
{
    struct dmt_replica a, b;
    long long chat_parked;
    redisReply *r;
    char *statuses, *after, *files, *content, *approved, *by, *pr_url;
    cJSON *done;
    int st;

    run_until_parked("park-approve", &a, "gate-a");
    chat_parked = dmt_fakeor_stat(&world.llm, "chat");
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, DROP_PATH), 1, "the migration was generated");

    /* The replica that parked it goes away; the approval is picked up by another one. */
    st = dmt_replica_stop(&a, 30000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean exit %d", st);
    dmt_world_replica(&world, &b, "gate-b", NULL);

    r = approve("park-approve", "alice");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "approve: %s",
              r && r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    {
        /* The approval enqueued a resume entry for the job. */
        redisReply *e = redisCommand(world.rc, "XRANGE dream:jobs %s %s", r->element[1]->str,
                                     r->element[1]->str);
        cr_assert(e && e->type == REDIS_REPLY_ARRAY && e->elements == 1, "resume entry");
        redisReply *f = e->element[0]->element[1];
        cr_assert_eq(f->elements, 4);
        cr_assert_str_eq(f->element[0]->str, "type");
        cr_assert_str_eq(f->element[1]->str, "resume");
        cr_assert_str_eq(f->element[2]->str, "id");
        cr_assert_str_eq(f->element[3]->str, "park-approve");
        freeReplyObject(e);
    }
    freeReplyObject(r);
    cr_assert_not(is_parked("park-approve"), "approval unparks");

    cr_assert(dmt_world_wait_status(&world, "park-approve", "complete,failed", 60000),
              "resumed job ended (log %s)", b.log);
    done = dmt_world_event(&world, "park-approve", "complete");
    cr_assert_not_null(done, "complete (error %s)",
                       dmt_world_hget(&world, "park-approve", "error"));
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(done, "worker")), "gate-b",
                     "the other replica finished it");
    cJSON_Delete(done);

    /* Not a single file was generated again: the resume used the checkpoint. */
    cr_assert_eq(dmt_fakeor_stat(&world.llm, "chat"), chat_parked,
                 "the fake OpenRouter saw no new request after the approval");
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, DROP_PATH), 1, "the migration was not redone");
    statuses = dmt_world_statuses(&world, "park-approve");
    cr_assert_not_null(strstr(statuses, "paused_approval,approved,resumed"), "%s", statuses);
    after = strstr(statuses, "resumed");
    cr_assert_null(strstr(after, "writing"), "nothing written after the resume: %s", statuses);
    cr_assert_null(strstr(after, "generated"), "nothing generated after the resume: %s", statuses);
    cr_assert_not_null(strstr(after, "pushing,pr_open,complete"), "%s", statuses);
    cr_assert_eq(terminal_count(statuses), 1, "%s", statuses);

    approved = dmt_world_hget(&world, "park-approve", "approved");
    by = dmt_world_hget(&world, "park-approve", "approved_by");
    cr_assert_str_eq(approved, "1");
    cr_assert_str_eq(by, "alice", "who approved is recorded");
    {
        char *at = dmt_world_hget(&world, "park-approve", "approved_at");
        cr_assert_not_null(at, "when it was approved is recorded");
        free(at);
    }

    /* The approved migration is what was pushed, and one PR is open for it. */
    cr_assert_eq(dmt_world_pr_count(&world), 1);
    cr_assert_eq(dmt_world_prs_for(&world, "dream/drop-users"), 1);
    pr_url = dmt_world_hget(&world, "park-approve", "pr_url");
    cr_assert_not_null(pr_url);
    files = dmt_world_branch_files(&world, "dream/drop-users");
    cr_assert_not_null(files, "branch pushed");
    cr_assert_not_null(strstr(files, DROP_PATH), "%s", files);
    content = dmt_world_branch_file(&world, "dream/drop-users", DROP_PATH);
    cr_assert_not_null(content);
    cr_assert_not_null(strstr(content, "DROP TABLE users;"), "%s", content);
    st = dmt_replica_stop(&b, 30000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean exit %d", st);
    free(statuses);
    free(approved);
    free(by);
    free(pr_url);
    free(files);
    free(content);
}

Test(gate, reject_ends_the_job_rejected_with_nothing_pushed)
{
    struct dmt_replica a;
    redisReply *r;
    char *status, *error, *refs, *statuses, *by;

    run_until_parked("park-reject", &a, "gate-a");
    r = reject("park-reject", "bob", "dropping users needs a backup first");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "reject: %s",
              r && r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
    freeReplyObject(r);
    /* A second decision on a job that is no longer parked is refused atomically. */
    r = approve("park-reject", "mallory");
    cr_assert(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOTPARKED"),
              "approve after reject must be refused");
    freeReplyObject(r);

    /* Give the replica every chance to do something it should not. */
    dmt_sleep_ms(3000);
    status = dmt_world_hget(&world, "park-reject", "status");
    error = dmt_world_hget(&world, "park-reject", "error");
    by = dmt_world_hget(&world, "park-reject", "rejected_by");
    cr_assert_str_eq(status, "rejected");
    cr_assert_str_eq(error, "dropping users needs a backup first");
    cr_assert_str_eq(by, "bob");
    cr_assert_not(is_parked("park-reject"));
    statuses = dmt_world_statuses(&world, "park-reject");
    cr_assert_not_null(strstr(statuses, "paused_approval,rejected"), "%s", statuses);
    cr_assert_eq(terminal_count(statuses), 1, "%s", statuses);
    {
        cJSON *ev = dmt_world_event(&world, "park-reject", "rejected");
        cr_assert_not_null(ev);
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "error")),
                         "dropping users needs a backup first");
        cJSON_Delete(ev);
    }
    /* Nothing pushed, no PR, no resume queued, nothing pending. */
    refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main", "no branch after a rejection");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    cr_assert_eq(dmt_world_gh_requests(&world, "POST", "/pulls"), 0);
    cr_assert_eq(pending_entries(), 0);
    {
        redisReply *e = redisCommand(world.rc, "XRANGE dream:jobs - +");
        for (size_t i = 0; e && i < e->elements; i++) {
            cr_assert_str_neq(e->element[i]->element[1]->element[1]->str, "resume",
                              "no resume entry after a rejection");
        }
        freeReplyObject(e);
    }
    free(status);
    free(error);
    free(by);
    free(refs);
    free(statuses);
}

/* ---- issue 6: secrets ---- */

static void run_secret_job(const char *id, struct dmt_replica *rep)
{
    char *rules;
    cJSON *a = cJSON_CreateArray();
    cJSON *o;
    char match[256];

    cr_assert_eq(strlen(GH_SECRET), 40, "ghp_ + 36 characters");
    o = cJSON_CreateObject();
    snprintf(match, sizeof(match), "Target path: `%s`", SECRET_ROUTE);
    cJSON_AddStringToObject(o, "match", match);
    cJSON_AddStringToObject(o, "behaviour", "reply");
    cJSON_AddStringToObject(o, "content",
                            "import { Hono } from 'hono';\n\nconst app = new Hono();\n"
                            "const awsAccessKeyId = '" AWS_KEY "';\n\n"
                            "app.get('/keys', (c) => c.json({ n: awsAccessKeyId.length }));\n\n"
                            "export default app;\n");
    cJSON_AddItemToArray(a, o);
    o = cJSON_CreateObject();
    snprintf(match, sizeof(match), "Target path: `%s`", SECRET_COMPONENT);
    cJSON_AddStringToObject(o, "match", match);
    cJSON_AddStringToObject(o, "behaviour", "reply");
    cJSON_AddStringToObject(o, "content",
                            "export function KeyList() {\n  const auth = '" GH_SECRET "';\n"
                            "  return <div data-n={auth.length}>keys</div>;\n}\n\n"
                            "export default KeyList;\n");
    cJSON_AddItemToArray(a, o);
    rules = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    script_reply(rules);
    free(rules);

    dmt_world_replica(&world, rep, "gate-s", NULL);
    submit(id, SECRET_SPEC, "builder", NULL);
    cr_assert(dmt_world_wait_status(&world, id, "complete,failed,paused_approval", 60000),
              "job ended (log %s)", rep->log);
    /* The files really were asked for (the scan saw generated output; the job did not fail
     * before generation). */
    cr_assert_geq(dmt_fakeor_path_count(&world.llm, SECRET_ROUTE) +
                      dmt_fakeor_path_count(&world.llm, SECRET_COMPONENT),
                  1);
}

Test(gate, secret_in_output_fails_the_job_naming_path_and_rule_and_leaks_nowhere_else)
{
    struct dmt_replica rep;
    char *status, *error, *refs, *log, *statuses;
    cJSON *ev;
    int st;

    run_secret_job("secret-1", &rep);
    status = dmt_world_hget(&world, "secret-1", "status");
    error = dmt_world_hget(&world, "secret-1", "error");
    cr_assert_str_eq(status, "failed", "error %s", error);
    /* The error names where and which rule (of the file found first), never what. */
    cr_assert((strstr(error, SECRET_ROUTE) && strstr(error, "aws-access-key-id")) ||
                  (strstr(error, SECRET_COMPONENT) && strstr(error, "github-token")),
              "path and rule: %s", error);
    cr_assert_null(strstr(error, AWS_KEY), "%s", error);
    cr_assert_null(strstr(error, GH_SECRET), "%s", error);
    ev = dmt_world_event(&world, "secret-1", "failed");
    cr_assert_not_null(ev);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "error")), error,
                     "the failed event carries the same error");
    cJSON_Delete(ev);
    statuses = dmt_world_statuses(&world, "secret-1");
    cr_assert_null(strstr(statuses, "pushing"), "never reached push: %s", statuses);
    cr_assert_eq(terminal_count(statuses), 1, "%s", statuses);

    /* No event carries it: not the job's stream, not the global stream. */
    {
        redisReply *r = redisCommand(world.rc, "XRANGE dream:events - +");
        for (size_t i = 0; r && i < r->elements; i++) {
            const char *e = r->element[i]->element[1]->element[1]->str;
            cr_assert_null(strstr(e, AWS_KEY), "event leaks the AWS key: %s", e);
            cr_assert_null(strstr(e, GH_SECRET), "event leaks the GitHub token: %s", e);
            cr_assert_null(strstr(e, "Z7Q3X9K2M5N8"), "event leaks part of the key: %s", e);
        }
        cr_assert(r && r->elements > 3, "events were written");
        freeReplyObject(r);
    }
    /* No log line. */
    st = dmt_replica_stop(&rep, 30000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean exit %d", st);
    log = dmt_read_file(rep.log);
    cr_assert_not_null(log);
    cr_assert_not_null(strstr(log, "secret-1"), "the log is the job's log");
    cr_assert_null(strstr(log, AWS_KEY), "log leaks the AWS key");
    cr_assert_null(strstr(log, GH_SECRET), "log leaks the GitHub token");
    /* No branch, no PR: nothing left dreamd. */
    refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    cr_assert_eq(dmt_world_gh_requests(&world, "POST", "/pulls"), 0);
    free(status);
    free(error);
    free(refs);
    free(log);
    free(statuses);
}

Test(gate, secret_in_output_is_in_no_redis_key)
{
    struct dmt_replica rep;
    char *status, *aws, *gh;

    run_secret_job("secret-2", &rep);
    status = dmt_world_hget(&world, "secret-2", "status");
    cr_assert_str_eq(status, "failed");
    /* Every key of every type: job hash, events, checkpoint, streams, worker hashes. */
    aws = dmt_world_redis_grep(&world, AWS_KEY);
    gh = dmt_world_redis_grep(&world, GH_SECRET);
    cr_assert(!*aws && !*gh,
              "secrets are stored in Redis: the AWS key under:\n%sthe GitHub token under:\n%s", aws,
              gh);
    free(status);
    free(aws);
    free(gh);
}

/* ---- issue 6: trust levels and signed jobs ---- */

Test(gate, planner_trust_is_a_dry_run_with_no_branch_and_no_pr)
{
    struct dmt_replica rep;
    char *status, *refs;
    cJSON *ev;
    redisReply *r;

    dmt_world_replica(&world, &rep, "gate-p", NULL);
    submit("planner-1", NULL, "planner", NULL);
    cr_assert(dmt_world_wait_status(&world, "planner-1", "complete,failed", 60000), "ended");
    status = dmt_world_hget(&world, "planner-1", "status");
    cr_assert_str_eq(status, "complete", "error %s", dmt_world_hget(&world, "planner-1", "error"));
    ev = dmt_world_event(&world, "planner-1", "complete");
    cr_assert_not_null(ev);
    cr_assert_not_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "message")), "dry run"),
                       "the message says dry run: %s", cJSON_PrintUnformatted(ev));
    cr_assert_null(cJSON_GetObjectItem(ev, "prUrl"));
    cJSON_Delete(ev);
    /* It did plan and generate (artifacts stored) ... */
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, "src/routes/todos.ts"), 1);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, "src/components/TodoList.tsx"), 1);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, "migrations/0001_create_todos.sql"), 1);
    r = redisCommand(world.rc, "HLEN dream:job:planner-1:files");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 3, "generated files stored");
    freeReplyObject(r);
    /* ... and nothing else. */
    refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main", "a dry run pushes nothing");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    cr_assert_eq(dmt_world_gh_requests(&world, "POST", "/pulls"), 0);
    cr_assert_null(dmt_world_hget(&world, "planner-1", "pr_url"));
    cr_assert_null(dmt_world_hget(&world, "planner-1", "commit"));
    free(status);
    free(refs);
}

Test(gate, observer_trust_is_refused_with_the_rule)
{
    struct dmt_replica rep;
    char *status, *error, *statuses;

    dmt_world_replica(&world, &rep, "gate-o", NULL);
    submit("observer-1", NULL, "observer", NULL);
    cr_assert(dmt_world_wait_status(&world, "observer-1", "complete,failed", 60000), "ended");
    status = dmt_world_hget(&world, "observer-1", "status");
    error = dmt_world_hget(&world, "observer-1", "error");
    cr_assert_str_eq(status, "failed");
    cr_assert_not_null(strstr(error, "trustLevel"), "%s", error);
    cr_assert_not_null(strstr(error, "observer"), "%s", error);
    statuses = dmt_world_statuses(&world, "observer-1");
    cr_assert_str_eq(statuses, "failed", "refused before anything ran");
    cr_assert_eq(dmt_fakeor_stat(&world.llm, "chat"), 0, "no LLM call");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    cr_assert_eq(pending_entries(), 0, "acknowledged");
    free(status);
    free(error);
    free(statuses);
}

/* A token for job id signed with secret, bound to the job JSON bound_to (its
 * dreamJobSha256), carrying trust as dreamTrustLevel. */
static char *sign(const char *id, const char *trust, const char *secret, const char *bound_to)
{
    char payload[512], sha[DM_AUTH_SHA256_HEX_LEN + 1];
    struct dm_jobreq_opts o = DM_JOBREQ_OPTS_INIT;
    struct dm_jobreq *req = NULL;
    char *tok = NULL;
    struct dm_error err;
    long long now = (long long)time(NULL);

    o.ignore_trust = 1;
    cr_assert_eq(dm_jobreq_parse(&req, bound_to, strlen(bound_to), &o, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_jobreq_binding_sha256(sha, sizeof(sha), req), 0);
    dm_jobreq_free(req);
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"storia\",\"sub\":\"user-1\",\"jti\":\"%s\",\"dreamTrustLevel\":\"%s\","
             "\"dreamJobSha256\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             id, trust, sha, now, now + 600);
    cr_assert_eq(dm_auth_sign_hs256(&tok, payload, secret, &err), 0, "%s", err.msg);
    return tok;
}

static void xadd_job(const char *job, const char *token)
{
    redisReply *r =
        token ? redisCommand(world.rc, "XADD dream:jobs * type build job %s token %s", job, token)
              : redisCommand(world.rc, "XADD dream:jobs * type build job %s", job);
    cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD");
    freeReplyObject(r);
}

/* Nothing of job id exists: no hash, no events (in its stream or the global one). */
static void assert_untouched(const char *id)
{
    redisReply *r = redisCommand(world.rc, "EXISTS dream:job:%s dream:job:%s:events", id, id);
    char *statuses;
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    cr_assert_eq(r->integer, 0, "keys of job %s exist", id);
    freeReplyObject(r);
    statuses = dmt_world_statuses(&world, id);
    cr_assert(!statuses || !*statuses, "job %s has events: %s", id, statuses);
    free(statuses);
}

/* The reason of the dead letter whose job names id (caller frees; NULL if none). */
static char *dead_reason(const char *id)
{
    redisReply *r = redisCommand(world.rc, "XRANGE dream:dead - +");
    char needle[200];
    char *reason = NULL;

    snprintf(needle, sizeof(needle), "\"jobId\":\"%s\"", id);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !reason; i++) {
        const redisReply *f = r->element[i]->element[1];
        const char *job = NULL, *why = NULL;
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "job") == 0) {
                job = f->element[k + 1]->str;
            } else if (strcmp(f->element[k]->str, "reason") == 0) {
                why = f->element[k + 1]->str;
            }
        }
        if (job && why && strstr(job, needle)) {
            reason = strdup(why);
        }
    }
    freeReplyObject(r);
    return reason;
}

static long long dead_count(void)
{
    redisReply *r = redisCommand(world.rc, "XLEN dream:dead");
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

Test(gate, signed_jobs_run_and_unsigned_or_forged_ones_are_refused)
{
    struct dmt_replica rep;
    char *j_ok = dmt_world_job("signed-1", "# Signed Service\n\n## API\n- GET /signed ok\n",
                               "builder", 200000, 5.0);
    /* The body says builder, the token planner: in signed mode only the token counts. */
    char *j_plan =
        dmt_world_job("signed-planner", "# Planned Service\n\n## API\n- GET /planned ok\n",
                      "builder", 200000, 5.0);
    char *j_unsigned = dmt_world_job(
        "unsigned-1", "# Unsigned Service\n\n## API\n- GET /unsigned ok\n", "builder", 200000, 5.0);
    char *j_forged = dmt_world_job("forged-1", "# Forged Service\n\n## API\n- GET /forged ok\n",
                                   "builder", 200000, 5.0);
    char *j_stolen = dmt_world_job("stolen-1", "# Stolen Service\n\n## API\n- GET /stolen ok\n",
                                   "builder", 200000, 5.0);
    /* The signed body of rebound-1, and what is sent under its token: another spec. */
    char *j_rebound_signed = dmt_world_job(
        "rebound-1", "# Rebound Service\n\n## API\n- GET /rebound ok\n", "builder", 200000, 5.0);
    char *j_rebound = dmt_world_job("rebound-1",
                                    "# Rebound Service\n\n## API\n- GET /rebound ok\n"
                                    "- DELETE /everything removes every record\n",
                                    "builder", 200000, 5.0);
    char *t_ok = sign("signed-1", "builder", "new-secret-2026", j_ok);
    char *t_plan = sign("signed-planner", "planner", "old-secret-2025", j_plan);
    char *t_forged = sign("forged-1", "builder", "not-our-secret", j_forged);
    char *t_stolen = sign("signed-1", "builder", "new-secret-2026", j_ok);
    char *t_rebound = sign("rebound-1", "builder", "new-secret-2026", j_rebound_signed);
    long long deadline;
    char *v;

    /* Secrets reach dreamd through its environment (inherited), as in production. */
    setenv("DREAM_SIGNING_SECRETS", "old-secret-2025,new-secret-2026", 1);
    dmt_world_replica(&world, &rep, "gate-j", NULL);
    unsetenv("DREAM_SIGNING_SECRETS");
    xadd_job(j_ok, t_ok);
    xadd_job(j_plan, t_plan);
    xadd_job(j_unsigned, NULL);
    xadd_job(j_forged, t_forged);
    /* A valid token for another job (jti) does not sign this one. */
    xadd_job(j_stolen, t_stolen);
    xadd_job(j_rebound, t_rebound);
    cr_assert_eq(dmt_wait_terminal(world.rc, 2, 90000), 2, "two jobs ended (log %s)", rep.log);
    deadline = dmt_now_ms() + 20000;
    while (dead_count() < 4 && dmt_now_ms() < deadline) {
        dmt_sleep_ms(20);
    }
    cr_assert_eq(dead_count(), 4, "four entries dead-lettered (log %s)", rep.log);

    v = dmt_world_hget(&world, "signed-1", "status");
    cr_assert_str_eq(v, "complete", "signed job: %s", dmt_world_hget(&world, "signed-1", "error"));
    free(v);
    cr_assert_eq(dmt_world_prs_for(&world, "dream/signed-service"), 1);

    v = dmt_world_hget(&world, "signed-planner", "status");
    cr_assert_str_eq(v, "complete");
    free(v);
    cr_assert_eq(dmt_world_prs_for(&world, "dream/planned-service"), 0, "the token said planner");
    cr_assert_null(dmt_world_rev(&world, "refs/heads/dream/planned-service"));

    /* Refused entries write nothing under the jobId they name: they are dead letters. */
    assert_untouched("unsigned-1");
    v = dead_reason("unsigned-1");
    cr_assert_not_null(v);
    cr_assert_not_null(strstr(v, "token: required"), "%s", v);
    free(v);
    assert_untouched("forged-1");
    v = dead_reason("forged-1");
    cr_assert_not_null(v);
    cr_assert_not_null(strstr(v, "signature"), "%s", v);
    free(v);
    assert_untouched("stolen-1");
    v = dead_reason("stolen-1");
    cr_assert_not_null(v);
    cr_assert_not_null(strstr(v, "jti"), "%s", v);
    free(v);
    assert_untouched("rebound-1");
    v = dead_reason("rebound-1");
    cr_assert_not_null(v);
    cr_assert_not_null(strstr(v, "dreamJobSha256 does not match the job"), "%s", v);
    free(v);

    cr_assert_eq(dmt_world_pr_count(&world), 1, "only the signed builder job opened a PR");
    cr_assert_null(dmt_world_rev(&world, "refs/heads/dream/unsigned-service"));
    cr_assert_null(dmt_world_rev(&world, "refs/heads/dream/forged-service"));
    cr_assert_null(dmt_world_rev(&world, "refs/heads/dream/stolen-service"));
    cr_assert_null(dmt_world_rev(&world, "refs/heads/dream/rebound-service"));
    cr_assert_eq(pending_entries(), 0, "every entry acknowledged");
    free(t_ok);
    free(t_plan);
    free(t_forged);
    free(t_stolen);
    free(t_rebound);
    free(j_ok);
    free(j_plan);
    free(j_unsigned);
    free(j_forged);
    free(j_stolen);
    free(j_rebound_signed);
    free(j_rebound);
}

/* ---- issue 8: cancel in the middle of generation ---- */

Test(gate, cancel_in_the_middle_of_generation_ends_cancelled_with_nothing_pushed)
{
    struct dmt_replica rep;
    redisReply *r;
    char *status, *statuses, *refs, *by;
    long long deadline;

    /* Every generation streams slowly: the job sits in the generate stage. */
    script_reply("[{\"match\":\"\",\"behaviour\":\"drip\",\"param\":\"200\"}]");
    dmt_world_replica(&world, &rep, "gate-c", NULL);
    submit("cancel-1", NULL, "builder", NULL);
    deadline = dmt_now_ms() + 60000;
    while (dmt_now_ms() < deadline && dmt_fakeor_stat(&world.llm, "in_flight") < 1) {
        dmt_sleep_ms(50);
    }
    cr_assert_geq(dmt_fakeor_stat(&world.llm, "in_flight"), 1, "generation is under way");
    dmt_sleep_ms(500);
    statuses = dmt_world_statuses(&world, "cancel-1");
    cr_assert_not_null(strstr(statuses, "writing"), "%s", statuses);
    cr_assert_null(strstr(statuses, "generated"), "no file finished yet: %s", statuses);
    free(statuses);

    r = cancel("cancel-1", "carol");
    cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "requested") == 0,
              "cancel of a running job is a request: %s", r ? r->str : "(null)");
    freeReplyObject(r);
    cr_assert(dmt_world_wait_status(&world, "cancel-1", "cancelled,complete,failed", 20000),
              "the job stopped (log %s)", rep.log);
    status = dmt_world_hget(&world, "cancel-1", "status");
    cr_assert_str_eq(status, "cancelled");
    by = dmt_world_hget(&world, "cancel-1", "cancelled_by");
    cr_assert_str_eq(by, "carol");
    statuses = dmt_world_statuses(&world, "cancel-1");
    cr_assert_eq(terminal_count(statuses), 1, "%s", statuses);
    cr_assert_eq(count_status(statuses, "cancelled"), 1, "%s", statuses);
    cr_assert_null(strstr(statuses, "pushing"), "%s", statuses);
    /* The streams in flight were cut, not left to run for two minutes. */
    deadline = dmt_now_ms() + 10000;
    while (dmt_now_ms() < deadline && dmt_fakeor_stat(&world.llm, "in_flight") > 0) {
        dmt_sleep_ms(100);
    }
    cr_assert_eq(dmt_fakeor_stat(&world.llm, "in_flight"), 0, "LLM requests were cut");
    refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main", "nothing pushed");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    cr_assert_eq(pending_entries(), 0, "acknowledged");
    free(status);
    free(by);
    free(statuses);
    free(refs);
}
