/*
 * Integration tests of dreamctl (issue 8, and issue 6's approve/reject): the built binary runs
 * as a child process against a real redis-server, with real dreamd replicas (test stages) where
 * a worker is needed. Its stdout and stderr are captured separately; exit codes are those of
 * include/dream/cmd/ctl.h.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dmproc.h"
#include "dmtest.h"
#include "dream/domain/auth.h"
#include "dream/cmd/ctl.h"
#include "dream/core/log.h"

static struct dmt_redis redis;
static char *dir;
static redisContext *rc;
static const char *fast[] = {"--stages=test", "--test-stage-ms=20", NULL};

static void setup(void)
{
    dmt_bed_start(&redis, &dir, &rc, "ctl", 0);
}

static void teardown(void)
{
    dmt_bed_stop(&redis, &dir, &rc);
}

TestSuite(ctl, .init = setup, .fini = teardown, .timeout = 120);

/* ---- running dreamctl ---- */

struct ctlrun {
    pid_t pid;
    char out[600], err[600];
};

static int runs; /* distinct output files per run */

/* Starts dreamctl with args (NULL-terminated); stdin from in_path (NULL: /dev/null). With url
 * NULL, no --redis-url is added (the test passes its own). */
static void ctl_start(struct ctlrun *cr, const char *url, const char *in_path,
                      const char *const *args)
{
    char bin[512], urlopt[200];
    const char *argv[48];
    int n = 0;

    snprintf(bin, sizeof(bin), "%s/dreamctl", dmt_binary_dir());
    snprintf(cr->out, sizeof(cr->out), "%s/ctl-%d.out", dir, runs);
    snprintf(cr->err, sizeof(cr->err), "%s/ctl-%d.err", dir, runs);
    runs++;
    argv[n++] = bin;
    if (url) {
        /* First, as a global option, so it never becomes the value of a test's last option. */
        snprintf(urlopt, sizeof(urlopt), "--redis-url=%s", url);
        argv[n++] = urlopt;
    }
    for (int i = 0; args[i] && n < 45; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    fflush(NULL);
    cr->pid = fork();
    cr_assert_geq(cr->pid, 0, "fork");
    if (cr->pid == 0) {
        int o = open(cr->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(cr->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int i = open(in_path ? in_path : "/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || i < 0) {
            _exit(127);
        }
        dup2(o, 1);
        dup2(e, 2);
        dup2(i, 0);
        unsetenv("DREAM_REDIS_URL");
        unsetenv("DREAM_PREFIX");
        unsetenv("DREAM_SIGN_SECRET");
        execv(bin, (char *const *)argv);
        _exit(127);
    }
}

/* Waits for a started dreamctl; returns its exit code (the test fails if it did not exit within
 * timeout_ms or died of a signal). *out and *err (may be NULL) get its output (caller frees). */
static int ctl_finish(struct ctlrun *cr, int timeout_ms, char **out, char **err)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    int st = 0;
    pid_t got;

    while ((got = waitpid(cr->pid, &st, WNOHANG)) == 0 && dmt_now_ms() < deadline) {
        dmt_sleep_ms(10);
    }
    if (got == 0) {
        kill(cr->pid, SIGKILL);
        waitpid(cr->pid, &st, 0);
        cr_assert_fail("dreamctl did not exit within %d ms", timeout_ms);
    }
    {
        char *o = dmt_read_file(cr->out), *e = dmt_read_file(cr->err);
        cr_assert(WIFEXITED(st), "dreamctl died (status %d); stderr: %s", st, e ? e : "");
        if (out) {
            *out = o ? o : strdup("");
        } else {
            free(o);
        }
        if (err) {
            *err = e ? e : strdup("");
        } else {
            free(e);
        }
    }
    return WEXITSTATUS(st);
}

/* Runs dreamctl against the test's Redis and waits (30 s). */
static int ctl_run(const char *in_path, const char *const *args, char **out, char **err)
{
    struct ctlrun cr;
    ctl_start(&cr, dmt_redis_url(&redis), in_path, args);
    return ctl_finish(&cr, 30000, out, err);
}

/* ---- helpers ---- */

static char *write_spec(const char *name, const char *text)
{
    char path[600];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return strdup(path);
}

static const char spec_text[] = "# Todo API\n\n## API\n- GET /todos lists todos\n";

static char *hget(const char *key, const char *field)
{
    redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static long long xlen(const char *key)
{
    redisReply *r = redisCommand(rc, "XLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

/* The statuses of a job's event stream, in order, joined by ','. */
static char *job_statuses(const char *id)
{
    redisReply *r = redisCommand(rc, "XRANGE dream:job:%s:events - +", id);
    char *s = calloc(1, 4096);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        cJSON *ev = cJSON_Parse(r->element[i]->element[1]->element[1]->str);
        cr_assert_not_null(ev);
        if (i) {
            strcat(s, ",");
        }
        strncat(s, cJSON_GetStringValue(cJSON_GetObjectItem(ev, "status")), 100);
        cJSON_Delete(ev);
    }
    freeReplyObject(r);
    return s;
}

/* Waits until the job hash's status is want. */
static void wait_status(const char *id, const char *want, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    char key[200];
    snprintf(key, sizeof(key), "dream:job:%s", id);
    for (;;) {
        char *s = hget(key, "status");
        int ok = s && strcmp(s, want) == 0;
        if (ok || dmt_now_ms() > deadline) {
            cr_assert(ok, "job %s is %s, want %s", id, s ? s : "(none)", want);
            free(s);
            return;
        }
        free(s);
        dmt_sleep_ms(20);
    }
}

/* Parks a job by hand the way the safety gate does: hash with the job and its checkpoint stage,
 * status paused_approval, a paused_approval event, and the parked set. */
static void park_by_hand(const char *id)
{
    char *job = dmt_job_json(id, NULL, NULL);
    char ev[1024];
    redisReply *r;

    r = redisCommand(rc,
                     "HSET dream:job:%s status paused_approval stage push entry 1-1 job %s epoch "
                     "1 attempts 1 seq 1 created 1 updated 1",
                     id, job);
    freeReplyObject(r);
    snprintf(ev, sizeof(ev),
             "{\"v\":1,\"jobId\":\"%s\",\"seq\":1,\"status\":\"paused_approval\",\"message\":"
             "\"destructive operations need approval: migrations/x.sql:1 DROP TABLE\",\"ts\":"
             "\"2026-01-01T00:00:00.000Z\",\"worker\":\"w\",\"tokensUsed\":10,\"costUsd\":0.5,"
             "\"step\":\"gate\",\"flagged\":[{"
             "\"kind\":\"destructive\",\"severity\":\"critical\",\"rule\":\"DROP TABLE\",\"path\":"
             "\"migrations/x.sql\",\"line\":1,\"excerpt\":\"DROP TABLE users\"}]}",
             id);
    r = redisCommand(rc, "XADD dream:job:%s:events * event %s", id, ev);
    freeReplyObject(r);
    r = redisCommand(rc, "ZADD dream:parked 1 %s", id);
    freeReplyObject(r);
    free(job);
}

/* Splits out into lines and parses each as JSON; returns the count. */
static int json_lines(char *out, cJSON **v, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line && n < max;
         line = strtok_r(NULL, "\n", &save)) {
        v[n] = cJSON_Parse(line);
        cr_assert_not_null(v[n], "not JSON: %s", line);
        n++;
    }
    return n;
}

static void start_replica(struct dmt_replica *rep, const char *name, const char *const *extra)
{
    dmt_replica_start(rep, &redis, dir, name, extra);
    dmt_replica_wait_ready(rep, rc, 10000);
}

/* ---- tests ---- */

Test(ctl, submit_wait_completes_with_design_field_names)
{
    struct dmt_replica rep;
    char *spec = write_spec("todo.md", spec_text);
    const char *args[] = {"submit",        spec,      "--repo",       "acme/app",
                          "--job-id",      "wait-1",  "--max-tokens", "5000",
                          "--max-dollars", "2.5",     "--priority",   "high",
                          "--base",        "develop", "--wait",       NULL};
    char *out, *err, *status, *s;
    cJSON *job;
    int code;

    start_replica(&rep, "r1", fast);
    code = ctl_run(NULL, args, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d; stderr %s", code, err);
    cr_assert_not_null(strstr(out, "wait-1"), "%s", out);
    cr_assert_not_null(strstr(out, "complete"), "%s", out);
    status = hget("dream:job:wait-1", "status");
    cr_assert_str_eq(status, "complete");
    s = job_statuses("wait-1");
    cr_assert_str_eq(s, "started,planning,testing,pushing,complete");

    /* The finished entry left the stream with its acknowledgement; the job it carried, with
     * the old system's field names, is the job hash's `job`. */
    cr_assert_eq(xlen("dream:jobs"), 0, "a finished entry is deleted from the stream");
    free(s);
    s = hget("dream:job:wait-1", "job");
    cr_assert_not_null(s);
    job = cJSON_Parse(s);
    free(s);
    cr_assert_not_null(job);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "jobId")), "wait-1");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "repoOwner")), "acme");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "repoName")), "app");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "baseBranch")), "develop");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "branchPrefix")), "dream/");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "priority")), "high");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "trustLevel")), "builder");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "specMarkdown")), spec_text);
    cr_assert_eq(
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "budget"), "maxTokens")),
        5000);
    cr_assert_eq(
        cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "budget"), "maxDollars")),
        2.5);
    cJSON_Delete(job);
    free(status);
    free(out);
    free(err);
    free(spec);
}

/* The pull request's options and a budget without dollars reach the queued job as the worker
 * reads them (jobreq validates them on both sides). */
Test(ctl, submit_carries_pull_request_options_and_a_budget_without_dollars)
{
    char *spec = write_spec("opts.md", spec_text);
    const char *args[] = {"--json",
                          "submit",
                          spec,
                          "--repo",
                          "acme/app",
                          "--job-id",
                          "opts-1",
                          "--max-dollars",
                          "none",
                          "--draft",
                          "--labels",
                          "dreamd, needs-review",
                          "--reviewers",
                          "octocat",
                          "--team-reviewers",
                          "",
                          "--spec-url",
                          "https://specs.example.com/todo",
                          NULL};
    const char *both[] = {"submit", spec, "--repo", "acme/app", "--draft", "--no-draft", NULL};
    const char *bad[] = {"submit", spec, "--repo", "acme/app", "--reviewers", "not a login", NULL};
    char *out, *err;
    cJSON *o, *job, *labels;
    redisReply *r;
    int code;

    code = ctl_run(NULL, args, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d; stdout %s stderr %s", code, out, err);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    r = redisCommand(rc, "XRANGE dream:jobs %s %s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(o, "entry")),
                     cJSON_GetStringValue(cJSON_GetObjectItem(o, "entry")));
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(r->element[0]->element[1]->element[2]->str, "job");
    job = cJSON_Parse(r->element[0]->element[1]->element[3]->str);
    cr_assert_not_null(job);
    cr_assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(job, "budget"), "maxDollars"),
                   "--max-dollars none: no dollar limit");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(job, "draft")));
    labels = cJSON_GetObjectItem(job, "labels");
    cr_assert_eq(cJSON_GetArraySize(labels), 2);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(labels, 0)), "dreamd");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(labels, 1)), "needs-review");
    cr_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(job, "reviewers"), 0)),
        "octocat");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(job, "teamReviewers")), 0,
                 "\"\": an empty list, not absent");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(job, "specUrl")),
                     "https://specs.example.com/todo");
    cJSON_Delete(job);
    cJSON_Delete(o);
    freeReplyObject(r);
    free(out);
    free(err);

    code = ctl_run(NULL, both, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_USAGE, "exit %d; stderr %s", code, err);
    cr_assert_not_null(strstr(err, "--no-draft"), "%s", err);
    free(out);
    free(err);
    code = ctl_run(NULL, bad, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_USAGE, "exit %d; stderr %s", code, err);
    cr_assert_not_null(strstr(err, "reviewers"), "%s", err);
    cr_assert_eq(xlen("dream:jobs"), 1, "a refused job is not queued");
    free(out);
    free(err);
    free(spec);
}

Test(ctl, submit_stdin_signed_json_wait)
{
    struct dmt_replica rep;
    const char *extra[] = {"--stages=test", "--test-stage-ms=20", NULL};
    char *spec = write_spec("stdin.md", spec_text);
    char *secret_file = write_spec("sign.key", "k-new\n");
    const char *args[] = {"--json",    "submit",   "-",         "--repo", "acme/app",
                          "--job-id",  "signed-1", "--user-id", "u-7",    "--sign-secret-file",
                          secret_file, "--wait",   NULL};
    const char *queued_args[] = {
        "--json",    "submit",   "-",         "--repo", "acme/app",
        "--job-id",  "signed-0", "--user-id", "u-7",    "--sign-secret-file",
        secret_file, NULL};
    const char *unsigned_args[] = {"submit",     "-",      "--repo", "acme/app", "--job-id",
                                   "unsigned-1", "--wait", "--json", NULL};
    const char *secrets[] = {"k-new"};
    struct dm_auth_config cfg = DM_AUTH_CONFIG_INIT;
    struct dm_auth_claims claims;
    struct dm_error e;
    char *out, *err;
    cJSON *o;
    redisReply *r;
    int code;

    /* Queued before any replica runs: the entry's token verifies against the worker's secret
     * and is bound to the job (a finished entry leaves the stream, so it is read now). */
    code = ctl_run(spec, queued_args, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d; stdout %s stderr %s", code, out, err);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    r = redisCommand(rc, "XRANGE dream:jobs %s %s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(o, "entry")),
                     cJSON_GetStringValue(cJSON_GetObjectItem(o, "entry")));
    cr_assert_eq(r->elements, 1);
    cr_assert_eq(r->element[0]->element[1]->elements, 6, "type, job and token");
    cr_assert_str_eq(r->element[0]->element[1]->element[4]->str, "token");
    cfg.secrets = secrets;
    cfg.n_secrets = 1;
    cr_assert_eq(dm_auth_verify_job(&claims, r->element[0]->element[1]->element[5]->str,
                                    r->element[0]->element[1]->element[5]->len, &cfg, "signed-0",
                                    "u-7", dm_time_now_ms() / 1000, &e),
                 0, "%s", e.msg);
    cr_assert_str_eq(claims.iss, "storia");
    cr_assert(claims.trust_set && claims.trust == DM_TRUST_BUILDER);
    cr_assert_gt(claims.exp, dm_time_now_ms() / 1000 + 3000);
    freeReplyObject(r);
    cJSON_Delete(o);
    free(out);
    free(err);

    /* Secrets reach dreamd through its environment, never its command line. */
    setenv("DREAM_SIGNING_SECRETS", "k-old,k-new", 1);
    start_replica(&rep, "r1", extra);
    unsetenv("DREAM_SIGNING_SECRETS");
    code = ctl_run(spec, args, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d; stdout %s stderr %s", code, out, err);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "--json output is not one JSON document: %s", out);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "jobId")), "signed-1");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")), "complete");
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "exitCode")), 0);
    cr_assert_str_eq(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "event"), "status")),
        "complete");
    wait_status("signed-0", "complete", 10000); /* the queued one ran too */
    cJSON_Delete(o);
    free(out);
    free(err);

    /* Unsigned, the worker refuses it: the entry is dead-lettered (nothing is written under
     * the job) and --wait exits 1. */
    code = ctl_run(spec, unsigned_args, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_FAILED, "exit %d; %s", code, out);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")), "dead_lettered");
    {
        char *ev = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "event"));
        cr_assert_not_null(strstr(ev, "token: required"), "%s", ev);
        free(ev);
    }
    cJSON_Delete(o);
    free(out);
    free(err);
    free(spec);
    free(secret_file);
}

Test(ctl, watch_replays_in_seq_order_then_follows_live)
{
    struct dmt_replica rep;
    struct ctlrun live;
    const char *live_args[] = {"watch", "live-1", "--timeout", "30", NULL};
    const char *json_args[] = {"watch", "live-1", "--json", NULL};
    char *job = dmt_job_json("live-1", NULL, NULL);
    char *out, *err;
    cJSON *v[64];
    int code, n;

    /* Started before any worker exists: it must wait, then follow the job live to its end. */
    free(dmt_submit(rc, job));
    ctl_start(&live, dmt_redis_url(&redis), NULL, live_args);
    /* It replayed nothing and now waits for the job's first event. */
    cr_assert(dmt_wait_blocked(rc, "xread", 10000), "dreamctl watch is waiting in XREAD");
    start_replica(&rep, "r1", fast);
    code = ctl_finish(&live, 30000, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d; stdout %s stderr %s", code, out, err);
    {
        char *a = strstr(out, "started"), *b = strstr(out, "pushing"), *c = strstr(out, "complete");
        cr_assert(a && b && c && a < b && b < c, "events out of order:\n%s", out);
        cr_assert_not_null(strstr(out, "progress: files"), "%s", out);
        cr_assert_not_null(strstr(out, "elapsed"), "%s", out);
    }
    free(out);
    free(err);

    /* Replay of the finished job: every event once, seq 1..n, ending on the terminal event. */
    code = ctl_run(NULL, json_args, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d; %s", code, err);
    n = json_lines(out, v, 64);
    cr_assert_eq(n, 5, "%d events", n);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(v[i], "seq")), i + 1);
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(v[i], "jobId")), "live-1");
    }
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(v[n - 1], "status")), "complete");
    for (int i = 0; i < n; i++) {
        cJSON_Delete(v[i]);
    }
    free(out);
    free(err);
    free(job);
}

Test(ctl, watch_counts_files_of_the_plan)
{
    const char *args[] = {"watch", "files-1", NULL};
    const char *evs[] = {
        "{\"v\":1,\"jobId\":\"files-1\",\"seq\":1,\"status\":\"started\",\"message\":\"build "
        "started\",\"ts\":\"2026-01-01T00:00:00.000Z\",\"worker\":\"w\",\"tokensUsed\":0,"
        "\"costUsd\":0}",
        "{\"v\":1,\"jobId\":\"files-1\",\"seq\":2,\"status\":\"planned\",\"message\":\"3 "
        "files\",\"ts\":\"2026-01-01T00:00:01.000Z\",\"worker\":\"w\",\"tokensUsed\":0,"
        "\"costUsd\":0,\"files\":[\"docs/a.md\",\"src/routes/b.ts\",\"src/c.tsx\"]}",
        "{\"v\":1,\"jobId\":\"files-1\",\"seq\":3,\"status\":\"generated\",\"message\":"
        "\"generated\",\"ts\":\"2026-01-01T00:00:03.000Z\",\"worker\":\"w\",\"tokensUsed\":1200,"
        "\"costUsd\":0.0125,\"path\":\"src/routes/b.ts\"}",
        "{\"v\":1,\"jobId\":\"files-1\",\"seq\":4,\"status\":\"failed\",\"message\":\"budget "
        "exhausted\",\"ts\":\"2026-01-01T00:00:04.500Z\",\"worker\":\"w\",\"tokensUsed\":1500,"
        "\"costUsd\":0.02,\"error\":\"budget exhausted\"}",
    };
    char *out, *err;
    int code;

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        freeReplyObject(redisCommand(rc, "XADD dream:job:files-1:events * event %s", evs[i]));
    }
    code = ctl_run(NULL, args, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_FAILED, "a failed job exits 1, got %d", code);
    cr_assert_not_null(strstr(out, "files 1/3"), "%s", out);
    cr_assert_not_null(strstr(out, "tokens 1500"), "%s", out);
    cr_assert_not_null(strstr(out, "$0.0200"), "%s", out);
    cr_assert_not_null(strstr(out, "elapsed 4.5s"), "%s", out);
    cr_assert_not_null(strstr(out, "src/routes/b.ts"), "%s", out);
    free(out);
    free(err);
}

Test(ctl, json_output_of_every_command_parses)
{
    struct dmt_replica rep;
    char *spec = write_spec("j.md", spec_text);
    const char *submit[] = {"submit", spec,     "--repo", "acme/app", "--job-id",
                            "json-1", "--json", "--wait", NULL};
    const char *status[] = {"status", "json-1", "--json", NULL};
    const char *jobs[] = {"jobs", "--json", "--status", "complete", NULL};
    const char *jobs_none[] = {"jobs", "--json", "--status", "paused_approval", NULL};
    const char *dead[] = {"dead", "list", "--json", NULL};
    const char *refused[] = {"approve", "json-1", "--json", NULL};
    char *out, *err;
    cJSON *o;
    int code;

    start_replica(&rep, "r1", fast);
    cr_assert_eq(ctl_run(NULL, submit, &out, &err), 0, "%s", err);
    free(out);
    free(err);

    cr_assert_eq(ctl_run(NULL, status, &out, &err), 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "jobId")), "json-1");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")), "complete");
    cr_assert(cJSON_IsObject(cJSON_GetObjectItem(o, "job")), "the stored job is an object");
    cJSON_Delete(o);
    free(out);
    free(err);

    cr_assert_eq(ctl_run(NULL, jobs, &out, &err), 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(o), "%s", out);
    cr_assert_eq(cJSON_GetArraySize(o), 1);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "jobId")),
                     "json-1");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "stage")),
                     "pr");
    cJSON_Delete(o);
    free(out);
    free(err);

    cr_assert_eq(ctl_run(NULL, jobs_none, &out, &err), 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(o) && cJSON_GetArraySize(o) == 0, "%s", out);
    cJSON_Delete(o);
    free(out);
    free(err);

    cr_assert_eq(ctl_run(NULL, dead, &out, &err), 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(o) && cJSON_GetArraySize(o) == 0, "%s", out);
    cJSON_Delete(o);
    free(out);
    free(err);

    /* A refusal is also JSON on stdout. */
    code = ctl_run(NULL, refused, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_FAILED);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    cr_assert_not_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(o, "error")), "not parked"));
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "exitCode")), 1);
    cJSON_Delete(o);
    free(out);
    free(err);
    free(spec);
}

Test(ctl, usage_errors_exit_2_with_a_message)
{
    char *spec = write_spec("u.md", spec_text);
    const char *none[] = {NULL};
    const char *unknown_cmd[] = {"frobnicate", NULL};
    const char *unknown_opt[] = {"jobs", "--colour", NULL};
    const char *no_repo[] = {"submit", spec, NULL};
    const char *bad_repo[] = {"submit", spec, "--repo", "acme", NULL};
    const char *bad_tokens[] = {"submit", spec, "--repo", "acme/app", "--max-tokens", "lots", NULL};
    const char *bad_priority[] = {"submit",     spec,     "--repo", "acme/app",
                                  "--priority", "urgent", NULL};
    const char *missing_file[] = {"submit", "/nonexistent/spec.md", "--repo", "acme/app", NULL};
    const char *no_id[] = {"approve", NULL};
    const char *no_value[] = {"reject", "x", "--reason", NULL};
    const char *two_ids[] = {"status", "a", "b", NULL};
    const char *bad_dead[] = {"dead", "resurrect", NULL};
    const char *argv_secret[] = {"submit",         spec, "--repo", "acme/app", "--sign-secret",
                                 "s3cr3t-in-argv", NULL};
    const char *argv_secret_eq[] = {"dead", "requeue", "1-0", "--sign-secret=s3cr3t-in-argv", NULL};
    char *empty = write_spec("empty.jwt", "\n");
    const char *both_tokens[] = {"retry", "x", "--token", "a.b.c", "--token-file", empty, NULL};
    const char *no_token_file[] = {"dead",         "requeue",        "1-0",
                                   "--token-file", "/nonexistent/t", NULL};
    const char *empty_token[] = {"submit", spec, "--repo", "acme/app", "--token-file", empty, NULL};
    struct {
        const char *const *args;
        const char *needle;
    } cases[] = {
        {none, "missing command"},
        {unknown_cmd, "unknown command 'frobnicate'"},
        {unknown_opt, "unknown option --colour"},
        {no_repo, "--repo OWNER/NAME is required"},
        {bad_repo, "--repo: must be OWNER/NAME"},
        {bad_tokens, "--max-tokens"},
        {bad_priority, "priority: must be one of"},
        {missing_file, "cannot read spec"},
        {no_id, "missing argument"},
        {no_value, "--reason needs a value"},
        {two_ids, "unexpected argument 'b'"},
        {bad_dead, "unknown action 'resurrect'"},
        {argv_secret, "--sign-secret: a secret is not taken from a flag (flags show in "
                      "/proc/<pid>/cmdline): give --sign-secret-file PATH (a file holding it) or "
                      "set DREAM_SIGN_SECRET"},
        {argv_secret_eq, "give --sign-secret-file PATH"},
        {both_tokens, "give --token or --token-file, not both"},
        {no_token_file, "--token-file /nonexistent/t: No such file or directory"},
        {empty_token, "is empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out, *err;
        int code = ctl_run(NULL, cases[i].args, &out, &err);
        cr_assert_eq(code, DM_CTL_EXIT_USAGE, "case %zu (%s): exit %d", i, cases[i].needle, code);
        cr_assert_not_null(strstr(err, cases[i].needle), "case %zu: stderr %s", i, err);
        cr_assert_null(strstr(err, "s3cr3t"), "a secret given as a flag is never repeated");
        free(out);
        free(err);
    }
    /* Nothing was queued by any of them. */
    cr_assert_leq(xlen("dream:jobs"), 0);

    {
        const char *help[] = {"--help", NULL};
        const char *submit_help[] = {"submit", "--help", NULL};
        const char *version[] = {"--version", NULL};
        char *out, *err;
        cr_assert_eq(ctl_run(NULL, help, &out, &err), 0);
        cr_assert_not_null(strstr(out, "Exit codes:"), "%s", out);
        cr_assert_not_null(strstr(out, "3  the watched or awaited job is parked"), "%s", out);
        cr_assert_not_null(strstr(out, "4  Redis unreachable"), "%s", out);
        cr_assert_not_null(strstr(out, "workers"), "%s", out);
        free(out);
        free(err);
        cr_assert_eq(ctl_run(NULL, submit_help, &out, &err), 0);
        cr_assert_not_null(strstr(out, "--repo OWNER/NAME"), "%s", out);
        cr_assert_not_null(strstr(out, "--sign-secret-file PATH"), "%s", out);
        cr_assert_not_null(strstr(out, "Exit codes:"), "%s", out);
        free(out);
        free(err);
        cr_assert_eq(ctl_run(NULL, version, &out, &err), 0);
        cr_assert_not_null(strstr(out, "dreamctl " DREAM_VERSION), "%s", out);
        free(out);
        free(err);
    }
    free(spec);
    free(empty);
}

Test(ctl, unreachable_redis_exits_4)
{
    char url[100];
    char *spec = write_spec("x.md", spec_text);
    const char *jobs[] = {"jobs", NULL};
    const char *submit[] = {"submit", spec, "--repo", "acme/app", NULL};
    const char *approve[] = {"approve", "some-job", NULL};
    const char *watch[] = {"watch", "some-job", NULL};
    const char *const *cases[] = {jobs, submit, approve, watch};

    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", dmt_free_port());
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctlrun cr;
        char *out, *err;
        int code;
        ctl_start(&cr, url, NULL, cases[i]);
        code = ctl_finish(&cr, 10000, &out, &err);
        cr_assert_eq(code, DM_CTL_EXIT_UNREACHABLE, "case %zu: exit %d", i, code);
        cr_assert_not_null(strstr(err, "cannot reach Redis"), "case %zu: %s", i, err);
        free(out);
        free(err);
    }
    free(spec);
}

Test(ctl, approve_and_reject_refuse_a_job_that_is_not_parked)
{
    const char *approve[] = {"approve", "busy-1", NULL};
    const char *reject[] = {"reject", "busy-1", "--reason", "no", NULL};
    const char *ghost[] = {"approve", "ghost-1", NULL};
    char *out, *err, *st;

    freeReplyObject(redisCommand(rc, "HSET dream:job:busy-1 status running stage generate"));
    cr_assert_eq(ctl_run(NULL, approve, &out, &err), DM_CTL_EXIT_FAILED);
    cr_assert_not_null(strstr(err, "cannot approve busy-1: it is not parked (job is running)"),
                       "%s", err);
    free(out);
    free(err);
    cr_assert_eq(ctl_run(NULL, reject, &out, &err), DM_CTL_EXIT_FAILED);
    cr_assert_not_null(strstr(err, "cannot reject busy-1: it is not parked (job is running)"), "%s",
                       err);
    free(out);
    free(err);
    cr_assert_eq(ctl_run(NULL, ghost, &out, &err), DM_CTL_EXIT_FAILED);
    cr_assert_not_null(strstr(err, "no such job"), "%s", err);
    free(out);
    free(err);
    /* Nothing changed: no resume entry, no event, status untouched. */
    cr_assert_leq(xlen("dream:jobs"), 0);
    cr_assert_leq(xlen("dream:job:busy-1:events"), 0);
    st = hget("dream:job:busy-1", "status");
    cr_assert_str_eq(st, "running");
    free(st);
}

Test(ctl, approve_parked_job_emits_approved_and_resume_runs_it)
{
    struct dmt_replica rep;
    const char *watch[] = {"watch", "park-1", NULL};
    const char *status[] = {"status", "park-1", NULL};
    const char *approve[] = {"approve", "park-1", "--by", "alice", "--json", NULL};
    const char *watch_after[] = {"watch", "park-1", "--timeout", "30", NULL};
    char *out, *err, *s;
    redisReply *r;
    cJSON *o;
    int code;

    park_by_hand("park-1");
    /* A parked job: watch ends at once with exit 3. */
    code = ctl_run(NULL, watch, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_PARKED, "exit %d", code);
    cr_assert_not_null(strstr(out, "paused_approval"), "%s", out);
    cr_assert_not_null(strstr(out, "DROP TABLE"), "%s", out);
    free(out);
    free(err);

    /* status shows what the gate found and how to decide. */
    code = ctl_run(NULL, status, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d: %s", code, err);
    cr_assert_not_null(strstr(out, "paused_approval"), "%s", out);
    cr_assert_not_null(strstr(out, "migrations/x.sql:1 DROP TABLE (critical"), "%s", out);
    cr_assert_not_null(strstr(out, "dreamctl approve park-1"), "%s", out);
    free(out);
    free(err);

    code = ctl_run(NULL, approve, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d: %s", code, err);
    o = cJSON_Parse(out);
    cr_assert_not_null(o, "%s", out);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "action")), "approved");
    r = redisCommand(rc, "XRANGE dream:jobs %s %s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(o, "resumeEntry")),
                     cJSON_GetStringValue(cJSON_GetObjectItem(o, "resumeEntry")));
    cr_assert_eq(r->elements, 1, "the resume entry is on the jobs stream");
    cr_assert_str_eq(r->element[0]->element[1]->element[1]->str, "resume");
    cr_assert_str_eq(r->element[0]->element[1]->element[2]->str, "id");
    cr_assert_str_eq(r->element[0]->element[1]->element[3]->str, "park-1");
    freeReplyObject(r);
    cJSON_Delete(o);
    free(out);
    free(err);
    s = job_statuses("park-1");
    cr_assert_str_eq(s, "paused_approval,approved");
    free(s);
    s = hget("dream:job:park-1", "approved_by");
    cr_assert_str_eq(s, "alice");
    free(s);
    r = redisCommand(rc, "ZSCORE dream:parked park-1");
    cr_assert_eq(r->type, REDIS_REPLY_NIL, "no longer parked");
    freeReplyObject(r);

    /* Any replica picks the resume up and finishes from the checkpoint (stage push). */
    start_replica(&rep, "r1", fast);
    code = ctl_run(NULL, watch_after, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d: %s", code, out);
    free(out);
    free(err);
    s = job_statuses("park-1");
    cr_assert_str_eq(s, "paused_approval,approved,resumed,pushing,complete");
    free(s);
}

Test(ctl, reject_parked_job_emits_rejected_and_sets_ttl)
{
    const char *reject[] = {"reject", "park-2", "--reason", "drops the users table",
                            "--by",   "bob",    NULL};
    const char *watch[] = {"watch", "park-2", "--json", NULL};
    char *out, *err, *s;
    redisReply *r;
    cJSON *v[8];
    int code, n;

    park_by_hand("park-2");
    code = ctl_run(NULL, reject, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d: %s", code, err);
    cr_assert_not_null(strstr(out, "rejected job park-2"), "%s", out);
    free(out);
    free(err);
    s = hget("dream:job:park-2", "status");
    cr_assert_str_eq(s, "rejected");
    free(s);
    r = redisCommand(rc, "TTL dream:job:park-2");
    cr_assert(r->integer > 0 && r->integer <= 604800, "TTL %lld", r->integer);
    freeReplyObject(r);
    r = redisCommand(rc, "ZSCORE dream:parked park-2");
    cr_assert_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    cr_assert_leq(xlen("dream:jobs"), 0, "no resume entry");

    code = ctl_run(NULL, watch, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_FAILED, "a rejected job exits 1, got %d", code);
    n = json_lines(out, v, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(v[1], "status")), "rejected");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(v[1], "error")),
                     "drops the users table");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(v[1], "worker")), "bob");
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(v[1], "seq")), 2);
    for (int i = 0; i < n; i++) {
        cJSON_Delete(v[i]);
    }
    free(out);
    free(err);
}

Test(ctl, cancel_running_job_ends_cancelled)
{
    struct dmt_replica rep;
    const char *slow[] = {"--stages=test", "--test-stage-ms=20000", NULL};
    char *spec = write_spec("c.md", spec_text);
    const char *submit[] = {"submit", spec, "--repo", "acme/app", "--job-id", "cancel-1", NULL};
    const char *cancel[] = {"cancel", "cancel-1", "--by", "carol", NULL};
    const char *watch[] = {"watch", "cancel-1", "--timeout", "20", NULL};
    const char *again[] = {"cancel", "cancel-1", NULL};
    char *out, *err, *s;
    long long t0;
    int code;

    start_replica(&rep, "r1", slow);
    cr_assert_eq(ctl_run(NULL, submit, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    wait_status("cancel-1", "running", 10000);
    t0 = dmt_now_ms();
    code = ctl_run(NULL, cancel, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "%s", err);
    cr_assert_not_null(strstr(out, "cancel requested"), "%s", out);
    free(out);
    free(err);
    code = ctl_run(NULL, watch, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_FAILED, "exit %d: %s", code, out);
    cr_assert_not_null(strstr(out, "cancelled"), "%s", out);
    /* The 20 s stage was interrupted, not waited out. */
    cr_assert_lt(dmt_now_ms() - t0, 10000);
    free(out);
    free(err);
    s = hget("dream:job:cancel-1", "status");
    cr_assert_str_eq(s, "cancelled");
    free(s);
    code = ctl_run(NULL, again, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_FAILED);
    cr_assert_not_null(strstr(err, "already ended"), "%s", err);
    free(out);
    free(err);
    free(spec);
}

Test(ctl, dead_list_requeue_purge)
{
    struct dmt_replica a, b;
    const char *slow[] = {"--stages=test", "--test-stage-ms=5000", "--lease-ms=1000",
                          "--max-attempts=1", NULL};
    const char *quick[] = {"--stages=test", "--test-stage-ms=20", "--lease-ms=1000",
                           "--max-attempts=1", NULL};
    const char *list[] = {"dead", "--json", NULL};
    const char *watch[] = {"watch", "dead-1", "--timeout", "30", NULL};
    char *job = dmt_job_json("dead-1", NULL, NULL);
    char *out, *err, *s, dead_id[64], empty_id[64];
    cJSON *o, *first = NULL, *it;
    int code;

    /* A job whose replica dies, with max-attempts 1, is dead-lettered by the next replica. */
    start_replica(&a, "victim", slow);
    free(dmt_submit(rc, job));
    wait_status("dead-1", "running", 10000);
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    start_replica(&b, "rescuer", quick);
    wait_status("dead-1", "dead_lettered", 15000);
    /* And an entry with no job is dead-lettered at once. */
    freeReplyObject(redisCommand(rc, "XADD dream:jobs * type build"));
    for (long long t0 = dmt_now_ms(); xlen("dream:dead") < 2 && dmt_now_ms() - t0 < 10000;) {
        dmt_sleep_ms(20);
    }

    code = ctl_run(NULL, list, &out, &err);
    cr_assert_eq(code, 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(o) && cJSON_GetArraySize(o) == 2, "%s", out);
    empty_id[0] = dead_id[0] = '\0';
    cJSON_ArrayForEach(it, o)
    {
        const char *jid = cJSON_GetStringValue(cJSON_GetObjectItem(it, "jobId"));
        if (jid && strcmp(jid, "dead-1") == 0) {
            first = it;
            snprintf(dead_id, sizeof(dead_id), "%s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(it, "id")));
        } else {
            snprintf(empty_id, sizeof(empty_id), "%s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(it, "id")));
        }
    }
    cr_assert_not_null(first, "%s", out);
    cr_assert_not_null(
        strstr(cJSON_GetStringValue(cJSON_GetObjectItem(first, "reason")), "delivered 2 times"));
    cJSON_Delete(o);
    free(out);
    free(err);

    /* Requeue: the finished job runs again (not answered `duplicate`) and completes. */
    {
        const char *requeue[] = {"dead", "requeue", dead_id, "--by", "ops", NULL};
        code = ctl_run(NULL, requeue, &out, &err);
        cr_assert_eq(code, 0, "%s", err);
        cr_assert_not_null(strstr(out, "of job dead-1"), "%s", out);
        free(out);
        free(err);
    }
    code = ctl_run(NULL, watch, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "exit %d: %s", code, out);
    free(out);
    free(err);
    s = job_statuses("dead-1");
    cr_assert_null(strstr(s, "duplicate"), "%s", s);
    cr_assert(strlen(s) > 9 && strcmp(s + strlen(s) - 9, ",complete") == 0, "%s", s);
    free(s);
    cr_assert_eq(xlen("dream:dead"), 1, "the requeued dead letter is gone");

    /* The entry without a job cannot be requeued; purge deletes one, then all. */
    {
        const char *requeue[] = {"dead", "requeue", empty_id, NULL};
        const char *purge_one[] = {"dead", "purge", empty_id, NULL};
        const char *purge_again[] = {"dead", "purge", empty_id, NULL};
        const char *purge_all[] = {"dead", "purge", "--json", NULL};
        code = ctl_run(NULL, requeue, &out, &err);
        cr_assert_eq(code, DM_CTL_EXIT_FAILED);
        cr_assert_not_null(strstr(err, "no job to requeue"), "%s", err);
        free(out);
        free(err);
        cr_assert_eq(ctl_run(NULL, purge_one, &out, &err), 0, "%s", err);
        cr_assert_not_null(strstr(out, "purged 1 dead letter"), "%s", out);
        free(out);
        free(err);
        cr_assert_eq(xlen("dream:dead"), 0);
        cr_assert_eq(ctl_run(NULL, purge_again, &out, &err), DM_CTL_EXIT_FAILED);
        free(out);
        free(err);
        freeReplyObject(redisCommand(rc, "XADD dream:jobs * type build"));
        freeReplyObject(redisCommand(rc, "XADD dream:jobs * type build"));
        for (long long t0 = dmt_now_ms(); xlen("dream:dead") < 2 && dmt_now_ms() - t0 < 10000;) {
            dmt_sleep_ms(20);
        }
        cr_assert_eq(ctl_run(NULL, purge_all, &out, &err), 0, "%s", err);
        o = cJSON_Parse(out);
        cr_assert_not_null(o, "%s", out);
        cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "purged")), 2);
        cJSON_Delete(o);
        free(out);
        free(err);
        cr_assert_leq(xlen("dream:dead"), 0);
    }
    free(job);
}

Test(ctl, workers_lists_the_replicas)
{
    struct dmt_replica r1, r2;
    const char *json[] = {"workers", "--json", NULL};
    const char *human[] = {"workers", NULL};
    char *out, *err;
    cJSON *o, *it;
    int seen = 0;

    start_replica(&r1, "alpha", fast);
    start_replica(&r2, "beta", fast);
    cr_assert_eq(ctl_run(NULL, json, &out, &err), 0, "%s", err);
    o = cJSON_Parse(out);
    cr_assert(cJSON_IsArray(o), "%s", out);
    cJSON_ArrayForEach(it, o)
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(it, "name"));
        cr_assert_not_null(name);
        seen |= strcmp(name, "alpha") == 0 ? 1 : strcmp(name, "beta") == 0 ? 2 : 0;
        cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(it, "version")), DREAM_VERSION);
        cr_assert_gt(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "ttlMs")), 0);
    }
    cr_assert_eq(cJSON_GetArraySize(o), 2);
    cr_assert_eq(seen, 3, "both replicas listed: %s", out);
    cJSON_Delete(o);
    free(out);
    free(err);
    cr_assert_eq(ctl_run(NULL, human, &out, &err), 0, "%s", err);
    cr_assert_not_null(strstr(out, "alpha"), "%s", out);
    cr_assert_not_null(strstr(out, "beta"), "%s", out);
    cr_assert_not_null(strstr(out, "running"), "%s", out);
    free(out);
    free(err);
}

Test(ctl, watch_timeout_exits_5_and_duplicate_submit_exits_1)
{
    struct dmt_replica rep;
    char *spec = write_spec("d.md", spec_text);
    const char *watch[] = {"watch", "never-1", "--timeout", "0.5", NULL};
    const char *first[] = {"submit",   spec,    "--repo", "acme/app",
                           "--job-id", "dup-1", "--wait", NULL};
    const char *second[] = {"submit", spec,      "--repo",    "acme/app", "--job-id",
                            "dup-1",  "--watch", "--timeout", "20",       NULL};
    char *out, *err;
    int code;

    code = ctl_run(NULL, watch, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_TIMEOUT, "exit %d", code);
    free(out);
    free(err);

    start_replica(&rep, "r1", fast);
    cr_assert_eq(ctl_run(NULL, first, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    /* The same id again: the engine refuses it, and --watch must not report the old end. */
    code = ctl_run(NULL, second, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_FAILED, "exit %d: %s", code, out);
    cr_assert_not_null(strstr(out, "duplicate"), "%s", out);
    cr_assert_null(strstr(out, "complete "), "the old events are not replayed: %s", out);
    free(out);
    free(err);
    free(spec);
}

Test(ctl, watch_without_id_follows_every_job)
{
    struct dmt_replica rep;
    struct ctlrun all;
    const char *args[] = {"watch", "--json", "--timeout", "4", NULL};
    char *a = dmt_job_json("all-a", NULL, NULL), *b = dmt_job_json("all-b", NULL, NULL);
    char *out, *err;
    cJSON *v[64];
    int code, n, done_a = 0, done_b = 0;

    start_replica(&rep, "r1", fast);
    /* An older job's events are not replayed: only what happens from now on. */
    free(dmt_submit(rc, a));
    wait_status("all-a", "complete", 10000);
    ctl_start(&all, dmt_redis_url(&redis), NULL, args);
    /* Submitted once it follows the stream: what it must see is then certain to come after. */
    cr_assert(dmt_wait_blocked(rc, "xread", 3000), "dreamctl watch is waiting in XREAD");
    free(dmt_submit(rc, b));
    code = ctl_finish(&all, 15000, &out, &err);
    cr_assert_eq(code, DM_CTL_EXIT_OK, "following every job ends 0 at --timeout, got %d: %s", code,
                 err);
    n = json_lines(out, v, 64);
    for (int i = 0; i < n; i++) {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(v[i], "jobId"));
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(v[i], "status"));
        done_a += strcmp(id, "all-a") == 0;
        done_b += strcmp(id, "all-b") == 0 && strcmp(st, "complete") == 0;
        cJSON_Delete(v[i]);
    }
    cr_assert_eq(done_a, 0, "no replay of earlier jobs: %s", out);
    cr_assert_eq(done_b, 1, "the new job's events, to its end: %s", out);
    free(out);
    free(err);
    free(a);
    free(b);
}
