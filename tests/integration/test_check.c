/*
 * The whole-change check in the review stage, end to end (issue 13, point 6): a real base
 * repository (strict tsconfig, a Hono entry and route, a first migration) on the git remote,
 * the fake OpenRouter scripted to answer with a type error or a conflicting migration. A change
 * that breaks the type-check is sent back with the compiler's messages and repaired; one that
 * stays broken fails the job naming file:line and the compiler's message, and nothing is
 * pushed; a migration that creates an existing table is caught the same way. The verification
 * summary is recorded in the job hash.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dme2e.h"
#include "githttp.h"

#include <cjson/cJSON.h>

static struct dmt_world world;

/* Adds the Hono + SQL base to the world's repository (one more commit on main). */
static void add_base(void)
{
    char *tmp = dmt_tempdir("check-base");
    free(dmt_sh("git clone -q '%s' '%s/w' && cd '%s/w' && mkdir -p src/routes migrations && "
                "printf '%%s\\n' '{\"compilerOptions\": {\"target\": \"ES2022\", \"module\": "
                "\"ESNext\", \"moduleResolution\": \"Bundler\", \"strict\": true, \"jsx\": "
                "\"react-jsx\"}}' > tsconfig.json && "
                "printf '%%s\\n' \"import { Hono } from 'hono';\" \"import users from "
                "'./routes/users';\" '' 'const app = new Hono();' \"app.route('/users', users);\" "
                "'' 'export default app;' > src/index.ts && "
                "printf '%%s\\n' \"import { Hono } from 'hono';\" 'const users = new Hono();' "
                "\"users.get('/', (c) => c.json([]));\" 'export default users;' > "
                "src/routes/users.ts && "
                "printf '%%s\\n' 'CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);' > "
                "migrations/0001_init.sql && "
                "git add -A && git -c user.name=t -c user.email=t@e commit -qm base && "
                "git push -q origin HEAD:main",
                world.bare, tmp, tmp));
    dmt_rmtree(tmp);
    free(tmp);
}

static void setup(void)
{
    dmt_world_start(&world, NULL);
    add_base();
}

static void teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(check, .init = setup, .fini = teardown, .timeout = 240);

static const char *BROKEN_ROUTE = "import { Hono } from 'hono';\n"
                                  "const app = new Hono();\n"
                                  "const count: number = 'many';\n"
                                  "app.get('/todos', (c) => c.json({ count }));\n"
                                  "export default app;\n";

static void script_reply(const char *match, const char *content, int times)
{
    cJSON *rules = cJSON_CreateArray();
    cJSON *r = cJSON_CreateObject();
    char *body;
    cJSON_AddStringToObject(r, "match", match);
    cJSON_AddStringToObject(r, "behaviour", "reply");
    cJSON_AddStringToObject(r, "content", content);
    cJSON_AddNumberToObject(r, "times", times);
    cJSON_AddItemToArray(rules, r);
    body = cJSON_PrintUnformatted(rules);
    dmt_fakeor_script(&world.llm, body);
    free(body);
    cJSON_Delete(rules);
}

static void run(const char *id, const char *spec, struct dmt_replica *rep)
{
    char *job = dmt_world_job(id, spec, NULL, 400000, 20.0);
    dmt_world_replica(&world, rep, "check", NULL);
    free(dmt_submit(world.rc, job));
    free(job);
    cr_assert(dmt_world_wait_status(&world, id, "complete,failed,paused_approval", 120000));
}

static int count_messages(const char *id, const char *needle)
{
    cJSON *events = dmt_world_events(&world, id);
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, events)
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        n += cJSON_IsString(m) && strstr(m->valuestring, needle) != NULL;
    }
    cJSON_Delete(events);
    return n;
}

static void assert_nothing_pushed(const char *id)
{
    char *refs = dmt_world_refs(&world);
    cr_assert_str_eq(refs, "refs/heads/main", "job %s pushed a branch: %s", id, refs);
    cr_assert_eq(dmt_world_pr_count(&world), 0, "job %s opened a pull request", id);
    free(refs);
}

static const char *ROUTE_SPEC = "# Todo API\n\nTodos over HTTP.\n\n## API\n- GET /todos lists "
                                "the todos\n";

Test(check, a_type_error_is_repaired_with_the_compilers_message)
{
    struct dmt_replica rep;
    char *status, *verification;

    script_reply("Target path: `src/routes/", BROKEN_ROUTE, 1);
    run("ck-fix", ROUTE_SPEC, &rep);
    status = dmt_world_hget(&world, "ck-fix", "status");
    cr_assert_str_eq(status, "complete", "%s", dmt_world_hget(&world, "ck-fix", "error"));
    cr_assert_eq(count_messages("ck-fix", "after the check"), 1, "one repair round");
    {
        char *reqs = dmt_fakeor_http(&world.llm, "GET", "/_fake/requests", NULL);
        cr_assert_not_null(strstr(reqs, "TS2322"), "the compiler's message went to the model");
        free(reqs);
    }
    verification = dmt_world_hget(&world, "ck-fix", "verification");
    cr_assert_not_null(verification);
    cr_assert_not_null(strstr(verification, "Type-check (tsc 7.0.2): passed after repair"), "%s",
                       verification);
    free(status);
    free(verification);
}

Test(check, a_change_that_stays_broken_fails_naming_file_and_line_and_pushes_nothing)
{
    struct dmt_replica rep;
    char *status, *err;

    script_reply("Target path: `src/routes/", BROKEN_ROUTE, 100);
    run("ck-bad", ROUTE_SPEC, &rep);
    status = dmt_world_hget(&world, "ck-bad", "status");
    cr_assert_str_eq(status, "failed");
    err = dmt_world_hget(&world, "ck-bad", "error");
    cr_assert_not_null(strstr(err, "src/routes/"), "%s", err);
    cr_assert_not_null(strstr(err, ".ts:3: TS2322: Type 'string' is not assignable to type "
                                   "'number'."),
                       "%s", err);
    cr_assert_not_null(strstr(err, "nothing is pushed"), "%s", err);
    cr_assert_eq(count_messages("ck-bad", "after the check"), 2, "DREAM_MAX_REPAIRS rounds");
    assert_nothing_pushed("ck-bad");
    free(status);
    free(err);
}

Test(check, a_migration_creating_an_existing_table_is_caught)
{
    struct dmt_replica rep;
    char *status, *err;

    script_reply("Target path: `migrations/", "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
                 100);
    run("ck-sql", "# Users\n\nStore users.\n\n## Database\n- users table\n", &rep);
    status = dmt_world_hget(&world, "ck-sql", "status");
    cr_assert_str_eq(status, "failed");
    err = dmt_world_hget(&world, "ck-sql", "error");
    cr_assert_not_null(strstr(err, "migrations/"), "%s", err);
    cr_assert_not_null(strstr(err, ".sql:1: table users already exists"), "%s", err);
    assert_nothing_pushed("ck-sql");
    free(status);
    free(err);
}

Test(check, an_alter_of_a_table_the_base_created_passes)
{
    struct dmt_replica rep;
    char *status, *verification;

    script_reply("Target path: `migrations/", "ALTER TABLE users ADD COLUMN name TEXT;\n", 100);
    run("ck-alter", "# Users\n\nName users.\n\n## Database\n- users name column\n", &rep);
    status = dmt_world_hget(&world, "ck-alter", "status");
    cr_assert_str_eq(status, "complete", "%s", dmt_world_hget(&world, "ck-alter", "error"));
    verification = dmt_world_hget(&world, "ck-alter", "verification");
    cr_assert_not_null(verification);
    cr_assert_not_null(strstr(verification, "- Migrations: 0001_init.sql, "), "%s", verification);
    cr_assert_not_null(strstr(verification, " applied"), "%s", verification);
    free(status);
    free(verification);
}
