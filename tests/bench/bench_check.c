/*
 * bench_check: the added cost per job of reading the base (the tree, the chosen files and the
 * stack, via gitjob: what LOAD_REPO does; warm: the pipeline holds the commit) and of the
 * whole-change check on a big repository: the base written out (git/checkout via basework), the
 * base's own type-check (the baseline), the change's type-check, and the migration replay; first
 * cold (empty data directory), then with the per-commit cache warm. Prints wall time and CPU (this
 * process: the threadpool's file work; children: tsc) per step. Driven by bench_check.sh.
 *
 *   bench_check <data_dir> <url_template> <owner> <repo>
 */
#include "dream/domain/repo.h"
#include "dream/io/basework.h"
#include "dream/io/gitjob.h"
#include "dream/io/typecheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

static uv_loop_t loop;
static struct dm_git_checkout co;
static int rc_seen;
static char msg[600];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}

static void on_co(void *arg, int rc, const struct dm_git_checkout *c, const struct dm_error *err)
{
    (void)arg;
    rc_seen = rc;
    if (rc == 0) {
        co = *c;
    } else {
        snprintf(msg, sizeof(msg), "%s", err->msg);
    }
}

static void on_tc(void *arg, int rc, const struct dm_typecheck_result *res,
                  const struct dm_error *err)
{
    (void)arg;
    rc_seen = rc;
    if (rc == 0) {
        snprintf(msg, sizeof(msg), "%zu files, %zu diagnostics%s", res->files, res->diags.n,
                 res->from_baseline ? ", from the baseline file" : "");
    } else {
        snprintf(msg, sizeof(msg), "%s", err->msg);
    }
}

static char read_commit[64];

static void on_repo(void *arg, int rc, struct dm_gitjob_repo *res, const struct dm_error *err)
{
    (void)arg;
    rc_seen = rc;
    if (rc == 0) {
        char *stack = res->repo ? dm_stack_describe(&res->repo->stack) : NULL;
        snprintf(read_commit, sizeof(read_commit), "%s", res->commit);
        snprintf(msg, sizeof(msg), "%s", res->cached ? "cached: nothing read" : "read");
        if (res->repo) {
            snprintf(msg, sizeof(msg), "%zu files in the tree, %zu read, stack %s",
                     res->repo->n_tree, res->repo->n_files, stack ? stack : "?");
        }
        free(stack);
    } else {
        snprintf(msg, sizeof(msg), "%s", err->msg);
    }
}

static void on_mig(void *arg, int rc, const struct dm_basework_migrated *res,
                   const struct dm_error *err)
{
    (void)arg;
    rc_seen = rc;
    snprintf(msg, sizeof(msg), "%s", rc ? err->msg : res->applied);
}

static void step(const char *name, double t0, double self0, double kids0)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("  %-28s wall %8.1f ms  cpu %8.1f ms (tsc %8.1f ms)  rc %d  %s\n", name, now_ms() - t0,
           cpu_ms(RUSAGE_SELF) - self0 + cpu_ms(RUSAGE_CHILDREN) - kids0,
           cpu_ms(RUSAGE_CHILDREN) - kids0, rc_seen, msg);
    msg[0] = '\0';
}

static void run(const char *label, const char *data, const char *url, const char *owner,
                const char *repo)
{
    struct dm_git_opts o = DM_GIT_OPTS_INIT;
    struct dm_basework_checkout_req cr;
    struct dm_typecheck_req tr;
    struct dm_basework_migrate_req mr;
    struct dm_error err;
    char cache[4200], work[4200], baseline[4200];
    const char *route = "import { Hono } from 'hono';\nimport { value1 } from './d01/file00001';\n"
                        "const todos = new Hono();\ntodos.get('/', (c) => c.json({ value1 }));\n"
                        "export default todos;\n";
    const char *sql = "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);\n";
    struct dm_typecheck_file files[] = {{"src/todos.ts", route, strlen(route)}};
    struct dm_migration news[] = {{"migrations/0002_todos.sql", sql, strlen(sql), 1}};
    double t0, s0, k0;

    printf("%s\n", label);
    snprintf(cache, sizeof(cache), "%s/checks/base", data);
    snprintf(work, sizeof(work), "%s/checks/jobs/bench", data);
    o.data_dir = data;
    o.url_template = url;

    {
        struct dm_gitjob_repo_req rr;
        const char *known[] = {read_commit};
        memset(&rr, 0, sizeof(rr));
        rr.opts = &o;
        rr.owner = owner;
        rr.repo = repo;
        rr.base = "main";
        rr.refresh = 1;
        rr.known = known;
        rr.n_known = read_commit[0] ? 1 : 0; /* warm: the pipeline's cache holds the commit */
        rr.on_done = on_repo;
        t0 = now_ms(), s0 = cpu_ms(RUSAGE_SELF), k0 = cpu_ms(RUSAGE_CHILDREN);
        if (dm_gitjob_read_repo(NULL, &loop, &rr, &err) == 0) {
            step("base read (LOAD_REPO)", t0, s0, k0);
        }
    }

    memset(&cr, 0, sizeof(cr));
    cr.opts = &o;
    cr.owner = owner;
    cr.repo = repo;
    cr.base = "main";
    cr.cache_root = cache;
    cr.on_done = on_co;
    t0 = now_ms(), s0 = cpu_ms(RUSAGE_SELF), k0 = cpu_ms(RUSAGE_CHILDREN);
    if (dm_basework_checkout(NULL, &loop, &cr, &err) == 0) {
        snprintf(msg, sizeof(msg), " ");
        step("base written out", t0, s0, k0);
    }
    if (rc_seen) {
        return;
    }
    printf("    (%s, %zu files written%s)\n", co.commit, co.files, co.cached ? ", cached" : "");
    snprintf(baseline, sizeof(baseline), "%s/.dream-tsc-baseline", co.dir);

    memset(&tr, 0, sizeof(tr));
    tr.base_dir = co.dir;
    tr.work_dir = work;
    tr.baseline = baseline;
    tr.on_done = on_tc;
    t0 = now_ms(), s0 = cpu_ms(RUSAGE_SELF), k0 = cpu_ms(RUSAGE_CHILDREN);
    if (dm_typecheck_start(NULL, &loop, NULL, &tr, &err) == 0) {
        step("base type-check (baseline)", t0, s0, k0);
    }
    tr.files = files;
    tr.nfiles = 1;
    t0 = now_ms(), s0 = cpu_ms(RUSAGE_SELF), k0 = cpu_ms(RUSAGE_CHILDREN);
    if (dm_typecheck_start(NULL, &loop, NULL, &tr, &err) == 0) {
        step("change type-check", t0, s0, k0);
    }
    memset(&mr, 0, sizeof(mr));
    mr.base_dir = co.dir;
    mr.migrations_dir = "migrations/";
    mr.news = news;
    mr.nnew = 1;
    mr.on_done = on_mig;
    t0 = now_ms(), s0 = cpu_ms(RUSAGE_SELF), k0 = cpu_ms(RUSAGE_CHILDREN);
    if (dm_basework_migrate(NULL, &loop, &mr, &err) == 0) {
        step("migration replay", t0, s0, k0);
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_check <data_dir> <url_template> <owner> <repo>\n");
        return 2;
    }
    uv_loop_init(&loop);
    run("cold (empty data directory)", argv[1], argv[2], argv[3], argv[4]);
    run("warm (the commit's files and baseline cached)", argv[1], argv[2], argv[3], argv[4]);
    uv_loop_close(&loop);
    return 0;
}
