/*
 * Unit tests for planner: the prompt (spec parts, the base branch's tree and its caps, the
 * policy's roots and file limit), the response_format, and the reply parser: a good plan keeps
 * dm_plan_build()'s spec item, branch and PR title; garbage is refused; "../", ".git/",
 * absolute and out-of-root paths, bad kinds and blank descriptions are dropped with notes (or
 * the whole plan refused when more than half is invalid); duplicates and files past the limit
 * are dropped; the plan survives the job hash's JSON round trip.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dream/core/buf.h"
#include "dream/domain/plan.h"
#include "dream/domain/planner.h"
#include "dream/domain/repo.h"
#include "dream/domain/safety.h"
#include "dream/domain/spec.h"

static void setup(void)
{
    struct dm_error err;
    cr_assert_eq(dm_safety_init(&err), 0, "%s", err.msg);
}

static void teardown(void)
{
    dm_safety_shutdown();
}

TestSuite(planner, .init = setup, .fini = teardown);

static const char spec_md[] = "# Todo API\n"
                              "\n"
                              "A small todo service.\n"
                              "\n"
                              "## Requirements\n"
                              "- Todos have a title\n"
                              "\n"
                              "## API\n"
                              "- GET /todos\n"
                              "  - paginated by 20\n"
                              "- POST /todos\n"
                              "\n"
                              "## Database\n"
                              "- todos table\n"
                              "\n"
                              "## UI\n"
                              "- Todo list\n";

static struct dm_spec *spec_of(const char *md)
{
    struct dm_spec *s = NULL;
    struct dm_error err;
    cr_assert_eq(dm_spec_parse(&s, md, strlen(md), NULL, &err), 0, "%s", err.msg);
    return s;
}

static int plan_reply(struct dm_plan **out, char **notes, const struct dm_spec *s,
                      const char *reply, const struct dm_planner_opts *o, struct dm_error *err)
{
    dm_error_clear(err);
    return dm_planner_parse(out, notes, reply, strlen(reply), s, o, err);
}

static const char good_reply[] =
    "{\"files\":["
    "{\"path\":\"src/routes/todos.ts\",\"kind\":\"route\",\"description\":\"GET and POST "
    "/todos,\\n paginated.\"},"
    "{\"path\":\"src/components/TodoList.tsx\",\"kind\":\"Component\",\"description\":\"The "
    "list.\"},"
    "{\"path\":\"migrations/0001_todos.sql\",\"kind\":\"migration\",\"description\":\"todos "
    "table\"},"
    "{\"path\":\"src/lib/todo.ts\",\"kind\":\"file\",\"description\":\"Shared types.\"}"
    "]}";

Test(planner, good_plan_keeps_spec_item_first)
{
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *rule = NULL;
    struct dm_plan *p = NULL;
    struct dm_plan *back = NULL;
    char *notes = (char *)1;
    char *json;
    struct dm_error err;

    cr_assert_eq(dm_plan_build(&rule, s, "feature/", NULL, &err), 0);
    struct dm_planner_opts o = DM_PLANNER_OPTS_INIT;
    o.branch_prefix = "feature/";
    cr_assert_eq(plan_reply(&p, &notes, s, good_reply, &o, &err), 0, "%s", err.msg);
    cr_expect_null(notes);
    cr_assert_eq(p->count, 5);
    cr_expect_str_eq(p->title, rule->title);
    cr_expect_str_eq(p->branch, "feature/todo-api");
    cr_expect_str_eq(p->branch, rule->branch);
    cr_expect_str_eq(p->pr_title, rule->pr_title);
    cr_expect_str_eq(p->items[0].path, rule->items[0].path);
    cr_expect_str_eq(p->items[0].path, "docs/dream-specs/todo-api.md");
    cr_expect_eq(p->items[0].kind, DM_PLAN_KIND_SPEC);
    cr_expect_str_eq(p->items[0].description, rule->items[0].description);

    cr_expect_str_eq(p->items[1].path, "src/routes/todos.ts");
    cr_expect_eq(p->items[1].kind, DM_PLAN_KIND_ROUTE);
    cr_expect_str_eq(p->items[1].description, "GET and POST /todos, paginated.");
    cr_expect_str_eq(p->items[2].path, "src/components/TodoList.tsx");
    cr_expect_eq(p->items[2].kind, DM_PLAN_KIND_COMPONENT);
    cr_expect_eq(p->items[3].kind, DM_PLAN_KIND_MIGRATION);
    cr_expect_str_eq(p->items[4].path, "src/lib/todo.ts");
    cr_expect_eq(p->items[4].kind, DM_PLAN_KIND_FILE);

    /* The plan is stored in the job hash as JSON and must load back. */
    json = dm_plan_to_json(p);
    cr_assert_not_null(json);
    cr_assert_eq(dm_plan_from_json(&back, json, &err), 0, "%s", err.msg);
    cr_expect_eq(back->count, 5);
    cr_expect_str_eq(back->items[4].path, "src/lib/todo.ts");
    free(json);
    dm_plan_free(back);
    dm_plan_free(p);
    dm_plan_free(rule);
    dm_spec_free(s);
}

Test(planner, fenced_reply_and_null_notes)
{
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    struct dm_error err;
    char reply[2048];

    snprintf(reply, sizeof(reply), "```json\n%s\n```\n", good_reply);
    cr_assert_eq(plan_reply(&p, NULL, s, reply, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(p->count, 5);
    cr_expect_str_eq(p->branch, "dream/todo-api"); /* the default prefix */
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(planner, refuses_garbage)
{
    static const struct {
        const char *reply;
        const char *msg;
    } rows[] = {
        {"", "empty"},
        {"Here are the files: src/routes/todos.ts", "not a JSON object"},
        {"Sure!\n{\"files\":[{\"path\":\"src/a.ts\",\"kind\":\"file\",\"description\":\"d\"}]}",
         "not a JSON object"},
        {"{\"files\":[{\"path\":\"src/a.ts\",\"kind\":\"file\",\"description\":\"d\"}]} ok",
         "text after"},
        {"{\"files\":[{\"path\":\"src/a.ts\",\"kind\":\"fi", "truncated"},
        {"```json\n{\"files\":[]}", "fence"},
        {"[{\"path\":\"src/a.ts\",\"kind\":\"file\",\"description\":\"d\"}]", "not a JSON object"},
        {"{}", "\"files\" must be an array"},
        {"{\"files\":{\"path\":\"src/a.ts\"}}", "\"files\" must be an array"},
        {"{\"files\":[]}", "no file proposed"},
        {"{\"files\":[1,2,3]}", "invalid"},
        {"{\"files\":[{\"path\":\"src/a.ts\",\"kind\":\"spec\",\"description\":\"d\"}]}",
         "invalid"},
    };
    struct dm_spec *s = spec_of(spec_md);

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct dm_plan *p = (struct dm_plan *)1;
        char *notes = (char *)1;
        struct dm_error err;
        cr_expect_eq(plan_reply(&p, &notes, s, rows[i].reply, NULL, &err), DM_ERR_INVALID,
                     "row %zu", i);
        cr_expect_null(p, "row %zu", i);
        cr_expect_null(notes, "row %zu", i);
        cr_expect(strstr(err.msg, rows[i].msg) != NULL, "row %zu: %s", i, err.msg);
        cr_expect(strncmp(err.msg, "planner reply", 13) == 0, "row %zu: %s", i, err.msg);
    }
    dm_spec_free(s);
}

/* Four unsafe paths among five good ones: the unsafe ones are dropped and named in the notes. */
Test(planner, drops_unsafe_paths)
{
    static const char reply[] =
        "{\"files\":["
        "{\"path\":\"../etc/passwd\",\"kind\":\"file\",\"description\":\"escape\"},"
        "{\"path\":\"src/routes/a.ts\",\"kind\":\"route\",\"description\":\"a\"},"
        "{\"path\":\".git/hooks/pre-commit\",\"kind\":\"file\",\"description\":\"hook\"},"
        "{\"path\":\"src/routes/b.ts\",\"kind\":\"route\",\"description\":\"b\"},"
        "{\"path\":\"/etc/cron.d/x\",\"kind\":\"file\",\"description\":\"abs\"},"
        "{\"path\":\"src/c.ts\",\"kind\":\"file\",\"description\":\"c\"},"
        "{\"path\":\"src/../../x.ts\",\"kind\":\"file\",\"description\":\"dots\"},"
        "{\"path\":\"src/d.ts\",\"kind\":\"file\",\"description\":\"d\"},"
        "{\"path\":\"migrations/e.sql\",\"kind\":\"migration\",\"description\":\"e\"}"
        "]}";
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    char *notes = NULL;
    struct dm_error err;

    cr_assert_eq(plan_reply(&p, &notes, s, reply, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(p->count, 6);
    cr_expect_str_eq(p->items[1].path, "src/routes/a.ts");
    cr_expect_str_eq(p->items[2].path, "src/routes/b.ts");
    cr_expect_str_eq(p->items[3].path, "src/c.ts");
    cr_expect_str_eq(p->items[4].path, "src/d.ts");
    cr_expect_str_eq(p->items[5].path, "migrations/e.sql");
    for (size_t i = 0; i < p->count; i++) {
        struct dm_error e;
        cr_expect_eq(dm_safety_check_path(p->items[i].path, NULL, 0, &e), 0, "%s", e.msg);
    }
    cr_assert_not_null(notes);
    cr_expect(strncmp(notes, "dropped 4 of 9 proposed files: ", 31) == 0, "%s", notes);
    cr_expect(strstr(notes, "files[0] \"../etc/passwd\"") != NULL, "%s", notes);
    cr_expect(strstr(notes, "files[2] \".git/hooks/pre-commit\"") != NULL, "%s", notes);
    cr_expect(strstr(notes, "files[4] \"/etc/cron.d/x\"") != NULL, "%s", notes);
    cr_expect(strstr(notes, "files[6] \"src/../../x.ts\"") != NULL, "%s", notes);
    free(notes);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(planner, more_than_half_invalid_refuses_plan)
{
    static const char reply[] =
        "{\"files\":["
        "{\"path\":\"../a.ts\",\"kind\":\"file\",\"description\":\"a\"},"
        "{\"path\":\"src/b.ts\",\"kind\":\"file\",\"description\":\"b\"},"
        "{\"path\":\"lib/c.ts\",\"kind\":\"file\",\"description\":\"outside the roots\"}"
        "]}";
    static const char half[] = "{\"files\":["
                               "{\"path\":\"../a.ts\",\"kind\":\"file\",\"description\":\"a\"},"
                               "{\"path\":\"src/b.ts\",\"kind\":\"file\",\"description\":\"b\"}"
                               "]}";
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    char *notes = NULL;
    struct dm_error err;

    cr_expect_eq(plan_reply(&p, &notes, s, reply, NULL, &err), DM_ERR_INVALID);
    cr_expect_null(p);
    cr_expect_null(notes);
    cr_expect(strstr(err.msg, "2 of 3 proposed files are invalid") != NULL, "%s", err.msg);
    /* Exactly half: the invalid one is dropped, the plan stands. */
    cr_assert_eq(plan_reply(&p, &notes, s, half, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(p->count, 2);
    cr_expect_str_eq(p->items[1].path, "src/b.ts");
    cr_assert_not_null(notes);
    free(notes);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(planner, kinds_and_descriptions_checked)
{
    static const char reply[] =
        "{\"files\":["
        "{\"path\":\"src/a.ts\",\"kind\":\"service\",\"description\":\"unknown kind\"},"
        "{\"path\":\"migrations/b.ts\",\"kind\":\"migration\",\"description\":\"not sql\"},"
        "{\"path\":\"src/c.ts\",\"kind\":\"file\",\"description\":\" \\n\\t \"},"
        "{\"path\":\"src/d.ts\",\"kind\":\"FILE\",\"description\":\"d\"},"
        "{\"path\":\"src/e.ts\",\"kind\":\"route\",\"description\":\"e\"},"
        "{\"path\":\"src/f.ts\",\"kind\":\"file\",\"description\":\"f\"},"
        "{\"path\":\"src/g.ts\",\"kind\":7,\"description\":\"g\"},"
        "{\"path\":\"src/h.ts\",\"kind\":\"file\",\"description\":\"h\"}"
        "]}";
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    char *notes = NULL;
    struct dm_error err;

    cr_assert_eq(plan_reply(&p, &notes, s, reply, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(p->count, 5);
    cr_expect_str_eq(p->items[1].path, "src/d.ts");
    cr_expect_eq(p->items[1].kind, DM_PLAN_KIND_FILE);
    cr_expect_eq(p->items[2].kind, DM_PLAN_KIND_ROUTE);
    cr_assert_not_null(notes);
    cr_expect(strstr(notes, "files[0] \"src/a.ts\": kind must be") != NULL, "%s", notes);
    cr_expect(strstr(notes, "files[1] \"migrations/b.ts\": a migration's path must end in .sql"),
              "%s", notes);
    cr_expect(strstr(notes, "files[2] \"src/c.ts\": empty description") != NULL, "%s", notes);
    cr_expect(strstr(notes, "files[6]: not an object") != NULL, "%s", notes);
    free(notes);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(planner, duplicates_spec_path_and_limit)
{
    static const char reply[] =
        "{\"files\":["
        "{\"path\":\"src/a.ts\",\"kind\":\"file\",\"description\":\"first\"},"
        "{\"path\":\"docs/dream-specs/todo-api.md\",\"kind\":\"file\",\"description\":\"spec\"},"
        "{\"path\":\"src/a.ts\",\"kind\":\"file\",\"description\":\"second\"},"
        "{\"path\":\"src/b.ts\",\"kind\":\"file\",\"description\":\"b\"},"
        "{\"path\":\"src/c.ts\",\"kind\":\"file\",\"description\":\"c\"}"
        "]}";
    struct dm_safety_policy pol = DM_SAFETY_POLICY_INIT;
    struct dm_planner_opts o = DM_PLANNER_OPTS_INIT;
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    char *notes = NULL;
    struct dm_error err;

    cr_assert_eq(plan_reply(&p, &notes, s, reply, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(p->count, 4);
    cr_expect_eq(p->items[0].kind, DM_PLAN_KIND_SPEC);
    cr_expect_str_eq(p->items[1].description, "first");
    cr_expect_str_eq(p->items[2].path, "src/b.ts");
    cr_expect(strstr(notes, "files[1] \"docs/dream-specs/todo-api.md\": the spec document") != NULL,
              "%s", notes);
    cr_expect(strstr(notes, "files[2] \"src/a.ts\": duplicate path") != NULL, "%s", notes);
    free(notes);
    dm_plan_free(p);

    /* max_files 3 counts the spec document: two proposed files fit. */
    pol.max_files = 3;
    o.policy = &pol;
    cr_assert_eq(plan_reply(&p, &notes, s, reply, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(p->count, 3);
    cr_expect_str_eq(p->items[2].path, "src/b.ts");
    cr_expect(strstr(notes, "files[4] \"src/c.ts\": over the file limit") != NULL, "%s", notes);
    free(notes);
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(planner, policy_roots_and_workflows)
{
    static const char reply[] =
        "{\"files\":["
        "{\"path\":\"lib/a.ts\",\"kind\":\"file\",\"description\":\"a\"},"
        "{\"path\":\".github/workflows/ci.yml\",\"kind\":\"file\",\"description\":\"ci\"}"
        "]}";
    const char *const roots[] = {"lib/"};
    struct dm_safety_policy pol = DM_SAFETY_POLICY_INIT;
    struct dm_planner_opts o = DM_PLANNER_OPTS_INIT;
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    struct dm_error err;

    /* Default roots: neither path is allowed. */
    cr_expect_eq(plan_reply(&p, NULL, s, reply, NULL, &err), DM_ERR_INVALID);
    pol.roots = roots;
    pol.n_roots = 1;
    o.policy = &pol;
    o.allow_workflows = 1;
    cr_assert_eq(plan_reply(&p, NULL, s, reply, &o, &err), 0, "%s", err.msg);
    cr_expect_eq(p->count, 3);
    cr_expect_str_eq(p->items[2].path, ".github/workflows/ci.yml");
    dm_plan_free(p);
    dm_spec_free(s);
}

Test(planner, long_description_cut)
{
    struct dm_buf b;
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    struct dm_error err;

    dm_buf_init(&b, 0);
    cr_assert_eq(dm_buf_puts(&b, "{\"files\":[{\"path\":\"src/a.ts\",\"kind\":\"file\","
                                 "\"description\":\""),
                 0);
    for (int i = 0; i < 1500; i++) {
        cr_assert_eq(dm_buf_puts(&b, "\xc3\xa9"), 0);
    }
    cr_assert_eq(dm_buf_puts(&b, "\"}]}"), 0);
    cr_assert_eq(dm_planner_parse(&p, NULL, b.data, b.len, s, NULL, &err), 0, "%s", err.msg);
    cr_expect_leq(strlen(p->items[1].description), DM_PLANNER_DESC_MAX);
    cr_expect_gt(strlen(p->items[1].description), DM_PLANNER_DESC_MAX - 8);
    cr_expect_eq(dm_spec_utf8_check(p->items[1].description, strlen(p->items[1].description), NULL),
                 0);
    dm_plan_free(p);
    dm_buf_free(&b);
    dm_spec_free(s);
}

/* ---- the request ------------------------------------------------------------------------- */

Test(planner, response_format_shape)
{
    cJSON *rf = cJSON_Parse(dm_planner_response_format());
    const cJSON *schema;
    const cJSON *items;
    const cJSON *en;

    cr_assert_not_null(rf);
    cr_expect_str_eq(cJSON_GetObjectItem(rf, "type")->valuestring, "json_schema");
    cr_expect_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(rf, "json_schema"), "name")->valuestring, "plan");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(rf, "json_schema"), "strict")));
    schema = cJSON_GetObjectItem(cJSON_GetObjectItem(rf, "json_schema"), "schema");
    items = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(schema, "properties"), "files"), "items");
    cr_assert_not_null(items);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(items, "required")), 6);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(items, "additionalProperties")));
    en = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(items, "properties"), "kind"),
                             "enum");
    cr_assert_eq(cJSON_GetArraySize(en), 6);
    cr_expect_str_eq(cJSON_GetArrayItem(en, 0)->valuestring, "route");
    cr_expect_str_eq(cJSON_GetArrayItem(en, 3)->valuestring, "file");
    cr_expect_str_eq(cJSON_GetArrayItem(en, 4)->valuestring, "test");
    cr_expect_str_eq(cJSON_GetArrayItem(en, 5)->valuestring, "edit");
    cJSON_Delete(rf);
}

Test(planner, prompt_contents)
{
    const char *const tree[] = {"package.json", "src/index.ts", "bad\nname.ts", "src/routes/x.ts"};
    struct dm_spec *s = spec_of(spec_md);
    struct dm_planner_prompt *p = NULL;
    struct dm_safety_policy pol = DM_SAFETY_POLICY_INIT;
    struct dm_planner_opts o = DM_PLANNER_OPTS_INIT;
    struct dm_error err;

    cr_assert_eq(dm_planner_prompt_build(&p, s, tree, 4, NULL, &err), 0, "%s", err.msg);
    cr_expect(strstr(p->system, "src/, migrations/, docs/, tests/, test/, public/") != NULL, "%s",
              p->system);
    cr_expect(strstr(p->system, "At most 49 files") != NULL, "%s", p->system);
    cr_expect(strstr(p->system, ".github/workflows/") == NULL);
    cr_expect_str_eq(p->user, "Spec: Todo API\n"
                              "\n"
                              "Overview:\n"
                              "A small todo service.\n"
                              "\n"
                              "Requirements:\n"
                              "- Todos have a title\n"
                              "\n"
                              "API routes:\n"
                              "- GET /todos\n"
                              "  - paginated by 20\n"
                              "- POST /todos\n"
                              "\n"
                              "Database changes:\n"
                              "- todos table\n"
                              "\n"
                              "UI components:\n"
                              "- Todo list\n"
                              "\n"
                              "Repository files on the base branch (4):\n"
                              "package.json\n"
                              "src/index.ts\n"
                              "src/routes/x.ts\n"
                              "\n"
                              "Propose the files of this change as JSON.\n");
    cr_expect_eq(p->tree_listed, 3);
    cr_expect_eq(p->tree_skipped, 1);
    dm_planner_prompt_free(p);

    pol.max_files = 10;
    o.policy = &pol;
    o.allow_workflows = 1;
    cr_assert_eq(dm_planner_prompt_build(&p, s, NULL, 0, &o, &err), 0, "%s", err.msg);
    cr_expect(strstr(p->system, "At most 9 files") != NULL);
    cr_expect(strstr(p->system, ", .github/workflows/") != NULL);
    cr_expect(strstr(p->user, "\nRepository files on the base branch: none (empty "
                              "repository).\n") != NULL);
    dm_planner_prompt_free(p);
    dm_spec_free(s);
}

Test(planner, prompt_tree_caps)
{
    enum { N = 3000 };
    char(*paths)[32] = calloc(N, sizeof(*paths));
    const char **tree = calloc(N, sizeof(*tree));
    char *longp = malloc(1001);
    const char *longs[100];
    struct dm_spec *s = spec_of(spec_md);
    struct dm_planner_prompt *p = NULL;
    struct dm_error err;

    cr_assert(paths && tree && longp);
    for (size_t i = 0; i < N; i++) {
        snprintf(paths[i], sizeof(paths[i]), "src/f%04zu.ts", i);
        tree[i] = paths[i];
    }
    cr_assert_eq(dm_planner_prompt_build(&p, s, tree, N, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(p->tree_listed, DM_PLANNER_TREE_PATHS);
    cr_expect_eq(p->tree_skipped, N - DM_PLANNER_TREE_PATHS);
    cr_expect(strstr(p->user, "\nsrc/f1999.ts\n\xe2\x80\xa6 and 1000 more\n") != NULL);
    cr_expect(strstr(p->user, "src/f2000.ts") == NULL);
    dm_planner_prompt_free(p);

    /* 100 paths of 1000 bytes: the byte cap (64 KiB) stops the list. */
    memset(longp, 'a', 1000);
    memcpy(longp, "src/", 4);
    longp[1000] = '\0';
    for (size_t i = 0; i < 100; i++) {
        longs[i] = longp;
    }
    cr_assert_eq(dm_planner_prompt_build(&p, s, longs, 100, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(p->tree_listed, DM_PLANNER_TREE_BYTES / 1001);
    cr_expect_lt(strlen(p->user), DM_PLANNER_TREE_BYTES + 4096);
    dm_planner_prompt_free(p);

    cr_expect_eq(dm_planner_prompt_build(&p, NULL, NULL, 0, NULL, &err), DM_ERR_INVALID);
    cr_expect_null(p);
    free(paths);
    free(tree);
    free(longp);
    dm_spec_free(s);
}

/* ---- the base of the change ------------------------------------------------------------- */

static struct dm_repo *fixture_repo(void)
{
    static const char *const tree[] = {"package.json", "src/index.ts", "src/routes/users.ts",
                                       "src/components/index.ts", "migrations/0001_init.sql"};
    struct dm_repo *r = calloc(1, sizeof(*r));

    r->n_tree = sizeof(tree) / sizeof(tree[0]);
    r->tree = calloc(r->n_tree, sizeof(*r->tree));
    for (size_t i = 0; i < r->n_tree; i++) {
        r->tree[i].path = strdup(tree[i]);
    }
    r->stack.http = DM_REPO_HTTP_HONO;
    r->stack.ui = DM_REPO_UI_REACT;
    r->stack.db = DM_REPO_DB_SQL;
    r->stack.test = DM_REPO_TEST_VITEST;
    r->stack.typescript = 1;
    r->stack.entry = strdup("src/index.ts");
    r->stack.barrel = strdup("src/components/index.ts");
    r->stack.routes_dir = strdup("src/routes/");
    r->stack.components_dir = strdup("src/components/");
    r->stack.migrations_dir = strdup("migrations/");
    r->stack.migration_width = 4;
    r->stack.last_migration = 1;
    return r;
}

Test(planner, prompt_carries_the_stack_conventions_and_rules_plan)
{
    struct dm_spec *s = spec_of(spec_md);
    struct dm_repo *r = fixture_repo();
    struct dm_planner_prompt *p = NULL;
    struct dm_planner_opts o = DM_PLANNER_OPTS_INIT;
    struct dm_error err;

    o.repo = r;
    cr_assert_eq(dm_planner_prompt_build(&p, s, NULL, 0, &o, &err), 0, "%s", err.msg);
    cr_expect(strstr(p->system, "- edit: an existing file of the repository") != NULL, "%s",
              p->system);
    cr_expect(strstr(p->user,
                     "\nRepository files on the base branch (5):\npackage.json\nsrc/index.ts\n"
                     "src/routes/users.ts\nsrc/components/index.ts\nmigrations/0001_init.sql\n"
                     "\nDetected stack: Hono + React + SQL migrations (TypeScript, Vitest)\n"
                     "\nConventions of this repository:\n"
                     "- routes: src/routes/\n"
                     "- components: src/components/ (PascalCase file names)\n"
                     "- migrations: migrations/ (numbered, 4 digits; the highest is 1)\n"
                     "- tests: next to the module they test\n"
                     "- entry (mounts the route modules): src/index.ts\n"
                     "- components' index (re-exports them): src/components/index.ts\n"
                     "\nA plan in these conventions (follow it unless the spec needs "
                     "otherwise):\n"
                     "- route src/routes/todos.ts: exports default: a Hono app with GET /todos, "
                     "POST /todos; mounted at /todos by src/index.ts\n"
                     "- component src/components/Todo.tsx: exports named export Todo "
                     "(React component); re-exported by src/components/index.ts\n"
                     "- migration migrations/0002_create_todos.sql; applied in order after the "
                     "existing migrations\n"
                     "- test src/routes/todos.test.ts; run by Vitest\n"
                     "- edit src/index.ts; the app's entry: every existing export and route "
                     "registration stays\n"
                     "- edit src/components/index.ts; the components' index: every existing "
                     "export stays\n"
                     "\nPropose the files of this change as JSON.\n") != NULL,
              "%s", p->user);
    dm_planner_prompt_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

Test(planner, edits_only_of_existing_files_and_the_contract)
{
    struct dm_spec *s = spec_of(spec_md);
    struct dm_repo *r = fixture_repo();
    struct dm_planner_opts o = DM_PLANNER_OPTS_INIT;
    struct dm_plan *p = NULL;
    struct dm_plan *q = NULL;
    struct dm_error err;
    char *notes = NULL;
    char *json;
    const char *reply =
        "{\"files\":["
        "{\"path\":\"src/routes/todos.ts\",\"kind\":\"route\",\"description\":\"todos\","
        "\"exports\":\"default: a Hono app\\nwith GET /todos\",\"usage\":\"mounted at /todos\","
        "\"covers\":[\"GET /todos\",\"POST /todos\",\"made up\",3,\"GET /todos\"]},"
        "{\"path\":\"src/index.ts\",\"kind\":\"edit\",\"description\":\"mount todos\","
        "\"exports\":\"\",\"usage\":7,\"covers\":\"x\"},"
        "{\"path\":\"src/app.ts\",\"kind\":\"edit\",\"description\":\"not there\"},"
        "{\"path\":\"src/routes/users.ts\",\"kind\":\"route\",\"description\":\"users\"},"
        "{\"path\":\"src/routes/todos.test.ts\",\"kind\":\"test\",\"description\":\"tests\"}"
        "]}";

    o.repo = r;
    cr_assert_eq(plan_reply(&p, &notes, s, reply, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(p->count, 5);
    cr_expect_str_eq(p->stack, "Hono + React + SQL migrations (TypeScript, Vitest)");
    cr_expect_str_eq(p->items[1].exports, "default: a Hono app with GET /todos");
    cr_expect_str_eq(p->items[1].usage, "mounted at /todos");
    /* The model's covers that are spec items, once each; then the requirement (dm_plan_cover). */
    cr_assert_eq(p->items[1].n_covers, 3);
    cr_expect_str_eq(p->items[1].covers[0], "GET /todos");
    cr_expect_str_eq(p->items[1].covers[1], "POST /todos");
    cr_expect_str_eq(p->items[1].covers[2], "Todos have a title");
    cr_expect_eq(p->items[2].kind, DM_PLAN_KIND_EDIT);
    cr_expect_null(p->items[2].exports);
    cr_expect_null(p->items[2].usage);
    for (size_t k = 0; k < p->items[2].n_covers; k++) {
        cr_expect_str_neq(p->items[2].covers[k], "x");
    }
    /* An existing file proposed as a route is an edit of it. */
    cr_expect_str_eq(p->items[3].path, "src/routes/users.ts");
    cr_expect_eq(p->items[3].kind, DM_PLAN_KIND_EDIT);
    cr_expect_eq(p->items[4].kind, DM_PLAN_KIND_TEST);
    cr_assert_not_null(notes);
    cr_expect(strstr(notes, "files[2] \"src/app.ts\": an edit of a file the base does not have"),
              "%s", notes);
    /* The job hash's round trip keeps the contract. */
    json = dm_plan_to_json(p);
    cr_assert_eq(dm_plan_from_json(&q, json, &err), 0, "%s", err.msg);
    cr_expect_str_eq(q->items[1].exports, p->items[1].exports);
    cr_expect_eq(q->items[1].n_covers, 3);
    free(json);
    free(notes);
    dm_plan_free(q);
    dm_plan_free(p);

    /* Without a known base, no edit is trusted. */
    o.repo = NULL;
    cr_assert_eq(plan_reply(&p, &notes, s,
                            "{\"files\":[{\"path\":\"src/index.ts\",\"kind\":\"edit\","
                            "\"description\":\"mount\"},{\"path\":\"src/routes/todos.ts\","
                            "\"kind\":\"route\",\"description\":\"todos\"}]}",
                            &o, &err),
                 0, "%s", err.msg);
    cr_expect_eq(p->count, 2);
    cr_expect_null(p->stack);
    cr_expect(strstr(notes, "an edit, but the base is not known"), "%s", notes);
    free(notes);
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

Test(planner, knex_migrations_may_be_scripts)
{
    struct dm_spec *s = spec_of(spec_md);
    struct dm_repo *r = fixture_repo();
    struct dm_planner_opts o = DM_PLANNER_OPTS_INIT;
    struct dm_plan *p = NULL;
    struct dm_error err;
    char *notes = NULL;
    const char *reply = "{\"files\":[{\"path\":\"migrations/20240102_todos.js\",\"kind\":"
                        "\"migration\",\"description\":\"todos\"},{\"path\":\"src/a.ts\","
                        "\"kind\":\"file\",\"description\":\"a\"}]}";

    o.repo = r;
    cr_assert_eq(plan_reply(&p, &notes, s, reply, &o, &err), 0, "%s", err.msg);
    cr_expect_eq(p->count, 2, "SQL repository: %s", notes ? notes : "");
    cr_expect(strstr(notes, "a migration's path must end in .sql"), "%s", notes);
    free(notes);
    dm_plan_free(p);
    r->stack.db = DM_REPO_DB_KNEX;
    cr_assert_eq(plan_reply(&p, &notes, s, reply, &o, &err), 0, "%s", err.msg);
    cr_expect_eq(p->count, 3);
    cr_expect_null(notes);
    dm_plan_free(p);
    dm_repo_free(r);
    dm_spec_free(s);
}

/* A model plan without covers still maps every spec item to a file: by kind and shared words. */
Test(planner, every_spec_item_is_covered_after_parsing)
{
    struct dm_spec *s = spec_of(spec_md);
    struct dm_plan *p = NULL;
    struct dm_error err;
    char *notes = NULL;
    const char *reply =
        "{\"files\":["
        "{\"path\":\"src/routes/todos.ts\",\"kind\":\"route\",\"description\":\"todo routes\"},"
        "{\"path\":\"src/components/TodoList.tsx\",\"kind\":\"component\",\"description\":\"the "
        "list\"},"
        "{\"path\":\"migrations/0001_todos.sql\",\"kind\":\"migration\",\"description\":\"the "
        "table\"}]}";

    cr_assert_eq(plan_reply(&p, &notes, s, reply, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(p->count, 4);
    /* API items to the route module, the UI item to the component, the database item to the
     * migration; the requirement shares "todo" with the route module only. */
    cr_assert_eq(p->items[1].n_covers, 3);
    cr_expect_str_eq(p->items[1].covers[0], "GET /todos");
    cr_expect_str_eq(p->items[1].covers[1], "POST /todos");
    cr_expect_str_eq(p->items[1].covers[2], "Todos have a title");
    cr_assert_eq(p->items[2].n_covers, 1);
    cr_expect_str_eq(p->items[2].covers[0], "Todo list");
    cr_assert_eq(p->items[3].n_covers, 1);
    cr_expect_str_eq(p->items[3].covers[0], "todos table");
    cr_expect_eq(p->items[0].n_covers, 0);
    dm_plan_free(p);
    dm_spec_free(s);
}
