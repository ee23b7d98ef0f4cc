/*
 * Push and pull request end to end (issues 7 and 8): the real dreamd pushing with libgit2 over
 * a real smart-HTTP git server (lighttpd + git http-backend, Basic auth, hooks) or file://,
 * opening pull requests on the fake GitHub. Crashes after the push and after the PR, foreign
 * branches, and three replicas with one killed: never a second branch, commit or PR.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dme2e.h"
#include "githttp.h"

static struct dmt_world world;
static struct dmt_githttp ghttp;

static void setup(void)
{
    dmt_world_start(&world, NULL);
    memset(&ghttp, 0, sizeof(ghttp));
}

static void teardown(void)
{
    dmt_githttp_stop(&ghttp);
    dmt_world_stop(&world);
}

TestSuite(push, .init = setup, .fini = teardown, .timeout = 300);

#define BRANCH "dream/todo-api"
#define WRONG_TOKEN "ghp_WrongToken0000000000000000000000000000"
#define HOOK_MESSAGE "push refused by policy: acme/app is frozen for the audit"

/* The default job's generated files (dmt_world_job with spec NULL), sorted. */
static const char *const generated[] = {
    "docs/dream-specs/todo-api.md",
    "migrations/0001_create_todos.sql",
    "src/components/TodoList.tsx",
    "src/routes/todos.ts",
};

/* ---- helpers ---- */

static void submit(const char *id, const char *spec)
{
    char *job = dmt_world_job(id, spec, "builder", 200000, 5.0);
    free(dmt_submit(world.rc, job));
    free(job);
}

static char *status_of(const char *id)
{
    return dmt_world_hget(&world, id, "status");
}

static void expect_status(const char *id, const char *want, const char *log)
{
    char *st = status_of(id);
    char *err = dmt_world_hget(&world, id, "error");
    cr_assert(st && strcmp(st, want) == 0, "job %s is %s, not %s (error: %s; log %s)", id,
              st ? st : "(none)", want, err ? err : "", log);
    free(st);
    free(err);
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

/* Entries pending for one consumer. */
static long long pending_of(const char *consumer)
{
    redisReply *r = redisCommand(world.rc, "XPENDING dream:jobs workers - + 1000 %s", consumer);
    long long n;
    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "XPENDING");
    n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

/* Entries in the bare repository's reflog of a branch (core.logAllRefUpdates=always). */
static int reflog_entries(const char *branch)
{
    char *out = dmt_sh("git --git-dir='%s' reflog show --format=%%H 'refs/heads/%s' | wc -l",
                       world.bare, branch);
    int n = atoi(out);
    free(out);
    return n;
}

/* Makes `branch` in the bare repository as someone else would: a commit with foreign.txt on
 * top of main. Returns its commit id (caller frees). */
static char *make_foreign_branch(const char *branch)
{
    char *dir = dmt_tempdir("foreign");
    char *sha;
    free(dmt_sh("cd '%s' && git clone -q '%s' c && cd c && git checkout -q -b '%s' && "
                "echo 'not yours' > foreign.txt && git add foreign.txt && "
                "git -c user.name=Someone -c user.email=someone@example.com commit -q -m "
                "'Someone else' && git push -q origin '%s' 2>&1",
                dir, world.bare, branch, branch));
    dmt_rmtree(dir);
    free(dir);
    sha = dmt_world_rev(&world, branch);
    cr_assert_not_null(sha, "foreign branch %s made", branch);
    return sha;
}

static int wait_gh_request(const char *method, const char *path, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    while (dmt_now_ms() < deadline) {
        if (dmt_world_gh_requests(&world, method, path) > 0) {
            return 1;
        }
        dmt_sleep_ms(20);
    }
    return 0;
}

static int wait_event(const char *id, const char *status, int timeout_ms)
{
    long long deadline = dmt_now_ms() + timeout_ms;
    while (dmt_now_ms() < deadline) {
        cJSON *ev = dmt_world_event(&world, id, status);
        if (ev) {
            cJSON_Delete(ev);
            return 1;
        }
        dmt_sleep_ms(20);
    }
    return 0;
}

/* The html_url of the only pull request (asserts there is exactly one). */
static char *only_pr_url(void)
{
    char *out = dmt_world_gh(&world, "GET", "/_fake/pulls", NULL);
    cJSON *a = cJSON_Parse(out);
    char *url;
    cr_assert(cJSON_IsArray(a) && cJSON_GetArraySize(a) == 1, "exactly one PR: %s", out);
    url = strdup(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "html_url")));
    cJSON_Delete(a);
    free(out);
    return url;
}

static void expect_one_terminal(const char *id)
{
    struct dmt_jobevents *v;
    int n = dmt_collect(world.rc, &v);
    const struct dmt_jobevents *j = dmt_find(v, n, id);
    cr_assert_not_null(j, "events of %s", id);
    cr_assert_eq(j->terminal, 1, "%s ended %d times", id, j->terminal);
    cr_assert(j->seq_ok, "%s: seq runs 1..%d without gaps or repeats", id, j->n);
    free(v);
}

/* sha1sum of a byte string (caller frees). */
static char *sha1_of(const char *data, size_t len)
{
    char *tmp = dmt_tempdir("sha");
    char path[1024];
    char *sum;
    FILE *f;
    snprintf(path, sizeof(path), "%s/blob", tmp);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    sum = dmt_sh("sha1sum < '%s'", path);
    dmt_rmtree(tmp);
    free(tmp);
    return sum;
}

/* ---- issue 7: smart HTTP ---- */

Test(push, http_push_with_the_token_puts_exactly_the_generated_files_on_the_base)
{
    struct dmt_replica rep;
    char *files, *diff, *parent, *main_sha, *count, *msg, *access, *leak, *log;
    char expect[1024] = "";
    char path[1024];

    dmt_world_serve_http(&world, &ghttp);
    dmt_world_replica_git(&world, &rep, "push-http", ghttp.url_template, NULL, NULL);
    submit("http-1", NULL);
    cr_assert(dmt_world_wait_status(&world, "http-1", "complete,failed", 90000), "ended");
    expect_status("http-1", "complete", rep.log);

    /* It went over HTTP: git-receive-pack was POSTed to the server. */
    snprintf(path, sizeof(path), "%s/access.log", ghttp.dir);
    for (int i = 0; i < 100; i++) {
        /* lighttpd writes its access log in batches. */
        access = dmt_read_file(path);
        if (access && strstr(access, "git-receive-pack")) {
            break;
        }
        free(access);
        access = NULL;
        dmt_sleep_ms(100);
    }
    if (!access) {
        access = dmt_read_file(path);
    }
    cr_assert_not_null(access);
    cr_assert_not_null(strstr(access, "git-receive-pack"), "push over smart HTTP: %s", access);

    /* One commit on top of main, holding exactly the generated files, byte for byte. */
    main_sha = dmt_world_rev(&world, "main");
    parent = dmt_world_rev(&world, BRANCH "^");
    cr_assert_str_eq(parent, main_sha, "the branch's commit sits on the base's tip");
    count = dmt_sh("git --git-dir='%s' rev-list --count main.." BRANCH, world.bare);
    cr_assert_str_eq(count, "1");
    diff = dmt_sh("git --git-dir='%s' diff --name-only main " BRANCH, world.bare);
    for (size_t i = 0; i < sizeof(generated) / sizeof(generated[0]); i++) {
        strcat(expect, i ? "\n" : "");
        strcat(expect, generated[i]);
    }
    cr_assert_str_eq(diff, expect, "changed files");
    files = dmt_world_branch_files(&world, BRANCH);
    cr_assert_not_null(strstr(files, "README.md"), "base kept: %s", files);
    for (size_t i = 0; i < sizeof(generated) / sizeof(generated[0]); i++) {
        char *blob = dmt_sh("git --git-dir='%s' cat-file blob '" BRANCH ":%s' | sha1sum",
                            world.bare, generated[i]);
        char *want;
        if (i == 0) {
            /* The spec document is the spec itself. */
            char *job = dmt_world_job("x", NULL, NULL, 1, 1);
            cJSON *o = cJSON_Parse(job);
            const char *md = cJSON_GetStringValue(cJSON_GetObjectItem(o, "specMarkdown"));
            want = sha1_of(md, strlen(md));
            cJSON_Delete(o);
            free(job);
        } else {
            /* The others are what the model wrote, as checkpointed. */
            redisReply *r = redisCommand(world.rc, "HGET dream:job:http-1:files %s", generated[i]);
            cr_assert(r && r->type == REDIS_REPLY_STRING, "checkpoint of %s", generated[i]);
            want = sha1_of(r->str, r->len);
            freeReplyObject(r);
        }
        cr_assert_str_eq(blob, want, "%s on the branch is what was generated", generated[i]);
        free(blob);
        free(want);
    }
    msg = dmt_sh("git --git-dir='%s' log -1 --format=%%B " BRANCH, world.bare);
    cr_assert_not_null(strstr(msg, "Dream-Job: http-1"), "%s", msg);
    cr_assert_eq(dmt_world_prs_for(&world, BRANCH), 1);

    /* The token is not in the mirror (config, FETCH_HEAD, ...) nor in the log. */
    leak = dmt_sh("grep -rl '%s' '%s/data' || true", DMT_GH_TOKEN, world.dir);
    cr_assert_str_eq(leak, "", "token stored in %s", leak);
    cr_assert_eq(dmt_replica_stop(&rep, 30000) >= 0, 1);
    log = dmt_read_file(rep.log);
    cr_assert_null(strstr(log, DMT_GH_TOKEN), "token in the log");
    free(files);
    free(diff);
    free(parent);
    free(main_sha);
    free(count);
    free(msg);
    free(access);
    free(leak);
    free(log);
}

Test(push, http_wrong_token_fails_with_a_clear_auth_error_and_no_leak)
{
    struct dmt_replica rep;
    char *error, *log, *refs, *keys;

    dmt_world_serve_http(&world, &ghttp);
    dmt_world_replica_git(&world, &rep, "push-bad", ghttp.url_template, WRONG_TOKEN, NULL);
    submit("badtoken-1", NULL);
    cr_assert(dmt_world_wait_status(&world, "badtoken-1", "complete,failed", 90000), "ended");
    expect_status("badtoken-1", "failed", rep.log);
    error = dmt_world_hget(&world, "badtoken-1", "error");
    cr_assert_not_null(strstr(error, "authentication failed"), "a clear auth error: %s", error);
    cr_assert_null(strstr(error, WRONG_TOKEN), "token in the error: %s", error);
    cr_assert_null(strstr(error, "WrongToken"), "token in the error: %s", error);
    expect_one_terminal("badtoken-1");
    refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    keys = dmt_world_redis_grep(&world, "WrongToken");
    cr_assert_str_eq(keys, "", "token stored in Redis: %s", keys);
    dmt_replica_stop(&rep, 30000);
    log = dmt_read_file(rep.log);
    cr_assert_not_null(strstr(log, "authentication failed"), "the log says why");
    cr_assert_null(strstr(log, "WrongToken"), "token in the log");
    free(error);
    free(log);
    free(refs);
    free(keys);
}

Test(push, http_rejecting_hook_fails_the_job_with_the_hooks_message)
{
    struct dmt_replica rep;
    char *error, *refs;

    dmt_world_serve_http(&world, &ghttp);
    dmt_git_reject_hook(world.bare, HOOK_MESSAGE);
    dmt_world_replica_git(&world, &rep, "push-hook", ghttp.url_template, NULL, NULL);
    submit("hook-1", NULL);
    cr_assert(dmt_world_wait_status(&world, "hook-1", "complete,failed", 120000), "ended");
    expect_status("hook-1", "failed", rep.log);
    error = dmt_world_hget(&world, "hook-1", "error");
    cr_assert_not_null(strstr(error, HOOK_MESSAGE), "the hook's message: %s", error);
    cr_assert_not_null(strstr(error, BRANCH), "names the branch: %s", error);
    expect_one_terminal("hook-1");
    refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main", "the hook refused the branch");
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    free(error);
    free(refs);
}

/* ---- issue 7: crashes ---- */

Test(push, crash_after_push_before_the_pr_opens_one_pr_and_pushes_no_second_commit)
{
    struct dmt_replica a, b;
    const char *lease[] = {"--lease-ms=3000", NULL};
    char *commit, *recorded, *after, *pr, *url;
    cJSON *done;

    free(dmt_sh("git --git-dir='%s' config core.logAllRefUpdates always", world.bare));
    /* The first PR request hangs for 8 s (then still gets made, like a request the crashed
     * replica had already sent). */
    free(dmt_world_gh(&world, "POST", "/_fake/script",
                      "[{\"method\":\"POST\",\"path\":\"/pulls\",\"delay_ms\":8000,\"times\":1}]"));
    dmt_world_replica(&world, &a, "crash-a", lease);
    submit("crash-push", NULL);
    cr_assert(wait_gh_request("POST", "/repos/acme/app/pulls", 90000), "PR request sent");
    commit = dmt_world_rev(&world, BRANCH);
    cr_assert_not_null(commit, "pushed before the PR call");
    recorded = dmt_world_hget(&world, "crash-push", "commit");
    cr_assert_str_eq(recorded, commit, "the push was recorded");
    cr_assert_eq(dmt_stop(a.pid, SIGKILL, 5000) >= 0, 1, "killed");
    a.pid = 0;

    dmt_world_replica(&world, &b, "crash-b", lease);
    cr_assert(dmt_world_wait_status(&world, "crash-push", "complete,failed", 90000),
              "taken over and ended (log %s)", b.log);
    expect_status("crash-push", "complete", b.log);
    cr_assert_eq(dmt_count_in_file(b.log, "at stage pr (attempt 2"), 1,
                 "the new replica resumed at the PR stage (log %s)", b.log);
    cr_assert_eq(dmt_count_in_file(b.log, "\"pushed "), 0, "and pushed nothing itself");
    done = dmt_world_event(&world, "crash-push", "complete");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(done, "worker")), "crash-b");
    cJSON_Delete(done);
    /* Let the hung request of the dead replica land too. */
    dmt_sleep_ms(9000);
    url = only_pr_url();
    cr_assert_eq(dmt_world_prs_for(&world, BRANCH), 1);
    pr = dmt_world_hget(&world, "crash-push", "pr_url");
    cr_assert_str_eq(pr, url);
    after = dmt_world_rev(&world, BRANCH);
    cr_assert_str_eq(after, commit, "no second commit");
    cr_assert_eq(reflog_entries(BRANCH), 1, "the branch was written once");
    expect_one_terminal("crash-push");
    free(commit);
    free(recorded);
    free(after);
    free(pr);
    free(url);
}

Test(push, crash_after_the_pr_opened_before_complete_keeps_one_pr)
{
    struct dmt_replica a, b;
    const char *lease[] = {"--lease-ms=3000", NULL};
    char *commit, *pr, *url, *status, *after, *statuses;

    free(dmt_sh("git --git-dir='%s' config core.logAllRefUpdates always", world.bare));
    free(dmt_world_gh(&world, "POST", "/_fake/script",
                      "[{\"method\":\"POST\",\"path\":\"/pulls\",\"delay_ms\":2000,\"times\":1}]"));
    dmt_world_replica(&world, &a, "late-a", lease);
    submit("crash-pr", NULL);
    cr_assert(wait_gh_request("POST", "/repos/acme/app/pulls", 90000), "PR request sent");
    /* Stop reading while the PR call is in flight: the call finishes and is recorded
     * (pr_open), and the job is left before `complete` is written. Then the process dies. */
    kill(a.pid, SIGTERM);
    cr_assert(wait_event("crash-pr", "pr_open", 15000), "pr_open recorded (log %s)", a.log);
    cr_assert_eq(dmt_stop(a.pid, SIGKILL, 5000) >= 0, 1);
    a.pid = 0;
    status = status_of("crash-pr");
    cr_assert_str_neq(status, "complete", "the crash came before complete was recorded");
    statuses = dmt_world_statuses(&world, "crash-pr");
    cr_assert_null(strstr(statuses, "complete"), "%s", statuses);
    cr_assert_eq(pending_entries(), 1, "the entry is still pending for another replica");
    url = only_pr_url();
    commit = dmt_world_rev(&world, BRANCH);

    dmt_world_replica(&world, &b, "late-b", lease);
    cr_assert(dmt_world_wait_status(&world, "crash-pr", "complete,failed", 90000),
              "taken over and ended (log %s)", b.log);
    expect_status("crash-pr", "complete", b.log);
    cr_assert_eq(dmt_count_in_file(b.log, "at stage pr (attempt 2"), 1,
                 "the new replica resumed at the PR stage (log %s)", b.log);
    free(url);
    url = only_pr_url();
    pr = dmt_world_hget(&world, "crash-pr", "pr_url");
    cr_assert_str_eq(pr, url);
    cr_assert_eq(dmt_world_gh_requests(&world, "POST", "/repos/acme/app/pulls"), 1,
                 "the recorded PR was not asked for again");
    after = dmt_world_rev(&world, BRANCH);
    cr_assert_str_eq(after, commit, "no second commit");
    cr_assert_eq(reflog_entries(BRANCH), 1, "the branch was written once");
    expect_one_terminal("crash-pr");
    cr_assert_eq(pending_entries(), 0);
    free(commit);
    free(pr);
    free(url);
    free(status);
    free(after);
    free(statuses);
}

Test(push, crash_after_github_opened_the_pr_but_before_dreamd_heard_keeps_one_pr)
{
    struct dmt_replica a, b;
    const char *lease[] = {"--lease-ms=3000", NULL};
    char *url, *pr, *statuses;
    long long deadline;

    free(dmt_world_gh(&world, "POST", "/_fake/script",
                      "[{\"method\":\"POST\",\"path\":\"/pulls\",\"delay_ms\":1500,\"times\":1}]"));
    dmt_world_replica(&world, &a, "lost-a", lease);
    submit("crash-lost", NULL);
    cr_assert(wait_gh_request("POST", "/repos/acme/app/pulls", 90000), "PR request sent");
    cr_assert_eq(dmt_stop(a.pid, SIGKILL, 5000) >= 0, 1);
    a.pid = 0;
    /* GitHub still opens it; the job never learns. */
    deadline = dmt_now_ms() + 10000;
    while (dmt_now_ms() < deadline && dmt_world_pr_count(&world) == 0) {
        dmt_sleep_ms(50);
    }
    url = only_pr_url();
    statuses = dmt_world_statuses(&world, "crash-lost");
    cr_assert_null(strstr(statuses, "pr_open"), "%s", statuses);

    dmt_world_replica(&world, &b, "lost-b", lease);
    cr_assert(dmt_world_wait_status(&world, "crash-lost", "complete,failed", 90000),
              "taken over and ended (log %s)", b.log);
    expect_status("crash-lost", "complete", b.log);
    free(url);
    url = only_pr_url();
    pr = dmt_world_hget(&world, "crash-lost", "pr_url");
    cr_assert_str_eq(pr, url, "the existing PR was found and used");
    cr_assert_eq(dmt_world_gh_requests(&world, "POST", "/repos/acme/app/pulls"), 1,
                 "found by listing, not by trying to open a second one");
    expect_one_terminal("crash-lost");
    free(url);
    free(pr);
    free(statuses);
}

/* ---- issue 7: foreign branches ---- */

Test(push, foreign_branch_is_left_untouched_and_the_alternative_name_is_used)
{
    struct dmt_replica rep;
    /* The alternative: prefix + title slug + '-' + first 8 characters of the job id's slug. */
    const char *alt = BRANCH "-fb9c2e71";
    char *foreign, *after, *branch, *files, *foreign_file, *diff;

    foreign = make_foreign_branch(BRANCH);
    dmt_world_replica(&world, &rep, "push-alt", NULL);
    submit("fb9c2e71-aaaa", NULL);
    cr_assert(dmt_world_wait_status(&world, "fb9c2e71-aaaa", "complete,failed", 90000), "ended");
    expect_status("fb9c2e71-aaaa", "complete", rep.log);
    after = dmt_world_rev(&world, BRANCH);
    cr_assert_str_eq(after, foreign, "someone else's branch is untouched");
    foreign_file = dmt_world_branch_file(&world, BRANCH, "foreign.txt");
    cr_assert_str_eq(foreign_file, "not yours");
    branch = dmt_world_hget(&world, "fb9c2e71-aaaa", "branch");
    cr_assert_str_eq(branch, alt);
    files = dmt_world_branch_files(&world, alt);
    cr_assert_not_null(files, "the alternative branch exists");
    cr_assert_null(strstr(files, "foreign.txt"), "built on the base, not on the foreign branch");
    diff = dmt_sh("git --git-dir='%s' diff --name-only main '%s' | wc -l", world.bare, alt);
    cr_assert_str_eq(diff, "4");
    cr_assert_eq(dmt_world_prs_for(&world, alt), 1);
    cr_assert_eq(dmt_world_prs_for(&world, BRANCH), 0);
    free(foreign);
    free(after);
    free(branch);
    free(files);
    free(foreign_file);
    free(diff);
}

Test(push, both_names_foreign_fails_saying_why_and_touches_neither)
{
    struct dmt_replica rep;
    const char *alt = BRANCH "-fb9c2e71";
    char *f1, *f2, *a1, *a2, *error;

    f1 = make_foreign_branch(BRANCH);
    f2 = make_foreign_branch(alt);
    dmt_world_replica(&world, &rep, "push-alt2", NULL);
    submit("fb9c2e71-bbbb", NULL);
    cr_assert(dmt_world_wait_status(&world, "fb9c2e71-bbbb", "complete,failed", 90000), "ended");
    expect_status("fb9c2e71-bbbb", "failed", rep.log);
    error = dmt_world_hget(&world, "fb9c2e71-bbbb", "error");
    cr_assert_not_null(strstr(error, BRANCH " and " BRANCH "-fb9c2e71"), "%s", error);
    cr_assert_not_null(strstr(error, "not made by this job"), "%s", error);
    cr_assert_not_null(strstr(error, "nothing was pushed"), "%s", error);
    a1 = dmt_world_rev(&world, BRANCH);
    a2 = dmt_world_rev(&world, alt);
    cr_assert_str_eq(a1, f1);
    cr_assert_str_eq(a2, f2);
    cr_assert_eq(dmt_world_pr_count(&world), 0);
    expect_one_terminal("fb9c2e71-bbbb");
    free(f1);
    free(f2);
    free(a1);
    free(a2);
    free(error);
}

/* ---- issue 15: jobs on one repository share the look-ups of the remote ---- */

#define COALESCED 20

Test(push, twenty_jobs_on_one_repository_within_a_second_share_a_few_fetches, .timeout = 400)
{
    struct dmt_replica rep;
    int look_ups, downloads, pushes;
    long long t0;

    dmt_world_serve_http(&world, &ghttp);
    dmt_world_replica_git(&world, &rep, "coalesce", ghttp.url_template, NULL, NULL);
    dmt_replica_wait_ready(&rep, world.rc, 20000);
    t0 = dmt_now_ms();
    for (int i = 0; i < COALESCED; i++) {
        char id[32], spec[256];
        snprintf(id, sizeof(id), "co-%02d", i);
        snprintf(spec, sizeof(spec),
                 "# Shared %02d Service\n\n## API\n- GET /shared%02d returns ok\n", i, i);
        submit(id, spec);
    }
    cr_assert_lt(dmt_now_ms() - t0, 1000, "the jobs were submitted within a second");
    cr_assert_eq(dmt_wait_terminal(world.rc, COALESCED, 300000), COALESCED, "every job ended");
    for (int i = 0; i < COALESCED; i++) {
        char id[32], branch[64];
        char *got, *commit;
        snprintf(id, sizeof(id), "co-%02d", i);
        snprintf(branch, sizeof(branch), "dream/shared-%02d-service", i);
        expect_status(id, "complete", rep.log);
        got = dmt_world_hget(&world, id, "branch");
        cr_assert_str_eq(got, branch, "%s has its own branch", id);
        commit = dmt_world_rev(&world, branch);
        cr_assert_not_null(commit, "%s is on the remote", branch);
        cr_assert_eq(dmt_world_prs_for(&world, branch), 1, "%s has its own PR", id);
        expect_one_terminal(id);
        free(got);
        free(commit);
    }
    cr_assert_eq(dmt_world_pr_count(&world), COALESCED);
    /* Counted at the server, before it served them: a ref advertisement for a fetch (the
     * look-up of the base's tip) and a download. Each job used to make two of each. */
    look_ups = dmt_githttp_requests(&ghttp, "GET", "service=git-upload-pack");
    downloads = dmt_githttp_requests(&ghttp, "POST", "/git-upload-pack");
    pushes = dmt_githttp_requests(&ghttp, "POST", "/git-receive-pack");
    cr_log_info("%d jobs: %d fetch look-ups, %d downloads, %d push connections", COALESCED,
                look_ups, downloads, pushes);
    cr_assert_geq(look_ups, 1, "the base was looked up");
    cr_assert_leq(look_ups, 4, "at most a few look-ups for %d jobs: %d", COALESCED, look_ups);
    cr_assert_leq(downloads, 2, "at most a couple of downloads for %d jobs: %d", COALESCED,
                  downloads);
    cr_assert_geq(pushes, 1);
    cr_assert_leq(pushes, COALESCED, "never more than one push per job");
    cr_assert_eq(dmt_replica_stop(&rep, 30000) >= 0, 1);
}

/* ---- issue 8: three replicas, fifty jobs, one replica killed ---- */

#define MANY 50

Test(push, three_replicas_fifty_jobs_one_killed_every_job_ends_once_with_at_most_one_pr,
     .timeout = 600)
{
    struct dmt_replica reps[3];
    /* A few jobs each, so all three share the work. */
    const char *lease[] = {"--lease-ms=3000", "--max-jobs=6", NULL};
    struct dmt_jobevents *v;
    int n, done, complete = 0, failed = 0, prs = 0, taken_over = 0;
    long long held = 0;
    int victim = 0;
    char names[3][16] = {"many-a", "many-b", "many-c"};

    for (int i = 0; i < 3; i++) {
        dmt_world_replica(&world, &reps[i], names[i], lease);
    }
    for (int i = 0; i < 3; i++) {
        dmt_replica_wait_ready(&reps[i], world.rc, 20000);
    }
    for (int i = 0; i < MANY; i++) {
        char id[32], spec[256];
        snprintf(id, sizeof(id), "many-%02d", i);
        snprintf(spec, sizeof(spec),
                 "# Batch %02d Service\n\n## API\n- GET /batch%02d returns ok\n", i, i);
        submit(id, spec);
    }
    /* Kill one replica in the middle of the run. */
    done = dmt_wait_terminal(world.rc, MANY / 3, 240000);
    cr_assert_geq(done, MANY / 3, "a third of the jobs ended first");
    cr_assert_lt(done, MANY, "the kill comes while jobs are still running");
    /* ... the one holding the most jobs at that moment. */
    for (int i = 0; i < 3; i++) {
        long long h = pending_of(names[i]);
        if (h > held) {
            held = h;
            victim = i;
        }
    }
    cr_assert_gt(held, 0, "the killed replica holds jobs");
    cr_log_info("killing %s holding %lld jobs after %d ended", names[victim], held, done);
    cr_assert_eq(dmt_stop(reps[victim].pid, SIGKILL, 5000) >= 0, 1);
    reps[victim].pid = 0;
    done = dmt_wait_terminal(world.rc, MANY, 400000);
    cr_assert_eq(done, MANY, "every job ended (%d of %d)", done, MANY);
    /* Late duplicates, if any, would show up now. */
    dmt_sleep_ms(5000);

    n = dmt_collect(world.rc, &v);
    cr_assert_eq(n, MANY);
    for (int i = 0; i < MANY; i++) {
        char id[32], branch[64];
        const struct dmt_jobevents *j;
        int count;
        snprintf(id, sizeof(id), "many-%02d", i);
        snprintf(branch, sizeof(branch), "dream/batch-%02d-service", i);
        j = dmt_find(v, n, id);
        cr_assert_not_null(j, "%s has events", id);
        cr_assert_eq(j->terminal, 1, "%s ended %d times", id, j->terminal);
        cr_assert(j->seq_ok, "%s: seq 1..%d consecutive", id, j->n);
        count = dmt_world_prs_for(&world, branch);
        cr_assert_leq(count, 1, "%s has %d PRs", branch, count);
        if (strcmp(j->last, "complete") == 0) {
            complete++;
            cr_assert_eq(count, 1, "%s completed with a PR", id);
        } else {
            char *err = dmt_world_hget(&world, id, "error");
            cr_log_warn("%s ended %s: %s", id, j->last, err ? err : "");
            free(err);
            failed++;
        }
        prs += count;
        {
            char *statuses = dmt_world_statuses(&world, id);
            taken_over += strstr(statuses, "retrying") != NULL;
            free(statuses);
        }
    }
    cr_assert_gt(taken_over, 0, "jobs of the killed replica were taken over");
    cr_log_info("%d complete, %d not, %d PRs, %d taken over after the kill", complete, failed, prs,
                taken_over);
    cr_assert_eq(dmt_world_pr_count(&world), prs, "no PR for any other branch");
    cr_assert_eq(complete, MANY, "every job completed (%d did not)", failed);
    free(v);
    for (int i = 0; i < 3; i++) {
        if (reps[i].pid > 0) {
            int st = dmt_replica_stop(&reps[i], 30000);
            cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s exit %d", names[i], st);
        }
    }
}
