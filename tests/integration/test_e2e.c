/*
 * End-to-end tests (issue 8): a job added with plain `redis-cli XADD` becomes a pull request on
 * the fake GitHub with a branch in a real repository, with the events in the documented order.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dme2e.h"
#include "githttp.h"

#include <cjson/cJSON.h>

#include "dream/core/buf.h"

static struct dmt_world world;

static void setup(void)
{
    dmt_world_start(&world, NULL);
}

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(e2e, .init = setup, .fini = teardown, .timeout = 180);

Test(e2e, redis_cli_xadd_becomes_a_pull_request)
{
    struct dmt_replica rep;
    char *job = dmt_world_job("xadd-1", NULL, NULL, 200000, 5.0);
    char cmd[8192];
    char *files, *statuses, *pr;
    int st;

    dmt_world_replica(&world, &rep, "solo", NULL);
    /* Exactly what a producer without dreamctl does. */
    snprintf(cmd, sizeof(cmd), "redis-cli -p %d XADD dream:jobs '*' type build job '%s' >/dev/null",
             world.redis.port, job);
    cr_assert_eq(system(cmd), 0);
    free(job);
    cr_assert(dmt_world_wait_status(&world, "xadd-1", "complete,failed", 60000), "job ended");
    pr = dmt_world_hget(&world, "xadd-1", "pr_url");
    cr_assert_not_null(pr, "pr_url recorded (status %s)",
                       dmt_world_hget(&world, "xadd-1", "error"));
    cr_assert_eq(dmt_world_pr_count(&world), 1);
    files = dmt_world_branch_files(&world, "dream/todo-api");
    cr_assert_not_null(files, "branch exists");
    cr_assert_not_null(strstr(files, "README.md"), "base files kept: %s", files);
    cr_assert_not_null(strstr(files, "docs/dream-specs/todo-api.md"), "%s", files);
    cr_assert_not_null(strstr(files, "src/routes/todos.ts"), "%s", files);
    cr_assert_not_null(strstr(files, "src/components/TodoList.tsx"), "%s", files);
    cr_assert_not_null(strstr(files, "migrations/0001_create_todos.sql"), "%s", files);
    statuses = dmt_world_statuses(&world, "xadd-1");
    /* The documented order: started, planning, planned, then per file writing ... generated,
     * testing, pushing, pr_open, complete. */
    cr_assert(strncmp(statuses, "started,planning,planned,writing", 32) == 0, "%s", statuses);
    cr_assert_not_null(strstr(statuses, "generated,testing,pushing,pr_open,complete"), "%s",
                       statuses);
    st = dmt_replica_stop(&rep, 30000);
    cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    free(files);
    free(statuses);
    free(pr);
}

static pid_t start_receiver(const char *secret, int *port)
{
    char script[1024], log[1024];
    long long deadline = dmt_now_ms() + 10000;
    pid_t pid;

    snprintf(script, sizeof(script), "%s/tests/fakes/callback_receiver.py", dmt_source_dir());
    snprintf(log, sizeof(log), "%s/receiver.log", world.dir);
    {
        char *argv[] = {"python3", script, "--port", "0", "--secret", (char *)secret, NULL};
        pid = dmt_spawn(argv, NULL, log);
    }
    while (dmt_now_ms() < deadline) {
        char *out = dmt_read_file(log);
        char *p = out ? strstr(out, "PORT=") : NULL;
        if (p) {
            *port = atoi(p + 5);
            free(out);
            return pid;
        }
        free(out);
        dmt_sleep_ms(20);
    }
    cr_assert_fail("callback receiver did not start");
    return pid;
}

static char *http_get(int port, const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%d%s", port, path);
    return dmt_sh_try("%s", cmd);
}

/* The receiver (tests/fakes/callback_receiver.py) verifies X-Dream-Signature (HMAC-SHA256 of
 * "<t>.<body>", t within 300 s) and records whether any header carried the secret. */
Test(e2e, callbacks_are_signed_and_carry_every_event)
{
    struct dmt_replica rep;
    const char *secret = "cb-secret-e2e";
    char url[128];
    /* The receiver is on loopback: the operator's test-host list exempts it. */
    const char *extra[] = {"--callback-allow-http=127.0.0.1", NULL};
    int port = 0;
    char *job, *statuses, *got;
    cJSON *o, *arr;
    struct dm_buf seen;
    int n;

    start_receiver(secret, &port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
    job = dmt_world_job("cb-1", NULL, NULL, 200000, 5.0);
    o = cJSON_Parse(job);
    free(job);
    cJSON_AddStringToObject(o, "callbackUrl", url);
    job = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    /* Secrets come from the environment (flags show in /proc/<pid>/cmdline). */
    setenv("DREAM_CALLBACK_SECRET", secret, 1);
    dmt_world_replica(&world, &rep, "cb", extra);
    unsetenv("DREAM_CALLBACK_SECRET");
    free(dmt_submit(world.rc, job));
    free(job);
    cr_assert(dmt_world_wait_status(&world, "cb-1", "complete,failed", 60000));
    statuses = dmt_world_statuses(&world, "cb-1");
    /* Deliveries are asynchronous: wait until the terminal one arrived. */
    for (int i = 0; i < 100; i++) {
        got = http_get(port, "/_received");
        if (got && strstr(got, "\"complete\"")) {
            break;
        }
        free(got);
        got = NULL;
        dmt_sleep_ms(100);
    }
    cr_assert_not_null(got, "callbacks received");
    arr = cJSON_Parse(got);
    n = cJSON_GetArraySize(arr);
    cr_assert_gt(n, 0);
    dm_buf_init(&seen, 0);
    for (int i = 0; i < n; i++) {
        cJSON *d = cJSON_GetArrayItem(arr, i);
        cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(d, "secret_seen")),
                  "delivery %d: a header carried the callback secret", i);
        cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(d, "authorization")),
                  "delivery %d: an Authorization header", i);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "sig_ok")),
                  "delivery %d: X-Dream-Signature does not verify", i);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "fresh")),
                  "delivery %d: the signature's timestamp is not recent", i);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "ok")));
        cr_assert_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "seq")), i + 1,
                     "in order, each once");
        dm_buf_printf(&seen, "%s%s", i ? "," : "",
                      cJSON_GetStringValue(cJSON_GetObjectItem(d, "status")));
    }
    cr_assert_str_eq(seen.data, statuses, "the callbacks are the job's events");
    cJSON_Delete(arr);
    dm_buf_free(&seen);
    free(got);
    free(statuses);
    dmt_replica_stop(&rep, 30000);
}

Test(e2e, metrics_endpoint_passes_promtool_and_counts_jobs)
{
    struct dmt_replica rep;
    int port = dmt_free_port();
    char addr[64];
    const char *extra[] = {addr, NULL};
    char *job = dmt_world_job("m-1", NULL, NULL, 200000, 5.0);
    char *body, *check;
    char path[1200];
    FILE *f;

    snprintf(addr, sizeof(addr), "--admin-addr=127.0.0.1:%d", port);
    dmt_world_replica(&world, &rep, "metrics", extra);
    free(dmt_submit(world.rc, job));
    free(job);
    cr_assert(dmt_world_wait_status(&world, "m-1", "complete", 60000));
    body = NULL;
    for (int i = 0; i < 50 && !(body && strstr(body, "status=\"complete\"} 1")); i++) {
        free(body);
        dmt_sleep_ms(100);
        body = http_get(port, "/metrics");
    }
    cr_assert_not_null(body);
    cr_assert_not_null(strstr(body, "dreamd_jobs_total{status=\"complete\"} 1"), "%s", body);
    cr_assert_not_null(strstr(body, "dreamd_llm_requests_total{outcome=\"ok\"}"), "%s", body);
    snprintf(path, sizeof(path), "%s/metrics.txt", world.dir);
    f = fopen(path, "w");
    /* The helper that fetched the body trimmed its final newline; the format requires one. */
    fputs(body, f);
    fputc('\n', f);
    fclose(f);
    check = dmt_sh_try("promtool check metrics < '%s' 2>&1; echo PROMTOOL_RC=$?", path);
    cr_assert(check && strstr(check, "PROMTOOL_RC=0"), "promtool: %s", check ? check : "?");
    free(check);
    free(body);
    body = http_get(port, "/readyz");
    cr_assert_not_null(body, "ready while connected");
    free(body);
    dmt_replica_stop(&rep, 30000);
}
