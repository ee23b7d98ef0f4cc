/*
 * Integration tests of the dreamd process (issue 2): --help and --version, bad settings, secret
 * redaction, start-up against a real redis-server and a closed port, shutdown on SIGTERM.
 */
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

/* Runs dreamd with args and env, returns its exit status and output (caller frees). */
static int run_dreamd(const char *const *args, char *const *env, char **output)
{
    char bin[512];
    const char *argv[32];
    char *tmp = dmt_tempdir("run");
    char log[600];
    int n = 0, st;
    pid_t pid;

    snprintf(bin, sizeof(bin), "%s/dreamd", dmt_binary_dir());
    snprintf(log, sizeof(log), "%s/out", tmp);
    argv[n++] = bin;
    for (int i = 0; args && args[i]; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    pid = dmt_spawn((char *const *)argv, env, log);
    st = dmt_stop(pid, 0, 10000);
    *output = dmt_read_file(log);
    dmt_rmtree(tmp);
    free(tmp);
    return st;
}

Test(dreamd, help_lists_every_setting_with_env_and_default)
{
    const char *args[] = {"--help", NULL};
    static const char *const names[] = {"DREAM_REDIS_URL",
                                        "DREAM_PREFIX",
                                        "DREAM_CONSUMER",
                                        "DREAM_MAX_JOBS",
                                        "DREAM_MAX_REQUESTS",
                                        "DREAM_FILE_PARALLELISM",
                                        "DREAM_LEASE_MS",
                                        "DREAM_MAX_ATTEMPTS",
                                        "DREAM_SHUTDOWN_GRACE_MS",
                                        "OPENROUTER_API_KEY",
                                        "DREAM_LLM_URL",
                                        "DREAM_MODEL",
                                        "DREAM_REVIEW_MODEL",
                                        "DREAM_PRICES_FILE",
                                        "GITHUB_TOKEN",
                                        "DREAM_GITHUB_API_URL",
                                        "DREAM_FORGE_WRITE_INTERVAL_MS",
                                        "DREAM_GIT_URL",
                                        "DREAM_DATA_DIR",
                                        "DREAM_SIGNING_SECRETS",
                                        "DREAM_CALLBACK_SECRET",
                                        "DREAM_PROTECTED_BRANCHES",
                                        "DREAM_ADMIN_ADDR",
                                        "DREAM_ESBUILD",
                                        "DREAM_LOG_LEVEL",
                                        "OPENROUTER_API_KEY_FILE",
                                        "GITHUB_TOKEN_FILE"};
    char *out = NULL;
    int st = run_dreamd(args, NULL, &out);

    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_not_null(out);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_assert_not_null(strstr(out, names[i]), "--help does not mention %s", names[i]);
    }
    cr_assert_not_null(strstr(out, "default redis://127.0.0.1:6379/0"));
    cr_assert_not_null(strstr(out, "default 64"));
    cr_assert_not_null(strstr(out, "default main,master,production,staging,release/*"));
    free(out);
}

Test(dreamd, version)
{
    const char *args[] = {"--version", NULL};
    char *out = NULL;
    int st = run_dreamd(args, NULL, &out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_not_null(strstr(out, "dreamd " DREAM_VERSION));
    free(out);
}

Test(dreamd, bad_settings_exit_2_naming_each)
{
    const char *args[] = {"--max-jobs=lots", "--redis-url=http://x", "--no-such-flag", NULL};
    char *env[] = {"DREAM_LOG_LEVEL=loud", NULL};
    char *out = NULL;
    int st = run_dreamd(args, env, &out);

    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit status %d", WEXITSTATUS(st));
    cr_assert_not_null(strstr(out, "--max-jobs (DREAM_MAX_JOBS)"), "%s", out);
    cr_assert_not_null(strstr(out, "--redis-url (DREAM_REDIS_URL)"), "%s", out);
    cr_assert_not_null(strstr(out, "--log-level (DREAM_LOG_LEVEL)"), "%s", out);
    cr_assert_not_null(strstr(out, "--no-such-flag"), "%s", out);
    free(out);
}

Test(dreamd, secrets_are_redacted_in_printed_config)
{
    char *tmp = dmt_tempdir("secret");
    char path[600], envfile[700];
    const char *args[] = {"--print-config", "--redis-url=redis://:hunter2-pass@127.0.0.1:1/0",
                          NULL};
    FILE *f;
    char *out = NULL;
    int st;

    snprintf(path, sizeof(path), "%s/gh", tmp);
    f = fopen(path, "w");
    fputs("ghp_filetokenvalue0123456789\n", f);
    fclose(f);
    snprintf(envfile, sizeof(envfile), "GITHUB_TOKEN_FILE=%s", path);
    {
        char *env[] = {"OPENROUTER_API_KEY=sk-or-v1-supersecretvalue", envfile,
                       "DREAM_SIGNING_SECRETS=sign-one,sign-two", NULL};
        st = run_dreamd(args, env, &out);
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_null(strstr(out, "supersecret"), "%s", out);
    cr_assert_null(strstr(out, "filetokenvalue"), "%s", out);
    cr_assert_null(strstr(out, "sign-one"), "%s", out);
    cr_assert_null(strstr(out, "hunter2"), "%s", out);
    cr_assert_not_null(strstr(out, "openrouter-api-key=<set>"), "%s", out);
    cr_assert_not_null(strstr(out, "github-token=<set>"), "%s", out);
    cr_assert_not_null(strstr(out, "redis-url=redis://:***@127.0.0.1:1/0"), "%s", out);
    free(out);
    dmt_rmtree(tmp);
    free(tmp);
}

Test(dreamd, idle_exits_0_within_a_second_of_sigterm, .timeout = 60)
{
    struct dmt_redis r;
    struct dmt_replica rep;
    char *dir = dmt_tempdir("idle");
    redisContext *c;
    long long t0;
    int st;

    memset(&r, 0, sizeof(r));
    dmt_redis_start(&r);
    c = dmt_redis_connect(&r);
    dmt_replica_start(&rep, &r, dir, "idle", NULL);
    dmt_replica_wait_ready(&rep, c, 10000);
    t0 = dmt_now_ms();
    st = dmt_replica_stop(&rep, 5000);
    cr_assert_lt(dmt_now_ms() - t0, 1000, "exit took %lld ms", dmt_now_ms() - t0);
    /* Under the sanitizers a leak or a loop that did not close makes the exit status non-zero. */
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, log %s", st, rep.log);
    cr_assert_eq(dmt_count_in_file(rep.log, "loop did not close"), 0);
    redisFree(c);
    dmt_redis_stop(&r);
    dmt_rmtree(dir);
    free(dir);
}

Test(dreamd, closed_port_logs_clear_error_and_keeps_retrying, .timeout = 60)
{
    struct dmt_redis fake = {0};
    struct dmt_replica rep;
    char *dir = dmt_tempdir("closed");
    int st;

    fake.port = dmt_free_port(); /* nothing listens there */
    dmt_replica_start(&rep, &fake, dir, "lonely", NULL);
    /* It keeps trying: several attempts, each failing with a clear message. */
    cr_assert_geq(dmt_wait_in_file(rep.log, "commands: connect to 127.0.0.1:", 3, 20000), 3,
                  "repeated, clear connection errors (log %s)", rep.log);
    cr_assert_gt(dmt_wait_in_file(rep.log, "reconnecting in", 4, 20000), 3, "log %s", rep.log);
    st = dmt_replica_stop(&rep, 5000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    dmt_rmtree(dir);
    free(dir);
}
