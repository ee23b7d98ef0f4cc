/*
 * Integration tests of the git module against real bare repositories: file:// remotes and a real
 * smart-HTTP server (git http-backend behind lighttpd, Basic auth). Everything is checked with
 * the git command line on the remote side, never through the module under test.
 */
#include "dream/core/refname.h"
#include "dream/io/git.h"
#include "dream/io/gitjob.h"

#include "dmtest.h"
#include "githttp.h"
/* dm_git_ref_counts: what libgit2 was given to parse of the remotes' advertisements. */
#include "../../src/io/git/git_private.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "ghs_TestToken1234567890abcdef"
#define T0 1767225600LL /* 2026-01-01T00:00:00Z */

static char *tmp;      /* per test */
static char *data_dir; /* mirrors */
static char *root;     /* file:// repositories */
static char file_tpl[1024];
static struct dmt_githttp g; /* the smart-HTTP server of the tests that start one */

static void setup(void)
{
    tmp = dmt_tempdir("git");
    if (asprintf(&data_dir, "%s/data", tmp) < 0 || asprintf(&root, "%s/remote", tmp) < 0) {
        cr_assert_fail("asprintf");
    }
    snprintf(file_tpl, sizeof(file_tpl), "file://%s/{owner}/{repo}.git", root);
}

static void teardown(void)
{
    /* Also after a failed assertion: never leave a web server behind. */
    dmt_githttp_stop(&g);
    dmt_rmtree(tmp);
    free(tmp);
    free(data_dir);
    free(root);
}

TestSuite(git, .init = setup, .fini = teardown, .timeout = 120);

static struct dm_git_opts opts_for(const char *tpl, const char *token)
{
    struct dm_git_opts o = DM_GIT_OPTS_INIT;
    o.data_dir = data_dir;
    o.url_template = tpl;
    o.token = token;
    o.author_name = "Dream Bot";
    o.author_email = "bot@dream.test";
    return o;
}

static const struct dm_git_file three_files[] = {
    {"src/routes/todos.ts", "export const todos = 1;\n", 24, 0},
    {"src/components/todo-list.tsx", "export function TodoList() { return null; }\n", 44, 0},
    {"docs/dream-specs/todo-api.md", "# Todo API\n", 11, 0},
};

static int publish(struct dm_git_result *res, const struct dm_git_opts *o, const char *branch,
                   const char *job, long long when, const struct dm_git_file *files, size_t n,
                   struct dm_error *err)
{
    return dm_git_publish(res, o, "acme", "widgets", "main", branch, job, "spec-1",
                          "[Dream] Todo API\n\nGenerated files for the Todo API spec.", when, files,
                          n, err);
}

/* Adds files on top of branch in a bare repository, as some other person would. */
static void commit_as_someone_else(const char *bare, const char *branch, const char *from,
                                   const char *path, const char *message)
{
    free(dmt_sh("set -e; w=$(mktemp -d); git clone -q '%s' \"$w/w\"; cd \"$w/w\";"
                "git checkout -q -B '%s' 'origin/%s'; mkdir -p \"$(dirname '%s')\";"
                "echo other > '%s'; git add -A; git -c user.name=Other -c user.email=o@x "
                "commit -q -m '%s'; git push -q origin 'HEAD:refs/heads/%s'; rm -rf \"$w\"",
                bare, branch, from, path, path, message, branch));
}

static void assert_branch_holds_files(const char *bare, const char *branch,
                                      const struct dm_git_result *res,
                                      const struct dm_git_file *files, size_t n)
{
    char *tip = dmt_sh("git -C '%s' rev-parse 'refs/heads/%s'", bare, branch);
    char *main_tip = dmt_sh("git -C '%s' rev-parse refs/heads/main", bare);
    char *parent = dmt_sh("git -C '%s' rev-parse '%s^'", bare, branch);
    char *count = dmt_sh("git -C '%s' rev-list --count 'main..%s'", bare, branch);
    char *changed = dmt_sh("git -C '%s' diff --name-only main '%s' | sort", bare, branch);
    char *job = dmt_sh("git -C '%s' log -1 --format='%%(trailers:key=Dream-Job,valueonly)' '%s'",
                       bare, branch);
    char *author = dmt_sh("git -C '%s' log -1 --format='%%an <%%ae> %%at' '%s'", bare, branch);
    char expect[4096] = "";
    const char **sorted = calloc(n, sizeof(*sorted));

    cr_assert_str_eq(tip, res->commit);
    cr_assert_str_eq(main_tip, res->base_commit);
    cr_assert_str_eq(parent, main_tip, "the commit sits directly on the base");
    cr_assert_str_eq(count, "1");
    for (size_t i = 0; i < n; i++) {
        sorted[i] = files[i].path;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(sorted[j], sorted[i]) < 0) {
                const char *t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        strcat(expect, sorted[i]);
        if (i + 1 < n) {
            strcat(expect, "\n");
        }
    }
    cr_assert_str_eq(changed, expect, "exactly the generated files changed");
    for (size_t i = 0; i < n; i++) {
        char *content = dmt_sh("git -C '%s' show '%s:%s' | od -An -c", bare, branch, files[i].path);
        char *want = dmt_sh("printf '%%s' '%.*s' | od -An -c", (int)files[i].len, files[i].content);
        cr_assert_str_eq(content, want, "content of %s", files[i].path);
        free(content);
        free(want);
    }
    cr_assert(strstr(job, "job-1") != NULL || strstr(job, "job-") != NULL);
    cr_assert(strncmp(author, "Dream Bot <bot@dream.test>", 26) == 0, "author: %s", author);
    free(sorted);
    free(tip);
    free(main_tip);
    free(parent);
    free(count);
    free(changed);
    free(job);
    free(author);
}

Test(git, file_remote_push_new_branch)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};

    int rc = publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(res.pushed, 1);
    cr_assert_eq(res.forced, 0);
    assert_branch_holds_files(bare, "dream/todo-api", &res, three_files, 3);

    char *trailers = dmt_sh("git -C '%s' log -1 --format='%%(trailers)' dream/todo-api", bare);
    cr_assert_str_eq(trailers, "Dream-Job: job-1\nDream-Spec: spec-1");
    char *subject = dmt_sh("git -C '%s' log -1 --format=%%s dream/todo-api", bare);
    cr_assert_str_eq(subject, "[Dream] Todo API");
    char *when = dmt_sh("git -C '%s' log -1 --format=%%ct dream/todo-api", bare);
    cr_assert_str_eq(when, "1767225600");

    /* The mirror is bare, has no remote configured and no working tree. */
    char mirror[2048];
    snprintf(mirror, sizeof(mirror), "%s/mirrors/acme/widgets.git", data_dir);
    char *isbare = dmt_sh("git -C '%s' rev-parse --is-bare-repository", mirror);
    cr_assert_str_eq(isbare, "true");
    cr_assert_null(dmt_sh_try("git -C '%s' config --get-regexp '^remote\\.'", mirror));
    /* No helper refs are left behind per job. */
    char *helper = dmt_sh("git -C '%s' for-each-ref refs/dream | wc -l", mirror);
    cr_assert_str_eq(helper, "0");
    free(helper);
    free(trailers);
    free(subject);
    free(when);
    free(isbare);
    free(bare);
}

Test(git, http_push_with_token)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_result res;
    struct dm_error err = {0};

    int rc = publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(res.pushed, 1);
    assert_branch_holds_files(bare, "dream/todo-api", &res, three_files, 3);

    /* The token is nowhere in the mirror (config, FETCH_HEAD, logs, refs). */
    char *hits = dmt_sh("grep -rl '%s' '%s' || true", TOKEN, data_dir);
    cr_assert_str_eq(hits, "", "token found in %s", hits);
    free(hits);
    free(bare);
    dmt_githttp_stop(&g);
}

Test(git, http_wrong_token_fails_clearly)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    const char *wrong = "ghs_WrongToken0987654321";
    struct dm_git_opts o = opts_for(g.url_template, wrong);
    struct dm_git_result res;
    struct dm_error err = {0};

    int rc = publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_AUTH, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "authentication") != NULL, "%s", err.msg);
    cr_assert_null(strstr(err.msg, wrong), "token leaked: %s", err.msg);
    cr_assert_null(strstr(err.msg, "WrongToken"), "token leaked: %s", err.msg);
    cr_assert_str_eq(res.commit, "");
    cr_assert_null(dmt_sh_try("git -C '%s' rev-parse --verify -q refs/heads/dream/todo-api", bare));

    /* No token at all: also an authentication failure, saying so. */
    o.token = NULL;
    rc = publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_AUTH, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "no token") != NULL, "%s", err.msg);
    free(bare);
    dmt_githttp_stop(&g);
}

Test(git, http_rejecting_hook_fails_with_its_message)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    dmt_git_reject_hook(bare, "Pushes to acme/widgets are frozen until Monday");
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_result res;
    struct dm_error err = {0};

    int rc = publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_REMOTE, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "Pushes to acme/widgets are frozen until Monday") != NULL, "%s",
              err.msg);
    cr_assert(strstr(err.msg, "pre-receive hook declined") != NULL, "%s", err.msg);
    cr_assert_null(dmt_sh_try("git -C '%s' rev-parse --verify -q refs/heads/dream/todo-api", bare));

    /* Once the hook is gone the same publish goes through. */
    dmt_git_clear_hook(bare);
    rc = publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    assert_branch_holds_files(bare, "dream/todo-api", &res, three_files, 3);
    free(bare);
    dmt_githttp_stop(&g);
}

Test(git, republish_same_job_makes_no_second_commit)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_result r1, r2, r3;
    struct dm_error err = {0};

    cr_assert_eq(publish(&r1, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    char *pushes1 = dmt_sh("git -C '%s' reflog show refs/heads/dream/todo-api | wc -l", bare);

    /* A retry after a crash between push and PR: same inputs, same time. */
    cr_assert_eq(publish(&r2, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(r2.pushed, 0);
    cr_assert_str_eq(r2.commit, r1.commit);

    /* A retry that forgot the time: same tree and parent, so still the same commit. */
    cr_assert_eq(publish(&r3, &o, "dream/todo-api", "job-1", T0 + 3600, three_files, 3, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(r3.pushed, 0);
    cr_assert_str_eq(r3.commit, r1.commit);

    char *pushes2 = dmt_sh("git -C '%s' reflog show refs/heads/dream/todo-api | wc -l", bare);
    cr_assert_str_eq(pushes1, "1");
    cr_assert_str_eq(pushes2, "1", "no second update reached the server");
    char *count = dmt_sh("git -C '%s' rev-list --count main..dream/todo-api", bare);
    cr_assert_str_eq(count, "1");
    free(pushes1);
    free(pushes2);
    free(count);
    free(bare);
    dmt_githttp_stop(&g);
}

Test(git, same_inputs_make_same_commit_with_a_fresh_mirror)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result r1, r2;
    struct dm_error err = {0};

    cr_assert_eq(publish(&r1, &o, "dream/a", "job-1", T0, three_files, 3, &err), 0, "%s", err.msg);
    /* Lose the mirror and the remote branch: the rebuilt commit has the same id. */
    dmt_rmtree(data_dir);
    free(dmt_sh("git -C '%s' update-ref -d refs/heads/dream/a", bare));
    cr_assert_eq(publish(&r2, &o, "dream/a", "job-1", T0, three_files, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(r2.pushed, 1);
    cr_assert_str_eq(r2.commit, r1.commit);
    free(bare);
}

Test(git, same_job_updates_its_own_branch)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result r1, r2, r3;
    struct dm_error err = {0};
    struct dm_git_file changed[3];

    cr_assert_eq(publish(&r1, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    memcpy(changed, three_files, sizeof(changed));
    changed[0].content = "export const todos = 2;\n";
    cr_assert_eq(publish(&r2, &o, "dream/todo-api", "job-1", T0, changed, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(r2.pushed, 1);
    cr_assert_eq(r2.forced, 1);
    cr_assert_str_neq(r2.commit, r1.commit);
    assert_branch_holds_files(bare, "dream/todo-api", &r2, changed, 3);

    /* The base moved on: the job's branch is rebuilt on the new base. */
    commit_as_someone_else(bare, "main", "main", "CHANGELOG.md", "Release notes");
    cr_assert_eq(publish(&r3, &o, "dream/todo-api", "job-1", T0, changed, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(r3.forced, 1);
    assert_branch_holds_files(bare, "dream/todo-api", &r3, changed, 3);
    free(bare);
}

Test(git, foreign_branch_left_untouched)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_result res;
    struct dm_error err = {0};

    commit_as_someone_else(bare, "dream/todo-api", "main", "notes.txt", "Someone else did this");
    char *before = dmt_sh("git -C '%s' rev-parse refs/heads/dream/todo-api", bare);
    int rc = publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_EXISTS, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "dream/todo-api") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "not made by job job-1") != NULL, "%s", err.msg);
    char *after = dmt_sh("git -C '%s' rev-parse refs/heads/dream/todo-api", bare);
    cr_assert_str_eq(before, after);

    /* A branch made by another dreamd job is foreign too. */
    struct dm_git_result other;
    cr_assert_eq(publish(&other, &o, "dream/other", "job-2", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    rc = publish(&res, &o, "dream/other", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_EXISTS, "rc %d: %s", rc, err.msg);
    char *still = dmt_sh("git -C '%s' rev-parse refs/heads/dream/other", bare);
    cr_assert_str_eq(still, other.commit);

    /* The alternative branch name is free. */
    rc = publish(&res, &o, "dream/todo-api-job1", "job-1", T0, three_files, 3, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    free(before);
    free(after);
    free(still);
    free(bare);
    dmt_githttp_stop(&g);
}

struct cancel_arg {
    atomic_int *flag;
    int after_ms;
};

static void *cancel_later(void *p)
{
    struct cancel_arg *a = p;
    dmt_sleep_ms(a->after_ms);
    atomic_store(a->flag, 1);
    return NULL;
}

Test(git, cancellation_before_start)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    atomic_int cancel = 1;
    struct dm_git_result res;
    struct dm_error err = {0};

    o.cancel = &cancel;
    cr_assert_eq(publish(&res, &o, "dream/x", "job-1", T0, three_files, 3, &err), DM_ERR_CANCELLED,
                 "%s", err.msg);
    cr_assert_null(dmt_sh_try("git -C '%s' rev-parse --verify -q refs/heads/dream/x", bare));
    free(bare);
}

Test(git, cancellation_during_push_progress)
{
    /* A slow hook keeps the remote talking (sideband progress) for 6 s; the cancel flag set after
     * 500 ms must end the call long before that, through libgit2's progress callbacks. */
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    free(dmt_sh("printf '#!/bin/sh\\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 "
                "21 22 23 24 25 26 27 28 29 30; do echo checking $i >&2; sleep 0.2; done\\n"
                "exit 0\\n' > '%s/hooks/pre-receive' && chmod 755 '%s/hooks/pre-receive'",
                bare, bare));
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    atomic_int cancel = 0;
    struct cancel_arg a = {&cancel, 500};
    pthread_t t;
    struct dm_git_result res;
    struct dm_error err = {0};

    o.cancel = &cancel;
    pthread_create(&t, NULL, cancel_later, &a);
    long long start = dmt_now_ms();
    int rc = publish(&res, &o, "dream/x", "job-1", T0, three_files, 3, &err);
    long long took = dmt_now_ms() - start;
    pthread_join(t, NULL);
    cr_assert_eq(rc, DM_ERR_CANCELLED, "rc %d: %s", rc, err.msg);
    cr_assert_lt(took, 4000, "cancel took %lld ms", took);
    free(bare);
    dmt_githttp_stop(&g);
}

Test(git, cancellation_while_waiting_for_the_mirror)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};
    atomic_int cancel = 0;
    struct cancel_arg a = {&cancel, 300};
    pthread_t t;
    char lockpath[2048];

    /* Create the mirror, then hold its lock as another replica would. */
    cr_assert_eq(publish(&res, &o, "dream/x", "job-1", T0, three_files, 3, &err), 0, "%s", err.msg);
    snprintf(lockpath, sizeof(lockpath), "%s/mirrors/acme/widgets.git.lock", data_dir);
    int fd = open(lockpath, O_RDWR);
    cr_assert(fd >= 0);
    cr_assert_eq(flock(fd, LOCK_EX), 0);

    o.cancel = &cancel;
    pthread_create(&t, NULL, cancel_later, &a);
    long long start = dmt_now_ms();
    int rc = publish(&res, &o, "dream/y", "job-2", T0, three_files, 3, &err);
    pthread_join(t, NULL);
    cr_assert_eq(rc, DM_ERR_CANCELLED, "rc %d: %s", rc, err.msg);
    cr_assert_geq(dmt_now_ms() - start, 250, "it waited for the lock");

    /* A bounded wait ends with a timeout. */
    o.cancel = NULL;
    o.lock_wait_ms = 200;
    rc = publish(&res, &o, "dream/y", "job-2", T0, three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_TIMEOUT, "rc %d: %s", rc, err.msg);
    close(fd);
    o.lock_wait_ms = 0;
    cr_assert_eq(publish(&res, &o, "dream/y", "job-2", T0, three_files, 3, &err), 0, "%s", err.msg);
    free(bare);
}

struct race_arg {
    struct dm_git_opts *o;
    const char *branch;
    const char *job;
    int rc;
    struct dm_error err;
};

static void *publish_thread(void *p)
{
    struct race_arg *a = p;
    struct dm_git_result res;
    a->rc = publish(&res, a->o, a->branch, a->job, T0, three_files, 3, &a->err);
    return NULL;
}

Test(git, concurrent_publishes_share_one_mirror)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct race_arg a[4];
    pthread_t t[4];
    char branches[4][32];

    for (int i = 0; i < 4; i++) {
        snprintf(branches[i], sizeof(branches[i]), "dream/b%d", i);
        a[i] = (struct race_arg){&o, branches[i], i % 2 ? "job-odd" : "job-even", -99, {0}};
        pthread_create(&t[i], NULL, publish_thread, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(a[i].rc, 0, "thread %d: %s", i, a[i].err.msg);
    }
    char *n = dmt_sh("git -C '%s' for-each-ref refs/heads/dream | wc -l", bare);
    cr_assert_str_eq(n, "4");
    free(n);
    free(bare);
}

Test(git, missing_base_or_repository)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};

    int rc = dm_git_publish(&res, &o, "acme", "widgets", "develop", "dream/x", "job-1", "s", "msg",
                            T0, three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_NOTFOUND, "rc %d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "develop") != NULL, "%s", err.msg);

    rc = dm_git_publish(&res, &o, "acme", "nothere", "main", "dream/x", "job-1", "s", "msg", T0,
                        three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_NOTFOUND, "rc %d: %s", rc, err.msg);

    dmt_githttp_start(&g, "x-access-token", TOKEN);
    struct dm_git_opts h = opts_for(g.url_template, TOKEN);
    rc = dm_git_publish(&res, &h, "acme", "nothere", "main", "dream/x", "job-1", "s", "msg", T0,
                        three_files, 3, &err);
    cr_assert_eq(rc, DM_ERR_NOTFOUND, "rc %d: %s", rc, err.msg);
    dmt_githttp_stop(&g);
    free(bare);
}

Test(git, invalid_arguments)
{
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};
    const char *bad_paths[] = {"../escape.txt", "/abs.txt",         ".git/config", "a//b",
                               "a/./b",         "src/.GIT/hooks/x", "a\\b",        ""};

    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
        struct dm_git_file f = {bad_paths[i], "x", 1, 0};
        cr_assert_eq(publish(&res, &o, "dream/x", "job-1", T0, &f, 1, &err), DM_ERR_INVALID,
                     "path %s", bad_paths[i]);
    }
    struct dm_git_file dup[2] = {{"a.txt", "1", 1, 0}, {"a.txt", "2", 1, 0}};
    cr_assert_eq(publish(&res, &o, "dream/x", "job-1", T0, dup, 2, &err), DM_ERR_INVALID);
    struct dm_git_file dirfile[2] = {{"a", "1", 1, 0}, {"a/b", "2", 1, 0}};
    cr_assert_eq(publish(&res, &o, "dream/x", "job-1", T0, dirfile, 2, &err), DM_ERR_INVALID);
    cr_assert_eq(publish(&res, &o, "bad..branch", "job-1", T0, three_files, 3, &err),
                 DM_ERR_INVALID);
    cr_assert_eq(publish(&res, &o, "main", "job-1", T0, three_files, 3, &err), DM_ERR_INVALID);
    cr_assert_eq(publish(&res, &o, "dream/x", "job\n1", T0, three_files, 3, &err), DM_ERR_INVALID);
    cr_assert_eq(dm_git_publish(&res, &o, "..", "widgets", "main", "dream/x", "job-1", "s", "m", T0,
                                three_files, 3, &err),
                 DM_ERR_INVALID);

    char url[256];
    cr_assert_eq(dm_git_remote_url(url, sizeof(url), NULL, "acme", "widgets", &err), 0);
    cr_assert_str_eq(url, "https://github.com/acme/widgets.git");
    cr_assert_eq(dm_git_remote_url(url, sizeof(url),
                                   "https://x-access-token:t@github.com/{owner}/"
                                   "{repo}.git",
                                   "acme", "widgets", &err),
                 DM_ERR_INVALID);
    cr_assert_eq(dm_git_remote_url(url, sizeof(url), "https://ghe.example.com/{owner}/{repo}",
                                   "acme", "w", &err),
                 0);
    cr_assert_str_eq(url, "https://ghe.example.com/acme/w");
}

/* libgit2's own check of refs/heads/<name>, as git.c used before it took dm_refname_valid. */
static int libgit2_branch_valid(const char *name)
{
    char ref[600];
    int valid = 0;
    if (!*name || name[0] == '-' || strlen(name) > 255) {
        return 0;
    }
    snprintf(ref, sizeof(ref), "refs/heads/%s", name);
    return git_reference_name_is_valid(&valid, ref) == 0 && valid;
}

Test(git, branch_names_are_refnames_and_agree_with_libgit2)
{
    /* git check-ref-format --branch refuses these; libgit2 takes them. dreamd follows git. */
    const char *stricter[] = {"HEAD", "@", "a\x7f", "dream/\x7fx"};
    const char alphabet[] = "ab./-@{}~^:?* [\\\x01\xc3\xa9HEADlock";
    unsigned long long seed = 0x9e3779b97f4a7c15ULL;
    int agree = 0;

    git_libgit2_init();
    for (size_t i = 0; i < sizeof(stricter) / sizeof(stricter[0]); i++) {
        cr_assert(libgit2_branch_valid(stricter[i]), "%s", stricter[i]);
        cr_assert_not(dm_git_branch_name_valid(stricter[i]), "%s", stricter[i]);
    }
    /* Elsewhere the two agree: random names over the characters that matter. */
    for (int k = 0; k < 200000; k++) {
        char name[12];
        size_t n;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        n = 1 + seed % (sizeof(name) - 1);
        for (size_t i = 0; i < n; i++) {
            name[i] = alphabet[(seed >> (4 * i % 60)) % (sizeof(alphabet) - 1)];
        }
        name[n] = '\0';
        cr_assert_eq(dm_git_branch_name_valid(name), dm_refname_valid(name));
        if (strcmp(name, "@") != 0 && strcmp(name, "HEAD") != 0) {
            cr_assert_eq(dm_git_branch_name_valid(name), libgit2_branch_valid(name), "'%s'", name);
            agree += dm_git_branch_name_valid(name);
        }
    }
    cr_assert_gt(agree, 1000, "the sample holds valid names too");
    git_libgit2_shutdown();
}

Test(git, list_base_tree)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    commit_as_someone_else(bare, "main", "main", "src/lib/util.ts", "Add util");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_tree *tree = NULL;
    struct dm_error err = {0};

    int rc = dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(tree->npaths, 2);
    cr_assert_str_eq(tree->paths[0], "README.md");
    cr_assert_str_eq(tree->paths[1], "src/lib/util.ts");
    cr_assert_eq(tree->truncated, 0);
    char *tip = dmt_sh("git -C '%s' rev-parse main", bare);
    cr_assert_str_eq(tree->base_commit, tip);
    dm_git_tree_free(tree);

    /* A new commit on the base is seen only with refresh. */
    commit_as_someone_else(bare, "main", "main", "src/new.ts", "Add new");
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 0, 0, &err), 0);
    cr_assert_eq(tree->npaths, 2);
    dm_git_tree_free(tree);
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0);
    cr_assert_eq(tree->npaths, 3);
    dm_git_tree_free(tree);
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 0, 2, &err), 0);
    cr_assert_eq(tree->npaths, 2);
    cr_assert_eq(tree->truncated, 1);
    dm_git_tree_free(tree);
    dm_git_tree_free(NULL);
    free(tip);
    free(bare);
}

/* Over smart HTTP the remote advertises all its 2,001 refs on every connection, but libgit2 is
 * given only the first ref line (the capabilities) and the refs the operation names: a base
 * look-up and a push still give the right results, and no seeded branch is touched. */
Test(git, over_http_libgit2_parses_only_the_named_refs_of_a_large_advertisement)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    free(dmt_sh("cd '%s' && t=$(git rev-parse main) && for i in $(seq 1 2000); do "
                "echo \"create refs/heads/seed/b$i $t\"; done | git update-ref --stdin && "
                "git pack-refs --all",
                bare));
    commit_as_someone_else(bare, "main", "main", "src/lib/util.ts", "Add util");
    char *tip = dmt_sh("git -C '%s' rev-parse main", bare);
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_tree *tree = NULL;
    struct dm_git_result res;
    struct dm_error err = {0};
    unsigned long long adv0, parsed0, adv1, parsed1, adv2, parsed2;
    int gets0 = dmt_githttp_requests(&g, "GET", "service=");

    dm_git_ref_counts(&adv0, &parsed0);
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(tree->base_commit, tip);
    cr_assert_eq(tree->npaths, 2);
    dm_git_tree_free(tree);
    dm_git_ref_counts(&adv1, &parsed1);
    int gets1 = dmt_githttp_requests(&g, "GET", "service=");
    cr_assert_geq(gets1 - gets0, 1);
    /* HEAD, main, and nothing else, per advertisement */
    cr_assert_geq(adv1 - adv0, 2001ULL * (unsigned)(gets1 - gets0), "advertised %llu", adv1 - adv0);
    cr_assert_leq(parsed1 - parsed0, 2ULL * (unsigned)(gets1 - gets0), "parsed %llu",
                  parsed1 - parsed0);

    cr_assert_eq(publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(res.pushed, 1);
    dm_git_ref_counts(&adv2, &parsed2);
    int gets2 = dmt_githttp_requests(&g, "GET", "service=");
    cr_assert_geq(gets2 - gets1, 1);
    cr_assert_geq(adv2 - adv1, 2001ULL * (unsigned)(gets2 - gets1), "advertised %llu", adv2 - adv1);
    /* HEAD, main and the job's branch at most */
    cr_assert_leq(parsed2 - parsed1, 3ULL * (unsigned)(gets2 - gets1), "parsed %llu",
                  parsed2 - parsed1);
    char *main_tip = dmt_sh("git -C '%s' rev-parse main", bare);
    cr_assert_str_eq(main_tip, tip);
    char *parent = dmt_sh("git -C '%s' rev-parse 'dream/todo-api^'", bare);
    cr_assert_str_eq(parent, tip, "the commit sits on the base");
    char *pushed = dmt_sh("git -C '%s' rev-parse dream/todo-api", bare);
    cr_assert_str_eq(pushed, res.commit);
    char *seeds = dmt_sh("git -C '%s' for-each-ref --format='%%(objectname)' refs/heads/seed | "
                         "grep -cx \"$(git -C '%s' rev-parse main~1)\"",
                         bare, bare);
    cr_assert_str_eq(seeds, "2000", "every seeded branch untouched");
    free(seeds);
    free(pushed);
    free(parent);
    free(main_tip);
    free(tip);
    free(bare);
    dmt_githttp_stop(&g);
}

/* Publishes job-1, runs the shell command `leave` in the mirror to leave what a killed replica
 * would, then publishes job-2, which must go through. Writes the mirror's path. */
static void publish_after_leftovers(const char *leave, char *mirror, size_t mlen)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};

    cr_assert_eq(publish(&res, &o, "dream/first", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    snprintf(mirror, mlen, "%s/mirrors/acme/widgets.git", data_dir);
    free(dmt_sh("cd '%s' && %s && echo ok", mirror, leave));
    cr_assert_eq(publish(&res, &o, "dream/second", "job-2", T0, three_files, 3, &err), 0,
                 "with the leftovers of a killed replica: %s", err.msg);
    assert_branch_holds_files(bare, "dream/second", &res, three_files, 3);
    free(bare);
}

/* A replica killed in the middle of a ref update leaves libgit2's *.lock files in the mirror;
 * the next holder of the mirror lock removes them, and the publication goes through. */
Test(git, stale_lock_files_left_by_a_killed_replica_are_removed)
{
    char mirror[2048];
    char *left;

    publish_after_leftovers("mkdir -p refs/heads/dream && touch refs/heads/dream/second.lock "
                            "refs/heads/main.lock packed-refs.lock config.lock",
                            mirror, sizeof(mirror));
    left = dmt_sh("find '%s' -name '*.lock' | wc -l", mirror);
    cr_assert_str_eq(left, "0", "no lock file is left in the mirror");
    free(left);
}

/* A replica killed while a download or a repack wrote a pack leaves libgit2's temporary pack and
 * the index's lock file; the next holder of the mirror removes them (they would stay for good),
 * and keeps the real packs. */
Test(git, partial_packs_left_by_a_killed_replica_are_removed)
{
    char mirror[2048];
    char *left;

    publish_after_leftovers("cd objects/pack && head -c 100000 /dev/urandom > pack_git2_Ab12Cd && "
                            "touch pack-0123456789abcdef0123456789abcdef01234567.idx.lock",
                            mirror, sizeof(mirror));
    left = dmt_sh("ls '%s/objects/pack' | grep -c -e pack_git2_ -e '[.]lock$'; true", mirror);
    cr_assert_str_eq(left, "0", "the partial pack and its lock are gone");
    free(left);
    left = dmt_sh("ls '%s/objects/pack' | grep -c '[.]pack$'", mirror);
    cr_assert_str_eq(left, "1", "the mirror's pack is kept");
    free(left);
}

/* ---- issue 15: the cost of a job does not grow with the mirror's or the remote's past ---- */

/* Loose objects, packs and refs in the mirror, from the git command line. */
static void mirror_counts(int *loose, int *packs, int *refs)
{
    char mirror[2048];
    char *l, *p, *r;

    snprintf(mirror, sizeof(mirror), "%s/mirrors/acme/widgets.git", data_dir);
    l = dmt_sh("git --git-dir='%s' count-objects -v | sed -n 's/^count: //p'", mirror);
    p = dmt_sh("git --git-dir='%s' count-objects -v | sed -n 's/^packs: //p'", mirror);
    r = dmt_sh("git --git-dir='%s' for-each-ref | wc -l", mirror);
    *loose = atoi(l);
    *packs = atoi(p);
    *refs = atoi(r);
    free(l);
    free(p);
    free(r);
}

/* Jobs' commits are built in memory: publishing writes no loose object into the mirror, and a
 * job's helper refs are gone when it ends; the branches exist on the remote all the same. */
Test(git, publishing_leaves_no_loose_object_and_no_job_ref_in_the_mirror)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};
    int loose, packs, refs;

    for (int i = 0; i < 5; i++) {
        char branch[64], job[32];
        snprintf(branch, sizeof(branch), "dream/job-%d", i);
        snprintf(job, sizeof(job), "job-%d", i);
        cr_assert_eq(publish(&res, &o, branch, job, T0, three_files, 3, &err), 0, "%s", err.msg);
        assert_branch_holds_files(bare, branch, &res, three_files, 3);
    }
    /* A retry of the last one finds its commit on the remote (built again, in memory). */
    cr_assert_eq(publish(&res, &o, "dream/job-4", "job-4", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(res.pushed, 0, "already there");
    mirror_counts(&loose, &packs, &refs);
    cr_assert_eq(loose, 0, "no loose object in the mirror (%d)", loose);
    cr_assert_eq(refs, 1, "only the tracked base is kept (%d refs)", refs);
    free(bare);
}

/* Several jobs in one call: one push connection, each its own branch and result; a foreign
 * branch in the batch sends only its job to the alternative name, a job whose names are both
 * foreign fails alone. */
Test(git, a_batch_of_publications_goes_over_one_connection_each_with_its_own_result)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_publish_item it[4];
    const char *branches[4] = {"dream/a", "dream/b", "dream/c", "dream/d"};
    const char *alts[4] = {NULL, "dream/b-alt", "dream/c-alt", NULL};
    char *foreign_b, *foreign_c, *foreign_calt, *tip;

    commit_as_someone_else(bare, "dream/b", "main", "b.txt", "someone else b");
    commit_as_someone_else(bare, "dream/c", "main", "c.txt", "someone else c");
    commit_as_someone_else(bare, "dream/c-alt", "main", "c2.txt", "someone else c-alt");
    foreign_b = dmt_sh("git -C '%s' rev-parse refs/heads/dream/b", bare);
    foreign_c = dmt_sh("git -C '%s' rev-parse refs/heads/dream/c", bare);
    foreign_calt = dmt_sh("git -C '%s' rev-parse refs/heads/dream/c-alt", bare);
    memset(it, 0, sizeof(it));
    for (int i = 0; i < 4; i++) {
        static char jobs[4][16];
        snprintf(jobs[i], sizeof(jobs[i]), "job-%c", 'a' + i);
        it[i].branch = branches[i];
        it[i].alt_branch = alts[i];
        it[i].job_id = jobs[i];
        it[i].spec_id = "spec-1";
        it[i].message = "[Dream] batch";
        it[i].commit_time = T0 + i;
        it[i].files = three_files;
        it[i].nfiles = 3;
    }
    cr_assert_eq(dm_git_publish_many(&o, "acme", "widgets", "main", it, 4), DM_ERR_EXISTS,
                 "the first failing item's error");
    cr_assert_eq(it[0].rc, 0, "%s", it[0].err.msg);
    cr_assert_str_eq(it[0].used_branch, "dream/a");
    assert_branch_holds_files(bare, "dream/a", &it[0].result, three_files, 3);
    cr_assert_eq(it[1].rc, 0, "%s", it[1].err.msg);
    cr_assert_str_eq(it[1].used_branch, "dream/b-alt", "around the foreign branch");
    assert_branch_holds_files(bare, "dream/b-alt", &it[1].result, three_files, 3);
    cr_assert_eq(it[2].rc, DM_ERR_EXISTS);
    cr_assert_not_null(strstr(it[2].err.msg, "dream/c and dream/c-alt"), "%s", it[2].err.msg);
    cr_assert_eq(it[3].rc, 0, "%s", it[3].err.msg);
    assert_branch_holds_files(bare, "dream/d", &it[3].result, three_files, 3);
    cr_assert_str_neq(it[0].result.commit, it[3].result.commit, "each job its own commit");
    tip = dmt_sh("git -C '%s' rev-parse refs/heads/dream/b", bare);
    cr_assert_str_eq(tip, foreign_b, "someone's branch untouched");
    free(tip);
    tip = dmt_sh("git -C '%s' rev-parse refs/heads/dream/c", bare);
    cr_assert_str_eq(tip, foreign_c);
    free(tip);
    tip = dmt_sh("git -C '%s' rev-parse refs/heads/dream/c-alt", bare);
    cr_assert_str_eq(tip, foreign_calt);
    free(tip);
    free(foreign_b);
    free(foreign_c);
    free(foreign_calt);
    free(bare);
}

/* A look-up of the base answers the calls that asked before it began, never one that asked
 * later: a base moved after the question is seen by the next question. */
Test(git, a_look_up_answers_only_the_calls_that_asked_before_it)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_tree *tree = NULL;
    struct dm_error err = {0};
    struct timespec ts;
    long long asked;
    char *tip;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    asked = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    o.coalesce_since_ms = asked;
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0, "%s",
                 err.msg);
    dm_git_tree_free(tree);
    /* The base moves; a call that asked before the first look-up is still answered by it. */
    commit_as_someone_else(bare, "main", "main", "moved.txt", "moved");
    tip = dmt_sh("git -C '%s' rev-parse refs/heads/main", bare);
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0, "%s",
                 err.msg);
    cr_assert_str_neq(tree->base_commit, tip, "served by the look-up it asked before");
    dm_git_tree_free(tree);
    /* A call that asks now gets the remote's answer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    o.coalesce_since_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(tree->base_commit, tip, "asked after: the remote was asked again");
    dm_git_tree_free(tree);
    free(tip);
    free(bare);
}

/* Each download adds a pack; past a few the mirror is marked, and maintenance repacks it into
 * one pack holding only what its refs reach, which the next publication uses. */
Test(git, maintenance_repacks_a_mirror_grown_by_downloads)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};
    size_t repacked = 0;
    int loose, packs, refs;

    cr_assert_eq(dm_git_maintenance_due(), 0);
    for (int i = 0; i < 10; i++) {
        char path[32];
        snprintf(path, sizeof(path), "moved-%d.txt", i);
        commit_as_someone_else(bare, "main", "main", path, "moved");
        /* The base moved: the publication downloads it (one more pack). */
        cr_assert_eq(publish(&res, &o, "dream/grow", "job-1", T0, three_files, 3, &err), 0, "%s",
                     err.msg);
    }
    mirror_counts(&loose, &packs, &refs);
    cr_assert_gt(packs, 8, "one pack per download (%d)", packs);
    cr_assert_eq(dm_git_maintenance_due(), 1, "the mirror is marked for maintenance");
    cr_assert_eq(dm_git_maintain(&o, &repacked, &err), 0, "%s", err.msg);
    cr_assert_eq(repacked, 1);
    cr_assert_eq(dm_git_maintenance_due(), 0);
    mirror_counts(&loose, &packs, &refs);
    cr_assert_eq(packs, 1, "one pack after the repack (%d)", packs);
    cr_assert_eq(loose, 0);
    free(dmt_sh("git --git-dir='%s/mirrors/acme/widgets.git' fsck --connectivity-only 2>&1",
                data_dir));
    /* The mirror still serves: a new base and a new job. */
    commit_as_someone_else(bare, "main", "main", "after.txt", "after the repack");
    cr_assert_eq(publish(&res, &o, "dream/after", "job-2", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    assert_branch_holds_files(bare, "dream/after", &res, three_files, 3);
    free(bare);
}

/* A replica killed in the middle of a batch, after its push refs were written and before they
 * were dropped, leaves refs/dream/out/<branch> pointing at a commit that only ever lived in its
 * memory. The next replica still downloads a moved base, publishes and repacks the mirror. */
Test(git, a_push_ref_left_by_a_replica_killed_mid_batch_does_not_break_the_mirror)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};
    size_t repacked = 0;
    char mirror[2048];
    char *left;

    cr_assert_eq(publish(&res, &o, "dream/first", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    snprintf(mirror, sizeof(mirror), "%s/mirrors/acme/widgets.git", data_dir);
    free(dmt_sh("mkdir -p '%s/refs/dream/out/dream' && "
                "echo 1234567890abcdef1234567890abcdef12345678 > '%s/refs/dream/out/dream/killed'"
                " && echo ok",
                mirror, mirror));
    for (int i = 0; i < 10; i++) {
        char path[32], branch[32], job[32];
        snprintf(path, sizeof(path), "moved-%d.txt", i);
        snprintf(branch, sizeof(branch), "dream/next-%d", i);
        snprintf(job, sizeof(job), "job-n%d", i);
        commit_as_someone_else(bare, "main", "main", path, "moved");
        cr_assert_eq(publish(&res, &o, branch, job, T0, three_files, 3, &err), 0,
                     "the moved base is downloaded: %s", err.msg);
        assert_branch_holds_files(bare, branch, &res, three_files, 3);
    }
    cr_assert_eq(dm_git_maintenance_due(), 1);
    cr_assert_eq(dm_git_maintain(&o, &repacked, &err), 0, "%s", err.msg);
    left = dmt_sh("git --git-dir='%s' count-objects -v | sed -n 's/^packs: //p'", mirror);
    cr_assert_str_eq(left, "1", "the mirror was repacked");
    free(left);
    left = dmt_sh("git --git-dir='%s' for-each-ref refs/dream | wc -l", mirror);
    cr_assert_str_eq(left, "0", "the dead replica's ref is gone");
    free(left);
    free(bare);
}

/* ---- gitjob: publications batched over one push connection ---- */

struct pub_done {
    int fired;
    int rc;
    char branch[64];
    char commit[DM_GIT_OID_HEX];
    char msg[sizeof(((struct dm_error *)0)->msg)];
};

static void on_pub_done(void *arg, int rc, const struct dm_gitjob_published *res,
                        const struct dm_error *err)
{
    struct pub_done *d = arg;
    d->fired++;
    d->rc = rc;
    if (res) {
        snprintf(d->branch, sizeof(d->branch), "%s", res->branch);
        snprintf(d->commit, sizeof(d->commit), "%s", res->git.commit);
    }
    snprintf(d->msg, sizeof(d->msg), "%s", rc ? err->msg : "");
}

/* Four publications in a row: the first runs, the other three wait behind it and then share one
 * push connection. The leader of that batch and its last job are cancelled while they wait (at
 * their deadline): they end cancelled, and the job between them is still pushed. */
Test(git, a_cancelled_job_in_a_batch_does_not_fail_the_others)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_gitjob *gj[4];
    struct pub_done done[4];
    struct dm_error err = {0};
    uv_loop_t loop;
    char *tip;

    memset(done, 0, sizeof(done));
    cr_assert_eq(uv_loop_init(&loop), 0);
    for (int i = 0; i < 4; i++) {
        char branch[32], job[32];
        struct dm_gitjob_publish_req req;
        memset(&req, 0, sizeof(req));
        snprintf(branch, sizeof(branch), "dream/q-%d", i);
        snprintf(job, sizeof(job), "job-q%d", i);
        req.opts = &o;
        req.owner = "acme";
        req.repo = "widgets";
        req.base = "main";
        req.branch = branch;
        req.job_id = job;
        req.spec_id = "spec-1";
        req.message = "[Dream] queued";
        req.commit_time = T0 + i;
        req.files = three_files;
        req.nfiles = 3;
        req.on_done = on_pub_done;
        req.arg = &done[i];
        cr_assert_eq(dm_gitjob_publish(&gj[i], &loop, &req, &err), 0, "%s", err.msg);
    }
    dm_gitjob_cancel(gj[1]);
    dm_gitjob_cancel(gj[3]);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(done[i].fired, 1, "job %d completed once", i);
    }
    cr_assert_eq(done[0].rc, 0, "%s", done[0].msg);
    cr_assert_eq(done[1].rc, DM_ERR_CANCELLED, "the cancelled leader: %d %s", done[1].rc,
                 done[1].msg);
    cr_assert_eq(done[2].rc, 0, "not failed by the others' cancel: %s", done[2].msg);
    cr_assert_str_eq(done[2].branch, "dream/q-2");
    tip = dmt_sh("git -C '%s' rev-parse refs/heads/dream/q-2", bare);
    cr_assert_str_eq(tip, done[2].commit, "pushed");
    free(tip);
    cr_assert_eq(done[3].rc, DM_ERR_CANCELLED, "%d %s", done[3].rc, done[3].msg);
    tip =
        dmt_sh("git -C '%s' for-each-ref refs/heads/dream/q-1 refs/heads/dream/q-3 | wc -l", bare);
    cr_assert_str_eq(tip, "0", "the cancelled jobs pushed nothing");
    free(tip);
    cr_assert_eq(uv_loop_close(&loop), 0);
    free(bare);
}

/* Two jobs of the same spec plan the same branch name and are ready together: in one batch the
 * first takes the branch and the second goes to its alternative name, as if they had been
 * pushed one after the other; each result names the commit its branch holds. */
Test(git, two_jobs_of_a_batch_with_the_same_branch_each_get_their_own)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_publish_item it[3];
    const char *jobs[3] = {"job-x", "job-y", "job-z"};
    const char *alts[3] = {"dream/todo-api-x", "dream/todo-api-y", NULL};
    char *tip;

    memset(it, 0, sizeof(it));
    for (int i = 0; i < 3; i++) {
        it[i].branch = "dream/todo-api";
        it[i].alt_branch = alts[i];
        it[i].job_id = jobs[i];
        it[i].spec_id = "spec-1";
        it[i].message = "[Dream] same spec";
        it[i].commit_time = T0 + i;
        it[i].files = three_files;
        it[i].nfiles = 3;
    }
    dm_git_publish_many(&o, "acme", "widgets", "main", it, 3);
    cr_assert_eq(it[0].rc, 0, "%s", it[0].err.msg);
    cr_assert_str_eq(it[0].used_branch, "dream/todo-api");
    assert_branch_holds_files(bare, "dream/todo-api", &it[0].result, three_files, 3);
    cr_assert_eq(it[1].rc, 0, "%s", it[1].err.msg);
    cr_assert_str_eq(it[1].used_branch, "dream/todo-api-y", "the branch is job-x's now");
    assert_branch_holds_files(bare, "dream/todo-api-y", &it[1].result, three_files, 3);
    cr_assert_str_neq(it[0].result.commit, it[1].result.commit);
    cr_assert_eq(it[2].rc, DM_ERR_EXISTS, "no alternative: %d %s", it[2].rc, it[2].err.msg);
    tip = dmt_sh("git -C '%s' log -1 --format='%%(trailers:key=Dream-Job,valueonly)' "
                 "refs/heads/dream/todo-api",
                 bare);
    cr_assert_str_eq(tip, "job-x", "the branch holds the commit its result names");
    free(tip);
    free(bare);
}

struct hol {
    int fd; /* the lock of widgets' mirror, held as another replica would */
    int tree_rc;
    struct pub_done pd[2];
};

static void hol_tree(void *arg, int rc, const struct dm_git_tree *tree, const struct dm_error *err)
{
    struct hol *h = arg;
    (void)tree;
    (void)err;
    h->tree_rc = rc;
    close(h->fd); /* the other replica lets go of widgets' mirror */
    h->fd = -1;
}

/* A publication to widgets waits for its mirror (another replica holds it) and a second one
 * waits behind it; a listing of another repository asked for meanwhile gets the free thread at
 * once instead of waiting behind them (it is what lets widgets' mirror go here). */
Test(git, work_on_another_repository_does_not_wait_behind_a_blocked_publication)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    char *other = dmt_git_make_repo(root, "acme", "gadgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_error err = {0};
    struct hol h;
    uv_loop_t loop;
    char lockpath[2048];

    memset(&h, 0, sizeof(h));
    snprintf(lockpath, sizeof(lockpath), "%s/mirrors/acme", data_dir);
    free(dmt_sh("mkdir -p '%s' && echo ok", lockpath));
    snprintf(lockpath, sizeof(lockpath), "%s/mirrors/acme/widgets.git.lock", data_dir);
    h.fd = open(lockpath, O_RDWR | O_CREAT, 0644);
    cr_assert(h.fd >= 0);
    cr_assert_eq(flock(h.fd, LOCK_EX), 0);
    o.lock_wait_ms = 8000;
    cr_assert_eq(uv_loop_init(&loop), 0);
    for (int i = 0; i < 2; i++) {
        struct dm_gitjob_publish_req req;
        memset(&req, 0, sizeof(req));
        req.opts = &o;
        req.owner = "acme";
        req.repo = "widgets";
        req.base = "main";
        req.branch = i ? "dream/hol-1" : "dream/hol-0";
        req.job_id = i ? "job-h1" : "job-h0";
        req.spec_id = "spec-1";
        req.message = "[Dream] behind";
        req.commit_time = T0;
        req.files = three_files;
        req.nfiles = 3;
        req.on_done = on_pub_done;
        req.arg = &h.pd[i];
        cr_assert_eq(dm_gitjob_publish(NULL, &loop, &req, &err), 0, "%s", err.msg);
    }
    {
        struct dm_gitjob_tree_req tr;
        memset(&tr, 0, sizeof(tr));
        tr.opts = &o;
        tr.owner = "acme";
        tr.repo = "gadgets";
        tr.base = "main";
        tr.refresh = 1;
        tr.on_done = hol_tree;
        tr.arg = &h;
        cr_assert_eq(dm_gitjob_list_tree(NULL, &loop, &tr, &err), 0, "%s", err.msg);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(h.tree_rc, 0);
    cr_assert_eq(h.pd[0].fired, 1);
    cr_assert_eq(h.pd[1].fired, 1);
    cr_assert_eq(h.pd[0].rc, 0, "the mirror was let go by the listing's completion: %s",
                 h.pd[0].msg);
    cr_assert_eq(h.pd[1].rc, 0, "%s", h.pd[1].msg);
    if (h.fd >= 0) {
        close(h.fd);
    }
    cr_assert_eq(uv_loop_close(&loop), 0);
    free(other);
    free(bare);
}

/* A commit carrying job's trailer on top of main of bare, kept under ref (not a branch). */
static char *job_commit_at(const char *bare, const char *ref, const char *job, const char *path)
{
    free(dmt_sh("set -e; w=$(mktemp -d); git clone -q '%s' \"$w/w\"; cd \"$w/w\"; echo x > '%s';"
                "git add -A; git -c user.name=Dream -c user.email=d@x commit -q -m 'earlier' "
                "-m 'Dream-Job: %s'; git push -q origin 'HEAD:%s'; rm -rf \"$w\"",
                bare, path, job, ref));
    return dmt_sh("git -C '%s' rev-parse '%s'", bare, ref);
}

/* One job's branch moves between the push connection's advertisement and the download that
 * follows it (another attempt of that job pushed meanwhile): its lease is lost. Only that job
 * fails (worth a retry); the other job of the batch is pushed. */
Test(git, a_lease_lost_by_one_job_of_a_batch_does_not_fail_the_others)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_publish_item it[2];
    char *xb, *yb, *tip, path[1024];

    xb = job_commit_at(bare, "refs/heads/dream/b", "job-b", "xb.txt");
    yb = job_commit_at(bare, "refs/keep/yb", "job-b", "yb.txt");
    /* The first download's advertisement (after the push connection's) moves dream/b. */
    snprintf(path, sizeof(path), "%s/backend.sh", g.dir);
    free(dmt_sh("sed -i '2i case \"$QUERY_STRING\" in *service=git-upload-pack*) "
                "[ -e %s/moved ] || { touch %s/moved; git --git-dir=%s update-ref "
                "refs/heads/dream/b %s; };; esac' '%s' && echo ok",
                g.dir, g.dir, bare, yb, path));
    memset(it, 0, sizeof(it));
    it[0].branch = "dream/a";
    it[0].job_id = "job-a";
    it[1].branch = "dream/b";
    it[1].job_id = "job-b";
    for (int i = 0; i < 2; i++) {
        it[i].spec_id = "spec-1";
        it[i].message = "[Dream] lease";
        it[i].commit_time = T0 + i;
        it[i].files = three_files;
        it[i].nfiles = 3;
    }
    dm_git_publish_many(&o, "acme", "widgets", "main", it, 2);
    cr_assert_eq(it[0].rc, 0, "not failed by the other's lost lease: %s", it[0].err.msg);
    assert_branch_holds_files(bare, "dream/a", &it[0].result, three_files, 3);
    cr_assert_eq(it[1].rc, DM_ERR_TRANSIENT, "%d %s", it[1].rc, it[1].err.msg);
    tip = dmt_sh("git -C '%s' rev-parse refs/heads/dream/b", bare);
    cr_assert_str_eq(tip, yb, "the moved branch is left as it is");
    free(tip);
    free(xb);
    free(yb);
    free(bare);
    dmt_githttp_stop(&g);
}

/* A pre-receive hook declines a whole push for one commit's content (as GitHub's push
 * protection does for a secret): the job whose commit it refuses fails with the hook's message,
 * the other job of the batch is still pushed. */
Test(git, a_hook_declining_one_job_of_a_batch_does_not_fail_the_others)
{
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_publish_item it[2];
    static const struct dm_git_file leaky[] = {
        {"src/config.ts", "export const k = 'SECRET';\n", 27, 0}};
    char *left;

    free(dmt_sh("printf '%%s\\n' '#!/bin/sh' 'while read old new ref; do' "
                "'  if git show \"$new\" | grep -q SECRET; then' "
                "'    echo \"push protection: a secret in $ref\"; exit 1; fi' 'done' "
                "> '%s/hooks/pre-receive' && chmod 755 '%s/hooks/pre-receive' && echo ok",
                bare, bare));
    memset(it, 0, sizeof(it));
    it[0].branch = "dream/leaky";
    it[0].job_id = "job-leaky";
    it[0].files = leaky;
    it[0].nfiles = 1;
    it[1].branch = "dream/clean";
    it[1].job_id = "job-clean";
    it[1].files = three_files;
    it[1].nfiles = 3;
    for (int i = 0; i < 2; i++) {
        it[i].spec_id = "spec-1";
        it[i].message = "[Dream] hook";
        it[i].commit_time = T0 + i;
    }
    dm_git_publish_many(&o, "acme", "widgets", "main", it, 2);
    cr_assert_eq(it[0].rc, DM_ERR_REMOTE, "%d %s", it[0].rc, it[0].err.msg);
    cr_assert_not_null(strstr(it[0].err.msg, "a secret in refs/heads/dream/leaky"), "%s",
                       it[0].err.msg);
    cr_assert_eq(it[1].rc, 0, "not failed by the other's content: %s", it[1].err.msg);
    assert_branch_holds_files(bare, "dream/clean", &it[1].result, three_files, 3);
    left = dmt_sh("git -C '%s' for-each-ref refs/heads/dream/leaky | wc -l", bare);
    cr_assert_str_eq(left, "0");
    free(left);
    free(bare);
    dmt_githttp_stop(&g);
}

/* Seeds a bare repository with 2,000 branches at main and 200 branches of their own history
 * (each adds old/f<i>.txt holding "unique <i>"), refs packed, as a busy repository's past. */
static void seed_history(const char *bare)
{
    free(dmt_sh("cd '%s' && t=$(git rev-parse main) && for i in $(seq 1 2000); do "
                "echo \"create refs/heads/seed/b$i $t\"; done | git update-ref --stdin && "
                "for i in $(seq 1 200); do printf 'commit refs/heads/old/b%%d\\ncommitter S "
                "<s@x> 1767225600 +0000\\ndata 3\\nold\\nfrom %%s\\nM 100644 inline "
                "old/f%%d.txt\\ndata 12\\nunique %%05d\\n\\n' $i $t $i $i; done | "
                "git fast-import --quiet && git pack-refs --all && echo ok",
                bare));
}

/* A file:// remote is reached in-process: each operation reads only the refs it names (libgit2's
 * local transport lists every ref and looks up its object on each connection), the mirror gets
 * only the base's history (that transport downloads every branch's), and what is pushed is a
 * commit git itself reads back whole, with every seeded branch left as it was. */
Test(git, over_file_only_the_named_refs_are_read_and_no_other_history_is_fetched)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_tree *tree = NULL;
    struct dm_git_result res;
    struct dm_error err = {0};
    unsigned long long adv0, parsed0, adv1, parsed1, adv2, parsed2;
    char mirror[1024];
    char *tip, *blob, *seeds, *packs;

    seed_history(bare);
    tip = dmt_sh("git -C '%s' rev-parse main", bare);
    blob = dmt_sh("git -C '%s' rev-parse old/b7:old/f7.txt", bare);
    packs = dmt_sh("ls '%s/objects/pack' | grep -c '\\.pack$'", bare);
    snprintf(mirror, sizeof(mirror), "%s/mirrors/acme/widgets.git", data_dir);

    dm_git_ref_counts(&adv0, &parsed0);
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(tree->base_commit, tip);
    dm_git_tree_free(tree);
    dm_git_ref_counts(&adv1, &parsed1);
    cr_assert_leq(parsed1 - parsed0, 2ULL, "refs read for a look-up: %llu", parsed1 - parsed0);

    cr_assert_eq(publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(res.pushed, 1);
    dm_git_ref_counts(&adv2, &parsed2);
    /* the base and the job's branch */
    cr_assert_leq(parsed2 - parsed1, 2ULL, "refs read for a push: %llu", parsed2 - parsed1);
    assert_branch_holds_files(bare, "dream/todo-api", &res, three_files, 3);
    cr_assert_null(dmt_sh_try("git -C '%s' cat-file -e '%s'", mirror, blob),
                   "the mirror holds another branch's history");
    free(dmt_sh("git -C '%s' fsck --no-progress --no-dangling 2>&1 && echo ok", bare));
    seeds = dmt_sh("git -C '%s' for-each-ref --format='%%(objectname)' refs/heads/seed | "
                   "grep -cx '%s'",
                   bare, tip);
    cr_assert_str_eq(seeds, "2000", "every seeded branch untouched");
    free(seeds);
    seeds = dmt_sh("git -C '%s' for-each-ref refs/heads/old | wc -l", bare);
    cr_assert_str_eq(seeds, "200");
    free(seeds);
    /* The push adds objects, not a pack per push (as git's receive-pack for a small push). */
    char *after = dmt_sh("ls '%s/objects/pack' | grep -c '\\.pack$'", bare);
    cr_assert_str_eq(after, packs);
    free(after);
    free(packs);
    free(blob);
    free(tip);
    free(bare);
}

/* The lease of a push to a file:// remote is a compare-and-swap on the branch's ref: a branch that
 * appeared, or moved from what the push saw, is left as it is and only that push fails (worth a
 * retry); a name that clashes with another ref is refused for good. */
Test(git, over_file_a_branch_moves_only_when_it_still_holds_what_the_push_saw)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    char *a = job_commit_at(bare, "refs/keep/a", "job-a", "a.txt");
    char *b = job_commit_at(bare, "refs/keep/b", "job-b", "b.txt");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_session s;
    struct dm_error err = {0};
    git_repository *r = NULL;
    git_oid oa, ob;
    char *now;

    cr_assert_eq(dm_git_ensure_init(&err), 0);
    cr_assert_eq(git_repository_open(&r, bare), 0);
    cr_assert_eq(git_oid_fromstr(&oa, a), 0);
    cr_assert_eq(git_oid_fromstr(&ob, b), 0);
    dm_git_session_init(&s, &o, "file://", NULL);

    /* absent, as expected: created */
    cr_assert_eq(dm_git_local_update(r, "refs/heads/dream/x", &oa, NULL, &s, &err), 0, "%s",
                 err.msg);
    /* expected absent, but there: left at a */
    cr_assert_eq(dm_git_local_update(r, "refs/heads/dream/x", &ob, NULL, &s, &err),
                 DM_ERR_TRANSIENT);
    cr_assert(strstr(err.msg, "dream/x") && strstr(err.msg, "changed meanwhile"), "%s", err.msg);
    now = dmt_sh("git -C '%s' rev-parse refs/heads/dream/x", bare);
    cr_assert_str_eq(now, a);
    free(now);
    /* expected at b, but at a: left at a */
    cr_assert_eq(dm_git_local_update(r, "refs/heads/dream/x", &ob, &ob, &s, &err),
                 DM_ERR_TRANSIENT);
    now = dmt_sh("git -C '%s' rev-parse refs/heads/dream/x", bare);
    cr_assert_str_eq(now, a);
    free(now);
    /* expected at a, and at a: moved to b */
    cr_assert_eq(dm_git_local_update(r, "refs/heads/dream/x", &ob, &oa, &s, &err), 0, "%s",
                 err.msg);
    now = dmt_sh("git -C '%s' rev-parse refs/heads/dream/x", bare);
    cr_assert_str_eq(now, b);
    free(now);
    /* deleted since the push read it: left deleted */
    free(dmt_sh("git -C '%s' update-ref -d refs/heads/dream/x && echo ok", bare));
    cr_assert_eq(dm_git_local_update(r, "refs/heads/dream/x", &oa, &ob, &s, &err), DM_ERR_TRANSIENT,
                 "%s", err.msg);
    cr_assert_null(dmt_sh_try("git -C '%s' rev-parse -q --verify refs/heads/dream/x", bare));
    /* locked by another writer: not moved, and the error says so */
    free(dmt_sh("git -C '%s' update-ref refs/heads/dream/x %s && touch "
                "'%s/refs/heads/dream/x.lock' && echo ok",
                bare, a, bare));
    cr_assert_eq(dm_git_local_update(r, "refs/heads/dream/x", &ob, &oa, &s, &err), DM_ERR_TRANSIENT,
                 "%s", err.msg);
    cr_assert(strstr(err.msg, "locked") != NULL, "%s", err.msg);
    now = dmt_sh("git -C '%s' rev-parse refs/heads/dream/x", bare);
    cr_assert_str_eq(now, a);
    free(now);
    free(dmt_sh("rm '%s/refs/heads/dream/x.lock' && echo ok", bare));
    /* a ref under dream/x/ cannot exist next to the branch dream/x */
    cr_assert_eq(dm_git_local_update(r, "refs/heads/dream/x/y", &oa, NULL, &s, &err), DM_ERR_REMOTE,
                 "%s", err.msg);
    cr_assert(strstr(err.msg, "dream/x/y") != NULL, "%s", err.msg);
    cr_assert_null(dmt_sh_try("git -C '%s' rev-parse -q --verify refs/heads/dream/x/y", bare));

    dm_git_session_free(&s);
    git_repository_free(r);
    free(a);
    free(b);
    free(bare);
}

/* The remote's repository is kept open across operations: when its directory is replaced by
 * another repository at the same path, the next push goes to the new one, and a removed one
 * fails the push naming it. */
Test(git, over_file_a_remote_replaced_at_the_same_path_gets_the_next_push)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};

    cr_assert_eq(publish(&res, &o, "dream/one", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    free(dmt_sh("rm -rf '%s' && echo ok", bare));
    free(bare);
    bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    cr_assert_eq(publish(&res, &o, "dream/two", "job-2", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    assert_branch_holds_files(bare, "dream/two", &res, three_files, 3);
    cr_assert_null(dmt_sh_try("git -C '%s' rev-parse -q --verify refs/heads/dream/one", bare));
    free(dmt_sh("rm -rf '%s' && echo ok", bare));
    cr_assert_eq(publish(&res, &o, "dream/three", "job-3", T0, three_files, 3, &err),
                 DM_ERR_NOTFOUND, "%s", err.msg);
    cr_assert(strstr(err.msg, "could not find repository") != NULL, "%s", err.msg);
    free(bare);
}

/* Which URLs are repositories on this machine, reached in-process. */
Test(git, file_urls_and_absolute_paths_are_reached_in_process)
{
    char path[64];

    cr_assert_eq(dm_git_local_path(path, sizeof(path), "file:///srv/git/a%20b/x.git"), 1);
    cr_assert_str_eq(path, "/srv/git/a b/x.git");
    cr_assert_eq(dm_git_local_path(path, sizeof(path), "/srv/git/x%41.git"), 1);
    cr_assert_str_eq(path, "/srv/git/x%41.git", "a plain path is not a URL: not decoded");
    cr_assert_eq(dm_git_local_path(path, sizeof(path), "file://host/srv/x.git"), 0);
    cr_assert_eq(dm_git_local_path(path, sizeof(path), "https://github.com/a/b.git"), 0);
    cr_assert_eq(dm_git_local_path(path, sizeof(path), "ssh://git@host/a/b.git"), 0);
    cr_assert_eq(dm_git_local_path(path, sizeof(path), "git@github.com:a/b.git"), 0);
    cr_assert_eq(dm_git_local_path(path, sizeof(path), "file:///a%00b"), 0);
    cr_assert_eq(dm_git_local_path(path, 8, "file:///a/long/path"), 0, "too long for path");
}

/* The advertisement filter (session.c) passes anything it does not understand to libgit2
 * unchanged: a malformed advertisement (a bad length, a line that is not a ref, a truncated
 * line, a missing flush) fails the look-up with libgit2's own error and breaks nothing; the same
 * server serving a proper one again works. */
Test(git, over_http_a_malformed_advertisement_fails_the_look_up_cleanly)
{
    static const char *const bodies[] = {
        "zzzz0000",                 /* length not hex */
        "0012not a ref line\n0000", /* a line that is not "<oid> <name>" */
        "00ff"
        "0123456789012345678901234567890123456789 refs/heads/main\n",     /* truncated */
        "003f0123456789012345678901234567890123456789 refs/heads/main\n", /* no flush */
        "0003",                                                           /* a length below 4 */
    };
    dmt_githttp_start(&g, "x-access-token", TOKEN);
    char *bare = dmt_git_make_repo(g.root, "acme", "widgets", "main");
    char *tip = dmt_sh("git -C '%s' rev-parse main", bare);
    struct dm_git_opts o = opts_for(g.url_template, TOKEN);
    struct dm_git_tree *tree = NULL;
    struct dm_error err = {0};
    char path[1024], adv[1024];

    snprintf(path, sizeof(path), "%s/backend.sh", g.dir);
    snprintf(adv, sizeof(adv), "%s/adv", g.dir);
    /* While <dir>/adv exists, the upload-pack advertisement is the service line, its flush and
     * that file's bytes. */
    free(dmt_sh("sed -i '2i case \"$QUERY_STRING\" in *service=git-upload-pack*) [ -f %s ] && { "
                "printf \"Content-Type: application/x-git-upload-pack-advertisement\\\\r\\\\n"
                "\\\\r\\\\n001e# service=git-upload-pack\\\\n0000\"; cat %s; exit 0; };; esac' "
                "'%s' && echo ok",
                adv, adv, path));
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        FILE *f = fopen(adv, "wb");
        cr_assert_not_null(f);
        fputs(bodies[i], f);
        fclose(f);
        memset(&err, 0, sizeof(err));
        /* a fresh look-up each time: no answer from an earlier one */
        int rc = dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err);
        cr_assert_neq(rc, 0, "body %zu accepted", i);
        cr_assert_null(tree);
        cr_assert(err.msg[0] != '\0', "body %zu: an error says why", i);
        cr_assert_null(strstr(err.msg, TOKEN), "%s", err.msg);
        cr_assert(strstr(err.msg, "advertisement is malformed") != NULL, "body %zu: %s", i,
                  err.msg);
    }
    free(dmt_sh("rm -f '%s' && echo ok", adv));
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(tree->base_commit, tip);
    dm_git_tree_free(tree);
    free(tip);
    free(bare);
    dmt_githttp_stop(&g);
}

/* Deletes branch on the remote and prunes what only it reached (as a gc after a branch is
 * deleted on GitHub). */
static void drop_and_prune(const char *bare, const char *branch)
{
    free(dmt_sh("git -C '%s' update-ref -d 'refs/heads/%s' && git -C '%s' reflog expire "
                "--expire=now --all && git -C '%s' gc -q --prune=now && echo ok",
                bare, branch, bare, bare));
}

/* The mirror can hold an object the file:// remote has dropped: here a blob of a branch that an
 * earlier attempt fetched, then deleted and pruned on the remote. A new commit whose file has
 * that content still reaches the remote whole (the blob is sent although it was not written
 * anew), and git reads every file of it back. */
Test(git, over_file_an_object_only_the_mirror_still_holds_is_sent_with_the_commit)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};
    char *earlier, *blob;
    static const struct dm_git_file same[] = {{"docs/copy.txt", "x\n", 2, 0}};

    /* An earlier attempt of job-1 left dream/t (x.txt = "x\n"): the mirror fetches it. */
    earlier = job_commit_at(bare, "refs/heads/dream/t", "job-1", "x.txt");
    cr_assert_eq(publish(&res, &o, "dream/t", "job-1", T0, three_files, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(res.forced, 1);
    blob = dmt_sh("git -C '%s' rev-parse '%s:x.txt'", bare, earlier);
    /* The remote drops the branch and prunes: the blob is gone there, not from the mirror. */
    drop_and_prune(bare, "dream/t");
    cr_assert_null(dmt_sh_try("git -C '%s' cat-file -e '%s'", bare, blob));
    free(
        dmt_sh("git -C '%s/mirrors/acme/widgets.git' cat-file -e '%s' && echo ok", data_dir, blob));

    cr_assert_eq(publish(&res, &o, "dream/u", "job-2", T0, same, 1, &err), 0, "%s", err.msg);
    assert_branch_holds_files(bare, "dream/u", &res, same, 1);
    free(dmt_sh("git -C '%s' fsck --no-progress --no-dangling 2>&1 && echo ok", bare));
    free(blob);
    free(earlier);
    free(bare);
}

/* The same, when it is a tree: the same files as an earlier attempt's branch, which the mirror
 * fetched and the remote has since dropped and pruned, make the same root tree; the push sends
 * it (and what it names) although nothing was written anew but the commit. */
Test(git, over_file_a_tree_only_the_mirror_still_holds_is_sent_with_the_commit)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};
    char *tree;

    cr_assert_eq(publish(&res, &o, "dream/one", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    /* A fresh mirror: the republish of the same job fetches dream/one into it. */
    free(dmt_sh("rm -rf '%s/mirrors' && echo ok", data_dir));
    cr_assert_eq(publish(&res, &o, "dream/one", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(res.pushed, 0, "already there");
    tree = dmt_sh("git -C '%s' rev-parse 'dream/one^{tree}'", bare);
    drop_and_prune(bare, "dream/one");
    cr_assert_null(dmt_sh_try("git -C '%s' cat-file -e '%s'", bare, tree));

    cr_assert_eq(publish(&res, &o, "dream/two", "job-2", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    assert_branch_holds_files(bare, "dream/two", &res, three_files, 3);
    free(dmt_sh("git -C '%s' fsck --no-progress --no-dangling 2>&1 && echo ok", bare));
    free(tree);
    free(bare);
}

/* A file:// remote that is not bare (a work tree with .git) is not pushed to: git would refuse to
 * move its checked-out branch, and libgit2's local transport refused it too. Reading it works. */
Test(git, over_file_a_remote_that_is_not_bare_is_refused_with_the_reason)
{
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_tree *tree = NULL;
    struct dm_git_result res;
    struct dm_error err = {0};
    char *work;

    if (asprintf(&work, "%s/acme/widgets.git", root) < 0) {
        cr_assert_fail("asprintf");
    }
    free(dmt_sh("git init -q -b main '%s' && cd '%s' && echo hi > README.md && git add -A && "
                "git -c user.name=A -c user.email=a@x commit -q -m init && echo ok",
                work, work));
    cr_assert_eq(dm_git_list_tree(&tree, &o, "acme", "widgets", "main", 1, 0, &err), 0, "%s",
                 err.msg);
    dm_git_tree_free(tree);
    cr_assert_eq(publish(&res, &o, "dream/todo-api", "job-1", T0, three_files, 3, &err),
                 DM_ERR_REMOTE, "%s", err.msg);
    cr_assert(strstr(err.msg, "not a bare repository") != NULL, "%s", err.msg);
    cr_assert_null(dmt_sh_try("git -C '%s' rev-parse -q --verify refs/heads/dream/todo-api", work));
    free(work);
}

/* Lines of this process's /proc/<pid>/maps that map a file under dir (only deleted ones, when
 * deleted). */
static int maps_under(const char *dir, int deleted)
{
    char *n = dmt_sh("grep -F -- '%s/' /proc/%d/maps | grep -c -F '%s' || true", dir, (int)getpid(),
                     deleted ? "(deleted)" : "/");
    int count = atoi(n);

    free(n);
    return count;
}

/* The kept remote is opened afresh once its packs are rewritten (a gc there): the next operation
 * does not keep the removed packs mapped (their space would stay taken until the mirror is
 * closed). */
Test(git, over_file_the_kept_remote_lets_go_of_packs_a_gc_removed)
{
    char *bare = dmt_git_make_repo(root, "acme", "widgets", "main");
    struct dm_git_opts o = opts_for(file_tpl, NULL);
    struct dm_git_result res;
    struct dm_error err = {0};

    /* The remote's history in a pack, which the push reads (the base tree's entries). */
    free(dmt_sh("git -C '%s' repack -q -a -d && echo ok", bare));
    cr_assert_eq(publish(&res, &o, "dream/one", "job-1", T0, three_files, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_gt(maps_under(bare, 0), 0, "the kept remote maps its pack");
    free(dmt_sh("git -C '%s' gc -q --prune=now && echo ok", bare));
    cr_assert_eq(publish(&res, &o, "dream/two", "job-2", T0 + 1, three_files, 3, &err), 0, "%s",
                 err.msg);
    assert_branch_holds_files(bare, "dream/two", &res, three_files, 3);
    cr_assert_eq(maps_under(bare, 1), 0, "a pack the remote's gc removed is still mapped");
    free(bare);
}
