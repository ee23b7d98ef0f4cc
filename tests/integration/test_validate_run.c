/* Integration tests for validate_run: the real esbuild binary (installed by
 * scripts/bootstrap.sh) as a child process, plus small fake validators written by the tests for
 * timeouts, caps and odd exits. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "dmtest.h"
#include "dream/core/buf.h"
#include "dream/domain/metrics_registry.h"
#include "dream/io/loop.h"
#include "dream/io/metrics.h"
#include "dream/io/validate_run.h"

struct result {
    int fired;
    int status;
    char msg[1024];
    int *counter; /* optional: completions so far, shared */
};

static void on_done(void *arg, int status, const char *message)
{
    struct result *res = arg;
    res->fired++;
    res->status = status;
    snprintf(res->msg, sizeof(res->msg), "%s", message ? message : "");
    if (status == 0) {
        cr_assert_null(message);
    } else {
        cr_assert_not_null(message);
    }
    if (res->counter) {
        ++*res->counter;
    }
}

static void on_closed(void *arg)
{
    ++*(int *)arg;
}

/* Closes the runner, runs the loop until it is freed and asserts the loop closes clean. */
static void close_all(uv_loop_t *loop, struct dm_validate_runner *r)
{
    int closed = 0;
    dm_validate_runner_close(r, on_closed, &closed);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_assert_eq(closed, 1);
    cr_assert_eq(dm_loop_drain_close(loop), 0);
}

static struct dm_validate_runner *runner(uv_loop_t *loop, const char *esbuild, unsigned max,
                                         unsigned timeout_ms)
{
    struct dm_validate_runner_opts o = DM_VALIDATE_RUNNER_OPTS_INIT;
    struct dm_validate_runner *r = NULL;
    struct dm_error err;
    o.esbuild = esbuild;
    o.max_children = max;
    o.timeout_ms = timeout_ms;
    cr_assert_eq(uv_loop_init(loop), 0);
    cr_assert_eq(dm_validate_runner_new(&r, loop, &o, &err), 0, "%s", err.msg);
    return r;
}

/* Writes an executable /bin/sh script into dir and returns its path (caller frees). */
static char *script(const char *dir, const char *name, const char *body)
{
    char *path = NULL;
    FILE *f;
    cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    cr_assert_eq(chmod(path, 0755), 0);
    return path;
}

static void check(struct dm_validate_runner *r, const char *path, const char *text,
                  struct result *res)
{
    cr_assert_eq(dm_validate_run(r, path, text, strlen(text), on_done, res, NULL), 0);
    cr_assert_eq(res->fired, 0, "never inside the call that started it");
}

Test(validate_run, finds_the_bootstrapped_esbuild)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, NULL, 2, 20000);
    const char *e = dm_validate_runner_esbuild(r);
    cr_assert_not_null(e, "esbuild not found: run scripts/bootstrap.sh");
    cr_assert(strstr(e, "esbuild"), "%s", e);
    close_all(&loop, r);
}

Test(validate_run, valid_typescript_passes)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, NULL, 2, 20000);
    struct result ts = {0};
    struct result jsx = {0};
    check(r, "src/routes/todos.ts",
          "import { Hono } from 'hono';\n"
          "type Todo = { id: number; title: string };\n"
          "const app = new Hono();\n"
          "app.get('/todos', (c) => c.json<Todo[]>([]));\n"
          "export default app;\n",
          &ts);
    check(r, "src/a.jsx", "export const A = () => <div className=\"x\">hi</div>;\n", &jsx);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(ts.fired, 1);
    cr_assert_eq(ts.status, 0, "%s", ts.msg);
    cr_assert_eq(jsx.fired, 1);
    cr_assert_eq(jsx.status, 0, "%s", jsx.msg);
    close_all(&loop, r);
}

Test(validate_run, invalid_tsx_reports_the_position)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, NULL, 2, 20000);
    struct result res = {0};
    struct result as_ts = {0};
    const char *tsx = "export const C = () => {\n"
                      "  return <div>hi</span>;\n"
                      "};\n";
    check(r, "src/components/c.tsx", tsx, &res);
    /* The loader follows the extension: JSX is not TypeScript. */
    check(r, "src/components/c.ts", "export const C = () => <div>hi</div>;\n", &as_ts);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(res.fired, 1);
    cr_assert_eq(res.status, DM_ERR_INVALID, "%d %s", res.status, res.msg);
    cr_assert_str_eq(res.msg, "src/components/c.tsx:2:18: Unexpected closing \"span\" tag does not "
                              "match opening \"div\" tag");
    cr_assert_eq(as_ts.status, DM_ERR_INVALID, "%s", as_ts.msg);
    cr_assert(!strncmp(as_ts.msg, "src/components/c.ts:1:", 22), "%s", as_ts.msg);
    close_all(&loop, r);
}

Test(validate_run, missing_binary_is_unavailable)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, "/nonexistent/dir/esbuild", 2, 20000);
    struct result res = {0};
    cr_assert_null(dm_validate_runner_esbuild(r), "a configured path is never replaced");
    check(r, "a.ts", "export {};\n", &res);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(res.fired, 1);
    cr_assert_eq(res.status, DM_ERR_UNAVAILABLE, "%s", res.msg);
    cr_assert(strstr(res.msg, "esbuild"), "%s", res.msg);
    close_all(&loop, r);
}

Test(validate_run, binary_removed_after_start_is_unavailable)
{
    char *dir = dmt_tempdir("vrun");
    char *path = script(dir, "esbuild", "exit 0");
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, path, 2, 20000);
    struct result res = {0};
    cr_assert_str_eq(dm_validate_runner_esbuild(r), path);
    cr_assert_eq(unlink(path), 0);
    check(r, "a.ts", "export {};\n", &res);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(res.fired, 1);
    cr_assert_eq(res.status, DM_ERR_UNAVAILABLE, "%d %s", res.status, res.msg);
    close_all(&loop, r);
    dmt_rmtree(dir);
    free(path);
    free(dir);
}

static int pid_alive(pid_t pid)
{
    char p[64];
    char *stat;
    int alive;
    if (kill(pid, 0) != 0) {
        return 0;
    }
    /* Reparented zombies may linger where PID 1 does not reap; they are dead all the same. */
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    stat = dmt_read_file(p);
    if (!stat) {
        return 0;
    }
    alive = strstr(stat, ") Z ") == NULL;
    free(stat);
    return alive;
}

Test(validate_run, timeout_kills_the_validator_and_its_children)
{
    char *dir = dmt_tempdir("vrun");
    char *body = NULL;
    char *path;
    char *pidfile = NULL;
    char *text;
    uv_loop_t loop;
    struct dm_validate_runner *r;
    struct result res = {0};
    long long t0;
    long long took;

    cr_assert(asprintf(&pidfile, "%s/sleep.pid", dir) > 0);
    /* A helper process that inherits the pipes: it must die with the validator. */
    cr_assert(asprintf(&body, "sleep 30 &\necho $! > %s\nwait\n", pidfile) > 0);
    path = script(dir, "slow-esbuild", body);
    r = runner(&loop, path, 2, 300);
    t0 = dmt_now_ms();
    check(r, "src/routes/slow.ts", "export {};\n", &res);
    uv_run(&loop, UV_RUN_DEFAULT);
    took = dmt_now_ms() - t0;
    cr_assert_eq(res.fired, 1);
    cr_assert_eq(res.status, DM_ERR_TIMEOUT, "%d %s", res.status, res.msg);
    cr_assert(strstr(res.msg, "300 ms"), "%s", res.msg);
    cr_assert(took >= 250 && took < 3000, "took %lld ms", took);
    text = dmt_read_file(pidfile);
    cr_assert_not_null(text);
    pid_t sleeper = (pid_t)atoi(text);
    cr_assert(sleeper > 0);
    for (int i = 0; i < 100 && pid_alive(sleeper); i++) {
        dmt_sleep_ms(20);
    }
    cr_assert(!pid_alive(sleeper), "the validator's child %d survived", (int)sleeper);
    close_all(&loop, r);
    dmt_rmtree(dir);
    free(text);
    free(body);
    free(pidfile);
    free(path);
    free(dir);
}

Test(validate_run, large_output_is_drained_and_capped)
{
    char *dir = dmt_tempdir("vrun");
    /* 8 MB on stdout (more than any pipe buffer) before the error: the child must not block. */
    char *path =
        script(dir, "noisy-esbuild",
               "cat > /dev/null\n"
               "head -c 8000000 /dev/zero\n"
               "printf 'X [ERROR] Expected \";\" but found \"x\"\\n\\n    a.ts:3:4:\\n' >&2\n"
               "exit 1");
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, path, 2, 20000);
    struct result res = {0};
    check(r, "a.ts", "let a = 1;\n", &res);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(res.fired, 1);
    cr_assert_eq(res.status, DM_ERR_INVALID, "%d %s", res.status, res.msg);
    cr_assert_str_eq(res.msg, "a.ts:3:4: Expected \";\" but found \"x\"");
    close_all(&loop, r);
    dmt_rmtree(dir);
    free(path);
    free(dir);
}

Test(validate_run, failure_without_an_error_message_is_io)
{
    char *dir = dmt_tempdir("vrun");
    char *path = script(dir, "broken-esbuild", "echo 'segmentation fault, sort of' >&2\nexit 3");
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, path, 2, 20000);
    struct result res = {0};
    check(r, "a.ts", "let a = 1;\n", &res);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(res.status, DM_ERR_IO, "%d %s", res.status, res.msg);
    cr_assert_str_eq(res.msg, "esbuild exited with status 3: segmentation fault, sort of");
    close_all(&loop, r);
    dmt_rmtree(dir);
    free(path);
    free(dir);
}

struct peak {
    struct dm_validate_runner *r;
    uv_timer_t timer;
    size_t peak;
    int done;
    int total;
};

static void on_peak_tick(uv_timer_t *t)
{
    struct peak *p = t->data;
    size_t n = dm_validate_runner_running(p->r);
    if (n > p->peak) {
        p->peak = n;
    }
    if (p->done == p->total) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
    }
}

Test(validate_run, concurrency_is_capped_and_queued)
{
    char *dir = dmt_tempdir("vrun");
    char *path = script(dir, "sleepy-esbuild", "cat > /dev/null\nsleep 0.3\nexit 0");
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, path, 3, 20000);
    struct result res[9];
    struct peak p = {0};
    long long t0;
    long long took;

    memset(res, 0, sizeof(res));
    p.r = r;
    p.total = 9;
    uv_timer_init(&loop, &p.timer);
    p.timer.data = &p;
    uv_timer_start(&p.timer, on_peak_tick, 5, 5);
    t0 = dmt_now_ms();
    for (int i = 0; i < 9; i++) {
        res[i].counter = &p.done;
        check(r, "x.ts", "export {};\n", &res[i]);
    }
    cr_assert_eq(dm_validate_runner_pending(r), 9);
    uv_run(&loop, UV_RUN_DEFAULT);
    took = dmt_now_ms() - t0;
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(res[i].fired, 1);
        cr_assert_eq(res[i].status, 0, "%s", res[i].msg);
    }
    cr_assert_eq(p.peak, 3, "peak %zu", p.peak);
    cr_assert(took >= 850, "9 checks of 0.3 s, 3 at a time, took only %lld ms", took);
    cr_assert_eq(dm_validate_runner_pending(r), 0);
    close_all(&loop, r);
    dmt_rmtree(dir);
    free(path);
    free(dir);
}

Test(validate_run, many_concurrent_real_checks_keep_their_results)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, NULL, 4, 30000);
    enum { N = 24 };
    struct result res[N];
    char text[N][128];
    char path[N][64];

    memset(res, 0, sizeof(res));
    for (int i = 0; i < N; i++) {
        snprintf(path[i], sizeof(path[i]), "src/f%d.ts", i);
        if (i % 3 == 0) {
            /* Invalid, at a line that tells which file the message belongs to. */
            snprintf(text[i], sizeof(text[i]), "%.*slet x: = %d;\n", i % 10, "\n\n\n\n\n\n\n\n\n\n",
                     i);
        } else {
            snprintf(text[i], sizeof(text[i]), "export const v%d: number = %d;\n", i, i);
        }
        check(r, path[i], text[i], &res[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(res[i].fired, 1);
        if (i % 3 == 0) {
            char want[128];
            snprintf(want, sizeof(want), "%s:%d:7: ", path[i], i % 10 + 1);
            cr_assert_eq(res[i].status, DM_ERR_INVALID, "%d: %s", i, res[i].msg);
            cr_assert(!strncmp(res[i].msg, want, strlen(want)), "%d: want %s got %s", i, want,
                      res[i].msg);
        } else {
            cr_assert_eq(res[i].status, 0, "%d: %s", i, res[i].msg);
        }
    }
    close_all(&loop, r);
}

Test(validate_run, cancel_queued_and_running)
{
    char *dir = dmt_tempdir("vrun");
    char *path = script(dir, "slow-esbuild", "exec sleep 30");
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, path, 1, 60000);
    struct result running = {0};
    struct result queued = {0};
    struct dm_validate_req *rq = NULL;
    struct dm_validate_req *qq = NULL;
    long long t0;

    cr_assert_eq(dm_validate_run(r, "a.ts", "1", 1, on_done, &running, &rq), 0);
    cr_assert_eq(dm_validate_run(r, "b.ts", "2", 1, on_done, &queued, &qq), 0);
    cr_assert_not_null(rq);
    /* Let the first one start. */
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(dm_validate_runner_running(r), 1);
    t0 = dmt_now_ms();
    dm_validate_cancel(qq);
    dm_validate_cancel(rq);
    cr_assert_eq(queued.fired, 0, "not inside dm_validate_cancel");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(dmt_now_ms() - t0 < 3000);
    cr_assert_eq(running.fired, 1);
    cr_assert_eq(running.status, DM_ERR_CANCELLED, "%s", running.msg);
    cr_assert_eq(queued.fired, 1);
    cr_assert_eq(queued.status, DM_ERR_CANCELLED, "%s", queued.msg);
    close_all(&loop, r);
    dmt_rmtree(dir);
    free(path);
    free(dir);
}

Test(validate_run, close_cancels_everything_and_the_loop_closes_clean)
{
    char *dir = dmt_tempdir("vrun");
    char *path = script(dir, "slow-esbuild", "exec sleep 30");
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, path, 2, 60000);
    struct result res[5];
    int closed = 0;

    memset(res, 0, sizeof(res));
    for (int i = 0; i < 5; i++) {
        check(r, "a.ts", "x", &res[i]);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(dm_validate_runner_running(r), 2);
    dm_validate_runner_close(r, on_closed, &closed);
    cr_assert_eq(dm_validate_run(r, "c.ts", "x", 1, on_done, &res[0], NULL), DM_ERR_CANCELLED);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(closed, 1);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(res[i].fired, 1);
        cr_assert_eq(res[i].status, DM_ERR_CANCELLED, "%d %s", i, res[i].msg);
    }
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
    dmt_rmtree(dir);
    free(path);
    free(dir);
}

Test(validate_run, refuses_files_without_a_loader)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, NULL, 2, 20000);
    struct result res = {0};
    cr_assert_eq(dm_validate_run(r, "notes.md", "x", 1, on_done, &res, NULL), DM_ERR_INVALID);
    cr_assert_eq(dm_validate_run(r, "a.ts", "x", 1, NULL, &res, NULL), DM_ERR_INVALID);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(res.fired, 0);
    close_all(&loop, r);
}

Test(validate_run, child_environment_has_no_secrets)
{
    char *dir = dmt_tempdir("vrun");
    char *path =
        script(dir, "env-esbuild",
               "cat > /dev/null\n"
               "if [ -n \"$OPENROUTER_API_KEY\" ]; then echo 'X [ERROR] leaked' >&2; exit 1; "
               "fi\n"
               "command -v sleep > /dev/null || { echo 'X [ERROR] no PATH' >&2; exit 1; }\n"
               "exit 0");
    uv_loop_t loop;
    struct dm_validate_runner *r;
    struct result res = {0};
    setenv("OPENROUTER_API_KEY", "sk-or-secret", 1);
    r = runner(&loop, path, 2, 20000);
    check(r, "a.ts", "x", &res);
    uv_run(&loop, UV_RUN_DEFAULT);
    unsetenv("OPENROUTER_API_KEY");
    cr_assert_eq(res.status, 0, "%s", res.msg);
    close_all(&loop, r);
    dmt_rmtree(dir);
    free(path);
    free(dir);
}

/* ---- the SQL check, off the loop ---- */

struct probe {
    int port;
    volatile int stop;
    int n, bad;
};

static size_t drop_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Another thread asks /healthz every 50 ms until told to stop, counting what was not 200. */
static void *probe_healthz(void *arg)
{
    struct probe *pr = arg;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", pr->port);
    while (!pr->stop) {
        CURL *c = curl_easy_init();
        long status = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, drop_body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        if (curl_easy_perform(c) == CURLE_OK) {
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        }
        curl_easy_cleanup(c);
        pr->n++;
        pr->bad += status != 200;
        usleep(50 * 1000);
    }
    return NULL;
}

struct sql_run {
    struct result res;
    struct dm_admin *admin;
};

static void on_sql_checked(void *arg, int status, const char *message)
{
    struct sql_run *s = arg;
    on_done(&s->res, status, message);
    dm_admin_unwatch_loop(s->admin); /* lets the loop end */
}

/* A migration built to run to the SQL check's 2 s deadline (ALTER TABLE ... RENAME re-checks the
 * whole schema each time): the check runs on the threadpool, so the loop keeps turning (a
 * /healthz with a 200 ms stall threshold answers 200 throughout), and the file fails with the
 * time limit named. */
Test(validate_run, a_sql_check_at_its_time_limit_runs_off_the_loop_and_fails_naming_the_limit)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, NULL, 4, 20000);
    struct dm_metrics *m = NULL;
    struct dm_error err;
    struct sql_run s;
    struct probe pr;
    struct dm_buf sql;
    pthread_t th;

    memset(&s, 0, sizeof(s));
    memset(&pr, 0, sizeof(pr));
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
    cr_assert_eq(dm_metrics_new(&m), 0);
    cr_assert_eq(dm_admin_start(&s.admin, m, "127.0.0.1:0", &err), 0, "%s", err.msg);
    cr_assert_eq(dm_admin_watch_loop(s.admin, &loop, 200), 0);
    pr.port = dm_admin_port(s.admin);
    cr_assert_eq(
        dm_validate_run(r, "migrations/0002_slow.sql", sql.data, sql.len, on_sql_checked, &s, NULL),
        0, "a .sql file is checked by the runner");
    cr_assert_eq(pthread_create(&th, NULL, probe_healthz, &pr), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    pr.stop = 1;
    pthread_join(th, NULL);
    cr_assert_eq(s.res.fired, 1);
    cr_assert_eq(s.res.status, DM_ERR_LIMIT, "status %d: %s", s.res.status, s.res.msg);
    cr_assert_not_null(strstr(s.res.msg, "migrations/0002_slow.sql: line "), "%s", s.res.msg);
    cr_assert_not_null(strstr(s.res.msg, "the SQL check passed its time limit (2 s)"), "%s",
                       s.res.msg);
    cr_assert_geq(pr.n, 10, "healthz was asked throughout (%d times)", pr.n);
    cr_assert_eq(pr.bad, 0, "%d of %d /healthz answers were not 200: the loop stalled", pr.bad,
                 pr.n);
    close_all(&loop, r);
    dm_admin_stop(s.admin);
    dm_metrics_free(m);
    dm_buf_free(&sql);
}

struct ordered {
    struct result res;
    int *seq;
    int at; /* completion order, from 1 */
};

static void on_ordered(void *arg, int status, const char *message)
{
    struct ordered *o = arg;
    on_done(&o->res, status, message);
    o->at = ++*o->seq;
}

/* SQLite's heap limit is process-wide: SQL checks run one at a time, so a file built to fill
 * that heap cannot fail another job's valid file with "out of memory" (and a single pool thread
 * is taken by SQL checks). A second check waits for the first, in order. */
Test(validate_run, sql_checks_run_one_at_a_time)
{
    uv_loop_t loop;
    struct dm_validate_runner *r = runner(&loop, NULL, 4, 20000);
    struct ordered slow, fast;
    struct dm_buf sql;
    const char *ok = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n";
    int seq = 0;
    long long t0;

    memset(&slow, 0, sizeof(slow));
    memset(&fast, 0, sizeof(fast));
    slow.seq = fast.seq = &seq;
    dm_buf_init(&sql, 0);
    /* The slow migration of the test above: it runs to the 2 s time limit. */
    for (int t = 0; t < 150; t++) {
        dm_buf_printf(&sql, "CREATE TABLE t%d (", t);
        for (int c = 0; c < 120; c++) {
            dm_buf_printf(&sql, "%sc%d INT", c ? ", " : "", c);
        }
        dm_buf_printf(&sql, ");\n");
    }
    for (int k = 0; k < 2; k++) {
        for (int t = 0; t < 150; t++) {
            dm_buf_printf(&sql,
                          k ? "ALTER TABLE u%d RENAME TO t%d;\n"
                            : "ALTER TABLE t%d RENAME "
                              "TO u%d;\n",
                          t, t);
        }
    }
    cr_assert_eq(
        dm_validate_run(r, "migrations/0001_slow.sql", sql.data, sql.len, on_ordered, &slow, NULL),
        0);
    cr_assert_eq(
        dm_validate_run(r, "migrations/0002_users.sql", ok, strlen(ok), on_ordered, &fast, NULL),
        0);
    t0 = dmt_now_ms();
    while (dm_validate_runner_running(r) == 0 && dmt_now_ms() - t0 < 5000) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    cr_assert_eq(dm_validate_runner_running(r), 1, "one SQL check at a time, not %zu",
                 dm_validate_runner_running(r));
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(slow.res.fired, 1);
    cr_assert_eq(fast.res.fired, 1);
    cr_assert_eq(slow.res.status, DM_ERR_LIMIT, "%d: %s", slow.res.status, slow.res.msg);
    cr_assert_eq(fast.res.status, 0, "%d: %s", fast.res.status, fast.res.msg);
    cr_assert_eq(slow.at, 1, "the second check waited for the first");
    cr_assert_eq(fast.at, 2);
    close_all(&loop, r);
    dm_buf_free(&sql);
}
