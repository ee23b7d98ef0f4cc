/* Integration tests for typecheck: the real TypeScript compiler (installed by
 * scripts/bootstrap.sh) on a real Hono + React tree written out as the base, plus a change:
 * a valid route module and entry edit; a module missing the export the entry imports; an import
 * of a file that does not exist; a type error; errors only in the base; and hostile files
 * stopped by the caps (size, wall time). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "dmtest.h"
#include "dream/io/loop.h"
#include "dream/io/typecheck.h"

static void put(const char *dir, const char *rel, const char *content)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(content, f);
    fclose(f);
}

static const char *INDEX_BASE = "import { Hono } from 'hono';\n"
                                "import users from './routes/users';\n"
                                "\n"
                                "const app = new Hono();\n"
                                "app.route('/users', users);\n"
                                "app.get('/health', (c) => c.json({ ok: true }));\n"
                                "\n"
                                "export default app;\n";

/* The Hono + React + SQL fixture: strict tsconfig, a route module, the entry mounting it, a
 * component and its barrel, a migration. */
static char *make_base(void)
{
    char *dir = dmt_tempdir("tc-base");
    put(dir, "package.json",
        "{\"name\":\"acme\",\"type\":\"module\",\"dependencies\":{\"hono\":\"^4.6.0\","
        "\"react\":\"^19.0.0\"}}\n");
    put(dir, "tsconfig.json",
        "{\n  \"compilerOptions\": {\n    \"target\": \"ES2022\",\n    \"module\": \"ESNext\",\n"
        "    \"moduleResolution\": \"Bundler\",\n    \"strict\": true,\n"
        "    \"jsx\": \"react-jsx\",\n    \"types\": [\"@cloudflare/workers-types\"]\n  },\n"
        "  \"include\": [\"src\"]\n}\n");
    put(dir, "src/index.ts", INDEX_BASE);
    put(dir, "src/routes/users.ts",
        "import { Hono } from 'hono';\n"
        "\n"
        "const users = new Hono();\n"
        "users.get('/', (c) => c.json([]));\n"
        "users.get('/:id', (c) => c.json({ id: c.req.param('id') }));\n"
        "\n"
        "export default users;\n");
    put(dir, "src/components/UserCard.tsx",
        "import { useState } from 'react';\n"
        "\n"
        "export function UserCard({ name }: { name: string }) {\n"
        "  const [open, setOpen] = useState(false);\n"
        "  return <div onClick={() => setOpen(!open)}>{name}</div>;\n"
        "}\n");
    put(dir, "src/components/index.ts", "export { UserCard } from './UserCard';\n");
    put(dir, "migrations/0001_init.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);\n");
    put(dir, "node_modules/hono/index.d.ts", "this is not even TypeScript\n");
    return dir;
}

static const char *TODOS_OK =
    "import { Hono } from 'hono';\n"
    "\n"
    "type Todo = { id: number; title: string; done: boolean };\n"
    "const items: Todo[] = [];\n"
    "\n"
    "const todos = new Hono();\n"
    "todos.get('/', (c) => c.json(items));\n"
    "todos.post('/', async (c) => {\n"
    "  const body = await c.req.json<{ title?: string }>();\n"
    "  const todo: Todo = { id: items.length + 1, title: String(body.title), "
    "done: false };\n"
    "  items.push(todo);\n"
    "  return c.json(todo, 201);\n"
    "});\n"
    "\n"
    "export default todos;\n";

static const char *INDEX_EDIT = "import { Hono } from 'hono';\n"
                                "import users from './routes/users';\n"
                                "import todos from './routes/todos';\n"
                                "\n"
                                "const app = new Hono();\n"
                                "app.route('/users', users);\n"
                                "app.route('/todos', todos);\n"
                                "app.get('/health', (c) => c.json({ ok: true }));\n"
                                "\n"
                                "export default app;\n";

struct outcome {
    int fired;
    int rc;
    char msg[512];
    size_t n;
    char first[600];
    char all[4096];
    size_t files;
    size_t untyped;
    size_t known;
    int from_baseline;
    int repo_tsconfig;
    char version[32];
};

static void on_done(void *arg, int rc, const struct dm_typecheck_result *res,
                    const struct dm_error *err)
{
    struct outcome *o = arg;
    o->fired++;
    o->rc = rc;
    snprintf(o->msg, sizeof(o->msg), "%s", rc ? err->msg : "");
    if (rc) {
        cr_assert_null(res);
        return;
    }
    o->n = res->diags.n;
    o->files = res->files;
    o->untyped = res->untyped;
    o->known = res->known;
    o->from_baseline = res->from_baseline;
    o->repo_tsconfig = res->repo_tsconfig;
    snprintf(o->version, sizeof(o->version), "%s", res->version);
    for (size_t i = 0; i < res->diags.n; i++) {
        char line[600];
        dm_tsc_diag_format(&res->diags.items[i], line, sizeof(line));
        if (i == 0) {
            snprintf(o->first, sizeof(o->first), "%s", line);
        }
        strncat(o->all, line, sizeof(o->all) - strlen(o->all) - 2);
        strcat(o->all, "\n");
    }
}

static struct outcome check_bl(const char *base, const char *baseline,
                               const struct dm_typecheck_file *files, size_t n,
                               const struct dm_typecheck_opts *opts);

static struct outcome check(const char *base, const struct dm_typecheck_file *files, size_t n,
                            const struct dm_typecheck_opts *opts)
{
    return check_bl(base, NULL, files, n, opts);
}

static struct outcome check_bl(const char *base, const char *baseline,
                               const struct dm_typecheck_file *files, size_t n,
                               const struct dm_typecheck_opts *opts)
{
    uv_loop_t loop;
    struct outcome o;
    struct dm_error err;
    char *work = dmt_tempdir("tc-work");
    struct dm_typecheck_req req = {base, work, baseline, files, n, on_done, &o};
    struct stat st;

    memset(&o, 0, sizeof(o));
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_typecheck_start(NULL, &loop, opts, &req, &err), 0, "%s", err.msg);
    cr_assert_eq(o.fired, 0, "never inside the call");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(o.fired, 1);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
    cr_assert_neq(stat(work, &st), 0, "the work directory is removed");
    free(work);
    return o;
}

static void assert_base_clean(const char *base)
{
    char path[4096];
    char *text;
    snprintf(path, sizeof(path), "%s/src/index.ts", base);
    text = dmt_read_file(path);
    cr_assert_str_eq(text, INDEX_BASE, "the base cache is never written");
    free(text);
}

TestSuite(typecheck, .timeout = 120);

Test(typecheck, tsc_is_installed)
{
    char *tsc = dm_typecheck_find_tsc(NULL);
    cr_assert_not_null(tsc, "run scripts/bootstrap.sh");
    free(tsc);
}

Test(typecheck, a_valid_route_module_and_entry_edit_pass)
{
    char *base = make_base();
    struct dm_typecheck_file files[] = {
        {"src/routes/todos.ts", TODOS_OK, strlen(TODOS_OK)},
        {"src/index.ts", INDEX_EDIT, strlen(INDEX_EDIT)},
    };
    struct outcome o = check(base, files, 2, NULL);

    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.n, 0, "%s", o.all);
    cr_assert_eq(o.repo_tsconfig, 1);
    cr_assert_geq(o.files, 5);
    cr_assert_geq(o.untyped, 2, "hono and react (and react's JSX runtime)");
    cr_assert_str_eq(o.version, "7.0.2");
    assert_base_clean(base);
    dmt_rmtree(base);
    free(base);
}

Test(typecheck, a_module_missing_the_export_the_entry_imports_is_caught)
{
    char *base = make_base();
    const char *index = "import { Hono } from 'hono';\n"
                        "import users from './routes/users';\n"
                        "import { todos } from './routes/todos';\n"
                        "\n"
                        "const app = new Hono();\n"
                        "app.route('/todos', todos);\n"
                        "export default app;\n";
    struct dm_typecheck_file files[] = {
        {"src/routes/todos.ts", TODOS_OK, strlen(TODOS_OK)},
        {"src/index.ts", index, strlen(index)},
    };
    struct outcome o = check(base, files, 2, NULL);

    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_geq(o.n, 1);
    cr_assert(strncmp(o.first, "src/index.ts:3: TS2", 19) == 0, "%s", o.all);
    cr_assert(strstr(o.first, "TS2305") || strstr(o.first, "TS2614"), "%s", o.all);
    cr_assert(strstr(o.first, "todos"), "%s", o.first);
    assert_base_clean(base);
    dmt_rmtree(base);
    free(base);
}

Test(typecheck, an_import_of_a_file_that_does_not_exist_is_caught)
{
    char *base = make_base();
    const char *todos = "import { Hono } from 'hono';\n"
                        "import { store } from '../lib/store';\n"
                        "const todos = new Hono();\n"
                        "todos.get('/', (c) => c.json(store.all()));\n"
                        "export default todos;\n";
    struct dm_typecheck_file files[] = {
        {"src/routes/todos.ts", todos, strlen(todos)},
        {"src/index.ts", INDEX_EDIT, strlen(INDEX_EDIT)},
    };
    struct outcome o = check(base, files, 2, NULL);

    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.n, 1, "%s", o.all);
    cr_assert_str_eq(o.first, "src/routes/todos.ts:2: TS2307: Cannot find module '../lib/store' "
                              "or its corresponding type declarations.");
    dmt_rmtree(base);
    free(base);
}

Test(typecheck, a_type_error_is_caught)
{
    char *base = make_base();
    const char *todos = "import { Hono } from 'hono';\n"
                        "type Todo = { id: number; title: string };\n"
                        "const todos = new Hono();\n"
                        "const first: Todo = { id: '1', title: 'a' };\n"
                        "todos.get('/', (c) => c.json(first));\n"
                        "export default todos;\n";
    const char *card = "export function TodoList({ items }: { items: string[] }) {\n"
                       "  return <ul>{items.map((i) => <li key={i}>{i}</li>)}</ul>;\n"
                       "}\n";
    struct dm_typecheck_file files[] = {
        {"src/routes/todos.ts", todos, strlen(todos)},
        {"src/components/TodoList.tsx", card, strlen(card)},
    };
    struct outcome o = check(base, files, 2, NULL);

    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.n, 1, "%s", o.all);
    cr_assert(strncmp(o.first, "src/routes/todos.ts:4: TS2322: ", 31) == 0, "%s", o.first);
    dmt_rmtree(base);
    free(base);
}

Test(typecheck, without_a_base_the_change_is_checked_alone)
{
    const char *a = "import { b } from './b';\nexport const a: number = b;\n";
    const char *b = "export const b = 'text';\n";
    struct dm_typecheck_file files[] = {
        {"src/a.ts", a, strlen(a)},
        {"src/b.ts", b, strlen(b)},
    };
    struct outcome o = check(NULL, files, 2, NULL);

    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.repo_tsconfig, 0);
    cr_assert_eq(o.n, 1, "%s", o.all);
    cr_assert(strncmp(o.first, "src/a.ts:2: TS2322", 18) == 0, "%s", o.first);
}

Test(typecheck, errors_in_the_base_are_reported_with_their_file)
{
    char *base = make_base();
    put(base, "src/routes/users.ts", "const broken: string = 42;\nexport default broken;\n");
    struct dm_typecheck_file files[] = {
        {"src/routes/todos.ts", TODOS_OK, strlen(TODOS_OK)},
    };
    struct outcome o = check(base, files, 1, NULL);

    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert(strstr(o.all, "src/routes/users.ts:1: TS2322"), "%s", o.all);
    cr_assert_null(strstr(o.all, "todos"), "%s", o.all);
    dmt_rmtree(base);
    free(base);
}

/* The base's own errors, checked once per commit and kept in a baseline file, are told apart
 * from the errors the change causes in files it does not touch. */
Test(typecheck, the_baseline_separates_the_bases_errors_from_those_the_change_causes)
{
    char *base = make_base();
    char baseline[4200];
    const char *users_no_default = "import { Hono } from 'hono';\n"
                                   "export const users = new Hono();\n";
    struct dm_typecheck_file breaks[] = {
        {"src/routes/users.ts", users_no_default, strlen(users_no_default)},
    };
    struct dm_typecheck_file fine[] = {
        {"src/routes/todos.ts", TODOS_OK, strlen(TODOS_OK)},
    };
    struct outcome o;

    put(base, "src/legacy.ts", "export const broken: string = 42;\n");
    snprintf(baseline, sizeof(baseline), "%s/.dream-tsc-baseline", base);
    o = check_bl(base, baseline, NULL, 0, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.from_baseline, 0);
    cr_assert_eq(o.n, 1, "%s", o.all);
    cr_assert(strncmp(o.first, "src/legacy.ts:1: TS2322", 23) == 0, "%s", o.first);
    o = check_bl(base, baseline, NULL, 0, NULL);
    cr_assert_eq(o.from_baseline, 1, "the second time comes from the file");
    cr_assert_eq(o.n, 1, "%s", o.all);
    cr_assert(strstr(o.first, "src/legacy.ts:0: TS2322: Type 'number' is not assignable"), "%s",
              o.first);

    o = check_bl(base, baseline, fine, 1, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.n, 0, "the base's own error is known: %s", o.all);
    cr_assert_eq(o.known, 1);

    o = check_bl(base, baseline, breaks, 1, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.known, 1);
    cr_assert_eq(o.n, 1, "%s", o.all);
    cr_assert(strncmp(o.first, "src/index.ts:2: TS1192", 22) == 0 ||
                  strncmp(o.first, "src/index.ts:2: TS2613", 22) == 0,
              "the untouched entry breaks: %s", o.first);
    dmt_rmtree(base);
    free(base);
}

/* Node's and the test runners' globals are there without their type packages. */
Test(typecheck, node_and_test_globals_need_no_installed_types)
{
    char *base = make_base();
    const char *server = "import { serve } from '@hono/node-server';\n"
                         "import app from './index';\n"
                         "const port = Number(process.env.PORT ?? 3000);\n"
                         "let timer: NodeJS.Timeout | undefined;\n"
                         "serve({ fetch: app.fetch, port });\n"
                         "export { timer };\n";
    const char *spec = "import todos from './todos';\n"
                       "describe('todos', () => {\n"
                       "  it('answers', async () => {\n"
                       "    const res = await todos.request('/');\n"
                       "    expect(res.status).toBe(200);\n"
                       "  });\n"
                       "});\n";
    struct dm_typecheck_file files[] = {
        {"src/server.ts", server, strlen(server)},
        {"src/routes/todos.ts", TODOS_OK, strlen(TODOS_OK)},
        {"src/routes/todos.test.ts", spec, strlen(spec)},
    };
    struct outcome o = check(base, files, 3, NULL);

    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.n, 0, "%s", o.all);
    dmt_rmtree(base);
    free(base);
}

Test(typecheck, a_huge_file_is_refused_by_the_size_cap)
{
    struct dm_typecheck_opts opts = DM_TYPECHECK_OPTS_INIT;
    size_t n = 3u << 20;
    char *huge = malloc(n + 1);
    struct dm_typecheck_file files[1];
    struct outcome o;

    for (size_t i = 0; i < n; i += 32) {
        memcpy(huge + i, "export const a0 = 1; // padding\n", 32);
    }
    huge[n] = '\0';
    files[0].path = "src/huge.ts";
    files[0].content = huge;
    files[0].len = n;
    o = check(NULL, files, 1, &opts);
    cr_assert_eq(o.rc, DM_ERR_LIMIT, "%d %s", o.rc, o.msg);
    cr_assert(strstr(o.msg, "src/huge.ts"), "%s", o.msg);
    free(huge);
}

Test(typecheck, a_never_ending_type_is_stopped_by_the_deadline)
{
    struct dm_typecheck_opts opts = DM_TYPECHECK_OPTS_INIT;
    const char *slow = "type D = '0'|'1'|'2'|'3'|'4'|'5'|'6'|'7'|'8'|'9';\n"
                       "type N3 = `${D}${D}${D}`;\n"
                       "type Build<K extends string> = { [P in K]: { [Q in K]: `${P}-${Q}` } };\n"
                       "type All = Build<N3>;\n"
                       "type Flat = { [P in N3]: All[P][N3] }[N3];\n"
                       "export const x: Flat = '1-2';\n";
    struct dm_typecheck_file files[] = {{"src/slow.ts", slow, strlen(slow)}};
    long long t0 = dmt_now_ms();
    struct outcome o;

    opts.timeout_ms = 1000;
    o = check(NULL, files, 1, &opts);
    cr_assert_eq(o.rc, DM_ERR_TIMEOUT, "%d %s", o.rc, o.msg);
    cr_assert_lt(dmt_now_ms() - t0, 3500, "stopped at the deadline, not at the end");
}

Test(typecheck, a_path_out_of_the_repository_is_refused)
{
    struct dm_typecheck_file files[] = {{"../escape.ts", "x", 1}};
    struct outcome o = check(NULL, files, 1, NULL);
    cr_assert_eq(o.rc, DM_ERR_INVALID, "%s", o.msg);
}

/* Files of the change in folders the base does not have (nested, several per folder) and at the
 * root, and a base file under folders that hold only folders: each folder is made once for the
 * check and every file is in it. */
Test(typecheck, change_files_in_new_nested_folders_are_all_checked)
{
    char *base = make_base();
    const char *a = "export const a: number = 1;\n";
    const char *b = "import { a } from './a';\nexport const b: number = a + 1;\n";
    const char *c = "import { b } from './deep/b';\nexport const c: number = b + 1;\n";
    const char *root = "import { c } from './src/features/todos/c';\n"
                       "import { u } from './packages/core/src/util';\nexport const d = c + u;\n";
    const char *bad = "import { b } from './deep/b';\nexport const e: string = b;\n";
    struct dm_typecheck_file files[] = {
        {"src/features/todos/deep/a.ts", a, strlen(a)},
        {"src/features/todos/deep/b.ts", b, strlen(b)},
        {"src/features/todos/c.ts", c, strlen(c)},
        {"root.ts", root, strlen(root)},
        {"src/features/todos/e.ts", bad, strlen(bad)},
    };
    struct outcome o;

    /* A base folder holding only folders: made with the one under it. */
    put(base, "packages/core/src/util.ts", "export const u: number = 2;\n");
    o = check(base, files, 4, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.n, 0, "%s", o.all);
    o = check(base, files, 5, NULL);
    cr_assert_eq(o.rc, 0, "%s", o.msg);
    cr_assert_eq(o.n, 1, "%s", o.all);
    cr_assert_not_null(strstr(o.first, "src/features/todos/e.ts"), "%s", o.first);
    assert_base_clean(base);
    dmt_rmtree(base);
    free(base);
}

/* No tsc to run: the check ends "tsc could not run" (UNAVAILABLE) without building a work
 * folder (not even its parents), and the base's file limit still answers first. */
Test(typecheck, without_tsc_no_work_folder_is_made_and_the_base_limit_still_holds)
{
    char *base = make_base();
    char *tmp = dmt_tempdir("tc-notsc");
    char work[4300], parent[4200];
    struct dm_typecheck_file files[] = {{"src/routes/todos.ts", TODOS_OK, strlen(TODOS_OK)}};
    struct dm_typecheck_opts opts = DM_TYPECHECK_OPTS_INIT;
    struct stat st;

    snprintf(parent, sizeof(parent), "%s/checks", tmp);
    snprintf(work, sizeof(work), "%s/jobs/j1", parent);
    opts.tsc = "/nonexistent/dreamd-test/tsc";
    for (int pass = 0; pass < 2; pass++) {
        uv_loop_t loop;
        struct outcome o;
        struct dm_error err;
        struct dm_typecheck_req req = {base, work, NULL, files, 1, on_done, &o};

        opts.max_base_files = pass == 0 ? 0 : 2;
        memset(&o, 0, sizeof(o));
        cr_assert_eq(uv_loop_init(&loop), 0);
        cr_assert_eq(dm_typecheck_start(NULL, &loop, &opts, &req, &err), 0, "%s", err.msg);
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert_eq(o.fired, 1);
        cr_assert_eq(dm_loop_drain_close(&loop), 0);
        if (pass == 0) {
            cr_assert_eq(o.rc, DM_ERR_UNAVAILABLE, "%d %s", o.rc, o.msg);
            cr_assert_not_null(strstr(o.msg, "tsc could not run"), "%s", o.msg);
        } else {
            cr_assert_eq(o.rc, DM_ERR_LIMIT, "%d %s", o.rc, o.msg);
            cr_assert_not_null(strstr(o.msg, "more than 2 files"), "%s", o.msg);
        }
        cr_assert_neq(stat(parent, &st), 0, "no folder is made for a tsc that cannot run");
    }
    assert_base_clean(base);
    dmt_rmtree(tmp);
    dmt_rmtree(base);
    free(tmp);
    free(base);
}

/* ---- the base written out (git/checkout) and the migration replay (basework) ---- */

#include "dream/io/basework.h"
#include "dream/io/git.h"
#include "githttp.h"

struct gitenv {
    char *dir;
    char *bare;
    char url[4200];
    char data[4200];
    char cache[4200];
};

static void gitenv_make(struct gitenv *g)
{
    g->dir = dmt_tempdir("checkout");
    g->bare = dmt_git_make_repo(g->dir, "acme", "app", "main");
    snprintf(g->url, sizeof(g->url), "file://%s/{owner}/{repo}.git", g->dir);
    snprintf(g->data, sizeof(g->data), "%s/data", g->dir);
    snprintf(g->cache, sizeof(g->cache), "%s/data/checks/base", g->dir);
    free(dmt_sh("git clone -q '%s' '%s/w' && cd '%s/w' && mkdir -p src/routes migrations "
                "node_modules/hono && echo 'export const a = 1;' > src/a.ts && "
                "echo 'CREATE TABLE users (id INTEGER PRIMARY KEY);' > migrations/0001_init.sql && "
                "echo '{}' > tsconfig.json && echo 'x' > node_modules/hono/index.d.ts && "
                "echo 'bin' > logo.png && git add -A && "
                "git -c user.name=t -c user.email=t@e commit -qm files && git push -q origin "
                "HEAD:main",
                g->bare, g->dir, g->dir));
}

static void gitenv_commit(struct gitenv *g, const char *file)
{
    free(dmt_sh("cd '%s/w' && echo 'export const b = 2;' > '%s' && git add -A && "
                "git -c user.name=t -c user.email=t@e commit -qm more && git push -q origin "
                "HEAD:main",
                g->dir, file));
}

static void gitenv_free(struct gitenv *g)
{
    dmt_rmtree(g->dir);
    free(g->dir);
    free(g->bare);
}

static int exists(const char *dir, const char *rel)
{
    char path[8400];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return stat(path, &st) == 0;
}

Test(checkout, writes_the_checkable_files_once_per_commit)
{
    struct gitenv g;
    struct dm_git_opts o = DM_GIT_OPTS_INIT;
    struct dm_git_checkout_limits lim = {0, 0, 0, 1};
    struct dm_git_checkout co, again, next;
    struct dm_error err;
    char first[4096];

    gitenv_make(&g);
    o.data_dir = g.data;
    o.url_template = g.url;
    cr_assert_eq(dm_git_checkout(&co, &o, "acme", "app", "main", NULL, 0, g.cache, &lim, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(co.cached, 0);
    cr_assert_eq(strlen(co.commit), 40);
    cr_assert(exists(co.dir, "src/a.ts"));
    cr_assert(exists(co.dir, "migrations/0001_init.sql"));
    cr_assert(exists(co.dir, "tsconfig.json"));
    cr_assert_not(exists(co.dir, "README.md"), "only what the checks read");
    cr_assert_not(exists(co.dir, "logo.png"));
    cr_assert_not(exists(co.dir, "node_modules/hono/index.d.ts"), "never node_modules");
    cr_assert_eq(co.files, 3);
    snprintf(first, sizeof(first), "%s", co.dir);

    /* The same commit again (by id, without fetching): the cache. */
    cr_assert_eq(
        dm_git_checkout(&again, &o, "acme", "app", "main", co.commit, 0, g.cache, &lim, &err), 0,
        "%s", err.msg);
    cr_assert_eq(again.cached, 1);
    cr_assert_str_eq(again.dir, first);

    /* A new commit, refreshed: written; keep = 1 removes the older one. */
    gitenv_commit(&g, "src/b.ts");
    cr_assert_eq(dm_git_checkout(&next, &o, "acme", "app", "main", NULL, 1, g.cache, &lim, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(next.cached, 0);
    cr_assert_str_neq(next.commit, co.commit);
    cr_assert(exists(next.dir, "src/b.ts"));
    cr_assert_not(exists(first, ""), "the least recently used commit is removed");
    gitenv_free(&g);
}

Test(checkout, over_the_limits_fails_and_leaves_nothing)
{
    struct gitenv g;
    struct dm_git_opts o = DM_GIT_OPTS_INIT;
    struct dm_git_checkout_limits lim = {2, 0, 0, 0};
    struct dm_git_checkout co;
    struct dm_error err;
    DIR *d;
    struct dirent *e;
    int entries = 0;

    gitenv_make(&g);
    o.data_dir = g.data;
    o.url_template = g.url;
    cr_assert_eq(dm_git_checkout(&co, &o, "acme", "app", "main", NULL, 0, g.cache, &lim, &err),
                 DM_ERR_LIMIT);
    cr_assert(strstr(err.msg, "limits"), "%s", err.msg);
    d = opendir(g.cache);
    while (d && (e = readdir(d)) != NULL) {
        entries += e->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    cr_assert_eq(entries, 0, "no half-written tree is left");
    gitenv_free(&g);
}

struct migrated {
    int fired, rc;
    char msg[600];
    char applied[600];
    size_t failed, n_base;
};

static void on_migrated(void *arg, int rc, const struct dm_basework_migrated *res,
                        const struct dm_error *err)
{
    struct migrated *m = arg;
    m->fired++;
    m->rc = rc;
    snprintf(m->msg, sizeof(m->msg), "%s", rc ? err->msg : "");
    snprintf(m->applied, sizeof(m->applied), "%s", res->applied);
    m->failed = res->failed;
    m->n_base = res->n_base;
}

static struct migrated migrate_on(const char *base_dir, const char *path, const char *sql)
{
    uv_loop_t loop;
    struct migrated m;
    struct dm_migration news[] = {{path, sql, strlen(sql), 1}};
    struct dm_basework_migrate_req r = {base_dir, "migrations/", news, 1, NULL, on_migrated, &m};
    struct dm_error err;

    memset(&m, 0, sizeof(m));
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dm_basework_migrate(NULL, &loop, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(m.fired, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(m.fired, 1);
    cr_assert_eq(dm_loop_drain_close(&loop), 0);
    return m;
}

Test(checkout, migrations_replay_over_the_written_out_base)
{
    struct gitenv g;
    struct dm_git_opts o = DM_GIT_OPTS_INIT;
    struct dm_git_checkout co;
    struct dm_error err;
    struct migrated m;

    gitenv_make(&g);
    o.data_dir = g.data;
    o.url_template = g.url;
    cr_assert_eq(dm_git_checkout(&co, &o, "acme", "app", "main", NULL, 0, g.cache, NULL, &err), 0,
                 "%s", err.msg);
    m = migrate_on(co.dir, "migrations/0002_name.sql", "ALTER TABLE users ADD COLUMN name TEXT;\n");
    cr_assert_eq(m.rc, 0, "%s", m.msg);
    cr_assert_eq(m.n_base, 1);
    cr_assert_str_eq(m.applied, "0001_init.sql, 0002_name.sql");
    m = migrate_on(co.dir, "migrations/0002_users.sql",
                   "-- again\nCREATE TABLE users (id INTEGER PRIMARY KEY);\n");
    cr_assert_eq(m.rc, DM_ERR_INVALID);
    cr_assert_eq(m.failed, 0);
    cr_assert_str_eq(m.msg, "migrations/0002_users.sql:2: table users already exists");
    cr_assert_str_eq(m.applied, "0001_init.sql");
    gitenv_free(&g);
}
