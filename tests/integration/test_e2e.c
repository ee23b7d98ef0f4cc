/*
 * End-to-end tests (issue 8): a job added with plain `redis-cli XADD` becomes a pull request on
 * the fake GitHub with a branch in a real repository, with the events in the documented order.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dme2e.h"

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
    cr_assert_not_null(strstr(files, "src/routes/get-todos-lists-todos.ts"), "%s", files);
    cr_assert_not_null(strstr(files, "src/components/todolist-component.tsx"), "%s", files);
    cr_assert_not_null(strstr(files, "migrations/todos-table.sql"), "%s", files);
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
