/*
 * Unit tests for prompt: messages per file kind (exact layout and budgets), prompt folders
 * (replacement, empty parts, errors), repair and revise messages. Reply unwrapping is in
 * test_reply.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dream/core/buf.h"
#include "dream/domain/plan.h"
#include "dream/domain/prompt.h"
#include "dream/domain/spec.h"

static const char todo_md[] = "# Todo API\n\nTodos for teams.\n\n## Requirements\n\n"
                              "- Create todos\n  - with a title\n\n## API\n\n"
                              "- GET /todos\n  - supports ?done=true\n\n## DB\n\n- todos table\n\n"
                              "## UI\n\n- TodoList\n";

struct fixture {
    struct dm_spec *spec;
    struct dm_plan *plan;
};

static void load(struct fixture *f, const char *md)
{
    struct dm_error err;
    cr_assert_eq(dm_spec_parse(&f->spec, md, strlen(md), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_plan_build(&f->plan, f->spec, NULL, NULL, &err), 0, "%s", err.msg);
}

static void unload(struct fixture *f)
{
    dm_plan_free(f->plan);
    dm_spec_free(f->spec);
}

static struct dm_prompt *prompt_for(const struct dm_prompts *set, struct fixture *f, size_t i)
{
    struct dm_prompt *p = NULL;
    struct dm_error err;
    cr_assert_eq(dm_prompt_build(&p, set, f->spec, f->plan, i, &err), 0, "%s", err.msg);
    return p;
}

Test(prompt_build, route_exact_user_message_and_system_parts)
{
    struct fixture f;
    struct dm_prompt *p;

    load(&f, todo_md);
    /* One module per resource: the planner names it after /todos and describes its endpoints. */
    cr_assert_str_eq(f.plan->items[1].path, "src/routes/todos.ts");
    p = prompt_for(NULL, &f, 1);
    cr_assert_eq(p->kind, DM_PROMPT_KIND_ROUTE);
    cr_assert_str_eq(p->user, "Task: Implement the API route: The /todos routes: GET /todos\n"
                              "Path: src/routes/todos.ts\n"
                              "Details:\n"
                              "  - supports ?done=true\n"
                              "\n"
                              "Spec: Todo API\n"
                              "\n"
                              "Overview:\n"
                              "Todos for teams.\n"
                              "\n"
                              "Requirements:\n"
                              "- Create todos\n"
                              "  - with a title\n"
                              "\n"
                              "API routes:\n"
                              "- GET /todos\n"
                              "  - supports ?done=true\n"
                              "\n"
                              "Database changes:\n"
                              "- todos table\n"
                              "\n"
                              "UI components:\n"
                              "- TodoList\n"
                              "\n"
                              "Files in this change:\n"
                              "- docs/dream-specs/todo-api.md\n"
                              "- src/routes/todos.ts\n"
                              "- src/components/TodoList.tsx\n"
                              "- migrations/0001_create_todos.sql\n"
                              "\n"
                              "Contract of this change (names and paths every file must agree "
                              "on):\n"
                              "- `src/routes/todos.ts` (route, this file): exports default: a "
                              "Hono app with GET /todos; mounted at /todos by the app's entry\n"
                              "- `src/components/TodoList.tsx` (component): exports named export "
                              "TodoList (React component); imported by the pages that show it\n"
                              "- `migrations/0001_create_todos.sql` (migration): applied in order "
                              "after the existing migrations\n"
                              "\n"
                              "Write the complete content of `src/routes/todos.ts`.\n");
    {
        struct dm_buf want;
        dm_buf_init(&want, 0);
        dm_buf_printf(&want, "%s\n\n%s\n\n%s\n\nTarget path: `src/routes/todos.ts`",
                      dm_prompts_text(NULL, DM_PROMPT_SYSTEM_ROUTE),
                      dm_prompts_text(NULL, DM_PROMPT_STACK),
                      dm_prompts_text(NULL, DM_PROMPT_RULES));
        cr_assert_str_eq(p->system, want.data);
        dm_buf_free(&want);
    }
    cr_assert(strstr(p->system, "Hono 4"));
    cr_assert(strstr(p->system, "Output only the content of the file"));
    cr_assert(strstr(p->system, "No TODO"));
    cr_assert(strstr(p->system, "imports first"));
    dm_prompt_free(p);
    unload(&f);
}

Test(prompt_build, a_module_of_several_endpoints_names_each_one_in_its_details)
{
    static const char md[] = "# Todo API\n\n## API\n\n"
                             "- GET /todos\n  - supports ?done=true\n"
                             "- POST /todos\n  - requires a title\n"
                             "- PATCH /todos/:id\n"
                             "- DELETE /todos/:id\n  - 404 when missing\n";
    struct fixture f;
    struct dm_prompt *p;

    load(&f, md);
    cr_assert_str_eq(f.plan->items[1].path, "src/routes/todos.ts");
    p = prompt_for(NULL, &f, 1);
    /* Each detail stays under its endpoint (PATCH has none), as in the API list. */
    cr_assert(strstr(p->user, "Path: src/routes/todos.ts\n"
                              "Details:\n"
                              "- GET /todos\n"
                              "  - supports ?done=true\n"
                              "- POST /todos\n"
                              "  - requires a title\n"
                              "- DELETE /todos/:id\n"
                              "  - 404 when missing\n"
                              "\nSpec: Todo API\n"),
              "%s", p->user);
    dm_prompt_free(p);
    unload(&f);
}

Test(prompt_build, kinds_pick_their_system_text)
{
    struct fixture f;
    struct dm_prompt *p;
    struct dm_error err;

    load(&f, todo_md);
    p = prompt_for(NULL, &f, 2);
    cr_assert_eq(p->kind, DM_PROMPT_KIND_COMPONENT);
    cr_assert(strstr(p->system, "React 19 function component"));
    cr_assert(strstr(p->user, "Task: Implement the UI component: The TodoList component: "
                              "TodoList\nPath: src/components/TodoList.tsx\n"),
              "%s", p->user);
    cr_assert_null(strstr(p->user, "Details:"));
    dm_prompt_free(p);
    p = prompt_for(NULL, &f, 3);
    cr_assert_eq(p->kind, DM_PROMPT_KIND_MIGRATION);
    cr_assert(strstr(p->system, "CREATE TABLE IF NOT EXISTS"));
    cr_assert(strstr(p->user, "Task: Write the database migration: Migration create_todos: todos "
                              "table\nPath: migrations/0001_create_todos.sql\n"),
              "%s", p->user);
    dm_prompt_free(p);

    /* Spec document and out-of-range indexes are refused. */
    p = (struct dm_prompt *)1;
    cr_assert_eq(dm_prompt_build(&p, NULL, f.spec, f.plan, 0, &err), DM_ERR_INVALID);
    cr_assert_null(p);
    cr_assert(strstr(err.msg, "spec document"), "%s", err.msg);
    cr_assert_eq(dm_prompt_build(&p, NULL, f.spec, f.plan, 4, &err), DM_ERR_INVALID);
    unload(&f);

    /* Kind file maps by path. */
    struct dm_plan_item it = {
        .path = "src/routes/x.ts", .kind = DM_PLAN_KIND_FILE, .description = "x"};
    cr_assert_eq(dm_prompt_kind_of(&it), DM_PROMPT_KIND_ROUTE);
    it.path = "src/components/X.tsx";
    cr_assert_eq(dm_prompt_kind_of(&it), DM_PROMPT_KIND_COMPONENT);
    it.path = "db/001.sql";
    cr_assert_eq(dm_prompt_kind_of(&it), DM_PROMPT_KIND_MIGRATION);
    it.path = "src/lib/util.ts";
    cr_assert_eq(dm_prompt_kind_of(&it), DM_PROMPT_KIND_FILE);
    it.path = "src/components/x.ts";
    cr_assert_eq(dm_prompt_kind_of(&it), DM_PROMPT_KIND_FILE);
    it.kind = DM_PLAN_KIND_MIGRATION;
    cr_assert_eq(dm_prompt_kind_of(&it), DM_PROMPT_KIND_MIGRATION);
}

Test(prompt_build, file_kind_uses_the_file_text)
{
    struct fixture f;
    struct dm_prompt *p = NULL;
    struct dm_plan *plan = NULL;
    struct dm_error err;

    load(&f, todo_md);
    cr_assert_eq(dm_plan_from_json(&plan,
                                   "{\"title\":\"Todo API\",\"branch\":\"dream/todo-api\","
                                   "\"prTitle\":\"[Dream] Todo API\",\"items\":[{\"path\":"
                                   "\"src/lib/db.ts\",\"kind\":\"file\",\"description\":"
                                   "\"D1 helpers\"}]}",
                                   &err),
                 0, "%s", err.msg);
    cr_assert_eq(dm_prompt_build(&p, NULL, f.spec, plan, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(p->kind, DM_PROMPT_KIND_FILE);
    cr_assert(strstr(p->system, dm_prompts_text(NULL, DM_PROMPT_SYSTEM_FILE)) == p->system);
    cr_assert(strstr(p->user, "Task: Write the file: D1 helpers\nPath: src/lib/db.ts\n\nSpec:"));
    dm_prompt_free(p);
    dm_plan_free(plan);
    unload(&f);
}

static size_t count_lines_starting(const char *s, const char *from, const char *to,
                                   const char *prefix)
{
    const char *a = strstr(s, from);
    const char *b = to ? strstr(a, to) : a + strlen(a);
    size_t n = 0;

    for (const char *p = a; p && p < b; p = strchr(p, '\n')) {
        p++;
        if (p < b && strncmp(p, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    return n;
}

Test(prompt_build, budgets)
{
    struct dm_buf md;
    struct fixture f;
    struct dm_prompt *p;

    dm_buf_init(&md, 0);
    dm_buf_puts(&md, "# Big\n\n");
    for (int i = 0; i < 1200; i++) {
        dm_buf_puts(&md, "\xc3\xa9"); /* 1200 characters */
    }
    dm_buf_puts(&md, "\n\n## Requirements\n\n");
    for (int i = 1; i <= 20; i++) {
        dm_buf_printf(&md, "- req %d\n", i);
    }
    dm_buf_puts(&md, "## API\n\n- GET /first\n");
    for (int i = 0; i < 400; i++) {
        dm_buf_puts(&md, "  - detail line that is long enough\n");
    }
    for (int i = 2; i <= 12; i++) {
        dm_buf_printf(&md, "- GET /r%d ", i);
        for (int k = 0; k < 400; k++) {
            dm_buf_puts(&md, "x");
        }
        dm_buf_puts(&md, "\n");
    }
    load(&f, md.data);
    /* Each route is its own resource, so its own module: 12 of them after the spec document. */
    cr_assert_eq(f.plan->count, 13);
    cr_assert_str_eq(f.plan->items[1].path, "src/routes/first.ts");
    cr_assert_str_eq(f.plan->items[11].path, "src/routes/r11.ts");
    p = prompt_for(NULL, &f, 1);
    {
        const char *ov = strstr(p->user, "Overview:\n") + strlen("Overview:\n");
        const char *end = strstr(ov, "\xe2\x80\xa6\n");
        cr_assert_not_null(end);
        cr_assert_eq(end - ov, 2000); /* 1000 characters of 2 bytes */
    }
    cr_assert_eq(count_lines_starting(p->user, "Requirements:\n", "API routes:", "- req"), 15);
    cr_assert(strstr(p->user, "- req 15\n"));
    cr_assert_null(strstr(p->user, "- req 16\n"));
    cr_assert_eq(count_lines_starting(p->user, "API routes:\n", "Files in", "- GET"), 10);
    /* The API list stops at 10 items; the 11th is still named by the files and the contract,
     * which come after it. */
    {
        const char *api = strstr(p->user, "API routes:\n");
        const char *files = strstr(p->user, "\nFiles in this change:\n");
        const char *r11 = strstr(api, "GET /r11");
        cr_assert(files && r11 && r11 > files, "%s", p->user);
        cr_assert(strstr(files, "- src/routes/r11.ts\n"));
    }
    /* An item's text is cut to 300 characters, its context to 300 under the list ... */
    {
        const char *r2 = strstr(p->user, "- GET /r2 ");
        const char *nl = strchr(r2, '\n');
        cr_assert_eq(nl - r2, 2 + 300 + 3);
        const char *first = strstr(strstr(p->user, "API routes:\n"), "- GET /first\n");
        const char *next = strstr(first, "- GET /r2");
        cr_assert_lt(next - first, 300 + 2 * 20 + 40);
    }
    /* ... and the task's own context is kept up to 2000 characters. */
    {
        const char *d = strstr(p->user, "Details:\n");
        const char *spec = strstr(p->user, "\nSpec: Big\n");
        cr_assert_not_null(d);
        cr_assert_gt(spec - d, 2000);
        cr_assert_lt(spec - d, 2000 + 2 * 70 + 20);
    }
    dm_prompt_free(p);
    unload(&f);
    dm_buf_free(&md);
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/dm-prompts-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    struct dm_buf path;
    FILE *f;

    dm_buf_init(&path, 0);
    dm_buf_printf(&path, "%s/%s", dir, name);
    f = fopen(path.data, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    dm_buf_free(&path);
}

static void remove_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(prompt_dir, replaces_parts_and_empty_files_drop_them)
{
    char *dir = make_dir();
    struct dm_prompts *set = NULL;
    struct dm_error err;
    struct fixture f;
    struct dm_prompt *p;
    char *r = NULL;

    write_file(dir, "system-route.md", "ROUTE TEXT\n\n", 12);
    write_file(dir, "stack.md", "", 0);
    write_file(dir, "repair.md", "FIX IT", 6);
    write_file(dir, "README.md", "ignored", 7);
    cr_assert_eq(dm_prompts_load_dir(&set, dir, &err), 0, "%s", err.msg);
    cr_assert_str_eq(dm_prompts_text(set, DM_PROMPT_SYSTEM_ROUTE), "ROUTE TEXT");
    cr_assert_str_eq(dm_prompts_text(set, DM_PROMPT_STACK), "");
    cr_assert_str_eq(dm_prompts_text(set, DM_PROMPT_SYSTEM_COMPONENT),
                     dm_prompts_text(NULL, DM_PROMPT_SYSTEM_COMPONENT));
    load(&f, todo_md);
    p = prompt_for(set, &f, 1);
    {
        struct dm_buf want;
        dm_buf_init(&want, 0);
        dm_buf_printf(&want, "ROUTE TEXT\n\n%s\n\nTarget path: `src/routes/todos.ts`",
                      dm_prompts_text(NULL, DM_PROMPT_RULES));
        cr_assert_str_eq(p->system, want.data);
        dm_buf_free(&want);
    }
    dm_prompt_free(p);
    cr_assert_eq(dm_prompt_repair(&r, set, "a.sql", "x", 1, "e", &err), 0);
    cr_assert(strncmp(r, "FIX IT\n\nPath: `a.sql`", 21) == 0, "%s", r);
    free(r);
    unload(&f);
    dm_prompts_free(set);
    remove_dir(dir);
    free(dir);
}

Test(prompt_dir, errors_name_the_file)
{
    char *dir = make_dir();
    struct dm_prompts *set = (struct dm_prompts *)1;
    struct dm_error err;
    char *big = calloc(1, DM_PROMPT_FILE_MAX + 1);
    char path[256];

    cr_assert_eq(dm_prompts_load_dir(&set, "/nonexistent/prompts", &err), DM_ERR_NOTFOUND);
    cr_assert_null(set);
    write_file(dir, "rules.md", "a\xff", 2);
    cr_assert_eq(dm_prompts_load_dir(&set, dir, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "rules.md is not UTF-8 text"), "%s", err.msg);
    memset(big, 'a', DM_PROMPT_FILE_MAX + 1);
    write_file(dir, "rules.md", big, DM_PROMPT_FILE_MAX + 1);
    cr_assert_eq(dm_prompts_load_dir(&set, dir, &err), DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "rules.md is larger than"), "%s", err.msg);
    write_file(dir, "rules.md", big, DM_PROMPT_FILE_MAX);
    cr_assert_eq(dm_prompts_load_dir(&set, dir, &err), 0, "%s", err.msg);
    dm_prompts_free(set);
    snprintf(path, sizeof(path), "%s/system-file.md", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(dm_prompts_load_dir(&set, dir, &err), DM_ERR_IO);
    cr_assert(strstr(err.msg, "system-file.md"), "%s", err.msg);
    cr_assert_null(set);
    free(big);
    remove_dir(dir);
    free(dir);
}

Test(prompt_dir, names)
{
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_SYSTEM_ROUTE), "system-route.md");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_SYSTEM_COMPONENT), "system-component.md");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_SYSTEM_MIGRATION), "system-migration.md");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_SYSTEM_FILE), "system-file.md");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_STACK), "stack.md");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_RULES), "rules.md");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_REPAIR), "repair.md");
    cr_assert_null(dm_prompts_file_name(DM_PROMPT_PART_COUNT));
    cr_assert_str_eq(dm_prompts_text(NULL, DM_PROMPT_PART_COUNT), "");
}

Test(prompt_repair, exact_and_fences)
{
    char *r = NULL;
    struct dm_error err;
    struct dm_buf want;
    const char prev[] = "const a = `x`;\n";
    const char ticks[] = "const md = \"````\";";

    cr_assert_eq(
        dm_prompt_repair(&r, NULL, "src/a.ts", prev, strlen(prev), "a.ts:1:1: ERROR: bad", &err),
        0);
    dm_buf_init(&want, 0);
    dm_buf_printf(&want,
                  "%s\n\nPath: `src/a.ts`\n\nValidator error:\n```\na.ts:1:1: ERROR: bad\n```\n\n"
                  "Previous content:\n```ts\nconst a = `x`;\n```\n\n"
                  "Reply with the complete corrected file only.\n",
                  dm_prompts_text(NULL, DM_PROMPT_REPAIR));
    cr_assert_str_eq(r, want.data);
    dm_buf_free(&want);
    free(r);

    cr_assert_eq(dm_prompt_repair(&r, NULL, "m.sql", ticks, strlen(ticks), "e", &err), 0);
    cr_assert(strstr(r, "Previous content:\n`````sql\nconst md = \"````\";\n`````\n"), "%s", r);
    free(r);

    cr_assert_eq(dm_prompt_repair(&r, NULL, "m.sql", NULL, 0, "e", &err), 0);
    cr_assert(strstr(r, "Previous content:\n```sql\n\n```"), "%s", r);
    free(r);
    cr_assert_eq(dm_prompt_repair(&r, NULL, NULL, "x", 1, "e", &err), DM_ERR_INVALID);
    cr_assert_eq(dm_prompt_repair(&r, NULL, "a", "x\0y", 3, "e", &err), DM_ERR_INVALID);
    cr_assert_eq(dm_prompt_repair(&r, NULL, "a", "x", DM_PROMPT_REPAIR_MAX + 1, "e", &err),
                 DM_ERR_LIMIT);
    cr_assert_null(r);
}

Test(prompt_build, long_description_from_json_is_cut)
{
    struct fixture f;
    struct dm_prompt *p = NULL;
    struct dm_plan *plan = NULL;
    struct dm_error err;
    struct dm_buf json;

    load(&f, todo_md);
    dm_buf_init(&json, 0);
    dm_buf_puts(&json, "{\"title\":\"T\",\"branch\":\"b\",\"prTitle\":\"p\",\"items\":[{\"path\":"
                       "\"a.ts\",\"kind\":\"file\",\"description\":\"");
    for (int i = 0; i < 3000; i++) {
        dm_buf_puts(&json, "d");
    }
    dm_buf_puts(&json, "\"}]}");
    cr_assert_eq(dm_plan_from_json(&plan, json.data, &err), 0, "%s", err.msg);
    cr_assert_eq(dm_prompt_build(&p, NULL, f.spec, plan, 0, &err), 0, "%s", err.msg);
    {
        const char *d = p->user + strlen("Task: Write the file: ");
        cr_assert_eq(strstr(d, "\xe2\x80\xa6\nPath: a.ts\n") - d, 2000);
    }
    dm_prompt_free(p);
    dm_plan_free(plan);
    dm_buf_free(&json);
    unload(&f);
}

Test(prompt_repair, fence_info_from_the_language_table)
{
    /* prompt.c knew four extensions; the shared table gives the rest the reviewer already
     * used (js, jsx, css, md, html), case-insensitively. */
    static const struct {
        const char *path;
        const char *fence;
    } cases[] = {
        {"src/a.js", "Previous content:\n```js\n"},
        {"src/A.jsx", "Previous content:\n```jsx\n"},
        {"docs/a.md", "Previous content:\n```markdown\n"},
        {"SRC/A.TS", "Previous content:\n```ts\n"},
        {"LICENSE", "Previous content:\n```\n"},
    };
    struct dm_error err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *r = NULL;
        cr_assert_eq(dm_prompt_repair(&r, NULL, cases[i].path, "x", 1, "e", &err), 0);
        cr_expect(strstr(r, cases[i].fence), "%s: %s", cases[i].path, r);
        free(r);
    }
}

Test(prompt_revise, exact_and_errors)
{
    static const char *const comments[] = {"use a prepared statement", "check the id"};
    const char content[] = "const q = `x`;";
    char *r = NULL;
    struct dm_error err;

    cr_assert_eq(dm_prompt_revise(&r, "src/a.ts", comments, 2, content, strlen(content), &err), 0,
                 "%s", err.msg);
    cr_expect_str_eq(r, "A reviewer commented on the file you wrote for the path below. Address "
                        "every comment, keep what was right, and do not add features.\n\n"
                        "Path: `src/a.ts`\n\nReviewer comments:\n"
                        "- use a prepared statement\n- check the id\n\n"
                        "Current content:\n```ts\nconst q = `x`;\n```\n\n"
                        "Reply with the complete revised file only.\n");
    free(r);
    cr_expect_eq(dm_prompt_revise(&r, "src/a.ts", comments, 0, "x", 1, &err), DM_ERR_INVALID);
    cr_expect(strstr(err.msg, "no reviewer comment on \"src/a.ts\""), "%s", err.msg);
    cr_expect_eq(dm_prompt_revise(&r, NULL, comments, 1, "x", 1, &err), DM_ERR_INVALID);
    cr_expect_eq(dm_prompt_revise(&r, "a", comments, 1, "a\0b", 3, &err), DM_ERR_INVALID);
    cr_expect_eq(dm_prompt_revise(&r, "a", comments, 1, "x", DM_PROMPT_REVISE_MAX + 1, &err),
                 DM_ERR_LIMIT);
    cr_expect_null(r);
}

/* ---- the base of the change: stacks, edits, the contract ---- */

static const char todo_spec[] = "# Todo API\n\nTodos for the Acme app.\n\n## API\n\n"
                                "- GET /todos lists the user's todos\n"
                                "- POST /todos creates a todo\n\n"
                                "## Database\n\n- todos table with id, title, done\n\n"
                                "## UI\n\n- TodoList shows the todos\n";

static const char hono_index[] = "import { Hono } from 'hono';\n"
                                 "import users from './routes/users';\n\n"
                                 "const app = new Hono();\n"
                                 "app.get('/health', (c) => c.json({ ok: true }));\n"
                                 "app.route('/users', users);\n\n"
                                 "export default app;\n";

static void add_text(struct dm_repo *r, const char *path, const char *content, int cut)
{
    r->files = realloc(r->files, (r->n_files + 1) * sizeof(*r->files));
    r->files[r->n_files].path = strdup(path);
    r->files[r->n_files].content = strdup(content);
    r->files[r->n_files].len = strlen(content);
    r->files[r->n_files].cut = cut;
    r->n_files++;
    r->tree = realloc(r->tree, (r->n_tree + 1) * sizeof(*r->tree));
    r->tree[r->n_tree].path = strdup(path);
    r->tree[r->n_tree].size = strlen(content);
    r->n_tree++;
}

/* A Hono + React + SQL repository like examples/target-repo, or an Express + React + Knex one. */
static struct dm_repo *make_repo(int express)
{
    struct dm_repo *r = calloc(1, sizeof(*r));
    memset(r->commit, 'a', 40);
    r->stack.ui = DM_REPO_UI_REACT;
    r->stack.typescript = !express;
    r->stack.routes_dir = strdup("src/routes/");
    r->stack.components_dir = strdup("src/components/");
    if (express) {
        r->stack.http = DM_REPO_HTTP_EXPRESS;
        r->stack.db = DM_REPO_DB_KNEX;
        r->stack.test = DM_REPO_TEST_JEST;
        r->stack.entry = strdup("src/app.js");
        r->stack.migrations_dir = strdup("db/migrations/");
        add_text(r, "src/app.js",
                 "const express = require('express');\n"
                 "const users = require('./routes/users');\n"
                 "const app = express();\n"
                 "app.use(express.json());\n"
                 "app.use('/users', users);\n"
                 "module.exports = app;\n",
                 0);
        add_text(r, "src/db.js", "const knex = require('knex');\nmodule.exports = knex({});\n", 0);
        add_text(r, "src/routes/users.js",
                 "const { Router } = require('express');\nconst router = Router();\n"
                 "router.get('/', list);\nmodule.exports = router;\n",
                 0);
    } else {
        r->stack.http = DM_REPO_HTTP_HONO;
        r->stack.db = DM_REPO_DB_SQL;
        r->stack.test = DM_REPO_TEST_VITEST;
        r->stack.entry = strdup("src/index.ts");
        r->stack.barrel = strdup("src/components/index.ts");
        r->stack.migrations_dir = strdup("migrations/");
        add_text(r, "src/index.ts", hono_index, 0);
        add_text(r, "src/components/index.ts", "export { UserCard } from './UserCard';\n", 0);
        add_text(r, "src/routes/users.ts",
                 "import { Hono } from 'hono';\nconst users = new Hono();\n"
                 "users.get('/', (c) => c.json([]));\nexport default users;\n",
                 0);
        add_text(r, "README.md", "export nothing here\n", 0);
        add_text(r, "lib/far.ts", "export const far = 1;\n", 0);
    }
    return r;
}

/* Appends an item to f's plan. */
static void add_item(struct fixture *f, const char *path, enum dm_plan_kind kind,
                     const char *description)
{
    struct dm_plan *plan = f->plan;
    plan->items = realloc(plan->items, (plan->count + 1) * sizeof(*plan->items));
    memset(&plan->items[plan->count], 0, sizeof(plan->items[0]));
    plan->items[plan->count].path = strdup(path);
    plan->items[plan->count].kind = kind;
    plan->items[plan->count].description = strdup(description);
    plan->count++;
}

static struct dm_prompt *prompt_repo(struct fixture *f, size_t i, const struct dm_repo *repo,
                                     const struct dm_prompts *set)
{
    struct dm_prompt *p = NULL;
    struct dm_error err;
    cr_assert_eq(dm_prompt_build_repo(&p, set, f->spec, f->plan, i, repo, &err), 0, "%s", err.msg);
    return p;
}

Test(prompt_stack, express_and_hono_prompts_for_the_same_spec)
{
    struct dm_repo *hono = make_repo(0);
    struct dm_repo *express = make_repo(1);
    struct fixture f;
    struct dm_prompt *p;

    load(&f, todo_spec);
    cr_assert_eq(dm_prompt_stack_of(express), DM_PROMPT_STACK_EXPRESS);
    cr_assert_eq(dm_prompt_stack_of(hono), DM_PROMPT_STACK_HONO);
    cr_assert_eq(dm_prompt_stack_of(NULL), DM_PROMPT_STACK_HONO);
    cr_assert_eq(f.plan->items[1].kind, DM_PLAN_KIND_ROUTE);

    p = prompt_repo(&f, 1, express, NULL);
    cr_assert(strstr(p->system, "express.Router"), "%s", p->system);
    cr_assert(strstr(p->system, "Knex"), "%s", p->system);
    cr_assert(strstr(p->system, "app.use('/todos', router)"), "%s", p->system);
    cr_assert_null(strstr(p->system, "Hono"), "%s", p->system);
    cr_assert_null(strstr(p->system, "D1"), "%s", p->system);
    cr_assert(strstr(p->system, "This repository: Express + React + Knex (JavaScript, Jest); app "
                                "entry `src/app.js`; routes in `src/routes/`"),
              "%s", p->system);
    dm_prompt_free(p);

    p = prompt_repo(&f, 1, hono, NULL);
    cr_assert(strstr(p->system, "Hono 4"), "%s", p->system);
    cr_assert(strstr(p->system, "SQL migration files"), "%s", p->system);
    cr_assert_null(strstr(p->system, "Knex"), "%s", p->system);
    cr_assert_null(strstr(p->system, "express"), "%s", p->system);
    cr_assert(strstr(p->system, "This repository: Hono + React + SQL migrations (TypeScript, "
                                "Vitest); app entry `src/index.ts`"),
              "%s", p->system);
    dm_prompt_free(p);

    /* The migration: Knex for Express, SQLite for Hono. */
    for (size_t i = 0; i < f.plan->count; i++) {
        if (f.plan->items[i].kind != DM_PLAN_KIND_MIGRATION) {
            continue;
        }
        p = prompt_repo(&f, i, express, NULL);
        cr_assert(strstr(p->system, "Knex migration"), "%s", p->system);
        cr_assert(strstr(p->system, "`up(knex)`"), "%s", p->system);
        dm_prompt_free(p);
        p = prompt_repo(&f, i, hono, NULL);
        cr_assert(strstr(p->system, "SQL for SQLite"), "%s", p->system);
        dm_prompt_free(p);
    }
    unload(&f);
    dm_repo_free(hono);
    dm_repo_free(express);
}

Test(prompt_stack, other_stacks_fall_back_to_generic)
{
    struct dm_repo *r = make_repo(0);
    struct fixture f;
    struct dm_prompt *p;

    r->stack.http = DM_REPO_HTTP_FASTIFY;
    cr_assert_eq(dm_prompt_stack_of(r), DM_PROMPT_STACK_GENERIC);
    load(&f, todo_spec);
    p = prompt_repo(&f, 1, r, NULL);
    cr_assert(strstr(p->system, "web framework this repository already uses"), "%s", p->system);
    cr_assert(strstr(p->system, "This repository: Fastify"), "%s", p->system);
    cr_assert_null(strstr(p->system, "Hono 4"));
    dm_prompt_free(p);
    r->stack.http = DM_REPO_HTTP_NONE;
    r->stack.db = DM_REPO_DB_NONE;
    r->stack.ui = DM_REPO_UI_NONE;
    cr_assert_eq(dm_prompt_stack_of(r), DM_PROMPT_STACK_HONO, "nothing recognised: today's");
    r->stack.ui = DM_REPO_UI_VUE;
    cr_assert_eq(dm_prompt_stack_of(r), DM_PROMPT_STACK_GENERIC);
    cr_assert_str_eq(dm_prompt_stack_name(DM_PROMPT_STACK_EXPRESS), "express");
    cr_assert_null(dm_prompt_stack_name(DM_PROMPT_STACK_COUNT));
    unload(&f);
    dm_repo_free(r);
}

Test(prompt_edit, carries_the_current_content_and_asks_for_the_whole_file)
{
    struct dm_repo *r = make_repo(0);
    struct fixture f;
    struct dm_prompt *p;
    const char *at;

    load(&f, todo_spec);
    add_item(&f, "src/index.ts", DM_PLAN_KIND_EDIT, "mount src/routes/todos.ts at /todos");
    p = prompt_repo(&f, f.plan->count - 1, r, NULL);
    cr_assert_eq(p->kind, DM_PROMPT_KIND_EDIT);
    cr_assert(strstr(p->system, "You edit one existing file of a Hono application"), "%s",
              p->system);
    cr_assert(strstr(p->system, "Keep every existing import, export, route registration"));
    cr_assert(strncmp(p->user,
                      "Task: Edit the existing file: mount src/routes/todos.ts at /todos\n"
                      "Path: src/index.ts\n",
                      84) == 0,
              "%s", p->user);
    at = strstr(p->user, "\nCurrent content of `src/index.ts` on the base branch:\n```ts\n");
    cr_assert_not_null(at, "%s", p->user);
    cr_assert(strstr(at, hono_index), "%s", p->user);
    cr_assert(strstr(p->user, "```\n\nReply with the whole new content of `src/index.ts`: keep "
                              "every existing import, export, route registration and line above "
                              "that the task does not ask to change, and add what the task "
                              "asks.\n"),
              "%s", p->user);
    cr_assert_null(strstr(p->user, "Write the complete content"));
    /* The file being edited is not listed again among the existing files. */
    cr_assert_null(strstr(p->user, "- `src/index.ts`:"), "%s", p->user);
    dm_prompt_free(p);
    unload(&f);
    dm_repo_free(r);
}

Test(prompt_edit, never_blind)
{
    struct dm_repo *r = make_repo(0);
    struct fixture f;
    struct dm_prompt *p = NULL;
    struct dm_error err;
    size_t last;

    load(&f, todo_spec);
    add_item(&f, "src/index.ts", DM_PLAN_KIND_EDIT, "mount todos");
    last = f.plan->count - 1;
    cr_assert_eq(dm_prompt_build_repo(&p, NULL, f.spec, f.plan, last, NULL, &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "cannot edit src/index.ts: the base was not read");
    cr_assert_null(p);
    cr_assert_eq(dm_prompt_build(&p, NULL, f.spec, f.plan, last, &err), DM_ERR_INVALID);

    r->files[0].cut = 1;
    cr_assert_eq(dm_prompt_build_repo(&p, NULL, f.spec, f.plan, last, r, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "cannot edit src/index.ts: only the first"), "%s", err.msg);
    cr_assert(strstr(err.msg, "never written blind"), "%s", err.msg);
    r->files[0].cut = 0;

    free(f.plan->items[last].path);
    f.plan->items[last].path = strdup("src/missing.ts");
    cr_assert_eq(dm_prompt_build_repo(&p, NULL, f.spec, f.plan, last, r, &err), DM_ERR_INVALID);
    cr_assert_str_eq(err.msg, "cannot edit src/missing.ts: it does not exist on the base");
    r->tree = realloc(r->tree, (r->n_tree + 1) * sizeof(*r->tree));
    r->tree[r->n_tree].path = strdup("src/missing.ts");
    r->tree[r->n_tree++].size = 1 << 20;
    cr_assert_eq(dm_prompt_build_repo(&p, NULL, f.spec, f.plan, last, r, &err), DM_ERR_INVALID);
    cr_assert(strstr(err.msg, "cannot edit src/missing.ts: it was not read from the base"), "%s",
              err.msg);

    free(f.plan->items[last].path);
    f.plan->items[last].path = strdup("package.json");
    cr_assert_eq(dm_prompt_build_repo(&p, NULL, f.spec, f.plan, last, r, &err), DM_ERR_UNSAFE);
    cr_assert(strstr(err.msg, "package.json refused"), "%s", err.msg);
    unload(&f);
    dm_repo_free(r);
}

Test(prompt_contract, every_prompt_carries_the_contract_and_the_existing_exports)
{
    struct dm_repo *r = make_repo(0);
    struct fixture f;
    struct dm_prompt *p;

    /* The planner's own contract (both /todos routes in one module), plus an edit with usage
     * only. */
    load(&f, todo_spec);
    cr_assert_str_eq(f.plan->items[1].path, "src/routes/todos.ts");
    add_item(&f, "src/index.ts", DM_PLAN_KIND_EDIT, "mount todos");
    f.plan->items[f.plan->count - 1].usage = strdup("imports src/routes/todos.ts");

    /* A new file: the contract, then the existing files, then the closing line. */
    p = prompt_repo(&f, 1, r, NULL);
    cr_assert(strstr(p->user,
                     "\nContract of this change (names and paths every file must agree on):\n"
                     "- `src/routes/todos.ts` (route, this file): exports default: a Hono app "
                     "with GET /todos, POST /todos; mounted at /todos by the app's entry\n"
                     "- `src/components/TodoList.tsx` (component): exports named export "
                     "TodoList (React component); imported by the pages that show it\n"
                     "- `migrations/0001_create_todos.sql` (migration): applied in order after "
                     "the existing migrations\n"
                     "- `src/index.ts` (edit): imports src/routes/todos.ts\n"
                     "\nExisting files of the repository (their real exports; import only "
                     "these):\n"
                     "- `src/index.ts`: exports default; routes GET /health, ROUTE /users\n"
                     "- `src/components/index.ts`: exports UserCard\n"
                     "- `src/routes/users.ts`: exports default; routes GET /\n"
                     "\nWrite the complete content of `src/routes/todos.ts`.\n"),
              "%s", p->user);
    /* Files outside the change's folders, and non-script files, are not listed. */
    cr_assert_null(strstr(p->user, "lib/far.ts"));
    cr_assert_null(strstr(p->user, "README.md`:"));
    dm_prompt_free(p);

    /* The edit carries the same contract (it is "this file" there). */
    p = prompt_repo(&f, f.plan->count - 1, r, NULL);
    cr_assert(strstr(p->user, "- `src/index.ts` (edit, this file): imports src/routes/todos.ts\n"),
              "%s", p->user);
    cr_assert(strstr(p->user, "- `src/routes/todos.ts` (route): exports default"), "%s", p->user);
    dm_prompt_free(p);

    /* No base: the contract alone; no fields and no base: no section at all. */
    p = prompt_repo(&f, 1, NULL, NULL);
    cr_assert(strstr(p->user, "\nContract of this change"));
    cr_assert_null(strstr(p->user, "Existing files"));
    cr_assert_null(strstr(p->system, "This repository:"));
    dm_prompt_free(p);
    unload(&f);
    dm_repo_free(r);
}

Test(prompt_contract, existing_section_is_capped)
{
    struct dm_repo *r = make_repo(0);
    struct fixture f;
    struct dm_prompt *p;
    char path[64];
    char content[600];

    for (int i = 0; i < 40; i++) {
        size_t n = 0;
        snprintf(path, sizeof(path), "src/routes/r%02d.ts", i);
        for (int k = 0; k < 20; k++) {
            n += (size_t)snprintf(content + n, sizeof(content) - n,
                                  "export const name%02d_%02d = 1;\n", i, k);
        }
        add_text(r, path, content, 0);
    }
    load(&f, todo_spec);
    p = prompt_repo(&f, 1, r, NULL);
    {
        const char *s = strstr(p->user, "\nExisting files");
        const char *e = strstr(p->user, "\nWrite the complete content");
        cr_assert(s && e);
        cr_assert_lt((size_t)(e - s), DM_PROMPT_EXISTING_BYTES + 200);
        cr_assert(strstr(s, "- \xe2\x80\xa6 and more\n"), "%s", s);
    }
    dm_prompt_free(p);
    unload(&f);
    dm_repo_free(r);
}

Test(prompt_dir, per_stack_subfolders)
{
    char *dir = make_dir();
    struct dm_prompts *set = NULL;
    struct dm_error err;
    struct dm_buf sub;

    dm_buf_init(&sub, 0);
    dm_buf_printf(&sub, "%s/express", dir);
    cr_assert_eq(mkdir(sub.data, 0700), 0);
    write_file(dir, "rules.md", "ALL RULES", 9);
    write_file(dir, "express/system-route.md", "EXPRESS ROUTE", 13);
    write_file(dir, "express/rules.md", "EXPRESS RULES", 13);
    write_file(dir, "system-edit.md", "EDIT", 4);
    cr_assert_eq(dm_prompts_load_dir(&set, dir, &err), 0, "%s", err.msg);
    cr_assert_str_eq(dm_prompts_stack_text(set, DM_PROMPT_STACK_EXPRESS, DM_PROMPT_SYSTEM_ROUTE),
                     "EXPRESS ROUTE");
    cr_assert_str_eq(dm_prompts_stack_text(set, DM_PROMPT_STACK_EXPRESS, DM_PROMPT_RULES),
                     "EXPRESS RULES");
    cr_assert_str_eq(dm_prompts_stack_text(set, DM_PROMPT_STACK_HONO, DM_PROMPT_RULES),
                     "ALL RULES");
    cr_assert_str_eq(dm_prompts_stack_text(set, DM_PROMPT_STACK_GENERIC, DM_PROMPT_RULES),
                     "ALL RULES");
    cr_assert_str_eq(dm_prompts_stack_text(set, DM_PROMPT_STACK_HONO, DM_PROMPT_SYSTEM_ROUTE),
                     dm_prompts_stack_text(NULL, DM_PROMPT_STACK_HONO, DM_PROMPT_SYSTEM_ROUTE));
    cr_assert_str_eq(dm_prompts_stack_text(set, DM_PROMPT_STACK_GENERIC, DM_PROMPT_SYSTEM_EDIT),
                     "EDIT");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_SYSTEM_EDIT), "system-edit.md");
    cr_assert_str_eq(dm_prompts_file_name(DM_PROMPT_SYSTEM_TEST), "system-test.md");
    cr_assert_str_eq(dm_prompts_stack_text(NULL, DM_PROMPT_STACK_COUNT, DM_PROMPT_RULES), "");
    dm_prompts_free(set);
    dm_buf_free(&sub);
    remove_dir(dir);
    free(dir);
}

Test(prompt_repair, edit_repair_carries_the_base)
{
    char *r = NULL;
    struct dm_error err;

    cr_assert_eq(dm_prompt_repair_edit(&r, NULL, "src/index.ts", "new", 3, "base();", 7,
                                       "edit of src/index.ts drops route registrations: ROUTE /x",
                                       &err),
                 0, "%s", err.msg);
    cr_assert(strstr(r, "ROUTE /x\n```\n\nThe file on the base branch (keep all of it, add what "
                        "the task asks):\n```ts\nbase();\n```\n\nPrevious content:\n```ts\nnew\n"),
              "%s", r);
    free(r);
    cr_assert_eq(dm_prompt_repair_edit(&r, NULL, "a.ts", "x", 1, "a\0b", 3, "e", &err),
                 DM_ERR_INVALID);
    cr_assert_null(r);
}
