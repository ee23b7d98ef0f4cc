/*
 * The repository-aware change end to end (issue 13): the real dreamd reads the base of the
 * fixture repository, plans in its conventions, edits its entry and barrel with their current
 * content, checks the whole change with tsc and the migration replay, and opens a PR whose body
 * maps the spec to files. Real redis-server, the fake OpenRouter (which refuses to write an edit
 * whose prompt lacks the file's current content), the fake GitHub, a bare repository built from
 * tests/data/repos/.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dme2e.h"
#include "fixture.h"

static struct dmt_world world;

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(repo_aware, .fini = teardown, .timeout = 240);

/* The content of a file of the tree (caller frees). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long n;

    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static char *todo_spec(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/examples/specs/todo-api.md", dmt_source_dir());
    return slurp(path);
}

/* Every line of base is in edited, in the same order. */
static void assert_keeps_lines(const char *base, const char *edited)
{
    const char *at = edited;
    char *copy = strdup(base);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        const char *hit = strstr(at, line);
        cr_assert_not_null(hit, "base line \"%s\" is missing or out of order in:\n%s", line,
                           edited);
        at = hit + strlen(line);
    }
    free(copy);
}

/* The first item of the plan whose path starts with prefix and ends with suffix, or NULL. */
static const cJSON *plan_item(const cJSON *plan, const char *prefix, const char *suffix)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(plan, "items"))
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(it, "path"));
        size_t n = p ? strlen(p) : 0;
        if (p && strncmp(p, prefix, strlen(prefix)) == 0 && n >= strlen(suffix) &&
            strcmp(p + n - strlen(suffix), suffix) == 0) {
            return it;
        }
    }
    return NULL;
}

static const char *kind_of(const cJSON *item)
{
    return item ? cJSON_GetStringValue(cJSON_GetObjectItem(item, "kind")) : NULL;
}

/* Starts the world on a fixture with an optional fake script, one replica, and the todo spec
 * as job id; waits until the job ends and returns its status (caller frees). rep receives the
 * replica (its log names where to look). */
static char *run_job(const char *fixture, const char *script, const char *id,
                     struct dmt_replica *rep)
{
    char *spec = todo_spec();
    char *job;

    dmt_world_start(&world, NULL);
    dmt_world_use_fixture(&world, fixture);
    if (script) {
        dmt_fakeor_script(&world.llm, script);
    }
    dmt_world_replica(&world, rep, id, NULL);
    job = dmt_world_job(id, spec, "builder", 400000, 5.0);
    free(dmt_submit(world.rc, job));
    free(job);
    free(spec);
    cr_assert(dmt_world_wait_status(&world, id, "complete,failed,dead_lettered", 180000),
              "%s ended", id);
    return dmt_world_hget(&world, id, "status");
}

/* run_job that must complete; returns the plan JSON (caller frees). */
static char *run_complete(const char *fixture, const char *script, const char *id)
{
    struct dmt_replica rep;
    char *status = run_job(fixture, script, id, &rep);

    cr_assert_str_eq(status, "complete", "error: %s (log %s)", dmt_world_hget(&world, id, "error"),
                     rep.log);
    free(status);
    return dmt_world_hget(&world, id, "plan");
}

Test(repo_aware, todo_api_on_the_hono_fixture_fits_the_repository_and_checks)
{
    char *plan_json, *entry, *base, *body, *verification, *barrel;
    cJSON *plan;
    const cJSON *mig;

    /* The fake writes an edit only when its prompt carries the file's current content. */
    plan_json = run_complete("hono",
                             "[{\"path\": \"src/index.ts\", \"behaviour\": \"ok\", \"require\": "
                             "\"app.route('/users', users)\", \"refuse\": \"broken\"}]",
                             "aware-hono");
    plan = cJSON_Parse(plan_json);
    cr_assert_not_null(plan, "%s", plan_json);

    /* One module for the three routes, the component in the repository's case, the migration
     * numbered after 0001_init.sql, and edits of the entry and the barrel. */
    cr_assert_str_eq(kind_of(plan_item(plan, "src/routes/todos.ts", "")), "route", "%s", plan_json);
    cr_assert_null(plan_item(plan, "src/routes/get-", ""), "no file per sentence: %s", plan_json);
    cr_assert_str_eq(kind_of(plan_item(plan, "src/components/TodoList.tsx", "")), "component");
    mig = plan_item(plan, "migrations/0002_", ".sql");
    cr_assert_str_eq(kind_of(mig), "migration", "%s", plan_json);
    cr_assert_str_eq(kind_of(plan_item(plan, "src/index.ts", "")), "edit", "%s", plan_json);
    cr_assert_str_eq(kind_of(plan_item(plan, "src/components/index.ts", "")), "edit");
    cr_assert_not_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(plan, "stack")), "Hono"),
                       "%s", plan_json);

    /* The branch's entry keeps every line of the base and mounts /todos. */
    entry = dmt_world_branch_file(&world, "dream/todo-api", "src/index.ts");
    base = dmt_fixture_file("hono", "src/index.ts");
    cr_assert_not_null(entry);
    assert_keeps_lines(base, entry);
    cr_assert_not_null(strstr(entry, "'/todos'"), "mounts /todos:\n%s", entry);
    barrel = dmt_world_branch_file(&world, "dream/todo-api", "src/components/index.ts");
    cr_assert_not_null(strstr(barrel, "TodoList"), "%s", barrel);
    cr_assert_eq(dmt_fakeor_stat(&world.llm, "refused"), 0,
                 "every edit prompt carried the file's current content");
    {
        /* ... and the rule was in force: the entry was answered as an edit of its content. */
        char *reqs = dmt_fakeor_http(&world.llm, "GET", "/_fake/requests", NULL);
        cr_assert_not_null(strstr(reqs, "\"reply_kind\": \"edit:entry\""), "the fake saw the edit");
        free(reqs);
    }

    /* The type-check and the migration replay passed on the change, and the PR says so. */
    verification = dmt_world_hget(&world, "aware-hono", "verification");
    cr_assert_not_null(verification);
    cr_assert_not_null(strstr(verification, "Type-check"), "%s", verification);
    cr_assert_not_null(strstr(verification, "passed"), "%s", verification);
    cr_assert_not_null(strstr(verification, "0001_init.sql"), "%s", verification);
    body = dmt_world_pr_body(&world, "dream/todo-api");
    cr_assert_not_null(body);
    cr_assert_not_null(strstr(body, "Hono"), "the stack: %s", body);
    cr_assert_not_null(strstr(body, "src/routes/todos.ts"), "%s", body);
    cr_assert_not_null(strstr(body, "(edited"), "edits are named: %s", body);
    cr_assert_not_null(strstr(body, "Type-check"), "the verification: %s", body);
    /* Every item of the spec is in the checklist, mapped to a file. */
    {
        static const char *const items[] = {
            "Users can create a todo with a title", "GET /todos lists the user's todos",
            "PATCH /todos/:id marks a todo as done",
            "TodoList shows the todos with a checkbox each",
            "todos table with id, user_id, title, done, created_at"};
        for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
            const char *at = strstr(body, items[i]);
            const char *eol;
            cr_assert_not_null(at, "checklist item %s: %s", items[i], body);
            eol = strchr(at, '\n');
            cr_assert_not_null(eol);
            cr_assert_not_null(memmem(at, (size_t)(eol - at), "`", 1),
                               "%s is mapped to a file: %.*s", items[i], (int)(eol - at), at);
        }
    }
    cJSON_Delete(plan);
    free(plan_json);
    free(entry);
    free(base);
    free(barrel);
    free(body);
    free(verification);
}

Test(repo_aware, the_same_spec_on_the_express_fixture_follows_express)
{
    char *plan_json = run_complete("express", NULL, "aware-express");
    cJSON *plan = cJSON_Parse(plan_json);
    char *reqs;

    cr_assert_not_null(plan, "%s", plan_json);
    cr_assert_not_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(plan, "stack")), "Express"),
                       "%s", plan_json);
    cr_assert_not_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(plan, "stack")), "Knex"),
                       "%s", plan_json);
    cr_assert_str_eq(kind_of(plan_item(plan, "src/routes/todos.js", "")), "route", "%s", plan_json);
    cr_assert_str_eq(kind_of(plan_item(plan, "migrations/", "_create_todos.js")), "migration",
                     "a Knex migration in the repository's timestamp scheme: %s", plan_json);
    cr_assert_null(plan_item(plan, "migrations/", ".sql"), "%s", plan_json);
    /* The prompts speak Express, not Hono. */
    reqs = dmt_fakeor_http(&world.llm, "GET", "/_fake/requests", NULL);
    cr_assert_not_null(strstr(reqs, "express.Router"), "the prompts name express.Router");
    cJSON_Delete(plan);
    free(reqs);
    free(plan_json);
}

/* An edit that drops the base's route registration is refused by the guard and repaired. */
Test(repo_aware, an_edit_that_drops_a_route_registration_is_refused)
{
    struct dmt_replica rep;
    char *status, *entry;

    status = run_job("hono",
                     "[{\"path\": \"src/index.ts\", \"behaviour\": \"drop-route\", \"times\": 1}]",
                     "aware-guard", &rep);
    cr_assert_str_eq(status, "complete", "error: %s (log %s)",
                     dmt_world_hget(&world, "aware-guard", "error"), rep.log);
    cr_assert_gt(dmt_count_in_file(rep.log, "drops route registrations"), 0,
                 "the guard refused the first edit (log %s)", rep.log);
    cr_assert_eq(dmt_fakeor_path_count(&world.llm, "src/index.ts"), 2, "one repair");
    entry = dmt_world_branch_file(&world, "dream/todo-api", "src/index.ts");
    cr_assert_not_null(strstr(entry, "app.route('/users', users)"), "kept:\n%s", entry);
    free(entry);
    free(status);
}

/* A route module without the export the entry imports: the type-check catches it, the model
 * gets the compiler's message back and repairs it. */
Test(repo_aware, a_module_missing_the_export_the_entry_imports_is_caught_and_repaired)
{
    struct dmt_replica rep;
    char *status, *route;

    status = run_job("hono",
                     "[{\"path\": \"src/routes/todos.ts\", \"behaviour\": \"ts-missing-export\", "
                     "\"times\": 1}]",
                     "aware-export", &rep);
    cr_assert_str_eq(status, "complete", "error: %s (log %s)",
                     dmt_world_hget(&world, "aware-export", "error"), rep.log);
    cr_assert_eq(dmt_fakeor_behaviour_count(&world.llm, "ts-missing-export"), 1);
    cr_assert_geq(dmt_fakeor_path_count(&world.llm, "src/routes/todos.ts"), 2,
                  "asked again with the compiler's message");
    route = dmt_world_branch_file(&world, "dream/todo-api", "src/routes/todos.ts");
    cr_assert_not_null(strstr(route, "export default"), "repaired:\n%s", route);
    free(route);
    free(status);
}

/* One that stays broken fails the job naming file:line and the compiler's message, and nothing
 * is pushed. */
Test(repo_aware, a_module_that_stays_broken_fails_the_job_and_pushes_nothing)
{
    struct dmt_replica rep;
    char *status, *err, *files;

    status = run_job("hono",
                     "[{\"path\": \"src/routes/todos.ts\", \"behaviour\": \"ts-missing-export\"}]",
                     "aware-broken", &rep);
    cr_assert_str_eq(status, "failed");
    err = dmt_world_hget(&world, "aware-broken", "error");
    cr_assert_not_null(strstr(err, "src/index.ts:"), "file:line of the importer: %s", err);
    cr_assert_not_null(strstr(err, ": TS"), "the compiler's message: %s", err);
    cr_assert_not_null(strstr(err, "nothing is pushed"), "%s", err);
    cr_assert_null(strstr(err, world.dir), "repository paths only, not dreamd's folders: %s", err);
    cr_assert_not_null(strstr(err, "'\"src/routes/todos\"'"),
                       "the module named as the repository "
                       "names it: %s",
                       err);
    files = dmt_world_branch_files(&world, "dream/todo-api");
    cr_assert_null(files, "no branch was pushed: %s", files ? files : "");
    free(err);
    free(status);
}
