/*
 * Tests of the test world itself for issue 13: the fixture repositories under tests/data/repos/
 * (real bare git repositories whose code bundles with esbuild and whose migrations replay in
 * SQLite) and the fake OpenRouter's repository-aware abilities, driven over HTTP like dreamd
 * drives it: stack-aware new files, edits of the current content a prompt carries (mounts and
 * barrel exports added, every base line kept), rules that require text in a prompt and record
 * their refusals, and the misbehaviours that break the type-check or the migration replay in a
 * chosen way. Each change the fake writes is checked for real: esbuild bundles the fixture with
 * it (so a missing export or a bad import fails), SQLite replays the migrations, and, when the
 * TypeScript compiler is installed in .tools/, tsc type-checks it.
 */
#include "dme2e.h"
#include "dmtest.h"
#include "fakeor.h"
#include "fixture.h"
#include "githttp.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct dmt_fakeor fake;
static char *tmp;

static void setup(void)
{
    dmt_fakeor_start(&fake, NULL);
    tmp = dmt_tempdir("fake");
}

static void teardown(void)
{
    dmt_fakeor_stop(&fake);
    dmt_rmtree(tmp);
    free(tmp);
    tmp = NULL;
}

TestSuite(fake, .init = setup, .fini = teardown, .timeout = 120);

/* The todo spec as the prompts carry it, with the planned files and the contract. */
#define TODO_SPEC                                                                                  \
    "Spec: Todo API\n\n"                                                                           \
    "API routes:\n"                                                                                \
    "- GET /todos lists the user's todos\n"                                                        \
    "- POST /todos creates a todo\n"                                                               \
    "- PATCH /todos/:id marks a todo as done\n\n"                                                  \
    "Database changes:\n"                                                                          \
    "- todos table with id, user_id, title, done, created_at\n\n"                                  \
    "UI components:\n"                                                                             \
    "- TodoList shows the todos with a checkbox each\n"

#define HONO_FILES                                                                                 \
    "\nFiles in this change:\n"                                                                    \
    "- src/routes/todos.ts (create)\n"                                                             \
    "- src/routes/todos.test.ts (create)\n"                                                        \
    "- src/components/TodoList.tsx (create)\n"                                                     \
    "- migrations/0002_create_todos.sql (create)\n"                                                \
    "- src/index.ts (edit)\n"                                                                      \
    "- src/components/index.ts (edit)\n\n"                                                         \
    "Contract:\n"                                                                                  \
    "- src/routes/todos.ts: default-exports a Hono app, mounted at /todos in src/index.ts\n"       \
    "- src/components/TodoList.tsx: exports TodoList, re-exported by src/components/index.ts\n"

#define HONO_SYSTEM "Target stack: TypeScript with Hono 4, React 19, SQL migrations; Vitest."

#define EXPRESS_FILES                                                                              \
    "\nFiles in this change:\n"                                                                    \
    "- src/routes/todos.js\n"                                                                      \
    "- tests/todos.test.js\n"                                                                      \
    "- src/components/TodoList.jsx\n"                                                              \
    "- migrations/20240601120000_create_todos.js\n"                                                \
    "- src/app.js (edit)\n\n"                                                                      \
    "Contract:\n"                                                                                  \
    "- src/routes/todos.js: module.exports an express.Router(), mounted at /todos in src/app.js\n"

#define EXPRESS_SYSTEM "Target stack: JavaScript with Express 4, React 18, Knex; tests with Jest."

/* A generation prompt for path. */
static char *new_file_prompt(const char *path, const char *spec_and_files)
{
    char *s = NULL;
    cr_assert(asprintf(&s, "Task: write %s\nPath: %s\n\n%s\nWrite the complete content of `%s`.\n",
                       path, path, spec_and_files, path) > 0);
    return s;
}

/* An edit prompt for path carrying its current content in a fence after a line naming it. */
static char *edit_prompt(const char *path, const char *current, const char *spec_and_files)
{
    char *s = NULL;
    cr_assert(asprintf(&s,
                       "Task: edit %s\nPath: %s\n\n%s\nThe current content of `%s`:\n```ts\n%s"
                       "```\n\nReturn the whole new file, keeping every existing line.\n",
                       path, path, spec_and_files, path, current) > 0);
    return s;
}

static char *ask(const char *system, const char *user)
{
    long st = 0;
    char *c = dmt_fakeor_chat(&fake, system, user, &st);
    cr_assert_eq(st, 200, "chat: HTTP %ld", st);
    return c;
}

static char *ask_new(const char *system, const char *path, const char *spec)
{
    char *p = new_file_prompt(path, spec);
    char *c = ask(system, p);
    free(p);
    return c;
}

static char *ask_edit(const char *system, const char *path, const char *current, const char *spec)
{
    char *p = edit_prompt(path, current, spec);
    char *c = ask(system, p);
    free(p);
    return c;
}

/* The newest recorded request's string member (copied; "" when absent or null). */
static char *last_member(const char *name)
{
    cJSON *r = dmt_fakeor_last_request(&fake);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(r, name));
    char *out = strdup(v ? v : "");
    cJSON_Delete(r);
    return out;
}

static void put(const char *dir, const char *path, const char *content)
{
    char full[2048];
    FILE *f;
    snprintf(full, sizeof(full), "%s/%s", dir, path);
    free(dmt_sh("mkdir -p \"$(dirname '%s')\"", full));
    f = fopen(full, "w");
    cr_assert_not_null(f, "%s", full);
    fputs(content, f);
    fclose(f);
}

/* A working copy of a fixture: its bare repository (dmt_fixture_bare) cloned under tmp. */
static char *checkout(const char *fixture, const char *name)
{
    char bare[1024], work[1024];
    snprintf(bare, sizeof(bare), "%s/%s.git", tmp, name);
    snprintf(work, sizeof(work), "%s/%s", tmp, name);
    free(dmt_fixture_bare(fixture, bare));
    free(dmt_sh("git clone -q '%s' '%s'", bare, work));
    return strdup(work);
}

static const char *esbuild(void)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/.tools/node_modules/.bin/esbuild", dmt_source_dir());
    cr_assert(access(path, X_OK) == 0, "esbuild is installed by scripts/bootstrap.sh: %s", path);
    return path;
}

/* Bundles entries (relative to dir) with esbuild, dependencies external. Returns NULL when it
 * succeeds, else esbuild's messages (caller frees). */
static char *bundle(const char *dir, const char *entries, const char *platform)
{
    char *out = dmt_sh("cd '%s' && { '%s' %s --bundle --platform=%s --format=esm --jsx=automatic "
                       "--outdir='%s/out' --log-level=error --external:hono --external:react "
                       "--external:react-dom --external:express --external:knex "
                       "--external:vitest 2>&1; echo \"rc=$?\"; }",
                       dir, esbuild(), entries, platform, tmp);
    char *rc = strstr(out, "rc=0");
    if (rc && (rc == out || rc[-1] == '\n') && rc[4] == '\0') {
        free(out);
        return NULL;
    }
    return out;
}

/* The TypeScript compiler: $DMT_TSC, else .tools/node_modules/.bin/tsc when installed
 * (scripts/bootstrap.sh adds it with the repository check); NULL otherwise. */
static const char *tsc(void)
{
    static char path[1024];
    const char *env = getenv("DMT_TSC");
    if (env && *env) {
        return access(env, X_OK) == 0 ? env : NULL;
    }
    snprintf(path, sizeof(path), "%s/.tools/node_modules/.bin/tsc", dmt_source_dir());
    return access(path, X_OK) == 0 ? path : NULL;
}

/* Type-checks dir with its tsconfig.json and the dependencies declared as untyped modules;
 * returns NULL when it passes or tsc is not installed, else tsc's messages (caller frees). */
static char *typecheck(const char *dir)
{
    char *out;
    if (!tsc()) {
        cr_log_info("tsc is not installed in .tools/: the type-check part is skipped");
        return NULL;
    }
    put(dir, "src/untyped-deps.d.ts",
        "declare module 'hono';\ndeclare module 'vitest';\ndeclare module 'react';\n"
        "declare module 'react/jsx-runtime';\n"
        "declare namespace JSX { interface IntrinsicElements { [name: string]: any } }\n");
    out = dmt_sh("cd '%s' && { '%s' -p . --noEmit --noImplicitAny false 2>&1; echo \"rc=$?\"; }",
                 dir, tsc());
    if (strstr(out, "rc=0")) {
        free(out);
        return NULL;
    }
    return out;
}

/* Applies every .sql file of dir/migrations in name order, then extra (may be NULL), to an
 * in-memory SQLite database. Returns NULL when all apply, else the first error (caller frees). */
static char *replay(const char *dir, const char *extra)
{
    char *names = dmt_sh("cd '%s/migrations' && ls *.sql | sort", dir);
    sqlite3 *db = NULL;
    char *err = NULL, *out = NULL;

    cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    for (char *name = strtok(names, "\n"); name && !out; name = strtok(NULL, "\n")) {
        char path[2048];
        char *sql;
        snprintf(path, sizeof(path), "%s/migrations/%s", dir, name);
        sql = dmt_read_file(path);
        cr_assert_not_null(sql, "%s", path);
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
            cr_assert(asprintf(&out, "%s: %s", name, err ? err : "?") > 0);
        }
        sqlite3_free(err);
        err = NULL;
        free(sql);
    }
    if (!out && extra && sqlite3_exec(db, extra, NULL, NULL, &err) != SQLITE_OK) {
        cr_assert(asprintf(&out, "new migration: %s", err ? err : "?") > 0);
    }
    sqlite3_free(err);
    sqlite3_close(db);
    free(names);
    return out;
}

/* Every line of base is a line of edited, in order. */
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

Test(fake, fixtures_are_real_repositories_with_a_stable_commit)
{
    char bare[1024];
    char *again, *head, *files, *w, *err;

    snprintf(bare, sizeof(bare), "%s/remotes/acme/app.git", tmp);
    free(dmt_fixture_bare("hono", bare));
    head = dmt_fixture_head(bare);
    files = dmt_sh("git --git-dir='%s' ls-tree -r --name-only main", bare);
    cr_assert_not_null(strstr(files, "src/routes/users.ts\n"), "%s", files);
    cr_assert_not_null(strstr(files, "migrations/0001_init.sql\n"), "%s", files);
    cr_assert_not_null(strstr(files, "src/components/index.ts\n"), "%s", files);
    cr_assert_not_null(strstr(files, "src/components/UserCard.tsx\n"), "%s", files);
    cr_assert_not_null(strstr(files, "tsconfig.json\n"), "%s", files);
    free(files);
    files = dmt_sh("git --git-dir='%s' rev-list --count main", bare);
    cr_assert_str_eq(files, "1", "one commit on main");
    free(files);
    /* The same tree makes the same commit: a per-commit cache sees one base. */
    free(dmt_fixture_bare("hono", bare));
    again = dmt_fixture_head(bare);
    cr_assert_str_eq(head, again);
    free(again);
    free(head);

    w = checkout("hono", "hono");
    err = bundle(w, "src/index.ts src/components/index.ts", "neutral");
    cr_assert_null(err, "the hono fixture bundles: %s", err);
    err = typecheck(w);
    cr_assert_null(err, "the hono fixture type-checks: %s", err);
    err = replay(w, NULL);
    cr_assert_null(err, "%s", err);
    {
        char *idx = dmt_fixture_file("hono", "src/index.ts");
        cr_assert_not_null(strstr(idx, "app.route('/users', users);"), "%s", idx);
        free(idx);
    }
    free(w);

    w = checkout("express", "express");
    files = dmt_sh("cd '%s' && git ls-files", w);
    cr_assert_not_null(strstr(files, "migrations/20240101120000_create_users.js"), "%s", files);
    cr_assert_not_null(strstr(files, "src/routes/users.js"), "%s", files);
    cr_assert_not_null(strstr(files, "src/components/UserCard.jsx"), "%s", files);
    free(files);
    err = bundle(w,
                 "src/index.js src/components/UserCard.jsx "
                 "migrations/20240101120000_create_users.js",
                 "node");
    cr_assert_null(err, "the express fixture bundles: %s", err);
    {
        char *app = dmt_fixture_file("express", "src/app.js");
        cr_assert_not_null(strstr(app, "app.use('/users', usersRouter);"), "%s", app);
        free(app);
    }
    free(w);
}

Test(fake, hono_change_is_planned_in_the_repository_and_bundles)
{
    char *w = checkout("hono", "hono");
    char *route = ask_new(HONO_SYSTEM, "src/routes/todos.ts", TODO_SPEC HONO_FILES);
    char *kind = last_member("reply_kind");
    char *comp, *test, *sql, *entry, *barrel, *base_entry, *base_barrel, *err;

    cr_assert_str_eq(kind, "route:hono");
    free(kind);
    cr_assert_not_null(strstr(route, "const todos = new Hono();"), "%s", route);
    cr_assert_not_null(strstr(route, "todos.get('/'"), "%s", route);
    cr_assert_not_null(strstr(route, "todos.post('/'"), "%s", route);
    cr_assert_not_null(strstr(route, "todos.patch('/:id'"), "%s", route);
    cr_assert_not_null(strstr(route, "export default todos;"), "%s", route);
    cr_assert_null(strstr(route, "json<"), "no type arguments (they fail on untyped modules): %s",
                   route);
    cr_assert_null(strstr(route, "Hono<"), "no type arguments: %s", route);

    comp = ask_new(HONO_SYSTEM, "src/components/TodoList.tsx", TODO_SPEC HONO_FILES);
    cr_assert_not_null(strstr(comp, "export function TodoList("), "%s", comp);
    test = ask_new(HONO_SYSTEM, "src/routes/todos.test.ts", TODO_SPEC HONO_FILES);
    cr_assert_not_null(strstr(test, "from 'vitest'"), "%s", test);
    cr_assert_not_null(strstr(test, "import todos from './todos';"), "%s", test);
    sql = ask_new(HONO_SYSTEM, "migrations/0002_create_todos.sql", TODO_SPEC HONO_FILES);
    cr_assert_not_null(strstr(sql, "CREATE TABLE IF NOT EXISTS todos ("), "%s", sql);
    cr_assert_not_null(strstr(sql, "user_id INTEGER NOT NULL"), "%s", sql);

    base_entry = dmt_fixture_file("hono", "src/index.ts");
    entry = ask_edit(HONO_SYSTEM, "src/index.ts", base_entry, TODO_SPEC HONO_FILES);
    kind = last_member("reply_kind");
    cr_assert_str_eq(kind, "edit:entry");
    free(kind);
    assert_keeps_lines(base_entry, entry);
    cr_assert_not_null(strstr(entry, "import users from './routes/users';\n"
                                     "import todos from './routes/todos';\n"),
                       "the import goes after the imports: %s", entry);
    cr_assert_not_null(strstr(entry, "app.route('/todos', todos);\n\nexport default app;"),
                       "the mount goes before export default: %s", entry);

    base_barrel = dmt_fixture_file("hono", "src/components/index.ts");
    barrel = ask_edit(HONO_SYSTEM, "src/components/index.ts", base_barrel, TODO_SPEC HONO_FILES);
    kind = last_member("reply_kind");
    cr_assert_str_eq(kind, "edit:barrel");
    free(kind);
    assert_keeps_lines(base_barrel, barrel);
    cr_assert_not_null(strstr(barrel, "export { TodoList } from './TodoList';"), "%s", barrel);

    put(w, "src/routes/todos.ts", route);
    put(w, "src/components/TodoList.tsx", comp);
    put(w, "src/routes/todos.test.ts", test);
    put(w, "migrations/0002_create_todos.sql", sql);
    put(w, "src/index.ts", entry);
    put(w, "src/components/index.ts", barrel);
    err = bundle(w, "src/index.ts src/components/index.ts src/routes/todos.test.ts", "neutral");
    cr_assert_null(err, "base + change bundles: %s", err);
    err = typecheck(w);
    cr_assert_null(err, "base + change type-checks: %s", err);
    err = replay(w, NULL);
    cr_assert_null(err, "the migrations replay: %s", err);
    free(route);
    free(comp);
    free(test);
    free(sql);
    free(entry);
    free(barrel);
    free(base_entry);
    free(base_barrel);
    free(w);
}

Test(fake, express_change_uses_the_express_layout_and_stack)
{
    char *w = checkout("express", "express");
    char *route = ask_new(EXPRESS_SYSTEM, "src/routes/todos.js", TODO_SPEC EXPRESS_FILES);
    char *kind = last_member("reply_kind");
    char *mig, *test, *comp, *base_app, *app, *err;

    cr_assert_str_eq(kind, "route:express");
    free(kind);
    cr_assert_not_null(strstr(route, "const router = express.Router();"), "%s", route);
    cr_assert_not_null(strstr(route, "router.get('/'"), "%s", route);
    cr_assert_not_null(strstr(route, "router.patch('/:id'"), "%s", route);
    cr_assert_not_null(strstr(route, "module.exports = router;"), "%s", route);
    cr_assert_null(strstr(route, "Hono"), "%s", route);

    mig = ask_new(EXPRESS_SYSTEM, "migrations/20240601120000_create_todos.js",
                  TODO_SPEC EXPRESS_FILES);
    kind = last_member("reply_kind");
    cr_assert_str_eq(kind, "migration:knex");
    free(kind);
    cr_assert_not_null(strstr(mig, "exports.up = function (knex)"), "%s", mig);
    cr_assert_not_null(strstr(mig, "knex.schema.createTable('todos'"), "%s", mig);
    cr_assert_not_null(strstr(mig, "exports.down = function (knex)"), "%s", mig);

    test = ask_new(EXPRESS_SYSTEM, "tests/todos.test.js", TODO_SPEC EXPRESS_FILES);
    cr_assert_not_null(strstr(test, "require('../src/routes/todos')"), "%s", test);
    cr_assert_not_null(strstr(test, "test('"), "jest: %s", test);
    comp = ask_new(EXPRESS_SYSTEM, "src/components/TodoList.jsx", TODO_SPEC EXPRESS_FILES);
    cr_assert_not_null(strstr(comp, "export function TodoList("), "%s", comp);
    cr_assert_null(strstr(comp, "interface"), "no TypeScript in a .jsx file: %s", comp);

    base_app = dmt_fixture_file("express", "src/app.js");
    app = ask_edit(EXPRESS_SYSTEM, "src/app.js", base_app, TODO_SPEC EXPRESS_FILES);
    assert_keeps_lines(base_app, app);
    cr_assert_not_null(strstr(app, "const todosRouter = require('./routes/todos');"), "%s", app);
    cr_assert_not_null(strstr(app, "app.use('/users', usersRouter);\n"
                                   "app.use('/todos', todosRouter);"),
                       "%s", app);

    put(w, "src/routes/todos.js", route);
    put(w, "migrations/20240601120000_create_todos.js", mig);
    put(w, "tests/todos.test.js", test);
    put(w, "src/components/TodoList.jsx", comp);
    put(w, "src/app.js", app);
    err = bundle(w,
                 "src/index.js src/components/TodoList.jsx tests/todos.test.js "
                 "migrations/20240601120000_create_todos.js",
                 "node");
    cr_assert_null(err, "base + change bundles: %s", err);
    free(route);
    free(mig);
    free(test);
    free(comp);
    free(base_app);
    free(app);
    free(w);
}

Test(fake, require_rule_refuses_a_prompt_without_the_current_content_and_records_it)
{
    char *base = dmt_fixture_file("hono", "src/index.ts");
    char *blind = new_file_prompt("src/index.ts", TODO_SPEC HONO_FILES);
    char *p = edit_prompt("src/index.ts", base, TODO_SPEC HONO_FILES);
    char *out, *w, *err, *kind;
    cJSON *r;
    long st = 0;

    dmt_fakeor_script(&fake, "[{\"path\": \"src/index.ts\", \"require\": "
                             "[\"app.route('/users', users);\", \"import users from\"]}]");
    /* Every file's prompt lists src/index.ts; the rule is about the edit's own requests only. */
    out = ask_new(HONO_SYSTEM, "src/routes/todos.ts", TODO_SPEC HONO_FILES);
    cr_assert_not_null(strstr(out, "export default todos;"), "%s", out);
    free(out);
    cr_assert_eq(dmt_fakeor_stat(&fake, "refused"), 0);

    /* Without the current content: a broken file, and the refusal is on record. */
    out = ask(HONO_SYSTEM, blind);
    w = checkout("hono", "hono");
    put(w, "src/index.ts", out);
    err = bundle(w, "src/index.ts", "neutral");
    cr_assert_not_null(err, "the refused answer does not build: %s", out);
    free(err);
    free(out);
    r = dmt_fakeor_last_request(&fake);
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "behaviour")), "refused");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "refused")), 2, "both texts missing");
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "refused"), 0)),
                     "app.route('/users', users);");
    cJSON_Delete(r);
    cr_assert_eq(dmt_fakeor_stat(&fake, "refused"), 1);

    /* With it: the edit. */
    out = ask(HONO_SYSTEM, p);
    kind = last_member("reply_kind");
    cr_assert_str_eq(kind, "edit:entry");
    free(kind);
    r = dmt_fakeor_last_request(&fake);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(r, "refused")));
    cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(r, "behaviour")), "ok");
    cJSON_Delete(r);
    assert_keeps_lines(base, out);
    free(out);
    cr_assert_eq(dmt_fakeor_stat(&fake, "refused"), 1);

    /* refuse 400: an HTTP error naming what is missing; blind: a file written without it. */
    dmt_fakeor_script(&fake, "[{\"path\": \"src/*.ts\", \"require\": \"import users from\", "
                             "\"refuse\": \"400\", \"times\": 1},"
                             "{\"path\": \"src/index.ts\", \"require\": \"import users from\", "
                             "\"refuse\": \"blind\"}]");
    out = dmt_fakeor_chat(&fake, HONO_SYSTEM, blind, &st);
    cr_assert_eq(st, 400);
    cr_assert_null(out);
    out = ask(HONO_SYSTEM, blind);
    cr_assert_null(strstr(out, "app.route('/users'"), "blind: %s", out);
    cr_assert_eq(dmt_fakeor_stat(&fake, "refused"), 3);
    free(out);
    free(w);
    free(blind);
    free(p);
    free(base);
}

Test(fake, misbehaviours_break_the_check_in_the_chosen_way_then_heal)
{
    char *w = checkout("hono", "hono");
    char *base = dmt_fixture_file("hono", "src/index.ts");
    char *entry = ask_edit(HONO_SYSTEM, "src/index.ts", base, TODO_SPEC HONO_FILES);
    char *mod, *err, *dropped;

    put(w, "src/index.ts", entry);
    /* ts-missing-export, once: the entry's import of the default export fails; then healed. */
    dmt_fakeor_script(&fake, "[{\"path\": \"src/routes/todos.ts\", \"behaviour\": "
                             "\"ts-missing-export\", \"times\": 1}]");
    mod = ask_new(HONO_SYSTEM, "src/routes/todos.ts", TODO_SPEC HONO_FILES);
    cr_assert_null(strstr(mod, "export default"), "%s", mod);
    put(w, "src/routes/todos.ts", mod);
    free(mod);
    err = bundle(w, "src/index.ts", "neutral");
    cr_assert_not_null(err, "a missing export fails the build");
    cr_assert_not_null(strstr(err, "No matching export"), "%s", err);
    cr_assert_not_null(strstr(err, "src/routes/todos.ts"), "%s", err);
    free(err);
    mod = ask_new(HONO_SYSTEM, "src/routes/todos.ts", TODO_SPEC HONO_FILES);
    put(w, "src/routes/todos.ts", mod);
    free(mod);
    err = bundle(w, "src/index.ts", "neutral");
    cr_assert_null(err, "healed: %s", err);
    cr_assert_eq(dmt_fakeor_behaviour_count(&fake, "ts-missing-export"), 1);

    /* ts-bad-import as a marker with *TIMES. */
    mod = ask(HONO_SYSTEM " [[fake:ts-bad-import*1]]",
              "Path: src/routes/todos.ts\n" TODO_SPEC HONO_FILES);
    cr_assert_not_null(strstr(mod, "from './does-not-exist'"), "%s", mod);
    put(w, "src/routes/todos.ts", mod);
    free(mod);
    err = bundle(w, "src/index.ts", "neutral");
    cr_assert_not_null(err, "a bad import fails the build");
    cr_assert_not_null(strstr(err, "does-not-exist"), "%s", err);
    free(err);
    mod = ask(HONO_SYSTEM " [[fake:ts-bad-import*1]]",
              "Path: src/routes/todos.ts\n" TODO_SPEC HONO_FILES);
    cr_assert_null(strstr(mod, "does-not-exist"), "only once: %s", mod);
    put(w, "src/routes/todos.ts", mod);
    free(mod);

    /* ts-type-error: a number assigned a string (esbuild strips types; tsc sees it). */
    mod = ask(HONO_SYSTEM " [[fake:ts-type-error]]",
              "Path: src/routes/todos.ts\n" TODO_SPEC HONO_FILES);
    cr_assert_not_null(strstr(mod, ": number = 'not a number'"), "%s", mod);
    put(w, "src/routes/todos.ts", mod);
    err = bundle(w, "src/index.ts", "neutral");
    cr_assert_null(err, "the type error is syntactically valid: %s", err);
    if (tsc()) {
        err = typecheck(w);
        cr_assert_not_null(err, "tsc catches the type error");
        cr_assert_not_null(strstr(err, "src/routes/todos.ts("), "%s", err);
        cr_assert_not_null(strstr(err, "TS2322"), "%s", err);
        free(err);
    }
    free(mod);

    /* drop-route: an edit that loses the existing registration of /users. */
    dmt_fakeor_script(&fake, "[{\"path\": \"src/index.ts\", \"behaviour\": \"drop-route\", "
                             "\"times\": 1}]");
    dropped = ask_edit(HONO_SYSTEM, "src/index.ts", base, TODO_SPEC HONO_FILES);
    cr_assert_null(strstr(dropped, "app.route('/users', users);"), "%s", dropped);
    cr_assert_not_null(strstr(dropped, "app.route('/todos', todos);"), "%s", dropped);
    cr_assert_not_null(strstr(dropped, "import users from './routes/users';"), "%s", dropped);
    free(dropped);
    dropped = ask_edit(HONO_SYSTEM, "src/index.ts", base, TODO_SPEC HONO_FILES);
    assert_keeps_lines(base, dropped);
    free(dropped);

    free(entry);
    free(base);
    free(w);
}

Test(fake, migrations_replay_after_the_base_and_sql_dup_table_fails_it)
{
    char *w = checkout("hono", "hono");
    char *sql, *err;

    sql = ask_new(HONO_SYSTEM, "migrations/0002_create_todos.sql", TODO_SPEC HONO_FILES);
    err = replay(w, sql);
    cr_assert_null(err, "%s\n%s", err, sql);
    free(sql);

    /* An ALTER of the table the base created passes the replay. */
    sql = ask(HONO_SYSTEM, "Task: Write the database migration: add a nickname column to users\n"
                           "Path: migrations/0002_add_nickname_to_users.sql\n");
    cr_assert_not_null(strstr(sql, "ALTER TABLE users ADD COLUMN nickname"), "%s", sql);
    err = replay(w, sql);
    cr_assert_null(err, "%s\n%s", err, sql);
    free(sql);

    /* sql-dup-table (script, once): CREATE TABLE users without IF NOT EXISTS. */
    dmt_fakeor_script(&fake, "[{\"path\": \"migrations/*.sql\", \"behaviour\": \"sql-dup-table\", "
                             "\"times\": 1}]");
    sql = ask_new(HONO_SYSTEM, "migrations/0002_create_todos.sql", TODO_SPEC HONO_FILES);
    cr_assert_not_null(strstr(sql, "CREATE TABLE users ("), "%s", sql);
    err = replay(w, sql);
    cr_assert_not_null(err, "a second CREATE TABLE users fails the replay");
    cr_assert_not_null(strstr(err, "already exists"), "%s", err);
    free(err);
    free(sql);
    sql = ask_new(HONO_SYSTEM, "migrations/0002_create_todos.sql", TODO_SPEC HONO_FILES);
    err = replay(w, sql);
    cr_assert_null(err, "healed: %s", err);
    free(sql);
    free(w);
}

Test(fake, earlier_answers_are_kept)
{
    char *out, *kind;

    /* A per-sentence route path gets the generic Hono app of before. */
    out = ask("x", "Path: src/routes/get-todos.ts\nGET /todos lists todos\n");
    cr_assert_not_null(strstr(out, "app.get('/get-todos'"), "%s", out);
    free(out);
    out = ask("x", "Path: migrations/todos.sql\n");
    cr_assert_not_null(strstr(out, "CREATE TABLE IF NOT EXISTS todos"), "%s", out);
    free(out);
    out = ask("x", "Path: src/components/todo-list.tsx\n");
    cr_assert_not_null(strstr(out, "export function TodoList("), "%s", out);
    free(out);
    /* A repair carries the previous content fenced: it is not an edit, the answer is fresh. */
    out = ask("x", "A validator refused the file.\n\nPath: `src/routes/todos.ts`\n\n"
                   "Validator error:\n```\nexpected ;\n```\n\nPrevious content:\n```ts\n"
                   "export const broken = {;\n```\n\nReply with the complete corrected file "
                   "only.\n");
    kind = last_member("reply_kind");
    cr_assert_str_neq(kind, "edit:unchanged");
    cr_assert_null(strstr(out, "broken"), "%s", out);
    free(kind);
    free(out);
    /* Without a path: the default reply. */
    out = ask("x", "hello");
    cr_assert_str_eq(out, "OK");
    free(out);
}

Test(fake, a_repair_of_an_edit_heals_from_the_base_version_it_carries)
{
    char *base = dmt_fixture_file("hono", "src/index.ts");
    char *p = NULL, *out, *kind;

    cr_assert(asprintf(&p,
                       "A validator refused the file you wrote for the path below.\n\n"
                       "Path: `src/index.ts`\n\nValidator error:\n```\nsrc/index.ts:3:1: "
                       "expected ;\n```\n\nPrevious content:\n```ts\nexport const broken = {;\n"
                       "```\n\nThe base version of `src/index.ts`:\n```ts\n%s```\n\n" HONO_FILES
                       "\nReply with the complete corrected file only.\n",
                       base) > 0);
    out = ask(HONO_SYSTEM, p);
    kind = last_member("reply_kind");
    cr_assert_str_eq(kind, "edit:entry");
    assert_keeps_lines(base, out);
    cr_assert_not_null(strstr(out, "app.route('/todos', todos);"), "%s", out);
    cr_assert_null(strstr(out, "broken"), "%s", out);
    free(kind);
    free(out);
    free(p);
    free(base);
}

/* ---- the fixture as the world's repository, through today's whole pipeline ---- */

static struct dmt_world world;

static void world_teardown(void)
{
    dmt_world_stop(&world);
}

TestSuite(fake_world, .fini = world_teardown, .timeout = 180);

Test(fake_world, a_job_on_the_hono_fixture_keeps_the_base_and_its_pr_body_is_readable)
{
    struct dmt_replica rep;
    char *job, *files, *body, *kept, *base, *head;

    dmt_world_start(&world, NULL);
    dmt_world_use_fixture(&world, "hono");
    head = dmt_world_rev(&world, "main");
    base = dmt_fixture_head(world.bare);
    cr_assert_str_eq(head, base, "main is the fixture's commit");
    free(head);
    free(base);
    dmt_world_replica(&world, &rep, "solo", NULL);
    job = dmt_world_job("fixture-1", NULL, NULL, 200000, 5.0);
    free(dmt_submit(world.rc, job));
    free(job);
    cr_assert(dmt_world_wait_status(&world, "fixture-1", "complete,failed", 90000), "job ended");
    body = dmt_world_hget(&world, "fixture-1", "status");
    cr_assert_str_eq(body, "complete", "error: %s", dmt_world_hget(&world, "fixture-1", "error"));
    free(body);
    files = dmt_world_branch_files(&world, "dream/todo-api");
    cr_assert_not_null(files, "the branch exists");
    cr_assert_not_null(strstr(files, "src/routes/users.ts"), "base kept: %s", files);
    cr_assert_not_null(strstr(files, "migrations/0001_init.sql"), "base kept: %s", files);
    cr_assert_not_null(strstr(files, "src/components/index.ts"), "base kept: %s", files);
    cr_assert_not_null(strstr(files, "docs/dream-specs/todo-api.md"), "%s", files);
    kept = dmt_world_branch_file(&world, "dream/todo-api", "src/index.ts");
    base = dmt_fixture_file("hono", "src/index.ts");
    assert_keeps_lines(base, kept);
    free(kept);
    free(base);
    body = dmt_world_pr_body(&world, "dream/todo-api");
    cr_assert_not_null(body, "a pull request for the branch");
    cr_assert_not_null(strstr(body, "docs/dream-specs/todo-api.md"), "the body lists files: %s",
                       body);
    cr_assert_null(dmt_world_pr_body(&world, "dream/no-such-branch"));
    free(body);
    free(files);
    cr_assert_geq(dmt_replica_stop(&rep, 30000), 0);
}
